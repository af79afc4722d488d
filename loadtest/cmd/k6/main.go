// Command k6 is k6 with the k6/x/jetsuite extension built in (what `xk6 build --with` would
// generate; xk6 itself is not needed).
package main

import (
	"go.k6.io/k6/cmd"

	_ "github.com/jetsuite/jetsuite/loadtest/jetsuite"
)

func main() { cmd.Execute() }

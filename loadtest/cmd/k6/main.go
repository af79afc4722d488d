// Command k6 is k6 with the k6/x/jetsuite extension built in (what `xk6 build --with` would
// generate; xk6 itself is not needed).
package main

import (
	"os"

	"go.k6.io/k6/cmd"

	_ "github.com/jetsuite/jetsuite/loadtest/jetsuite"
)

func main() {
	// k6 reports anonymous usage to Grafana after each run unless told not to; a load test
	// of a local jetsuite talks to nothing but it. K6_NO_USAGE_REPORT=false turns it back on.
	if _, set := os.LookupEnv("K6_NO_USAGE_REPORT"); !set {
		_ = os.Setenv("K6_NO_USAGE_REPORT", "true")
	}
	cmd.Execute()
}

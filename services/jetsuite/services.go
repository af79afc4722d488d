package main

import (
	"github.com/jetsuite/jetsuite/services/windower"
	"github.com/jetsuite/jetsuite/shared/runner"
)

// specs lists every service the binary knows, in the order `all` starts them.
func specs() []runner.Spec {
	return []runner.Spec{
		windower.Spec(),
	}
}

package main

import (
	"github.com/jetsuite/jetsuite/bridge"
	"github.com/jetsuite/jetsuite/services/alerting"
	"github.com/jetsuite/jetsuite/services/cdc"
	"github.com/jetsuite/jetsuite/services/enricher"
	"github.com/jetsuite/jetsuite/services/generator"
	"github.com/jetsuite/jetsuite/services/indexer"
	"github.com/jetsuite/jetsuite/services/windower"
	"github.com/jetsuite/jetsuite/shared/runner"
)

// specs lists every service the binary knows, in the order `all` starts them.
func specs() []runner.Spec {
	return []runner.Spec{
		generator.Spec(),
		cdc.Spec(),
		enricher.Spec(),
		windower.Spec(),
		alerting.Spec(),
		indexer.Spec(),
		bridge.Spec(),
	}
}

// Command bridgemain runs only the bridge, configured like `jetsuite bridge` (the same settings
// through the same flags and environment variables) plus the NATS URL. The bridge's tests build it
// to run the bridge as a separate process they can SIGKILL mid-run.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jetsuite/jetsuite/bridge"
	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/natsx"
	"github.com/jetsuite/jetsuite/shared/runner"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bridgemain:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("bridgemain", flag.ExitOnError)
	var natsURL string
	reg := config.NewRegistry(fs, os.Getenv)
	reg.Shared().String(&natsURL, "nats-url", "nats://127.0.0.1:4222", "NATS server URLs").AlsoEnv("NATS_URL")
	spec := bridge.Spec()
	build := spec.Bind(reg.Service(spec.Name))
	if err := reg.Err(); err != nil {
		return err
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if err := reg.Resolve(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg.LogDeprecations(log)
	ctx, stop := runner.SignalContext(context.Background(), log)
	defer stop()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc, err := natsx.Connect(cctx, natsURL, "bridgemain", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := natsx.JetStream(nc)
	if err != nil {
		return err
	}
	svc, err := build(runner.Deps{NC: nc, JS: js, Log: log})
	if err != nil {
		return err
	}
	return runner.RunAll(ctx, log, svc)
}

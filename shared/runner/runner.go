// Package runner is the run loop every jetsuite service shares: what a service is, what it is
// given, and how several run together in one process and stop on SIGTERM.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/lease"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/plan"
)

// Service is one jetsuite service. Run blocks until ctx ends (then drains and returns nil) or a
// fatal error occurs.
type Service interface {
	Name() string
	Run(ctx context.Context) error
}

// Deps is what every service is given: a NATS connection with JetStream, a logger, the
// process's health registry and HTTP mux (for service-specific endpoints).
type Deps struct {
	NC     *nats.Conn
	JS     jetstream.JetStream
	Log    *slog.Logger
	Health *obs.Health
	HTTP   *obs.Server
	// Plan is the compiled pipeline the service executes its part of (nil: the built-in
	// demos, plan.Demo()).
	Plan *plan.Plan
	// Instance names this process among the instances of its services against one NATS
	// (shared/lease; "": a name made of host, pid and a random suffix).
	Instance string
}

// Share runs a service's units of work, shared with the service's other instances against the
// same NATS: each unit runs in exactly one of them, and moves when one stops or dies (see
// shared/lease). It returns when ctx ends (after stopping the units gracefully) or a unit
// fails.
func (d Deps) Share(ctx context.Context, service string, units ...lease.Unit) error {
	return lease.Run(ctx, d.JS, lease.Options{Group: service, Instance: d.Instance, Log: d.Logger(service)}, units)
}

// Pipeline returns the plan the service executes: Plan, or the built-in demos.
func (d Deps) Pipeline() *plan.Plan {
	if d.Plan != nil {
		return d.Plan
	}
	return plan.Demo()
}

// Logger returns the service's logger (with a service attribute).
func (d Deps) Logger(service string) *slog.Logger {
	l := d.Log
	if l == nil {
		l = slog.Default()
	}
	return l.With("service", service)
}

// RunAll runs the services until ctx ends or one fails; a failure stops the others.
func RunAll(ctx context.Context, log *slog.Logger, services ...Service) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, s := range services {
		g.Go(func() error {
			log.Info("service starting", "service", s.Name())
			err := s.Run(ctx)
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Error("service failed", "service", s.Name(), "err", err)
				return fmt.Errorf("%s: %w", s.Name(), err)
			}
			log.Info("service stopped", "service", s.Name())
			return nil
		})
	}
	return g.Wait()
}

// SignalContext returns a context that ends on SIGINT or SIGTERM. A second signal exits at once.
func SignalContext(parent context.Context, log *slog.Logger) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-ch:
			log.Info("stopping: draining in-flight work (signal again to exit at once)", "signal", sig.String())
			cancel()
		case <-ctx.Done():
			return
		}
		<-ch
		log.Warn("second signal: exiting now")
		os.Exit(1)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

// Spec describes a service to the jetsuite binary: its name, a one-line summary, and Bind,
// which declares the service's settings on a Binder and returns the constructor that builds
// the service once flags are parsed.
type Spec struct {
	Name    string
	Summary string
	// InAll says whether `jetsuite all` runs it by default.
	InAll bool
	Bind  func(b Binder) func(Deps) (Service, error)
	// CheckPlan, when set, checks the bound settings against the pipeline before anything
	// starts (a table name the pipeline does not have); it returns a *config.SettingError.
	CheckPlan func(p *plan.Plan) error
}

// Binder is config.Binder, named here so service packages need one import less.
type Binder = config.Binder

// Package enricher executes the stateless statements of the pipeline: it materialises the
// tables declared over a topic into KV buckets (CREATE TABLE ... WITH (KAFKA_TOPIC=...), e.g.
// WEB_USERS, CLICKSTREAM_CODES), and runs every CREATE STREAM ... AS SELECT: filters,
// projections, PARTITION BY, and stream–table joins against in-memory views of the tables
// (USER_CLICKSTREAM, ENRICHED_ERROR_CODES, RATINGS_LIVE, RATINGS_WITH_CUSTOMER_DATA,
// UNHAPPY_PLATINUM_CUSTOMERS, the imply-news routes in the demos).
//
// Joins read tables from in-memory views kept current by KV watchers; a stream whose
// statements join starts only once its tables are loaded, and /readyz says not-ready until
// then. Each source stream is one loop (a shared/flow processor, the single owner of its
// consumer): each input is decoded once, every statement reading that stream runs on it in
// statement order, and the outputs are published with ids derived from the input, in input
// order across crashes, before the input is acked: redeliveries produce no duplicates.
package enricher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/lease"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/transform"
)

// ServiceName is the service's name (metrics label, dead-letter header, consumer prefix).
const ServiceName = "enricher"

// Config holds the enricher's settings.
type Config struct {
	// MaxBytes is the largest input accepted; larger ones are dead-lettered (too_large).
	MaxBytes int
	// BatchSize is the largest batch pulled and published at once.
	BatchSize int
	// PublishTimeout bounds the wait for one round of publish acks; the unconfirmed outputs are
	// then published again (shared/flow).
	PublishTimeout time.Duration
	// InFlight is how many batches per loop may wait for their publish acks while the next
	// one is transformed.
	InFlight int
}

// DefaultConfig is the configuration without flags or environment: the declared defaults.
func DefaultConfig() Config {
	var c Config
	c.Bind(config.Defaults(ServiceName))
	return c
}

// Bind declares the settings on b.
func (c *Config) Bind(b runner.Binder) {
	b.Int(&c.MaxBytes, "max-bytes", 64<<10,
		"largest input (bytes) the enricher accepts; larger ones go to the dead-letter stream (reason too_large)").
		Positive().Was("ENRICHER_MAX_BYTES", "")
	b.Int(&c.BatchSize, "batch", 1000,
		"largest batch the enricher pulls, publishes and acks at once").
		Positive().Was("ENRICHER_BATCH", "")
	b.Duration(&c.PublishTimeout, "publish-timeout", 5*time.Second,
		"how long the enricher waits for one round of publish acks before it publishes the unconfirmed outputs again (same ids; after 8 rounds it resumes from its checkpoint)").
		Positive().Was("ENRICHER_PUBLISH_TIMEOUT", "")
	b.Int(&c.InFlight, "inflight", 3,
		"batches per loop whose outputs may await their acks while the next batch is processed (1: strictly one at a time)").
		Positive().Was("ENRICHER_INFLIGHT", "")
}

func (c Config) validate() error {
	switch {
	case c.MaxBytes <= 0:
		return errors.New("enricher: max bytes must be positive")
	case c.BatchSize <= 0:
		return errors.New("enricher: batch size must be positive")
	case c.PublishTimeout <= 0:
		return errors.New("enricher: publish timeout must be positive")
	case c.InFlight <= 0:
		return errors.New("enricher: in-flight batches must be positive")
	}
	return nil
}

// Spec describes the enricher to the jetsuite binary.
func Spec() runner.Spec {
	return runner.Spec{
		Name:    ServiceName,
		Summary: "the pipeline's stateless statements: tables loaded from topics, filters, projections, stream–table joins",
		InAll:   true,
		Bind: func(b runner.Binder) func(runner.Deps) (runner.Service, error) {
			var cfg Config
			cfg.Bind(b)
			return func(d runner.Deps) (runner.Service, error) { return New(cfg, d) }
		},
	}
}

// Service is the enricher.
type Service struct {
	cfg   Config
	js    jetstream.JetStream
	log   *slog.Logger
	ready *obs.ReadyFlag
	plan  *plan.Plan
	deps  runner.Deps

	loads      []*plan.Step            // tables the enricher loads from their topics
	transforms map[string][]*plan.Step // CREATE STREAM AS SELECT steps by input stream
	streams    []string                // the keys of transforms, in statement order
	views      transform.Views
}

// New builds the enricher for the plan's Load and Transform steps and registers its readiness
// check.
func New(cfg Config, d runner.Deps) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if d.JS == nil {
		return nil, errors.New("enricher: no JetStream")
	}
	s := &Service{cfg: cfg, js: d.JS, log: d.Logger(ServiceName), plan: d.Pipeline(), deps: d,
		transforms: map[string][]*plan.Step{}, views: transform.Views{}}
	for _, st := range s.plan.StepsOf(plan.ServiceEnricher) {
		switch st.Kind {
		case plan.Load:
			s.loads = append(s.loads, st)
		case plan.Transform:
			in := st.Input.Stream
			if in == "" {
				return nil, fmt.Errorf("enricher: %s reads %s, which has no stream", st.Name, st.Input.Name)
			}
			if _, ok := s.transforms[in]; !ok {
				s.streams = append(s.streams, in)
			}
			s.transforms[in] = append(s.transforms[in], st)
			if j := st.Join; j != nil {
				s.views.For(j.Table, s.log)
			}
		}
	}
	var tables []string
	for name := range s.views {
		tables = append(tables, name)
	}
	slices.Sort(tables)
	s.ready = obs.NewReadyFlag("loading tables " + strings.Join(tables, ", "))
	if d.Health != nil {
		d.Health.Register(ServiceName, s.ready.Check)
	}
	return s, nil
}

// Name implements runner.Service.
func (s *Service) Name() string { return ServiceName }

// Ready reports nil once every table is loaded and the joiners run.
func (s *Service) Ready() error { return s.ready.Check() }

// Run runs every loop until ctx ends (in-flight batches complete) or one fails. A Service runs
// once.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	// The loaders and the statements' processors are units of work shared with the other
	// enrichers (shared/lease): each runs in one instance at a time. The table views the
	// joins read run in every instance, so that a statement can start wherever it lands.
	var units []lease.Unit
	for _, st := range s.loads {
		units = append(units, lease.Unit{Name: durable(st.Output.Name), Run: func(ctx context.Context) error {
			return newLoader(s.stage(durable(st.Output.Name), st.Input.Stream), st.Output.Bucket, s.cfg.MaxBytes, tableLoader(st)).run(ctx)
		}})
	}
	// A view of a table the enricher loads itself starts watching once its loader has applied
	// what the source held at start (wherever the loader runs), so that the joins' first
	// inputs see those rows (as ksqlDB with auto.offset.reset=earliest would). Other tables
	// (CUSTOMERS, written by the CDC reader; aggregations) are watched at once.
	var all []interface{ Loaded() <-chan struct{} }
	for name, v := range s.views {
		o := s.plan.Object(name)
		kv, err := s.js.KeyValue(ctx, o.Bucket)
		if err != nil {
			return fmt.Errorf("enricher: table %s (is the catalog declared?): %w", name, err)
		}
		g.Go(func() error {
			if transform.WaitLoader(ctx, s.js, o, s.log) != nil {
				return nil // ctx ended
			}
			return v.Run(ctx, kv)
		})
		all = append(all, v)
	}
	for _, in := range s.streams {
		steps := s.transforms[in]
		var outs []string
		for _, st := range steps {
			outs = append(outs, st.Output.Stream)
		}
		name := durable(steps[0].Input.Name)
		// Checked once here, so that a statement that cannot run fails the start.
		if _, err := newTransformer(s.stage(name, in, outs...), steps, s.views, s.cfg.MaxBytes); err != nil {
			return err
		}
		units = append(units, lease.Unit{Name: name, Run: func(ctx context.Context) error {
			t, err := newTransformer(s.stage(name, in, outs...), steps, s.views, s.cfg.MaxBytes)
			if err != nil {
				return err
			}
			if t.prog.WaitLoaded(ctx) != nil {
				return nil
			}
			s.log.Info("running statements", "input", in, "outputs", strings.Join(outs, ", "))
			return t.run(ctx)
		}})
	}
	g.Go(func() error { return s.deps.Share(ctx, ServiceName, units...) })
	g.Go(func() error {
		if transform.WaitLoaded(ctx, all...) == nil {
			s.ready.Set()
		}
		return nil
	})
	return g.Wait()
}

func (s *Service) stage(name, stream string, ordered ...string) *stage {
	return newStage(s.cfg, s.js, s.log, name, stream, ordered...)
}

// Package enricher is jetsuite's stateless stream processor, the part of ksqlDB that needs no
// windows: it materialises the clickstream source tables into KV buckets (WEB_USERS,
// CLICKSTREAM_CODES), joins clicks with them (USER_CLICKSTREAM, ENRICHED_ERROR_CODES), routes
// the imply-news mixed stream by recordType, and splits and enriches ratings (RATINGS_LIVE,
// RATINGS_TEST, RATINGS_WITH_CUSTOMER_DATA, joined with the CUSTOMERS table the CDC reader
// keeps).
//
// Joins read tables from in-memory views kept current by KV watchers; a joiner starts only once
// its tables are loaded, and /readyz says not-ready until then. Every loop consumes a shared
// durable consumer in batches, publishes the batch's outputs asynchronously (each with a
// Nats-Msg-Id derived from its input), waits until JetStream has them all, then acks the batch:
// redeliveries produce no duplicates. Each loop is a shared/flow processor: the single owner of
// its consumer, its derived streams in input order across crashes.
package enricher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// ServiceName is the service's name (metrics label, dead-letter header, consumer prefix).
const ServiceName = "enricher"

// Durable consumer names, one per source stream.
const (
	ConsumerClicks    = "enricher-clickstream"
	ConsumerUsers     = "enricher-web-users"
	ConsumerCodes     = "enricher-clickstream-codes"
	ConsumerRatings   = "enricher-ratings"
	ConsumerImplyNews = "enricher-imply-news"
)

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
		Summary: "table loaders (WEB_USERS, CLICKSTREAM_CODES), stream-table joins (USER_CLICKSTREAM, ENRICHED_ERROR_CODES, RATINGS_WITH_CUSTOMER_DATA), ratings split, imply-news router",
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

	users     *View[userRow]
	codes     *View[codeRow]
	customers *View[customerRow]
}

// New builds the enricher and registers its readiness check.
func New(cfg Config, d runner.Deps) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if d.JS == nil {
		return nil, errors.New("enricher: no JetStream")
	}
	s := &Service{
		cfg:   cfg,
		js:    d.JS,
		log:   d.Logger(ServiceName),
		ready: obs.NewReadyFlag("loading tables WEB_USERS, CLICKSTREAM_CODES, CUSTOMERS"),
	}
	s.users = NewView(topology.TableWebUsers, decodeUserRow, s.log)
	s.codes = NewView(topology.TableClickstreamCodes, decodeCodeRow, s.log)
	s.customers = NewView(topology.TableCustomers, decodeCustomerRow, s.log)
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
	buckets := map[string]jetstream.KeyValue{}
	for _, name := range []string{topology.TableWebUsers, topology.TableClickstreamCodes, topology.TableCustomers} {
		kv, err := s.js.KeyValue(ctx, name)
		if err != nil {
			return fmt.Errorf("enricher: table %s (is the topology declared?): %w", name, err)
		}
		buckets[name] = kv
	}
	users, codes, customers := s.users, s.codes, s.customers

	usersLoader := newLoader(s.stage(ConsumerUsers, topology.StreamClickstreamUsers),
		topology.TableWebUsers, s.cfg.MaxBytes, webUserRow)
	codesLoader := newLoader(s.stage(ConsumerCodes, topology.StreamClickstreamCodes),
		topology.TableClickstreamCodes, s.cfg.MaxBytes, statusCodeRow)
	clicks := &clickJoiner{stage: s.stage(ConsumerClicks, topology.StreamClickstream,
		topology.StreamUserClickstream, topology.StreamEnrichedErrorCodes),
		users: users, codes: codes, max: s.cfg.MaxBytes}
	clicks.stage.one = clicks.one
	ratings := newRatingsJoiner(s.stage(ConsumerRatings, topology.StreamRatings,
		topology.StreamRatingsLive, topology.StreamRatingsTest, topology.StreamRatingsWithCustomerData), customers, s.cfg.MaxBytes)
	ratings.stage.one = ratings.one
	news := &newsRouter{stage: s.stage(ConsumerImplyNews, topology.StreamImplyNews,
		topology.StreamImplyNewsClicks, topology.StreamImplyNewsSessions), max: s.cfg.MaxBytes}
	news.stage.one = news.one

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return usersLoader.run(ctx) })
	g.Go(func() error { return codesLoader.run(ctx) })
	g.Go(func() error { return news.run(ctx) })
	// A view of a table the enricher loads itself starts watching once its loader has applied
	// what the source held at start, so that the joiner's first clicks see those rows (as ksqlDB
	// with auto.offset.reset=earliest would). CUSTOMERS is written by the CDC reader.
	watchAfter := func(v interface {
		Run(context.Context, jetstream.KeyValue) error
	}, kv jetstream.KeyValue, after <-chan struct{}) {
		g.Go(func() error {
			select {
			case <-after:
			case <-ctx.Done():
				return nil
			}
			return v.Run(ctx, kv)
		})
	}
	watchAfter(users, buckets[topology.TableWebUsers], usersLoader.CaughtUp())
	watchAfter(codes, buckets[topology.TableClickstreamCodes], codesLoader.CaughtUp())
	watchAfter(customers, buckets[topology.TableCustomers], closed)

	g.Go(func() error {
		if WaitLoaded(ctx, users, codes) != nil {
			return nil
		}
		s.log.Info("tables loaded, joining clicks", "web_users", users.Len(), "clickstream_codes", codes.Len())
		return clicks.run(ctx)
	})
	g.Go(func() error {
		if WaitLoaded(ctx, customers) != nil {
			return nil
		}
		s.log.Info("table loaded, joining ratings", "customers", customers.Len())
		return ratings.run(ctx)
	})
	g.Go(func() error {
		if WaitLoaded(ctx, users, codes, customers) == nil {
			s.ready.Set()
		}
		return nil
	})
	return g.Wait()
}

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (s *Service) stage(name, stream string, ordered ...string) *stage {
	return newStage(s.cfg, s.js, s.log, name, stream, ordered...)
}

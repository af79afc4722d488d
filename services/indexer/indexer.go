// Package indexer is the OpenSearch sink: every derived stream and every table of both pipelines
// lands in an index named after it (lower case), like the originals' Kafka Connect Elasticsearch
// sinks, so that the dashboards ("Click Stream Analysis", "Ratings Data") have their data.
//
// Streams are appended: document id "<stream>:<sequence>", plus an EXTRACT_TS field (event time,
// epoch ms). Tables (KV buckets) are upserted: document id = KV key ("<key>.<window start ms>" for
// windowed tables), versioned externally by the KV revision; a KV delete deletes the document.
// Each followed stream (a derived stream, or KV_<TABLE> for a table) is one shared/flow
// processor: the runtime resumes it from its checkpoint, batches, and acks (cumulatively) only
// after the handler's _bulk was confirmed by OpenSearch and the dead letters of documents
// OpenSearch rejects for good (dlq.<stream>, with OpenSearch's reason) are stored. While
// OpenSearch is away nothing is acked: the batch is retried, and handed back to the runtime to
// be delivered again from the checkpoint. See README.md.
package indexer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/opensearch-project/opensearch-go/v2"

	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/lease"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/runner"
)

// ServiceName is the indexer's name (service label, consumer name, dead-letter service header).
const ServiceName = "indexer"

// Sources are what the pipeline's opensearch sinks (CREATE SINK CONNECTOR ... WITH
// ('connector.class' = 'opensearch' or an Elasticsearch connector)) read: their streams
// (appended) and tables (upserted), in the order the sinks name them. They are the indexer's
// default streams and tables.
func Sources(p *plan.Plan) (streams, tables []string) {
	seen := map[string]bool{}
	for _, s := range p.SinksOf("opensearch") {
		for _, o := range s.Objects {
			if seen[o.Name] {
				continue
			}
			seen[o.Name] = true
			if o.Bucket != "" {
				tables = append(tables, o.Bucket)
			} else {
				streams = append(streams, o.Stream)
			}
		}
	}
	return streams, tables
}

// Config is the indexer's configuration.
type Config struct {
	// URLs are the OpenSearch nodes; empty turns the indexer off.
	URLs     []string
	Username string
	Password string
	// CAFile is a PEM file of certificate authorities to trust (HTTPS with a private CA).
	CAFile             string
	InsecureSkipVerify bool

	// IndexPrefix is put before every index name (several deployments, or tests, on one cluster).
	IndexPrefix string
	Streams     []string
	Tables      []string
	// Durable is the consumer name on every followed stream; the checkpoint of each is
	// "<Durable>.<stream>" in JETSUITE_CHECKPOINTS. One running instance owns them (a newer one
	// takes the consumers over).
	Durable string

	BulkDocs      int           // most documents per _bulk request (and per batch)
	BulkBytes     int           // about the most bytes per _bulk request
	FlushInterval time.Duration // longest wait for a fuller batch after its first message
	// AckWait is how long one batch retries inside the indexer (OpenSearch away, items failing
	// with 429/5xx) before it goes back to JetStream and is delivered again from the
	// checkpoint, first (at most a minute, see maxHold).
	AckWait      time.Duration
	RetryBackoff time.Duration // first retry delay
	RetryMax     time.Duration // retry delay cap
	// DrainTimeout bounds how long a stopping indexer keeps trying to finish its in-flight
	// batches (unfinished ones stay unacked and are delivered again, first, at the next
	// start). 0 stops at once.
	DrainTimeout time.Duration
}

// DefaultConfig is the configuration without settings: the declared defaults.
func DefaultConfig() Config {
	var c Config
	c.Bind(config.Defaults(ServiceName))
	return c
}

// Bind declares the settings.
func (c *Config) Bind(b runner.Binder) {
	b.List(&c.URLs, "opensearch-url", nil, "OpenSearch node URLs, comma-separated (empty: the indexer is off)").
		Was("OPENSEARCH_URL", "opensearch-url")
	b.String(&c.Username, "opensearch-username", "", "OpenSearch basic-auth user").
		Was("OPENSEARCH_USERNAME", "opensearch-username")
	b.Secret(&c.Password, "opensearch-password", "OpenSearch basic-auth password").
		Was("OPENSEARCH_PASSWORD", "opensearch-password")
	b.String(&c.CAFile, "opensearch-ca-file", "", "PEM file with the certificate authorities to trust for HTTPS").
		Was("OPENSEARCH_CA_FILE", "opensearch-ca-file")
	b.Bool(&c.InsecureSkipVerify, "opensearch-insecure-skip-verify", false, "do not verify OpenSearch's TLS certificate (tests only)").
		Was("OPENSEARCH_INSECURE_SKIP_VERIFY", "opensearch-insecure-skip-verify")
	b.String(&c.IndexPrefix, "index-prefix", "", "prefix of every index name (and of the index template's name)").
		Was("INDEXER_INDEX_PREFIX", "")
	b.List(&c.Streams, "streams", nil, "streams appended to OpenSearch (default, with --indexer-tables also empty: those of the pipeline's opensearch sinks)").Was("INDEXER_STREAMS", "")
	b.List(&c.Tables, "tables", nil, "tables (KV buckets) upserted to OpenSearch (default: those of the pipeline's opensearch sinks)").Was("INDEXER_TABLES", "")
	b.String(&c.Durable, "durable", ServiceName, "consumer name on every followed stream").
		NotEmpty().Was("INDEXER_DURABLE", "")
	b.Int(&c.BulkDocs, "bulk-docs", 1000, "most documents per _bulk request").Positive().Was("INDEXER_BULK_DOCS", "")
	b.Int(&c.BulkBytes, "bulk-bytes", 5<<20, "about the most bytes per _bulk request").Positive().Was("INDEXER_BULK_BYTES", "")
	b.Duration(&c.FlushInterval, "flush-interval", time.Second, "longest wait for a fuller batch before it is sent").
		Positive().Was("INDEXER_FLUSH_INTERVAL", "")
	b.Duration(&c.AckWait, "ack-wait", 30*time.Second, "how long a batch retries inside the indexer before it is delivered again from the checkpoint (1s to 1m)").
		Check(func(d time.Duration) error {
			if d < time.Second || d > time.Minute {
				return errors.New("must be between 1s and 1m")
			}
			return nil
		}).Was("INDEXER_ACK_WAIT", "")
	b.Duration(&c.RetryBackoff, "retry-backoff", 200*time.Millisecond, "first retry delay").Positive().Was("INDEXER_RETRY_BACKOFF", "")
	b.Duration(&c.RetryMax, "retry-max", 10*time.Second, "longest retry delay").Positive().Was("INDEXER_RETRY_MAX", "")
	b.Duration(&c.DrainTimeout, "drain-timeout", 15*time.Second, "how long a stopping indexer keeps finishing in-flight batches").
		NonNegative().Was("INDEXER_DRAIN_TIMEOUT", "")
}

func (c Config) validate() error {
	switch {
	case c.BulkDocs <= 0:
		return errors.New("indexer: bulk docs must be positive")
	case c.BulkBytes <= 0:
		return errors.New("indexer: bulk bytes must be positive")
	case c.FlushInterval <= 0:
		return errors.New("indexer: flush interval must be positive")
	case c.AckWait < time.Second:
		return errors.New("indexer: ack wait must be at least 1s")
	case c.RetryBackoff <= 0 || c.RetryMax < c.RetryBackoff:
		return errors.New("indexer: retry backoff must be positive and at most the retry max")
	case c.Durable == "":
		return errors.New("indexer: durable name is empty")
	}
	return nil
}

// IndexName is the index of a stream or table: its name in lower case, after the prefix.
func (c Config) IndexName(object string) string { return c.IndexPrefix + strings.ToLower(object) }

func (c Config) sources() []source {
	var out []source
	for _, s := range c.Streams {
		out = append(out, source{Name: s, Stream: s, Index: c.IndexName(s)})
	}
	for _, t := range c.Tables {
		out = append(out, source{Name: t, Stream: "KV_" + t, Table: true, Index: c.IndexName(t)})
	}
	return out
}

// Spec is the indexer for the jetsuite binary.
func Spec() runner.Spec {
	return runner.Spec{
		Name:    ServiceName,
		Summary: "OpenSearch sink: derived streams appended, tables upserted, one index each (off without JETSUITE_INDEXER_OPENSEARCH_URL)",
		InAll:   true,
		Bind: func(b runner.Binder) func(runner.Deps) (runner.Service, error) {
			var cfg Config
			cfg.Bind(b)
			return func(d runner.Deps) (runner.Service, error) { return New(cfg, d) }
		},
	}
}

// Indexer is the service.
type Indexer struct {
	cfg    Config
	js     jetstream.JetStream
	log    *slog.Logger
	ready  *obs.ReadyFlag
	client *opensearch.Client
	w      *writer
	deps   runner.Deps
}

// New builds the indexer. Without OpenSearch URLs it builds one that only says it is off.
func New(cfg Config, d runner.Deps) (*Indexer, error) {
	if len(cfg.Streams) == 0 && len(cfg.Tables) == 0 {
		cfg.Streams, cfg.Tables = Sources(d.Pipeline())
	}
	x := &Indexer{cfg: cfg, js: d.JS, log: d.Logger(ServiceName), deps: d}
	if len(cfg.URLs) == 0 {
		return x, nil
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if d.JS == nil {
		return nil, errors.New("indexer: no JetStream")
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	x.client = client
	x.w = &writer{client: client, maxDocs: cfg.BulkDocs, maxBytes: cfg.BulkBytes,
		backoff: cfg.RetryBackoff, maxWait: cfg.RetryMax, log: x.log}
	x.ready = obs.NewReadyFlag("installing the index template in OpenSearch")
	if d.Health != nil {
		d.Health.Register(ServiceName, x.ready.Check)
	}
	return x, nil
}

// Name is the service name.
func (x *Indexer) Name() string { return ServiceName }

// Run installs the index template, then follows every stream and table until ctx ends.
func (x *Indexer) Run(ctx context.Context) error {
	if x.client == nil {
		x.log.Info("indexer is off because JETSUITE_INDEXER_OPENSEARCH_URL is unset")
		<-ctx.Done()
		return nil
	}
	if err := x.installTemplate(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	x.ready.Set()
	x.log.Info("indexing to OpenSearch", "nodes", redactURLs(x.cfg.URLs), "streams", x.cfg.Streams, "tables", x.cfg.Tables)

	// One flow processor per source, each a unit of work shared with the other indexers
	// (shared/lease): one instance at a time indexes a source. Each finishes its batch in
	// flight after ctx ends (a graceful stop drains) for at most DrainTimeout; an unfinished
	// one stays unacked and is delivered again, first, at the next start.
	var units []lease.Unit
	for _, s := range x.cfg.sources() {
		units = append(units, lease.Unit{Name: s.Name, Run: func(ctx context.Context) error {
			if err := x.follow(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s.Name, err)
			}
			return nil
		}})
	}
	return x.deps.Share(ctx, ServiceName, units...)
}

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
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/opensearch-project/opensearch-go/v2"

	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// ServiceName is the indexer's name (service label, consumer name, dead-letter service header).
const ServiceName = "indexer"

// Streams the indexer appends by default: the derived streams of both pipelines.
var DefaultStreams = []string{
	topology.StreamUserClickstream,
	topology.StreamEnrichedErrorCodes,
	topology.StreamRatingsLive,
	topology.StreamRatingsTest,
	topology.StreamRatingsWithCustomerData,
	topology.StreamUnhappyPlatinumCustomers,
}

// Tables the indexer upserts by default: every table of both pipelines.
var DefaultTables = []string{
	topology.TableCustomers,
	topology.TableWebUsers,
	topology.TableClickstreamCodes,
	topology.TableEventsPerMin,
	topology.TablePagesPerMin,
	topology.TableErrorsPerMin,
	topology.TableErrorsPerMinAlert,
	topology.TableClickUserSessions,
	topology.TableEnrichedErrorCodesCount,
	topology.TableUserIPActivity,
	topology.TableRatingsPerCustomerPer15Minute,
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

// DefaultConfig is the configuration without settings.
func DefaultConfig() Config {
	return Config{
		Streams:       DefaultStreams,
		Tables:        DefaultTables,
		Durable:       ServiceName,
		BulkDocs:      1000,
		BulkBytes:     5 << 20,
		FlushInterval: time.Second,
		AckWait:       30 * time.Second,
		RetryBackoff:  200 * time.Millisecond,
		RetryMax:      10 * time.Second,
		DrainTimeout:  15 * time.Second,
	}
}

// Bind declares the settings.
func (c *Config) Bind(b runner.Binder) {
	b.List(&c.URLs, "opensearch-url", "OPENSEARCH_URL", nil,
		"OpenSearch node URLs, comma-separated (empty: the indexer is off)")
	b.String(&c.Username, "opensearch-username", "OPENSEARCH_USERNAME", "", "OpenSearch basic-auth user")
	b.Secret(&c.Password, "opensearch-password", "OPENSEARCH_PASSWORD", "OpenSearch basic-auth password")
	b.String(&c.CAFile, "opensearch-ca-file", "OPENSEARCH_CA_FILE", "",
		"PEM file with the certificate authorities to trust for HTTPS")
	b.Bool(&c.InsecureSkipVerify, "opensearch-insecure-skip-verify", "OPENSEARCH_INSECURE_SKIP_VERIFY", false,
		"do not verify OpenSearch's TLS certificate (tests only)")
	b.String(&c.IndexPrefix, "indexer-index-prefix", "INDEXER_INDEX_PREFIX", "",
		"prefix of every index name (and of the index template's name)")
	b.List(&c.Streams, "indexer-streams", "INDEXER_STREAMS", c.Streams, "streams appended to OpenSearch")
	b.List(&c.Tables, "indexer-tables", "INDEXER_TABLES", c.Tables, "tables (KV buckets) upserted to OpenSearch")
	b.String(&c.Durable, "indexer-durable", "INDEXER_DURABLE", c.Durable, "consumer name on every followed stream")
	b.Int(&c.BulkDocs, "indexer-bulk-docs", "INDEXER_BULK_DOCS", c.BulkDocs, "most documents per _bulk request")
	b.Int(&c.BulkBytes, "indexer-bulk-bytes", "INDEXER_BULK_BYTES", c.BulkBytes, "about the most bytes per _bulk request")
	b.Duration(&c.FlushInterval, "indexer-flush-interval", "INDEXER_FLUSH_INTERVAL", c.FlushInterval,
		"longest wait for a fuller batch before it is sent")
	b.Duration(&c.AckWait, "indexer-ack-wait", "INDEXER_ACK_WAIT", c.AckWait,
		"how long a batch retries inside the indexer before it is delivered again from the checkpoint (at most 1m)")
	b.Duration(&c.RetryBackoff, "indexer-retry-backoff", "INDEXER_RETRY_BACKOFF", c.RetryBackoff, "first retry delay")
	b.Duration(&c.RetryMax, "indexer-retry-max", "INDEXER_RETRY_MAX", c.RetryMax, "longest retry delay")
	b.Duration(&c.DrainTimeout, "indexer-drain-timeout", "INDEXER_DRAIN_TIMEOUT", c.DrainTimeout,
		"how long a stopping indexer keeps finishing in-flight batches")
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
		Summary: "OpenSearch sink: derived streams appended, tables upserted, one index each (off without OPENSEARCH_URL)",
		InAll:   true,
		Bind: func(b runner.Binder) func(runner.Deps) (runner.Service, error) {
			cfg := DefaultConfig()
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
}

// New builds the indexer. Without OpenSearch URLs it builds one that only says it is off.
func New(cfg Config, d runner.Deps) (*Indexer, error) {
	x := &Indexer{cfg: cfg, js: d.JS, log: d.Logger(ServiceName)}
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
		x.log.Info("indexer is off because OPENSEARCH_URL is unset")
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

	// One flow processor per source. Each finishes its batch in flight after ctx ends (a
	// graceful stop drains) for at most DrainTimeout; an unfinished one stays unacked and is
	// delivered again, first, at the next start.
	var wg sync.WaitGroup
	errs := make(chan error, len(x.cfg.sources()))
	for _, s := range x.cfg.sources() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := x.follow(ctx, s); err != nil {
				errs <- fmt.Errorf("%s: %w", s.Name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(func() []error {
		var out []error
		for e := range errs {
			out = append(out, e)
		}
		return out
	}()...)
}

// Package bridge moves records between Kafka and NATS JetStream with franz-go, in both
// directions, without losing or doubling any:
//
//   - Kafka -> JetStream: a consumer group reads the configured topics and publishes each record to
//     a subject (the topic name by default) with Nats-Msg-Id "kafka:<topic>:<partition>:<offset>".
//     Offsets are committed only after JetStream acknowledged every record of the batch, so a
//     crash replays at most the uncommitted batch, which JetStream de-duplicates.
//   - JetStream -> Kafka: one shared/flow processor per stream (durable <prefix><STREAM>)
//     produces each batch to a topic (the stream name by default) with franz-go's idempotent
//     producer, in stream order; the runtime checkpoints and acks a batch only after Kafka
//     acknowledged its records. What Kafka did not take is delivered again from the first
//     record it refused (flow.Retry), so nothing is skipped and order is kept.
//
// For the embedded demo the bridge can start an in-process Kafka (franz-go's kfake) and a small
// producer that writes ratings into it, like the original demo's web app did.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/runner"
)

// The defaults follow the pipeline (the built-in demos unless --queries-file): every topic a
// stream or table is declared over is copied from Kafka into the same-named subject; the
// streams of its 'kafka' sinks are copied into Kafka (under the topic the sink names, e.g.
// RATINGS_WITH_CUSTOMER_DATA=ratings-enriched), keyed by their key column when the row has one
// (UNHAPPY_PLATINUM_CUSTOMERS: PARTITION BY FULL_NAME), else by the Jetsuite-Key header (a
// join's key).

// FromKafkaOf lists the subjects p's streams and tables are declared over.
func FromKafkaOf(p *plan.Plan) []string {
	var out []string
	for _, o := range p.Objects {
		if o.Source && o.Subject != "" && !slices.Contains(out, o.Subject) {
			out = append(out, o.Subject)
		}
	}
	return out
}

// ToKafkaOf lists the streams of p's 'kafka' sinks, as STREAM or STREAM=topic.
func ToKafkaOf(p *plan.Plan) []string {
	var out []string
	for _, sink := range p.SinksOf("kafka") {
		for _, o := range sink.Objects {
			r := o.Stream
			if t := sink.KafkaTopics[o.Name]; t != "" {
				r += "=" + t
			} else if o.Subject != o.Stream {
				r += "=" + o.Subject
			}
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out
}

// KeyFieldsOf lists STREAM=COLUMN for the streams of p's 'kafka' sinks whose key is a column
// of their rows.
func KeyFieldsOf(p *plan.Plan) []string {
	var out []string
	for _, sink := range p.SinksOf("kafka") {
		for _, o := range sink.Objects {
			if len(o.Key) == 1 && o.Column(o.Key[0]) >= 0 {
				if r := o.Stream + "=" + o.Key[0]; !slices.Contains(out, r) {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// Config is the bridge's configuration.
type Config struct {
	// Brokers are Kafka seed brokers. Empty with Embedded set: start an in-process kfake cluster.
	Brokers []string
	// FromKafka lists "topic" or "topic=subject" to copy from Kafka into JetStream.
	FromKafka []string
	// ToKafka lists "STREAM" or "STREAM=topic" to copy from JetStream into Kafka.
	ToKafka []string
	// KeyFields lists "STREAM=FIELD": the top-level JSON field whose value becomes the record key.
	KeyFields []string
	// Group is the Kafka consumer group (bridges with the same group share partitions).
	Group string
	// DurablePrefix names the JetStream consumers: <prefix><STREAM>.
	DurablePrefix string
	// Start is where a group without committed offsets starts: "earliest" or "latest".
	Start string
	// Batch bounds the records in flight per direction (Kafka poll size, JetStream batch size).
	Batch int
	// FetchMaxBytes bounds what one Kafka fetch buffers (backpressure when JetStream is slow).
	FetchMaxBytes int
	// SessionTimeout is how long the group waits for a silent (crashed) bridge before giving its
	// partitions to the others.
	SessionTimeout time.Duration
	// AckTimeout bounds how long a batch waits for the other side's acks before it is retried.
	AckTimeout time.Duration

	// Embedded starts kfake when Brokers is empty.
	Embedded bool
	// EmbeddedDir keeps the kfake cluster's data (topics, offsets) across restarts; empty: memory.
	EmbeddedDir string
	// EmbeddedListen is the kfake listen port for other Kafka clients (0: random).
	EmbeddedPort int
	// RatingsPerSecond is the rate of the embedded ratings producer (0: off).
	RatingsPerSecond float64
	// RatingsSeed seeds the embedded ratings producer.
	RatingsSeed uint64
}

// DefaultConfig returns the configuration with every default applied: the declared defaults.
func DefaultConfig() Config {
	var c Config
	c.Bind(config.Defaults(serviceName))
	return c
}

const serviceName = "bridge"

// Bind declares the settings on b.
func (c *Config) Bind(b runner.Binder) {
	routes := func(items []string) error { _, err := parseRoutes(items); return err }
	b.List(&c.Brokers, "kafka-brokers", nil, "Kafka seed brokers, comma-separated (host:port)").
		Was("KAFKA_BROKERS", "kafka-brokers")
	demo := plan.Demo()
	b.List(&c.FromKafka, "from-kafka", FromKafkaOf(demo), "Kafka topics copied into JetStream: topic or topic=subject (default subject: the topic name; default: the topics the pipeline's streams and tables are declared over); empty: off").
		Check(routes).Was("BRIDGE_FROM_KAFKA", "")
	b.List(&c.ToKafka, "to-kafka", ToKafkaOf(demo), "JetStream streams copied into Kafka: STREAM or STREAM=topic (default topic: the stream name; default: the streams of the pipeline's 'kafka' sinks); empty: off").
		Check(routes).Was("BRIDGE_TO_KAFKA", "")
	b.List(&c.KeyFields, "key-fields", KeyFieldsOf(demo), "record key per stream copied into Kafka: STREAM=JSON field (else the Jetsuite-Key header, else no key; default: the key columns of the 'kafka' sinks' streams)").
		Check(routes).Was("BRIDGE_KEY_FIELDS", "")
	b.String(&c.Group, "group", "jetsuite-bridge", "Kafka consumer group of the bridges (they share the topics' partitions)").
		NotEmpty().Was("BRIDGE_GROUP", "")
	b.String(&c.DurablePrefix, "durable-prefix", "bridge_to_kafka_", "JetStream durable consumer name prefix (one consumer per stream copied into Kafka)").
		NotEmpty().Was("BRIDGE_DURABLE_PREFIX", "")
	b.String(&c.Start, "start", "earliest", "where a group without committed offsets starts reading: earliest or latest").
		OneOf("earliest", "latest").Was("BRIDGE_START", "")
	b.Int(&c.Batch, "batch", 5000, "records in flight per direction (Kafka poll size, JetStream batch)").
		Positive().Was("BRIDGE_BATCH", "")
	b.Int(&c.FetchMaxBytes, "fetch-max-bytes", 16<<20, "bytes one Kafka fetch may buffer (backpressure while JetStream is slow)").
		Positive().Was("BRIDGE_FETCH_MAX_BYTES", "")
	b.Duration(&c.AckTimeout, "ack-timeout", 30*time.Second, "how long a batch waits for acks before it is retried").
		Positive().Was("BRIDGE_ACK_TIMEOUT", "")
	b.Duration(&c.SessionTimeout, "session-timeout", 15*time.Second, "Kafka group session timeout: how soon the partitions of a crashed bridge go to the others (brokers allow 6s..30m by default)").
		Positive().Was("BRIDGE_SESSION_TIMEOUT", "")
	b.Bool(&c.Embedded, "kafka-embedded", false, "with no Kafka brokers set: run an in-process Kafka (kfake) with a ratings producer, for the demo").
		Was("JETSUITE_KAFKA_EMBEDDED", "kafka-embedded")
	b.Int(&c.EmbeddedPort, "kafka-embedded-port", 0, "port of the in-process Kafka for other Kafka clients (0: random, logged)").
		Check(func(p int) error {
			if p < 0 || p > 65535 {
				return errors.New("must be a port number, 0..65535")
			}
			return nil
		}).Was("JETSUITE_KAFKA_EMBEDDED_PORT", "kafka-embedded-port")
	b.Float(&c.RatingsPerSecond, "kafka-embedded-ratings-rate", 2, "ratings per second the embedded producer writes to the ratings topic (0: none)").
		NonNegative().Was("JETSUITE_KAFKA_EMBEDDED_RATINGS_RATE", "kafka-embedded-ratings-rate")
	b.Uint64(&c.RatingsSeed, "kafka-embedded-ratings-seed", 1, "seed of the embedded ratings producer").
		Was("JETSUITE_KAFKA_EMBEDDED_RATINGS_SEED", "kafka-embedded-ratings-seed")
	b.String(&c.EmbeddedDir, "kafka-embedded-dir", filepath.Join("data", "kafka-embedded"), "where the in-process Kafka keeps its topics and offsets (empty: memory only; a restart then reuses offsets, and record ids, that JetStream has already seen)").
		Was("JETSUITE_KAFKA_EMBEDDED_DIR", "kafka-embedded-dir")
}

// Spec describes the bridge to the jetsuite binary.
func Spec() runner.Spec {
	return runner.Spec{
		Name:    serviceName,
		Summary: "Kafka <-> JetStream bridge (franz-go): topics into subjects, streams into topics",
		InAll:   false, // it needs Kafka brokers, or the embedded Kafka for the demo
		Bind: func(b runner.Binder) func(runner.Deps) (runner.Service, error) {
			var c Config
			c.Bind(b)
			return func(d runner.Deps) (runner.Service, error) {
				return New(c, d)
			}
		},
	}
}

// Service is a running bridge.
type Service struct {
	cfg    Config
	js     jetstream.JetStream
	log    *slog.Logger
	health *obs.Health
	deps   runner.Deps
	from   []route
	to     []route
	keys   map[string]string
	// maxPayload is the NATS server's message size limit.
	maxPayload int

	// Ready is set once every direction has started (consumer joined, durable consumers made).
	ready *obs.ReadyFlag
	// brokers is what the bridge talks to (Config.Brokers, or the embedded cluster's address).
	brokers chan []string
}

// route maps a source name to a destination name.
type route struct{ from, to string }

// New validates the configuration and returns the service.
func New(c Config, d runner.Deps) (*Service, error) {
	def := DefaultConfig()
	if c.Batch <= 0 {
		c.Batch = def.Batch
	}
	if c.FetchMaxBytes <= 0 {
		c.FetchMaxBytes = def.FetchMaxBytes
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = def.AckTimeout
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = def.SessionTimeout
	}
	if c.Group == "" {
		c.Group = def.Group
	}
	if c.DurablePrefix == "" {
		c.DurablePrefix = def.DurablePrefix
	}
	switch c.Start {
	case "", "earliest", "latest":
	default:
		return nil, fmt.Errorf("bridge: JETSUITE_BRIDGE_START must be earliest or latest, not %q", c.Start)
	}
	if len(c.Brokers) == 0 && !c.Embedded {
		return nil, errors.New("bridge: JETSUITE_BRIDGE_KAFKA_BROKERS is empty (set it, or JETSUITE_BRIDGE_KAFKA_EMBEDDED=true for an in-process Kafka)")
	}
	if d.JS == nil {
		return nil, errors.New("bridge: no JetStream connection")
	}
	// Settings left at the built-in pipeline's defaults follow the pipeline that runs.
	if d.Plan != nil {
		demo := plan.Demo()
		follow := func(v *[]string, of func(*plan.Plan) []string) {
			if slices.Equal(*v, of(demo)) {
				*v = of(d.Plan)
			}
		}
		follow(&c.FromKafka, FromKafkaOf)
		follow(&c.ToKafka, ToKafkaOf)
		follow(&c.KeyFields, KeyFieldsOf)
	}
	from, err := parseRoutes(c.FromKafka)
	if err != nil {
		return nil, fmt.Errorf("bridge: JETSUITE_BRIDGE_FROM_KAFKA: %w", err)
	}
	to, err := parseRoutes(c.ToKafka)
	if err != nil {
		return nil, fmt.Errorf("bridge: JETSUITE_BRIDGE_TO_KAFKA: %w", err)
	}
	keys, err := parseRoutes(c.KeyFields)
	if err != nil {
		return nil, fmt.Errorf("bridge: JETSUITE_BRIDGE_KEY_FIELDS: %w", err)
	}
	s := &Service{cfg: c, js: d.JS, log: d.Logger("bridge"), health: d.Health, deps: d, from: from, to: to,
		keys: map[string]string{}, ready: obs.NewReadyFlag("bridge starting"), brokers: make(chan []string, 1)}
	for _, k := range keys {
		if k.from == k.to {
			return nil, fmt.Errorf("bridge: JETSUITE_BRIDGE_KEY_FIELDS: %q needs the form STREAM=FIELD", k.from)
		}
		s.keys[k.from] = k.to
	}
	if d.NC != nil {
		s.maxPayload = int(d.NC.MaxPayload())
	}
	if d.Health != nil {
		d.Health.Register("bridge", s.ready.Check)
	}
	return s, nil
}

// parseRoutes parses "a" (a to a) and "a=b" items; duplicates are refused.
func parseRoutes(items []string) ([]route, error) {
	var out []route
	seen := map[string]bool{}
	for _, it := range items {
		from, to, found := strings.Cut(it, "=")
		from, to = strings.TrimSpace(from), strings.TrimSpace(to)
		if !found {
			to = from
		}
		if from == "" || to == "" {
			return nil, fmt.Errorf("bad item %q (want name or name=target)", it)
		}
		if seen[from] {
			return nil, fmt.Errorf("%q is listed twice", from)
		}
		seen[from] = true
		out = append(out, route{from, to})
	}
	return out, nil
}

// Name implements runner.Service.
func (s *Service) Name() string { return "bridge" }

// Brokers returns the Kafka brokers the bridge uses once it has started (the embedded cluster's
// address in embedded mode).
func (s *Service) Brokers(ctx context.Context) ([]string, error) {
	select {
	case b := <-s.brokers:
		s.brokers <- b
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Run bridges until ctx ends; in-flight batches finish (and are committed or acked) first.
func (s *Service) Run(ctx context.Context) error {
	brokers := s.cfg.Brokers
	g, ctx := errgroup.WithContext(ctx)
	if len(brokers) == 0 {
		emb, err := startEmbedded(s.cfg, s.log)
		if err != nil {
			return err
		}
		defer emb.Close()
		brokers = emb.ListenAddrs()
		if s.cfg.RatingsPerSecond > 0 {
			g.Go(func() error { return produceRatings(ctx, brokers, s.cfg, s.log) })
		}
	}
	s.brokers <- brokers
	started := make(chan struct{}, 2)
	if len(s.from) > 0 {
		in, err := newInbound(s, brokers)
		if err != nil {
			return err
		}
		g.Go(func() error { return in.run(ctx, started) })
	} else {
		started <- struct{}{}
	}
	if len(s.to) > 0 {
		out, err := newOutbound(s, brokers)
		if err != nil {
			return err
		}
		g.Go(func() error { return out.run(ctx, started) })
	} else {
		started <- struct{}{}
	}
	g.Go(func() error {
		for range 2 {
			select {
			case <-started:
			case <-ctx.Done():
				return nil
			}
		}
		s.ready.Set()
		s.log.Info("bridge running", "brokers", brokers, "from_kafka", len(s.from), "to_kafka", len(s.to))
		return nil
	})
	return g.Wait()
}

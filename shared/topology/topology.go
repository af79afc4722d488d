// Package topology is how jetsuite declares JetStream streams and KV buckets (Catalog.Ensure),
// the names of the built-in pipelines' streams and tables (constants other packages and tests
// use), and the operational streams and state buckets every pipeline needs (Operations). What
// a pipeline declares comes from its plan (shared/plan: Plan.Catalog); the constants here are
// the names the built-in demo files give their objects, checked against them by plan's tests.
package topology

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream is a JetStream stream.
type Stream struct {
	Name        string
	Subjects    []string
	Description string
	// MaxAge bounds retention (0: keep until limits). Sources keep a week by default.
	MaxAge time.Duration
	// MaxBytes bounds the stream's size: when a message would take it past the limit, the
	// oldest messages are removed (DiscardOld), read or not. 0: Options.StreamMaxBytes;
	// NoLimit: none.
	MaxBytes int64
	// Duplicates is the Nats-Msg-Id de-duplication window (0: Options.DerivedDedupWindow for
	// a Derived stream, else Options.DedupWindow).
	Duplicates time.Duration
	// Derived marks a stream that one jetsuite processor alone writes, as an Ordered output
	// of shared/flow (a CREATE STREAM ... AS SELECT). Its outputs are chained with
	// Nats-Expected-Last-Msg-Id and a restarted processor resumes after the stream's own
	// newest message, so a copy of an output is refused or skipped without the server
	// remembering its id for long: a short window does (see DefaultDerivedDedupWindow).
	Derived bool
}

// Bucket is a KV bucket that materialises a table.
type Bucket struct {
	Name        string
	Description string
	// TTL expires rows (ksqlDB's window retention); 0 keeps them.
	TTL time.Duration
	// MaxBytes bounds the bucket's size (0: Options.BucketMaxBytes; NoLimit: none). What a
	// full bucket does depends on Windowed: see EnsureBucket.
	MaxBytes int64
	// Windowed buckets hold one row per key and window (keys "<key>.<window start ms>").
	Windowed bool
	// State marks a bucket that holds a service's own bookkeeping (checkpoints, windows in
	// progress, sent alerts), not a table: nothing indexes or shows it as data.
	State bool
}

// Catalog is the whole topology.
type Catalog struct {
	Streams []Stream
	Buckets []Bucket
}

// NoLimit, as a MaxBytes, lifts the byte limit (JetStream's -1).
const NoLimit = -1

// DefaultDedupWindow is how long JetStream remembers Nats-Msg-Ids of streams others write
// (sources) unless Options say otherwise. It must outlast the time between a publish and its
// retry by a publisher outside jetsuite: the Kafka bridge replays its uncommitted batch after
// its session timeout (15 s) and a restart, k6 and Debezium Server retry within seconds.
// jetsuite's own generator does not need it: it continues after the newest message it finds.
// The server keeps every id of the window in memory, about 150 bytes each, and the collector
// scans them all on every cycle: at 20,000 msgs/s a 30 s window holds ~90 MB per stream, a
// 2-minute one (the default before) ~360 MB, more than the whole memory budget of `jetsuite
// all`; under that budget a 1-minute window cut what `all --rate 20000` processes to a third of
// what it processes with 30 s (docs/FOOTPRINT.md). 30 s is twice the bridge's session timeout.
const DefaultDedupWindow = 30 * time.Second

// DefaultDerivedDedupWindow is the Nats-Msg-Id window of Derived streams. Their chain already
// refuses every copy but one: the first output of a session into an empty stream carries no
// Nats-Expected-Last-Msg-Id, so a copy of it republished after a lost ack is caught by the
// window alone. shared/flow republishes unconfirmed outputs after its publish timeout (5 s by
// default, --enricher-publish-timeout), so twice that covers the first republish with room to
// spare; across restarts the processor resumes after the stream's newest message instead.
const DefaultDerivedDedupWindow = 10 * time.Second

// DefaultStreamMaxBytes and DefaultBucketMaxBytes bound every stream and bucket that sets no
// limit of its own. With the built-in pipelines' 18 streams and 17 buckets that is
// 18 x 128 MiB + 17 x 64 MiB = 3,392 MiB at most on disk (per replica), which fits a NATS
// server's max_file_store of 4 GB (compose/nats); JetStream reserves the sum when the streams
// are created, so it must fit.
const (
	DefaultStreamMaxBytes int64 = 128 << 20
	DefaultBucketMaxBytes int64 = 64 << 20
)

// Options are how Ensure declares streams and buckets. The zero value is a single-node
// deployment: file storage, 1 replica, the default windows and limits.
type Options struct {
	// Storage is file or memory storage for everything Ensure creates (tests may use memory).
	Storage jetstream.StorageType
	// Replicas is the replication factor (3 on a 3-node cluster); 0 means 1.
	Replicas int
	// DedupWindow is the Nats-Msg-Id window of streams that set none; 0 means DefaultDedupWindow.
	DedupWindow time.Duration
	// DerivedDedupWindow is the window of Derived streams that set none; 0 means
	// DefaultDerivedDedupWindow.
	DerivedDedupWindow time.Duration
	// StreamMaxBytes bounds streams that set no MaxBytes; 0 means DefaultStreamMaxBytes,
	// NoLimit none.
	StreamMaxBytes int64
	// BucketMaxBytes bounds buckets that set no MaxBytes; 0 means DefaultBucketMaxBytes,
	// NoLimit none.
	BucketMaxBytes int64
}

func (o Options) replicas() int { return max(o.Replicas, 1) }

func (o Options) dedupWindow(derived bool) time.Duration {
	switch {
	case derived && o.DerivedDedupWindow > 0:
		return o.DerivedDedupWindow
	case derived:
		return DefaultDerivedDedupWindow
	case o.DedupWindow > 0:
		return o.DedupWindow
	}
	return DefaultDedupWindow
}

// limit resolves a byte limit: own, else the option, else the default; NoLimit (or any
// negative value) is JetStream's -1.
func limit(own, option, def int64) int64 {
	n := own
	if n == 0 {
		n = option
	}
	if n == 0 {
		n = def
	}
	if n < 0 {
		return NoLimit
	}
	return n
}

// Ensure creates or updates every stream and bucket of the catalog.
func (c Catalog) Ensure(ctx context.Context, js jetstream.JetStream, o Options) error {
	for _, s := range c.Streams {
		if err := EnsureStream(ctx, js, s, o); err != nil {
			return err
		}
	}
	for _, b := range c.Buckets {
		if _, err := EnsureBucket(ctx, js, b, o); err != nil {
			return err
		}
	}
	return nil
}

// StreamConfig is the JetStream configuration Ensure gives s: its limits resolved against o.
// A stream at its byte limit removes its oldest messages to make room (DiscardOld): a
// consumer that had not read them yet skips them.
func (o Options) StreamConfig(s Stream) jetstream.StreamConfig {
	dup := s.Duplicates
	if dup == 0 {
		dup = o.dedupWindow(s.Derived)
	}
	if s.MaxAge > 0 && dup > s.MaxAge {
		dup = s.MaxAge
	}
	return jetstream.StreamConfig{
		Name:        s.Name,
		Subjects:    s.Subjects,
		Description: s.Description,
		Storage:     o.Storage,
		Replicas:    o.replicas(),
		MaxAge:      s.MaxAge,
		MaxBytes:    limit(s.MaxBytes, o.StreamMaxBytes, DefaultStreamMaxBytes),
		Duplicates:  dup,
		Discard:     jetstream.DiscardOld,
	}
}

// BucketLimit is the byte limit Ensure gives b (NoLimit: none).
func (o Options) BucketLimit(b Bucket) int64 {
	return limit(b.MaxBytes, o.BucketMaxBytes, DefaultBucketMaxBytes)
}

// EnsureStream creates or updates one stream.
func EnsureStream(ctx context.Context, js jetstream.JetStream, s Stream, o Options) error {
	if _, err := js.CreateOrUpdateStream(ctx, o.StreamConfig(s)); err != nil {
		return fmt.Errorf("stream %s: %w", s.Name, err)
	}
	return nil
}

// EnsureBucket creates or updates one KV bucket.
//
// What a bucket does at its byte limit depends on what it holds. A windowed table's bucket
// removes its oldest rows (DiscardOld): the limit is a second retention next to the window
// retention, as Kafka Streams' windowed changelog topics (cleanup.policy compact,delete) are
// trimmed by retention.bytes. Every other bucket (tables without windows, state) keeps the KV
// default, DiscardNew: a put of a new key that does not fit is refused ("maximum bytes
// exceeded"), while a row that replaces one of its key at no larger size still fits. The
// writer (shared/flow) then resumes from its checkpoint with a backoff, logging why, until
// there is room: the table stalls visibly rather than losing rows silently.
func EnsureBucket(ctx context.Context, js jetstream.JetStream, b Bucket, o Options) (jetstream.KeyValue, error) {
	maxBytes := o.BucketLimit(b)
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.Name,
		Description: b.Description,
		TTL:         b.TTL,
		History:     1,
		MaxBytes:    maxBytes,
		Storage:     o.Storage,
		Replicas:    o.replicas(),
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", b.Name, err)
	}
	if b.Windowed && maxBytes > 0 {
		// nats.go declares every bucket DiscardNew (on every update too); a windowed table's
		// bucket drops its oldest windows instead.
		if err := discardOld(ctx, js, BucketStream(b.Name)); err != nil {
			return nil, fmt.Errorf("bucket %s: %w", b.Name, err)
		}
	}
	return kv, nil
}

// discardOld switches a stream to DiscardOld.
func discardOld(ctx context.Context, js jetstream.JetStream, name string) error {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return err
	}
	cfg := s.CachedInfo().Config
	if cfg.Discard == jetstream.DiscardOld {
		return nil
	}
	cfg.Discard = jetstream.DiscardOld
	_, err = js.UpdateStream(ctx, cfg)
	return err
}

// BucketStream is the name of the stream that holds a KV bucket.
func BucketStream(bucket string) string { return "KV_" + bucket }

// Reserved is the disk (or, with memory storage, memory) the catalog may take at most per
// server: the sum of its byte limits. JetStream reserves it when the streams are created, so
// a server's store limit must be at least this. unbounded reports a stream or bucket with no
// byte limit (then Reserved says nothing about it).
func (c Catalog) Reserved(o Options) (bytes int64, unbounded bool) {
	add := func(n int64) {
		if n < 0 {
			unbounded = true
			return
		}
		bytes += n
	}
	for _, s := range c.Streams {
		add(o.StreamConfig(s).MaxBytes)
	}
	for _, b := range c.Buckets {
		add(o.BucketLimit(b))
	}
	return bytes, unbounded
}

// Stream returns the declared stream with the given name.
func (c Catalog) Stream(name string) (Stream, error) {
	for _, s := range c.Streams {
		if s.Name == name {
			return s, nil
		}
	}
	return Stream{}, fmt.Errorf("topology: no stream %q", name)
}

// Bucket returns the declared bucket with the given name.
func (c Catalog) Bucket(name string) (Bucket, error) {
	for _, b := range c.Buckets {
		if b.Name == name {
			return b, nil
		}
	}
	return Bucket{}, fmt.Errorf("topology: no bucket %q", name)
}

// KVSubject is the subject a KV put or delete for key in bucket is published on. Publishing
// there asynchronously (instead of kv.Put, one round trip each) is how batch writers flush.
func KVSubject(bucket, key string) string { return "$KV." + bucket + "." + key }

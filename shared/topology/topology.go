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
	// Duplicates is the Nats-Msg-Id de-duplication window (0: Options.DedupWindow).
	Duplicates time.Duration
}

// Bucket is a KV bucket that materialises a table.
type Bucket struct {
	Name        string
	Description string
	// TTL expires rows (ksqlDB's window retention); 0 keeps them.
	TTL time.Duration
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

// DefaultDedupWindow is how long JetStream remembers Nats-Msg-Ids unless Options say otherwise.
// It must outlast the longest time between a publish and its retry (an ack wait plus a
// restart); the server keeps every id of the window in memory, about 140 bytes each, so at
// 10,000 msgs/s a 2-minute window costs ~170 MB per stream.
const DefaultDedupWindow = 2 * time.Minute

// Options are how Ensure declares streams and buckets. The zero value is a single-node
// deployment: file storage, 1 replica, DefaultDedupWindow.
type Options struct {
	// Storage is file or memory storage for everything Ensure creates (tests may use memory).
	Storage jetstream.StorageType
	// Replicas is the replication factor (3 on a 3-node cluster); 0 means 1.
	Replicas int
	// DedupWindow is the Nats-Msg-Id window of streams that set none; 0 means DefaultDedupWindow.
	DedupWindow time.Duration
}

func (o Options) replicas() int { return max(o.Replicas, 1) }

func (o Options) dedupWindow() time.Duration {
	if o.DedupWindow > 0 {
		return o.DedupWindow
	}
	return DefaultDedupWindow
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

// EnsureStream creates or updates one stream.
func EnsureStream(ctx context.Context, js jetstream.JetStream, s Stream, o Options) error {
	dup := s.Duplicates
	if dup == 0 {
		dup = o.dedupWindow()
	}
	if s.MaxAge > 0 && dup > s.MaxAge {
		dup = s.MaxAge
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        s.Name,
		Subjects:    s.Subjects,
		Description: s.Description,
		Storage:     o.Storage,
		Replicas:    o.replicas(),
		MaxAge:      s.MaxAge,
		Duplicates:  dup,
		Discard:     jetstream.DiscardOld,
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", s.Name, err)
	}
	return nil
}

// EnsureBucket creates or updates one KV bucket.
func EnsureBucket(ctx context.Context, js jetstream.JetStream, b Bucket, o Options) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.Name,
		Description: b.Description,
		TTL:         b.TTL,
		History:     1,
		Storage:     o.Storage,
		Replicas:    o.replicas(),
	})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", b.Name, err)
	}
	return kv, nil
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

package transform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/obs"
)

// View is an in-memory copy of a KV bucket (a ksqlDB TABLE), keyed by the KV key, kept current by
// a KV watcher: it loads the initial values until the watcher's nil marker, then applies every
// update and delete. Joins read it instead of doing a KV round trip per event.
//
// The watch channel of nats.go closes when the connection is lost and is not re-created by the
// library (nats.go #1777), so Run re-watches with ResumeFromRevision(last revision + 1) after a
// back-off; rows keep being served from memory in between.
type View[T any] struct {
	bucket string
	decode func(key string, value []byte) (T, error)
	log    *slog.Logger

	mu   sync.RWMutex
	rows map[string]T
	rev  uint64 // last revision applied

	loaded   chan struct{}
	loadOnce sync.Once
}

// NewView returns an empty view of bucket. decode turns a KV value into a row; a value it rejects
// removes the key from the view (the row is unreadable, so the join sees no row) and is counted.
func NewView[T any](bucket string, decode func(key string, value []byte) (T, error), log *slog.Logger) *View[T] {
	if log == nil {
		log = slog.Default()
	}
	return &View[T]{
		bucket: bucket,
		decode: decode,
		log:    log.With("table", bucket),
		rows:   map[string]T{},
		loaded: make(chan struct{}),
	}
}

// Loaded is closed once the initial values have been loaded.
func (v *View[T]) Loaded() <-chan struct{} { return v.loaded }

// IsLoaded reports whether the initial load is complete.
func (v *View[T]) IsLoaded() bool {
	select {
	case <-v.loaded:
		return true
	default:
		return false
	}
}

// Get returns the row for key.
func (v *View[T]) Get(key string) (T, bool) {
	v.mu.RLock()
	row, ok := v.rows[key]
	v.mu.RUnlock()
	return row, ok
}

// GetBytes is Get for a key held in a byte slice (no string allocation: the compiler turns
// m[string(b)] into a lookup without a copy).
func (v *View[T]) GetBytes(key []byte) (T, bool) {
	v.mu.RLock()
	row, ok := v.rows[string(key)]
	v.mu.RUnlock()
	return row, ok
}

// Len is the number of rows.
func (v *View[T]) Len() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.rows)
}

// Revision is the last KV revision applied.
func (v *View[T]) Revision() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.rev
}

// Run watches kv until ctx ends, re-watching whenever the watch ends early.
func (v *View[T]) Run(ctx context.Context, kv jetstream.KeyValue) error {
	backoff := 100 * time.Millisecond
	for {
		err := v.watch(ctx, kv)
		if ctx.Err() != nil {
			return nil
		}
		v.log.Warn("KV watch ended, watching again", "resume_from", v.Revision()+1, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

var errWatchClosed = errors.New("watch channel closed")

func (v *View[T]) watch(ctx context.Context, kv jetstream.KeyValue) error {
	var opts []jetstream.WatchOpt
	if rev := v.Revision(); rev > 0 {
		opts = append(opts, jetstream.ResumeFromRevision(rev+1))
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := kv.WatchAll(wctx, opts...)
	if err != nil {
		return fmt.Errorf("watch %s: %w", v.bucket, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errWatchClosed
			}
			if e == nil {
				// All initial values are in (after a re-watch: we caught up again).
				v.loadOnce.Do(func() {
					v.log.Info("table loaded", "rows", v.Len(), "revision", v.Revision())
					close(v.loaded)
				})
				continue
			}
			v.apply(e)
		}
	}
}

func (v *View[T]) apply(e jetstream.KeyValueEntry) {
	key := e.Key()
	var (
		row T
		err error
		del = e.Operation() != jetstream.KeyValuePut
	)
	if !del {
		if row, err = v.decode(key, e.Value()); err != nil {
			obs.Dropped.WithLabelValues(v.bucket, "undecodable_row").Inc()
			v.log.Warn("undecodable table row ignored", "key", key, "revision", e.Revision(), "err", err)
			del = true
		}
	}
	v.mu.Lock()
	if del {
		delete(v.rows, key)
	} else {
		v.rows[key] = row
	}
	if r := e.Revision(); r > v.rev {
		v.rev = r
	}
	v.mu.Unlock()
}

// WaitLoaded blocks until every view is loaded or ctx ends.
func WaitLoaded(ctx context.Context, views ...interface{ Loaded() <-chan struct{} }) error {
	for _, v := range views {
		select {
		case <-v.Loaded():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

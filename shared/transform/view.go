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
// back-off; rows keep being served from memory in between. A watch whose (ephemeral, R1)
// consumer died with its NATS node stays open and silent: nats.go recreates it only after
// missed heartbeats, 10 to 20 s later, so the view also compares its revision with the
// bucket's newest every StallCheck and re-watches when it stays behind (see watch).
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

// StallCheck is how often a view compares its revision with its bucket's newest: a watch that
// is behind at two checks in a row without applying anything in between is stalled (its
// consumer is gone) and is replaced, so a table change reaches the view within about two
// checks even when the NATS node that held the watch stopped (TestClusterNodeLoss measured 14 s
// without it). One stream info request per view and check.
var StallCheck = time.Second

// Run watches kv until ctx ends, re-watching whenever the watch ends early.
func (v *View[T]) Run(ctx context.Context, kv jetstream.KeyValue) error {
	backoff := 100 * time.Millisecond
	for {
		started := time.Now()
		err := v.watch(ctx, kv)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) > time.Minute {
			backoff = 100 * time.Millisecond // a watch that ran well: start the back-off over
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

// stalled reports a watch that stays behind its bucket (see StallCheck).
type stalled struct{ view, bucket uint64 }

func (e stalled) Error() string {
	return fmt.Sprintf("watch stalled: the bucket is at revision %d, the view at %d and not moving", e.bucket, e.view)
}

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
	check := time.NewTicker(StallCheck)
	defer check.Stop()
	behind, behindRev := false, uint64(0) // at the last check: behind the bucket, at this revision
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-check.C:
			newest, err := newestRevision(ctx, kv)
			rev := v.Revision()
			switch {
			case err != nil || newest <= rev:
				behind = false
			case behind && behindRev == rev:
				return stalled{view: rev, bucket: newest}
			default:
				behind, behindRev = true, rev
			}
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

// newestRevision is the revision of the newest entry a watch of kv would deliver (0: none): the
// bucket stream's last sequence while the stream holds messages (its newest is then there;
// when all expired, nothing is left to deliver).
func newestRevision(ctx context.Context, kv jetstream.KeyValue) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, StallCheck)
	defer cancel()
	st, err := kv.Status(ctx)
	if err != nil {
		return 0, err
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok || bs.StreamInfo() == nil || bs.StreamInfo().State.Msgs == 0 {
		return 0, nil
	}
	return bs.StreamInfo().State.LastSeq, nil
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

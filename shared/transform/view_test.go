package transform

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// stoppableKV is the real bucket, but it remembers its watchers so that the test can end one
// the way a connection loss does (the updates channel closes).
type stoppableKV struct {
	jetstream.KeyValue
	watches atomic.Int32
	last    atomic.Value // jetstream.KeyWatcher
}

func (k *stoppableKV) WatchAll(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	w, err := k.KeyValue.WatchAll(ctx, opts...)
	if err == nil {
		k.watches.Add(1)
		k.last.Store(w)
	}
	return w, err
}

func decodeText(_ string, v []byte) (string, error) {
	if string(v) == "bad" {
		return "", errors.New("bad row")
	}
	return string(v), nil
}

func TestViewLoadsUpdatesAndRewatches(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	real, err := env.JS.KeyValue(ctx, topology.TableWebUsers)
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	for i := 0; i < n; i++ {
		if _, err := real.PutString(ctx, strconv.Itoa(i), "v"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	kv := &stoppableKV{KeyValue: real}
	v := NewView(topology.TableWebUsers, decodeText, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if v.IsLoaded() {
		t.Fatal("loaded before running")
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- v.Run(rctx, kv) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-v.Loaded():
	case <-time.After(10 * time.Second):
		t.Fatal("initial load never completed")
	}
	// Loaded means every initial row is there, not some of them.
	if v.Len() != n {
		t.Fatalf("loaded with %d rows, want %d", v.Len(), n)
	}

	// Updates, deletes, purges and undecodable rows.
	mustPut := func(k, val string) {
		if _, err := real.PutString(ctx, k, val); err != nil {
			t.Fatal(err)
		}
	}
	mustPut("1", "changed")
	if err := real.Delete(ctx, "2"); err != nil {
		t.Fatal(err)
	}
	if err := real.Purge(ctx, "3"); err != nil {
		t.Fatal(err)
	}
	mustPut("4", "bad")
	eventually(t, 5*time.Second, func() bool {
		one, _ := v.Get("1")
		_, two := v.Get("2")
		_, three := v.Get("3")
		_, four := v.Get("4")
		return one == "changed" && !two && !three && !four
	}, func() string { return "updates not applied" })

	// The watch ends (as on a connection loss): the view watches again from where it was and
	// misses nothing written in between.
	kv.last.Load().(jetstream.KeyWatcher).Stop()
	mustPut("5", "after the loss")
	mustPut("new", "row")
	eventually(t, 10*time.Second, func() bool {
		five, _ := v.Get("5")
		row, _ := v.Get("new")
		return five == "after the loss" && row == "row"
	}, func() string { return "updates after the watch ended were lost" })
	if got := kv.watches.Load(); got < 2 {
		t.Errorf("%d watches, want a second one after the first ended", got)
	}
	if got := v.Len(); got != n-3+1 {
		t.Errorf("%d rows, want %d", got, n-3+1)
	}
}

func eventually(t testing.TB, timeout time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// silentKV's first watch goes silent after its initial values, without closing: what a watch
// does whose consumer died with its NATS node (nats.go notices by missed heartbeats only, 10 to
// 20 s later).
type silentKV struct {
	jetstream.KeyValue
	watches atomic.Int32
}

type silentWatcher struct {
	jetstream.KeyWatcher
	out chan jetstream.KeyValueEntry
}

func (w *silentWatcher) Updates() <-chan jetstream.KeyValueEntry { return w.out }

func (k *silentKV) WatchAll(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	w, err := k.KeyValue.WatchAll(ctx, opts...)
	if err != nil || k.watches.Add(1) > 1 {
		return w, err
	}
	s := &silentWatcher{KeyWatcher: w, out: make(chan jetstream.KeyValueEntry, 64)}
	go func() {
		silent := false
		for e := range w.Updates() {
			if !silent {
				s.out <- e
			}
			silent = silent || e == nil
		}
	}()
	return s, nil
}

// TestViewRewatchesAStalledWatch: a watch that goes silent while the bucket changes is
// replaced (StallCheck), and the change reaches the view within a few seconds.
func TestViewRewatchesAStalledWatch(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	real, err := env.JS.KeyValue(ctx, topology.TableWebUsers)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := real.PutString(ctx, "a", "before"); err != nil {
		t.Fatal(err)
	}
	kv := &silentKV{KeyValue: real}
	v := NewView(topology.TableWebUsers, decodeText, slog.New(slog.NewTextHandler(io.Discard, nil)))
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- v.Run(rctx, kv) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-v.Loaded():
	case <-time.After(10 * time.Second):
		t.Fatal("initial load never completed")
	}
	// Quiet at first: a silent watch is replaced only when it misses something.
	time.Sleep(3 * StallCheck)
	if got := kv.watches.Load(); got != 1 {
		t.Fatalf("%d watches while the bucket did not change, want 1", got)
	}
	changed := time.Now()
	if _, err := real.PutString(ctx, "a", "after"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool {
		a, _ := v.Get("a")
		return a == "after"
	}, func() string { return "the change never reached the view" })
	if got := kv.watches.Load(); got != 2 {
		t.Errorf("%d watches, want 2", got)
	}
	t.Logf("the change reached the view %s after it was made", time.Since(changed).Truncate(time.Millisecond))
}

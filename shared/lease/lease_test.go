package lease_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/lease"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
)

const ttl = time.Second

// ledger records, per unit, who owned it when (from the units' own start and end), and checks
// that no two owners ever overlap.
type ledger struct {
	mu    sync.Mutex
	spans map[string][]span // by unit
	t     *testing.T
	// drain is how long a unit asked to stop gracefully takes to stop (a windower flushing).
	drain time.Duration
}

type span struct {
	owner      string
	start, end time.Time // end zero: still running
	cause      error
}

func newLedger(t *testing.T) *ledger { return &ledger{spans: map[string][]span{}, t: t} }

// unit returns a unit that records its span for owner.
func (l *ledger) unit(owner, name string) lease.Unit {
	return lease.Unit{Name: name, Run: func(ctx context.Context) error {
		l.mu.Lock()
		l.spans[name] = append(l.spans[name], span{owner: owner, start: time.Now()})
		i := len(l.spans[name]) - 1
		l.mu.Unlock()
		<-ctx.Done()
		if !errors.Is(context.Cause(ctx), lease.ErrLost) {
			time.Sleep(l.drain)
		}
		l.mu.Lock()
		l.spans[name][i].end, l.spans[name][i].cause = time.Now(), context.Cause(ctx)
		l.mu.Unlock()
		return nil
	}}
}

// owners returns the current owner of each unit ("" none) and fails on overlaps.
func (l *ledger) owners() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]string{}
	for name, ss := range l.spans {
		running := 0
		for i, s := range ss {
			if s.end.IsZero() {
				running++
				out[name] = s.owner
			}
			// The units record their own spans: a span starts after the one before it ended.
			if i > 0 && (ss[i-1].end.IsZero() || s.start.Before(ss[i-1].end)) {
				l.t.Errorf("unit %s: %s started at %s while %s still owned it (ended %s)", name, s.owner,
					s.start.Format("15:04:05.000"), ss[i-1].owner, ss[i-1].end.Format("15:04:05.000"))
			}
		}
		if running > 1 {
			l.t.Errorf("unit %s has %d owners", name, running)
		}
	}
	return out
}

type instance struct {
	name   string
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, js jetstream.JetStream, l *ledger, name string, units []string) *instance {
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{name: name, cancel: cancel, done: make(chan error, 1)}
	var us []lease.Unit
	for _, u := range units {
		us = append(us, l.unit(name, u))
	}
	go func() {
		in.done <- lease.Run(ctx, js, lease.Options{Group: "svc", Instance: name, TTL: ttl, Bucket: "LEASES_TEST"}, us)
	}()
	t.Cleanup(func() { cancel(); <-in.done })
	return in
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func counts(owners map[string]string) map[string]int {
	c := map[string]int{}
	for _, o := range owners {
		c[o]++
	}
	return c
}

// balanced: every unit owned, by the given instances only, each owning n/len or one more.
func balanced(owners map[string]string, units []string, instances ...string) bool {
	if len(owners) != len(units) {
		return false
	}
	c := counts(owners)
	lo := len(units) / len(instances)
	for o, n := range c {
		if !slices.Contains(instances, o) || n < lo || n > lo+1 {
			return false
		}
	}
	return len(c) == min(len(instances), len(units))
}

func bucket(t *testing.T) (*natstest.Env, jetstream.JetStream) {
	env := natstest.Start(t)
	_, js := env.Connect(t)
	if _, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "LEASES_TEST", TTL: ttl}); err != nil {
		t.Fatal(err)
	}
	return env, js
}

func TestUnitsSharedAndHandedOver(t *testing.T) {
	env, js := bucket(t)
	units := []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6"}
	l := newLedger(t)
	a := start(t, js, l, "a", units)
	waitFor(t, "a owning every unit", func() bool { return balanced(l.owners(), units, "a") })

	// Two more join: the units spread, handed over gracefully (not lost).
	_, jsB := env.Connect(t)
	start(t, jsB, l, "b", units)
	_, jsC := env.Connect(t)
	start(t, jsC, l, "c", units)
	waitFor(t, "units spread over a, b and c", func() bool { return balanced(l.owners(), units, "a", "b", "c") })

	// a stops: its units move to b and c.
	a.cancel()
	if err := <-a.done; err != nil {
		t.Fatalf("a: %v", err)
	}
	a.done <- nil // for the cleanup
	took := time.Now()
	waitFor(t, "a's units on b and c", func() bool { return balanced(l.owners(), units, "b", "c") })
	t.Logf("a stopped: its units served again after %s", time.Since(took).Round(time.Millisecond))
	l.noneLost()
}

// noneLost fails the test for every unit that was stopped because its lease was lost (rather
// than handed over).
func (l *ledger) noneLost() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, ss := range l.spans {
		for _, s := range ss {
			if errors.Is(s.cause, lease.ErrLost) {
				l.t.Errorf("unit %s of %s was lost, not handed over", name, s.owner)
			}
		}
	}
}

// A dead or cut-off instance stops its units itself (ErrLost) before its leases expire and
// another instance takes them.
func TestCutOffInstanceFenced(t *testing.T) {
	env, js := bucket(t)
	units := []string{"p0", "p1", "p2", "p3"}
	l := newLedger(t)
	ncA, jsA := env.Connect(t)
	start(t, jsA, l, "a", units)
	start(t, js, l, "b", units)
	waitFor(t, "units spread over a and b", func() bool { return balanced(l.owners(), units, "a", "b") })

	ncA.Close() // a can no longer renew: as if the network dropped it
	cut := time.Now()
	waitFor(t, "every unit on b", func() bool { return balanced(l.owners(), units, "b") })
	t.Logf("a cut off: its units served by b after %s", time.Since(cut).Round(time.Millisecond))

	l.mu.Lock()
	defer l.mu.Unlock()
	lost := 0
	for name, ss := range l.spans {
		for i, s := range ss {
			if s.owner != "a" || s.end.IsZero() || s.end.Before(cut) {
				continue
			}
			if !errors.Is(s.cause, lease.ErrLost) {
				t.Errorf("unit %s on a stopped with %v, want lease.ErrLost", name, s.cause)
			}
			lost++
			if i+1 < len(ss) {
				gap := ss[i+1].start.Sub(s.end)
				t.Logf("unit %s: a stopped %s before b started", name, gap.Round(time.Millisecond))
			}
		}
	}
	if lost != 2 {
		t.Errorf("%d units of a stopped by the fence, want 2", lost)
	}
}

func TestAssign(t *testing.T) {
	units := []string{"a", "b", "c", "d", "e"}
	members := []string{"m1", "m2"}
	got := fmt.Sprint(lease.Assign(units, members, "m1"), lease.Assign(units, members, "m2"), lease.Assign(units, members, "m3"))
	want := "map[a:true c:true e:true] map[b:true d:true] map[]"
	if got != want {
		t.Fatalf("Assign: %s, want %s", got, want)
	}
}

func TestOptionsValidated(t *testing.T) {
	_, js := bucket(t)
	for _, o := range []lease.Options{{}, {Group: "a.b"}, {Group: "g", TTL: time.Millisecond}} {
		if err := lease.Run(context.Background(), js, o, nil); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	u := lease.Unit{Name: "x", Run: func(context.Context) error { return nil }}
	if err := lease.Run(context.Background(), js, lease.Options{Group: "g", Bucket: "LEASES_TEST"}, []lease.Unit{u, u}); err == nil {
		t.Error("a unit declared twice accepted")
	}
}

// TestUnitRestartedAfterTransientError: a unit whose Run ends on a NATS error that passes (a
// request that timed out while a cluster node stopped) runs again, its lease still held, and
// the group goes on; a unit that fails otherwise stops the group with its error.
func TestUnitRestartedAfterTransientError(t *testing.T) {
	_, js := bucket(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	runs := map[string]int{}
	run := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		runs[name]++
		return runs[name]
	}
	runsOf := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		return runs[name]
	}
	flaky := lease.Unit{Name: "flaky", Run: func(ctx context.Context) error {
		if run("flaky") < 3 {
			return fmt.Errorf("stream info: %w", context.DeadlineExceeded)
		}
		<-ctx.Done()
		return nil
	}}
	steady := lease.Unit{Name: "steady", Run: func(ctx context.Context) error {
		run("steady")
		<-ctx.Done()
		return nil
	}}
	done := make(chan error, 1)
	go func() {
		done <- lease.Run(ctx, js, lease.Options{Group: "retry", Instance: "a", TTL: ttl, Bucket: "LEASES_TEST"}, []lease.Unit{flaky, steady})
	}()
	waitFor(t, "the flaky unit's third run", func() bool { return runsOf("flaky") >= 3 })
	select {
	case err := <-done:
		t.Fatalf("the group stopped after a transient error: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if n := runsOf("steady"); n != 1 {
		t.Errorf("the other unit ran %d times, want 1 (it was stopped and started again)", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("stopped with %v", err)
	}

	boom := errors.New("boom")
	broken := lease.Unit{Name: "broken", Run: func(context.Context) error { return boom }}
	err := lease.Run(context.Background(), js, lease.Options{Group: "fatal", Instance: "a", TTL: ttl, Bucket: "LEASES_TEST"}, []lease.Unit{broken})
	if !errors.Is(err, boom) {
		t.Fatalf("a unit's own error: the group returned %v, want %v", err, boom)
	}
}

// TestReleaseKeepsRenewing: a unit handed over drains for three TTLs before it stops (a
// windower flushing under load). Its lease, and those of the instance's other units, are
// renewed meanwhile, so the new owner starts it only after it stopped, and no unit is lost or
// has two owners. (Before, the instance waited for the drain without renewing anything: its
// leases expired and b took units a was still running.)
func TestReleaseKeepsRenewing(t *testing.T) {
	env, js := bucket(t)
	units := []string{"u0", "u1", "u2", "u3"}
	l := newLedger(t)
	l.drain = 3 * ttl
	start(t, js, l, "a", units)
	waitFor(t, "a owning every unit", func() bool { return balanced(l.owners(), units, "a") })
	_, jsB := env.Connect(t)
	start(t, jsB, l, "b", units)
	waitFor(t, "units spread over a and b", func() bool { return balanced(l.owners(), units, "a", "b") })
	l.owners() // overlaps are errors
	l.noneLost()
}

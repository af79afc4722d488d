package flow_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/flow"
	"github.com/jetsuite/jetsuite/shared/lease"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// TestRetry: a handler that asks for a retry (after finishing part of a batch, or none of it)
// gets the rest again after the backoff, in order; nothing is lost or doubled. (Guarantee:
// RetryError keeps what was done and redelivers the rest in order, after After.)
func TestRetry(t *testing.T) {
	env := natstest.Start(t)
	setupStreams(t, env.JS, 0)
	const n, retries, backoff = 300, 3, 50 * time.Millisecond
	publishInputs(t, env.JS, 1, n)
	errTransient := errors.New("transient")
	points := map[uint64][]time.Time{55: nil, 120: nil, 121: nil}
	h := &handler{}
	h.before = func(ctx context.Context, in []jetstream.Msg, out *flow.Out) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		for i, m := range in {
			at, ok := points[seq(m)]
			if !ok || len(at) == retries {
				continue
			}
			points[seq(m)] = append(at, time.Now())
			for _, done := range in[:i] {
				if err := emit(out, done); err != nil {
					return err
				}
			}
			for _, done := range in[:i] {
				h.handled = append(h.handled, seq(done))
			}
			return flow.Retry(i, backoff, errTransient)
		}
		return nil
	}
	o := options(t)
	o.Batch = 10
	r := start(t, env.JS, o, h)
	waitDone(t, env.JS, n, time.Minute)
	if err := checkOutputs(readStream(t, env.JS, outStream, ""), wantOutputs(n)); err != nil {
		t.Fatal(err)
	}
	checkDeadLetters(t, env.JS, n)
	// Every input handed on exactly once (finished ones are not handed on again).
	h.mu.Lock()
	handled := slices.Clone(h.handled)
	h.mu.Unlock()
	for i, s := range handled {
		if s != uint64(i+1) {
			t.Fatalf("handled[%d] = %d: finished inputs were handed on again or inputs skipped", i, s)
		}
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	for p, at := range points {
		if len(at) != retries {
			t.Fatalf("input %d retried %d times, want %d", p, len(at), retries)
		}
		for i := 1; i < len(at); i++ {
			if gap := at[i].Sub(at[i-1]); gap < backoff {
				t.Fatalf("input %d retried after %s, want at least %s", p, gap, backoff)
			}
		}
	}
}

// stopAt returns a before-hook that, on the batch holding input seq, handles it and returns
// result (ErrStop or a fatal error), or, when emitFirst is false, returns result at once.
func stopAt(h *handler, seqAt uint64, emitFirst bool, result error, batchEnd *uint64) func(context.Context, []jetstream.Msg, *flow.Out) error {
	return func(ctx context.Context, in []jetstream.Msg, out *flow.Out) error {
		if len(in) == 0 || seq(in[len(in)-1]) < seqAt {
			return nil
		}
		*batchEnd = seq(in[len(in)-1])
		if emitFirst {
			h.mu.Lock()
			for _, m := range in {
				h.handled = append(h.handled, seq(m))
			}
			h.mu.Unlock()
			for _, m := range in {
				if err := emit(out, m); err != nil {
					return err
				}
			}
		}
		return result
	}
}

// TestErrStop: ErrStop ends Run without an error, once the batch's outputs are durable and
// checkpointed; nothing after it is handled. (Guarantee: ErrStop stops Run cleanly.)
func TestErrStop(t *testing.T) {
	env := natstest.Start(t)
	setupStreams(t, env.JS, 0)
	const n = 1000
	publishInputs(t, env.JS, 1, n)
	var end uint64
	h := &handler{}
	h.before = stopAt(h, 300, true, flow.ErrStop, &end)
	r := start(t, env.JS, options(t), h)
	if err := r.wait(t, time.Minute); err != nil {
		t.Fatalf("Run returned %v after ErrStop", err)
	}
	// No waiting: Run returned, so the outputs are durable and the checkpoint written.
	if err := checkOutputs(readStream(t, env.JS, outStream, ""), wantOutputs(end)); err != nil {
		t.Fatal(err)
	}
	if cp, err := checkpointOf(env.JS); err != nil || cp != end {
		t.Fatalf("checkpoint %d (%v), want %d", cp, err, end)
	}
	if last := h.lastHandled(); last != end {
		t.Fatalf("handled up to %d after ErrStop at %d", last, end)
	}
}

// TestHandlerError: any other error stops Run with that error; the failed batch is neither
// checkpointed nor acked. (Guarantee: a plain error is fatal.)
func TestHandlerError(t *testing.T) {
	env := natstest.Start(t)
	setupStreams(t, env.JS, 0)
	const n = 1000
	publishInputs(t, env.JS, 1, n)
	errBoom := errors.New("boom")
	var end uint64
	h := &handler{}
	h.before = stopAt(h, 300, false, errBoom, &end)
	r := start(t, env.JS, options(t), h)
	err := r.wait(t, time.Minute)
	if !errors.Is(err, errBoom) {
		t.Fatalf("Run returned %v, want %v", err, errBoom)
	}
	last := h.lastHandled() // the end of the batch before the failed one
	if last >= 300 || last == 0 {
		t.Fatalf("handled up to %d", last)
	}
	if cp, err := checkpointOf(env.JS); err != nil || cp != last {
		t.Fatalf("checkpoint %d (%v), want %d", cp, err, last)
	}
	if err := checkOutputs(readStream(t, env.JS, outStream, ""), wantOutputs(last)); err != nil {
		t.Fatal(err)
	}
	waitAckFloor(t, env.JS, last, false)
}

// TestGracefulStopAndRestart: cancelling Run finishes the batches handed to the handler (the
// checkpoint is exactly the last input handled; nothing pending on the consumer) and a restart
// continues at once from there. (Guarantees: no stall on a graceful stop; resume.)
func TestGracefulStopAndRestart(t *testing.T) {
	env := natstest.Start(t)
	setupStreams(t, env.JS, 0)
	const n = 5000
	publishInputs(t, env.JS, 1, n)
	reached := make(chan struct{})
	fired := false
	h1 := &handler{before: func(ctx context.Context, in []jetstream.Msg, out *flow.Out) error {
		if !fired && len(in) > 0 && seq(in[len(in)-1]) >= 2500 {
			fired = true
			close(reached)
		}
		return nil
	}}
	o := options(t)
	o.Batch = 50
	o.InFlight = 2
	r1 := start(t, env.JS, o, h1)
	select {
	case <-reached:
	case <-time.After(time.Minute):
		t.Fatal("the handler never reached input 2500")
	}
	if err := r1.stop(t); err != nil {
		t.Fatal(err)
	}
	last := h1.lastHandled()
	if last >= n {
		t.Fatal("the stop was not in the middle")
	}
	if cp, err := checkpointOf(env.JS); err != nil || cp != last {
		t.Fatalf("checkpoint %d (%v) after a graceful stop, want %d (the last input handled)", cp, err, last)
	}
	if err := checkOutputs(readStream(t, env.JS, outStream, ""), wantOutputs(last)); err != nil {
		t.Fatal(err)
	}
	// Handled inputs acked (fetched-but-unhandled ones stay pending until the restart
	// recreates the consumer).
	waitAckFloor(t, env.JS, last, false)

	restarted := time.Now()
	h2 := &handler{}
	r2 := start(t, env.JS, o, h2)
	waitDone(t, env.JS, n, ackWait/4)
	if took := time.Since(restarted); took > ackWait/4 {
		t.Fatalf("the restart took %s", took)
	}
	if first := h2.firstHandled(); first != last+1 {
		t.Fatalf("restart began at %d, want %d", first, last+1)
	}
	if err := checkOutputs(readStream(t, env.JS, outStream, ""), wantOutputs(n)); err != nil {
		t.Fatal(err)
	}
	checkDeadLetters(t, env.JS, n)
	waitAcked(t, env.JS, n)
	if err := r2.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestInFlight: with several batches waiting for their outputs' acks while the next one is
// handled, outputs keep input order, also when a foreign message makes one batch's chain
// refuse. (Guarantee: order regardless of InFlight.)
func TestInFlight(t *testing.T) {
	env := natstest.Start(t)
	setupStreams(t, env.JS, 0)
	const n = 2000
	publishInputs(t, env.JS, 1, n)
	injected := false
	h := &handler{before: func(ctx context.Context, in []jetstream.Msg, out *flow.Out) error {
		if !injected && len(in) > 0 && seq(in[len(in)-1]) >= 1000 {
			injected = true
			publishForeign(t, env.JS, "foreign-mid")
		}
		return nil
	}}
	// Count every publish of an output, refused or not: the refusal must cost a few
	// republished batches, not start a cascade in which every later batch, published before
	// the one before it was repaired, is refused and republished too.
	var attempts atomic.Int64
	sub, err := env.NC.Subscribe(outSubj, func(*nats.Msg) { attempts.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	if err := env.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	o := options(t)
	o.Batch = 20 // see TestSmallBatchStall for 5
	o.InFlight = 3
	r := start(t, env.JS, o, h)
	waitDone(t, env.JS, n, time.Minute)
	outs := readStream(t, env.JS, outStream, "")
	if err := checkOutputs(outs, wantOutputs(n)); err != nil {
		t.Fatal(err)
	}
	if err := env.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = sub.Unsubscribe()
	extra := attempts.Load() - int64(len(outs))
	if extra > int64(5*o.Batch*o.InFlight) {
		t.Fatalf("%d outputs published again after one foreign message (%d stored)", extra, len(outs))
	}
	t.Logf("%d outputs published again after one foreign message", extra)
	checkDeadLetters(t, env.JS, n)
	waitAcked(t, env.JS, n)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// holdHandler is a stateful handler: it holds every batch but each k-th, and holds ticks while
// tickHold. Before each call it writes a KV "barrier" on the processor's connection and syncs
// it: everything the runtime wrote before (a checkpoint) is then stored, so it can check that
// the checkpoint and the acks are exactly what was committed.
type holdHandler struct {
	t  *testing.T
	js jetstream.JetStream // the test's connection, to read the checkpoint
	k  int

	mu        sync.Mutex
	batches   int
	tickHold  bool
	handled   uint64   // newest input handled
	want      uint64   // what must be committed: the end of the newest batch that did not hold
	committed []uint64 // Committed calls
	starts    []uint64 // Start calls
	checks    int      // barrier checks done
	retryAt   uint64   // hold the batch with this input and ask for a retry with Done 1
}

func (h *holdHandler) Start(ctx context.Context, cp uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.starts = append(h.starts, cp)
	h.handled = cp // a real stateful handler would reload its state here
	return nil
}

func (h *holdHandler) Committed(ctx context.Context, seq uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.committed = append(h.committed, seq)
}

func (h *holdHandler) Handle(ctx context.Context, in []jetstream.Msg, out *flow.Out) error {
	if err := h.check(ctx, out); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(in) == 0 {
		if h.tickHold {
			out.Hold()
		} else {
			h.want = h.handled
		}
		return nil
	}
	for _, m := range in {
		if err := emit(out, m); err != nil {
			return err
		}
	}
	h.handled = seq(in[len(in)-1])
	if h.retryAt != 0 && seq(in[0]) == h.retryAt {
		h.retryAt = 0
		out.Hold()
		return flow.Retry(1, 50*time.Millisecond, errors.New("transient"))
	}
	h.batches++
	if h.batches%h.k != 0 {
		out.Hold()
	} else {
		h.want = h.handled
	}
	return nil
}

// check syncs a barrier and compares the checkpoint, the ack floor and the Committed calls
// with what the handler let the runtime commit.
func (h *holdHandler) check(ctx context.Context, out *flow.Out) error {
	h.mu.Lock()
	h.checks++
	want := h.want
	h.mu.Unlock()
	if err := out.Put(topology.BucketCheckpoints, "flowtest-barrier", []byte("x"), ""); err != nil {
		return err
	}
	if err := out.Sync(ctx); err != nil {
		return err
	}
	if p := out.Pending(); p != 0 {
		h.t.Errorf("%d outputs pending after Sync", p)
	}
	cp, err := checkpointOf(h.js)
	if err != nil {
		return err
	}
	if cp != want {
		h.t.Errorf("checkpoint %d, want %d (the end of the newest batch that did not hold)", cp, want)
	}
	c, err := h.js.Consumer(ctx, inStream, durable)
	if err != nil {
		return err
	}
	if info, err := c.Info(ctx); err != nil {
		return err
	} else if info.AckFloor.Stream > want {
		h.t.Errorf("ack floor %d, but only %d may be acked", info.AckFloor.Stream, want)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var last uint64
	if len(h.committed) > 0 {
		last = h.committed[len(h.committed)-1]
	}
	if last != want {
		h.t.Errorf("Committed(%d), want %d", last, want)
	}
	return nil
}

func (h *holdHandler) state() (handled uint64, checks int, committed []uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.handled, h.checks, slices.Clone(h.committed)
}

// TestHoldSync: inputs of batches that hold are neither checkpointed nor acked until a later
// batch (or tick) that does not hold; then everything up to it is. Sync makes what was added
// durable. (Guarantees: Hold/Sync; inputs acked only after their effects are durable.)
func TestHoldSync(t *testing.T) {
	env := natstest.Start(t)
	setupStreams(t, env.JS, 0)
	h := &holdHandler{t: t, js: env.JS, k: 3, tickHold: true}
	o := options(t)
	o.Tick = 20 * time.Millisecond
	r := start(t, env.JS, o, h)
	// One input per batch: publish each once the one before was handled.
	for i := uint64(1); i <= 14; i++ {
		publishInputs(t, env.JS, i, i)
		waitFor(t, 30*time.Second, fmt.Sprintf("input %d handled", i), func() error {
			if got, _, _ := h.state(); got != i {
				return fmt.Errorf("handled up to %d", got)
			}
			return nil
		})
	}
	// 13 and 14 are held; let a few ticks (which hold) check that they stay uncommitted.
	_, checks, _ := h.state()
	waitFor(t, 30*time.Second, "ticks while held", func() error {
		if _, c, _ := h.state(); c < checks+3 {
			return errors.New("no ticks yet")
		}
		return nil
	})
	if _, _, committed := h.state(); !slices.Equal(committed, []uint64{3, 6, 9, 12}) {
		t.Fatalf("committed %v, want [3 6 9 12]", committed)
	}
	// A tick that does not hold commits what was held.
	h.mu.Lock()
	h.tickHold = false
	h.mu.Unlock()
	waitFor(t, 30*time.Second, "held inputs committed by a tick", func() error {
		cp, err := checkpointOf(env.JS)
		if err != nil || cp != 14 {
			return fmt.Errorf("checkpoint %d (%v)", cp, err)
		}
		return nil
	})
	waitAcked(t, env.JS, 14)
	if _, _, committed := h.state(); !slices.Equal(committed, []uint64{3, 6, 9, 12, 14}) {
		t.Fatalf("committed %v, want [3 6 9 12 14]", committed)
	}
	if err := checkOutputs(readStream(t, env.JS, outStream, ""), wantOutputs(14)); err != nil {
		t.Fatal(err)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestHoldRetry: a batch that holds and asks for a retry with Done > 0 must not commit the
// held inputs either: the next session starts from the last committed input.
func TestHoldRetry(t *testing.T) {
	env := natstest.Start(t)
	setupStreams(t, env.JS, 0)
	h := &holdHandler{t: t, js: env.JS, k: 1000, tickHold: true, retryAt: 2}
	o := options(t)
	o.Tick = 20 * time.Millisecond
	r := start(t, env.JS, o, h)
	for i := uint64(1); i <= 2; i++ {
		publishInputs(t, env.JS, i, i)
		waitFor(t, 30*time.Second, fmt.Sprintf("input %d handled", i), func() error {
			if got, _, _ := h.state(); got < i {
				return fmt.Errorf("handled up to %d", got)
			}
			return nil
		})
	}
	waitFor(t, 30*time.Second, "a second session", func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.starts) < 2 {
			return errors.New("no restart yet")
		}
		return nil
	})
	_, checks, _ := h.state()
	waitFor(t, 30*time.Second, "ticks in the second session", func() error {
		if _, c, _ := h.state(); c < checks+3 {
			return errors.New("no ticks yet")
		}
		return nil
	})
	h.mu.Lock()
	starts, committed := slices.Clone(h.starts), slices.Clone(h.committed)
	h.mu.Unlock()
	if !slices.Equal(starts, []uint64{0, 0}) || len(committed) != 0 {
		t.Fatalf("after a held batch asked for a retry: sessions started from %v, committed %v; want [0 0] and none", starts, committed)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestSmallBatchStall: with pipe.Batches on nats.go's Consume and Batch 5 (PullMaxMessages 10),
// about one run in three under -race stopped receiving in the middle of the stream until the
// pull's missed-heartbeat timeout (30 s) restarted the pull: Consume's lost-refill race, the same
// that stalled jetsuite all for 30 s. Batches now pulls with a sequential Fetch loop; six runs
// must each finish within 10 s.
func TestSmallBatchStall(t *testing.T) {
	for i := range 6 {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			env := natstest.Start(t)
			setupStreams(t, env.JS, 0)
			const n = 2000
			publishInputs(t, env.JS, 1, n)
			o := options(t)
			o.Batch = 5
			r := start(t, env.JS, o, &handler{})
			waitDone(t, env.JS, n, 10*time.Second)
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// flushCounter holds every batch in memory (as the windower does between flushes) and counts
// the final flushes.
type flushCounter struct {
	mu      sync.Mutex
	handled uint64
	flushes int
}

func (h *flushCounter) Handle(ctx context.Context, in []jetstream.Msg, out *flow.Out) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(in) > 0 {
		h.handled = seq(in[len(in)-1])
	}
	out.Hold()
	return nil
}

func (h *flushCounter) Flush(ctx context.Context, out *flow.Out) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.flushes++
	return nil
}

func (h *flushCounter) state() (uint64, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.handled, h.flushes
}

// TestLeaseLost: a processor whose context ends because its lease was lost (cause
// lease.ErrLost) stops at once: no final flush, nothing committed that was held, while a
// graceful stop flushes and commits. (Guarantee: a fenced owner writes nothing more.)
func TestLeaseLost(t *testing.T) {
	env := natstest.Start(t)
	setupStreams(t, env.JS, 0)
	publishInputs(t, env.JS, 1, 100)
	for _, lost := range []bool{true, false} {
		h := &flushCounter{}
		ctx, cancel := context.WithCancelCause(context.Background())
		done := make(chan error, 1)
		go func() { done <- flow.Run(ctx, env.JS, options(t), h) }()
		waitFor(t, 30*time.Second, "every input handled", func() error {
			if n, _ := h.state(); n != 100 {
				return fmt.Errorf("handled up to %d", n)
			}
			return nil
		})
		if lost {
			cancel(lease.ErrLost)
		} else {
			cancel(nil)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("lost=%v: %v", lost, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("lost=%v: Run did not return", lost)
		}
		_, flushes := h.state()
		cp, _ := checkpointOf(env.JS)
		switch {
		case lost && (flushes != 0 || cp != 0):
			t.Fatalf("lease lost: %d flushes, checkpoint %d; want none and 0", flushes, cp)
		case !lost && (flushes != 1 || cp != 100):
			t.Fatalf("graceful stop: %d flushes, checkpoint %d; want 1 and 100", flushes, cp)
		}
	}
}

// TestStoppedDuringResume: a processor whose context ends while it resumes (the windower's
// Resume restores state from KV) stops without an error, as it does anywhere else; a resume that
// fails on its own is fatal. (Found by the compose rehearsal: a windower whose partitions
// changed during its restore exited.)
func TestStoppedDuringResume(t *testing.T) {
	env := natstest.Start(t)
	setupStreams(t, env.JS, 0)
	o := options(t)
	entered := make(chan struct{})
	o.Resume = func(ctx context.Context) (uint64, error) {
		close(entered)
		<-ctx.Done()
		return 0, ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- flow.Run(ctx, env.JS, o, flow.HandlerFunc(func(context.Context, []jetstream.Msg, *flow.Out) error { return nil }))
	}()
	<-entered
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v after its context ended during Resume, want nil", err)
	}
	o.Resume = func(context.Context) (uint64, error) { return 0, errors.New("state unreadable") }
	if err := flow.Run(context.Background(), env.JS, o, flow.HandlerFunc(func(context.Context, []jetstream.Msg, *flow.Out) error { return nil })); err == nil || !strings.Contains(err.Error(), "state unreadable") {
		t.Fatalf("a failing Resume: %v, want its error", err)
	}
}

// TestResumeTimedOutRetried: a Resume that fails because NATS did not answer in time (a cluster
// node stopping while the windower restores its state) is tried again in the next session, and
// the processor then runs; only a failure of its own is fatal (TestStoppedDuringResume).
// (Found by TestClusterNodeLoss: a timed-out request at a unit's start stopped its service.)
func TestResumeTimedOutRetried(t *testing.T) {
	env := natstest.Start(t)
	setupStreams(t, env.JS, 0)
	publishInputs(t, env.JS, 1, 10)
	o := options(t)
	var mu sync.Mutex
	tries := 0
	o.Resume = func(context.Context) (uint64, error) {
		mu.Lock()
		defer mu.Unlock()
		if tries++; tries < 3 {
			return 0, fmt.Errorf("read progress: %w", context.DeadlineExceeded)
		}
		return 0, nil
	}
	h := &handler{}
	r := start(t, env.JS, o, h)
	waitDone(t, env.JS, 10, 30*time.Second)
	mu.Lock()
	if tries != 3 {
		t.Errorf("Resume called %d times, want 3", tries)
	}
	mu.Unlock()
	if err := r.stop(t); err != nil {
		t.Fatalf("Run returned %v", err)
	}
}

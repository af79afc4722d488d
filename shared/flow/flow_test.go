package flow_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/flow"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/testenv"
)

// TestHappyPath: every input causes its output exactly once, in input order; garbage is
// dead-lettered once; the checkpoint is the last input; the consumer has nothing pending.
// (Guarantees: exactly-once effect, order, inputs acked after their outputs are durable.)
func TestHappyPath(t *testing.T) {
	env := natstest.Start(t)
	setupStreams(t, env.JS, 0)
	const n = 5000
	publishInputs(t, env.JS, 1, n)
	h := &handler{}
	r := start(t, env.JS, options(t), h)
	waitDone(t, env.JS, n, 60*time.Second)
	waitAcked(t, env.JS, n)
	if err := checkOutputs(readStream(t, env.JS, outStream, ""), wantOutputs(n)); err != nil {
		t.Fatal(err)
	}
	checkDeadLetters(t, env.JS, n)
	if h.calls < 2 {
		t.Fatalf("%d batches for %d inputs with Batch 100", h.calls, n)
	}
	// Every input handed to the handler once, in order.
	for i, s := range h.handled {
		if s != uint64(i+1) {
			t.Fatalf("handler call %d got input %d", i, s)
		}
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// crashAt returns a before-hook that, the first time the handler gets input at or after seq,
// signals crashed's sender (the test), then waits until the processor's connection is closed
// (a SIGKILL in the middle of a batch: its outputs are published, nothing after) and fails.
func crashAt(seq uint64, closed func() bool, reached chan<- struct{}) func(context.Context, []jetstream.Msg, *flow.Out) error {
	fired := false
	return func(ctx context.Context, in []jetstream.Msg, out *flow.Out) error {
		if fired || len(in) == 0 || seqOfMsg(in[len(in)-1]) < seq {
			return nil
		}
		fired = true
		for _, m := range in {
			if err := emit(out, m); err != nil {
				return err
			}
		}
		close(reached)
		for !closed() {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
		return errors.New("killed")
	}
}

func seqOfMsg(m jetstream.Msg) uint64 { return seq(m) }

// TestCrashResumesAtOnce: the processor's connection is closed abruptly in the middle of the
// stream (outputs and acks in flight); a new instance on a new connection finishes with every
// output once and in order, at once rather than after the ack wait. (Guarantees: exactly-once
// and order across a SIGKILL; resume delivers what was in flight again at once.)
func TestCrashResumesAtOnce(t *testing.T) {
	env := natstest.Start(t)
	setupStreams(t, env.JS, 0)
	const n = 5000
	publishInputs(t, env.JS, 1, n)

	nc1, js1 := env.Connect(t)
	reached := make(chan struct{})
	o := options(t)
	o.InFlight = 2
	r1 := start(t, js1, o, &handler{before: crashAt(2000, nc1.IsClosed, reached)})
	select {
	case <-reached:
	case <-time.After(60 * time.Second):
		t.Fatal("the handler never reached input 2000")
	}
	nc1.Close()
	r1.cancel()
	_ = r1.wait(t, 60*time.Second)

	before := ours(readStream(t, env.JS, outStream, ""))
	cp, err := checkpointOf(env.JS)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) == 0 || len(before) >= len(wantOutputs(n)) {
		t.Fatalf("the crash was not in the middle: %d outputs", len(before))
	}
	if cp >= before[len(before)-1].src {
		t.Fatalf("checkpoint %d is not behind the outputs (last %s): the crash did not hit a batch in flight", cp, before[len(before)-1].id)
	}
	t.Logf("crashed with %d outputs, checkpoint %d", len(before), cp)

	_, js2 := env.Connect(t)
	restarted := time.Now()
	h2 := &handler{}
	r2 := start(t, js2, options(t), h2)
	waitDone(t, env.JS, n, ackWait/4)
	if took := time.Since(restarted); took > ackWait/4 {
		t.Fatalf("the restart took %s", took)
	}
	if err := checkOutputs(readStream(t, env.JS, outStream, ""), wantOutputs(n)); err != nil {
		t.Fatal(err)
	}
	checkDeadLetters(t, env.JS, n)
	// The new instance resumed right after the checkpoint, in order.
	if first := h2.firstHandled(); first != cp+1 {
		t.Fatalf("restart began at input %d, want %d", first, cp+1)
	}
	waitAcked(t, env.JS, n)
	if info := consumerInfo(t, env.JS); info.NumRedelivered != 0 {
		t.Fatalf("%d redelivered after the restart", info.NumRedelivered)
	}
	if err := r2.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestRestartBeyondDedupWindow: the processor dies after its outputs landed but before the
// checkpoint and ack, and restarts after OUT's de-duplication window has passed: nothing is
// stored twice, because the restart resumes from OUT's newest message. (Guarantee: exactly-once
// beyond the de-duplication window for Ordered outputs.)
func TestRestartBeyondDedupWindow(t *testing.T) {
	env := natstest.Start(t)
	const window = 100 * time.Millisecond
	setupStreams(t, env.JS, window)
	const n = 1000
	publishInputs(t, env.JS, 1, n)

	nc1, js1 := env.Connect(t)
	reached := make(chan struct{})
	o := options(t)
	fired := false
	h1 := &handler{before: func(ctx context.Context, in []jetstream.Msg, out *flow.Out) error {
		if fired || len(in) == 0 || seq(in[len(in)-1]) < 500 {
			return nil
		}
		fired = true
		for _, m := range in {
			if err := emit(out, m); err != nil {
				return err
			}
		}
		// The outputs are durable; die before the runtime checkpoints or acks.
		if err := out.Sync(ctx); err != nil {
			return err
		}
		nc1.Close()
		close(reached)
		return errors.New("killed")
	}}
	r1 := start(t, js1, o, h1)
	select {
	case <-reached:
	case <-time.After(60 * time.Second):
		t.Fatal("the handler never reached input 500")
	}
	_ = r1.wait(t, 60*time.Second)
	killed := time.Now()

	before := ours(readStream(t, env.JS, outStream, ""))
	cp, err := checkpointOf(env.JS)
	if err != nil {
		t.Fatal(err)
	}
	last := before[len(before)-1].src
	if cp >= last {
		t.Fatalf("checkpoint %d, last output %d: nothing to replay", cp, last)
	}
	t.Logf("killed with %d outputs (last from input %d), checkpoint %d", len(before), last, cp)
	// Let the de-duplication window pass (with margin: the server expires ids on a timer).
	waitFor(t, time.Minute, "de-duplication window passed", func() error {
		if time.Since(killed) < 10*window {
			return errors.New("not yet")
		}
		return nil
	})

	_, js2 := env.Connect(t)
	h2 := &handler{}
	r2 := start(t, js2, options(t), h2)
	waitDone(t, env.JS, n, time.Minute)
	if err := checkOutputs(readStream(t, env.JS, outStream, ""), wantOutputs(n)); err != nil {
		t.Fatal(err)
	}
	// The replayed inputs reached the handler again: it was the skip that kept them out.
	if first := h2.firstHandled(); first != cp+1 || cp+1 > last {
		t.Fatalf("restart began at %d, checkpoint %d, last output %d: nothing was replayed", first, cp, last)
	}
	if err := r2.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestNATSServerRestart: the NATS server stops and starts again (same data, same address) in the
// middle of the stream; the processor reconnects and finishes with every output once, in
// order. (Guarantees: order and exactly-once across a NATS restart.)
func TestNATSServerRestart(t *testing.T) {
	dir, addr := t.TempDir(), testenv.FreeAddr(t)
	env := natstest.StartAt(t, dir, addr)
	setupStreams(t, env.JS, 0)
	const n = 5000
	publishInputs(t, env.JS, 1, n)

	_, js := env.Connect(t)
	reached := make(chan struct{})
	once := false
	h := &handler{before: func(ctx context.Context, in []jetstream.Msg, out *flow.Out) error {
		if !once && len(in) > 0 && seq(in[len(in)-1]) >= 1500 {
			once = true
			close(reached)
		}
		return nil
	}}
	o := options(t)
	o.InFlight = 2
	o.PublishTimeout = time.Second
	r := start(t, js, o, h)
	select {
	case <-reached:
	case <-time.After(60 * time.Second):
		t.Fatal("the handler never reached input 1500")
	}
	env.Stop()
	env = natstest.StartAt(t, dir, addr)
	if got := len(ours(readStream(t, env.JS, outStream, ""))); got >= len(wantOutputs(n)) {
		t.Fatalf("the server restart was not in the middle: %d outputs before it", got)
	}
	waitDone(t, env.JS, n, 2*time.Minute)
	if err := checkOutputs(readStream(t, env.JS, outStream, ""), wantOutputs(n)); err != nil {
		t.Fatal(err)
	}
	checkDeadLetters(t, env.JS, n)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestNATSServerRestartAfterIdle: OUT was idle longer than its de-duplication window when the
// NATS server restarted; new input must still get through. (Guarantees: no stall, order.)
func TestNATSServerRestartAfterIdle(t *testing.T) {
	dir, addr := t.TempDir(), testenv.FreeAddr(t)
	env := natstest.StartAt(t, dir, addr)
	const window = 100 * time.Millisecond
	setupStreams(t, env.JS, window)
	publishInputs(t, env.JS, 1, 50)
	_, js := env.Connect(t)
	o := options(t)
	o.PublishTimeout = time.Second
	r := start(t, js, o, &handler{})
	waitDone(t, env.JS, 50, time.Minute)
	idle := time.Now()
	waitFor(t, time.Minute, "de-duplication window passed", func() error {
		if time.Since(idle) < 10*window {
			return errors.New("not yet")
		}
		return nil
	})
	env.Stop()
	env = natstest.StartAt(t, dir, addr)
	publishInputs(t, env.JS, 51, 100)
	waitDone(t, env.JS, 100, time.Minute)
	if err := checkOutputs(readStream(t, env.JS, outStream, ""), wantOutputs(100)); err != nil {
		t.Fatal(err)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestForeignNewestMessage: OUT's newest message comes from another writer, before the start
// (with and without a Nats-Msg-Id) and in the middle of the run; the processor chains after it
// and keeps going, its outputs in order. (Guarantee: order; the rechain after a refused
// expected-last-msg-id.)
func TestForeignNewestMessage(t *testing.T) {
	for _, foreignID := range []string{"foreign-1", ""} {
		t.Run(fmt.Sprintf("id=%q", foreignID), func(t *testing.T) {
			env := natstest.Start(t)
			setupStreams(t, env.JS, 0)
			publishForeign(t, env.JS, foreignID)
			const n = 1000
			publishInputs(t, env.JS, 1, n)
			records := &logRecords{}
			o := options(t)
			o.Log = testLogger(t, records)
			injected := false
			h := &handler{before: func(ctx context.Context, in []jetstream.Msg, out *flow.Out) error {
				if !injected && len(in) > 0 && seq(in[len(in)-1]) >= 500 {
					// The previous batch's outputs are durable (InFlight 1): the foreign
					// message becomes OUT's newest, and this batch's first output, chained
					// after the previous one, is refused.
					injected = true
					publishForeign(t, env.JS, "foreign-mid")
				}
				return nil
			}}
			r := start(t, env.JS, o, h)
			waitDone(t, env.JS, n, time.Minute)
			outs := readStream(t, env.JS, outStream, "")
			if err := checkOutputs(outs, wantOutputs(n)); err != nil {
				t.Fatal(err)
			}
			if foreign := len(outs) - len(ours(outs)); foreign != 2 {
				t.Fatalf("%d foreign messages in OUT, want 2", foreign)
			}
			if !records.has("not written by this processor") {
				t.Fatal("the mid-run foreign message did not make the processor rechain")
			}
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func publishForeign(t *testing.T, js jetstream.JetStream, id string) {
	t.Helper()
	var opts []jetstream.PublishOpt
	if id != "" {
		opts = append(opts, jetstream.WithMsgID(id))
	}
	if _, err := js.Publish(context.Background(), outSubj, []byte("foreign"), opts...); err != nil {
		t.Fatal(err)
	}
}

// TestChainedOutputsRefusedMidBatch: chained outputs ask for one ack per batch; the others
// are confirmed by it. Here OUT refuses every output past its 300th (DiscardNew at MaxMsgs):
// the refused ones were sent without an ack, so only the last output's refusal reports them.
// The processor must republish from the first refused one, in order, once OUT accepts again.
func TestChainedOutputsRefusedMidBatch(t *testing.T) {
	env := natstest.Start(t)
	setupStreams(t, env.JS, 0)
	ctx := context.Background()
	s, err := env.JS.Stream(ctx, outStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgs, cfg.Discard = 300, jetstream.DiscardNew
	if _, err := env.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	publishInputs(t, env.JS, 1, n)
	records := &logRecords{}
	o := options(t)
	o.Log = testLogger(t, records)
	r := start(t, env.JS, o, &handler{})
	waitFor(t, time.Minute, "the refusal reported", func() error {
		if !records.has("resuming from the checkpoint") {
			return errors.New("no refusal logged yet")
		}
		return nil
	})
	cfg.MaxMsgs = -1
	if _, err := env.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	waitDone(t, env.JS, n, time.Minute)
	if err := checkOutputs(readStream(t, env.JS, outStream, ""), wantOutputs(n)); err != nil {
		t.Fatal(err)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestSeq: the sequence read from the reply subject is Metadata's, for real deliveries.
func TestSeq(t *testing.T) {
	env := natstest.Start(t)
	setupStreams(t, env.JS, 0)
	publishInputs(t, env.JS, 1, 50)
	ctx := context.Background()
	c, err := env.JS.OrderedConsumer(ctx, inStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Fetch(50, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range b.Messages() {
		md, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		if got := flow.Seq(m); got != md.Sequence.Stream {
			t.Fatalf("Seq %d, Metadata says %d (reply %s)", got, md.Sequence.Stream, m.Reply())
		}
		n++
	}
	if n != 50 {
		t.Fatalf("%d messages, want 50", n)
	}
}

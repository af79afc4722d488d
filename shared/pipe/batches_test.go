package pipe_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/pipe"
	"github.com/jetsuite/jetsuite/shared/topology"
)

func publishN(t *testing.T, js jetstream.JetStream, n int) {
	t.Helper()
	for i := range n {
		if _, err := js.Publish(context.Background(), topology.SubjectClickstream, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBatchesInOrder: every message arrives once, in stream order, in batches no larger than
// asked; idle ticks call the handler with an empty batch.
func TestBatchesInOrder(t *testing.T) {
	env := natstest.Start(t)
	publishN(t, env.JS, 250)
	cons, err := pipe.ResumeConsumer(context.Background(), env.JS, topology.StreamClickstream, "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var got []uint64
	ticks := 0
	err = pipe.Batches(ctx, cons, pipe.BatchOptions{MaxMessages: 40, Tick: 50 * time.Millisecond, Ordered: true}, func(_ context.Context, b []jetstream.Msg) error {
		if len(b) > 40 {
			t.Errorf("batch of %d", len(b))
		}
		if len(b) == 0 {
			if ticks++; ticks == 2 {
				cancel()
			}
			return nil
		}
		for _, m := range b {
			md, _ := m.Metadata()
			got = append(got, md.Sequence.Stream)
		}
		pipe.AckAll(b, true)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 250 {
		t.Fatalf("got %d messages, want 250", len(got))
	}
	for i, seq := range got {
		if seq != uint64(i+1) {
			t.Fatalf("message %d has sequence %d", i, seq)
		}
	}
}

// TestBatchesDetectsLostDeliveries: when a delivery never reaches the loop (here another
// client took it; in production the client dropped it as a slow consumer after a reconnect),
// Ordered batches stop with ErrGap instead of letting a cumulative ack cover it unseen.
func TestBatchesDetectsLostDeliveries(t *testing.T) {
	env := natstest.Start(t)
	publishN(t, env.JS, 5)
	cons, err := pipe.ResumeConsumer(context.Background(), env.JS, topology.StreamClickstream, "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	// Delivery 1 goes elsewhere and is never acked.
	b, err := cons.Fetch(1)
	if err != nil {
		t.Fatal(err)
	}
	for range b.Messages() {
	}
	handled := 0
	err = pipe.Batches(context.Background(), cons, pipe.BatchOptions{Ordered: true, Tick: time.Second}, func(_ context.Context, b []jetstream.Msg) error {
		handled += len(b)
		return nil
	})
	if !errors.Is(err, pipe.ErrGap) {
		t.Fatalf("got %v, want ErrGap", err)
	}
	if handled != 0 {
		t.Errorf("%d messages after the gap were handled", handled)
	}
}

// TestBatchesRecoversFromLostPullRequest: when the server holds no pull request of the loop's
// while the client believes some are outstanding, the loop must pull again within seconds.
// nats.go's Consume gets there (v1.53-v1.55): the goroutine that sends a pull request marks a
// fetch in progress; if every outstanding message, those of the request being sent included,
// is delivered before that goroutine gets past its publish (it takes milliseconds on a busy
// shared connection), the refill check is skipped for each of them and never runs again, and
// only the missed-heartbeat check (twice the idle heartbeat) pulls again. The test makes the
// server drop the request instead (a consumer whose single waiting slot is taken; with a
// heartbeat set the server drops an overflowing request silently): same state, reproducibly.
func TestBatchesRecoversFromLostPullRequest(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	cons, err := env.JS.CreateConsumer(ctx, topology.StreamClickstream, jetstream.ConsumerConfig{
		Durable: "lost", AckPolicy: jetstream.AckExplicitPolicy, MaxWaiting: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Another client's pull request takes the only waiting slot.
	inbox := env.NC.NewInbox()
	other, err := env.NC.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	next := "$JS.API.CONSUMER.MSG.NEXT." + topology.StreamClickstream + ".lost"
	if err := env.NC.PublishRequest(next, inbox, []byte(`{"batch":1,"expires":60000000000}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the other pull request is waiting", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumWaiting == 1
	})

	running := make(chan struct{})
	got := make(chan int, 100)
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- pipe.Batches(bctx, cons, pipe.BatchOptions{MaxMessages: 10, Tick: 50 * time.Millisecond}, func(_ context.Context, b []jetstream.Msg) error {
			if len(b) == 0 {
				select {
				case <-running:
				default:
					close(running)
				}
			}
			pipe.AckAll(b, false)
			got <- len(b)
			return nil
		})
	}()
	<-running // the loop's first pull request went out (and was dropped: no room)
	if err := env.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	if info, err := cons.Info(ctx); err != nil || info.NumWaiting != 1 {
		t.Fatalf("waiting pull requests: %v %v, want only the other one", info, err)
	}

	// The first message goes to the other request, which frees the slot; the loop must pull
	// the rest. The idle heartbeat of the old default (15 s) took 30 s here.
	publishN(t, env.JS, 10)
	if _, err := other.NextMsg(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	handled := 0
	deadline := time.After(10 * time.Second)
	for handled < 9 {
		select {
		case n := <-got:
			handled += n
		case <-deadline:
			t.Fatalf("after %s the loop handled %d of 9 messages: it did not pull again", time.Since(start), handled)
		}
	}
	t.Logf("the loop pulled again after %s", time.Since(start).Round(time.Millisecond))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

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

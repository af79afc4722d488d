package jetsuite

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/services/generator"
	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/topology"
)

func dial(t *testing.T, env *natstest.Env, timeout time.Duration) *Conn {
	t.Helper()
	c, err := Dial(Options{URL: env.Server.ClientURL(), Seed: 7, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestPublishClicks(t *testing.T) {
	env := natstest.Start(t)
	c := dial(t, env, 10*time.Second)
	ctx := t.Context()

	first := seq.Load()
	b := c.PublishClicks(ctx, 100, 3, 5)
	if b.Acked != 100 || b.Failed != 0 || b.Duplicates != 0 || b.Err != "" || b.Ms <= 0 {
		t.Fatalf("batch = %+v", b)
	}
	// A second batch in the same iteration is new data, not a duplicate of the first.
	if b := c.PublishClicks(ctx, 20, 3, 5); b.Acked != 20 || b.Duplicates != 0 {
		t.Fatalf("second batch in one iteration = %+v", b)
	}
	if n, err := c.StreamMessages(ctx, topology.StreamClickstream); err != nil || n != 120 {
		t.Fatalf("CLICKSTREAM holds %d messages (%v), want 120", n, err)
	}

	// The records are the generator's own clicks, with the pipeline's headers.
	s, err := env.JS.Stream(ctx, topology.StreamClickstream)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for i := range 120 {
		m, err := s.GetMsg(ctx, uint64(i)+1)
		if err != nil {
			t.Fatal(err)
		}
		want := generator.Click(7, first+uint64(i))
		var got generator.ClickRecord
		if err := json.Unmarshal(m.Data, &got); err != nil || got != want {
			t.Fatalf("message %d = %+v (%v), want %+v", i, got, err, want)
		}
		if m.Header.Get(events.HeaderKey) != want.IP {
			t.Errorf("message %d key %q, want %q", i, m.Header.Get(events.HeaderKey), want.IP)
		}
		et, err := strconv.ParseInt(m.Header.Get(events.HeaderEventTime), 10, 64)
		if err != nil || time.Since(time.UnixMilli(et)).Abs() > time.Minute {
			t.Errorf("message %d Event-Time %q", i, m.Header.Get(events.HeaderEventTime))
		}
		id := m.Header.Get(events.HeaderMsgID)
		if ids[id] || id == "" {
			t.Errorf("message %d id %q repeated or empty", i, id)
		}
		ids[id] = true
	}
}

func TestPublishRatingsAndLag(t *testing.T) {
	env := natstest.Start(t)
	c := dial(t, env, 10*time.Second)
	ctx := t.Context()

	cons, err := env.JS.CreateConsumer(ctx, topology.StreamRatings, jetstream.ConsumerConfig{
		Durable: "probe", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	if b := c.PublishRatings(ctx, 50, 1, 0); b.Acked != 50 || b.Failed != 0 {
		t.Fatalf("batch = %+v", b)
	}
	// The server updates a consumer's pending count a moment after a publish is acked: wait
	// for it (with a deadline) rather than read it once.
	waitLag := func(want uint64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			lag, err := c.ConsumerLag(ctx, topology.StreamRatings, "probe")
			if err == nil && lag == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("lag %d (%v), want %d", lag, err, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitLag(50)
	// 30 delivered, 10 of them acked: 20 pending + 20 awaiting their ack.
	batch, err := cons.Fetch(30)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for m := range batch.Messages() {
		var r generator.RatingRecord
		if err := json.Unmarshal(m.Data(), &r); err != nil || r.RatingID == 0 {
			t.Fatalf("rating %s: %v", m.Data(), err)
		}
		if i < 10 {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
		i++
	}
	waitLag(40)
	if _, err := c.ConsumerLag(ctx, topology.StreamRatings, "nobody"); err == nil {
		t.Fatal("lag of a missing consumer: no error")
	}
}

func TestTableRowsAndSeed(t *testing.T) {
	env := natstest.Start(t)
	c := dial(t, env, 10*time.Second)
	ctx := t.Context()

	kv, err := env.JS.KeyValue(ctx, topology.TableEventsPerMin)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"1.0", "2.0", "3.0"} {
		if _, err := kv.Put(ctx, k, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := c.TableRows(ctx, topology.TableEventsPerMin); err != nil || n != 3 {
		t.Fatalf("EVENTS_PER_MIN rows %d (%v), want 3", n, err)
	}
	if n, err := c.TableRows(ctx, "NO_SUCH_TABLE"); err != nil || n != 0 {
		t.Fatalf("missing table: %d (%v), want 0", n, err)
	}

	want := int(generator.WebUserIDs) + len(generator.StatusCodes) + generator.CustomerEvents
	for range 2 {
		if n, err := c.SeedReference(ctx); err != nil || n != want {
			t.Fatalf("seeded %d (%v), want %d", n, err, want)
		}
	}
	// Fixed message ids: seeding twice stores everything once.
	for stream, n := range map[string]uint64{
		topology.StreamClickstreamUsers: generator.WebUserIDs,
		topology.StreamClickstreamCodes: uint64(len(generator.StatusCodes)),
		topology.StreamDebezium:         generator.CustomerEvents,
	} {
		if got, err := c.StreamMessages(ctx, stream); err != nil || got != n {
			t.Errorf("%s holds %d (%v), want %d", stream, got, err, n)
		}
	}
}

// Acks that never come are counted as failures, with the reason, within the timeout.
func TestPublishFailure(t *testing.T) {
	env := natstest.Start(t)
	c := dial(t, env, time.Second)
	// Without its stream, nothing acks `clickstream`: publishes get "no responders".
	if err := env.JS.DeleteStream(t.Context(), topology.StreamClickstream); err != nil {
		t.Fatal(err)
	}
	b := c.PublishClicks(t.Context(), 10, 1, 1)
	if b.Failed != 10 || b.Acked != 0 || b.Err == "" {
		t.Fatalf("batch = %+v, want 10 failures", b)
	}
	t.Log(b.Err)
}

// The server gone mid-test: the batch fails within the timeout instead of hanging.
func TestPublishServerDown(t *testing.T) {
	env := natstest.Start(t)
	c := dial(t, env, time.Second)
	env.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	b := c.PublishClicks(ctx, 10, 1, 1)
	if b.Failed != 10 || b.Acked != 0 {
		t.Fatalf("batch = %+v, want 10 failures", b)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

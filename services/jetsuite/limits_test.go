package main

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// TestLimitWatch: a processor that was delivered 10 messages of a 1 MiB stream (and acknowledged
// 5: the others are in flight), which then takes 3 MiB, has lost every message between the last
// one delivered and the oldest one left: the watch counts them once
// (jetsuite_discarded_unread_total) and says so in the log; a consumer starting with nothing
// delivered lost nothing. A bucket that refuses new keys at its limit is reported
// once when nearly full.
func TestLimitWatch(t *testing.T) {
	env := natstest.Start(t)
	js := env.JS
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const limit, size = 1 << 20, 10_000
	body := bytes.Repeat([]byte{'x'}, size)
	if err := topology.EnsureStream(ctx, js, topology.Stream{Name: "SMALL", Subjects: []string{"small"}, MaxBytes: limit}, topology.Options{}); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := js.Publish(ctx, "small", body); err != nil {
			t.Fatal(err)
		}
	}
	proc, err := js.CreateOrUpdateConsumer(ctx, "SMALL", jetstream.ConsumerConfig{Durable: "proc", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := proc.Fetch(10, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		if n++; n <= 5 {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n != 10 {
		t.Fatalf("fetched %d, want 10", n)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, "SMALL", jetstream.ConsumerConfig{Durable: "fresh", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	bucket := topology.Bucket{Name: "NEARLY_FULL", MaxBytes: limit}
	kv, err := topology.EnsureBucket(ctx, js, bucket, topology.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < limit/size*95/100; i++ {
		if _, err := kv.Put(ctx, "k"+strconv.Itoa(i), body); err != nil {
			break
		}
	}

	logs := &syncBuffer{}
	w := newLimitWatch(js, topology.Catalog{Streams: []topology.Stream{{Name: "SMALL"}}, Buckets: []topology.Bucket{bucket}}, slog.New(slog.NewTextHandler(logs, nil)))
	w.check(ctx) // sees "fresh" with nothing acknowledged and nothing lost yet
	for range 3 * limit / size {
		if _, err := js.Publish(ctx, "small", body); err != nil {
			t.Fatal(err)
		}
	}
	s, err := js.Stream(ctx, "SMALL")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := info.State.FirstSeq
	if first <= 11 {
		t.Fatalf("the stream dropped nothing the consumer had not read: first seq %d", first)
	}
	counter := obs.DiscardedUnread.WithLabelValues("SMALL", "proc")
	before := value(counter)
	w.check(ctx)
	w.check(ctx)
	if got, want := value(counter)-before, float64(first-11); got != want {
		t.Errorf("discarded unread counted %v, want %v (sequences 11..%d, once)", got, want, first-1)
	}
	if got := value(obs.DiscardedUnread.WithLabelValues("SMALL", "fresh")); got != 0 {
		t.Errorf("a consumer that had acknowledged nothing counted %v lost", got)
	}
	out := logs.String()
	if n := strings.Count(out, "the stream dropped input this consumer had not processed"); n != 1 || !strings.Contains(out, "lost="+strconv.FormatUint(first-11, 10)) {
		t.Errorf("want one warning with lost=%d:\n%s", first-11, out)
	}
	if fill := value(obs.StreamFill.WithLabelValues("SMALL")); fill < 0.9 || fill > 1 {
		t.Errorf("fill ratio of the full stream: %v", fill)
	}
	if n := strings.Count(out, "bucket nearly full"); n != 1 || !strings.Contains(out, "bucket=NEARLY_FULL") {
		t.Errorf("want one nearly-full warning for NEARLY_FULL:\n%s", out)
	}
}

// value reads a counter's or gauge's value.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return -1
	}
	if c := d.GetCounter(); c != nil {
		return c.GetValue()
	}
	return d.GetGauge().GetValue()
}

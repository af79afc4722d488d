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

// TestLimitWatch: a 1 MiB stream takes 3 MiB while consumers read it. "proc" keeps fetching:
// the server skips what was removed, and the watch counts those (between the last check's
// position and the oldest message left); "stuck" fetches nothing more and "idle" never fetched:
// everything between their position and the oldest message left is lost; "fresh", created after
// the drop with nothing read, starts at the oldest message left and lost nothing; "resumed",
// created after the drop to start after a checkpoint at 5 (as a processor resuming does), lost
// 6 up to the oldest message left. Messages delivered and not yet acknowledged when removed are
// not lost. Each loss is counted once (jetsuite_discarded_unread_total), with one
// warning per consumer. A bucket that refuses new keys at its limit is reported once when
// nearly full.
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
	consumers := map[string]jetstream.Consumer{}
	for _, name := range []string{"proc", "stuck", "idle"} {
		c, err := js.CreateOrUpdateConsumer(ctx, "SMALL", jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatal(err)
		}
		consumers[name] = c
	}
	// proc and stuck are delivered 1..10 and acknowledge only 1..5: 6..10 are in flight.
	fetch := func(name string, n int) (last uint64) {
		t.Helper()
		batch, err := consumers[name].Fetch(n, jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			md, _ := m.Metadata()
			last = md.Sequence.Stream
			if got++; md.Sequence.Stream <= 5 {
				if err := m.DoubleAck(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got != n {
			t.Fatalf("%s: fetched %d, want %d", name, got, n)
		}
		return last
	}
	fetch("proc", 10)
	fetch("stuck", 10)
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
	w.check(ctx) // the consumers' positions; nothing removed yet
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
		t.Fatalf("the stream dropped nothing the consumers had not read: first seq %d", first)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, "SMALL", jetstream.ConsumerConfig{Durable: "fresh", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	resumed, err := js.CreateOrUpdateConsumer(ctx, "SMALL", jetstream.ConsumerConfig{Durable: "resumed", AckPolicy: jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: 6})
	if err != nil {
		t.Fatal(err)
	}
	consumers["resumed"] = resumed
	if got := fetch("resumed", 1); got != first {
		t.Fatalf("resumed's first message is %d, want the oldest left, %d", got, first)
	}
	// proc goes on: the server skips to the oldest message left.
	if got := fetch("proc", 3); got != first+2 {
		t.Fatalf("proc's third message after the drop is %d, want %d", got, first+2)
	}
	counter := func(name string) float64 { return value(obs.DiscardedUnread.WithLabelValues("SMALL", name)) }
	want := map[string]float64{"proc": float64(first - 11), "stuck": float64(first - 11), "idle": float64(first - 1), "fresh": 0, "resumed": float64(first - 6)}
	before := map[string]float64{}
	for name := range want {
		before[name] = counter(name)
	}
	w.check(ctx)
	w.check(ctx)
	for name, want := range want {
		if got := counter(name) - before[name]; got != want {
			t.Errorf("%s: %v counted as dropped unread, want %v (sequences 11..%d, once)", name, got, want, first-1)
		}
	}
	out := logs.String()
	if n := strings.Count(out, "the stream dropped input this consumer had not processed"); n != 4 ||
		!strings.Contains(out, "consumer=proc lost="+strconv.FormatUint(first-11, 10)) || !strings.Contains(out, "consumer=stuck lost="+strconv.FormatUint(first-11, 10)) ||
		!strings.Contains(out, "consumer=idle lost="+strconv.FormatUint(first-1, 10)) {
		t.Errorf("want one warning each for proc and stuck (lost=%d) and idle (lost=%d):\n%s", first-11, first-1, out)
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

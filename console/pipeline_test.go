package console

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// TestGraphOf: the demo plan's graph has a node per stream, table, sink and outside connector,
// of the right kind, and an edge per input, join and sink read.
func TestGraphOf(t *testing.T) {
	p := plan.Demo()
	p.Fuse()
	g := GraphOf(p)
	if want := len(p.Objects) + len(p.Sinks) + len(p.External); len(g.Nodes) != want {
		t.Fatalf("%d nodes, want %d", len(g.Nodes), want)
	}
	kinds := map[string]string{}
	for _, n := range g.Nodes {
		kinds[n.ID] = n.Kind
	}
	for id, kind := range map[string]string{
		"CLICKSTREAM": "source", "WEB_USERS": "table", "USER_CLICKSTREAM": "statement", "EVENTS_PER_MIN": "table",
		"sink:SLACK_UNHAPPY_PLATINUM": "sink", "external:SOURCE_MYSQL_01": "external",
	} {
		if kinds[id] != kind {
			t.Errorf("%s: kind %q, want %q", id, kinds[id], kind)
		}
	}
	for _, e := range []Edge{
		{From: "CLICKSTREAM", To: "USER_CLICKSTREAM", Kind: "input"},
		{From: "WEB_USERS", To: "USER_CLICKSTREAM", Kind: "join"},
		{From: "USER_CLICKSTREAM", To: "CLICK_USER_SESSIONS", Kind: "input"},
		{From: "UNHAPPY_PLATINUM_CUSTOMERS", To: "sink:SLACK_UNHAPPY_PLATINUM", Kind: "sink"},
		{From: "external:SOURCE_MYSQL_01", To: "CUSTOMERS", Kind: "external"},
	} {
		if !slices.Contains(g.Edges, e) {
			t.Errorf("no edge %+v", e)
		}
	}
	for _, n := range g.Nodes {
		if n.ID == "USER_CLICKSTREAM" && (n.FusedInto != "CLICKSTREAM" || n.Service != "windower" || n.SQL == "") {
			t.Errorf("USER_CLICKSTREAM: %+v", n)
		}
	}
}

// TestRecorder: warnings and errors are kept with their attributes (also those given with
// With and in groups) and passed on; the newest that names a node is its last error.
func TestRecorder(t *testing.T) {
	var out bytes.Buffer
	rec := NewRecorder(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelError}))
	log := slog.New(rec).With("service", "windower")
	log.Warn("dead-lettered input", "stream", "CLICKSTREAM", "seq", 5)
	log.WithGroup("g").Error("flush failed", "table", "EVENTS_PER_MIN")
	log.Info("consuming", "stream", "RATINGS")
	if bytes.Contains(out.Bytes(), []byte("dead-lettered")) || !bytes.Contains(out.Bytes(), []byte("flush failed")) {
		t.Errorf("the handler's own level must still apply to what it writes:\n%s", out.String())
	}
	e := rec.Last(func(e LogEntry) bool { return names(e, []string{"clickstream"}, nil) })
	if e == nil || e.Message != "dead-lettered input" || e.Attrs["service"] != "windower" || e.Attrs["seq"] != "5" {
		t.Errorf("CLICKSTREAM's last error: %+v", e)
	}
	e = rec.Last(func(e LogEntry) bool { return names(e, []string{"EVENTS_PER_MIN"}, nil) })
	if e == nil || e.Level != "ERROR" || e.Attrs["g.table"] != "EVENTS_PER_MIN" {
		t.Errorf("EVENTS_PER_MIN's last error: %+v", e)
	}
	if e := rec.Last(func(e LogEntry) bool { return names(e, []string{"RATINGS"}, nil) }); e != nil {
		t.Errorf("an info record was kept: %+v", e)
	}
	for i := 0; i < recordKeep+10; i++ {
		log.Warn("w", "i", i)
	}
	if n := len(rec.buf.entries); n != recordKeep {
		t.Errorf("%d records kept, at most %d", n, recordKeep)
	}
}

// TestStatsSplitReading: with the reading split (--repartition), an aggregation's lag counts its
// partitions' consumers of the source's shuffle stream, not only the router's of the source.
func TestStatsSplitReading(t *testing.T) {
	env := natstest.Start(t)
	p := plan.Demo()
	p.Fuse()
	p.DefaultPartitions, p.Repartition = 4, true
	ctx := context.Background()
	if err := p.Catalog().Ensure(ctx, env.JS, topology.Options{}); err != nil {
		t.Fatal(err)
	}
	shuffle := topology.ShuffleStream(topology.StreamClickstream)
	if _, err := env.JS.CreateOrUpdateConsumer(ctx, shuffle, jetstream.ConsumerConfig{Durable: "windower-CLICKSTREAM-p0", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := env.JS.Publish(ctx, topology.ShuffleSubject(topology.StreamClickstream), []byte("batch")); err != nil {
			t.Fatal(err)
		}
	}
	s := newStatsPoller(ctx, env.JS, p, NewRecorder(slog.DiscardHandler), slog.New(slog.DiscardHandler))
	st := s.poll().Nodes[topology.TableEventsPerMin]
	found := false
	for _, c := range st.Consumers {
		found = found || (c.Stream == shuffle && c.Name == "windower-CLICKSTREAM-p0" && c.Pending == 3)
	}
	if !found || st.Lag == nil || *st.Lag != 3 {
		t.Errorf("EVENTS_PER_MIN: consumers %+v, lag %v; want the partition's consumer of %s with 3 pending", st.Consumers, st.Lag, shuffle)
	}
}

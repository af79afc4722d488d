package jetsuite

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// The streams every step of the fused demo plan reads, and so needs a consumer on.
var demoInputs = []string{
	topology.StreamClickstream, topology.StreamClickstreamCodes, topology.StreamClickstreamUsers,
	topology.StreamRatings, topology.StreamDebezium, "IMPLY_NEWS",
}

func durable(t *testing.T, env *natstest.Env, stream, name string) jetstream.Consumer {
	t.Helper()
	c, err := env.JS.CreateConsumer(t.Context(), stream, jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The lag is the sum over every durable consumer of every stream of the plan, not one
// consumer's reading; a stream the plan's steps read with no consumer is missing (not caught
// up, whatever the sum); ephemeral consumers (KV watchers, queries) do not count.
func TestPipelineLag(t *testing.T) {
	env := natstest.Start(t)
	c := dial(t, env, 10*time.Second)
	ctx := t.Context()

	l, err := c.PipelineLag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l.CaughtUp || l.Total != 0 || len(l.Missing) != len(demoInputs) {
		t.Fatalf("no consumers: %+v, want %d missing streams", l, len(demoInputs))
	}
	if !strings.Contains(l.Text, "no consumer reads CLICKSTREAM (read by ") || !strings.Contains(l.Text, "EVENTS_PER_MIN") {
		t.Errorf("text %q does not say which stream and statements lack a consumer", l.Text)
	}
	for _, s := range demoInputs {
		durable(t, env, s, "reader-"+s)
	}
	if _, err := env.JS.OrderedConsumer(ctx, topology.StreamClickstream, jetstream.OrderedConsumerConfig{}); err != nil {
		t.Fatal(err)
	}
	if l, err = c.PipelineLag(ctx); err != nil || !l.CaughtUp || l.Total != 0 || l.Text != "every consumer caught up" {
		t.Fatalf("every input read, nothing published: %+v (%v)", l, err)
	}

	// 120 clicks for two consumers of CLICKSTREAM, 30 ratings, 5 on a derived stream.
	second := durable(t, env, topology.StreamClickstream, "second")
	c.PublishClicks(ctx, 120, 1, 1)
	c.PublishRatings(ctx, 30, 1, 2)
	if _, err := env.JS.Publish(ctx, topology.StreamUserClickstream, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	durable(t, env, topology.StreamUserClickstream, "downstream")
	// 20 of second's clicks delivered and acked, 10 delivered and not: 100 to go for it.
	batch, err := second.Fetch(30)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for m := range batch.Messages() {
		if i < 20 {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
		i++
	}
	l, err = c.PipelineLag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(120 + 100 + 30 + 1); l.Total != want || l.CaughtUp {
		t.Fatalf("total %d (caught up %v), want %d: %+v", l.Total, l.CaughtUp, want, l.Consumers)
	}
	// Upstream streams are read first (the plan's declaration order).
	pos := map[string]int{}
	for i, cl := range l.Consumers {
		pos[cl.Consumer] = i
	}
	if !(pos["reader-CLICKSTREAM"] < pos["downstream"]) {
		t.Errorf("USER_CLICKSTREAM read before CLICKSTREAM: %+v", l.Consumers)
	}
	for _, part := range []string{"reader-CLICKSTREAM 120 on CLICKSTREAM", "second 100 on CLICKSTREAM", "reader-RATINGS 30 on RATINGS", "downstream 1 on USER_CLICKSTREAM"} {
		if !strings.Contains(l.Text, part) {
			t.Errorf("text %q lacks %q", l.Text, part)
		}
	}
}

// CheckPipeline fails, saying why, against a NATS without jetsuite's streams and against a
// jetsuite whose services do not run; it passes once they do.
func TestCheckPipeline(t *testing.T) {
	env := natstest.Start(t)
	c := dial(t, env, 10*time.Second)
	ctx := t.Context()

	_, err := c.CheckPipeline(ctx)
	if err == nil || !strings.Contains(err.Error(), "the pipeline is not running: no consumer reads CLICKSTREAM") {
		t.Fatalf("no consumers: %v", err)
	}
	for _, s := range demoInputs {
		durable(t, env, s, "reader-"+s)
	}
	p, err := c.CheckPipeline(ctx)
	if err != nil || p.Consumers != len(demoInputs) || p.Streams < len(demoInputs) || !p.Lag.CaughtUp {
		t.Fatalf("running: %+v (%v)", p, err)
	}
	if err := env.JS.DeleteStream(ctx, topology.StreamRatings); err != nil {
		t.Fatal(err)
	}
	_, err = c.CheckPipeline(ctx)
	if err == nil || !strings.Contains(err.Error(), "has no stream RATINGS of the plan: is jetsuite running there") {
		t.Fatalf("no RATINGS stream: %v", err)
	}
}

// A queries file replaces the demos: its streams and steps are the plan, and a file that
// does not compile fails at once.
func TestPlanFromQueriesFile(t *testing.T) {
	f := t.TempDir() + "/q.sql"
	writeFile(t, f, `CREATE STREAM s1 (id INT) WITH (KAFKA_TOPIC='t1', VALUE_FORMAT='JSON');
CREATE TABLE counts AS SELECT id, COUNT(*) AS n FROM s1 GROUP BY id;`)
	p, err := loadPlan(f, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(streamsOf(p), ","); got != "S1" {
		t.Errorf("streams %s, want S1", got)
	}
	if got := readersOf(p); len(got) != 1 || strings.Join(got["S1"], ",") != "COUNTS" {
		t.Errorf("readers %v, want S1: COUNTS", got)
	}
	writeFile(t, f, `CREATE STREAM oops`)
	if _, err := loadPlan(f, true); err == nil {
		t.Error("a file that does not compile: no error")
	}
	if _, err := Dial(Options{URL: "nats://127.0.0.1:1", QueriesFile: t.TempDir() + "/none.sql"}); err == nil || !strings.Contains(err.Error(), "queries file") {
		t.Errorf("a missing queries file: %v", err)
	}
}

// Without a windower nothing writes the marker's row: the marker fails within its timeout,
// saying so; a context that ends first (the scenario stopped) is an interruption, not a failure.
func TestMarkClickWithoutPipeline(t *testing.T) {
	env := natstest.Start(t)
	c := dial(t, env, 10*time.Second)
	start := time.Now()
	m := c.MarkClick(t.Context(), 500*time.Millisecond)
	if m.OK || m.Interrupted || !strings.Contains(m.Err, "no EVENTS_PER_MIN row for the marker") {
		t.Fatalf("marker = %+v", m)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
	// The marker was published: a click with a userid no datagen click has.
	if n, err := c.StreamMessages(t.Context(), topology.StreamClickstream); err != nil || n != 1 {
		t.Fatalf("CLICKSTREAM holds %d (%v), want the marker", n, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		time.Sleep(100 * time.Millisecond)
		cancel()
	}()
	if m := c.MarkClick(ctx, time.Minute); m.OK || !m.Interrupted {
		t.Fatalf("cancelled marker = %+v", m)
	}
}

// Every batch counts into the process-wide stats that teardown turns into the load rate.
func TestStats(t *testing.T) {
	env := natstest.Start(t)
	c := dial(t, env, 10*time.Second)
	before := currentStats()
	c.PublishClicks(t.Context(), 40, 1, 1)
	after := currentStats()
	if after.Published-before.Published != 40 || after.Failed != before.Failed || after.LastAckMs < time.Now().Add(-time.Minute).UnixMilli() {
		t.Fatalf("stats %+v -> %+v", before, after)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                            "nats://127.0.0.1:4222",
		"nats://alice:s3cret@127.0.0.1:4222":               "nats://127.0.0.1:4222",
		"nats://tok@127.0.0.1:1,nats://bob:pw@127.0.0.1:2": "nats://127.0.0.1:1,nats://127.0.0.1:2",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
	_, err := Dial(Options{URL: "nats://alice:s3cret@127.0.0.1:1"})
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "cannot connect to NATS at nats://127.0.0.1:1") {
		t.Errorf("dial error %v", err)
	}
}

func writeFile(t *testing.T, name, s string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

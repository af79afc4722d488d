package indexer

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/pipe"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// allSources are the streams the indexer consumes (derived streams and KV_<table>).
func allSources(cfg Config) []string {
	var out []string
	for _, s := range cfg.sources() {
		out = append(out, s.Stream)
	}
	return out
}

func waitAllAcked(t *testing.T, js jetstream.JetStream, cfg Config, p *publisher) {
	t.Helper()
	for _, s := range allSources(cfg) {
		if seq := p.lastSeq(s); seq > 0 {
			waitAcked(t, js, s, cfg.Durable, seq, 30*time.Second)
		}
	}
}

// TestPipelineRunIndexedOnce: after a pipeline run every stream message and every table row is a
// document (the latest version of each row, deleted rows gone), none twice; re-running the
// indexer from scratch (a new consumer replays everything) changes nothing.
func TestPipelineRunIndexedOnce(t *testing.T) {
	s := newSearch(t)
	cfg := testConfig(t)
	s.cleanupIndices(cfg)
	env := natstest.Start(t)
	e := newExpectation()
	p := newPublisher(t, env.JS, cfg, e)
	base := time.Now().Add(-10 * time.Minute).UnixMilli()

	r := startIndexer(t, env, cfg, nil)
	pipelineRun(p, 300, base)
	e.verify(t, s, 60*time.Second)
	waitAllAcked(t, env.JS, cfg, p)
	if len(e.docs) != len(cfg.Streams)+len(cfg.Tables) {
		t.Fatalf("fixture covers %d indices, want %d", len(e.docs), len(cfg.Streams)+len(cfg.Tables))
	}
	t.Logf("%d documents in %d indices", e.total(), len(e.docs))
	r.stop(t)

	// Replay: a second indexer with another consumer name re-reads every stream from the start.
	cfg2 := cfg
	cfg2.Durable = "indexer-replay"
	startIndexer(t, env, cfg2, nil)
	waitAllAcked(t, env.JS, cfg2, p)
	e.verify(t, s, 30*time.Second)
}

// TestKilledAndRestartedMidRun: the indexer is killed (no drain, its connection gone) while
// messages keep coming, and a new one starts; in the end every message and row is a document
// exactly once.
func TestKilledAndRestartedMidRun(t *testing.T) {
	s := newSearch(t)
	cfg := testConfig(t)
	cfg.BulkDocs = 50
	cfg.DrainTimeout = 0
	s.cleanupIndices(cfg)
	env := natstest.Start(t)
	e := newExpectation()
	p := newPublisher(t, env.JS, cfg, e)
	base := time.Now().Add(-10 * time.Minute).UnixMilli()

	first := startIndexer(t, env, cfg, nil)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pipelineRun(p, 600, base)
	}()
	// Kill it once part of the run is indexed.
	deadline := time.Now().Add(30 * time.Second)
	for s.count(cfg.IndexName(topology.StreamUserClickstream)) < 100 {
		if time.Now().After(deadline) {
			t.Fatal("nothing indexed before the kill")
		}
		time.Sleep(50 * time.Millisecond)
	}
	first.kill(t)
	indexed := s.count(cfg.IndexName(topology.StreamUserClickstream))
	floor, delivered, pending := consumerState(t, env.JS, topology.StreamUserClickstream, cfg.Durable)
	t.Logf("killed: %d USER_CLICKSTREAM documents, ack floor %d, delivered %d, ack pending %d", indexed, floor, delivered, pending)

	time.Sleep(500 * time.Millisecond)
	startIndexer(t, env, cfg, nil)
	wg.Wait()
	e.verify(t, s, 90*time.Second)
	waitAllAcked(t, env.JS, cfg, p)
}

// TestOpenSearchAway: OpenSearch is stopped for 30 s while messages and rows keep coming; nothing
// is acked while it is away (the ack floors stand still), and once it is back everything lands.
func TestOpenSearchAway(t *testing.T) {
	s := newSearch(t)
	cfg := testConfig(t)
	s.cleanupIndices(cfg)
	ensureOpenSearchUp(t)
	env := natstest.Start(t)
	e := newExpectation()
	p := newPublisher(t, env.JS, cfg, e)
	base := time.Now().Add(-10 * time.Minute).UnixMilli()

	startIndexer(t, env, cfg, nil)
	pipelineRun(p, 100, base)
	e.verify(t, s, 60*time.Second)
	waitAllAcked(t, env.JS, cfg, p)

	openSearchCtl(t, "stop")
	stoppedAt := time.Now()
	watched := []string{topology.StreamUserClickstream, "KV_" + topology.TableEventsPerMin, topology.StreamRatingsWithCustomerData}
	// The checkpoint says what OpenSearch confirmed (the consumer's ack floor does not: a fresh
	// consumer's floor may move over revisions of a KV stream that it delivered and never saw
	// acked, once newer ones of the same keys replace them).
	checkpoints := map[string]uint64{}
	for _, st := range watched {
		checkpoints[st] = checkpoint(t, env.JS, st, cfg.Durable)
	}
	pipelineRun(p, 100, base+100*250)
	for time.Since(stoppedAt) < 30*time.Second {
		for _, st := range watched {
			if cp := checkpoint(t, env.JS, st, cfg.Durable); cp != checkpoints[st] {
				t.Fatalf("%s: checkpoint moved from %d to %d while OpenSearch was away", st, checkpoints[st], cp)
			}
		}
		time.Sleep(2 * time.Second)
	}
	for _, st := range watched {
		floor, delivered, pending := consumerState(t, env.JS, st, cfg.Durable)
		// Something must be waiting for the indexer, or the test proves nothing.
		if last := p.lastSeq(st); last <= checkpoints[st] {
			t.Fatalf("%s: nothing held back (last %d, checkpoint %d)", st, last, checkpoints[st])
		}
		t.Logf("%s while away: checkpoint %d, ack floor %d, delivered %d, ack pending %d", st, checkpoints[st], floor, delivered, pending)
	}
	openSearchCtl(t, "start")
	t.Logf("OpenSearch back after %v", time.Since(stoppedAt).Round(time.Second))
	e.verify(t, s, 90*time.Second)
	waitAllAcked(t, env.JS, cfg, p)
}

// TestRejectedDocumentDeadLettered: a document OpenSearch refuses (a string in a date field) and
// a body that is not a JSON object go to dlq.<stream> with the reason; the rest of the batch is
// indexed and everything is acked.
func TestRejectedDocumentDeadLettered(t *testing.T) {
	s := newSearch(t)
	cfg := testConfig(t)
	s.cleanupIndices(cfg)
	env := natstest.Start(t)
	e := newExpectation()
	p := newPublisher(t, env.JS, cfg, e)
	now := time.Now().UnixMilli()
	stream := topology.StreamUserClickstream

	good := map[string]any{"USERID": 1, "USERNAME": "akatz1022", "STATUS": 200, "EVENT_TS": now}
	p.message(stream, now, good)
	badSeq := p.raw(stream, now, []byte(`{"USERID":2,"EVENT_TS":"not a time"}`), nil)
	notJSONSeq := p.raw(stream, now, []byte(`<html>oops</html>`), nil)
	p.message(stream, now+1, good)
	// A table row with a date that cannot be one.
	p.row(topology.TableEventsPerMin, "1.0", map[string]any{"USERID": 1, "EVENT_TS": 0, "EVENTS": 1})
	badRow := []byte(`{"USERID":2,"EVENT_TS":"yesterday","EVENTS":1}`)
	if _, err := env.JS.Publish(context.Background(), topology.KVSubject(topology.TableEventsPerMin, "2.0"), badRow); err != nil {
		t.Fatal(err)
	}

	startIndexer(t, env, cfg, nil)
	e.verify(t, s, 30*time.Second)
	waitAcked(t, env.JS, stream, cfg.Durable, p.lastSeq(stream), 30*time.Second)

	dlq := readDeadLetters(t, env.JS, 3)
	bySeq := map[string]*dlqMsg{}
	for _, m := range dlq {
		bySeq[m.Header.Get(pipe.HeaderDLQSourceStream)+":"+m.Header.Get(pipe.HeaderDLQSourceSeq)] = m
	}
	rejected := bySeq[StreamDocID(stream, badSeq)]
	if rejected == nil {
		t.Fatalf("no dead letter for the rejected document; got %v", keys(bySeq))
	}
	h := rejected.Header
	if h.Get(pipe.HeaderDLQReason) != ReasonRejected || h.Get(HeaderDLQOpenSearchStatus) != "400" ||
		!strings.Contains(h.Get(HeaderDLQOpenSearchType), "parsing_exception") || !strings.Contains(h.Get(pipe.HeaderDLQError), "EVENT_TS") {
		t.Fatalf("dead letter headers: %v", h)
	}
	if !bytes.Equal(rejected.Data, []byte(`{"USERID":2,"EVENT_TS":"not a time"}`)) || rejected.Subject != "dlq."+stream {
		t.Fatalf("dead letter %s carries %q", rejected.Subject, rejected.Data)
	}
	t.Logf("OpenSearch's reason: %s", h.Get(pipe.HeaderDLQError))
	if nj := bySeq[StreamDocID(stream, notJSONSeq)]; nj == nil || nj.Header.Get(pipe.HeaderDLQReason) != pipe.ReasonNotJSON {
		t.Fatalf("no not_json dead letter for the HTML body: %v", keys(bySeq))
	}
	var row *dlqMsg
	for _, m := range dlq {
		if m.Subject == "dlq.KV_"+topology.TableEventsPerMin {
			row = m
		}
	}
	if row == nil || row.Header.Get(HeaderDLQDocID) != "2.0" || row.Header.Get(pipe.HeaderDLQReason) != ReasonRejected {
		t.Fatalf("no dead letter for the rejected table row: %v", dlq)
	}
	waitAcked(t, env.JS, "KV_"+topology.TableEventsPerMin, cfg.Durable, 2, 10*time.Second)
}

type dlqMsg = jetstream.RawStreamMsg

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// readDeadLetters waits for at least n messages in the dead-letter stream and returns them all.
func readDeadLetters(t *testing.T, js jetstream.JetStream, n int) []*dlqMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, topology.StreamDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	for {
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs >= uint64(n) {
			var out []*dlqMsg
			for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
				m, err := st.GetMsg(ctx, seq)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, m)
			}
			return out
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d dead letters, want %d", info.State.Msgs, n)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestItem429Retried: items refused with 429 (a real cluster block: the disk flood-stage
// read-only-allow-delete block) are retried, not acked and not dead-lettered, and land once the
// block is lifted.
func TestItem429Retried(t *testing.T) {
	s := newSearch(t)
	cfg := testConfig(t)
	s.cleanupIndices(cfg)
	env := natstest.Start(t)
	e := newExpectation()
	p := newPublisher(t, env.JS, cfg, e)
	now := time.Now().UnixMilli()
	stream := topology.StreamRatingsLive
	index := cfg.IndexName(stream)

	startIndexer(t, env, cfg, nil)
	p.message(stream, now, map[string]any{"RATING_ID": 1, "STARS": 4, "CHANNEL": "iOS"})
	e.verify(t, s, 30*time.Second)
	waitAcked(t, env.JS, stream, cfg.Durable, 1, 10*time.Second)

	block := func(on bool) {
		var v any = true
		if !on {
			v = nil
		}
		if status, body := s.do("PUT", "/"+index+"/_settings", map[string]any{"index.blocks.read_only_allow_delete": v}); status != 200 {
			t.Fatalf("block %v: %d %s", on, status, body)
		}
	}
	block(true)
	t.Cleanup(func() { block(false) })
	before := counterValue(t, "item_429")
	for i := 2; i <= 20; i++ {
		p.message(stream, now+int64(i), map[string]any{"RATING_ID": i, "STARS": 2, "CHANNEL": "web"})
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if floor, _, _ := consumerState(t, env.JS, stream, cfg.Durable); floor != 1 {
			t.Fatalf("ack floor moved to %d while every item got 429", floor)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if got := counterValue(t, "item_429") - before; got < 19 {
		t.Fatalf("%v item 429 retries counted, want at least 19", got)
	}
	if n := s.count(index); n != 1 {
		t.Fatalf("%d documents while blocked", n)
	}
	block(false)
	e.verify(t, s, 30*time.Second)
	waitAcked(t, env.JS, stream, cfg.Durable, 20, 30*time.Second)
	if info, _ := env.JS.Stream(context.Background(), topology.StreamDeadLetter); info != nil {
		if i, _ := info.Info(context.Background()); i != nil && i.State.Msgs != 0 {
			t.Fatalf("%d dead letters: 429 must not be dead-lettered", i.State.Msgs)
		}
	}
}

func counterValue(t *testing.T, cause string) float64 {
	var m dto.Metric
	if err := bulkRetries.WithLabelValues(cause).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

package indexer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/flow"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/testenv"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// search is a small OpenSearch REST client for checking what the indexer wrote.
type search struct {
	t   testing.TB
	url string
}

func newSearch(t testing.TB) *search {
	return &search{t: t, url: strings.TrimRight(testenv.Require(t, testenv.OpenSearchURL), "/")}
}

// do sends a request and returns the status and body (fails the test on transport errors).
func (s *search) do(method, path string, body any) (int, []byte) {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, data
}

// docs returns every document of an index by id (after a refresh).
func (s *search) docs(index string) map[string]map[string]any {
	s.t.Helper()
	s.do("POST", "/"+index+"/_refresh", nil)
	status, data := s.do("POST", "/"+index+"/_search", map[string]any{"size": 10000, "query": map[string]any{"match_all": map[string]any{}}})
	if status == 404 {
		return map[string]map[string]any{}
	}
	if status != 200 {
		s.t.Fatalf("search %s: %d %s", index, status, data)
	}
	var res struct {
		Hits struct {
			Total struct{ Value int } `json:"total"`
			Hits  []struct {
				ID     string         `json:"_id"`
				Source map[string]any `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		s.t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, h := range res.Hits.Hits {
		out[h.ID] = h.Source
	}
	if res.Hits.Total.Value != len(out) {
		s.t.Fatalf("%s: total %d but %d distinct ids", index, res.Hits.Total.Value, len(out))
	}
	return out
}

// count returns the number of documents of an index (after a refresh); 0 when it does not exist.
func (s *search) count(index string) int {
	s.t.Helper()
	s.do("POST", "/"+index+"/_refresh", nil)
	status, data := s.do("GET", "/"+index+"/_count", nil)
	if status == 404 || status == 503 {
		return 0 // no index yet, or one just created whose shards are not allocated yet
	}
	var res struct{ Count int }
	if status != 200 || json.Unmarshal(data, &res) != nil {
		s.t.Fatalf("count %s: %d %s", index, status, data)
	}
	return res.Count
}

// prefix gives a test its own index names on the shared node.
func testPrefix(t testing.TB) string {
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	return fmt.Sprintf("it-%s-%d-", name, rand.IntN(1_000_000))
}

// cleanupIndices deletes a test's indices and template when it ends.
func (s *search) cleanupIndices(cfg Config) {
	s.t.Cleanup(func() {
		s.do("DELETE", "/"+cfg.IndexPrefix+"*", nil)
		s.do("DELETE", "/_index_template/"+cfg.TemplateName(), nil)
	})
}

// testConfig is a configuration for tests: the real node, small batches, short waits.
func testConfig(t testing.TB) Config {
	cfg := DefaultConfig()
	cfg.Streams, cfg.Tables = fixtureStreams, fixtureTables
	cfg.URLs = []string{testenv.Require(t, testenv.OpenSearchURL)}
	cfg.IndexPrefix = testPrefix(t)
	cfg.BulkDocs = 200
	cfg.FlushInterval = 100 * time.Millisecond
	cfg.AckWait = 2 * time.Second
	cfg.RetryBackoff = 50 * time.Millisecond
	cfg.RetryMax = time.Second
	return cfg
}

// running is an indexer running in the test on its own NATS connection.
type running struct {
	cancel context.CancelFunc
	nc     *nats.Conn
	done   chan error
}

func startIndexer(t testing.TB, env *natstest.Env, cfg Config, logs io.Writer) *running {
	t.Helper()
	nc, js := env.Connect(t)
	if logs == nil {
		logs = testWriter{t}
	}
	x, err := New(cfg, runner.Deps{NC: nc, JS: js, Log: newTextLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, nc: nc, done: make(chan error, 1)}
	go func() { r.done <- x.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the indexer and waits for Run to return (a graceful stop, or a kill when the
// configuration's DrainTimeout is 0).
func (r *running) stop(t testing.TB) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("indexer Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("indexer did not stop")
	}
}

// kill stops the indexer as a crash would: its connection is gone before anything else is acked.
func (r *running) kill(t testing.TB) {
	r.nc.Close()
	r.stop(t)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// expectation is what the indices must hold: per index, per document id, the document (for
// stream documents without EXTRACT_TS, which is checked against extractTS).
type expectation struct {
	mu        sync.Mutex
	docs      map[string]map[string]map[string]any
	extractTS map[string]int64 // index/id -> EXTRACT_TS
}

func newExpectation() *expectation {
	return &expectation{docs: map[string]map[string]map[string]any{}, extractTS: map[string]int64{}}
}

func (e *expectation) set(index, id string, doc map[string]any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.docs[index] == nil {
		e.docs[index] = map[string]map[string]any{}
	}
	if doc == nil {
		delete(e.docs[index], id)
		return
	}
	e.docs[index][id] = doc
}

func (e *expectation) total() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, d := range e.docs {
		n += len(d)
	}
	return n
}

// publisher writes rows and messages into the streams and buckets the way the enricher and the
// windower do (async publishes with Nats-Msg-Id; KV writes on the bucket's subjects).
type publisher struct {
	t      testing.TB
	js     jetstream.JetStream
	cfg    Config
	expect *expectation
	seq    map[string]uint64 // stream -> last sequence published
	mu     sync.Mutex
}

func newPublisher(t testing.TB, js jetstream.JetStream, cfg Config, e *expectation) *publisher {
	return &publisher{t: t, js: js, cfg: cfg, expect: e, seq: map[string]uint64{}}
}

// message publishes one message of a derived stream with an Event-Time.
func (p *publisher) message(stream string, eventTime int64, doc map[string]any) uint64 {
	p.t.Helper()
	data, _ := json.Marshal(doc)
	return p.raw(stream, eventTime, data, doc)
}

// raw publishes a body as is; doc is what the document must be (nil: none expected).
func (p *publisher) raw(stream string, eventTime int64, data []byte, doc map[string]any) uint64 {
	p.t.Helper()
	m := nats.NewMsg(subjectOf(stream))
	m.Header.Set(events.HeaderEventTime, strconv.FormatInt(eventTime, 10))
	m.Data = data
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := p.js.PublishMsg(ctx, m)
	if err != nil {
		p.t.Fatalf("publish %s: %v", stream, err)
	}
	p.mu.Lock()
	p.seq[stream] = ack.Sequence
	p.mu.Unlock()
	if doc != nil {
		index, id := p.cfg.IndexName(stream), StreamDocID(stream, ack.Sequence)
		p.expect.set(index, id, normalise(doc))
		p.expect.mu.Lock()
		p.expect.extractTS[index+"/"+id] = eventTime
		p.expect.mu.Unlock()
	}
	return ack.Sequence
}

// subjectOf is the subject a demo stream's messages are published on.
func subjectOf(stream string) string {
	for _, o := range plan.Demo().Objects {
		if o.Stream == stream && o.Subject != "" {
			return o.Subject
		}
	}
	return stream
}

// fixtureStreams and fixtureTables are what pipelineRun writes: the demo's derived streams and
// every table.
var (
	fixtureStreams = []string{topology.StreamUserClickstream, topology.StreamEnrichedErrorCodes, topology.StreamRatingsLive,
		topology.StreamRatingsTest, topology.StreamRatingsWithCustomerData, topology.StreamUnhappyPlatinumCustomers}
	fixtureTables = []string{topology.TableCustomers, topology.TableWebUsers, topology.TableClickstreamCodes, topology.TableEventsPerMin,
		topology.TablePagesPerMin, topology.TableErrorsPerMin, topology.TableErrorsPerMinAlert, topology.TableClickUserSessions,
		topology.TableEnrichedErrorCodesCount, topology.TableUserIPActivity, topology.TableRatingsPerCustomerPer15Minute}
)

// row puts (doc != nil) or deletes (doc == nil) a table row.
func (p *publisher) row(table, key string, doc map[string]any) {
	p.t.Helper()
	m := nats.NewMsg(topology.KVSubject(table, key))
	if doc == nil {
		m.Header.Set(kvOperationHeader, "DEL")
	} else {
		m.Data, _ = json.Marshal(doc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := p.js.PublishMsg(ctx, m)
	if err != nil {
		p.t.Fatalf("kv %s %s: %v", table, key, err)
	}
	p.mu.Lock()
	p.seq["KV_"+table] = ack.Sequence
	p.mu.Unlock()
	p.expect.set(p.cfg.IndexName(table), key, normalise(doc))
}

func (p *publisher) lastSeq(stream string) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seq[stream]
}

// normalise makes a document compare equal to what comes back from OpenSearch's _source.
func normalise(doc map[string]any) map[string]any {
	if doc == nil {
		return nil
	}
	data, _ := json.Marshal(doc)
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return out
}

// verify waits until every index holds exactly the expected documents (no more, no fewer, the
// latest version of each table row, EXTRACT_TS = the event time) or fails after timeout.
func (e *expectation) verify(t testing.TB, s *search, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var problem string
	for {
		problem = e.check(s)
		if problem == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("indices do not hold the expected documents after %v: %s", timeout, problem)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (e *expectation) check(s *search) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	for index, want := range e.docs {
		if n := s.count(index); n != len(want) {
			got := s.docs(index)
			var missing, extra []string
			for id := range want {
				if _, ok := got[id]; !ok && len(missing) < 5 {
					missing = append(missing, id)
				}
			}
			for id := range got {
				if _, ok := want[id]; !ok && len(extra) < 5 {
					extra = append(extra, id)
				}
			}
			return fmt.Sprintf("%s: %d documents, want %d (missing e.g. %v, unexpected e.g. %v)", index, n, len(want), missing, extra)
		}
	}
	for index, want := range e.docs {
		got := s.docs(index)
		for id, doc := range want {
			g, ok := got[id]
			if !ok {
				return fmt.Sprintf("%s: no document %s", index, id)
			}
			if ts, ok := e.extractTS[index+"/"+id]; ok {
				if v, _ := g[ExtractTSField].(float64); int64(v) != ts {
					return fmt.Sprintf("%s/%s: EXTRACT_TS %v, want %d", index, id, g[ExtractTSField], ts)
				}
				g = without(g, ExtractTSField)
			}
			if !reflect.DeepEqual(g, doc) {
				return fmt.Sprintf("%s/%s: %v, want %v", index, id, g, doc)
			}
		}
	}
	return ""
}

func without(m map[string]any, key string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

// consumerState returns the indexer consumer's ack floor, delivered sequence and pending acks.
func consumerState(t testing.TB, js jetstream.JetStream, stream, durable string) (ackFloor, delivered uint64, ackPending int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, stream, durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, 0, 0 // not created yet
	}
	if err != nil {
		t.Fatalf("consumer %s on %s: %v", durable, stream, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.AckFloor.Stream, info.Delivered.Stream, info.NumAckPending
}

// checkpoint is the indexer's checkpoint on stream: everything up to it is confirmed by
// OpenSearch.
func checkpoint(t testing.TB, js jetstream.JetStream, stream, durable string) uint64 {
	t.Helper()
	cp, err := flow.Checkpoint(context.Background(), js, durable+"."+stream, stream)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// waitAcked waits until the indexer finished everything on stream up to seq: its checkpoint
// (or, right after a restart that had nothing left to deliver, its consumer's ack floor) is
// there and nothing is pending.
func waitAcked(t testing.TB, js jetstream.JetStream, stream, durable string, seq uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		floor, _, pending := consumerState(t, js, stream, durable)
		cp := checkpoint(t, js, stream, durable)
		if max(floor, cp) >= seq && pending == 0 && seq > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: ack floor %d, checkpoint %d (pending %d), want %d", stream, floor, cp, pending, seq)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// openSearchCtl runs the testenv control command (stop | start).
func openSearchCtl(t testing.TB, action string) {
	t.Helper()
	ctl := testenv.Require(t, testenv.OpenSearchCtl)
	out, err := exec.Command(ctl, action).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", ctl, action, err, out)
	}
}

// Make sure the node is back even when a test fails while it is stopped.
func ensureOpenSearchUp(t testing.TB) {
	t.Cleanup(func() {
		if ctl := os.Getenv(testenv.OpenSearchCtl); ctl != "" {
			_ = exec.Command(ctl, "start").Run()
		}
	})
}

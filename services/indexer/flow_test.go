package indexer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetsuite/jetsuite/shared/flow"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/pipe"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// fakeOpenSearch answers the index template and _bulk: every document is created, except one
// holding "BAD" (a 400 mapper_parsing_exception); while away, every _bulk is a 503.
type fakeOpenSearch struct {
	away   atomic.Bool
	failed atomic.Int64 // _bulk requests answered 503
	mu     sync.Mutex
	ids    map[string]int // index/id -> times written
}

func (f *fakeOpenSearch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/_bulk") {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"acknowledged":true}`)
		return
	}
	if f.away.Load() {
		f.failed.Add(1)
		http.Error(w, `{"error":"unavailable"}`, http.StatusServiceUnavailable)
		return
	}
	var items []map[string]any
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(nil, 1<<20)
	f.mu.Lock()
	defer f.mu.Unlock()
	for sc.Scan() {
		var action map[string]struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &action); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		item := map[string]any{"status": 201}
		for kind, a := range action {
			if kind == "index" {
				sc.Scan()
				if bytes.Contains(sc.Bytes(), []byte("BAD")) {
					item = map[string]any{"status": 400, "error": map[string]any{"type": "mapper_parsing_exception", "reason": "failed to parse field [EVENT_TS]"}}
					break
				}
			}
			f.ids[a.Index+"/"+a.ID]++
		}
		items = append(items, map[string]any{"index": item})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"items": items})
}

func (f *fakeOpenSearch) written(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ids[key]
}

func eventually(t *testing.T, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFollowOnFlow runs the indexer's flow processors against a fake OpenSearch and the
// embedded NATS: documents are written and checkpointed, rejected and non-JSON bodies are
// dead-lettered with the reason, and while OpenSearch is away nothing is checkpointed or acked
// until it is back.
func TestFollowOnFlow(t *testing.T) {
	fake := &fakeOpenSearch{ids: map[string]int{}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	cfg := DefaultConfig()
	cfg.URLs = []string{srv.URL}
	cfg.Streams, cfg.Tables = []string{topology.StreamUserClickstream}, []string{topology.TableCustomers}
	cfg.BulkDocs, cfg.FlushInterval = 50, 20*time.Millisecond
	cfg.AckWait, cfg.RetryBackoff, cfg.RetryMax = time.Second, 20*time.Millisecond, 200*time.Millisecond
	env := natstest.Start(t)
	ctx := context.Background()
	stream, kv := topology.StreamUserClickstream, "KV_"+topology.TableCustomers
	var last uint64
	pub := func(subject, body string) {
		ack, err := env.JS.Publish(ctx, subject, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if subject == stream {
			last = ack.Sequence
		}
	}
	for i := range 5 {
		pub(stream, fmt.Sprintf(`{"USERID":%d}`, i))
	}
	pub(stream, `{"USERID":9,"EVENT_TS":"BAD"}`) // seq 6
	pub(stream, `<html>oops</html>`)             // seq 7
	pub(topology.KVSubject(topology.TableCustomers, "1"), `{"ID":1}`)
	checkpoint := func(s string) uint64 {
		cp, err := flow.Checkpoint(ctx, env.JS, cfg.Durable+"."+s, s)
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	waitCheckpoint := func(s string, seq uint64) {
		eventually(t, 20*time.Second, func() error {
			if cp := checkpoint(s); cp != seq {
				return fmt.Errorf("%s: checkpoint %d, want %d", s, cp, seq)
			}
			return nil
		})
	}

	startIndexer(t, env, cfg, nil)
	waitCheckpoint(stream, last)
	waitCheckpoint(kv, 1)
	floor, _, pending := consumerState(t, env.JS, stream, cfg.Durable)
	if floor != last || pending != 0 {
		t.Fatalf("consumer %s: ack floor %d, ack pending %d; want %d, 0", cfg.Durable, floor, pending, last)
	}
	for i := uint64(1); i <= 5; i++ {
		if n := fake.written(cfg.IndexName(stream) + "/" + StreamDocID(stream, i)); n != 1 {
			t.Fatalf("document %d written %d times", i, n)
		}
	}
	if fake.written(cfg.IndexName(topology.TableCustomers)+"/1") != 1 {
		t.Fatal("table row not written")
	}
	reasons := map[string]string{}
	for _, m := range readDeadLetters(t, env.JS, 2) {
		reasons[m.Header.Get(pipe.HeaderDLQSourceSeq)] = m.Header.Get(pipe.HeaderDLQReason)
		if m.Header.Get(pipe.HeaderDLQSourceSeq) == "6" && (m.Header.Get(HeaderDLQOpenSearchStatus) != "400" ||
			m.Header.Get(HeaderDLQDocID) != StreamDocID(stream, 6) || m.Header.Get(HeaderDLQIndex) != cfg.IndexName(stream)) {
			t.Errorf("rejected document's dead letter: %v", m.Header)
		}
	}
	if reasons["6"] != ReasonRejected || reasons["7"] != pipe.ReasonNotJSON {
		t.Fatalf("dead letters by sequence: %v", reasons)
	}

	// OpenSearch away: held back across several hand-backs (each resumes from the checkpoint).
	fake.away.Store(true)
	before := last
	for i := range 3 {
		pub(stream, fmt.Sprintf(`{"USERID":%d}`, 20+i))
	}
	eventually(t, 20*time.Second, func() error {
		if n := fake.failed.Load(); n < 20 {
			return fmt.Errorf("%d refused _bulk requests", n)
		}
		return nil
	})
	if cp := checkpoint(stream); cp != before {
		t.Fatalf("checkpoint moved to %d while OpenSearch was away", cp)
	}
	if floor, _, _ := consumerState(t, env.JS, stream, cfg.Durable); floor > before {
		t.Fatalf("ack floor moved to %d while OpenSearch was away", floor)
	}
	fake.away.Store(false)
	waitCheckpoint(stream, last)
	for i := before + 1; i <= last; i++ {
		if fake.written(cfg.IndexName(stream)+"/"+StreamDocID(stream, i)) == 0 {
			t.Fatalf("document %d not written after OpenSearch came back", i)
		}
	}
}

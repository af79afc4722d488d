package indexer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/topology"
)

func TestWithFieldSplicesOrReplaces(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{}`, `{"EXTRACT_TS":42}`},
		{`{"A":1}`, `{"EXTRACT_TS":42,"A":1}`},
		{`{"A":"x","EXTRACT_TS":7}`, `{"A":"x","EXTRACT_TS":42}`},
	}
	for _, c := range cases {
		got, err := withField([]byte(c.in), ExtractTSField, 42)
		if err != nil {
			t.Fatal(err)
		}
		var g, w map[string]any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("%s: result %s is not JSON: %v", c.in, got, err)
		}
		_ = json.Unmarshal([]byte(c.want), &w)
		gb, _ := json.Marshal(g)
		wb, _ := json.Marshal(w)
		if !bytes.Equal(gb, wb) {
			t.Errorf("withField(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestCompactObjectRejectsWhatWouldBreakABulkBody(t *testing.T) {
	got, err := compactObject([]byte("{\n  \"A\": 1,\n  \"B\": \"x y\"\n}\n"))
	if err != nil || string(got) != `{"A":1,"B":"x y"}` {
		t.Fatalf("compact = %q, %v", got, err)
	}
	for _, bad := range []string{"", "null", "[1,2]", `"s"`, "{not json", "{} {}"} {
		if _, err := compactObject([]byte(bad)); err == nil {
			t.Errorf("compactObject(%q) accepted it", bad)
		}
	}
}

func TestClassify(t *testing.T) {
	index, del := op{Body: []byte("{}")}, op{}
	versioned := op{Body: []byte("{}"), Version: 3}
	cases := []struct {
		status int
		o      op
		want   itemClass
	}{
		{200, index, itemOK}, {201, index, itemOK},
		{404, del, itemOK},
		{409, versioned, itemOK},
		{409, index, itemReject},
		{429, index, itemRetry}, {500, index, itemRetry}, {503, index, itemRetry},
		{403, index, itemRetry}, {404, index, itemRetry},
		{400, index, itemReject}, {422, index, itemReject},
	}
	for _, c := range cases {
		if got := classify(bulkItem{Status: c.status}, c.o); got != c.want {
			t.Errorf("status %d (%+v): class %d, want %d", c.status, c.o, got, c.want)
		}
	}
}

func TestChunkHonoursDocsAndBytes(t *testing.T) {
	w := &writer{maxDocs: 3, maxBytes: 200}
	var ops []op
	var idx []int
	for i := range 10 {
		ops = append(ops, op{Index: "i", ID: string(rune('a' + i)), Body: []byte(`{"X":"` + strings.Repeat("x", 40) + `"}`)})
		idx = append(idx, i)
	}
	c, body := w.chunk(ops, idx, 3)
	if len(c) != 2 { // one doc is ~80 bytes with its action line: the third would pass 200
		t.Fatalf("chunk took %d docs (%d bytes), want 2", len(c), len(body))
	}
	if n := bytes.Count(body, []byte("\n")); n != 4 {
		t.Fatalf("body has %d lines, want 4:\n%s", n, body)
	}
	// A single document larger than maxBytes still goes (alone).
	w.maxBytes = 10
	if c, _ := w.chunk(ops, idx, 3); len(c) != 1 {
		t.Fatalf("oversized doc: chunk of %d", len(c))
	}
}

func TestAppendActionVersionAndDelete(t *testing.T) {
	var buf bytes.Buffer
	appendAction(&buf, op{Index: "events_per_min", ID: `7."x"`, Version: 12})
	want := `{"delete":{"_index":"events_per_min","_id":"7.\"x\"","version":12,"version_type":"external"}}` + "\n"
	if buf.String() != want {
		t.Fatalf("got %s want %s", buf.String(), want)
	}
}

// TestOffWithoutURL checks the service built from Spec is off (and says so) without
// JETSUITE_INDEXER_OPENSEARCH_URL.
func TestOffWithoutURL(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	reg := config.NewRegistry(fs, func(string) string { return "" })
	build := Spec().Bind(reg.Service(ServiceName))
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := reg.Resolve(); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	svc, err := build(runner.Deps{Log: newTextLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := svc.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "JETSUITE_INDEXER_OPENSEARCH_URL is unset") {
		t.Fatalf("no log line saying the indexer is off: %q", logs.String())
	}
}

// TestWholeRequestFailureRetriedUntilContextEnds: nothing listens at the address, so every
// request fails; write must neither confirm nor reject anything, and must stop with ctx.
func TestWholeRequestFailureRetriedUntilContextEnds(t *testing.T) {
	cfg := DefaultConfig()
	cfg.URLs = []string{"http://127.0.0.1:1"}
	c, err := newClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{client: c, maxDocs: 10, maxBytes: 1 << 20, backoff: 10 * time.Millisecond, maxWait: 50 * time.Millisecond, log: newTextLogger(&bytes.Buffer{})}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	retries := 0
	v, err := w.write(ctx, []op{{Index: "x", ID: "1", Body: []byte(`{}`)}}, func() { retries++ })
	if !errors.Is(err, context.DeadlineExceeded) || v != nil {
		t.Fatalf("write = %v, %v; want no verdicts and the context's error", v, err)
	}
	if retries < 2 {
		t.Fatalf("only %d retries", retries)
	}
}

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// The indexer's default streams and tables are those of the demo's opensearch sinks: the
// originals' Elasticsearch connectors (SINK_ES_RATINGS, SINK_ELASTIC_01) and jetsuite's own.
func TestSourcesFromPlan(t *testing.T) {
	streams, tables := Sources(plan.Demo())
	wantStreams := []string{topology.StreamRatings, topology.StreamRatingsWithCustomerData, topology.StreamUnhappyPlatinumCustomers,
		topology.StreamUserClickstream, topology.StreamEnrichedErrorCodes, topology.StreamRatingsLive, topology.StreamRatingsTest}
	if !slices.Equal(streams, wantStreams) {
		t.Errorf("streams %v, want %v", streams, wantStreams)
	}
	if len(tables) != len(fixtureTables) {
		t.Errorf("tables %v, want %v", tables, fixtureTables)
	}
	for _, tb := range fixtureTables {
		if !slices.Contains(tables, tb) {
			t.Errorf("table %s not indexed by default (%v)", tb, tables)
		}
	}
}

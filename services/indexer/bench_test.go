package indexer

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// BenchmarkIndexer reports documents/s through the indexer (USER_CLICKSTREAM messages already in
// the stream, from the start of the indexer until the consumer acked the last one, i.e. OpenSearch
// confirmed every document) beside the raw _bulk rate of the same node in the same run (the same
// documents in requests of the same size, one at a time, no NATS).
//
//	go test -run '^$' -bench Indexer -benchtime 20000x ./services/indexer/
func BenchmarkIndexer(b *testing.B) {
	s := newSearch(b)
	cfg := testConfig(b)
	cfg.BulkDocs = 1000
	cfg.FlushInterval = 200 * time.Millisecond
	cfg.Streams, cfg.Tables = []string{topology.StreamUserClickstream}, nil
	s.cleanupIndices(cfg)
	env := natstest.Start(b)
	n := b.N
	doc := func(i int) map[string]any {
		return map[string]any{"USERID": i % 40, "USERNAME": fxUsers[i%len(fxUsers)], "IP": fxIPs[i%len(fxIPs)],
			"CITY": fxCities[i%len(fxCities)], "REQUEST": fxRequests[i%len(fxRequests)], "STATUS": fxStatuses[i%len(fxStatuses)], "BYTES": 1000 + i}
	}
	now := time.Now().UnixMilli()
	for i := 0; i < n; i++ {
		m := nats.NewMsg(topology.StreamUserClickstream)
		m.Header.Set(events.HeaderEventTime, strconv.FormatInt(now+int64(i), 10))
		m.Data, _ = json.Marshal(doc(i))
		if _, err := env.JS.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-env.JS.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishing timed out")
	}

	b.ResetTimer()
	start := time.Now()
	startIndexer(b, env, cfg, &bytes.Buffer{})
	waitAcked(b, env.JS, topology.StreamUserClickstream, cfg.Durable, uint64(n), 10*time.Minute)
	indexerElapsed := time.Since(start)
	b.StopTimer()
	if got := s.count(cfg.IndexName(topology.StreamUserClickstream)); got != n {
		b.Fatalf("%d documents, want %d", got, n)
	}

	// Raw: the same documents straight to _bulk, 1000 per request, into another index.
	raw := cfg.IndexPrefix + "raw"
	var reqs [][]byte
	for i := 0; i < n; i += cfg.BulkDocs {
		var buf bytes.Buffer
		for j := i; j < min(n, i+cfg.BulkDocs); j++ {
			body, _ := json.Marshal(doc(j))
			body, _ = withField(body, ExtractTSField, now+int64(j))
			appendAction(&buf, op{Index: raw, ID: StreamDocID("RAW", uint64(j+1)), Body: body})
		}
		reqs = append(reqs, buf.Bytes())
	}
	start = time.Now()
	for _, r := range reqs {
		if status, body := s.do("POST", "/_bulk?filter_path=errors", r); status != 200 || !bytes.Contains(body, []byte(`"errors":false`)) {
			b.Fatalf("raw bulk: %d %s", status, body)
		}
	}
	rawElapsed := time.Since(start)
	if got := s.count(raw); got != n {
		b.Fatalf("raw: %d documents, want %d", got, n)
	}
	b.ReportMetric(float64(n)/indexerElapsed.Seconds(), "indexer-docs/s")
	b.ReportMetric(float64(n)/rawElapsed.Seconds(), "raw-bulk-docs/s")
}

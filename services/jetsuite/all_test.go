package main

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/natsx"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/testenv"
	"github.com/jetsuite/jetsuite/shared/topology"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startAll runs `jetsuite all` in-process on an embedded server; stop sends the equivalent of
// Ctrl-C (context cancel) and waits for a clean exit.
func startAll(t *testing.T, dataDir, natsAddr string, extra ...string) (stop func() error, logs *syncBuffer) {
	t.Helper()
	logs = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	args := append([]string{"all", "--data-dir", dataDir, "--nats-listen", natsAddr, "--http-listen", "none"}, extra...)
	go func() { done <- run(ctx, args, logs, logs) }()
	return func() error { cancel(); return <-done }, logs
}

// TestAllFillsEveryTable: `jetsuite all` on a fresh data directory, with nothing but the
// embedded server and the generator at its default rates, fills every table within two minutes;
// stopped and started again on the same data, it continues where it stopped.
func TestAllFillsEveryTable(t *testing.T) {
	dir, addr := t.TempDir(), testenv.FreeAddr(t)
	stop, logs := startAll(t, dir, addr)
	js := connectAll(t, addr, logs)
	tables := []string{}
	for _, b := range plan.Demo().Catalog().Buckets {
		if !strings.HasSuffix(b.Name, "_STATE") {
			tables = append(tables, b.Name)
		}
	}
	started := time.Now()
	waitTablesFilled(t, js, tables, 2*time.Minute, logs)
	t.Logf("all %d tables have rows after %s", len(tables), time.Since(started).Truncate(time.Second))
	lastRating := lastSeq(t, js, topology.StreamRatings)
	if err := stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, tail(logs.String(), 20))
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", grep(logs.String(), "level=ERROR"))
	}

	// Restart on the same data: the generator continues (ratings keep counting up), the
	// windower resumes from its checkpoint instead of starting over.
	stop, logs = startAll(t, dir, addr)
	defer func() { _ = stop() }()
	deadline := time.Now().Add(30 * time.Second)
	for lastSeq(t, js, topology.StreamRatings) <= lastRating && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
	}
	if lastSeq(t, js, topology.StreamRatings) <= lastRating {
		t.Fatalf("no new ratings after the restart\n%s", tail(logs.String(), 30))
	}
	if !strings.Contains(logs.String(), "from_seq=") || strings.Contains(logs.String(), "flow=windower-CLICKSTREAM stream=CLICKSTREAM from_seq=1 ") {
		t.Errorf("windower did not resume from its checkpoint:\n%s", grep(logs.String(), "consuming"))
	}
}

// connectAll connects to the embedded server of a `jetsuite all` started by startAll.
func connectAll(t *testing.T, addr string, logs *syncBuffer) jetstream.JetStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := natsx.Connect(ctx, "nats://"+addr, "test", nil)
	if err != nil {
		t.Fatalf("connect to the embedded server: %v\n%s", err, logs)
	}
	t.Cleanup(nc.Close)
	js, err := natsx.JetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// waitTablesFilled waits until every table has a row.
func waitTablesFilled(t *testing.T, js jetstream.JetStream, tables []string, within time.Duration, logs *syncBuffer) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(within)
	empty := tables
	for len(empty) > 0 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Second)
		var still []string
		for _, name := range empty {
			kv, err := js.KeyValue(ctx, name)
			if err != nil {
				still = append(still, name)
				continue
			}
			st, err := kv.Status(ctx)
			if err != nil || st.Values() == 0 {
				still = append(still, name)
			}
		}
		empty = still
	}
	if len(empty) > 0 {
		t.Fatalf("after %s these tables are still empty: %v\nlog:\n%s", within, empty, tail(logs.String(), 40))
	}
}

// TestAllRunsTheOriginalStatements: the clickstream demo's statements.sql, byte for byte the
// original, runs as `jetsuite all --queries-file statements.sql` with the generator on, and
// every table it declares fills; the generator says what it feeds and what it leaves alone.
func TestAllRunsTheOriginalStatements(t *testing.T) {
	file := "../../shared/ksql/testdata/clickstream.sql" // fetched from confluentinc/examples
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Compile(plan.File{Name: "statements.sql", SQL: string(src)})
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for _, o := range p.Objects {
		if o.Bucket != "" {
			tables = append(tables, o.Bucket)
		}
	}
	if len(tables) != 9 {
		t.Fatalf("statements.sql declares %d tables, want 9: %v", len(tables), tables)
	}
	dir, addr := t.TempDir(), testenv.FreeAddr(t)
	stop, logs := startAll(t, dir, addr, "--queries-file", file)
	defer func() { _ = stop() }()
	js := connectAll(t, addr, logs)
	waitTablesFilled(t, js, tables, 2*time.Minute, logs)
	for _, want := range []string{"running the statements of the queries file", "msg=generating", "not generating: no statement of the pipeline reads these subjects"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, tail(logs.String(), 30))
		}
	}
	// Nothing of the ratings demo was declared: no stream of it exists.
	if _, err := js.Stream(context.Background(), topology.StreamRatings); err == nil {
		t.Errorf("stream %s exists, but statements.sql does not declare it", topology.StreamRatings)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", grep(logs.String(), "level=ERROR"))
	}
}

func lastSeq(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		return 0
	}
	info, err := s.Info(context.Background())
	if err != nil {
		return 0
	}
	return info.State.LastSeq
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n") + "\n(" + strconv.Itoa(len(out)) + " lines)"
}

// TestAllWithEmbeddedKafka: `jetsuite all --kafka-embedded` makes the Kafka bridge part of the
// embedded demo: ratings are produced to an in-process Kafka and reach JetStream through the
// bridge (message ids from topic/partition/offset), and from there the ratings pipeline.
func TestAllWithEmbeddedKafka(t *testing.T) {
	dir, addr := t.TempDir(), testenv.FreeAddr(t)
	stop, logs := startAll(t, dir, addr, "--bridge-kafka-embedded")
	defer func() { _ = stop() }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nc, err := natsx.Connect(ctx, "nats://"+addr, "test", nil)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, logs)
	}
	defer nc.Close()
	js, _ := natsx.JetStream(nc)
	for lastSeq(t, js, topology.StreamRatingsWithCustomerData) == 0 {
		if ctx.Err() != nil {
			t.Fatalf("no enriched ratings within a minute\n%s", tail(logs.String(), 30))
		}
		time.Sleep(500 * time.Millisecond)
	}
	s, err := js.Stream(ctx, topology.StreamRatings)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if id := m.Header.Get(jetstream.MsgIDHeader); !strings.HasPrefix(id, "kafka:ratings:") {
		t.Errorf("the first rating did not come through the bridge: Nats-Msg-Id %q", id)
	}
	if !strings.Contains(logs.String(), "embedded kafka (kfake) started") {
		t.Errorf("no embedded Kafka started:\n%s", tail(logs.String(), 20))
	}
}

// TestServiceAloneAgainstExternalNATS: a service runs on its own against an external NATS
// (here the server of a `jetsuite all` that runs without a windower).
func TestServiceAloneAgainstExternalNATS(t *testing.T) {
	dir, addr := t.TempDir(), testenv.FreeAddr(t)
	stopAll, logs := startAll(t, dir, addr, "--windower-enabled=false")
	defer func() { _ = stopAll() }()
	js := connectTo(t, addr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	alone := &syncBuffer{}
	go func() {
		done <- run(ctx, []string{"windower", "--nats-url", "nats://" + addr, "--http-listen", "none", "--windower-tables", topology.TableEventsPerMin}, alone, alone)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		kv, err := js.KeyValue(context.Background(), topology.TableEventsPerMin)
		if err == nil {
			if st, err := kv.Status(context.Background()); err == nil && st.Values() > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lone windower filled nothing\n%s\n%s", tail(alone.String(), 20), tail(logs.String(), 10))
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("windower: %v\n%s", err, tail(alone.String(), 20))
	}
	if !strings.Contains(alone.String(), "connected to NATS") {
		t.Errorf("the lone windower did not say where it connected:\n%s", tail(alone.String(), 10))
	}
}

package topology_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/flow"
	"github.com/jetsuite/jetsuite/shared/natsx"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// What hitting a byte limit does (docs/FOOTPRINT.md), on a real embedded server with file
// storage: a stream drops its oldest messages and a consumer that had not read them skips
// them; a windowed table's bucket drops its oldest rows; any other bucket refuses new keys, and
// a shared/flow processor writing to it stalls with its input unacked until there is room.

func startServer(t *testing.T) jetstream.JetStream {
	t.Helper()
	ns, err := natsx.StartEmbedded(natsx.EmbeddedOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := natsx.Connect(ctx, ns.ClientURL(), "limits-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := natsx.JetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

const (
	limit    = 1 << 20 // the byte limit under test
	bodySize = 10_000
)

func body(i int) []byte {
	b := bytes.Repeat([]byte{'x'}, bodySize)
	copy(b, strconv.Itoa(i)+":")
	return b
}

// TestEnsureAppliesLimits: every stream and bucket gets a byte limit: its own, else the
// option, else the default; NoLimit lifts it; a derived stream gets the short window.
func TestEnsureAppliesLimits(t *testing.T) {
	js := startServer(t)
	ctx := context.Background()
	o := topology.Options{StreamMaxBytes: 3 << 20, DerivedDedupWindow: 4 * time.Second}
	c := topology.Catalog{
		Streams: []topology.Stream{
			{Name: "SRC", Subjects: []string{"src"}, MaxAge: time.Hour},
			{Name: "OWN", Subjects: []string{"own"}, MaxBytes: 5 << 20},
			{Name: "NONE", Subjects: []string{"none"}, MaxBytes: topology.NoLimit},
			{Name: "DERIVED", Subjects: []string{"derived"}, Derived: true},
		},
		Buckets: []topology.Bucket{{Name: "DEFAULTED"}, {Name: "SMALL", MaxBytes: 2 << 20}},
	}
	if err := c.Ensure(ctx, js, o); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]struct {
		bytes int64
		dup   time.Duration
	}{
		"SRC": {3 << 20, topology.DefaultDedupWindow}, "OWN": {5 << 20, topology.DefaultDedupWindow},
		"NONE": {-1, topology.DefaultDedupWindow}, "DERIVED": {3 << 20, 4 * time.Second},
		"KV_DEFAULTED": {topology.DefaultBucketMaxBytes, 2 * time.Minute}, "KV_SMALL": {2 << 20, 2 * time.Minute},
	} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		if cfg.MaxBytes != want.bytes || cfg.Duplicates != want.dup {
			t.Errorf("%s: MaxBytes %d, Duplicates %s; want %d, %s", name, cfg.MaxBytes, cfg.Duplicates, want.bytes, want.dup)
		}
	}
	reserved, unbounded := c.Reserved(o)
	if want := int64(3<<20 + 5<<20 + 3<<20 + topology.DefaultBucketMaxBytes + 2<<20); reserved != want || !unbounded {
		t.Errorf("Reserved = %d, %v; want %d, true", reserved, unbounded, want)
	}
}

// TestStreamPastByteLimitDropsOldest: 3 MiB published into a stream of 1 MiB: every publish
// succeeds, the stream keeps the newest messages within the limit, the oldest are gone, and a
// consumer created before (that had read nothing) starts at the oldest message left.
func TestStreamPastByteLimitDropsOldest(t *testing.T) {
	js := startServer(t)
	ctx := context.Background()
	if err := topology.EnsureStream(ctx, js, topology.Stream{Name: "FULL", Subjects: []string{"full"}, MaxBytes: limit}, topology.Options{}); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "FULL", jetstream.ConsumerConfig{Durable: "slow", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3 * limit / bodySize
	for i := 1; i <= n; i++ {
		if _, err := js.Publish(ctx, "full", body(i)); err != nil {
			t.Fatalf("publish %d of %d into a full stream: %v", i, n, err)
		}
	}
	s, err := js.Stream(ctx, "FULL")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := info.State
	if st.Bytes > limit || st.LastSeq != n || st.FirstSeq <= 1 || st.Msgs != st.LastSeq-st.FirstSeq+1 || st.Msgs < n/4 {
		t.Fatalf("state after %d publishes of %d bytes: %+v; want at most %d bytes, the newest messages, the oldest gone", n, bodySize, st, limit)
	}
	if _, err := s.GetMsg(ctx, 1); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("first message still there: %v", err)
	}
	m, err := s.GetMsg(ctx, n)
	if err != nil || !bytes.HasPrefix(m.Data, []byte(strconv.Itoa(n)+":")) {
		t.Errorf("newest message: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for m := range batch.Messages() {
		md, _ := m.Metadata()
		got = append(got, md.Sequence.Stream)
	}
	if len(got) != 1 || got[0] != st.FirstSeq {
		t.Errorf("the consumer that had read nothing got %v; want the oldest message left, %d (1..%d were dropped unread)", got, st.FirstSeq, st.FirstSeq-1)
	}
}

// TestWindowedBucketPastByteLimitDropsOldestRows: a windowed table's bucket takes every put;
// the oldest rows make room, the newest are there. Declaring it again (as every start does)
// keeps it so.
func TestWindowedBucketPastByteLimitDropsOldestRows(t *testing.T) {
	js := startServer(t)
	ctx := context.Background()
	b := topology.Bucket{Name: "WINDOWS", Windowed: true, TTL: time.Hour, MaxBytes: limit}
	for range 2 {
		if _, err := topology.EnsureBucket(ctx, js, b, topology.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	kv, err := js.KeyValue(ctx, b.Name)
	if err != nil {
		t.Fatal(err)
	}
	const n = 3 * limit / bodySize
	for i := 1; i <= n; i++ {
		if _, err := kv.Put(ctx, "k."+strconv.Itoa(i), body(i)); err != nil {
			t.Fatalf("put %d of %d: %v", i, n, err)
		}
	}
	if _, err := kv.Get(ctx, "k.1"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("oldest row: %v; want it dropped", err)
	}
	if e, err := kv.Get(ctx, "k."+strconv.Itoa(n)); err != nil || !bytes.HasPrefix(e.Value(), []byte(strconv.Itoa(n)+":")) {
		t.Errorf("newest row: %v", err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes() > limit {
		t.Errorf("bucket holds %d bytes, over its limit %d", st.Bytes(), limit)
	}
}

// TestBucketPastByteLimitRefusesNewKeys: a table's (or state) bucket refuses a new key that
// does not fit, with JetStream's "maximum bytes exceeded", and loses no row. A full bucket
// takes a row replaced by a smaller or same-size one (or a delete), not a new key or a row
// that grows past the limit.
func TestBucketPastByteLimitRefusesNewKeys(t *testing.T) {
	js := startServer(t)
	ctx := context.Background()
	kv, err := topology.EnsureBucket(ctx, js, topology.Bucket{Name: "TABLE", MaxBytes: limit}, topology.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var refused error
	stored := 0
	for i := 1; i <= 2*limit/bodySize && refused == nil; i++ {
		if _, err := kv.Put(ctx, "k"+strconv.Itoa(i), body(i)); err != nil {
			refused = err
			break
		}
		stored = i
	}
	if refused == nil || !strings.Contains(refused.Error(), "maximum bytes exceeded") {
		t.Fatalf("after %d rows of %d bytes: %v; want a refusal (maximum bytes exceeded)", stored, bodySize, refused)
	}
	if stored < limit/bodySize/2 {
		t.Fatalf("refused after only %d rows", stored)
	}
	for i := 1; i <= stored; i++ {
		if _, err := kv.Get(ctx, "k"+strconv.Itoa(i)); err != nil {
			t.Fatalf("row k%d lost: %v", i, err)
		}
	}
	// nats-server 2.15 counts the row a write replaces (KV keeps one per key): a row of the
	// same size fits where it was; one that grows the bucket past its limit does not.
	if _, err := kv.Put(ctx, "k1", body(-1)); err != nil {
		t.Errorf("replacing a row by one of its size in a full bucket: %v", err)
	}
	if _, err := kv.Put(ctx, "k2", append(body(-2), make([]byte, 4*bodySize)...)); err == nil || !strings.Contains(err.Error(), "maximum bytes exceeded") {
		t.Errorf("replacing a row by a much larger one in a full bucket: %v; want a refusal", err)
	}
	if _, err := kv.Put(ctx, "k1", []byte("smaller")); err != nil {
		t.Errorf("replacing a row by a smaller one in a full bucket: %v", err)
	}
}

// logBuffer collects log lines for the test to wait on.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestProcessorStallsOnFullBucket: a shared/flow processor that writes rows into a full bucket
// does not ack its input: it logs the refusal and resumes from its checkpoint until there is
// room. Once the bucket's limit is raised, the row lands and the input is acked: nothing lost.
func TestProcessorStallsOnFullBucket(t *testing.T) {
	js := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := topology.Options{}
	if err := topology.EnsureStream(ctx, js, topology.Stream{Name: "IN", Subjects: []string{"in"}}, o); err != nil {
		t.Fatal(err)
	}
	if _, err := topology.EnsureBucket(ctx, js, topology.Bucket{Name: topology.BucketCheckpoints, State: true}, o); err != nil {
		t.Fatal(err)
	}
	table := topology.Bucket{Name: "TABLE", MaxBytes: limit}
	kv, err := topology.EnsureBucket(ctx, js, table, o)
	if err != nil {
		t.Fatal(err)
	}
	// Fill the bucket until it refuses.
	for i := 0; ; i++ {
		if _, err := kv.Put(ctx, "fill"+strconv.Itoa(i), body(i)); err != nil {
			break
		}
	}
	if _, err := js.Publish(ctx, "in", []byte("row")); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- flow.Run(ctx, js, flow.Options{Service: "test", Stream: "IN", Durable: "writer", PublishTimeout: time.Second,
			Log: slog.New(slog.NewTextHandler(logs, nil))},
			flow.HandlerFunc(func(_ context.Context, in []jetstream.Msg, out *flow.Out) error {
				for range in {
					if err := out.Put("TABLE", "new", body(0), ""); err != nil {
						return err
					}
				}
				return nil
			}))
	}()
	waitFor(t, 2*time.Minute, "the processor to log the refusal", func() bool {
		return strings.Contains(logs.String(), "maximum bytes exceeded")
	})
	if c := consumerAckFloor(t, js, "IN", "writer"); c != 0 {
		t.Fatalf("input acked (ack floor %d) although its row was refused", c)
	}
	if _, err := kv.Get(ctx, "new"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("row of the refused put: %v", err)
	}
	// Room: the processor's next attempt lands the row and acks the input.
	table.MaxBytes = 4 * limit
	if _, err := topology.EnsureBucket(ctx, js, table, o); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "the input to be acked once the bucket has room", func() bool {
		return consumerAckFloor(t, js, "IN", "writer") == 1
	})
	if _, err := kv.Get(ctx, "new"); err != nil {
		t.Errorf("row after the bucket got room: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("flow.Run: %v", err)
	}
}

func consumerAckFloor(t *testing.T, js jetstream.JetStream, stream, durable string) uint64 {
	t.Helper()
	c, err := js.Consumer(context.Background(), stream, durable)
	if err != nil {
		return 0
	}
	info, err := c.Info(context.Background())
	if err != nil {
		return 0
	}
	return info.AckFloor.Stream
}

func waitFor(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

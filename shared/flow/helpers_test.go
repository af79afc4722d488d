package flow_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/flow"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// The processor under test reads stream IN (subject "in") and writes one output per input to
// the Ordered stream OUT (subject "out"); inputs whose body is "garbage" are dead-lettered.
const (
	inStream  = "IN"
	inSubj    = "in"
	outStream = "OUT"
	outSubj   = "out"
	durable   = "flowtest"
	service   = "flowtest"
	garbage   = "garbage"
	// ackWait is the AckWait of the consumers pipe.ResumeConsumer creates; "at once" below means
	// well before it.
	ackWait = 2 * time.Minute
)

// setupStreams creates IN and OUT (OUT with the given de-duplication window, 0: the default)
// and the checkpoints bucket (natstest's topology already has it; Ensure is idempotent).
func setupStreams(t *testing.T, js jetstream.JetStream, outDup time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range []topology.Stream{
		{Name: inStream, Subjects: []string{inSubj}},
		{Name: outStream, Subjects: []string{outSubj}, Duplicates: outDup},
	} {
		if err := topology.EnsureStream(ctx, js, s, topology.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := topology.EnsureBucket(ctx, js, topology.Bucket{Name: topology.BucketCheckpoints}, topology.Options{}); err != nil {
		t.Fatal(err)
	}
}

// isGarbage says which inputs the publishers below make garbage.
func isGarbage(seq uint64) bool { return seq%97 == 0 }

// publishInputs publishes inputs from..to (their stream sequences, IN being written only
// here): body = the sequence, or "garbage" for isGarbage ones.
func publishInputs(t *testing.T, js jetstream.JetStream, from, to uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var futs []jetstream.PubAckFuture
	for seq := from; seq <= to; seq++ {
		body := strconv.FormatUint(seq, 10)
		if isGarbage(seq) {
			body = garbage
		}
		f, err := js.PublishAsync(inSubj, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		futs = append(futs, f)
	}
	for i, f := range futs {
		select {
		case ack := <-f.Ok():
			if want := from + uint64(i); ack.Sequence != want {
				t.Fatalf("input stored at seq %d, want %d", ack.Sequence, want)
			}
		case err := <-f.Err():
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("inputs not stored")
		}
	}
}

// wantOutputs is the source sequences of the outputs inputs 1..n cause, in order.
func wantOutputs(n uint64) []uint64 {
	var want []uint64
	for seq := uint64(1); seq <= n; seq++ {
		if !isGarbage(seq) {
			want = append(want, seq)
		}
	}
	return want
}

// handler is the processor under test: one output per input (body copied), dead letters for
// garbage. before, when set, runs first on every call (tests hook crashes, retries, holds).
type handler struct {
	mu      sync.Mutex
	handled []uint64 // every input sequence handed to Handle, in call order
	calls   int      // Handle calls with inputs
	before  func(ctx context.Context, in []jetstream.Msg, out *flow.Out) error
}

func (h *handler) Handle(ctx context.Context, in []jetstream.Msg, out *flow.Out) error {
	if h.before != nil {
		if err := h.before(ctx, in, out); err != nil {
			return err
		}
	}
	h.mu.Lock()
	if len(in) > 0 {
		h.calls++
	}
	for _, m := range in {
		h.handled = append(h.handled, seq(m))
	}
	h.mu.Unlock()
	for _, m := range in {
		if err := emit(out, m); err != nil {
			return err
		}
	}
	return nil
}

func emit(out *flow.Out, m jetstream.Msg) error {
	if string(m.Data()) == garbage {
		return out.DeadLetter(m, fmt.Errorf("%w: x", events.ErrNotJSON))
	}
	return out.Emit(outSubj, m.Data(), "", m)
}

func (h *handler) lastHandled() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.handled) == 0 {
		return 0
	}
	return h.handled[len(h.handled)-1]
}

func (h *handler) firstHandled() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.handled) == 0 {
		return 0
	}
	return h.handled[0]
}

func seq(m jetstream.Msg) uint64 {
	md, err := m.Metadata()
	if err != nil {
		panic(err)
	}
	return md.Sequence.Stream
}

// output is one message of OUT.
type output struct {
	seq  uint64 // OUT's sequence
	id   string
	src  uint64 // the input's sequence, from the id (0: not an output of IN)
	data string
}

// readStream returns every message of stream (optionally only subject filter), in order.
func readStream(t *testing.T, js jetstream.JetStream, stream, filter string) []output {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	last := s.CachedInfo().State.LastSeq
	if last == 0 {
		return nil
	}
	cfg := jetstream.OrderedConsumerConfig{}
	if filter != "" {
		cfg.FilterSubjects = []string{filter}
	}
	c, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var outs []output
	for {
		b, err := c.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range b.Messages() {
			n++
			md, _ := m.Metadata()
			o := output{seq: md.Sequence.Stream, id: m.Headers().Get(jetstream.MsgIDHeader), data: string(m.Data())}
			o.src = srcOf(o.id)
			outs = append(outs, o)
			if md.Sequence.Stream >= last {
				return outs
			}
		}
		if n == 0 {
			if filter != "" {
				return outs // the filtered subject's last message may come before last
			}
			t.Fatalf("%s: read up to %d of %d", stream, len(outs), last)
		}
	}
}

// srcOf parses "out:IN:<seq>" (0 for anything else).
func srcOf(id string) uint64 {
	parts := strings.Split(id, ":")
	if len(parts) != 3 || parts[0] != outSubj || parts[1] != inStream {
		return 0
	}
	n, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// ours keeps the outputs of the processor (drops foreign messages).
func ours(outs []output) []output {
	var r []output
	for _, o := range outs {
		if o.src != 0 {
			r = append(r, o)
		}
	}
	return r
}

// checkOutputs asserts that OUT holds exactly the outputs of want, each once, in that order,
// each with its input's body. It returns the problem instead of failing, for waitFor.
func checkOutputs(outs []output, want []uint64) error {
	outs = ours(outs)
	for i, o := range outs {
		if i >= len(want) {
			return fmt.Errorf("%d outputs, want %d; extra output %d: %s (out seq %d)", len(outs), len(want), i, o.id, o.seq)
		}
		if o.src != want[i] {
			prev := ""
			if i > 0 {
				prev = outs[i-1].id
			}
			return fmt.Errorf("output %d (out seq %d) is %s after %s, want source seq %d", i, o.seq, o.id, prev, want[i])
		}
		if o.data != strconv.FormatUint(o.src, 10) {
			return fmt.Errorf("output %s has body %q", o.id, o.data)
		}
	}
	if len(outs) != len(want) {
		return fmt.Errorf("%d outputs, want %d", len(outs), len(want))
	}
	return nil
}

// checkDeadLetters asserts that DEAD_LETTER holds one dead letter per garbage input 1..n (in
// any order: dead letters are not chained).
func checkDeadLetters(t *testing.T, js jetstream.JetStream, n uint64) {
	t.Helper()
	seen := map[string]int{}
	for _, d := range readStream(t, js, topology.StreamDeadLetter, topology.DeadLetterPrefix+inStream) {
		seen[d.id]++
	}
	for seq := uint64(1); seq <= n; seq++ {
		id := "dlq:" + service + ":" + inStream + ":" + strconv.FormatUint(seq, 10)
		switch {
		case isGarbage(seq) && seen[id] != 1:
			t.Errorf("dead letter of input %d stored %d times", seq, seen[id])
		case !isGarbage(seq) && seen[id] != 0:
			t.Errorf("input %d dead-lettered", seq)
		}
		delete(seen, id)
	}
	for id := range seen {
		t.Errorf("unexpected dead letter %s", id)
	}
}

// waitFor polls cond until it returns nil, failing the test with its last error after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitDone waits until OUT holds the outputs of inputs 1..n and the checkpoint is n.
func waitDone(t *testing.T, js jetstream.JetStream, n uint64, timeout time.Duration) {
	t.Helper()
	want := wantOutputs(n)
	waitFor(t, timeout, "all outputs and the checkpoint", func() error {
		cp, err := checkpointOf(js)
		if err != nil {
			return err
		}
		if cp != n {
			return fmt.Errorf("checkpoint %d, want %d", cp, n)
		}
		s, err := js.Stream(context.Background(), outStream)
		if err != nil {
			return err
		}
		if got := s.CachedInfo().State.Msgs; got < uint64(len(want)) {
			return fmt.Errorf("OUT has %d messages, want %d", got, len(want))
		}
		return nil
	})
}

func checkpointOf(js jetstream.JetStream) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return flow.Checkpoint(ctx, js, durable, inStream)
}

func consumerInfo(t *testing.T, js jetstream.JetStream) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, inStream, durable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// waitAcked waits until the consumer has nothing pending and its ack floor is seq.
func waitAcked(t *testing.T, js jetstream.JetStream, seq uint64) {
	t.Helper()
	waitAckFloor(t, js, seq, true)
}

// waitAckFloor waits until the consumer's ack floor is seq (and, with nonePending, nothing is
// pending: after a stop, inputs fetched and released stay pending until the next start
// recreates the consumer).
func waitAckFloor(t *testing.T, js jetstream.JetStream, seq uint64, nonePending bool) {
	t.Helper()
	waitFor(t, 30*time.Second, "consumer acked", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := js.Consumer(ctx, inStream, durable)
		if err != nil {
			return err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if (nonePending && info.NumAckPending != 0) || info.AckFloor.Stream != seq {
			return fmt.Errorf("ack pending %d, ack floor %d, want 0 and %d", info.NumAckPending, info.AckFloor.Stream, seq)
		}
		return nil
	})
}

// options is the processor's declaration; tests adjust it.
func options(t *testing.T) flow.Options {
	return flow.Options{
		Service: service,
		Stream:  inStream,
		Durable: durable,
		Ordered: []string{outStream},
		Batch:   100,
		Tick:    50 * time.Millisecond,
		Log:     testLogger(t, nil),
	}
}

// running is a flow.Run in a goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, js jetstream.JetStream, o flow.Options, h flow.Handler) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- flow.Run(ctx, js, o, h) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(60 * time.Second):
			t.Error("Run did not return after the test")
		}
	})
	return r
}

// wait waits for Run to return by itself.
func (r *running) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(timeout):
		t.Fatalf("Run did not return within %s", timeout)
		return nil
	}
}

// stop cancels Run and waits for it.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.wait(t, 60*time.Second)
}

// testLogger logs through t until the test ends; records, when set, collects the messages.
func testLogger(t *testing.T, records *logRecords) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	var h slog.Handler = slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})
	if records != nil {
		records.next = h
		h = records
	}
	return slog.New(h)
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// logRecords is a slog.Handler that remembers the messages logged.
type logRecords struct {
	mu   sync.Mutex
	msgs []string
	next slog.Handler
}

func (l *logRecords) Enabled(ctx context.Context, lv slog.Level) bool { return true }
func (l *logRecords) Handle(ctx context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	return l.next.Handle(ctx, r)
}
func (l *logRecords) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecordsView{l: l, next: l.next.WithAttrs(as)}
}
func (l *logRecords) WithGroup(name string) slog.Handler {
	return &logRecordsView{l: l, next: l.next.WithGroup(name)}
}

func (l *logRecords) has(substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if strings.Contains(m, substr) {
			return true
		}
	}
	return false
}

type logRecordsView struct {
	l    *logRecords
	next slog.Handler
}

func (v *logRecordsView) Enabled(ctx context.Context, lv slog.Level) bool { return true }
func (v *logRecordsView) Handle(ctx context.Context, r slog.Record) error {
	v.l.mu.Lock()
	v.l.msgs = append(v.l.msgs, r.Message)
	v.l.mu.Unlock()
	return v.next.Handle(ctx, r)
}
func (v *logRecordsView) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecordsView{l: v.l, next: v.next.WithAttrs(as)}
}
func (v *logRecordsView) WithGroup(name string) slog.Handler {
	return &logRecordsView{l: v.l, next: v.next.WithGroup(name)}
}

package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/runner"
)

// startKfake starts an in-memory Kafka with the given topics.
func startKfake(t testing.TB, partitions int32, topics ...string) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func kafkaClient(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.AllowAutoTopicCreation()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produce(t testing.TB, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// produceN produces n records "<topic>-<i>" round-robin over the topic's partitions.
func produceN(t testing.TB, cl *kgo.Client, topic string, from, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for i := from; i < from+n; i++ {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "%s-%d", topic, i)},
			func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					first = errors.Join(first, err)
					mu.Unlock()
				}
				wg.Done()
			})
	}
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
}

// running is a bridge started in this process.
type running struct {
	svc    *Service
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Fatalf("bridge: %v", r.err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("bridge did not stop")
	}
}

func startBridge(t testing.TB, env *natstest.Env, c Config) *running {
	t.Helper()
	nc, js := env.Connect(t)
	svc, err := New(c, runner.Deps{NC: nc, JS: js, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{svc: svc, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = svc.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	if err := waitFor(30*time.Second, func() error { return svc.ready.Check() }); err != nil {
		t.Fatal(err)
	}
	return r
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// waitFor polls f until it returns nil or the time is up, returning f's last error.
func waitFor(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func streamMsgs(t testing.TB, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// readStream returns every message of a stream, in order.
func readStream(t testing.TB, js jetstream.JetStream, stream string) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := streamMsgs(t, js, stream)
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(5000))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	out := make([]jetstream.Msg, 0, n)
	for uint64(len(out)) < n {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			t.Fatalf("read %d of %d messages of %s: %v", len(out), n, stream, err)
		}
		out = append(out, m)
	}
	return out
}

// assertExactlyOnce checks that the stream holds exactly one message per record of want
// (msg id -> body), nothing missing, nothing twice, nothing else.
func assertExactlyOnce(t testing.TB, js jetstream.JetStream, stream string, want map[string]string) {
	t.Helper()
	msgs := readStream(t, js, stream)
	seen := make(map[string]int, len(msgs))
	for _, m := range msgs {
		id := m.Headers().Get("Nats-Msg-Id")
		seen[id]++
		if body, ok := want[id]; !ok {
			t.Errorf("unexpected message %q", id)
		} else if body != string(m.Data()) {
			t.Errorf("%s: body %q, want %q", id, m.Data(), body)
		}
	}
	missing, twice := 0, 0
	for id := range want {
		switch seen[id] {
		case 0:
			missing++
		case 1:
		default:
			twice++
		}
	}
	if missing > 0 || twice > 0 || len(msgs) != len(want) {
		t.Fatalf("%s: %d messages for %d records: %d missing, %d twice", stream, len(msgs), len(want), missing, twice)
	}
}

// expected lists what produceN wrote into topic as msg id -> body, given the records' offsets.
func expected(t testing.TB, brokers []string, topic string) map[string]string {
	t.Helper()
	cl := kafkaClient(t, brokers, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ends := endOffsets(t, brokers, topic)
	var total int64
	for _, e := range ends {
		total += e
	}
	want := make(map[string]string, total)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for int64(len(want)) < total {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s back: %v", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) { want[MsgID(r.Topic, r.Partition, r.Offset)] = string(r.Value) })
	}
	return want
}

func endOffsets(t testing.TB, brokers []string, topic string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(kafkaClient(t, brokers))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// committed returns the group's committed offsets for topic.
func committed(t testing.TB, brokers []string, group, topic string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(kafkaClient(t, brokers))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			out[o.Partition] = o.At
		}
	})
	return out
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// bridgeBinary builds bridge/internal/bridgemain once per test run.
func bridgeBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bridgemain")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "bridgemain")
		out, err := exec.Command("go", "build", "-o", buildBin, "./internal/bridgemain").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// startProcess runs the bridge as a separate process (so that a test can SIGKILL it).
func startProcess(t testing.TB, env []string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bridgeBinary(t))
	cmd.Env = append(os.Environ(), env...)
	if testing.Verbose() {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// killTwiceThenFinish runs the bridge as a process (environment procEnv) and SIGKILLs it twice,
// each time after it copied at least step more records into stream, then runs it until all
// total records are there and stops it with SIGTERM. It fails if the bridge finished before it
// could be killed: then nothing was tested.
func killTwiceThenFinish(t *testing.T, js jetstream.JetStream, stream string, procEnv []string, total, step uint64, progress, finish time.Duration) {
	t.Helper()
	kills := 0
	for range 2 {
		p := startProcess(t, procEnv)
		before := streamMsgs(t, js, stream)
		if err := waitFor(progress, func() error {
			if n := streamMsgs(t, js, stream); n < before+step {
				return fmt.Errorf("%d messages", n)
			}
			return nil
		}); err != nil {
			t.Fatalf("bridge made no progress: %v", err)
		}
		if n := streamMsgs(t, js, stream); n < total {
			if err := p.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			kills++
			t.Logf("SIGKILLed the bridge at %d of %d messages", n, total)
		}
		_ = p.Process.Kill()
		_ = p.Wait()
	}
	if kills == 0 {
		t.Fatal("the bridge finished before it could be killed: nothing was tested")
	}
	p := startProcess(t, procEnv)
	if err := waitFor(finish, func() error {
		if n := streamMsgs(t, js, stream); n < total {
			return fmt.Errorf("%d of %d", n, total)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = p.Process.Signal(syscall.SIGTERM)
	_ = p.Wait()
}

package windower_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/services/windower"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/pipe"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/topology"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func publishClick(t *testing.T, js jetstream.JetStream, id string, ts int64, body string) {
	t.Helper()
	m := nats.NewMsg(topology.SubjectClickstream)
	m.Header.Set("Event-Time", strconv.FormatInt(ts, 10))
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Data = []byte(body)
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func streamMsgs(t *testing.T, js jetstream.JetStream, stream, subject string, want int) []jetstream.Msg {
	return streamMsgsWithin(t, js, stream, subject, want, 10*time.Second)
}

func streamMsgsWithin(t *testing.T, js jetstream.JetStream, stream, subject string, want int, wait time.Duration) []jetstream.Msg {
	t.Helper()
	c, err := js.OrderedConsumer(context.Background(), stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	deadline := time.Now().Add(wait)
	for len(out) < want && time.Now().Before(deadline) {
		b, err := c.Fetch(want-len(out), jetstream.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			out = append(out, m)
		}
	}
	return out
}

// TestIdleInputClosesWindows: when clicks stop, stream time follows the wall clock after the
// idle timeout, every window closes without a new event, and each visible row is published once
// on final.<TABLE>, equal to the row in the table.
func TestIdleInputClosesWindows(t *testing.T) {
	env := natstest.Start(t)
	for i := range 14 {
		status := "404"
		if i%2 == 0 {
			status = "200"
		}
		publishClick(t, env.JS, "c"+strconv.Itoa(i), t0+int64(i)*1000,
			`{"ip":"1.2.3.4","userid":`+strconv.Itoa(i%3)+`,"status":"`+status+`","request":"GET /index.html HTTP/1.1"}`)
	}
	clock := &fakeClock{now: time.Now()}
	nc, js := env.Connect(t)
	svc, err := windower.New(windower.Config{
		Grace: 30 * time.Second, IdleTimeout: 5 * time.Second, FlushInterval: 10 * time.Millisecond,
		Tables: []string{topology.TableEventsPerMin, topology.TableErrorsPerMinAlert},
	}, runner.Deps{NC: nc, JS: js, Health: obs.NewHealth()})
	if err != nil {
		t.Fatal(err)
	}
	svc.SetClock(clock.Now)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// All 14 clicks land in one minute: 3 EVENTS_PER_MIN rows (userid 0, 1, 2); 7 errors (404)
	// give ERRORS_PER_MIN_ALERT rows in the 3 hopping windows holding them, with count 7 > 5.
	time.Sleep(500 * time.Millisecond)
	if got := len(streamMsgsWithin(t, env.JS, topology.StreamWindowsFinal, "final.>", 1, 300*time.Millisecond)); got != 0 {
		t.Fatalf("%d final rows before the input went idle", got)
	}
	clock.Add(4 * time.Second) // not idle long enough yet
	time.Sleep(300 * time.Millisecond)
	if got := len(streamMsgsWithin(t, env.JS, topology.StreamWindowsFinal, "final.>", 1, 300*time.Millisecond)); got != 0 {
		t.Fatalf("%d final rows before the idle timeout", got)
	}
	clock.Add(10 * time.Minute) // idle: stream time advances with the (fake) wall clock
	finals := streamMsgs(t, env.JS, topology.StreamWindowsFinal, "final.>", 6)
	if len(finals) != 6 {
		t.Fatalf("got %d final rows, want 3 EVENTS_PER_MIN + 3 ERRORS_PER_MIN_ALERT", len(finals))
	}
	for _, f := range finals {
		table := f.Subject()[len("final."):]
		kv, err := env.JS.KeyValue(context.Background(), table)
		if err != nil {
			t.Fatal(err)
		}
		e, err := kv.Get(context.Background(), f.Headers().Get("Jetsuite-Window-Key"))
		if err != nil {
			t.Fatalf("final row %s not in the table: %v", f.Headers().Get("Jetsuite-Window-Key"), err)
		}
		if string(e.Value()) != string(f.Data()) {
			t.Errorf("final row %s differs from the table row", f.Data())
		}
		var row map[string]any
		_ = json.Unmarshal(f.Data(), &row)
		if table == topology.TableErrorsPerMinAlert && row["ERRORS"].(float64) != 7 {
			t.Errorf("ERRORS_PER_MIN_ALERT final row %s, want ERRORS 7", f.Data())
		}
	}
	// Closed windows left the saved state too.
	time.Sleep(100 * time.Millisecond)
	state, _ := env.JS.KeyValue(context.Background(), topology.BucketWindowerState)
	e, err := state.Get(context.Background(), topology.TableEventsPerMin+".0")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		W []any `json:"w"`
	}
	_ = json.Unmarshal(e.Value(), &g)
	if len(g.W) != 0 {
		t.Errorf("closed windows still in saved state: %s", e.Value())
	}
}

// TestBadInputDeadLettered: undecodable clicks go to dlq.CLICKSTREAM with the reason, and the
// windower goes on counting the good ones.
func TestBadInputDeadLettered(t *testing.T) {
	env := natstest.Start(t)
	bad := map[string]string{
		"not-json":  `this is not json`,
		"wrongtype": `{"ip":"1.2.3.4","userid":true,"status":"200"}`,
		"large":     `{"ip":"1.2.3.4","userid":1,"status":"200","agent":"` + string(make([]byte, 0)) + pad(1<<20) + `"}`,
	}
	publishClick(t, env.JS, "good1", t0, `{"ip":"1.2.3.4","userid":"7","status":200}`)
	for id, body := range bad {
		publishClick(t, env.JS, id, t0+1, body)
	}
	// Valid rows as SQL sees them: no userid is a NULL group key (dropped, as ksqlDB drops it);
	// status 999 is just a number.
	publishClick(t, env.JS, "missing", t0+1, `{"ip":"1.2.3.4","status":"200"}`)
	publishClick(t, env.JS, "unknown", t0+1, `{"ip":"1.2.3.4","userid":1,"status":"999"}`)
	publishClick(t, env.JS, "good2", t0+2, `{"ip":"1.2.3.4","userid":7,"status":"200"}`)
	stop := startWindower(t, env, windower.Config{Grace: time.Minute, FlushInterval: 10 * time.Millisecond, Tables: []string{topology.TableEventsPerMin}}, nil)
	defer stop()
	dl := streamMsgs(t, env.JS, topology.StreamDeadLetter, "dlq.CLICKSTREAM", len(bad))
	reasons := map[string]bool{}
	for _, m := range dl {
		reasons[m.Headers().Get(pipe.HeaderDLQReason)] = true
		if m.Headers().Get(pipe.HeaderDLQSourceSeq) == "" || m.Headers().Get(pipe.HeaderDLQError) == "" {
			t.Errorf("dead letter without source or error headers: %v", m.Headers())
		}
	}
	for _, r := range []string{pipe.ReasonNotJSON, pipe.ReasonWrongType, pipe.ReasonTooLarge} {
		if !reasons[r] {
			t.Errorf("no dead letter with reason %s (got %v)", r, reasons)
		}
	}
	kv, _ := env.JS.KeyValue(context.Background(), topology.TableEventsPerMin)
	deadline := time.Now().Add(5 * time.Second)
	for {
		e, err := kv.Get(context.Background(), windower.RowKey("7", t0-t0%60000))
		if err == nil {
			var row map[string]any
			_ = json.Unmarshal(e.Value(), &row)
			if row["EVENTS"].(float64) == 2 {
				if e, err := kv.Get(context.Background(), windower.RowKey("1", t0-t0%60000)); err == nil && strings.Contains(string(e.Value()), `"EVENTS":1,`) {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the two good clicks (userid 7 as string and number) were not counted")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pad(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'x'
	}
	return string(b)
}

// TestIdleCloseAfterRestart: windows restored after a restart close on the idle timeout even
// if no event ever comes again.
func TestIdleCloseAfterRestart(t *testing.T) {
	env := natstest.Start(t)
	publishClick(t, env.JS, "only", t0, `{"ip":"1.2.3.4","userid":7,"status":"200","request":"GET /index.html HTTP/1.1"}`)
	cfg := windower.Config{Grace: 30 * time.Second, IdleTimeout: 5 * time.Second, FlushInterval: 10 * time.Millisecond,
		Tables: []string{topology.TableEventsPerMin}}
	run := func(now func() time.Time) (stop func()) {
		nc, js := env.Connect(t)
		svc, err := windower.New(cfg, runner.Deps{NC: nc, JS: js, Health: obs.NewHealth()})
		if err != nil {
			t.Fatal(err)
		}
		svc.SetClock(now)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}
	stop := run(time.Now)
	waitConsumed1(t, env.JS)
	stop()
	clock := &fakeClock{now: time.Now()}
	stop = run(clock.Now)
	defer stop()
	time.Sleep(300 * time.Millisecond)
	clock.Add(10 * time.Minute)
	if got := len(streamMsgs(t, env.JS, topology.StreamWindowsFinal, "final."+topology.TableEventsPerMin, 1)); got != 1 {
		t.Fatalf("%d final rows after the restart and the idle timeout, want 1", got)
	}
}

func waitConsumed1(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := js.Consumer(context.Background(), topology.StreamClickstream, "windower-"+topology.StreamClickstream); err == nil {
			if info, err := c.Info(context.Background()); err == nil && info.AckFloor.Stream >= 1 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the click was not consumed")
}

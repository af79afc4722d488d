package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/topology"
)

type harness struct {
	t     testing.TB
	env   *natstest.Env
	js    jetstream.JetStream // the test's own connection
	slack *fakeSlack
	cfg   Config
	logs  *syncBuffer

	nc     *nats.Conn // the running service's connection
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t testing.TB) *harness {
	env := natstest.Start(t)
	_, js := env.Connect(t)
	h := &harness{t: t, env: env, js: js, slack: newFakeSlack(t), logs: &syncBuffer{}}
	h.cfg = Config{SlackToken: "xoxb-test-token", Channel: "unhappy-customers", APIURL: h.slack.URL(),
		Username: "KSQL Notifications", Icon: ":rocket:", Rate: 200, Burst: 200, MaxDigest: 20,
		RetryMin: 100 * time.Millisecond, RetryMax: time.Second, Timeout: 2 * time.Second,
		Batch: 500}
	t.Cleanup(func() { h.stop(false) })
	return h
}

// start runs the service on a connection of its own (so a test can kill it by closing it).
func (h *harness) start() {
	h.t.Helper()
	nc, js := h.env.Connect(h.t)
	// Stop the service before its connection closes (cleanups run last-in first-out).
	h.t.Cleanup(func() { h.stop(false) })
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s := New(runner.Deps{NC: nc, JS: js, Log: log, Health: obs.NewHealth()}, h.cfg)
	ctx, cancel := context.WithCancel(context.Background())
	h.nc, h.cancel, h.done = nc, cancel, make(chan error, 1)
	go func() { h.done <- s.Run(ctx) }()
}

// stop stops the service; killed says it died (its error is expected).
func (h *harness) stop(killed bool) {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if killed {
		// A killed process is gone; here its goroutine may stay blocked on publish futures of the
		// closed connection (nats.go does not fail them on close), so do not wait for it.
		h.cancel = nil
		return
	}
	select {
	case err := <-h.done:
		if err != nil && !killed {
			h.t.Errorf("alerting: %v", err)
		}
	case <-time.After(20 * time.Second):
		h.t.Errorf("alerting did not stop")
	}
	h.nc.Close()
	h.cancel = nil
}

// kill closes the service's NATS connection at once: nothing it has not published yet gets out.
func (h *harness) kill() {
	h.nc.Close()
	h.cancel()
}

type rating struct {
	id       int64
	stars    any // int, "2", or nil
	club     any
	email    string
	message  string
	fullName string
}

// json is the rating's UNHAPPY_PLATINUM_CUSTOMERS row, as the enricher writes it.
func (r rating) json() []byte {
	b, _ := json.Marshal(map[string]any{"FULL_NAME": r.fullName, "CLUB_STATUS": r.club, "EMAIL": r.email,
		"STARS": r.stars, "MESSAGE": r.message, "RATING_ID": r.id})
	return b
}

func unhappyRating(id int64) rating {
	return rating{id: id, stars: 1, club: "platinum", email: fmt.Sprintf("ltoopin%d@icio.us", id),
		message: fmt.Sprintf("more peanuts please (%d)", id), fullName: "Laney Toopin"}
}

// publishRating publishes the UNHAPPY_PLATINUM_CUSTOMERS row of a rating that the statement's
// WHERE (STARS < 3 AND CLUB_STATUS = 'platinum', run by the enricher) lets through.
func (h *harness) publishRating(r rating, eventMs int64) {
	h.t.Helper()
	if s, ok := r.stars.(int); !ok || s >= 3 || r.club != "platinum" {
		return
	}
	m := nats.NewMsg(topology.StreamUnhappyPlatinumCustomers)
	m.Data = r.json()
	m.Header.Set(events.HeaderEventTime, strconv.FormatInt(eventMs, 10))
	if _, err := h.js.PublishMsg(context.Background(), m); err != nil {
		h.t.Fatal(err)
	}
}

// waitAlerts waits until Slack has messages for every id in want.
func (h *harness) waitAlerts(want []int64, within time.Duration) map[string]int {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for {
		c := h.slack.counts()
		missing := 0
		for _, id := range want {
			if c["rating."+strconv.FormatInt(id, 10)] == 0 {
				missing++
			}
		}
		if missing == 0 {
			return c
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%d of %d alerts never reached Slack (%d messages)", missing, len(want), len(h.slack.snapshot()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func expectExactlyOnce(t testing.TB, c map[string]int, want []int64) {
	t.Helper()
	if len(c) != len(want) {
		t.Errorf("Slack got %d distinct alerts, want %d", len(c), len(want))
	}
	for _, id := range want {
		if n := c["rating."+strconv.FormatInt(id, 10)]; n != 1 {
			t.Errorf("rating %d: %d messages, want exactly 1", id, n)
		}
	}
}

func ids(from, to int64) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// --- tests ---

func TestOneMessagePerRatingAcrossRedeliveryAndRestart(t *testing.T) {
	h := newHarness(t)
	h.start()
	for _, id := range ids(1, 10) {
		h.publishRating(unhappyRating(id), time.Now().UnixMilli())
		h.publishRating(rating{id: 1000 + id, stars: 5, club: "platinum", email: "happy@x", message: "great", fullName: "H"}, time.Now().UnixMilli())
	}
	c := h.waitAlerts(ids(1, 10), 10*time.Second)
	expectExactlyOnce(t, c, ids(1, 10))
	for _, p := range h.slack.snapshot() {
		id := strings.TrimPrefix(p.IDs[0], "rating.")
		want := fmt.Sprintf("`ltoopin%s@icio.us` just left a bad review :disappointed:\n> more peanuts please (%s)\n\n_Please contact them immediately and see if we can fix the issue *right here, right now*_", id, id)
		if p.Text != want {
			t.Fatalf("text %q, want %q", p.Text, want)
		}
		if p.Channel != "unhappy-customers" || p.Username != "KSQL Notifications" || p.Icon != ":rocket:" || len(p.Blocks) < 4 {
			t.Fatalf("post %+v", p)
		}
		blocks, _ := json.Marshal(p.Blocks)
		for _, s := range []string{"Laney Toopin", "platinum", "ltoopin" + id + "@icio.us", "more peanuts please", "★☆☆☆☆"} {
			if !bytes.Contains(blocks, []byte(s)) {
				t.Fatalf("blocks lack %q: %s", s, blocks)
			}
		}
	}

	// Redeliveries: the same rows again on UNHAPPY_PLATINUM_CUSTOMERS (a replayed filter with new
	// message ids), and a restart that replays the whole stream from scratch.
	for _, id := range ids(1, 10) {
		r := unhappyRating(id)
		b, _ := json.Marshal(map[string]any{"RATING_ID": r.id, "FULL_NAME": r.fullName, "CLUB_STATUS": r.club, "EMAIL": r.email, "STARS": 1, "MESSAGE": r.message})
		if _, err := h.js.Publish(context.Background(), topology.StreamUnhappyPlatinumCustomers, b); err != nil {
			t.Fatal(err)
		}
	}
	h.stop(false)
	// Replay from scratch: no checkpoint (the runtime's, in JETSUITE_CHECKPOINTS) and no consumer
	// (whose ack floor the runtime would fall back to).
	kv, _ := h.js.KeyValue(context.Background(), topology.BucketCheckpoints)
	if err := kv.Delete(context.Background(), "alerting-slack"); err != nil {
		t.Fatal(err)
	}
	if err := h.js.DeleteConsumer(context.Background(), topology.StreamUnhappyPlatinumCustomers, "alerting-slack"); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.publishRating(unhappyRating(11), time.Now().UnixMilli())
	h.waitAlerts(ids(1, 11), 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	expectExactlyOnce(t, h.slack.counts(), ids(1, 11))
	// The restarted notifier really read all 21 rows again (10 + 10 redelivered + 1 new).
	cons, err := h.js.Consumer(context.Background(), topology.StreamUnhappyPlatinumCustomers, "alerting-slack")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := cons.Info(context.Background()); err != nil || info.Delivered.Consumer != 21 || info.AckFloor.Stream != 21 {
		t.Fatalf("replay: delivered %d, ack floor %d (%v); want 21, 21", info.Delivered.Consumer, info.AckFloor.Stream, err)
	}
}

func TestKilledMidBatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		// dropAnswer: Slack accepted but the answer never arrived (no kill: the alerter must find
		// it in the history itself); otherwise the alerter dies right after Slack accepted.
		dropAnswer bool
	}{{"process_killed_after_slack_accepted", false}, {"answer_lost", true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.cfg.Batch = 50
			h.start()
			var once sync.Once
			killed := make(chan struct{})
			h.slack.beforeAnswer = func(p posted) bool {
				n := len(h.slack.snapshot())
				if n != 4 {
					return false
				}
				if tc.dropAnswer {
					return true
				}
				once.Do(func() { h.kill(); close(killed) })
				return false
			}
			for _, id := range ids(1, 10) {
				h.publishRating(unhappyRating(id), time.Now().UnixMilli())
			}
			if !tc.dropAnswer {
				select {
				case <-killed:
				case <-time.After(10 * time.Second):
					t.Fatal("never killed")
				}
				h.stop(true)
				h.slack.beforeAnswer = nil
				h.start()
			}
			c := h.waitAlerts(ids(1, 10), 15*time.Second)
			time.Sleep(300 * time.Millisecond)
			expectExactlyOnce(t, h.slack.counts(), ids(1, 10))
			_ = c
			h.slack.mu.Lock()
			hc := h.slack.historyCalls
			h.slack.mu.Unlock()
			if hc == 0 {
				t.Fatal("the history was never checked")
			}
		})
	}
}

func TestRateLimited(t *testing.T) {
	h := newHarness(t)
	h.cfg.Rate, h.cfg.Burst = 50, 5
	h.slack.rateLimit, h.slack.retryAfter = 2, "1"
	h.start()
	for _, id := range ids(1, 30) {
		h.publishRating(unhappyRating(id), time.Now().UnixMilli())
		time.Sleep(5 * time.Millisecond)
	}
	h.waitAlerts(ids(1, 30), 15*time.Second)
	time.Sleep(300 * time.Millisecond)
	expectExactlyOnce(t, h.slack.counts(), ids(1, 30))
	// Retry-After honoured: after each 429 the next call came at least a second later.
	h.slack.mu.Lock()
	calls := append([]call(nil), h.slack.calls...)
	h.slack.mu.Unlock()
	for i, c := range calls {
		if c.Status == 429 && i+1 < len(calls) {
			if gap := calls[i+1].At.Sub(c.At); gap < 950*time.Millisecond {
				t.Fatalf("call after a 429 came %v later, Retry-After was 1 s", gap)
			}
		}
	}
}

// TestSlackDownThenBack: Slack answers 500 for a minute (5 s with -short), then recovers;
// every alert arrives, once, in order, and none was acked while Slack was away.
func TestSlackDownThenBack(t *testing.T) {
	h := newHarness(t)
	h.cfg.RetryMin, h.cfg.RetryMax = 200*time.Millisecond, 2*time.Second
	outage := time.Minute
	if testing.Short() {
		outage = 5 * time.Second
	}
	h.slack.failUntil = time.Now().Add(outage)
	h.start()
	for _, id := range ids(1, 20) {
		h.publishRating(unhappyRating(id), time.Now().UnixMilli())
		time.Sleep(outage / 40) // arrivals spread over the first half of the outage
	}
	// During the outage nothing is acked: the alerts wait in JetStream, not in memory.
	cons, err := h.js.Consumer(context.Background(), topology.StreamUnhappyPlatinumCustomers, "alerting-slack")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := cons.Info(context.Background()); err != nil || info.AckFloor.Stream != 0 {
		t.Fatalf("acked during the outage: %+v %v", info.AckFloor, err)
	}
	h.waitAlerts(ids(1, 20), outage+30*time.Second)
	time.Sleep(300 * time.Millisecond)
	posts := h.slack.snapshot()
	expectExactlyOnce(t, h.slack.counts(), ids(1, 20))
	var order []string
	for _, p := range posts {
		if p.At.Before(h.slack.failUntil) {
			t.Fatal("accepted during the outage")
		}
		order = append(order, p.IDs...)
	}
	for i, id := range order {
		if id != "rating."+strconv.Itoa(i+1) {
			t.Fatalf("out of order: %v", order)
		}
	}
}

func TestBurstBecomesDigests(t *testing.T) {
	h := newHarness(t)
	h.cfg.Rate, h.cfg.Burst, h.cfg.MaxDigest = 20, 3, 20
	all := ids(1, 1000)
	for _, id := range all {
		h.publishRating(unhappyRating(id), time.Now().UnixMilli())
	}
	h.start()
	h.waitAlerts(all, 30*time.Second)
	time.Sleep(300 * time.Millisecond)
	expectExactlyOnce(t, h.slack.counts(), all)
	posts := h.slack.snapshot()
	digests := 0
	for _, p := range posts {
		if len(p.IDs) > 1 {
			digests++
			if len(p.IDs) > 20 || !strings.Contains(p.Text, "ltoopin") || len(p.Blocks) != len(p.IDs)+2 {
				t.Fatalf("digest %d ids, %d blocks: %.200s", len(p.IDs), len(p.Blocks), p.Text)
			}
		}
	}
	if digests == 0 || len(posts) > 60 {
		t.Fatalf("%d messages, %d digests for 1000 alerts", len(posts), digests)
	}
	t.Logf("1000 alerts -> %d messages (%d digests)", len(posts), digests)
}

func TestDryRun(t *testing.T) {
	h := newHarness(t)
	h.cfg.SlackToken = ""
	h.start()
	h.publishRating(unhappyRating(1), time.Now().UnixMilli())
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(h.logs.String(), "would send") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "level=INFO msg=\"no JETSUITE_ALERTING_SLACK_BOT_TOKEN: dry run") {
		t.Fatalf("no dry-run notice at start:\n%s", logs)
	}
	if !strings.Contains(logs, "would send") || !strings.Contains(logs, "ltoopin1@icio.us") {
		t.Fatalf("no dry-run message:\n%s", logs)
	}
	if n := len(h.slack.snapshot()); n != 0 {
		t.Fatalf("dry run posted %d messages", n)
	}
	h.stop(false)
	h.cfg.SlackToken = "xoxb-secret-value"
	h.start()
	h.stop(false)
	if strings.Contains(h.logs.String(), "xoxb-secret-value") {
		t.Fatal("token logged")
	}
}

func TestErrorsPerMinAlertSwitch(t *testing.T) {
	h := newHarness(t)
	h.cfg.Errors = true
	h.start()
	publish := func() {
		m := nats.NewMsg(topology.FinalPrefix + topology.TableErrorsPerMinAlert)
		m.Data = []byte(`{"STATUS":404,"EVENT_TS":1700000060000,"ERRORS":7,"WINDOW_START":1700000000000,"WINDOW_END":1700000060000}`)
		m.Header.Set(events.HeaderWindowKey, "404.1700000000000")
		if _, err := h.js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	publish()
	publish() // the windower re-published the same final row
	deadline := time.Now().Add(10 * time.Second)
	for h.slack.counts()["window.404.1700000000000"] == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if n := h.slack.counts()["window.404.1700000000000"]; n != 1 {
		t.Fatalf("%d messages for the window, want 1", n)
	}
	if p := h.slack.snapshot()[0]; !strings.Contains(p.Text, "HTTP status 404") || !strings.Contains(p.Text, "7 responses") {
		t.Fatalf("text %q", p.Text)
	}
}

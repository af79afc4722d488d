package generator

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// running is a generator under test.
type running struct {
	svc    *Service
	http   *httptest.Server
	cancel context.CancelFunc
	done   chan error
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("generator stopped with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("generator did not stop")
	}
	r.http.Close()
}

func fastConfig() Config {
	c := DefaultConfig()
	c.Seed = testSeed
	c.ClickRate, c.CodesRate, c.UsersRate, c.PageviewsRate, c.NewsRate, c.RatingsRate = 400, 20, 20, 100, 200, 200
	c.CDCStep, c.CDCUpdateEvery = 20*time.Millisecond, 50*time.Millisecond
	c.Flush = 50 * time.Millisecond
	return c
}

func start(t *testing.T, env *natstest.Env, cfg Config, clock func() time.Time) *running {
	t.Helper()
	nc, js := env.Connect(t)
	health := obs.NewHealth()
	deps := runner.Deps{NC: nc, JS: js, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Health: health, HTTP: obs.NewServer(health)}
	svc, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if clock != nil {
		svc.now = clock
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{svc: svc, http: httptest.NewServer(deps.HTTP.Mux), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); r.http.Close() })
	waitFor(t, "generator ready", func() bool { return health.Ready() == nil })
	return r
}

// waitGenerating waits until the generator has taken its unit of work and restored its
// counters: ready means it serves, not that it has loaded GENERATOR_STATE yet.
func waitGenerating(t *testing.T, r *running) {
	t.Helper()
	waitFor(t, "the generator generating", func() bool { return !r.svc.Status().Started.IsZero() })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readSubject returns every message stored on subject, in order.
func readSubject(t *testing.T, js jetstream.JetStream, subject string) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := js.StreamNameBySubject(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := int(info.NumPending)
	var out []jetstream.Msg
	for len(out) < want {
		batch, err := c.Fetch(min(want-len(out), 1000), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			out = append(out, m)
		}
		if batch.Error() != nil && !errors.Is(batch.Error(), jetstream.ErrNoMessages) {
			t.Fatal(batch.Error())
		}
	}
	return out
}

func count(t *testing.T, js jetstream.JetStream, subject string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	name, err := js.StreamNameBySubject(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

func TestServicePublishes(t *testing.T) {
	env := natstest.Start(t)
	r := start(t, env, fastConfig(), nil)
	js := env.JS
	waitFor(t, "the Rick Astley script and a few random updates", func() bool {
		return count(t, js, topology.SubjectCustomersCDC) >= CustomerEvents+3 && count(t, js, topology.SubjectRatings) >= 200
	})
	r.stop(t)

	ids := map[string]bool{}
	for _, q := range []struct {
		subject string
		key     func(t *testing.T, data []byte) string
		min     int
	}{
		{topology.SubjectClickstream, func(t *testing.T, b []byte) string {
			c, err := events.DecodeClick(b)
			if err != nil {
				t.Fatal(err)
			}
			return c.IP.V
		}, 100},
		{topology.SubjectClickstreamCodes, func(t *testing.T, b []byte) string {
			c, err := events.DecodeStatusCode(b)
			if err != nil {
				t.Fatal(err)
			}
			return strconv.Itoa(int(c.Code.V))
		}, 6},
		{topology.SubjectClickstreamUsers, func(t *testing.T, b []byte) string {
			u, err := events.DecodeWebUser(b)
			if err != nil {
				t.Fatal(err)
			}
			return strconv.Itoa(int(u.UserID.V))
		}, WebUserIDs},
		{topology.SubjectPageviews, func(t *testing.T, b []byte) string {
			var p PageviewRecord
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatal(err)
			}
			return strconv.FormatInt(p.Viewtime, 10)
		}, 20},
		{topology.SubjectImplyNews, func(t *testing.T, b []byte) string {
			var p struct {
				Sid        uint64 `json:"sid"`
				RecordType string `json:"recordType"`
			}
			if err := json.Unmarshal(b, &p); err != nil || (p.RecordType != "click" && p.RecordType != "session") {
				t.Fatalf("imply-news record %s: %v", b, err)
			}
			return strconv.FormatUint(p.Sid, 10)
		}, 20},
		{topology.SubjectRatings, func(t *testing.T, b []byte) string {
			r, err := events.DecodeRating(b)
			if err != nil {
				t.Fatal(err)
			}
			return strconv.FormatInt(r.RatingID.V, 10)
		}, 200},
	} {
		msgs := readSubject(t, js, q.subject)
		if len(msgs) < q.min {
			t.Errorf("%s: %d messages, want at least %d", q.subject, len(msgs), q.min)
		}
		for i, m := range msgs {
			h := m.Headers()
			id := h.Get(events.HeaderMsgID)
			if id == "" || ids[id] {
				t.Fatalf("%s message %d: Nats-Msg-Id %q missing or repeated", q.subject, i, id)
			}
			ids[id] = true
			if ms, ok := events.HeaderMillis(h); !ok || time.Since(time.UnixMilli(ms)) > time.Minute {
				t.Fatalf("%s message %d: Event-Time %q", q.subject, i, h.Get(events.HeaderEventTime))
			}
			if got, want := h.Get(events.HeaderKey), q.key(t, m.Data()); got != want {
				t.Fatalf("%s message %d: Jetsuite-Key %q, record key %q", q.subject, i, got, want)
			}
		}
		// The first events are events 0, 1, ... of the pure functions with this seed.
		if q.subject == topology.SubjectClickstream {
			want, _ := json.Marshal(Click(testSeed, 0))
			if string(msgs[0].Data()) != string(want) {
				t.Errorf("first click %s, want Click(seed, 0) = %s", msgs[0].Data(), want)
			}
		}
	}

	// Customers: value only, like Debezium Server's sink; the demo's sequence in order.
	msgs := readSubject(t, js, topology.SubjectCustomersCDC)
	var bodies [][]byte
	for _, m := range msgs {
		if m.Headers().Get(events.HeaderKey) != "" {
			t.Fatal("customers events carry a Jetsuite-Key; Debezium Server's NATS sink sends no key")
		}
		id := m.Headers().Get(events.HeaderMsgID)
		if id == "" || ids[id] {
			t.Fatalf("customers Nats-Msg-Id %q missing or repeated", id)
		}
		ids[id] = true
		bodies = append(bodies, m.Data())
	}
	checkChanges(t, bodies)
}

func TestRestartContinues(t *testing.T) {
	env := natstest.Start(t)
	cfg := fastConfig()
	cfg.Customers = false
	cfg.Seed = 0 // picked and remembered
	r := start(t, env, cfg, nil)
	waitFor(t, "ratings", func() bool { return count(t, env.JS, topology.SubjectRatings) >= 50 })
	r.stop(t)
	seed := r.svc.seed.Load()
	// A clean stop saves exactly where each quickstart is.
	kv, err := env.JS.KeyValue(context.Background(), topology.BucketGeneratorState)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), QRatings)
	if err != nil {
		t.Fatal(err)
	}
	var saved savedState
	if err := json.Unmarshal(e.Value(), &saved); err != nil || saved.N != count(t, env.JS, topology.SubjectRatings) || saved.Seed != seed {
		t.Fatalf("saved ratings state %s (%v), published %d", e.Value(), err, count(t, env.JS, topology.SubjectRatings))
	}

	r = start(t, env, cfg, nil)
	waitGenerating(t, r)
	if r.svc.seed.Load() != seed {
		t.Fatalf("seed %d after restart, was %d", r.svc.seed.Load(), seed)
	}
	before := count(t, env.JS, topology.SubjectRatings)
	waitFor(t, "more ratings", func() bool { return count(t, env.JS, topology.SubjectRatings) >= before+50 })
	r.stop(t)

	// A crash: the saved counter lags behind what was published (state is flushed
	// periodically). The next start must still continue after the last published rating.
	if _, err := kv.Put(context.Background(), QRatings, []byte(`{"n":3}`)); err != nil {
		t.Fatal(err)
	}
	// Users: the 39 users are sent once, not on every start.
	before = count(t, env.JS, topology.SubjectRatings)
	r = start(t, env, cfg, nil)
	waitGenerating(t, r)
	// Regenerating from n=3 would only be harmless within JetStream's duplicate window; the
	// generator must continue after the last published event straight away.
	if it := quickstart(r.svc.Status(), QRatings).Iteration; it < before {
		t.Fatalf("after the crash ratings continue at n=%d, but %d were published", it, before)
	}
	waitFor(t, "ratings after the crash", func() bool { return count(t, env.JS, topology.SubjectRatings) >= before+50 })
	r.stop(t)

	msgs := readSubject(t, env.JS, topology.SubjectRatings)
	for i, m := range msgs {
		rt, err := events.DecodeRating(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		if rt.RatingID.V != int64(i)+1 {
			t.Fatalf("rating %d has rating_id %d: ids must count up 1, 2, ... across restarts", i, rt.RatingID.V)
		}
		if want, _ := json.Marshal(Rating(seed, uint64(i))); string(m.Data()) != string(want) {
			t.Fatalf("rating %d = %s, want Rating(seed, %d) = %s", i, m.Data(), i, want)
		}
	}
	users := readSubject(t, env.JS, topology.SubjectClickstreamUsers)
	for i, m := range users {
		u, _ := events.DecodeWebUser(m.Data())
		if want := int64(i%WebUserIDs) + 1; int64(u.UserID.V) != want {
			t.Fatalf("user event %d has user_id %d, want %d (the cycle continues across restarts)", i, u.UserID.V, want)
		}
	}
}

func TestPauseResume(t *testing.T) {
	env := natstest.Start(t)
	cfg := fastConfig()
	cfg.Customers, cfg.News, cfg.Pageviews = false, false, false
	r := start(t, env, cfg, nil)
	nc, _ := env.Connect(t)
	js := env.JS

	// settled waits until the subject stops growing, and returns its count.
	settled := func(subject string) uint64 {
		t.Helper()
		last := count(t, js, subject)
		for {
			time.Sleep(250 * time.Millisecond)
			now := count(t, js, subject)
			if now == last {
				return now
			}
			last = now
		}
	}
	grows := func(subject string) {
		t.Helper()
		n := count(t, js, subject)
		waitFor(t, subject+" to grow", func() bool { return count(t, js, subject) > n+10 })
	}

	// HTTP: pause only the clicks; ratings go on.
	post := func(path, body string) Status {
		t.Helper()
		resp, err := http.Post(r.http.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("POST %s: %s %s", path, resp.Status, b)
		}
		var st Status
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	st := post(PathPause+"?quickstart=clickstream", "")
	if !quickstart(st, QClickstream).Paused || quickstart(st, QRatings).Paused {
		t.Fatalf("status after pausing clickstream: %+v", st)
	}
	paused := settled(topology.SubjectClickstream)
	grows(topology.SubjectRatings)
	if now := count(t, js, topology.SubjectClickstream); now != paused {
		t.Fatalf("clicks went on while paused: %d -> %d", paused, now)
	}
	post(PathResume, `{"quickstart":"clickstream"}`)
	grows(topology.SubjectClickstream)

	resp, err := http.Post(r.http.URL+PathPause+"?quickstart=nope", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("pausing an unknown quickstart: %s", resp.Status)
	}

	// NATS: pause everything, then resume by subject name.
	req := func(subject, body string) Status {
		t.Helper()
		m, err := nc.Request(subject, []byte(body), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var st Status
		if err := json.Unmarshal(m.Data, &st); err != nil || st.Quickstarts == nil {
			t.Fatalf("reply %s: %v", m.Data, err)
		}
		return st
	}
	st = req(SubjectPause, "")
	for _, q := range st.Quickstarts {
		if !q.Paused {
			t.Fatalf("%s not paused: %+v", q.Name, st)
		}
	}
	clicks, ratings := settled(topology.SubjectClickstream), settled(topology.SubjectRatings)
	time.Sleep(300 * time.Millisecond)
	if c, r := count(t, js, topology.SubjectClickstream), count(t, js, topology.SubjectRatings); c != clicks || r != ratings {
		t.Fatalf("publishing went on while paused: clicks %d -> %d, ratings %d -> %d", clicks, c, ratings, r)
	}
	req(SubjectResume, topology.SubjectRatings)
	grows(topology.SubjectRatings)
	if c := count(t, js, topology.SubjectClickstream); c != clicks {
		t.Fatalf("clicks resumed with ratings: %d -> %d", clicks, c)
	}
	st = req(SubjectStatus, "")
	if !quickstart(st, QClickstream).Paused || quickstart(st, QRatings).Paused || quickstart(st, QRatings).Iteration < ratings {
		t.Fatalf("status: %+v", st)
	}
	m, err := nc.Request(SubjectPause, []byte("nope"), 5*time.Second)
	if err != nil || !strings.Contains(string(m.Data), "unknown quickstart") {
		t.Fatalf("pausing an unknown quickstart over NATS: %v %s", err, m.Data)
	}
	req(SubjectResume, "")
	grows(topology.SubjectClickstream)
	r.stop(t)
}

// TestSetRate: a rate set over HTTP or NATS applies at once and shows in the status: 0 stops a
// quickstart, a new rate is held from then on; what cannot be set is refused with the reason.
func TestSetRate(t *testing.T) {
	env := natstest.Start(t)
	cfg := fastConfig()
	cfg.Customers, cfg.News, cfg.Pageviews = true, false, false
	r := start(t, env, cfg, nil)
	nc, _ := env.Connect(t)
	js := env.JS
	post := func(body string) (int, string) {
		t.Helper()
		resp, err := http.Post(r.http.URL+PathRate, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor(t, "clicks", func() bool { return count(t, js, topology.SubjectClickstream) > 0 })
	if code, body := post(`{"quickstart":"clickstream","rate":0}`); code != http.StatusOK || !strings.Contains(body, `"name":"clickstream","subject":"clickstream","rate":0,`) {
		t.Fatalf("rate 0: %d %s", code, body)
	}
	// Stopped: the count settles and stays.
	var stopped uint64
	waitFor(t, "clicks to stop", func() bool {
		before := count(t, js, topology.SubjectClickstream)
		time.Sleep(300 * time.Millisecond)
		stopped = count(t, js, topology.SubjectClickstream)
		return stopped == before
	})
	time.Sleep(500 * time.Millisecond)
	if now := count(t, js, topology.SubjectClickstream); now != stopped {
		t.Fatalf("clicks went on at rate 0: %d -> %d", stopped, now)
	}
	// Over NATS, 50 a second: a second later about 50 more (the pacer counts from the change,
	// so no backlog of the stopped time is made up).
	m, err := nc.Request(SubjectRate, []byte(`{"quickstart":"clickstream","rate":50}`), 5*time.Second)
	if err != nil || !strings.Contains(string(m.Data), `"rate":50`) {
		t.Fatalf("rate over NATS: %v %s", err, m.Data)
	}
	changed := time.Now()
	waitFor(t, "clicks at the new rate", func() bool { return count(t, js, topology.SubjectClickstream) >= stopped+50 })
	if n, took := count(t, js, topology.SubjectClickstream)-stopped, time.Since(changed); float64(n) > 50*took.Seconds()+60 {
		t.Errorf("%d clicks in %s at 50/s: the stopped time was made up", n, took)
	}
	for body, want := range map[string]int{
		`{"quickstart":"clickstream","rate":-1}`:      http.StatusBadRequest,
		`{"quickstart":"clickstream","rate":1e9}`:     http.StatusBadRequest,
		`{"quickstart":"clickstream"}`:                http.StatusBadRequest,
		`{"quickstart":"customers","rate":5}`:         http.StatusBadRequest,
		`{"quickstart":"nope","rate":5}`:              http.StatusNotFound,
		`{"quickstart":"ratings","rate":5}`:           http.StatusOK,
		`{"quickstart":"clickstream_users","rate":1}`: http.StatusOK,
	} {
		if code, resp := post(body); code != want {
			t.Errorf("POST %s %s: %d %s, want %d", PathRate, body, code, resp, want)
		}
	}
	r.stop(t)
}

func quickstart(st Status, name string) QuickstartStatus {
	for _, q := range st.Quickstarts {
		if q.Name == name {
			return q
		}
	}
	return QuickstartStatus{}
}

// TestSessionizeService runs the generator on a clock that can be moved forward: after the
// warm-up clicks stop (only clicks), and they come back when the pause is over.
func TestSessionizeService(t *testing.T) {
	env := natstest.Start(t)
	cfg := fastConfig()
	cfg.Sessionize = true
	cfg.Customers, cfg.News, cfg.Pageviews, cfg.Codes, cfg.Users = false, false, false, false, false
	var offset atomic.Int64
	var mu sync.Mutex
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Add(time.Duration(offset.Load()))
	}
	r := start(t, env, cfg, clock)
	js := env.JS
	waitFor(t, "clicks", func() bool { return count(t, js, topology.SubjectClickstream) > 50 })

	offset.Store(int64(SessionizeWarmup + time.Second))
	waitFor(t, "the sessionize pause", func() bool {
		return quickstart(r.svc.Status(), QClickstream).SessionizePaused
	})
	time.Sleep(200 * time.Millisecond) // let in-flight publishes land
	paused := count(t, js, topology.SubjectClickstream)
	ratings := count(t, js, topology.SubjectRatings)
	waitFor(t, "ratings during the pause", func() bool { return count(t, js, topology.SubjectRatings) > ratings+20 })
	if c := count(t, js, topology.SubjectClickstream); c != paused {
		t.Fatalf("clicks during the sessionize pause: %d -> %d", paused, c)
	}
	if st := r.svc.Status(); quickstart(st, QClickstream).Paused || !st.Sessionize {
		t.Fatalf("status: %+v", st)
	}

	offset.Store(int64(SessionizeWarmup + SessionizePause + time.Second))
	waitFor(t, "clicks after the pause", func() bool { return count(t, js, topology.SubjectClickstream) > paused+20 })
	r.stop(t)
}

// TestCustomersStateLost: without GENERATOR_STATE the customers source starts over like
// Debezium without offsets: a new snapshot (new message ids, not swallowed as duplicates) in the
// next binlog file, so a CDC reader takes it as newer than everything before.
func TestCustomersStateLost(t *testing.T) {
	env := natstest.Start(t)
	cfg := fastConfig()
	cfg.Clickstream, cfg.Codes, cfg.Users, cfg.Pageviews, cfg.News, cfg.Ratings = false, false, false, false, false, false
	cfg.CDCSchemas = true
	r := start(t, env, cfg, nil)
	waitFor(t, "the script", func() bool { return count(t, env.JS, topology.SubjectCustomersCDC) >= CustomerEvents })
	r.stop(t)
	first := count(t, env.JS, topology.SubjectCustomersCDC)

	kv, err := env.JS.KeyValue(context.Background(), topology.BucketGeneratorState)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(context.Background(), QCustomers); err != nil {
		t.Fatal(err)
	}
	r = start(t, env, cfg, nil)
	waitFor(t, "a new snapshot", func() bool { return count(t, env.JS, topology.SubjectCustomersCDC) >= first+CustomerEvents })
	r.stop(t)

	msgs := readSubject(t, env.JS, topology.SubjectCustomersCDC)
	var second [][]byte
	for _, m := range msgs[first:] {
		var w struct {
			Schema  json.RawMessage `json:"schema"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(m.Data(), &w); err != nil || len(w.Schema) == 0 {
			t.Fatalf("--cdc-schemas: want the {schema, payload} form, got %s", m.Data())
		}
		if f := lastBinlogFile(m.Data()); f != "mysql-bin.000004" {
			t.Fatalf("after the state was lost: binlog file %q, want mysql-bin.000004", f)
		}
		second = append(second, w.Payload)
	}
	checkChanges(t, second)
}

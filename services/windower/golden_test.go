package windower_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/services/windower"
	"github.com/jetsuite/jetsuite/services/windower/reference"
	"github.com/jetsuite/jetsuite/shared/flow"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// t0 is a minute-aligned event time so that window boundaries are easy to read in failures.
const t0 = int64(1_700_000_040_000)

// input is one message of the fixed event log.
type input struct {
	subject string
	ts      int64
	id      string
	body    map[string]any
}

// eventLog builds a fixed log for all four sources of the windowed tables: clicks, enriched
// clicks, enriched error codes and enriched ratings, with out-of-order events inside the grace
// period, late events beyond it, NULL keys, message-id duplicates and bursts that make sessions
// merge.
func eventLog() []input {
	rng := rand.New(rand.NewPCG(7, 11))
	var log []input
	add := func(subject string, ts int64, body map[string]any) {
		log = append(log, input{subject: subject, ts: ts, id: fmt.Sprintf("%s-%d", subject, len(log)), body: body})
	}
	jitter := func(ts int64) int64 {
		switch r := rng.IntN(100); {
		case r < 3: // late: far behind stream time
			return ts - 60_000 - rng.Int64N(60_000)
		case r < 15: // out of order, within the 30 s grace
			return ts - rng.Int64N(25_000)
		}
		return ts
	}
	requests := []string{"GET /index.html HTTP/1.1", "GET /images/track.png HTTP/1.1", "GET /site/login.html HTTP/1.1"}
	statuses := []string{"200", "302", "404", "405", "406", "407"}
	users := []string{"akatz1022", "bobk_43", "alison_99", "Ferd88", "Reeva43"}
	ips := []string{"111.152.45.45", "222.90.225.227", "233.168.257.122"}
	cities := []string{"Palo Alto", "San Francisco", "London"}
	for i := range 2400 {
		ts := jitter(t0 + int64(i)*250)
		add(topology.SubjectClickstream, ts, map[string]any{
			"ip": ips[rng.IntN(len(ips))], "userid": rng.IntN(41) - 1, "request": requests[rng.IntN(len(requests))],
			"status": statuses[rng.IntN(len(statuses))], "bytes": "1289", "_time": i, "time": strconv.Itoa(i),
		})
		// Users are active in bursts (40 s on, 80 s off, shifted per user), so sessions form,
		// end, and merge when an out-of-order click bridges two of them.
		u := rng.IntN(len(users) + 1)
		var username any
		if u < len(users) {
			if ((ts-t0)/40_000+int64(u))%3 != 0 {
				u = len(users)
			} else {
				username = users[u]
			}
		}
		add(topology.StreamUserClickstream, ts, map[string]any{
			"USERID": u, "USERNAME": username, "IP": ips[rng.IntN(len(ips))], "CITY": cities[rng.IntN(len(cities))],
			"REQUEST": requests[0], "STATUS": 200, "BYTES": 1289,
		})
		code := []int{200, 302, 404, 405, 406, 407, 500}[rng.IntN(7)]
		var def any = "Definition of " + strconv.Itoa(code)
		if code == 500 {
			def = nil // unknown to CLICKSTREAM_CODES: LEFT JOIN gives NULL, the group key is NULL
		}
		add(topology.StreamEnrichedErrorCodes, ts, map[string]any{"CODE": code, "DEFINITION": def})
	}
	// Session lateness (gap 30 s, grace 30 s, so closeTime = stream time - 60 s), after every
	// burst above and before the merge below; sessionLatenessCase holds the expected outcome.
	for _, e := range sessionLatenessLog() {
		add(topology.StreamUserClickstream, e.ts, map[string]any{"USERNAME": e.user, "IP": ips[1], "CITY": cities[1]})
	}
	// A session merge by construction: two sessions 40 s apart, then an event between them.
	for _, off := range []int64{0, 5_000, 45_000, 50_000} {
		add(topology.StreamUserClickstream, t0+700_000+off, map[string]any{"USERNAME": "merger", "IP": ips[0], "CITY": cities[0]})
	}
	names := []any{"Rica Blaisdell", "Ruthie Brockherst", "Laney Toopin", nil}
	for i := range 600 {
		add(topology.StreamRatingsWithCustomerData, jitter(t0+int64(i)*4_500), map[string]any{
			"RATING_ID": i + 1, "FULL_NAME": names[rng.IntN(len(names))], "STARS": rng.IntN(4) + 1,
			"CLUB_STATUS": "gold", "EMAIL": "x@example.com", "MESSAGE": "meh", "CHANNEL": "web",
		})
	}
	// A duplicate: the same message (same Nats-Msg-Id) published twice counts once.
	log = append(log, log[10], log[11])
	// The bridging event comes last, so that tests can publish it after the two sessions it
	// merges have been written: the merged-away row must then be deleted from the table.
	add(topology.StreamUserClickstream, t0+700_000+22_000, map[string]any{"USERNAME": "merger", "IP": ips[0], "CITY": cities[0]})
	return log
}

func publishLog(t *testing.T, js jetstream.JetStream, log []input) {
	t.Helper()
	var futs []jetstream.PubAckFuture
	for _, in := range log {
		m := nats.NewMsg(in.subject)
		m.Header.Set("Event-Time", strconv.FormatInt(in.ts, 10))
		m.Header.Set(jetstream.MsgIDHeader, in.id)
		m.Data, _ = json.Marshal(in.body)
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			t.Fatal(err)
		}
		futs = append(futs, f)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publish timed out")
	}
	for i, f := range futs {
		select {
		case err := <-f.Err():
			t.Fatalf("publish %d (%s) failed: %v", i, log[i].id, err)
		default:
		}
	}
}

// tableCase ties a table to its reference computation: which source feeds it, how a message
// becomes a reference event (ok=false: the WHERE clause drops it), and how a row's key reads.
type tableCase struct {
	name     string
	source   string
	spec     reference.Spec
	event    func(in input) (reference.Event, bool)
	keyCols  []string
	countCol string
	listCol  string
	tsIsEnd  bool
	noTS     bool // the statement selects no EVENT_TS (WINDOWSTART AS EVENT_TS in the others)
}

func str(v any) string { return fmt.Sprint(v) }

func keyOf(body map[string]any, cols ...string) (string, bool) {
	parts := make([]string, len(cols))
	for i, c := range cols {
		v, ok := body[c]
		if !ok || v == nil {
			return "", false
		}
		parts[i] = str(v)
	}
	return strings.Join(parts, "|"), true
}

func tableCases() []tableCase {
	min1, grace := int64(60_000), int64(30_000)
	click := func(where func(map[string]any) bool, keyCol string) func(in input) (reference.Event, bool) {
		return func(in input) (reference.Event, bool) {
			if where != nil && !where(in.body) {
				return reference.Event{}, false
			}
			return reference.Event{TS: in.ts, Key: str(in.body[keyCol])}, true
		}
	}
	derived := func(cols ...string) func(in input) (reference.Event, bool) {
		return func(in input) (reference.Event, bool) {
			k, ok := keyOf(in.body, cols...)
			stars, _ := in.body["STARS"].(int)
			return reference.Event{TS: in.ts, Key: k, Null: !ok, Stars: int32(stars)}, true
		}
	}
	isError := func(b map[string]any) bool { s, _ := strconv.Atoi(b["status"].(string)); return s > 400 }
	return []tableCase{
		{name: "EVENTS_PER_MIN", source: "clickstream", spec: reference.Spec{Kind: "tumbling", Size: min1, Grace: grace, HavingAbove: -1},
			event: click(nil, "userid"), keyCols: []string{"USERID"}, countCol: "EVENTS"},
		{name: "PAGES_PER_MIN", source: "clickstream", spec: reference.Spec{Kind: "hopping", Size: min1, Advance: 5_000, Grace: grace, HavingAbove: -1},
			event: click(func(b map[string]any) bool { return strings.Contains(b["request"].(string), "html") }, "userid"), keyCols: []string{"USERID"}, countCol: "PAGES"},
		{name: "ERRORS_PER_MIN", source: "clickstream", spec: reference.Spec{Kind: "hopping", Size: min1, Advance: 5_000, Grace: grace, HavingAbove: -1},
			event: click(isError, "status"), keyCols: []string{"STATUS"}, countCol: "ERRORS"},
		{name: "ERRORS_PER_MIN_ALERT", source: "clickstream", spec: reference.Spec{Kind: "hopping", Size: min1, Advance: 20_000, Grace: grace, HavingAbove: 5},
			event: click(isError, "status"), keyCols: []string{"STATUS"}, countCol: "ERRORS"},
		{name: "CLICK_USER_SESSIONS", source: "USER_CLICKSTREAM", spec: reference.Spec{Kind: "session", Gap: 30_000, Grace: grace, HavingAbove: -1},
			event: derived("USERNAME"), keyCols: []string{"USERNAME"}, countCol: "EVENTS", tsIsEnd: true},
		{name: "ENRICHED_ERROR_CODES_COUNT", source: "ENRICHED_ERROR_CODES", spec: reference.Spec{Kind: "tumbling", Size: 30_000, Grace: grace, HavingAbove: 1},
			event: derived("CODE", "DEFINITION"), keyCols: []string{"CODE", "DEFINITION"}, countCol: "COUNT"},
		{name: "USER_IP_ACTIVITY", source: "USER_CLICKSTREAM", spec: reference.Spec{Kind: "tumbling", Size: min1, Grace: grace, HavingAbove: 1},
			event: derived("USERNAME", "IP", "CITY"), keyCols: []string{"USERNAME", "IP", "CITY"}, countCol: "COUNT"},
		{name: "RATINGS_PER_CUSTOMER_PER_15MINUTE", source: "RATINGS_WITH_CUSTOMER_DATA", spec: reference.Spec{Kind: "tumbling", Size: 15 * min1, Grace: grace, HavingAbove: -1},
			event: derived("FULL_NAME"), keyCols: []string{"FULL_NAME"}, countCol: "RATINGS_COUNT", listCol: "RATINGS", noTS: true},
	}
}

// expected runs the reference computation for one table over the log (duplicates by
// Nats-Msg-Id removed, as JetStream stores them once).
func (tc tableCase) expected(log []input) reference.Result {
	seen := map[string]bool{}
	var evs []reference.Event
	for _, in := range log {
		if in.subject != tc.source || seen[in.id] {
			continue
		}
		seen[in.id] = true
		// JSON-decode the body as the service sees it (numbers become float64).
		var body map[string]any
		raw, _ := json.Marshal(in.body)
		_ = json.Unmarshal(raw, &body)
		for k, v := range body {
			if f, ok := v.(float64); ok {
				body[k] = int(f)
			}
		}
		in.body = body
		if e, ok := tc.event(in); ok {
			evs = append(evs, e)
		}
	}
	return reference.Compute(tc.spec, evs)
}

// actual reads a table bucket back into reference rows.
func (tc tableCase) actual(t *testing.T, js jetstream.JetStream) map[string]reference.Row {
	t.Helper()
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, tc.name)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	rows := map[string]reference.Row{}
	for e := range w.Updates() {
		if e == nil {
			break
		}
		var row map[string]any
		if err := json.Unmarshal(e.Value(), &row); err != nil {
			t.Fatalf("%s %s: %v", tc.name, e.Key(), err)
		}
		for k, v := range row {
			if f, ok := v.(float64); ok {
				row[k] = int(f)
			}
		}
		key, ok := keyOf(row, tc.keyCols...)
		if !ok {
			t.Fatalf("%s row %s has a NULL key column: %s", tc.name, e.Key(), e.Value())
		}
		r := reference.Row{Key: key, Start: int64(row["WINDOW_START"].(int)), End: int64(row["WINDOW_END"].(int)), Count: int64(row[tc.countCol].(int))}
		wantTS := r.Start
		if tc.tsIsEnd {
			wantTS = r.End
		}
		if tc.noTS {
			if _, has := row["EVENT_TS"]; has {
				t.Errorf("%s %s: EVENT_TS in a table whose statement does not select it", tc.name, e.Key())
			}
		} else if got, _ := row["EVENT_TS"].(int); int64(got) != wantTS {
			t.Errorf("%s %s: EVENT_TS %d, want %d", tc.name, e.Key(), got, wantTS)
		}
		if tc.listCol != "" {
			for _, v := range row[tc.listCol].([]any) {
				r.List = append(r.List, int32(v.(float64)))
			}
		}
		rows[reference.ID(key, r.Start)] = r
	}
	return rows
}

func lateCount(t *testing.T, js jetstream.JetStream, table string) int {
	t.Helper()
	s, err := js.Stream(context.Background(), topology.StreamLateEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(topology.LatePrefix+table))
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Subjects[topology.LatePrefix+table])
}

func compare(t *testing.T, js jetstream.JetStream, log []input) {
	t.Helper()
	for _, tc := range tableCases() {
		want := tc.expected(log)
		got := tc.actual(t, js)
		if tc.name == "CLICK_USER_SESSIONS" {
			checkSessionLateness(t, js, got, "windower")
		}
		if len(want.Rows) == 0 {
			t.Fatalf("%s: the reference has no rows; the log does not exercise it", tc.name)
		}
		var missing, wrong, extra []string
		for id, w := range want.Rows {
			g, ok := got[id]
			switch {
			case !ok:
				missing = append(missing, id)
			case g.Count != w.Count || g.End != w.End || (tc.listCol != "" && !sameMultiset(g.List, w.List)):
				wrong = append(wrong, fmt.Sprintf("%s: got count %d end %d list %v, want %d %d %v", id, g.Count, g.End, g.List, w.Count, w.End, w.List))
			}
		}
		for id := range got {
			if _, ok := want.Rows[id]; !ok {
				extra = append(extra, id)
			}
		}
		sort.Strings(missing)
		sort.Strings(extra)
		if len(missing)+len(wrong)+len(extra) > 0 {
			t.Errorf("%s: %d rows expected, %d found; missing %v; wrong %v; extra %v", tc.name, len(want.Rows), len(got), head(missing), head(wrong), head(extra))
		}
		if late := lateCount(t, js, tc.name); late != want.Late {
			t.Errorf("%s: %d late events published, reference says %d", tc.name, late, want.Late)
		}
		t.Logf("%s: %d rows, %d late, %d null keys", tc.name, len(want.Rows), want.Late, want.Null)
	}
}

func sameMultiset(a, b []int32) bool {
	x, y := append([]int32(nil), a...), append([]int32(nil), b...)
	sort.Slice(x, func(i, j int) bool { return x[i] < x[j] })
	sort.Slice(y, func(i, j int) bool { return y[i] < y[j] })
	return reflect.DeepEqual(x, y)
}

func head(s []string) []string {
	if len(s) > 5 {
		return append(s[:5:5], fmt.Sprintf("... (%d more)", len(s)-5))
	}
	return s
}

// startWindower runs a windower; stop cancels it and waits for Run to return.
func startWindower(t testing.TB, env *natstest.Env, cfg windower.Config, crash func() bool) (stop func() error) {
	stop, _ = startWindowerDone(t, env, cfg, crash, nil)
	return stop
}

func startWindowerDone(t testing.TB, env *natstest.Env, cfg windower.Config, crash, crashMid func() bool) (stop func() error, done <-chan error) {
	t.Helper()
	nc, js := env.Connect(t)
	deps := runner.Deps{NC: nc, JS: js, Health: obs.NewHealth()}
	svc, err := windower.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if crash != nil {
		svc.SetCrash(crash)
	}
	if crashMid != nil {
		svc.SetCrashMidFlush(crashMid)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- svc.Run(ctx) }()
	var once sync.Once
	var runErr error
	return func() error { once.Do(func() { cancel(); runErr = <-ch }); return runErr }, ch
}

// waitConsumed waits until every windower consumer has seen and acked all of its stream.
func waitConsumed(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	sources := []string{topology.StreamClickstream, topology.StreamUserClickstream, topology.StreamEnrichedErrorCodes, topology.StreamRatingsWithCustomerData}
	deadline := time.Now().Add(60 * time.Second)
	for _, src := range sources {
		// Everything the stream holds now must be acked: the consumer's own pending count
		// follows a publish a moment later, so right after one it may still read 0.
		s, err := js.Stream(context.Background(), src)
		if err != nil {
			t.Fatal(err)
		}
		last := s.CachedInfo().State.LastSeq
		for {
			c, err := js.Consumer(context.Background(), src, "windower-"+src)
			if err == nil {
				info, err := c.Info(context.Background())
				if err == nil && info.AckFloor.Stream >= last && info.NumAckPending == 0 && info.Delivered.Stream > 0 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("windower did not consume %s in time", src)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func testConfig() windower.Config {
	return windower.Config{Grace: 30 * time.Second, FlushInterval: 20 * time.Millisecond, FlushMaxInputs: 150, BatchSize: 100}
}

// TestGoldenTables: every row of every windowed table equals the reference computation.
func TestGoldenTables(t *testing.T) {
	env := natstest.Start(t)
	log := eventLog()
	publishLog(t, env.JS, log[:len(log)-1])
	stop := startWindower(t, env, testConfig(), nil)
	waitConsumed(t, env.JS)
	publishLog(t, env.JS, log[len(log)-1:])
	waitConsumed(t, env.JS)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	compare(t, env.JS, log)
}

// TestCrashAndRestart: the windower stops abruptly mid-stream (no final flush) and restarts;
// the tables equal the reference all the same: nothing lost, nothing counted twice.
func TestCrashAndRestart(t *testing.T) {
	t.Run("between batches", func(t *testing.T) {
		var batches atomic.Int64
		crashAndRestart(t, func(progressed func() bool) (func() bool, func() bool) {
			return func() bool { return batches.Add(1) > 40 && progressed() }, nil
		})
	})
	t.Run("mid flush", func(t *testing.T) {
		var flushes atomic.Int64
		var crashed atomic.Bool
		// Once one task crashed mid-flush, the others stop at their next batch.
		crashAndRestart(t, func(progressed func() bool) (func() bool, func() bool) {
			return crashed.Load, func() bool {
				if flushes.Add(1) > 12 && progressed() {
					crashed.Store(true)
				}
				return crashed.Load()
			}
		})
	})
}

// crashAndRestart runs the windower with the crash hooks hooks returns, given a function that
// tells whether the CLICKSTREAM task has committed some input yet (so the crash is mid-stream
// whatever the machine's speed), then restarts it and compares the tables with the reference.
func crashAndRestart(t *testing.T, hooks func(progressed func() bool) (crash, crashMid func() bool)) {
	env := natstest.Start(t)
	log := eventLog()
	publishLog(t, env.JS, log)
	committed := func() uint64 {
		cp, err := flow.Checkpoint(context.Background(), env.JS, "windower-"+topology.StreamClickstream, topology.StreamClickstream)
		if err != nil {
			t.Error(err)
		}
		return cp
	}
	crash, crashMid := hooks(func() bool { return committed() > 0 })
	_, done := startWindowerDone(t, env, testConfig(), crash, crashMid)
	// Wait for the crash (every task stops at its next batch), then check it was mid-stream.
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the windower did not crash")
	}
	cp := committed()
	if cp == 0 || cp >= 2400 {
		t.Fatalf("crash was not mid-stream: clickstream committed up to %d of 2400", cp)
	}
	t.Logf("crashed with clickstream committed up to %d of 2400", cp)
	stop := startWindower(t, env, testConfig(), nil)
	waitConsumed(t, env.JS)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	compare(t, env.JS, log)
}

// TestNATSRestartMidStream: the NATS server stops while the windower works and starts again on
// the same data; the windower reconnects and goes on, and the tables equal the reference.
func TestNATSRestartMidStream(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env := natstest.StartAt(t, dir, addr)
	log := eventLog()
	half := len(log) / 2
	publishLog(t, env.JS, log[:half])
	cfg := testConfig()
	cfg.BatchSize = 50
	stop := startWindower(t, env, cfg, nil)
	defer func() { _ = stop() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := env.JS.Consumer(context.Background(), topology.StreamClickstream, "windower-"+topology.StreamClickstream)
		if err == nil {
			if info, err := c.Info(context.Background()); err == nil && info.AckFloor.Stream > 100 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the windower made no progress before the restart")
		}
		time.Sleep(5 * time.Millisecond)
	}
	env.Server.Shutdown()
	env.Server.WaitForShutdown()
	time.Sleep(time.Second)
	env = natstest.StartAt(t, dir, addr)
	publishLog(t, env.JS, log[half:])
	waitConsumed(t, env.JS)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	compare(t, env.JS, log)
}

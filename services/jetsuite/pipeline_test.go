package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/services/enricher"
	"github.com/jetsuite/jetsuite/services/windower"
	"github.com/jetsuite/jetsuite/services/windower/reference"
	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// The golden test of the clickstream pipeline: a fixed event log (users, codes, clicks with
// out-of-order events inside grace, late events beyond it, a duplicate, unknown users and an
// unknown status code, i.e. NULL keys after the LEFT JOINs, and bursts whose sessions merge)
// goes through the real enricher and windower on an embedded server. Every row of the seven
// clickstream tables must equal a reference computed with plain loops over the log.

const goldenT0 = int64(1_700_000_040_000)

type goldenUser struct {
	id             int
	username, city string
}

type goldenClick struct {
	id     string
	ts     int64
	ip     string
	userid int
	req    string
	status string
}

var (
	goldenNames  = []string{"akatz1022", "bobk_43", "alison_99", "Ferd88", "Reeva43"}
	goldenCities = []string{"Palo Alto", "San Francisco", "London"}
	goldenCodes  = map[int]string{200: "Successful", 302: "Redirect", 404: "Page not found", 405: "Method not allowed", 406: "Not acceptable", 407: "Proxy authentication required"}
)

func goldenLog() (users []goldenUser, clicks []goldenClick) {
	for id := 1; id <= 39; id++ {
		users = append(users, goldenUser{id, goldenNames[id%len(goldenNames)], goldenCities[id%len(goldenCities)]})
	}
	rng := rand.New(rand.NewPCG(3, 5))
	ips := []string{"111.152.45.45", "222.90.225.227", "233.168.257.122"}
	reqs := []string{"GET /index.html HTTP/1.1", "GET /images/track.png HTTP/1.1", "GET /site/login.html HTTP/1.1"}
	statuses := []string{"200", "302", "404", "405", "406", "407", "500"}
	for i := range 2000 {
		base := goldenT0 + int64(i)*250
		ts := base
		switch r := rng.IntN(100); {
		case r < 3:
			ts = base - 60_000 - rng.Int64N(60_000) // late
		case r < 15:
			ts = base - rng.Int64N(25_000) // out of order within grace
		}
		// Users click in bursts (on 40 s, off 80 s, by username), so sessions end and merge.
		slot := (base - goldenT0) / 40_000
		var candidates []int
		for id := 1; id <= 39; id++ {
			if (int64(id%len(goldenNames))+slot)%3 == 0 {
				candidates = append(candidates, id)
			}
		}
		candidates = append(candidates, -1, 0, 42) // unknown to WEB_USERS: USERNAME is NULL
		clicks = append(clicks, goldenClick{
			id: "click-" + strconv.Itoa(i), ts: ts, ip: ips[rng.IntN(len(ips))], userid: candidates[rng.IntN(len(candidates))],
			req: reqs[rng.IntN(len(reqs))], status: statuses[rng.IntN(len(statuses))],
		})
	}
	clicks = append(clicks, clicks[5]) // a duplicate (same Nats-Msg-Id): stored once
	return users, clicks
}

func publishJSON(t testing.TB, js jetstream.JetStream, subject, id string, ts int64, body string) {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Header.Set("Event-Time", strconv.FormatInt(ts, 10))
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Data = []byte(body)
	if _, err := js.PublishMsgAsync(m); err != nil {
		t.Fatal(err)
	}
}

func waitPublished(t testing.TB, js jetstream.JetStream) {
	t.Helper()
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publish timed out")
	}
}

func (c goldenClick) body() string {
	return fmt.Sprintf(`{"ip":%q,"userid":%d,"remote_user":"-","time":"1","_time":1,"request":%q,"status":%q,"bytes":"1289","referrer":"-","agent":"Mozilla/5.0"}`,
		c.ip, c.userid, c.req, c.status)
}

// goldenTable is one table's reference: how a click becomes a reference event and how a row of
// the table reads back into a key.
type goldenTable struct {
	name     string
	spec     reference.Spec
	event    func(c goldenClick, user *goldenUser) (reference.Event, bool)
	keyCols  []string
	countCol string
}

func goldenTables() []goldenTable {
	min1, grace := int64(60_000), int64(30_000)
	status := func(c goldenClick) int { s, _ := strconv.Atoi(c.status); return s }
	byUser := func(c goldenClick, _ *goldenUser) (reference.Event, bool) {
		return reference.Event{TS: c.ts, Key: strconv.Itoa(c.userid)}, true
	}
	errorsByStatus := func(c goldenClick, _ *goldenUser) (reference.Event, bool) {
		return reference.Event{TS: c.ts, Key: c.status}, status(c) > 400
	}
	return []goldenTable{
		{"EVENTS_PER_MIN", reference.Spec{Kind: "tumbling", Size: min1, Grace: grace, HavingAbove: -1}, byUser, []string{"USERID"}, "EVENTS"},
		{"PAGES_PER_MIN", reference.Spec{Kind: "hopping", Size: min1, Advance: 5_000, Grace: grace, HavingAbove: -1},
			func(c goldenClick, u *goldenUser) (reference.Event, bool) {
				e, _ := byUser(c, u)
				return e, strings.Contains(c.req, "html")
			}, []string{"USERID"}, "PAGES"},
		{"ERRORS_PER_MIN", reference.Spec{Kind: "hopping", Size: min1, Advance: 5_000, Grace: grace, HavingAbove: -1}, errorsByStatus, []string{"STATUS"}, "ERRORS"},
		{"ERRORS_PER_MIN_ALERT", reference.Spec{Kind: "hopping", Size: min1, Advance: 20_000, Grace: grace, HavingAbove: 5}, errorsByStatus, []string{"STATUS"}, "ERRORS"},
		{"CLICK_USER_SESSIONS", reference.Spec{Kind: "session", Gap: 30_000, Grace: grace, HavingAbove: -1},
			func(c goldenClick, u *goldenUser) (reference.Event, bool) {
				if u == nil {
					return reference.Event{Null: true}, true
				}
				return reference.Event{TS: c.ts, Key: u.username}, true
			}, []string{"USERNAME"}, "EVENTS"},
		{"ENRICHED_ERROR_CODES_COUNT", reference.Spec{Kind: "tumbling", Size: 30_000, Grace: grace, HavingAbove: 1},
			func(c goldenClick, _ *goldenUser) (reference.Event, bool) {
				def, ok := goldenCodes[status(c)]
				return reference.Event{TS: c.ts, Key: c.status + "|" + def, Null: !ok}, true
			}, []string{"CODE", "DEFINITION"}, "COUNT"},
		{"USER_IP_ACTIVITY", reference.Spec{Kind: "tumbling", Size: min1, Grace: grace, HavingAbove: 1},
			func(c goldenClick, u *goldenUser) (reference.Event, bool) {
				if u == nil {
					return reference.Event{Null: true}, true
				}
				return reference.Event{TS: c.ts, Key: u.username + "|" + c.ip + "|" + u.city}, true
			}, []string{"USERNAME", "IP", "CITY"}, "COUNT"},
	}
}

func TestGoldenPipeline(t *testing.T) {
	// The same log through the unfused plan (the enricher joins, the windower re-reads the
	// joined streams) and the fused one (the windower joins on CLICKSTREAM's messages and
	// publishes the joined streams itself): the same tables, and the same joined streams.
	// Then fused with the work shared (shared/lease): two enrichers and three windowers, every
	// aggregation in four partitions: the same tables and joined streams as one instance. And
	// the same with the reading split (the repartition step: a router, and partition owners
	// that read only their rows).
	derived := map[string]map[string][]string{}
	several := []goldenRun{
		{fuse: true, enrichers: 2, windowers: 3, partitions: 4},
		{fuse: true, enrichers: 2, windowers: 3, partitions: 4, repartition: true},
	}
	for _, r := range append([]goldenRun{{}, {fuse: true}}, several...) {
		t.Run(r.String(), func(t *testing.T) { derived[r.String()] = goldenPipeline(t, r) })
	}
	if t.Failed() {
		return
	}
	for _, stream := range []string{topology.StreamUserClickstream, topology.StreamEnrichedErrorCodes} {
		a, b := derived["fuse=false"][stream], derived["fuse=true"][stream]
		for _, r := range several {
			if c := derived[r.String()][stream]; strings.Join(b, "\n") != strings.Join(c, "\n") {
				t.Errorf("%s differs between one instance (%d messages) and %s (%d messages)", stream, len(b), r, len(c))
			}
		}
		if len(a) == 0 {
			t.Errorf("%s: empty", stream)
		}
		if strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Errorf("%s differs between the unfused (%d messages) and the fused plan (%d messages)", stream, len(a), len(b))
			for i := range min(len(a), len(b)) {
				if a[i] != b[i] {
					t.Errorf("first difference at %d:\n unfused %s\n fused   %s", i, a[i], b[i])
					break
				}
			}
		}
	}
}

// checkSplitReading checks that the windower read source split: a router read the source and
// published the shuffle stream, and the partitions read that stream, not the source.
func checkSplitReading(t *testing.T, js jetstream.JetStream, source string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	consumersOf := func(stream string) []string {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for n := range s.ConsumerNames(ctx).Name() {
			if strings.HasPrefix(n, "windower-") {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		if s.CachedInfo().State.Msgs == 0 {
			t.Errorf("stream %s is empty", stream)
		}
		return names
	}
	if got := consumersOf(source); strings.Join(got, ",") != "windower-"+source+"-shuffle" {
		t.Errorf("windower consumers of %s: %v, want the router's alone", source, got)
	}
	if got := consumersOf(topology.ShuffleStream(source)); len(got) == 0 {
		t.Errorf("no partition reads %s", topology.ShuffleStream(source))
	}
}

// goldenRun says how goldenPipeline runs: fused or not, how many instances of the enricher and
// the windower (default 1 each), and the aggregations' partitions (default 1).
type goldenRun struct {
	fuse                             bool
	enrichers, windowers, partitions int
	repartition                      bool
}

func (r goldenRun) String() string {
	s := fmt.Sprintf("fuse=%v", r.fuse)
	if r.enrichers > 1 || r.windowers > 1 || r.partitions > 1 {
		s += fmt.Sprintf(",enrichers=%d,windowers=%d,partitions=%d", r.enrichers, r.windowers, r.partitions)
	}
	if r.repartition {
		s += ",repartition"
	}
	return s
}

// goldenPipeline runs the golden log through the enricher and the windower and checks the
// tables against the reference; it returns the joined streams' messages (key, event time,
// body), in order.
func goldenPipeline(t *testing.T, r goldenRun) map[string][]string {
	fuse := r.fuse
	env := natstest.Start(t)
	users, clicks := goldenLog()
	for _, u := range users {
		publishJSON(t, env.JS, topology.SubjectClickstreamUsers, "user-"+strconv.Itoa(u.id), goldenT0,
			fmt.Sprintf(`{"user_id":%d,"username":%q,"registered_at":1410180399070,"first_name":"Greta","last_name":"Garrity","city":%q,"level":"Gold"}`, u.id, u.username, u.city))
	}
	for code, def := range goldenCodes {
		publishJSON(t, env.JS, topology.SubjectClickstreamCodes, "code-"+strconv.Itoa(code), goldenT0, fmt.Sprintf(`{"code":%d,"definition":%q}`, code, def))
	}
	for _, c := range clicks {
		publishJSON(t, env.JS, topology.SubjectClickstream, c.id, c.ts, c.body())
	}
	waitPublished(t, env.JS)

	p := plan.Demo()
	if fuse {
		p.Fuse()
	}
	p.DefaultPartitions, p.Repartition = r.partitions, r.repartition
	if err := p.Catalog().Ensure(context.Background(), env.JS, topology.Options{}); err != nil { // the shuffle streams
		t.Fatal(err)
	}
	// Each instance has its own connection and name, as separate processes would.
	var services []runner.Service
	for i := range max(r.enrichers, 1) + max(r.windowers, 1) {
		nc, js := env.Connect(t)
		deps := runner.Deps{NC: nc, JS: js, Health: obs.NewHealth(), Plan: p, Instance: fmt.Sprintf("instance-%d", i)}
		var s runner.Service
		var err error
		if i < max(r.enrichers, 1) {
			s, err = enricher.New(enricher.DefaultConfig(), deps)
		} else {
			s, err = windower.New(windower.Config{Grace: 30 * time.Second, FlushInterval: 20 * time.Millisecond}, deps)
		}
		if err != nil {
			t.Fatal(err)
		}
		services = append(services, s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runner.RunAll(ctx, obs.NewLogger(nil, "text", "warn"), services...) }()
	if r.windowers > 1 {
		// The work is shared: the windower's units (a task's partitions) have several owners.
		owners := map[string]bool{}
		leases, err := env.JS.KeyValue(ctx, topology.BucketLeases)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for len(owners) < min(r.windowers, max(r.partitions, 1)) && time.Now().Before(deadline) {
			if keys, err := leases.ListKeysFiltered(ctx, "u.windower.>"); err == nil {
				for k := range keys.Keys() {
					if e, err := leases.Get(ctx, k); err == nil {
						owners[string(e.Value())] = true
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(owners) < min(r.windowers, max(r.partitions, 1)) {
			t.Errorf("the windower's units had %d owners, want %d", len(owners), min(r.windowers, r.partitions))
		}
	}
	sources := []string{topology.StreamClickstream}
	if !fuse {
		sources = []string{topology.StreamUserClickstream, topology.StreamEnrichedErrorCodes}
	}
	for _, src := range sources {
		waitWindowerDone(t, env.JS, src, src, r.partitions, uint64(len(clicks)-1))
	}
	if r.repartition {
		checkSplitReading(t, env.JS, sources[0])
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	byID := map[int]*goldenUser{}
	for i := range users {
		byID[users[i].id] = &users[i]
	}
	seen := map[string]bool{}
	var unique []goldenClick
	for _, c := range clicks {
		if !seen[c.id] {
			seen[c.id] = true
			unique = append(unique, c)
		}
	}
	for _, tab := range goldenTables() {
		var evs []reference.Event
		for _, c := range unique {
			if e, ok := tab.event(c, byID[c.userid]); ok {
				evs = append(evs, e)
			}
		}
		want := reference.Compute(tab.spec, evs)
		got := readTable(t, env.JS, tab.name, tab.keyCols, tab.countCol)
		if len(want.Rows) == 0 {
			t.Fatalf("%s: the log gives the reference no rows", tab.name)
		}
		var diffs []string
		for id, w := range want.Rows {
			if g, ok := got[id]; !ok {
				diffs = append(diffs, "missing "+id)
			} else if g != [2]int64{w.End, w.Count} {
				diffs = append(diffs, fmt.Sprintf("%s: end,count %v want %v", id, g, [2]int64{w.End, w.Count}))
			}
		}
		for id := range got {
			if _, ok := want.Rows[id]; !ok {
				diffs = append(diffs, "extra "+id)
			}
		}
		sort.Strings(diffs)
		if len(diffs) > 0 {
			t.Errorf("%s: %d rows expected, %d found, %d differences: %v", tab.name, len(want.Rows), len(got), len(diffs), diffs[:min(len(diffs), 6)])
		}
		t.Logf("%s: %d rows, %d late, %d NULL keys", tab.name, len(want.Rows), want.Late, want.Null)
	}
	out := map[string][]string{}
	for _, stream := range []string{topology.StreamUserClickstream, topology.StreamEnrichedErrorCodes} {
		msgs, err := readAll(context.Background(), env.JS, stream)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			out[stream] = append(out[stream], fmt.Sprintf("key=%s time=%s %s", m.Headers().Get(events.HeaderKey), m.Headers().Get(events.HeaderEventTime), m.Data()))
		}
	}
	return out
}

func waitAckFloor(t testing.TB, js jetstream.JetStream, stream, durable string, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if c, err := js.Consumer(context.Background(), stream, durable); err == nil {
			if info, err := c.Info(context.Background()); err == nil && info.AckFloor.Stream >= seq && info.NumAckPending == 0 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s/%s did not reach sequence %d", stream, durable, seq)
}

// readTable reads a windowed bucket into (key@start) -> (window end, count).
func readTable(t testing.TB, js jetstream.JetStream, bucket string, keyCols []string, countCol string) map[string][2]int64 {
	t.Helper()
	out := map[string][2]int64{}
	for _, v := range bucketRows(t, js, bucket) {
		var row map[string]any
		if err := json.Unmarshal([]byte(v), &row); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(keyCols))
		for i, c := range keyCols {
			parts[i] = fmt.Sprint(row[c])
		}
		start := int64(row["WINDOW_START"].(float64))
		out[reference.ID(strings.Join(parts, "|"), start)] = [2]int64{int64(row["WINDOW_END"].(float64)), int64(row[countCol].(float64))}
	}
	return out
}

// TestFusionSwitchRefused: a table's saved state belongs to the arrangement that built it (its
// groups count the inputs of one stream, by that stream's sequences). After a fused run, an
// unfused windower refuses to start, naming the way out, instead of mixing sequences.
func TestFusionSwitchRefused(t *testing.T) {
	env := natstest.Start(t)
	users, clicks := goldenLog()
	for _, u := range users {
		publishJSON(t, env.JS, topology.SubjectClickstreamUsers, "user-"+strconv.Itoa(u.id), goldenT0,
			fmt.Sprintf(`{"user_id":%d,"username":%q,"city":%q}`, u.id, u.username, u.city))
	}
	for _, c := range clicks[:200] {
		publishJSON(t, env.JS, topology.SubjectClickstream, c.id, c.ts, c.body())
	}
	waitPublished(t, env.JS)
	nc, js := env.Connect(t)
	run := func(p *plan.Plan, withEnricher bool) error {
		deps := runner.Deps{NC: nc, JS: js, Health: obs.NewHealth(), Plan: p, Log: obs.NewLogger(nil, "text", "warn")}
		win, err := windower.New(windower.Config{Grace: 30 * time.Second, FlushInterval: 20 * time.Millisecond}, deps)
		if err != nil {
			return err
		}
		svcs := []runner.Service{win}
		if withEnricher {
			enr, err := enricher.New(enricher.DefaultConfig(), deps)
			if err != nil {
				return err
			}
			svcs = append(svcs, enr)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- runner.RunAll(ctx, deps.Log, svcs...) }()
		if !withEnricher {
			select {
			case err := <-done:
				return err
			case <-time.After(time.Minute):
				return errors.New("the unfused windower did not stop")
			}
		}
		waitAckFloor(t, env.JS, topology.StreamClickstream, "windower-"+topology.StreamClickstream, 150)
		cancel()
		return <-done
	}
	if err := run(plan.Demo().Fuse(), true); err != nil {
		t.Fatal(err)
	}
	err := run(plan.Demo(), false)
	if err == nil || !strings.Contains(err.Error(), "--fuse=true") {
		t.Fatalf("unfused windower on fused state: %v; want a refusal naming --fuse=true", err)
	}
	t.Log(err)
}

// TestPartitionsChangeRefused: a windower whose aggregations' state was spread over one number
// of partitions refuses to start with another (each partition's progress would start over),
// and names the way out; the same number starts.
func TestPartitionsChangeRefused(t *testing.T) {
	env := natstest.Start(t)
	_, clicks := goldenLog()
	for _, c := range clicks[:200] {
		publishJSON(t, env.JS, topology.SubjectClickstream, c.id, c.ts, c.body())
	}
	waitPublished(t, env.JS)
	nc, js := env.Connect(t)
	keep := false // the binary's default: plan.AutoPartitions for new tables, else the saved number
	target := uint64(150)
	run := func(parts int, untilStopped bool, tasks ...string) error {
		if tasks == nil {
			tasks = []string{topology.StreamClickstream}
		}
		p := plan.Demo().Fuse()
		p.DefaultPartitions, p.KeepSavedPartitions = parts, keep
		if keep {
			p.DefaultPartitions = plan.AutoPartitions
		}
		deps := runner.Deps{NC: nc, JS: js, Health: obs.NewHealth(), Plan: p, Log: obs.NewLogger(nil, "text", "warn")}
		win, err := windower.New(windower.Config{Grace: 30 * time.Second, FlushInterval: 20 * time.Millisecond}, deps)
		if err != nil {
			return err
		}
		enr, err := enricher.New(enricher.DefaultConfig(), deps)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- runner.RunAll(ctx, deps.Log, win, enr) }()
		if untilStopped {
			select {
			case err := <-done:
				return err
			case <-time.After(time.Minute):
				return errors.New("the windower did not stop")
			}
		}
		for _, task := range tasks {
			parts := parts
			if task == topology.StreamClickstream && len(tasks) > 1 {
				parts = 1 // after the rebuild: the source's task keeps only the fused statements
			}
			waitWindowerDone(t, env.JS, topology.StreamClickstream, task, parts, target)
		}
		cancel()
		return <-done
	}
	if err := run(1, false); err != nil {
		t.Fatal(err)
	}
	err := run(4, true)
	if err == nil || !strings.Contains(err.Error(), "spread over 1 partition(s), this plan has 4") || !strings.Contains(err.Error(), "--rebuild") {
		t.Fatalf("4 partitions on state of 1: %v; want a refusal that names the counts and --rebuild", err)
	}
	t.Log(err)
	if err := run(1, false); err != nil {
		t.Fatalf("the same count again: %v", err)
	}
	// Not chosen (the binary's --partitions 0), the saved number is kept: the task runs with
	// one partition (its consumer and progress unsuffixed) although the default is four.
	keep, target = true, 250
	for _, c := range clicks[200:300] {
		publishJSON(t, env.JS, topology.SubjectClickstream, c.id, c.ts, c.body())
	}
	if err := run(1, false); err != nil { // waits for windower-CLICKSTREAM, unpartitioned
		t.Fatalf("default partitions on state of 1: %v", err)
	}
	state, err := env.JS.KeyValue(context.Background(), topology.BucketWindowerState)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := state.Get(context.Background(), "_progress."+topology.StreamClickstream+".p0"); err == nil {
		t.Fatal("the default's four partitions were used on state built with one")
	}
	keep = false
	// The way out: rebuilt, each table starts over in four partitions of a task of its own
	// (the source's task keeps publishing the joined streams).
	p := plan.Demo().Fuse()
	p.DefaultPartitions = 4
	tasks := []string{topology.StreamClickstream}
	for _, tab := range windower.Tables(p) {
		if err := windower.RebuildTable(context.Background(), js, p, tab.Name); err != nil {
			t.Fatal(err)
		}
		if tab.Source == topology.StreamClickstream {
			tasks = append(tasks, topology.StreamClickstream+"-"+tab.Name)
		}
	}
	if err := run(4, false, tasks...); err != nil {
		t.Fatalf("4 partitions after a rebuild: %v", err)
	}
}

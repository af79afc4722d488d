package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/services/enricher"
	"github.com/jetsuite/jetsuite/services/windower"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// readmePipeline is the example pipeline of the README ("Pipelines in SQL"), so that the
// README shows what this test runs.
func readmePipeline(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "`TestUserPipelineRuns`")
	if !ok {
		t.Fatal("README does not name TestUserPipelineRuns")
	}
	_, rest, ok = strings.Cut(rest, "```sql\n")
	if !ok {
		t.Fatal("README: no sql block after TestUserPipelineRuns")
	}
	sql, _, _ := strings.Cut(rest, "```")
	return sql
}

type upClick struct {
	id            string
	ts            int64
	userid        int
	ip            string
	status, bytes int
}

// TestUserPipelineRuns runs a pipeline that is not one of the demos (the README's example: a
// hopping window with SUM, MAX, COUNT and HAVING; an INNER JOIN with a WHERE; a session window
// over the join; a GROUP BY without a window with AVG and COLLECT_SET) from its SQL on the
// enricher and the windower, and checks every output against a plain loop over the input.
func TestUserPipelineRuns(t *testing.T) {
	p, err := plan.Compile(plan.File{Name: "README.md", SQL: readmePipeline(t)})
	if err != nil {
		t.Fatal(err)
	}
	env := natstest.Start(t)
	ctx := context.Background()
	if err := p.Catalog().Ensure(ctx, env.JS, topology.Options{}); err != nil {
		t.Fatal(err)
	}
	users := map[int]string{1: "alice", 2: "bob", 3: "carol"} // user 4 is unknown: no join
	for id, name := range users {
		publishJSON(t, env.JS, "clickstream_users", "u"+strconv.Itoa(id), goldenT0, fmt.Sprintf(`{"user_id":%d,"username":%q,"city":"Leeds"}`, id, name))
	}
	rng := rand.New(rand.NewSource(9))
	var clicks []upClick
	ts := goldenT0
	for i := 0; i < 600; i++ {
		ts += int64(rng.Intn(1500))
		if i == 300 {
			ts += 120_000 // a quiet spell: every session ends
		}
		c := upClick{id: "c" + strconv.Itoa(i), ts: ts, userid: 1 + rng.Intn(4), ip: "10.0.0." + strconv.Itoa(1+rng.Intn(3)),
			status: []int{200, 200, 302, 404, 500}[rng.Intn(5)], bytes: rng.Intn(900)}
		clicks = append(clicks, c)
		publishJSON(t, env.JS, "clickstream", c.id, c.ts, fmt.Sprintf(`{"userid":%d,"ip":%q,"status":%d,"bytes":%d}`, c.userid, c.ip, c.status, c.bytes))
	}
	waitPublished(t, env.JS)

	nc, js := env.Connect(t)
	deps := runner.Deps{NC: nc, JS: js, Health: obs.NewHealth(), Plan: p}
	enr, err := enricher.New(enricher.DefaultConfig(), deps)
	if err != nil {
		t.Fatal(err)
	}
	win, err := windower.New(windower.Config{Grace: time.Hour, FlushInterval: 20 * time.Millisecond}, deps)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runner.RunAll(runCtx, obs.NewLogger(nil, "text", "warn"), enr, win) }()

	// The plain loop.
	type hop struct{ total, biggest, n int64 }
	bytesPerIP := map[string]*hop{} // ip.windowStart
	var known []string
	type session struct {
		start, end, clicks, bytes int64
	}
	sessions := map[string][]*session{}
	type perUser struct {
		clicks, bytes int64
		ids           []int
	}
	totals := map[string]*perUser{}
	for _, c := range clicks {
		for s := c.ts - c.ts%10_000 - 20_000; s <= c.ts; s += 10_000 {
			if c.ts >= s && c.ts < s+30_000 {
				k := c.ip + "." + strconv.FormatInt(s, 10)
				if bytesPerIP[k] == nil {
					bytesPerIP[k] = &hop{}
				}
				h := bytesPerIP[k]
				h.total += int64(c.bytes)
				h.biggest = max(h.biggest, int64(c.bytes))
				h.n++
			}
		}
		name, ok := users[c.userid]
		if !ok || c.status >= 400 {
			continue
		}
		known = append(known, fmt.Sprintf(`{"USERID":%d,"USERNAME":%q,"BYTES":%d}`, c.userid, name, c.bytes))
		ss := sessions[name]
		if n := len(ss); n > 0 && c.ts <= ss[n-1].end+60_000 {
			ss[n-1].end, ss[n-1].clicks, ss[n-1].bytes = c.ts, ss[n-1].clicks+1, ss[n-1].bytes+int64(c.bytes)
		} else {
			sessions[name] = append(ss, &session{c.ts, c.ts, 1, int64(c.bytes)})
		}
		if totals[name] == nil {
			totals[name] = &perUser{}
		}
		u := totals[name]
		u.clicks++
		u.bytes += int64(c.bytes)
		if !containsInt(u.ids, c.userid) {
			u.ids = append(u.ids, c.userid)
		}
	}
	wantBytes := map[string]string{}
	for k, h := range bytesPerIP {
		if h.total > 1000 {
			i := strings.LastIndexByte(k, '.')
			ip, start := k[:i], k[i+1:]
			s, _ := strconv.ParseInt(start, 10, 64)
			wantBytes[escapeKey(ip)+"."+start] = fmt.Sprintf(`{"IP":%q,"TOTAL":%d,"BIGGEST":%d,"N":%d,"WS":%d,"WINDOW_START":%d,"WINDOW_END":%d}`, ip, h.total, h.biggest, h.n, s, s, s+30_000)
		}
	}
	wantSessions := map[string]string{}
	for name, ss := range sessions {
		for _, s := range ss {
			wantSessions[name+"."+strconv.FormatInt(s.start, 10)] = fmt.Sprintf(`{"USERNAME":%q,"CLICKS":%d,"BYTES":%d,"LAST":%d,"WINDOW_START":%d,"WINDOW_END":%d}`, name, s.clicks, s.bytes, s.end, s.start, s.end)
		}
	}
	wantTotals := map[string]string{}
	for name, u := range totals {
		ids, _ := json.Marshal(u.ids)
		wantTotals[name] = fmt.Sprintf(`{"USERNAME":%q,"CLICKS":%d,"AVG_BYTES":%s,"IDS":%s}`, name, u.clicks, javaDouble(float64(u.bytes)/float64(u.clicks)), ids)
	}

	waitAckFloor(t, env.JS, "CLICKSTREAM", "windower-CLICKSTREAM", uint64(len(clicks)))
	waitAckFloor(t, env.JS, "KNOWN_CLICKS", "windower-KNOWN_CLICKS", uint64(len(known)))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	t.Logf("%d clicks, %d KNOWN_CLICKS, %d BYTES_PER_IP rows, %d sessions, %d users", len(clicks), len(known), len(wantBytes), len(wantSessions), len(wantTotals))
	got := streamBodies(t, env.JS, "KNOWN_CLICKS")
	if !reflect.DeepEqual(got, known) {
		t.Errorf("KNOWN_CLICKS: %d rows, want %d; first difference: %s", len(got), len(known), firstDiff(got, known))
	}
	for table, want := range map[string]map[string]string{"BYTES_PER_IP": wantBytes, "USER_SESSIONS": wantSessions, "CLICKS_PER_USER": wantTotals} {
		got := bucketRows(t, env.JS, table)
		if len(want) == 0 {
			t.Fatalf("%s: the reference has no rows; the test data does not exercise it", table)
		}
		if !reflect.DeepEqual(got, want) {
			var keys []string
			for k := range want {
				if got[k] != want[k] {
					keys = append(keys, fmt.Sprintf("%s: got %s, want %s", k, got[k], want[k]))
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok {
					keys = append(keys, fmt.Sprintf("%s: unexpected %s", k, got[k]))
				}
			}
			sort.Strings(keys)
			t.Errorf("%s: %d rows, want %d; %d differ, e.g. %v", table, len(got), len(want), len(keys), keys[:min(3, len(keys))])
		}
	}
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// escapeKey is the KV key form of a group value (bytes other than letters, digits, - and _ as
// =XX), written out here independently of kvx.
func escapeKey(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	return b.String()
}

// javaDouble prints a double as ksqlDB's JSON does (2.0, 2.5).
func javaDouble(f float64) string {
	if f == float64(int64(f)) {
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func streamBodies(t *testing.T, js jetstream.JetStream, stream string) []string {
	t.Helper()
	ctx := context.Background()
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for n := info.NumPending; n > 0; {
		batch, err := c.Fetch(int(min(n, 500)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			out = append(out, string(m.Data()))
			got++
		}
		if got == 0 {
			t.Fatalf("%s: fetch returned nothing", stream)
		}
		n -= uint64(got)
	}
	return out
}

func bucketRows(t testing.TB, js jetstream.JetStream, bucket string) map[string]string {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.WatchAll(context.Background(), jetstream.IgnoreDeletes())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Stop() }()
	rows := map[string]string{}
	for e := range w.Updates() {
		if e == nil {
			break
		}
		rows[e.Key()] = string(e.Value())
	}
	return rows
}

func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("row %d: %s, want %s", i, got[i], want[i])
		}
	}
	return "one is a prefix of the other"
}

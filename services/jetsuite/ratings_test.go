package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"

	"github.com/jetsuite/jetsuite/services/alerting"
	"github.com/jetsuite/jetsuite/services/cdc"
	"github.com/jetsuite/jetsuite/services/enricher"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/testenv"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// debeziumEvent is a MySQL-connector change event of demo.CUSTOMERS as Debezium Server's NATS
// sink publishes it (value only, no schema wrapper).
func debeziumEvent(op string, pos int, before, after map[string]any) string {
	ev := map[string]any{
		"before": before, "after": after, "op": op, "ts_ms": 1763719200000 + int64(pos),
		"source": map[string]any{
			"version": "3.3.1.Final", "connector": "mysql", "name": "asgard", "ts_ms": 1763719200000 + int64(pos),
			"snapshot": "false", "db": "demo", "table": "CUSTOMERS", "server_id": 223344, "gtid": nil,
			"file": "mysql-bin.000003", "pos": pos, "row": 0, "thread": 7,
		},
	}
	b, _ := json.Marshal(ev)
	return string(b)
}

func rick(email, club any) map[string]any {
	return map[string]any{"id": 42, "first_name": "Rick", "last_name": "Astley", "email": email, "gender": nil,
		"club_status": club, "comments": nil, "create_ts": "2026-11-21T10:00:00Z", "update_ts": "2026-11-21T10:00:00Z"}
}

// TestRickAstleyAlert: the demo's scripted customer changes, from Debezium change events through
// the CDC reader, the enricher and the alerter to a Slack server (slack-go's slacktest): a bad
// rating alerts only once Rick Astley is platinum, exactly once, with his email and the review;
// after he is deleted his ratings no longer join.
func TestRickAstleyAlert(t *testing.T) {
	env := natstest.Start(t)
	slackURL, seenPosts := slackRecorder(t)

	nc, js := env.Connect(t)
	deps := runner.Deps{NC: nc, JS: js, Health: obs.NewHealth(), Log: obs.NewLogger(nil, "text", "warn")}
	reader := cdc.New(deps, cdc.Config{Stream: topology.StreamDebezium, Subjects: []string{topology.SubjectCustomersCDC}, Table: topology.TableCustomers})
	enr, err := enricher.New(enricher.DefaultConfig(), deps)
	if err != nil {
		t.Fatal(err)
	}
	alerts := alerting.New(deps, alerting.Config{SlackToken: "xoxb-test-token", Channel: "unhappy-customers", APIURL: slackURL})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runner.RunAll(ctx, deps.Log, reader, enr, alerts) }()
	defer func() { cancel(); <-done }()

	kv, err := env.JS.KeyValue(ctx, topology.TableCustomers)
	if err != nil {
		t.Fatal(err)
	}
	change := func(pos int, op string, before, after map[string]any, check func(row map[string]any, deleted bool) bool) {
		t.Helper()
		publishJSON(t, env.JS, topology.SubjectCustomersCDC, fmt.Sprintf("dbz-%d", pos), 1763719200000+int64(pos), debeziumEvent(op, pos, before, after))
		waitPublished(t, env.JS)
		deadline := time.Now().Add(10 * time.Second)
		for {
			e, err := kv.Get(ctx, "42")
			var row map[string]any
			if err == nil {
				_ = json.Unmarshal(e.Value(), &row)
			}
			if check(row, err != nil) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("CUSTOMERS did not reflect the %s at pos %d: %v %v", op, pos, row, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Second) // the enricher's view follows the bucket through its watcher
	}
	ratingID := 100
	rate := func(stars int, message string) int {
		t.Helper()
		ratingID++
		publishJSON(t, env.JS, topology.SubjectRatings, fmt.Sprintf("rating-%d", ratingID), time.Now().UnixMilli(),
			fmt.Sprintf(`{"rating_id":%d,"user_id":42,"stars":%d,"route_id":7,"rating_time":1,"channel":"iOS","message":%q}`, ratingID, stars, message))
		waitPublished(t, env.JS)
		// The join reads the table as it is when the rating is processed (as in ksqlDB): wait
		// until the enricher has processed this rating before the table changes again.
		live, err := env.JS.Stream(ctx, topology.StreamRatingsLive)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			info, err := live.Info(ctx)
			if err == nil && info.State.Msgs >= uint64(ratingID-100) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the enricher did not process rating %d: %v %v", ratingID, info, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return ratingID
	}

	change(1000, "c", nil, rick(nil, nil), func(r map[string]any, _ bool) bool { return r["FIRST_NAME"] == "Rick" })
	rate(1, "worst. flight. ever. #neveragain")
	change(1100, "u", rick(nil, nil), rick("rick@example.com", nil), func(r map[string]any, _ bool) bool { return r["EMAIL"] == "rick@example.com" })
	change(1200, "u", rick("rick@example.com", nil), rick("rick@example.com", "bronze"), func(r map[string]any, _ bool) bool { return r["CLUB_STATUS"] == "bronze" })
	rate(2, "meh")
	change(1300, "u", rick("rick@example.com", "bronze"), rick("rick@example.com", "platinum"), func(r map[string]any, _ bool) bool { return r["CLUB_STATUS"] == "platinum" })
	rate(4, "your team here rocks!")
	bad := rate(1, "why is it so difficult to keep the bathrooms clean ?")

	// Exactly one Slack message: the platinum customer's bad rating.
	var seen []string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		seen = seenPosts()
		if len(seen) >= 1 {
			time.Sleep(time.Second) // and no second one
			seen = seenPosts()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(seen) != 1 {
		t.Fatalf("Slack got %d messages, want exactly 1: %v", len(seen), seen)
	}
	for _, want := range []string{"rick@example.com", "why is it so difficult to keep the bathrooms clean ?", "right here, right now"} {
		if !strings.Contains(seen[0], want) {
			t.Errorf("the Slack message lacks %q: %s", want, seen[0])
		}
	}
	if !strings.Contains(seen[0], fmt.Sprint(bad)) {
		t.Errorf("the Slack message does not name rating %d: %s", bad, seen[0])
	}

	// Deleted: his next ratings no longer join.
	change(1400, "d", rick("rick@example.com", "platinum"), nil, func(_ map[string]any, deleted bool) bool { return deleted })
	gone := rate(1, "(expletive deleted)")
	time.Sleep(time.Second)
	joined := streamMsgsBody(t, env, topology.StreamRatingsWithCustomerData)
	if strings.Contains(joined, fmt.Sprintf(`"RATING_ID":%d,`, gone)) {
		t.Errorf("rating %d of a deleted customer was joined", gone)
	}
	if n := strings.Count(joined, `"CUSTOMER_ID":"42"`); n != 4 {
		t.Errorf("%d ratings of customer 42 joined, want the 4 made while he existed", n)
	}
	if got := len(seenPosts()); got != 1 {
		t.Errorf("Slack got %d messages after the delete, want still 1", got)
	}
}

// streamMsgsBody returns every message body of a stream, one per line.
func streamMsgsBody(t *testing.T, env *natstest.Env, stream string) string {
	t.Helper()
	var b strings.Builder
	ctx := context.Background()
	s, err := env.JS.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		b.Write(m.Data)
		b.WriteByte('\n')
	}
	return b.String()
}

// slackRecorder starts slack-go's slacktest server with chat.postMessage recording what is
// posted (slacktest's own handler only feeds an RTM websocket) and answering as Slack does.
func slackRecorder(t *testing.T) (apiURL string, posts func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			mu.Lock()
			seen = append(seen, r.Form.Get("text")+" "+r.Form.Get("blocks")+" "+r.Form.Get("metadata"))
			ts := fmt.Sprintf("%d.%06d", time.Now().Unix(), len(seen))
			mu.Unlock()
			fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q}`, r.Form.Get("channel"), ts)
		})
	})
	srv.Start()
	t.Cleanup(srv.Stop)
	return srv.GetAPIURL(), func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), seen...) }
}

// TestAlertsAcrossNATSRestart: the NATS server stops while unhappy customers' rows stream in and
// starts again on the same data; every rating still becomes exactly one Slack message.
func TestAlertsAcrossNATSRestart(t *testing.T) {
	dir, addr := t.TempDir(), testenv.FreeAddr(t)
	env := natstest.StartAt(t, dir, addr)
	slackURL, posts := slackRecorder(t)
	nc, js := env.Connect(t)
	deps := runner.Deps{NC: nc, JS: js, Health: obs.NewHealth(), Log: obs.NewLogger(nil, "text", "warn")}
	alerts := alerting.New(deps, alerting.Config{SlackToken: "xoxb-test-token", Channel: "unhappy-customers", APIURL: slackURL,
		RetryMin: 100 * time.Millisecond, RetryMax: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- alerts.Run(ctx) }()
	defer func() { cancel(); <-done }()

	const n = 200
	publish := func(env *natstest.Env, from, to int) {
		for id := from; id <= to; id++ {
			publishJSON(t, env.JS, topology.StreamUnhappyPlatinumCustomers, fmt.Sprintf("r-%d", id), time.Now().UnixMilli(),
				fmt.Sprintf(`{"FULL_NAME":"Ruthie Brockherst","CLUB_STATUS":"platinum","EMAIL":"rbrockherst1@ow.ly","STARS":1,"MESSAGE":"meh","RATING_ID":%d}`, id))
			time.Sleep(2 * time.Millisecond)
		}
		waitPublished(t, env.JS)
	}
	publish(env, 1, n/2)
	for wait := time.Now().Add(30 * time.Second); len(posts()) < 20; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatalf("only %d alerts before the restart", len(posts()))
		}
	}
	env.Server.Shutdown()
	env.Server.WaitForShutdown()
	time.Sleep(time.Second)
	env = natstest.StartAt(t, dir, addr)
	publish(env, n/2+1, n)

	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && len(posts()) < n {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	seen := map[int]int{}
	for _, p := range posts() {
		for id := 1; id <= n; id++ {
			if strings.Contains(p, fmt.Sprintf(`"rating.%d"`, id)) {
				seen[id]++
			}
		}
	}
	for id := 1; id <= n; id++ {
		if seen[id] != 1 {
			t.Errorf("rating %d: %d Slack messages, want 1", id, seen[id])
		}
	}
}

package windower_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/services/windower"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/topology"
)

const tableAggSQL = `
CREATE TABLE users (user_id INT PRIMARY KEY, city VARCHAR, level VARCHAR, score INT) WITH (kafka_topic='users');
CREATE TABLE USERS_PER_CITY AS
  SELECT city, COUNT(*) AS n, MIN(score) AS lo, MAX(score) AS hi, SUM(score) AS total, COLLECT_SET(level) AS levels
  FROM users WHERE level <> 'banned' GROUP BY city;
CREATE TABLE SCORE_PER_LEVEL_PER_MIN AS
  SELECT level, SUM(score) AS total, COUNT(*) AS n
  FROM users WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY level;
`

type tableUser struct {
	id          int
	city, level string
	score       int
	ts          int64
}

// TestAggregationOverATable: a table's rows change and go; every aggregation over it (one
// without a window, with MIN and MAX, which ksqlDB cannot undo; one windowed by the rows' event
// time) holds what a plain loop computes from the table's final rows, also when the windower is
// stopped mid-way and started again.
func TestAggregationOverATable(t *testing.T) {
	t.Run("restart", func(t *testing.T) { aggregateOverATable(t, false) })
	t.Run("crash mid-flush", func(t *testing.T) { aggregateOverATable(t, true) })
}

func aggregateOverATable(t *testing.T, crash bool) {
	p, err := plan.Compile(plan.File{Name: "users.sql", SQL: tableAggSQL})
	if err != nil {
		t.Fatal(err)
	}
	env := natstest.Start(t)
	ctx := context.Background()
	if err := p.Catalog().Ensure(ctx, env.JS, topology.Options{}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(3))
	cities := []string{"Leeds", "San Francisco", "Palo Alto"}
	levels := []string{"Gold", "Silver", "banned"}
	final := map[int]*tableUser{}
	const t0 = int64(1_700_000_000_000)
	var changes []func()
	for i := 0; i < 400; i++ {
		id := 1 + rng.Intn(40)
		if rng.Intn(6) == 0 {
			changes = append(changes, func() { deleteUser(t, env.JS, id) })
			delete(final, id)
			continue
		}
		u := &tableUser{id: id, city: cities[rng.Intn(len(cities))], level: levels[rng.Intn(len(levels))], score: rng.Intn(100), ts: t0 + int64(i)*1000}
		final[id] = u
		changes = append(changes, func() { putUser(t, env.JS, u) })
	}

	nc, js := env.Connect(t)
	deps := runner.Deps{NC: nc, JS: js, Plan: p}
	run := func(apply []func(), crashAt int32) {
		// Small batches and flushes: many flushes, so that the crash falls mid-stream.
		svc, err := windower.New(windower.Config{Grace: time.Hour, FlushInterval: 10 * time.Millisecond, IdleTimeout: -1, BatchSize: 5, FlushMaxInputs: 5}, deps)
		if err != nil {
			t.Fatal(err)
		}
		var flushes atomic.Int32
		if crashAt > 0 {
			// Stop in the middle of a flush: groups saved, input rows and progress partly.
			svc.SetCrashMidFlush(func() bool { return flushes.Add(1) == crashAt })
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- svc.Run(runCtx) }()
		for _, c := range apply {
			c()
		}
		if crashAt > 0 {
			select {
			case <-done:
				cancel()
				return
			case <-time.After(30 * time.Second):
				t.Fatal("no crash")
			}
		}
		waitKVConsumed(t, env.JS, "USERS")
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if crash {
		run(changes[:200], 3)
		run(changes[200:], 0)
	} else {
		run(changes[:150], 0)
		run(changes[150:], 0) // a restart in between: state, input rows and progress come back
	}

	// The plain loop over the final rows.
	type perCity struct {
		n, lo, hi, total int
		levels           []string
	}
	want := map[string]string{}
	byCity := map[string]*perCity{}
	type perLevel struct{ total, n int }
	byLevel := map[string]*perLevel{} // level.windowStart
	for _, u := range final {
		if u.level != "banned" {
			c := byCity[u.city]
			if c == nil {
				c = &perCity{lo: u.score, hi: u.score}
				byCity[u.city] = c
			}
			c.n++
			c.lo, c.hi, c.total = min(c.lo, u.score), max(c.hi, u.score), c.total+u.score
			if !containsString(c.levels, u.level) {
				c.levels = append(c.levels, u.level)
			}
		}
		k := u.level + "." + strconv.FormatInt(u.ts-u.ts%60_000, 10)
		if byLevel[k] == nil {
			byLevel[k] = &perLevel{}
		}
		byLevel[k].total += u.score
		byLevel[k].n++
	}
	for city, c := range byCity {
		sort.Strings(c.levels)
		want[city] = fmt.Sprintf("n=%d lo=%d hi=%d total=%d levels=%v", c.n, c.lo, c.hi, c.total, c.levels)
	}
	got := map[string]string{}
	for _, row := range tableRows(t, env.JS, "USERS_PER_CITY") {
		var levels []string
		for _, l := range row["LEVELS"].([]any) {
			levels = append(levels, l.(string))
		}
		sort.Strings(levels)
		got[row["CITY"].(string)] = fmt.Sprintf("n=%v lo=%v hi=%v total=%v levels=%v", row["N"], row["LO"], row["HI"], row["TOTAL"], levels)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("USERS_PER_CITY:\n got %v\nwant %v", got, want)
	}
	wantLevel := map[string]string{}
	for k, l := range byLevel {
		wantLevel[k] = fmt.Sprintf("total=%d n=%d", l.total, l.n)
	}
	gotLevel := map[string]string{}
	for _, row := range tableRows(t, env.JS, "SCORE_PER_LEVEL_PER_MIN") {
		gotLevel[fmt.Sprintf("%v.%.0f", row["LEVEL"], row["WINDOW_START"])] = fmt.Sprintf("total=%v n=%v", row["TOTAL"], row["N"])
	}
	if !reflect.DeepEqual(gotLevel, wantLevel) {
		t.Errorf("SCORE_PER_LEVEL_PER_MIN:\n got %v\nwant %v", gotLevel, wantLevel)
	}
}

func containsString(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// putUser writes a row of USERS as the enricher's loader does (a KV put carrying the input's
// event time).
func putUser(t *testing.T, js jetstream.JetStream, u *tableUser) {
	t.Helper()
	m := nats.NewMsg("$KV.USERS." + strconv.Itoa(u.id))
	m.Data, _ = json.Marshal(map[string]any{"USER_ID": u.id, "CITY": u.city, "LEVEL": u.level, "SCORE": u.score})
	m.Header.Set("Event-Time", strconv.FormatInt(u.ts, 10))
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func deleteUser(t *testing.T, js jetstream.JetStream, id int) {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), "USERS")
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(context.Background(), strconv.Itoa(id)); err != nil {
		t.Fatal(err)
	}
}

// waitKVConsumed waits until the windower has taken in every change of a table's bucket.
func waitKVConsumed(t *testing.T, js jetstream.JetStream, bucket string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		s, err1 := js.Stream(context.Background(), "KV_"+bucket)
		c, err2 := js.Consumer(context.Background(), "KV_"+bucket, "windower-KV_"+bucket)
		if err1 == nil && err2 == nil {
			si, err1 := s.Info(context.Background())
			ci, err2 := c.Info(context.Background())
			if err1 == nil && err2 == nil && ci.AckFloor.Stream >= si.State.LastSeq && ci.NumAckPending == 0 && ci.NumPending == 0 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the windower did not take in every change of %s", bucket)
}

func tableRows(t *testing.T, js jetstream.JetStream, bucket string) []map[string]any {
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
	var rows []map[string]any
	for e := range w.Updates() {
		if e == nil {
			break
		}
		var row map[string]any
		if err := json.Unmarshal(e.Value(), &row); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	return rows
}

package windower_test

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jetsuite/jetsuite/services/windower"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/pipe"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// partitionOfUser is the partition of an EVENTS_PER_MIN group (its userid) among n: FNV-1a of
// the key's text, as JetStream's subject partitioning hashes (computed here independently).
func partitionOfUser(userid, n int) int {
	h := fnv.New32a()
	h.Write([]byte(strconv.Itoa(userid)))
	return int(h.Sum32() % uint32(n))
}

// splitPlan is the built-in plan, fused, with its aggregations in parts partitions and their
// reading split or not, its streams (the shuffle streams among them) declared.
func splitPlan(t *testing.T, env *natstest.Env, parts int, split bool) *plan.Plan {
	t.Helper()
	p := plan.Demo()
	p.Fuse()
	p.DefaultPartitions, p.Repartition = parts, split
	if err := p.Catalog().Ensure(context.Background(), env.JS, topology.Options{}); err != nil {
		t.Fatal(err)
	}
	return p
}

// runEventsWindowers runs n windower instances of EVENTS_PER_MIN on p (each its own
// connection and instance name) until the returned function stops them.
func runEventsWindowers(t *testing.T, env *natstest.Env, p *plan.Plan, n int, grace time.Duration) (stop func()) {
	t.Helper()
	var services []runner.Service
	for i := range n {
		nc, js := env.Connect(t)
		s, err := windower.New(windower.Config{Grace: grace, FlushInterval: 10 * time.Millisecond, Tables: []string{topology.TableEventsPerMin}},
			runner.Deps{NC: nc, JS: js, Health: obs.NewHealth(), Plan: p, Instance: fmt.Sprintf("w%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		services = append(services, s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runner.RunAll(ctx, obs.NewLogger(nil, "text", "warn"), services...) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// waitEvents waits until EVENTS_PER_MIN's row of user in the window starting at start counts
// want events.
func waitEvents(t *testing.T, env *natstest.Env, user int, start int64, want int) {
	t.Helper()
	kv, err := env.JS.KeyValue(context.Background(), topology.TableEventsPerMin)
	if err != nil {
		t.Fatal(err)
	}
	var row struct{ EVENTS int }
	deadline := time.Now().Add(30 * time.Second)
	for {
		e, err := kv.Get(context.Background(), windower.RowKey(strconv.Itoa(user), start))
		if err == nil && json.Unmarshal(e.Value(), &row) == nil && row.EVENTS == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("EVENTS_PER_MIN of user %d at %d: %+v (err %v), want EVENTS %d", user, start, row, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRepartitionDecidesLatenessAsOneReader: with the reading split (Config.Repartition), two
// windowers each own one of EVENTS_PER_MIN's two partitions and read only their rows. A click of
// user A, then one of user B two minutes later, then one of A in A's first window: one reader of
// every click finds the last one late (stream time passed the window's end + grace), although
// A's partition alone never saw a later event. The partitions take their stream time from the
// router, so the click is published as late and not counted, as one instance would.
func TestRepartitionDecidesLatenessAsOneReader(t *testing.T) {
	env := natstest.Start(t)
	a := 1
	b := a + 1
	for partitionOfUser(b, 2) == partitionOfUser(a, 2) {
		b++
	}
	stop := runEventsWindowers(t, env, splitPlan(t, env, 2, true), 2, time.Second)
	defer stop()
	ctx := context.Background()

	// Publish only once each partition has its own owner, so that no reader sees both.
	leases, err := env.JS.KeyValue(ctx, topology.BucketLeases)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		owners := map[string]string{}
		for _, u := range []string{"CLICKSTREAM.p0", "CLICKSTREAM.p1"} {
			if e, err := leases.Get(ctx, "u.windower."+u); err == nil {
				owners[u] = string(e.Value())
			}
		}
		if len(owners) == 2 && owners["CLICKSTREAM.p0"] != owners["CLICKSTREAM.p1"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the two partitions did not get two owners: %v", owners)
		}
		time.Sleep(50 * time.Millisecond)
	}

	click := func(id string, user int, ts int64) {
		publishClick(t, env.JS, id, ts, fmt.Sprintf(`{"ip":"1.2.3.4","userid":%d,"status":"200","request":"GET /index.html HTTP/1.1"}`, user))
	}
	w0 := t0 - t0%60_000
	click("a1", a, w0+1000)
	click("b1", b, w0+2*60_000)
	click("a2", a, w0+2000) // late: stream time w0+120 s is past the window's end w0+60 s + 1 s grace

	late := streamMsgs(t, env.JS, topology.StreamLateEvents, "late."+topology.TableEventsPerMin, 1)
	if len(late) != 1 {
		t.Fatalf("%d late events, want 1 (the second click of user %d)", len(late), a)
	}
	if id := late[0].Headers().Get("Nats-Msg-Id"); id != "late:"+topology.TableEventsPerMin+":"+topology.StreamClickstream+":3" {
		t.Errorf("late event %s, want the third click's", id)
	}
	waitEvents(t, env, a, w0, 1)
	waitEvents(t, env, b, w0+2*60_000, 1)
}

// TestShuffleGarbageDeadLettered: a message on a shuffle stream that is not the router's (not
// a shuffle message at all, or one cut short) is dead-lettered with the reason by the partition
// that reads it, and the clicks before and after it are counted.
func TestShuffleGarbageDeadLettered(t *testing.T) {
	env := natstest.Start(t)
	stop := runEventsWindowers(t, env, splitPlan(t, env, 2, true), 1, time.Minute)
	defer stop()
	ctx := context.Background()
	w0 := t0 - t0%60_000
	body := `{"ip":"1.2.3.4","userid":7,"status":"200","request":"GET /index.html HTTP/1.1"}`
	publishClick(t, env.JS, "c1", w0+1000, body)
	waitEvents(t, env, 7, w0, 1)
	subject := topology.ShuffleSubject(topology.StreamClickstream)
	// Not a shuffle message; one cut short; and a well-formed one claiming a range up to input
	// 1000, which must not make the partitions skip the inputs before it.
	for _, garbage := range []string{"not a shuffle message", "JSH1\x05\x01", "JSH1\xe8\x07\x00\x00"} {
		if _, err := env.JS.Publish(ctx, subject, []byte(garbage)); err != nil {
			t.Fatal(err)
		}
	}
	publishClick(t, env.JS, "c2", w0+2000, body)
	waitEvents(t, env, 7, w0, 2)
	dl := streamMsgs(t, env.JS, topology.StreamDeadLetter, "dlq."+topology.ShuffleStream(topology.StreamClickstream), 3)
	if len(dl) != 3 {
		t.Fatalf("%d dead letters of the shuffle stream, want 3", len(dl))
	}
	for _, m := range dl {
		if e := m.Headers().Get(pipe.HeaderDLQError); !strings.Contains(e, "malformed shuffle message") {
			t.Errorf("dead letter %q: error %q", m.Data(), e)
		}
	}
}

// TestRepartitionSwitch: a windower's reading is split (--repartition) after it ran without,
// and back: no rebuild, the counts go on from the saved state, and the router's first start
// resumes after the partitions' progress instead of routing the retained source again.
func TestRepartitionSwitch(t *testing.T) {
	env := natstest.Start(t)
	w0 := t0 - t0%60_000
	seq, want := 0, map[int]int{}
	publish := func(n int) {
		for range n {
			seq++
			user := seq % 5
			want[user]++
			publishClick(t, env.JS, "s"+strconv.Itoa(seq), w0+int64(seq), fmt.Sprintf(`{"ip":"1.2.3.4","userid":%d,"status":"200","request":"GET / HTTP/1.1"}`, user))
		}
	}
	phase := func(split bool) {
		t.Helper()
		stop := runEventsWindowers(t, env, splitPlan(t, env, 2, split), 1, time.Hour)
		defer stop()
		publish(200)
		for user, n := range want {
			waitEvents(t, env, user, w0, n)
		}
	}
	phase(false)
	phase(true)
	c, err := env.JS.Consumer(context.Background(), topology.StreamClickstream, "windower-CLICKSTREAM-shuffle")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Delivered.Consumer != 200 || info.Delivered.Stream != 400 {
		t.Errorf("the router read %d inputs up to %d, want the 200 after the 200 the partitions had applied", info.Delivered.Consumer, info.Delivered.Stream)
	}
	phase(false)
}

package windower_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/services/windower"
	"github.com/jetsuite/jetsuite/services/windower/reference"
	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// sessionEvent is one USER_CLICKSTREAM event of a hand-computed session case.
type sessionEvent struct {
	user string
	ts   int64
}

// sessionP is the stream time the lateness case starts from: later than every click of the
// golden bursts (the last at t0+599,750), earlier than the merge case (t0+700,000).
const sessionP = t0 + 620_000

// sessionLatenessLog tells Kafka Streams' session rule (late when the merged end < stream
// time - gap - grace) from the one jetsuite had before (late when the merged end + grace <
// stream time), and checks that a closed session stays final. Gap and grace are 30 s.
func sessionLatenessLog() []sessionEvent {
	p := sessionP
	return []sessionEvent{
		{"pace", p}, // stream time P, closeTime P-60,000
		// Old rule: end + 30 s < P, late. New: end >= closeTime, counted (a new session, then a
		// merge into it that moves its start).
		{"lagger", p - 40_000},
		{"lagger", p - 45_000},
		{"edge", p - 60_000},  // ts == closeTime: not before it (strict <), counted
		{"stale", p - 60_001}, // ts < closeTime: late by both rules
		{"closer", p - 50_000},
		{"closer2", p - 49_999},
		{"bridge", p - 50_000}, // bridge A
		{"bridge", p - 5_000},  // bridge B: 45 s after A, a session of its own
		// Stream time P+10,001, closeTime P-49,999: closer (end P-50,000) and bridge A close
		// (closeAt = end + gap + grace + 1 = P+10,001); closer2 (end P-49,999) stays open.
		{"pace", p + 10_001},
		// Within gap of the closed closer session: Kafka Streams would merge it (merged end
		// P-25,000 >= closeTime) into a session whose final row may be out: late.
		{"closer", p - 25_000},
		// Within gap of the open closer2 session: merged, [P-49,999, P-25,000]. The old rule
		// called it late (P-25,000 + 30 s < P+10,001).
		{"closer2", p - 25_000},
		// Within gap of closed bridge A and of open bridge B: late, B unchanged.
		{"bridge", p - 25_000},
	}
}

// sessionLatenessWant is the hand-computed outcome of sessionLatenessLog in
// CLICK_USER_SESSIONS: the rows (by reference.ID) and the late events (user@ts).
func sessionLatenessWant() (rows map[string]reference.Row, late []string) {
	p := sessionP
	row := func(key string, start, end, count int64) (string, reference.Row) {
		return reference.ID(key, start), reference.Row{Key: key, Start: start, End: end, Count: count}
	}
	rows = map[string]reference.Row{}
	for _, r := range []struct {
		key               string
		start, end, count int64
	}{
		{"pace", p, p + 10_001, 2},
		{"lagger", p - 45_000, p - 40_000, 2},
		{"edge", p - 60_000, p - 60_000, 1},
		{"closer", p - 50_000, p - 50_000, 1},
		{"closer2", p - 49_999, p - 25_000, 2},
		{"bridge", p - 50_000, p - 50_000, 1},
		{"bridge", p - 5_000, p - 5_000, 1},
	} {
		id, v := row(r.key, r.start, r.end, r.count)
		rows[id] = v
	}
	late = []string{
		fmt.Sprintf("stale@%d", p-60_001),
		fmt.Sprintf("closer@%d", p-25_000),
		fmt.Sprintf("bridge@%d", p-25_000),
	}
	sort.Strings(late)
	return rows, late
}

// checkSessionLateness compares CLICK_USER_SESSIONS with the hand-computed outcome of the
// lateness case, for the users of that case only (the rest is the reference's job).
func checkSessionLateness(t *testing.T, js jetstream.JetStream, got map[string]reference.Row, what string) {
	t.Helper()
	users := map[string]bool{}
	for _, e := range sessionLatenessLog() {
		users[e.user] = true
	}
	wantRows, wantLate := sessionLatenessWant()
	for id, r := range got {
		if !users[r.Key] {
			continue
		}
		if w, ok := wantRows[id]; !ok {
			t.Errorf("%s: CLICK_USER_SESSIONS has row %s %+v, not in the hand-computed outcome", what, id, r)
		} else if r.End != w.End || r.Count != w.Count {
			t.Errorf("%s: CLICK_USER_SESSIONS %s: end %d count %d, want end %d count %d", what, id, r.End, r.Count, w.End, w.Count)
		}
	}
	for id := range wantRows {
		if _, ok := got[id]; !ok {
			t.Errorf("%s: CLICK_USER_SESSIONS lacks row %s", what, id)
		}
	}
	if js == nil {
		return
	}
	var late []string
	for _, m := range streamMsgs(t, js, topology.StreamLateEvents, topology.LatePrefix+"CLICK_USER_SESSIONS", lateCount(t, js, "CLICK_USER_SESSIONS")) {
		var body struct{ USERNAME string }
		_ = json.Unmarshal(m.Data(), &body)
		if users[body.USERNAME] {
			late = append(late, body.USERNAME+"@"+m.Headers().Get("Event-Time"))
		}
	}
	sort.Strings(late)
	if fmt.Sprint(late) != fmt.Sprint(wantLate) {
		t.Errorf("%s: late events of the session case %v, want %v", what, late, wantLate)
	}
}

// TestSessionLatenessReference: the reference computes the hand-computed outcome, so that the
// golden comparison checks the windower against the rule and not just against a loop.
func TestSessionLatenessReference(t *testing.T) {
	var evs []reference.Event
	for _, e := range sessionLatenessLog() {
		evs = append(evs, reference.Event{TS: e.ts, Key: e.user})
	}
	res := reference.Compute(reference.Spec{Kind: "session", Gap: 30_000, Grace: 30_000, HavingAbove: -1}, evs)
	checkSessionLateness(t, nil, res.Rows, "reference")
	if _, late := sessionLatenessWant(); res.Late != len(late) {
		t.Errorf("reference: %d late, want %d", res.Late, len(late))
	}
}

// TestSessionClosedStaysFinal: once a session's final row is out and the session left memory,
// an event within gap of it is still late, even one Kafka Streams would merge (merged end >=
// stream time - gap - grace); an event just beyond the gap starts a new session.
func TestSessionClosedStaysFinal(t *testing.T) {
	env := natstest.Start(t)
	stop := startWindower(t, env, testConfig(), nil)
	defer func() { _ = stop() }()
	seq := 0
	publish := func(user string, ts int64) {
		t.Helper()
		seq++
		m := nats.NewMsg(topology.StreamUserClickstream)
		m.Header.Set("Event-Time", strconv.FormatInt(ts, 10))
		m.Header.Set(jetstream.MsgIDHeader, "s-"+strconv.Itoa(seq))
		m.Data = []byte(`{"USERNAME":"` + user + `","IP":"1.2.3.4","CITY":"London"}`)
		if _, err := env.JS.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	final := topology.FinalPrefix + "CLICK_USER_SESSIONS"
	publish("gone", t0)
	publish("gone2", t0)
	// Stream time t0+60,001, closeTime t0+1: the gone session closes, in the batch that applies
	// tick, so the flush that acks tick comes after it: the session has left memory (and,
	// without the closed end, so would the group).
	publish("tick", t0+60_001)
	waitSeq(t, env.JS, topology.StreamUserClickstream, uint64(seq))
	var closed []string
	for _, m := range streamMsgsWithin(t, env.JS, topology.StreamWindowsFinal, final, 2, 30*time.Second) {
		closed = append(closed, m.Headers().Get(events.HeaderWindowKey))
	}
	sort.Strings(closed)
	if want := []string{windower.RowKey("gone", t0), windower.RowKey("gone2", t0)}; !reflect.DeepEqual(closed, want) {
		t.Fatalf("final rows %v, want %v", closed, want)
	}
	publish("gone", t0+25_000) // within gap of the closed session, >= closeTime: late
	publish("gone", t0+30_000) // exactly gap after its end (<=): late
	publish("gone", t0+30_001) // beyond the gap: a new session
	// Stream time t0+90,000 = gone2's end + 2 gap + grace: the last at which an event can be
	// within gap of it and not before closeTime, so its group (no open session) must still
	// remember it; at t0+90,001 it may forget.
	publish("tick", t0+90_000)
	waitSeq(t, env.JS, topology.StreamUserClickstream, uint64(seq))
	publish("gone2", t0+30_000) // == closeTime and == end + gap: late
	waitSeq(t, env.JS, topology.StreamUserClickstream, uint64(seq))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	tc := tableCases()[4]
	if tc.name != "CLICK_USER_SESSIONS" {
		t.Fatalf("table case 4 is %s", tc.name)
	}
	rows := tc.actual(t, env.JS)
	want := map[string]reference.Row{
		reference.ID("gone", t0):        {Key: "gone", Start: t0, End: t0, Count: 1},
		reference.ID("gone", t0+30_001): {Key: "gone", Start: t0 + 30_001, End: t0 + 30_001, Count: 1},
		reference.ID("gone2", t0):       {Key: "gone2", Start: t0, End: t0, Count: 1},
		reference.ID("tick", t0+60_001): {Key: "tick", Start: t0 + 60_001, End: t0 + 90_000, Count: 2},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows %v, want %v", rows, want)
	}
	if n := lateCount(t, env.JS, "CLICK_USER_SESSIONS"); n != 3 {
		t.Errorf("%d late events, want 3", n)
	}
}

// waitSeq waits until the windower has acked stream up to seq.
func waitSeq(t *testing.T, js jetstream.JetStream, stream string, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := js.Consumer(context.Background(), stream, "windower-"+stream)
		if err == nil {
			if info, err := c.Info(context.Background()); err == nil && info.AckFloor.Stream >= seq {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the windower did not ack %s up to %d in time", stream, seq)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

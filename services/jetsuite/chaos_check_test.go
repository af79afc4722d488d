package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/services/windower/reference"
	"github.com/jetsuite/jetsuite/shared/pipe"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// chaosCheck holds what the end state must be, derived from the plan (never from the outputs).
type chaosCheck struct {
	t     *testing.T
	js    jetstream.JetStream
	plan  *chaosPlan
	slack *chaosSlack
	fuse  bool // the services run the fused plan
	parts int  // partitions of every aggregation
	split bool // the windower's reading is split (--repartition)

	byID                                     map[string]chaosInput // first publication of each id
	clickIDs, ratingIDs                      int                   // distinct ids published per source
	validClicks, joined, unhappy, live, test int
	garbageClicks, garbageRatings            int
}

func newChaosCheck(t *testing.T, js jetstream.JetStream, plan *chaosPlan, slack *chaosSlack, cfg chaosConfig) *chaosCheck {
	c := &chaosCheck{t: t, js: js, plan: plan, slack: slack, fuse: cfg.fuse, parts: cfg.partitions, split: cfg.repartition, byID: map[string]chaosInput{}}
	for _, in := range plan.inputs {
		if _, ok := c.byID[in.id]; ok {
			continue
		}
		c.byID[in.id] = in
		switch {
		case in.subject == topology.SubjectClickstream:
			c.clickIDs++
			if in.reason != "" {
				c.garbageClicks++
			} else {
				c.validClicks++
			}
		case in.reason != "":
			c.ratingIDs++
			c.garbageRatings++
		default:
			c.ratingIDs++
			r := in.rating
			if r.tst {
				c.test++
			} else {
				c.live++
			}
			if r.joined {
				c.joined++
			}
			if r.unhappy {
				c.unhappy++
			}
		}
	}
	return c
}

// consumersExpected are the durable consumers the running services must have, by stream.
func (c *chaosCheck) consumersExpected() map[string][]string {
	w := func(stream string) []string { return windowerDurables(stream, c.parts) }
	if c.fuse {
		out := map[string][]string{
			topology.StreamClickstream:              w(topology.StreamClickstream),
			topology.StreamClickstreamUsers:         {"enricher-web-users"},
			topology.StreamClickstreamCodes:         {"enricher-clickstream-codes"},
			topology.StreamRatings:                  w(topology.StreamRatings),
			topology.StreamUnhappyPlatinumCustomers: {"alerting-slack"},
			topology.StreamDebezium:                 {"cdc"},
		}
		if c.split && c.parts > 1 {
			// The router reads the source; the partitions read its shuffle stream.
			for _, s := range []string{topology.StreamClickstream, topology.StreamRatings} {
				out[s] = []string{"windower-" + s + "-shuffle"}
				out[topology.ShuffleStream(s)] = w(s)
			}
		}
		return out
	}
	return map[string][]string{
		topology.StreamClickstream:              append([]string{"enricher-clickstream"}, w(topology.StreamClickstream)...),
		topology.StreamClickstreamUsers:         {"enricher-web-users"},
		topology.StreamClickstreamCodes:         {"enricher-clickstream-codes"},
		topology.StreamUserClickstream:          w(topology.StreamUserClickstream),
		topology.StreamEnrichedErrorCodes:       w(topology.StreamEnrichedErrorCodes),
		topology.StreamRatings:                  {"enricher-ratings"},
		topology.StreamRatingsWithCustomerData:  append([]string{"enricher-ratings-with-customer-data"}, w(topology.StreamRatingsWithCustomerData)...),
		topology.StreamUnhappyPlatinumCustomers: {"alerting-slack"},
		topology.StreamDebezium:                 {"cdc"},
	}
}

// windowerDurables are the windower's consumers of a source that must exist: partitioned,
// each instance reads its partitions with one consumer named after the lowest
// ("windower-<SOURCE>-p<n>"), so only p0's is certain.
func windowerDurables(stream string, parts int) []string {
	if parts <= 1 {
		return []string{"windower-" + stream}
	}
	return []string{"windower-" + stream + "-p0"}
}

// waitWindowerDone waits until the windower's task on a source (or a table's own task,
// "<SOURCE>-<TABLE>") has applied every input up to seq: its consumer's ack floor, or
// partitioned, every partition's progress record.
func waitWindowerDone(t testing.TB, js jetstream.JetStream, stream, task string, parts int, seq uint64) {
	t.Helper()
	if parts <= 1 {
		waitAckFloor(t, js, stream, "windower-"+task, seq)
		return
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		least, ok := windowerProgress(js, task, parts)
		if ok && least >= seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("windower task %s: partitions applied up to %d (all present: %v), want %d", task, least, ok, seq)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// windowerProgress is the least input sequence the partitions of a windower task have applied,
// from their progress records (ok false while one has none).
func windowerProgress(js jetstream.JetStream, task string, parts int) (least uint64, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, topology.BucketWindowerState)
	if err != nil {
		return 0, false
	}
	for p := range parts {
		e, err := kv.Get(ctx, "_progress."+task+".p"+strconv.Itoa(p))
		if err != nil {
			return 0, false
		}
		var rec struct {
			Seq uint64 `json:"seq"`
		}
		if json.Unmarshal(e.Value(), &rec) != nil {
			return 0, false
		}
		if p == 0 || rec.Seq < least {
			least = rec.Seq
		}
	}
	return least, true
}

// garbageReaders are the services that read (and dead-letter) garbage clicks and ratings.
func (c *chaosCheck) garbageReaders() (clicks, ratings []string) {
	if c.fuse {
		return []string{"windower"}, []string{"windower"}
	}
	return []string{"enricher", "windower"}, []string{"enricher"}
}

func (c *chaosCheck) deadLettersExpected() int {
	clicks, ratings := c.garbageReaders()
	return len(clicks)*c.garbageClicks + len(ratings)*c.garbageRatings
}

// unsettled lists what is not yet at its end state: outputs short of their count, consumers
// with messages pending (delivered and unacked, or not yet delivered).
func (c *chaosCheck) unsettled(ctx context.Context) []string {
	var out []string
	counts := []struct {
		stream string
		want   int
	}{
		{topology.StreamUserClickstream, c.validClicks},
		{topology.StreamEnrichedErrorCodes, c.validClicks},
		{topology.StreamRatingsLive, c.live},
		{topology.StreamRatingsTest, c.test},
		{topology.StreamRatingsWithCustomerData, c.joined},
		{topology.StreamUnhappyPlatinumCustomers, c.unhappy},
		{topology.StreamDeadLetter, c.deadLettersExpected()},
	}
	for _, x := range counts {
		s, err := c.js.Stream(ctx, x.stream)
		if err != nil {
			return []string{fmt.Sprintf("stream %s: %v", x.stream, err)}
		}
		info, err := s.Info(ctx)
		if err != nil {
			return []string{fmt.Sprintf("stream %s: %v", x.stream, err)}
		}
		if int(info.State.Msgs) < x.want {
			out = append(out, fmt.Sprintf("%s holds %d of %d messages", x.stream, info.State.Msgs, x.want))
		}
	}
	if n := c.slack.count(); n < c.unhappy {
		out = append(out, fmt.Sprintf("Slack got %d of %d messages", n, c.unhappy))
	}
	var streams []string
	expected := c.consumersExpected()
	for s := range expected {
		streams = append(streams, s)
	}
	sort.Strings(streams)
	states, err := consumerStates(ctx, c.js, streams)
	if err != nil {
		return append(out, err.Error())
	}
	have := map[string]bool{}
	for _, st := range states {
		have[st.stream+"/"+st.name] = true
		if st.ackPending > 0 || st.pending > 0 {
			out = append(out, "consumer "+st.String())
		}
	}
	for _, s := range streams {
		for _, name := range expected[s] {
			if !have[s+"/"+name] {
				out = append(out, fmt.Sprintf("consumer %s/%s does not exist", s, name))
			}
		}
	}
	return out
}

func waitSettled(ctx context.Context, c *chaosCheck, m *chaosMonkey, monkeyDone <-chan struct{}, deadline time.Time) (bool, []string) {
	var last []string
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = c.unsettled(qctx)
		cancel()
		select {
		case <-monkeyDone:
		default:
			last = append(last, "kill plan incomplete: "+m.progressReport())
		}
		if len(last) == 0 {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, last
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// all runs every end-state check.
func (c *chaosCheck) all() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	clickSeqs, clickGarbage := c.source(ctx, topology.StreamClickstream, c.clickIDs)
	ratingSeqs, ratingGarbage := c.source(ctx, topology.StreamRatings, c.ratingIDs)

	// Derived streams: each input once, in input order.
	var valid []uint64
	for _, s := range clickSeqs {
		valid = append(valid, s.seq)
	}
	for _, name := range []string{topology.StreamUserClickstream, topology.StreamEnrichedErrorCodes} {
		c.derived(ctx, name, topology.StreamClickstream, valid)
	}
	var live, test, joined []uint64
	var unhappy []uint64
	for _, s := range ratingSeqs {
		r := s.in.rating
		if r.tst {
			test = append(test, s.seq)
		} else {
			live = append(live, s.seq)
		}
		if r.joined {
			joined = append(joined, s.seq)
		}
		if r.unhappy {
			unhappy = append(unhappy, uint64(r.id))
		}
	}
	c.derived(ctx, topology.StreamRatingsLive, topology.StreamRatings, live)
	c.derived(ctx, topology.StreamRatingsTest, topology.StreamRatings, test)
	c.derived(ctx, topology.StreamRatingsWithCustomerData, topology.StreamRatings, joined)
	c.unhappyStream(ctx, unhappy)
	c.slackMessages(unhappy)
	c.deadLetters(ctx, clickGarbage, ratingGarbage)

	// Tables: the reference over the valid inputs in source-stream order.
	usersByID := map[int]*goldenUser{}
	for i := range c.plan.users {
		usersByID[c.plan.users[i].id] = &c.plan.users[i]
	}
	for _, tab := range goldenTables() {
		var evs []reference.Event
		for _, s := range clickSeqs {
			if e, ok := tab.event(*s.in.click, usersByID[s.in.click.userid]); ok {
				evs = append(evs, e)
			}
		}
		c.table(ctx, tab.name, reference.Compute(tab.spec, evs), tab.keyCols, tab.countCol, "")
	}
	var evs []reference.Event
	for _, s := range ratingSeqs {
		if r := s.in.rating; r.joined {
			evs = append(evs, reference.Event{TS: r.ts, Key: r.fullName, Null: r.fullName == "", Stars: int32(r.stars)})
		}
	}
	spec := reference.Spec{Kind: "tumbling", Size: 15 * 60_000, Grace: 30_000, HavingAbove: -1}
	c.table(ctx, topology.TableRatingsPerCustomerPer15Minute, reference.Compute(spec, evs), []string{"FULL_NAME"}, "RATINGS_COUNT", "RATINGS")
}

type seqInput struct {
	seq uint64
	in  chaosInput
}

// source reads a source stream: each id published must be stored exactly once (duplicates
// de-duplicated, also across the NATS restart). It returns the valid inputs in stream order
// and the garbage by sequence.
func (c *chaosCheck) source(ctx context.Context, stream string, ids int) (valid []seqInput, garbage map[uint64]chaosInput) {
	t := c.t
	msgs, err := readAll(ctx, c.js, stream)
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	garbage = map[uint64]chaosInput{}
	seen := map[string]int{}
	var twice []string
	for _, m := range msgs {
		md, _ := m.Metadata()
		id := m.Headers().Get(jetstream.MsgIDHeader)
		in, ok := c.byID[id]
		if !ok {
			t.Errorf("%s seq %d: unknown Nats-Msg-Id %q", stream, md.Sequence.Stream, id)
			continue
		}
		if seen[id]++; seen[id] == 2 {
			twice = append(twice, id)
		}
		if seen[id] > 1 {
			continue
		}
		if in.reason != "" {
			garbage[md.Sequence.Stream] = in
		} else {
			valid = append(valid, seqInput{md.Sequence.Stream, in})
		}
	}
	if len(msgs) != ids || len(twice) > 0 {
		t.Errorf("%s holds %d messages, want %d (one per Nats-Msg-Id); stored twice: %v", stream, len(msgs), ids, head(twice, 5))
	}
	return valid, garbage
}

// derived checks that an output stream holds one message per expected input, in input order,
// by the source sequence in its Nats-Msg-Id.
func (c *chaosCheck) derived(ctx context.Context, name, source string, want []uint64) {
	msgs, err := readAll(ctx, c.js, name)
	if err != nil {
		c.t.Errorf("read %s: %v", name, err)
		return
	}
	var got []uint64
	for _, m := range msgs {
		id := m.Headers().Get(jetstream.MsgIDHeader)
		seq, ok := sourceSeq(id, source)
		if !ok {
			md, _ := m.Metadata()
			c.t.Errorf("%s seq %d: Nats-Msg-Id %q names no %s input", name, md.Sequence.Stream, id, source)
			continue
		}
		got = append(got, seq)
	}
	label := func(v uint64) string { return source + " seq " + strconv.FormatUint(v, 10) }
	for _, p := range compareSequence(name, got, want, label) {
		c.t.Error(p)
	}
}

func ratingLabel(v uint64) string { return "rating " + strconv.FormatUint(v, 10) }

// unhappyStream checks UNHAPPY_PLATINUM_CUSTOMERS by the RATING_ID of its rows.
func (c *chaosCheck) unhappyStream(ctx context.Context, want []uint64) {
	msgs, err := readAll(ctx, c.js, topology.StreamUnhappyPlatinumCustomers)
	if err != nil {
		c.t.Errorf("read %s: %v", topology.StreamUnhappyPlatinumCustomers, err)
		return
	}
	var got []uint64
	for _, m := range msgs {
		var row struct {
			RatingID uint64 `json:"RATING_ID"`
		}
		if err := json.Unmarshal(m.Data(), &row); err != nil {
			c.t.Errorf("%s: %v: %s", topology.StreamUnhappyPlatinumCustomers, err, m.Data())
			continue
		}
		got = append(got, row.RatingID)
	}
	for _, p := range compareSequence(topology.StreamUnhappyPlatinumCustomers, got, want, ratingLabel) {
		c.t.Error(p)
	}
}

// slackMessages: exactly one message per unhappy rating (no digests: the alerter is unpaced),
// in rating order.
func (c *chaosCheck) slackMessages(want []uint64) {
	var got []uint64
	multi := 0
	for _, p := range c.slack.snapshot() {
		if len(p.ids) != 1 {
			multi++
		}
		for _, id := range p.ids {
			n, err := strconv.ParseUint(strings.TrimPrefix(id, "rating."), 10, 64)
			if err != nil || !strings.HasPrefix(id, "rating.") {
				c.t.Errorf("Slack message with alert id %q", id)
				continue
			}
			got = append(got, n)
		}
	}
	if multi > 0 {
		c.t.Errorf("Slack: %d messages did not carry exactly one alert", multi)
	}
	for _, p := range compareSequence("Slack messages", got, want, ratingLabel) {
		c.t.Error(p)
	}
}

// deadLetters: every garbage input once in DEAD_LETTER per service that reads its stream (the
// enricher, and for clicks the windower too), with its reason; nothing else.
func (c *chaosCheck) deadLetters(ctx context.Context, clicks, ratings map[uint64]chaosInput) {
	msgs, err := readAll(ctx, c.js, topology.StreamDeadLetter)
	if err != nil {
		c.t.Errorf("read %s: %v", topology.StreamDeadLetter, err)
		return
	}
	type key struct {
		service, stream string
		seq             uint64
	}
	want := map[key]string{}
	clickReaders, ratingReaders := c.garbageReaders()
	for seq, in := range clicks {
		for _, svc := range clickReaders {
			want[key{svc, topology.StreamClickstream, seq}] = in.reason
		}
	}
	for seq, in := range ratings {
		for _, svc := range ratingReaders {
			want[key{svc, topology.StreamRatings, seq}] = in.reason
		}
	}
	got := map[key][]string{}
	for _, m := range msgs {
		h := m.Headers()
		seq, _ := strconv.ParseUint(h.Get(pipe.HeaderDLQSourceSeq), 10, 64)
		k := key{h.Get(pipe.HeaderDLQService), h.Get(pipe.HeaderDLQSourceStream), seq}
		got[k] = append(got[k], h.Get(pipe.HeaderDLQReason))
	}
	var missing, wrong, extra []string
	for k, reason := range want {
		switch g := got[k]; {
		case len(g) == 0:
			missing = append(missing, fmt.Sprintf("%s %s seq %d (%s)", k.service, k.stream, k.seq, reason))
		case len(g) > 1 || g[0] != reason:
			wrong = append(wrong, fmt.Sprintf("%s %s seq %d: reasons %v, want [%s]", k.service, k.stream, k.seq, g, reason))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, fmt.Sprintf("%s %s seq %d %v", k.service, k.stream, k.seq, g))
		}
	}
	sort.Strings(missing)
	sort.Strings(wrong)
	sort.Strings(extra)
	if len(missing)+len(wrong)+len(extra) > 0 {
		c.t.Errorf("DEAD_LETTER: %d messages, want %d: %d missing %v, %d with a wrong reason or twice %v, %d unexpected %v",
			len(msgs), len(want), len(missing), head(missing, 5), len(wrong), head(wrong, 5), len(extra), head(extra, 5))
	}
}

// table compares every row of a windowed table with the reference.
func (c *chaosCheck) table(ctx context.Context, bucket string, want reference.Result, keyCols []string, countCol, listCol string) {
	t := c.t
	if len(want.Rows) == 0 {
		t.Errorf("%s: the inputs give the reference no rows (the test's log is wrong)", bucket)
		return
	}
	var w jetstream.KeyWatcher
	for {
		// Tried again while ctx lasts: on a cluster just after a node restart a request may
		// find no responder for a moment.
		kv, err := c.js.KeyValue(ctx, bucket)
		if err == nil {
			w, err = kv.WatchAll(ctx, jetstream.IgnoreDeletes())
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Errorf("%s: %v", bucket, err)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	defer func() { _ = w.Stop() }()
	got := map[string]string{}
	for e := range w.Updates() {
		if e == nil {
			break
		}
		var row map[string]any
		if err := json.Unmarshal(e.Value(), &row); err != nil {
			t.Errorf("%s %s: %v", bucket, e.Key(), err)
			continue
		}
		parts := make([]string, len(keyCols))
		for i, col := range keyCols {
			parts[i] = fmt.Sprint(row[col])
		}
		start, _ := row["WINDOW_START"].(float64)
		end, _ := row["WINDOW_END"].(float64)
		count, _ := row[countCol].(float64)
		v := fmt.Sprintf("end %d count %d", int64(end), int64(count))
		if listCol != "" {
			v += fmt.Sprintf(" list %v", row[listCol])
		}
		got[reference.ID(strings.Join(parts, "|"), int64(start))] = v
	}
	var diffs []string
	for id, r := range want.Rows {
		v := fmt.Sprintf("end %d count %d", r.End, r.Count)
		if listCol != "" {
			l := make([]any, len(r.List))
			for i, x := range r.List {
				l[i] = float64(x)
			}
			v += fmt.Sprintf(" list %v", l)
		}
		if g, ok := got[id]; !ok {
			diffs = append(diffs, "missing "+id+" ("+v+")")
		} else if g != v {
			diffs = append(diffs, fmt.Sprintf("%s: %s, want %s", id, g, v))
		}
	}
	for id, g := range got {
		if _, ok := want.Rows[id]; !ok {
			diffs = append(diffs, "extra "+id+" ("+g+")")
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("%s: %d rows expected, %d found, %d rows differ: %v", bucket, len(want.Rows), len(got), len(diffs), head(diffs, 4))
		return
	}
	t.Logf("%s: all %d rows equal the reference (%d late, %d NULL keys)", bucket, len(want.Rows), want.Late, want.Null)
}

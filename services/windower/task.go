package windower

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/flow"
	"github.com/jetsuite/jetsuite/shared/kvx"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/pipe"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// Headers on late-event messages.
const (
	HeaderLateTable  = "Jetsuite-Late-Table"
	HeaderLateReason = "Jetsuite-Late-Reason"
)

// tableState is one table's state in memory: its stream time and its open windows per group.
type tableState struct {
	spec                Table
	grace, size, adv    int64 // ms
	gap                 int64 // ms
	st                  int64 // stream time: the largest event time seen (plus idle advance)
	hasST               bool
	lastArrival         time.Time // wall clock of the last event that reached this table
	lastAdvance         time.Time // wall clock of the last idle advance
	groups              map[string]*group
	nextClose           int64 // smallest close time among open windows
	stateKeyPrefix      string
	finalSubject        string
	lateSubject         string
	listColumn, countCl string
	nullKeys, late      prometheus.Counter
}

func newTableState(t Table, grace time.Duration) *tableState {
	return &tableState{
		spec: t, grace: grace.Milliseconds(),
		size: t.Window.Size.Milliseconds(), adv: t.Window.Advance.Milliseconds(), gap: t.Window.Gap.Milliseconds(),
		groups: map[string]*group{}, nextClose: math.MaxInt64,
		stateKeyPrefix: t.Name + ".",
		finalSubject:   topology.FinalPrefix + t.Name,
		lateSubject:    topology.LatePrefix + t.Name,
		listColumn:     t.ListColumn, countCl: t.CountColumn,
		nullKeys: obs.Dropped.WithLabelValues(t.Name, "null_key"),
		late:     obs.Late.WithLabelValues(t.Name),
	}
}

// closeAt is the stream time at which w closes: time windows at end + grace; sessions once
// their end is older than sessionCloseTime (end < stream time - gap - grace, Kafka Streams'
// strict rule), i.e. at end + gap + grace + 1. applySession judges an event against the same
// bound, so an event never counts into a session at or after this stream time.
func (t *tableState) closeAt(w *win) int64 {
	if t.spec.Window.Kind == Session {
		return w.End + t.gap + t.grace + 1
	}
	return w.End + t.grace
}

// sessionCloseTime is Kafka Streams' closeTime: a session whose end is older (strictly) is
// closed.
func (t *tableState) sessionCloseTime() int64 { return t.st - t.gap - t.grace }

// forgetAt is the stream time from which a group without open sessions no longer needs to
// remember its closed end: an event within gap of it is then older than sessionCloseTime and,
// with no open session to join, late by the merged-end rule anyway.
func (t *tableState) forgetAt(g *group) int64 { return g.ClosedEnd + 2*t.gap + t.grace + 1 }

func (t *tableState) visible(w *win) bool { return w.Count > t.spec.HavingCountAbove }

// row renders the table row of a window: key columns, EVENT_TS, the aggregates and the window
// bounds, with ksqlDB's upper-case column names.
func (t *tableState) row(g *group, w *win) []byte {
	b := make([]byte, 0, 160)
	b = append(b, '{')
	for _, c := range g.Cols {
		b = strconv.AppendQuote(b, c.Name)
		b = append(b, ':')
		b = append(b, c.JSON...)
		b = append(b, ',')
	}
	ts := w.Start
	if t.spec.EventTSIsEnd {
		ts = w.End
	}
	b = append(b, `"EVENT_TS":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, ',')
	b = strconv.AppendQuote(b, t.countCl)
	b = append(b, ':')
	b = strconv.AppendInt(b, w.Count, 10)
	if t.listColumn != "" {
		b = append(b, ',')
		b = strconv.AppendQuote(b, t.listColumn)
		b = append(b, ':', '[')
		for i, v := range w.List {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(v), 10)
		}
		b = append(b, ']')
	}
	b = append(b, `,"WINDOW_START":`...)
	b = strconv.AppendInt(b, w.Start, 10)
	b = append(b, `,"WINDOW_END":`...)
	b = strconv.AppendInt(b, w.End, 10)
	return append(b, '}')
}

// progress is what a task saves besides its groups: the newest input applied and each table's
// stream time at that point. It is the task's own state, written with the groups; where to
// resume reading is the runtime's checkpoint (shared/flow), which may lag it.
type progress struct {
	Seq    uint64                   `json:"seq"`
	Tables map[string]tableProgress `json:"tables"`
}

type tableProgress struct {
	StreamTime int64 `json:"st"`
	Has        bool  `json:"has"`
}

// task aggregates every table of one source stream: a shared/flow handler (the runtime owns
// the consumer, one task per source, one goroutine, no locks).
type task struct {
	source   string
	tables   []*tableState
	js       jetstream.JetStream
	state    jetstream.KeyValue
	out      *flow.Out // the current batch's outputs
	log      *slog.Logger
	cfg      *Config
	now      func() time.Time
	dirty    []dirtyGroup
	restored bool
	lastSeq  uint64 // the newest input sequence applied
	pending  int    // inputs applied since the last flush
	lastSave time.Time
	starts   []int64
	rec      Record
	crashed  func() bool // test hook: stop without a final flush
	crashMid func() bool // test hook: stop after saving groups, before the progress record
}

type dirtyGroup struct {
	t *tableState
	g *group
}

func (k *task) progressKey() string { return "_progress." + k.source }

// legacyCheckpointKey is where versions before shared/flow kept the progress record; read
// once when there is no progress record yet.
func (k *task) legacyCheckpointKey() string { return "_checkpoint." + k.source }

func (k *task) markDirty(t *tableState, g *group) {
	if !g.dirty {
		g.dirty = true
		k.dirty = append(k.dirty, dirtyGroup{t, g})
	}
}

// Start implements flow.Starter: the first time, it loads the progress record and every
// saved group of the task's tables. Inputs up to the newer of the runtime's checkpoint and the
// progress record are in the saved state (or in memory, after a resume within this run) and
// are skipped when they are delivered again.
func (k *task) Start(ctx context.Context, checkpoint uint64) error {
	if !k.restored {
		if err := k.restore(ctx); err != nil {
			return err
		}
		k.restored = true
		k.lastSave = k.now()
	}
	k.lastSeq = max(k.lastSeq, checkpoint)
	return nil
}

func (k *task) restore(ctx context.Context) error {
	var cp progress
	e, err := k.state.Get(ctx, k.progressKey())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		e, err = k.state.Get(ctx, k.legacyCheckpointKey())
	}
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return fmt.Errorf("read progress: %w", err)
	default:
		if err := json.Unmarshal(e.Value(), &cp); err != nil {
			return fmt.Errorf("decode progress: %w", err)
		}
	}
	for _, t := range k.tables {
		if p, ok := cp.Tables[t.spec.Name]; ok {
			t.st, t.hasST = p.StreamTime, p.Has
			// Idle time counts from the restart, so restored windows close even if no event
			// ever comes again.
			t.lastArrival = k.now()
		}
		err := kvx.Load(ctx, k.js, topology.BucketWindowerState, t.stateKeyPrefix+">", func(entry jetstream.KeyValueEntry) error {
			var g group
			if err := json.Unmarshal(entry.Value(), &g); err != nil {
				return fmt.Errorf("decode %s state: %w", t.spec.Name, err)
			}
			g.Key = strings.TrimPrefix(entry.Key(), t.stateKeyPrefix)
			t.groups[g.Key] = &g
			for _, win := range g.Wins {
				t.nextClose = min(t.nextClose, t.closeAt(win))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("load %s state: %w", t.spec.Name, err)
		}
	}
	k.lastSeq = cp.Seq
	return nil
}

// Handle implements flow.Handler: apply the batch, close what is due, flush when it is time.
// Until a flush, the inputs live only in memory: the batch holds them (out.Hold).
func (k *task) Handle(ctx context.Context, in []jetstream.Msg, out *flow.Out) error {
	if k.crashed != nil && k.crashed() {
		return errCrashed
	}
	k.out = out
	defer func() { k.out = nil }()
	for _, m := range in {
		if err := k.apply(m); err != nil {
			return err
		}
	}
	k.idleAdvance()
	for _, t := range k.tables {
		if err := k.closeDue(t); err != nil {
			return err
		}
	}
	if k.pending > 0 || len(k.dirty) > 0 || out.Pending() > 0 {
		if k.pending >= k.cfg.FlushMaxInputs || k.now().Sub(k.lastSave) >= k.cfg.FlushInterval {
			return k.flush(ctx)
		}
		out.Hold()
	}
	return nil
}

// Flush implements flow.Flusher: a graceful stop makes what was applied durable, so a restart
// replays nothing.
func (k *task) Flush(ctx context.Context, out *flow.Out) error {
	k.out = out
	defer func() { k.out = nil }()
	return k.flush(ctx)
}

var errCrashed = errors.New("windower crashed (test)")

func (k *task) apply(m jetstream.Msg) error {
	md, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("message metadata: %w", err)
	}
	seq := md.Sequence.Stream
	if seq <= k.lastSeq {
		return nil // a redelivery of an input already applied in memory
	}
	k.lastSeq = seq
	k.pending++
	data := m.Data()
	if len(data) > k.cfg.MaxEventBytes {
		return k.out.DeadLetter(m, fmt.Errorf("%w: %d bytes, limit %d", pipe.ErrTooLarge, len(data), k.cfg.MaxEventBytes))
	}
	k.rec = Record{}
	if err := decode(k.source, data, &k.rec); err != nil {
		return k.out.DeadLetter(m, err)
	}
	ts := events.EventTimeMillis(m)
	for _, t := range k.tables {
		if err := k.applyTo(t, m, ts, seq); err != nil {
			return err
		}
	}
	return nil
}

func (k *task) applyTo(t *tableState, m jetstream.Msg, ts int64, seq uint64) error {
	r := &k.rec
	if t.spec.Where != nil && !t.spec.Where(r) {
		return nil
	}
	cols, ok := t.spec.GroupBy(r)
	if !ok {
		t.nullKeys.Inc()
		return nil
	}
	t.lastArrival, t.lastAdvance = k.now(), time.Time{}
	if !t.hasST || ts > t.st {
		t.st, t.hasST = ts, true
	}
	key := groupKey(cols)
	g := t.groups[key]
	if g != nil && seq <= g.Seq {
		return nil // replay after a restart: the saved state already holds this input
	}
	var listVal int32
	var hasList bool
	if t.listColumn != "" {
		listVal, hasList = listValue(r)
	}
	if t.spec.Window.Kind == Session {
		return k.applySession(t, g, key, cols, m, ts, seq, listVal, hasList)
	}
	k.starts = timeWindowStarts(k.starts[:0], ts, t.size, t.adv)
	var late []int64
	applied := false
	for _, s := range k.starts {
		end := s + t.size
		if end+t.grace <= t.st {
			late = append(late, s)
			continue
		}
		if g == nil {
			g = &group{Key: key, Cols: cols}
			t.groups[key] = g
		}
		w := g.find(s)
		if w == nil {
			w = &win{Start: s, End: end}
			g.Wins = append(g.Wins, w)
			t.nextClose = min(t.nextClose, t.closeAt(w))
		}
		w.Count++
		if hasList {
			w.List = append(w.List, listVal)
		}
		w.dirty = true
		applied = true
	}
	if applied {
		g.Seq = seq
		k.markDirty(t, g)
	}
	if len(late) > 0 {
		return k.publishLate(t, m, ts, fmt.Sprintf("event time %d is past the end + grace (%d ms) of %d window(s) starting %s at stream time %d",
			ts, t.grace, len(late), joinInts(late), t.st))
	}
	return nil
}

// applySession adds an event to the session of its group key, Kafka Streams' way
// (KStreamSessionWindowAggregate), with one rule more: a closed session is final.
//
// With closeTime = stream time - gap - grace (stream time already includes ts), a session is
// closed when end < closeTime, the same bound as closeAt (closeDue may not have run yet within
// a batch: a session closed by stream time is treated as closed all the same, so the outcome
// does not depend on batch boundaries). The event is late when
//
//   - the session it would form, merged with every open session within gap of it
//     (start - gap <= ts <= end + gap), ends before closeTime: Kafka Streams' rule, or
//   - it lies within gap of a closed session (ts <= the group's latest closed end + gap): it
//     would have to merge into a session whose final row is out. This covers an event that
//     bridges a closed and an open session; it is late as a whole, and the open session is
//     left as it was.
//
// An event before every session of its key forms a session of its own unless ts < closeTime.
// Otherwise the event and the open sessions it touches merge into one.
func (k *task) applySession(t *tableState, g *group, key string, cols []Column, m jetstream.Msg, ts int64, seq uint64, listVal int32, hasList bool) error {
	closeTime := t.sessionCloseTime()
	start, end, count := ts, ts, int64(1)
	var merged []*win
	var closed bool
	var closedEnd int64
	if g != nil {
		closed, closedEnd = g.Closed, g.ClosedEnd
		for _, w := range g.Wins {
			if w.End < closeTime {
				// Closed by stream time, its final row due at the end of this batch.
				if !closed || w.End > closedEnd {
					closed, closedEnd = true, w.End
				}
				continue
			}
			if ts >= w.Start-t.gap && ts <= w.End+t.gap {
				merged = append(merged, w)
				start, end, count = min(start, w.Start), max(end, w.End), count+w.Count
			}
		}
	}
	if end < closeTime {
		return k.publishLate(t, m, ts, fmt.Sprintf("event time %d: its session would end at %d, older than stream time %d minus gap %d ms minus grace %d ms",
			ts, end, t.st, t.gap, t.grace))
	}
	if closed && ts <= closedEnd+t.gap {
		return k.publishLate(t, m, ts, fmt.Sprintf("event time %d is within gap %d ms of a closed session ending at %d (stream time %d)",
			ts, t.gap, closedEnd, t.st))
	}
	if g == nil {
		g = &group{Key: key, Cols: cols}
		t.groups[key] = g
	}
	var keep *win
	for _, w := range merged {
		if w.Start == start && keep == nil {
			keep = w
		}
	}
	var list []int32
	for _, w := range merged {
		list = append(list, w.List...)
		if w != keep {
			g.remove(w)
			// The merged-away session's row is deleted, as ksqlDB does.
			if err := k.publishKV(t.spec.Name, RowKey(key, w.Start), nil); err != nil {
				return err
			}
		}
	}
	if keep == nil {
		keep = &win{}
		g.Wins = append(g.Wins, keep)
	}
	if hasList {
		list = append(list, listVal)
	}
	keep.Start, keep.End, keep.Count, keep.List, keep.dirty = start, end, count, list, true
	t.nextClose = min(t.nextClose, t.closeAt(keep))
	g.Seq = seq
	k.markDirty(t, g)
	return nil
}

func joinInts(v []int64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatInt(x, 10)
	}
	return strings.Join(s, ",")
}

// publishLate sends a late input to late.<TABLE>: the original body and headers, plus the table
// and the reason. Its Nats-Msg-Id makes a replay publish nothing new.
func (k *task) publishLate(t *tableState, m jetstream.Msg, ts int64, reason string) error {
	t.late.Inc()
	out := nats.NewMsg(t.lateSubject)
	events.CopyHeaders(out.Header, m.Headers())
	out.Header.Set(HeaderLateTable, t.spec.Name)
	out.Header.Set(HeaderLateReason, reason)
	out.Header.Set(events.HeaderEventTime, strconv.FormatInt(ts, 10))
	out.Header.Set(events.HeaderMsgID, "late:"+t.spec.Name+":"+events.SourceID(m))
	out.Data = m.Data()
	return k.out.Publish(out)
}

// publishKV puts (or, with nil data, deletes) a KV entry with the batch's outputs.
func (k *task) publishKV(bucket, key string, data []byte) error {
	if data == nil {
		return k.out.Delete(bucket, key, "")
	}
	return k.out.Put(bucket, key, data, "")
}

// idleAdvance moves the stream time of tables whose input has been idle longer than the idle
// timeout forward with the wall clock, so that their windows close without new events. It never
// jumps: it adds only the wall time that passed since the table became idle.
func (k *task) idleAdvance() {
	if k.cfg.IdleTimeout <= 0 {
		return
	}
	now := k.now()
	for _, t := range k.tables {
		if !t.hasST || t.lastArrival.IsZero() {
			continue
		}
		idleSince := t.lastArrival.Add(k.cfg.IdleTimeout)
		if now.Before(idleSince) {
			continue
		}
		from := idleSince
		if t.lastAdvance.After(from) {
			from = t.lastAdvance
		}
		if d := now.Sub(from).Milliseconds(); d > 0 {
			t.st += d
			t.lastAdvance = from.Add(time.Duration(d) * time.Millisecond)
		}
	}
}

// closeDue closes every window whose close time the stream time has reached: its last row is
// written, its final row published to final.<TABLE> (when it satisfies HAVING), and it leaves
// memory.
func (k *task) closeDue(t *tableState) error {
	if !t.hasST || t.st < t.nextClose {
		return nil
	}
	next := int64(math.MaxInt64)
	for key, g := range t.groups {
		kept := g.Wins[:0]
		closedAny := false
		for _, w := range g.Wins {
			at := t.closeAt(w)
			if t.st < at {
				kept = append(kept, w)
				next = min(next, at)
				continue
			}
			closedAny = true
			if t.spec.Window.Kind == Session {
				g.noteClosed(w.End)
			}
			if !t.visible(w) {
				continue
			}
			row := t.row(g, w)
			if w.dirty {
				if err := k.publishKV(t.spec.Name, RowKey(key, w.Start), row); err != nil {
					return err
				}
			}
			final := nats.NewMsg(t.finalSubject)
			final.Data = row
			final.Header.Set(events.HeaderWindowKey, RowKey(key, w.Start))
			final.Header.Set(events.HeaderEventTime, strconv.FormatInt(w.End, 10))
			final.Header.Set(events.HeaderMsgID, "final:"+t.spec.Name+":"+RowKey(key, w.Start))
			if err := k.out.Publish(final); err != nil {
				return err
			}
		}
		if closedAny {
			g.Wins = kept
			k.markDirty(t, g)
		}
		if g.Closed && len(g.Wins) == 0 {
			// The closed end matters only while an event could still reach it (see forgetAt);
			// then the group may leave memory. Open sessions keep it: an event could bridge.
			if at := t.forgetAt(g); t.st >= at {
				g.Closed, g.ClosedEnd = false, 0
				k.markDirty(t, g)
			} else {
				next = min(next, at)
			}
		}
	}
	t.nextClose = next
	return nil
}

// flush makes the task's progress durable, in two phases: first the table rows (and the late,
// final and dead-letter messages already added), then the saved groups and the progress
// record; then the runtime checkpoints and acks the inputs. A crash between the phases leaves
// the saved state behind the rows, and the replay rewrites the same rows: nothing counts twice.
// Each phase is synced here, so a group is marked clean only once its state is durable.
func (k *task) flush(ctx context.Context) error {
	for _, d := range k.dirty {
		for _, w := range d.g.Wins {
			if w.dirty {
				w.dirty = false
				if d.t.visible(w) {
					if err := k.publishKV(d.t.spec.Name, RowKey(d.g.Key, w.Start), d.t.row(d.g, w)); err != nil {
						return err
					}
				}
			}
		}
	}
	if err := k.out.Sync(ctx); err != nil {
		return fmt.Errorf("flush rows: %w", err)
	}
	cp := progress{Seq: k.lastSeq, Tables: map[string]tableProgress{}}
	for _, t := range k.tables {
		cp.Tables[t.spec.Name] = tableProgress{StreamTime: t.st, Has: t.hasST}
	}
	for _, d := range k.dirty {
		data, err := json.Marshal(d.g)
		if err != nil {
			return err
		}
		if err := k.publishKV(topology.BucketWindowerState, d.t.stateKeyPrefix+d.g.Key, data); err != nil {
			return err
		}
	}
	if k.crashMid != nil && k.crashMid() {
		_ = k.out.Sync(ctx)
		return errCrashed
	}
	cpData, _ := json.Marshal(cp)
	if err := k.publishKV(topology.BucketWindowerState, k.progressKey(), cpData); err != nil {
		return err
	}
	if err := k.out.Sync(ctx); err != nil {
		return fmt.Errorf("flush state: %w", err)
	}
	for _, d := range k.dirty {
		d.g.dirty = false
		if d.g.empty() {
			delete(d.t.groups, d.g.Key) // every window closed and forgotten: the group leaves memory
		}
	}
	k.dirty = k.dirty[:0]
	k.pending = 0
	k.lastSave = k.now()
	return nil
}

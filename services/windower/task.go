package windower

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/flow"
	"github.com/jetsuite/jetsuite/shared/ksql"
	"github.com/jetsuite/jetsuite/shared/kvx"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/pipe"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/sqlrt"
	"github.com/jetsuite/jetsuite/shared/topology"
	"github.com/jetsuite/jetsuite/shared/transform"
)

// Headers on late-event messages.
const (
	HeaderLateTable  = "Jetsuite-Late-Table"
	HeaderLateReason = "Jetsuite-Late-Reason"
)

// tableState is one table's state in memory: its stream time and its open windows per group.
type tableState struct {
	spec Table
	step *plan.Step
	// The table's groups are spread over parts partitions by the hash of their key; this
	// state holds those of partition part (see owns). skipUpTo is the newest input the
	// partition's saved state holds: a partition restored further than the task's resume
	// point skips the inputs before it.
	part, parts int
	skipUpTo    uint64
	// ord is the table's place in a shuffle message's stream times (see shuffle.go): its
	// index in a router's tables; in a partition owner's, the current message's (-1: absent).
	ord int
	// countsNull: this state counts the inputs dropped for a NULL group key (one state per
	// table does: partition 0's, or the router's).
	countsNull     bool
	win            windowSpec
	grace          int64 // ms
	st             int64 // stream time: the largest event time seen (plus idle advance)
	hasST          bool
	lastArrival    time.Time // wall clock of the last event that reached this table
	lastAdvance    time.Time // wall clock of the last idle advance
	groups         map[string]*group
	nextClose      int64 // smallest close time among open windows
	stateKeyPrefix string
	finalSubject   string
	lateSubject    string
	nullKeys, late prometheus.Counter

	// Per-event scratch: the group values, each aggregate's arguments, the result row and the
	// output row.
	vals   []sqlrt.Value
	args   [][]sqlrt.Value
	res    sqlrt.Row
	out    sqlrt.Row
	keyBuf []byte

	// Over a TABLE: what each input row added (by input key), and the keys whose entry must be
	// saved (or deleted) at the next flush.
	prevs     map[string]*prevRow
	prevDirty map[string]bool
}

func newTableState(t Table, grace time.Duration) *tableState {
	st := t.Step
	ts := &tableState{
		spec: t, step: st, win: specOf(st.Window), grace: grace.Milliseconds(),
		groups: map[string]*group{}, nextClose: math.MaxInt64,
		stateKeyPrefix: t.Name + ".",
		countsNull:     true,
		finalSubject:   topology.FinalPrefix + t.Name,
		lateSubject:    topology.LatePrefix + t.Name,
		nullKeys:       obs.Dropped.WithLabelValues(t.Name, "null_key"),
		late:           obs.Late.WithLabelValues(t.Name),
		vals:           make([]sqlrt.Value, len(st.GroupBy)),
		args:           make([][]sqlrt.Value, len(st.Aggregates)),
		res:            make(sqlrt.Row, len(st.Result)),
		out:            make(sqlrt.Row, len(st.Columns)),
		prevs:          map[string]*prevRow{},
		prevDirty:      map[string]bool{},
	}
	for i, a := range st.Aggregates {
		ts.args[i] = make([]sqlrt.Value, len(a.Args))
	}
	return ts
}

// owns reports whether the group with this key belongs to the state's partition: FNV-1a of
// the key bytes, modulo the partitions (JetStream's subject partitioning uses the same hash).
// Every partition sees every input (stream time advances alike in all of them, so each
// decides lateness exactly as one instance would); only the owner of a group folds the input
// into it, writes its rows and publishes its late and final messages.
func (t *tableState) owns(key []byte) bool {
	return t.parts <= 1 || partitionOf(key, t.parts) == t.part
}

// partitionOf is the partition of a group key among parts: FNV-1a of its bytes, modulo parts.
func partitionOf(key []byte, parts int) int {
	if parts <= 1 {
		return 0
	}
	h := uint32(2166136261)
	for _, c := range key {
		h ^= uint32(c)
		h *= 16777619
	}
	return int(h % uint32(parts))
}

// newAccs returns fresh accumulators, one per aggregate.
func (t *tableState) newAccs() []sqlrt.Accumulator {
	accs := make([]sqlrt.Accumulator, len(t.step.Aggregates))
	for i, a := range t.step.Aggregates {
		accs[i] = a.New()
	}
	return accs
}

// add folds the current event's arguments (t.args) into accs.
func (t *tableState) add(accs []sqlrt.Accumulator) {
	for i, a := range accs {
		a.Add(t.args[i])
	}
}

func (t *tableState) session() bool { return t.win.kind == ksql.Session }

// closeAt is the stream time at which w closes: time windows at end + grace; sessions once
// their end is older than sessionCloseTime (end < stream time - gap - grace, Kafka Streams'
// strict rule), i.e. at end + gap + grace + 1. applySession judges an event against the same
// bound, so an event never counts into a session at or after this stream time. Rows of a
// table without WINDOW never close.
func (t *tableState) closeAt(w *win) int64 {
	switch {
	case t.win.kind == "":
		return math.MaxInt64
	case t.session():
		return w.End + t.win.gap + t.grace + 1
	}
	return w.End + t.grace
}

// sessionCloseTime is Kafka Streams' closeTime: a session whose end is older (strictly) is
// closed.
func (t *tableState) sessionCloseTime() int64 { return t.st - t.win.gap - t.grace }

// forgetAt is the stream time from which a group without open sessions no longer needs to
// remember its closed end: an event within gap of it is then older than sessionCloseTime and,
// with no open session to join, late by the merged-end rule anyway.
func (t *tableState) forgetAt(g *group) int64 { return g.ClosedEnd + 2*t.win.gap + t.grace + 1 }

// result fills t.res, the row the select list and HAVING read: the GROUP BY values, the
// aggregates, then WINDOWSTART and WINDOWEND.
func (t *tableState) result(g *group, w *win) sqlrt.Row {
	n := copy(t.res, g.vals)
	for _, a := range w.accs {
		t.res[n] = a.Result()
		n++
	}
	if t.win.kind != "" {
		t.res[n], t.res[n+1] = sqlrt.BigIntValue(w.Start), sqlrt.BigIntValue(w.End)
	}
	return t.res
}

// visible reports whether the window's row satisfies HAVING (t.res must hold its result).
func (t *tableState) visible(res sqlrt.Row) bool {
	if t.step.Having == nil {
		return true
	}
	v := t.step.Having.Eval(res)
	return v.Kind == sqlrt.Boolean && v.Bool()
}

// row renders the table row of a window: the select list's columns in order (ksqlDB's names),
// then WINDOW_START and WINDOW_END (windowed tables), from the result row.
func (t *tableState) row(res sqlrt.Row, w *win) []byte {
	for i, e := range t.step.Columns {
		t.out[i] = e.Eval(res)
	}
	b := sqlrt.AppendObject(make([]byte, 0, 160), t.step.Output.Columns, t.out)
	if t.win.kind == "" {
		return b
	}
	b = b[:len(b)-1]
	if len(t.out) > 0 {
		b = append(b, ',')
	}
	b = append(b, `"WINDOW_START":`...)
	b = strconv.AppendInt(b, w.Start, 10)
	b = append(b, `,"WINDOW_END":`...)
	b = strconv.AppendInt(b, w.End, 10)
	return append(b, '}')
}

// rowKey is the KV key of a window's row: the group key, and the window start for windowed
// tables.
func (t *tableState) rowKey(group string, w *win) string {
	if t.win.kind == "" {
		return group
	}
	return RowKey(group, w.Start)
}

// writeRow puts the window's row when it satisfies HAVING, and deletes a row shown before
// that no longer does (ksqlDB's tombstone). It reports whether the row is in the table.
func (k *task) writeRow(t *tableState, g *group, w *win) (bool, error) {
	res := t.result(g, w)
	if !t.visible(res) {
		if w.Shown {
			w.Shown = false
			return false, k.publishKV(t.spec.Name, t.rowKey(g.Key, w), nil)
		}
		return false, nil
	}
	w.Shown = true
	return true, k.publishKV(t.spec.Name, t.rowKey(g.Key, w), t.row(res, w))
}

// progress is what a task saves besides its groups: the newest input applied and each table's
// stream time at that point. It is the task's own state, written with the groups; where to
// resume reading is the runtime's checkpoint (shared/flow), which may lag it.
type progress struct {
	Seq uint64 `json:"seq"`
	// Parts is the task's number of partitions when it has several.
	Parts  int                      `json:"parts,omitempty"`
	Tables map[string]tableProgress `json:"tables"`
	// Shuffle is the newest message of the shuffle stream applied (the repartition step,
	// see shuffle.go): where a partition owner resumes reading it.
	Shuffle uint64 `json:"shuffle,omitempty"`
}

func decodeProgress(b []byte) (progress, error) {
	var cp progress
	if err := json.Unmarshal(b, &cp); err != nil {
		return cp, fmt.Errorf("decode progress: %w", err)
	}
	return cp, nil
}

// mode is what a task does with its source (see shuffle.go).
type mode int

const (
	// modeShared: the task reads the source and folds in its partitions' rows.
	modeShared mode = iota
	// modeRoute: the task is a router: it reads the source and publishes the shuffle stream.
	modeRoute
	// modeWork: the task reads the shuffle stream and folds in its partitions' rows.
	modeWork
)

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
	dec      *sqlrt.Decoder // the source's columns
	row      sqlrt.Row      // the decoded input: its columns, then ROWTIME
	rowTime  int
	// Over a TABLE (source KV_<bucket>): the subject prefix before a row's key, and the
	// table's primary key column (filled from the key when the value lacks it).
	kvPrefix string
	keyAt    int
	// own is the table a task runs on its own since it was rebuilt ("" for the source's task).
	own string
	// set are the partitions the task runs (sorted), of parts (the most any of its tables
	// has; a table with fewer is in the sets of its partitions only). One instance runs the
	// partitions it owns in one task, so it reads the input once however many it owns.
	set   []int
	parts int
	// mode: shared, router or partition owner (see shuffle.go); rt is a router's message in
	// the making; a partition owner's inSet marks the partitions of set, vec holds the
	// current shuffled input's stream times and lastShuffle the newest shuffle message applied.
	mode        mode
	rt          *router
	inSet       []bool
	vec         []stVal
	lastShuffle uint64
	// in is the object whose rows the source's messages carry.
	in *plan.Object

	// Fused statements (plan.Plan.Fuse): the program that evaluates them on every source
	// message, the tables that aggregate each one's output, and the tables that read the
	// source itself. emit: the task publishes the statements' outputs (a rebuilt table's own
	// task does not: the source's task does).
	steps  []*plan.Step
	prog   *transform.Program
	fused  map[*plan.Step]*fusedOutput
	direct [][]*tableState
	emit   bool
	emitFn func(*transform.Step) error
	cur    jetstream.Msg // the input the program runs on, its sequence and event time
	curSeq uint64
	curTS  int64
	arena  []byte // the batch's output bodies (see flow.Out.Arena)
	// batchNow is the wall clock when the batch began: an input's arrival time, for the idle
	// timeout (one clock read per batch, not one per input and table).
	batchNow time.Time

	crashed  func() bool // test hook: stop without a final flush
	crashMid func() bool // test hook: stop after saving groups, before the progress record
}

// fusedOutput is one fused statement's output as the tables reading it see it: the statement's
// columns, then ROWTIME.
type fusedOutput struct {
	tables [][]*tableState // per table, its partitions in the task
	row    sqlrt.Row
	dec    *sqlrt.Decoder // a partition owner's decoder of the rows the router publishes
}

// wire compiles the task's fused statements (nil: none) and sorts its tables into those that
// read the source and those that read a statement's output.
func (k *task) wire(steps []*plan.Step, views transform.Views, emit bool) error {
	k.steps, k.emit, k.prog, k.fused, k.direct = steps, emit, nil, nil, nil
	if len(steps) == 0 {
		k.direct = byTable(k.tables)
		return nil
	}
	prog, err := transform.NewProgram(k.in, steps, views, k.log)
	if err != nil {
		return err
	}
	k.prog, k.fused = prog, map[*plan.Step]*fusedOutput{}
	byOutput := map[*plan.Object]*fusedOutput{}
	for _, st := range steps {
		f := &fusedOutput{row: make(sqlrt.Row, len(st.Output.Columns)+1), dec: sqlrt.NewDecoder(st.Output.Columns)}
		k.fused[st], byOutput[st.Output] = f, f
	}
	for _, ps := range byTable(k.tables) {
		if f := byOutput[ps[0].step.Input]; f != nil && ps[0].step.FusedFrom != nil {
			f.tables = append(f.tables, ps)
		} else {
			k.direct = append(k.direct, ps)
		}
	}
	k.emitFn = k.emitFused
	return nil
}

// byTable groups the task's table states by table: each table's partitions in the task, in
// the order the tables come.
func byTable(tables []*tableState) [][]*tableState {
	var out [][]*tableState
	at := map[string]int{}
	for _, t := range tables {
		i, ok := at[t.spec.Name]
		if !ok {
			i = len(out)
			at[t.spec.Name] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], t)
	}
	return out
}

// ordered are the streams the task publishes (its fused statements' outputs): it is their
// only writer, so shared/flow chains and resumes them.
func (k *task) ordered() []string {
	var out []string
	if k.mode == modeRoute {
		out = append(out, topology.ShuffleStream(k.source))
	}
	if !k.emit {
		return out
	}
	for _, st := range k.steps {
		out = append(out, st.Output.Stream)
	}
	return out
}

// emitFused publishes one output row of a fused statement, with the id, key and event time the
// enricher would give it, and aggregates it into the tables that read that statement.
func (k *task) emitFused(s *transform.Step) error {
	f := k.fused[s.Plan]
	start := len(k.arena)
	k.arena = sqlrt.AppendObject(k.arena, s.Plan.Output.Columns, s.Out)
	body := k.arena[start:len(k.arena):len(k.arena)]
	if k.emit {
		if err := k.out.Emit(s.Plan.Output.Subject, body, s.Key, k.cur); err != nil {
			return err
		}
	}
	if len(f.tables) == 0 {
		return nil
	}
	n := copy(f.row, s.Out)
	f.row[n] = sqlrt.BigIntValue(k.curTS)
	if k.mode == modeRoute {
		obj := slices.Index(k.steps, s.Plan) + 1
		for _, ps := range f.tables {
			k.routeTo(ps[0], f.row, obj, body, k.curTS)
		}
		return nil
	}
	for _, ps := range f.tables {
		if err := k.applyParts(ps, f.row, k.cur, body, k.curTS, k.curSeq); err != nil {
			return err
		}
	}
	return nil
}

type dirtyGroup struct {
	t *tableState
	g *group
}

// progressKeyOf is where partition p's progress record is: _progress.<name>, with ".p<p>"
// when the task's tables are partitioned.
func (k *task) progressKeyOf(p int) string { return progressKey(k.unit(p)) }

// progressKey is where the task named name keeps its progress record in WINDOWER_STATE.
func progressKey(name string) string { return "_progress." + name }

// name is the task's name: its source, or <source>-<TABLE> for a table rebuilt on its own
// (RebuildTable). It names the durable consumer (windower-<name>) and the progress record.
func (k *task) name() string {
	if k.own != "" {
		return k.source + "-" + k.own
	}
	return k.source
}

// unit names partition p of the task: its name, with ".p<p>" when the task's tables are
// partitioned. It is the lease's unit name and keys the progress record.
func (k *task) unit(p int) string {
	if k.parts > 1 {
		return k.name() + ".p" + strconv.Itoa(p)
	}
	return k.name()
}

// durable is the task's consumer name (and checkpoint key): windower-<name>, partitioned
// windower-<name>-p<n> with n the lowest partition of the set. Only the owner of partition n
// runs a set whose lowest is n, so two running tasks never share a consumer.
func (k *task) durable() string {
	if k.mode == modeRoute {
		return "windower-" + k.name() + "-shuffle"
	}
	if k.parts > 1 {
		return "windower-" + k.name() + "-p" + strconv.Itoa(k.set[0])
	}
	return "windower-" + k.name()
}

// first reports whether the task publishes what all partitions would (the fused statements'
// streams and dead letters): the one that runs partition 0, or with the reading split the
// router.
func (k *task) first() bool {
	switch k.mode {
	case modeShared:
		return len(k.set) > 0 && k.set[0] == 0
	case modeRoute:
		return true
	}
	return false // a partition owner: its router publishes them
}

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
	if k.mode == modeWork {
		k.lastShuffle = max(k.lastShuffle, checkpoint) // the checkpoint counts shuffle messages
	} else {
		k.lastSeq = max(k.lastSeq, checkpoint)
	}
	return nil
}

// resume is the task's flow.Options.Resume: it restores the saved state (the first time) and
// returns the newest input every partition of the set holds.
func (k *task) resume(ctx context.Context) (uint64, error) {
	if err := k.Start(ctx, 0); err != nil {
		return 0, err
	}
	if k.mode == modeWork {
		return k.lastShuffle, nil
	}
	return k.lastSeq, nil
}

func (k *task) restore(ctx context.Context) error {
	if k.mode == modeRoute {
		return k.restoreRouter(ctx)
	}
	// Everything is read by one watcher (kvx.LoadKeys): the set's progress records and every
	// table's groups and input rows, from one point of the bucket's history. A flush stores a
	// partition's groups before the progress record that covers them, so such a point never
	// holds a record without its groups; at worst the record is older than some groups, which
	// skip the inputs they hold when those are replayed. Read separately, each read may be
	// answered by another replica, and one that restarted a moment ago is behind: a record
	// read from the leader next to groups from a stale replica made a new owner skip inputs
	// those groups never got (TestClusterNodeLoss, with a CPU-heavy neighbour).
	progressOf := map[string]int{} // progress key -> partition
	for _, p := range k.set {
		progressOf[k.progressKeyOf(p)] = p
	}
	filters := slices.Collect(maps.Keys(progressOf))
	legacyKey := ""
	if k.parts <= 1 {
		legacyKey = k.legacyCheckpointKey()
		filters = append(filters, legacyKey)
	}
	// A table's groups are loaded once and handed to their partitions' states.
	type partsOf struct {
		n      int                 // the table's number of partitions
		states map[int]*tableState // the set's, by partition
	}
	groupsOf := map[string]*partsOf{}  // state key prefix -> the table's partitions
	rowsOf := map[string]*tableState{} // input-row key prefix -> state
	for _, t := range k.tables {
		if groupsOf[t.stateKeyPrefix] == nil {
			groupsOf[t.stateKeyPrefix] = &partsOf{n: t.parts, states: map[int]*tableState{}}
			filters = append(filters, t.stateKeyPrefix+">")
		}
		groupsOf[t.stateKeyPrefix].states[t.part] = t
		if t.step.TableInput {
			rowsOf[prevPrefix(t)] = t
			filters = append(filters, prevPrefix(t)+">")
		}
	}
	slices.Sort(filters)
	filters = slices.Compact(filters) // a watcher refuses a filter given twice
	cps := map[int]progress{}
	var legacy *progress
	err := kvx.LoadKeys(ctx, k.js, topology.BucketWindowerState, filters, func(entry jetstream.KeyValueEntry) error {
		key := entry.Key()
		if p, ok := progressOf[key]; ok || key == legacyKey {
			var cp progress
			if err := json.Unmarshal(entry.Value(), &cp); err != nil {
				return fmt.Errorf("decode progress: %w", err)
			}
			if ok {
				cps[p] = cp
			} else {
				legacy = &cp
			}
			return nil
		}
		for prefix, t := range rowsOf {
			if rest, ok := strings.CutPrefix(key, prefix); ok {
				var p prevRow
				if err := json.Unmarshal(entry.Value(), &p); err != nil {
					return fmt.Errorf("decode %s input row state: %w", t.spec.Name, err)
				}
				if err := p.decode(t.step.Aggregates); err != nil {
					return fmt.Errorf("decode %s input row state %s: %w", t.spec.Name, key, err)
				}
				t.prevs[rest] = &p
				return nil
			}
		}
		for prefix, parts := range groupsOf {
			rest, ok := strings.CutPrefix(key, prefix)
			if !ok {
				continue
			}
			pt := parts.states[partitionOf([]byte(rest), parts.n)]
			if pt == nil {
				return nil // another instance's partition
			}
			var g group
			if err := json.Unmarshal(entry.Value(), &g); err != nil {
				return fmt.Errorf("decode %s state: %w", pt.spec.Name, err)
			}
			if err := pt.revive(&g); err != nil {
				return fmt.Errorf("decode %s state %s: %w", pt.spec.Name, key, err)
			}
			g.Key = rest
			pt.groups[g.Key] = &g
			for _, win := range g.Wins {
				pt.nextClose = min(pt.nextClose, pt.closeAt(win))
			}
			return nil
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore state: %w", err)
	}
	// Each partition's progress: its stream times and the newest input its state holds. The
	// task resumes after the oldest; a partition further on skips up to its own.
	k.lastSeq, k.lastShuffle = 0, 0
	for i, p := range k.set {
		cp, ok := cps[p]
		if !ok && legacy != nil {
			cp = *legacy
		}
		cps[p] = cp
		if i == 0 || cp.Seq < k.lastSeq {
			k.lastSeq = cp.Seq
		}
		if i == 0 || cp.Shuffle < k.lastShuffle {
			k.lastShuffle = cp.Shuffle
		}
	}
	for _, t := range k.tables {
		cp := cps[t.part]
		t.skipUpTo = cp.Seq
		if p, ok := cp.Tables[t.spec.Name]; ok {
			t.st, t.hasST = p.StreamTime, p.Has
			// Idle time counts from the restart, so restored windows close even if no event
			// ever comes again.
			t.lastArrival = k.now()
		}
	}
	return nil
}

// Handle implements flow.Handler: apply the batch, close what is due, flush when it is time.
// Until a flush, the inputs live only in memory: the batch holds them (out.Hold).
func (k *task) Handle(ctx context.Context, in []jetstream.Msg, out *flow.Out) error {
	if k.crashed != nil && k.crashed() {
		return errCrashed
	}
	k.out, k.arena, k.batchNow = out, out.Arena(), k.now()
	defer func() { out.SetArena(k.arena); k.out = nil }()
	switch k.mode {
	case modeWork:
		for _, m := range in {
			if seq := flow.Seq(m); seq > k.lastShuffle {
				k.lastShuffle = seq
				if err := k.applyShuffle(m); err != nil {
					return err
				}
			}
		}
	case modeRoute:
		for _, m := range in {
			if err := k.apply(m); err != nil {
				return err
			}
		}
		k.idleAdvance()
		if len(in) > 0 {
			return k.publishShuffle(in[len(in)-1])
		}
		return nil
	default:
		for _, m := range in {
			if err := k.apply(m); err != nil {
				return err
			}
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
	if k.mode == modeRoute {
		return nil // a router keeps nothing in memory
	}
	k.out = out
	defer func() { k.out = nil }()
	return k.flush(ctx)
}

var errCrashed = errors.New("windower crashed (test)")

func (k *task) apply(m jetstream.Msg) error {
	seq := flow.Seq(m)
	if seq == 0 {
		return fmt.Errorf("input without a stream sequence (subject %s)", m.Subject())
	}
	if seq <= k.lastSeq {
		return nil // a redelivery of an input already applied in memory
	}
	k.lastSeq = seq
	k.pending++
	if k.kvPrefix != "" {
		return k.applyTable(m, seq)
	}
	if ok, err := k.decode(m); !ok {
		return err
	}
	ts := k.row[k.rowTime].I
	if k.mode == modeRoute {
		for _, ps := range k.direct {
			k.routeTo(ps[0], k.row, 0, m.Data(), ts)
		}
	} else {
		for _, ps := range k.direct {
			if err := k.applyParts(ps, k.row, m, nil, ts, seq); err != nil {
				return err
			}
		}
	}
	if k.prog != nil {
		k.cur, k.curSeq, k.curTS = m, seq, ts
		if err := k.prog.Run(k.row, k.prog.InputKey(k.row, m.Headers()), k.emitFn); err != nil {
			return err
		}
	}
	if k.mode == modeRoute {
		return k.endInput(m, seq, ts)
	}
	return nil
}

// selects reports whether the current row passes t's WHERE and has a group (t.vals): rows
// with a NULL group key are dropped and counted, as ksqlDB drops them.
func (t *tableState) selects(r sqlrt.Row) bool {
	if w := t.step.Where; w != nil {
		if v := w.Eval(r); v.Kind != sqlrt.Boolean || !v.Bool() {
			return false
		}
	}
	for i, e := range t.step.GroupBy {
		v := e.Eval(r)
		if v.IsNull() {
			if t.countsNull { // every partition sees the row; one counts it
				t.nullKeys.Inc()
			}
			return false
		}
		t.vals[i] = v
	}
	return true
}

// applyTo aggregates row r (the table's input columns, then ROWTIME) of input m into t; body is
// the row's JSON when it is not m's own (a fused statement's output; nil: m's body).
func (k *task) applyTo(t *tableState, r sqlrt.Row, m jetstream.Msg, body []byte, ts int64, seq uint64) error {
	if seq <= t.skipUpTo {
		return nil // the partition's saved state holds it (stream time included)
	}
	if !t.selects(r) {
		return nil
	}
	t.evalArgs(r)
	k.arrived(t, ts)
	// The group is looked up by the key's bytes: its string is made only for a new group.
	t.keyBuf = appendGroupKey(t.keyBuf[:0], t.vals)
	if !t.owns(t.keyBuf) {
		return nil // another partition's group
	}
	return k.fold(t, m, body, ts, seq)
}

// evalArgs evaluates each aggregate's arguments on row r into t.args.
func (t *tableState) evalArgs(r sqlrt.Row) {
	for i, a := range t.step.Aggregates {
		for j, e := range a.Args {
			t.args[i][j] = e.Eval(r)
		}
	}
}

// arrived notes an input with event time ts that reached t: it advances t's stream time.
func (k *task) arrived(t *tableState, ts int64) {
	t.lastArrival, t.lastAdvance = k.batchNow, time.Time{}
	if k.mode == modeWork {
		// The router's stream time after this input: what one reader of every input has.
		if t.ord >= 0 {
			if v := k.vec[t.ord]; v.has && (!t.hasST || v.st > t.st) {
				t.st, t.hasST = v.st, true
			}
		}
		return
	}
	if !t.hasST || ts > t.st {
		t.st, t.hasST = ts, true
	}
}

// applyParts aggregates row r into a table whose task holds several of its partitions: the
// WHERE, the group key and the arguments are evaluated once, every partition's stream time
// advances, and the group's partition folds the row in.
func (k *task) applyParts(ps []*tableState, r sqlrt.Row, m jetstream.Msg, body []byte, ts int64, seq uint64) error {
	if len(ps) == 1 {
		return k.applyTo(ps[0], r, m, body, ts, seq)
	}
	e := ps[0]
	if !e.selects(r) {
		return nil
	}
	e.evalArgs(r)
	e.keyBuf = appendGroupKey(e.keyBuf[:0], e.vals)
	owner := partitionOf(e.keyBuf, e.parts)
	for _, t := range ps {
		if seq <= t.skipUpTo {
			continue // the partition's saved state holds it
		}
		k.arrived(t, ts)
		if t.part != owner {
			continue
		}
		if t != e {
			copy(t.vals, e.vals)
			for i := range e.args {
				copy(t.args[i], e.args[i])
			}
			t.keyBuf = append(t.keyBuf[:0], e.keyBuf...)
		}
		if err := k.fold(t, m, body, ts, seq); err != nil {
			return err
		}
	}
	return nil
}

// fold adds the current input (its group values in t.vals, key in t.keyBuf, arguments in
// t.args) to its group's windows, or publishes it as late.
func (k *task) fold(t *tableState, m jetstream.Msg, body []byte, ts int64, seq uint64) error {
	g := t.groups[string(t.keyBuf)]
	if g != nil && seq <= g.Seq {
		return nil // replay after a restart: the saved state already holds this input
	}
	key := ""
	if g != nil {
		key = g.Key
	} else {
		key = string(t.keyBuf)
	}
	if t.session() {
		return k.applySession(t, g, key, m, body, ts, seq)
	}
	if t.win.kind == "" {
		k.starts = append(k.starts[:0], 0)
	} else {
		k.starts = timeWindowStarts(k.starts[:0], ts, t.win.size, t.win.adv)
	}
	var late []int64
	applied := false
	for _, s := range k.starts {
		end := s + t.win.size
		if t.win.kind != "" && end+t.grace <= t.st {
			late = append(late, s)
			continue
		}
		if g == nil {
			g = t.newGroup(key)
		}
		w := g.find(s)
		if w == nil {
			w = &win{Start: s, End: end, accs: t.newAccs()}
			g.Wins = append(g.Wins, w)
			t.nextClose = min(t.nextClose, t.closeAt(w))
		}
		t.add(w.accs)
		w.dirty = true
		applied = true
	}
	if applied {
		g.Seq = seq
		k.markDirty(t, g)
	}
	if len(late) > 0 {
		return k.publishLate(t, m, body, ts, fmt.Sprintf("event time %d is past the end + grace (%d ms) of %d window(s) starting %s at stream time %d",
			ts, t.grace, len(late), joinInts(late), t.st))
	}
	return nil
}

// decode fills k.row from the input (its columns, then ROWTIME), or dead-letters it (ok false;
// err is the dead letter's publishing error).
func (k *task) decode(m jetstream.Msg) (ok bool, err error) {
	data := m.Data()
	if len(data) > k.cfg.MaxEventBytes {
		return false, k.deadLetter(m, fmt.Errorf("%w: %d bytes, limit %d", pipe.ErrTooLarge, len(data), k.cfg.MaxEventBytes))
	}
	for i := range k.row {
		k.row[i] = sqlrt.Value{}
	}
	if err := k.dec.Decode(data, k.row); err != nil {
		return false, k.deadLetter(m, err)
	}
	k.row[k.rowTime] = sqlrt.BigIntValue(events.EventTimeMillis(m))
	return true, nil
}

// deadLetter dead-letters poison input once: every partition reads every input, partition 0
// speaks for them.
func (k *task) deadLetter(m jetstream.Msg, err error) error {
	if !k.first() {
		return nil
	}
	return k.out.DeadLetter(m, err)
}

// prevPrefix is where a table's input rows are saved in WINDOWER_STATE: per partition when
// there are several, since a row that moves to another partition's group is deleted by one
// owner and written by the other, at their own times.
func prevPrefix(t *tableState) string {
	if t.parts > 1 {
		return "_rows." + t.spec.Name + ".p" + strconv.Itoa(t.part) + "."
	}
	return "_rows." + t.spec.Name + "."
}

// applyTable applies one change of the input TABLE: the new row of a key (a KV put) or its
// deletion (KV-Operation DEL or PURGE).
func (k *task) applyTable(m jetstream.Msg, seq uint64) error {
	key := strings.TrimPrefix(m.Subject(), k.kvPrefix)
	op := m.Headers().Get(kvOperation)
	del := op == "DEL" || op == "PURGE"
	ts := events.EventTimeMillis(m)
	if !del {
		if ok, err := k.decode(m); !ok {
			return err
		}
		if k.keyAt >= 0 && k.row[k.keyAt].IsNull() {
			if text, err := kvx.Unescape(key); err == nil {
				k.row[k.keyAt], _ = sqlrt.FromText(text, k.tables[0].step.Input.Columns[k.keyAt].Type)
			}
		}
	}
	for _, t := range k.tables {
		if err := k.applyTableRow(t, key, del, ts, seq); err != nil {
			return err
		}
	}
	return nil
}

// kvOperation is the header JetStream KV marks deletes with.
const kvOperation = "KV-Operation"

// applyTableRow takes out what the key's previous row added to t, then adds the new row (if
// it passes WHERE and has a group). Each group, and the key's saved row, carries the input
// sequence it has seen, so a replay after a crash changes nothing twice.
func (k *task) applyTableRow(t *tableState, key string, del bool, ts int64, seq uint64) error {
	if seq <= t.skipUpTo {
		return nil // the partition's saved state holds it
	}
	prev := t.prevs[key]
	if prev != nil && seq <= prev.Seq {
		return nil
	}
	var undone *group // the group this input took the previous row out of
	if prev != nil {
		if g := t.groups[prev.Group]; g != nil && seq > g.Seq {
			undone = g
			for _, s := range prev.Starts {
				w := g.find(s)
				if w == nil {
					continue // closed since: final
				}
				for i, a := range w.accs {
					a.Undo(prev.args[i])
				}
				w.Rows--
				w.dirty = true
				if w.Rows <= 0 {
					// The window's last row went: its row goes too (always, for the reason
					// the session merge gives).
					g.remove(w)
					if err := k.publishKV(t.spec.Name, t.rowKey(g.Key, w), nil); err != nil {
						return err
					}
				}
			}
			g.Seq = seq
			k.markDirty(t, g)
		}
	}
	next := k.addTableRow(t, undone, del, ts, seq)
	switch {
	case next != nil:
		t.prevs[key] = next
	case prev != nil:
		delete(t.prevs, key)
	default:
		return nil
	}
	t.prevDirty[key] = true
	return nil
}

// addTableRow adds the current row (k.row) to t and returns what it added, or nil. undone is
// the group the same input took the previous row out of (its sequence says this input, which
// is no replay for the add).
func (k *task) addTableRow(t *tableState, undone *group, del bool, ts int64, seq uint64) *prevRow {
	if del {
		return nil
	}
	r := k.row
	if !t.selects(r) {
		return nil
	}
	p := &prevRow{Seq: seq, args: make([][]sqlrt.Value, len(t.step.Aggregates))}
	for i, a := range t.step.Aggregates {
		p.args[i] = make([]sqlrt.Value, len(a.Args))
		for j, e := range a.Args {
			p.args[i][j] = e.Eval(r)
		}
	}
	t.lastArrival, t.lastAdvance = k.batchNow, time.Time{}
	if t.win.kind != "" && (!t.hasST || ts > t.st) {
		t.st, t.hasST = ts, true
	}
	p.Group = groupKey(t.vals)
	if !t.owns([]byte(p.Group)) {
		return nil // another partition's group: it keeps the row
	}
	if t.win.kind == "" {
		k.starts = append(k.starts[:0], 0)
	} else {
		k.starts = timeWindowStarts(k.starts[:0], ts, t.win.size, t.win.adv)
	}
	for _, s := range k.starts {
		if t.win.kind == "" || s+t.win.size+t.grace > t.st {
			p.Starts = append(p.Starts, s) // closed windows are final
		}
	}
	g := t.groups[p.Group]
	if g != nil && seq <= g.Seq && g != undone {
		return p // the saved group holds this row already
	}
	for _, s := range p.Starts {
		end := s + t.win.size
		if g == nil {
			g = t.newGroup(p.Group)
		}
		w := g.find(s)
		if w == nil {
			w = &win{Start: s, End: end, accs: t.newAccs()}
			g.Wins = append(g.Wins, w)
			t.nextClose = min(t.nextClose, t.closeAt(w))
		}
		for i, a := range w.accs {
			a.Add(p.args[i])
		}
		w.Rows++
		w.dirty = true
	}
	if g != nil {
		g.Seq = seq
		k.markDirty(t, g)
	}
	return p
}

// newGroup adds the group of the current event (t.vals) under key.
func (t *tableState) newGroup(key string) *group {
	g := &group{Key: key, vals: append([]sqlrt.Value(nil), t.vals...)}
	for i, v := range t.vals {
		g.Cols = append(g.Cols, Column{Name: t.step.Result[i].Name, JSON: string(sqlrt.AppendJSON(nil, v, t.step.Result[i].Type))})
	}
	t.groups[key] = g
	return g
}

// revive rebuilds what a restored group keeps only in memory: its values and accumulators.
func (t *tableState) revive(g *group) error {
	if len(g.Cols) != len(t.step.GroupBy) {
		return fmt.Errorf("%d group columns saved, the statement has %d", len(g.Cols), len(t.step.GroupBy))
	}
	g.vals = make([]sqlrt.Value, len(g.Cols))
	for i, c := range g.Cols {
		v, err := sqlrt.FromJSON([]byte(c.JSON), t.step.Result[i].Type)
		if err != nil {
			return err
		}
		g.vals[i] = v
	}
	for _, w := range g.Wins {
		if len(w.Aggs) != len(t.step.Aggregates) {
			return fmt.Errorf("%d aggregates saved, the statement has %d", len(w.Aggs), len(t.step.Aggregates))
		}
		w.accs = t.newAccs()
		for i, a := range w.Aggs {
			if err := w.accs[i].UnmarshalJSON(a); err != nil {
				return err
			}
		}
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
func (k *task) applySession(t *tableState, g *group, key string, m jetstream.Msg, body []byte, ts int64, seq uint64) error {
	closeTime := t.sessionCloseTime()
	start, end := ts, ts
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
			if ts >= w.Start-t.win.gap && ts <= w.End+t.win.gap {
				merged = append(merged, w)
				start, end = min(start, w.Start), max(end, w.End)
			}
		}
	}
	if end < closeTime {
		return k.publishLate(t, m, body, ts, fmt.Sprintf("event time %d: its session would end at %d, older than stream time %d minus gap %d ms minus grace %d ms",
			ts, end, t.st, t.win.gap, t.grace))
	}
	if closed && ts <= closedEnd+t.win.gap {
		return k.publishLate(t, m, body, ts, fmt.Sprintf("event time %d is within gap %d ms of a closed session ending at %d (stream time %d)",
			ts, t.win.gap, closedEnd, t.st))
	}
	if g == nil {
		g = t.newGroup(key)
	}
	var keep *win
	for _, w := range merged {
		if w.Start == start && keep == nil {
			keep = w
		}
	}
	// The merged sessions' accumulators fold together in session order, then the event.
	accs := t.newAccs()
	for _, w := range merged {
		for i, a := range accs {
			a.Merge(w.accs[i])
		}
		if w != keep {
			g.remove(w)
			// The merged-away session's row is deleted, as ksqlDB does. Always: after a crash
			// the row may be in the table although the restored window never showed it
			// (rows are written before the state that says so).
			if err := k.publishKV(t.spec.Name, RowKey(key, w.Start), nil); err != nil {
				return err
			}
		}
	}
	t.add(accs)
	if keep == nil {
		keep = &win{}
		g.Wins = append(g.Wins, keep)
	}
	keep.Start, keep.End, keep.accs, keep.dirty = start, end, accs, true
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
// and the reason. Its Nats-Msg-Id makes a replay publish nothing new. body, when not nil, is
// the table's input row in place of m's body (a fused statement's output).
func (k *task) publishLate(t *tableState, m jetstream.Msg, body []byte, ts int64, reason string) error {
	t.late.Inc()
	out := nats.NewMsg(t.lateSubject)
	events.CopyHeaders(out.Header, m.Headers())
	out.Header.Set(HeaderLateTable, t.spec.Name)
	out.Header.Set(HeaderLateReason, reason)
	out.Header.Set(events.HeaderEventTime, strconv.FormatInt(ts, 10))
	out.Header.Set(events.HeaderMsgID, "late:"+t.spec.Name+":"+events.SourceID(m))
	out.Data = m.Data()
	if body != nil {
		out.Data = body
	}
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
			if t.session() {
				g.noteClosed(w.End)
			}
			res := t.result(g, w)
			if !t.visible(res) {
				if w.dirty && w.Shown {
					if err := k.publishKV(t.spec.Name, RowKey(key, w.Start), nil); err != nil {
						return err
					}
				}
				continue
			}
			row := t.row(res, w)
			if w.dirty || (t.step.EmitFinal && !w.Shown) {
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

// flush makes the task's progress durable, in three phases: first the table rows (and the
// late, final and dead-letter messages already added), then the saved groups, then the progress
// record; then the runtime checkpoints and acks the inputs. A crash between the phases leaves
// the saved state behind the rows, and the replay rewrites the same rows: nothing counts twice.
// Each phase is synced here, so a group is marked clean only once its state is durable.
func (k *task) flush(ctx context.Context) error {
	for _, d := range k.dirty {
		if d.t.step.EmitFinal {
			continue // EMIT FINAL: a row only when its window closes (closeDue)
		}
		for _, w := range d.g.Wins {
			if w.dirty {
				w.dirty = false
				if _, err := k.writeRow(d.t, d.g, w); err != nil {
					return err
				}
			}
		}
	}
	if err := k.out.Sync(ctx); err != nil {
		return fmt.Errorf("flush rows: %w", err)
	}
	cps := map[int]progress{}
	for _, p := range k.set {
		cp := progress{Seq: k.lastSeq, Shuffle: k.lastShuffle, Tables: map[string]tableProgress{}}
		if k.parts > 1 {
			cp.Parts = k.parts
		}
		cps[p] = cp
	}
	for _, t := range k.tables {
		cps[t.part].Tables[t.spec.Name] = tableProgress{StreamTime: t.st, Has: t.hasST}
	}
	for _, d := range k.dirty {
		for _, w := range d.g.Wins {
			if err := w.marshalAggs(); err != nil {
				return err
			}
		}
		data, err := json.Marshal(d.g)
		if err != nil {
			return err
		}
		if err := k.publishKV(topology.BucketWindowerState, d.t.stateKeyPrefix+d.g.Key, data); err != nil {
			return err
		}
	}
	for _, t := range k.tables {
		for key := range t.prevDirty {
			var data []byte
			if p := t.prevs[key]; p != nil {
				p.encode(t.step.Aggregates)
				var err error
				if data, err = json.Marshal(p); err != nil {
					return err
				}
			}
			if err := k.publishKV(topology.BucketWindowerState, prevPrefix(t)+key, data); err != nil {
				return err
			}
		}
	}
	// The groups must be stored before the progress record that says they hold these inputs:
	// published together, a group's write lost in a leader change (the publish went to the old
	// leader) while the progress record reached the new one would, if the processor then
	// stopped before republishing (fenced by its lease, killed), make the next owner skip
	// inputs that group never got.
	if err := k.out.Sync(ctx); err != nil {
		return fmt.Errorf("flush groups: %w", err)
	}
	if k.crashMid != nil && k.crashMid() {
		return errCrashed
	}
	for _, p := range k.set {
		cpData, _ := json.Marshal(cps[p])
		if err := k.publishKV(topology.BucketWindowerState, k.progressKeyOf(p), cpData); err != nil {
			return err
		}
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
	for _, t := range k.tables {
		clear(t.prevDirty)
	}
	k.pending = 0
	k.lastSave = k.now()
	return nil
}

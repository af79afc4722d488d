// Package windower executes the pipeline's aggregations (CREATE TABLE ... AS SELECT ... GROUP
// BY): any aggregate functions per group over tumbling, hopping and session windows, in event
// time, with a grace period for out-of-order events, late events published instead of dropped,
// and windows that close visibly (a final row) even when the input goes quiet; and GROUP BY
// without a window (one row per group, updated forever).
package windower

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/flow"
	"github.com/jetsuite/jetsuite/shared/lease"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/sqlrt"
	"github.com/jetsuite/jetsuite/shared/topology"
	"github.com/jetsuite/jetsuite/shared/transform"
)

const serviceName = "windower"

// Config is the windower's configuration.
type Config struct {
	// Grace is how long after a window's end out-of-order events are still counted (ksqlDB's
	// GRACE PERIOD; ksqlDB's default was 24 h, jetsuite's is 30 s).
	Grace time.Duration
	// GracePerTable overrides Grace per table: "EVENTS_PER_MIN=10s,CLICK_USER_SESSIONS=1m".
	GracePerTable []string
	// IdleTimeout: when no event reached a table for this long, its stream time advances with
	// the wall clock, so windows close without new events (0: never).
	IdleTimeout time.Duration
	// FlushInterval and FlushMaxInputs bound how long and how many inputs state stays only in
	// memory before rows and state are written to KV and the inputs acked.
	FlushInterval  time.Duration
	FlushMaxInputs int
	// Tables restricts the windower to some tables (empty: all).
	Tables []string
	// MaxEventBytes dead-letters larger inputs.
	MaxEventBytes int
	// BatchSize is the largest pull batch.
	BatchSize int
	// InFlight is how many batches may await their outputs' acks while the next one is
	// aggregated.
	InFlight int

	// The declared settings that CheckPlan reports on (nil for a Config built in code).
	tablesSetting, gracesSetting *config.Setting
}

// DefaultConfig is the configuration without flags or environment: the declared defaults.
func DefaultConfig() Config {
	var c Config
	c.Bind(config.Defaults(serviceName))
	return c
}

// Bind declares the settings.
func (c *Config) Bind(b config.Binder) {
	b.Duration(&c.Grace, "grace", 30*time.Second, "grace period of every windowed table").
		NonNegative().Was("", "grace")
	c.gracesSetting = b.List(&c.GracePerTable, "grace-per-table", nil, "grace per table, e.g. EVENTS_PER_MIN=10s,CLICK_USER_SESSIONS=1m").
		Check(func(items []string) error {
			_, err := (&Config{GracePerTable: items}).graces(nil)
			return err
		}).Was("", "grace-per-table")
	b.Duration(&c.IdleTimeout, "idle-timeout", 10*time.Second, "after this long without events a table's stream time follows the wall clock (0: never)").
		NonNegative().Was("", "idle-timeout")
	b.Duration(&c.FlushInterval, "flush-interval", 500*time.Millisecond, "how often window state is written to KV and inputs acked").
		Positive().Was("", "flush-interval")
	b.Int(&c.FlushMaxInputs, "flush-max-inputs", 20000, "flush after this many inputs even before the interval").
		Positive().Was("", "flush-max-inputs")
	c.tablesSetting = b.List(&c.Tables, "tables", nil, "only these aggregations (default: all)").
		Was("", "tables")
	b.Int(&c.MaxEventBytes, "max-bytes", 64<<10, "inputs larger than this (bytes) are dead-lettered").
		Positive().Was("JETSUITE_MAX_EVENT_BYTES", "max-event-bytes")
	b.Int(&c.BatchSize, "batch", 1000, "largest pull batch").Positive()
	b.Int(&c.InFlight, "inflight", 3, "batches whose outputs (rows, fused statements' streams) may await their acks while the next batch is aggregated").Positive()
}

// defaults fills the settings a Config built in code leaves zero with the declared defaults
// (values from flags and environment were validated at start and are never replaced).
func (c *Config) defaults() {
	d := DefaultConfig()
	if c.FlushInterval <= 0 {
		c.FlushInterval = d.FlushInterval
	}
	if c.FlushMaxInputs <= 0 {
		c.FlushMaxInputs = d.FlushMaxInputs
	}
	if c.MaxEventBytes <= 0 {
		c.MaxEventBytes = d.MaxEventBytes
	}
	if c.BatchSize <= 0 {
		c.BatchSize = d.BatchSize
	}
	if c.InFlight <= 0 {
		c.InFlight = d.InFlight
	}
}

// graces resolves the grace period of every table.
func (c *Config) graces(tables []Table) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	for _, t := range tables {
		out[t.Name] = c.Grace
		if w := t.Step.Window; w != nil && w.HasGrace {
			out[t.Name] = w.Grace // the statement's GRACE PERIOD
		}
	}
	for _, item := range c.GracePerTable {
		name, val, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("grace-per-table %q: want TABLE=DURATION", item)
		}
		d, err := time.ParseDuration(strings.TrimSpace(val))
		if err != nil || d < 0 {
			return nil, fmt.Errorf("grace-per-table %q: bad duration", item)
		}
		name = strings.ToUpper(strings.TrimSpace(name))
		if _, known := out[name]; !known && tables != nil {
			return nil, fmt.Errorf("grace-per-table: unknown table %q", name)
		}
		out[name] = d
	}
	return out, nil
}

// CheckPlan checks the table names of the settings against the pipeline's aggregations.
func (c *Config) CheckPlan(p *plan.Plan) error {
	all := Tables(p)
	if err := knownTables(c.Tables, all); err != nil {
		if c.tablesSetting != nil {
			return c.tablesSetting.Invalid(err)
		}
		return err
	}
	if _, err := c.graces(all); err != nil {
		if c.gracesSetting != nil {
			return c.gracesSetting.Invalid(err)
		}
		return err
	}
	return nil
}

// Service is the windower.
type Service struct {
	cfg      Config
	deps     runner.Deps
	log      *slog.Logger
	tasks    []*task
	views    transform.Views // the tables the fused statements join
	crashed  func() bool
	crashMid func() bool
}

// Spec describes the windower to the jetsuite binary.
func Spec() runner.Spec {
	var c Config
	return runner.Spec{
		Name: serviceName, Summary: "the pipeline's aggregations (CREATE TABLE ... AS SELECT ... GROUP BY, windowed or not)", InAll: true,
		Bind: func(b runner.Binder) func(runner.Deps) (runner.Service, error) {
			c.Bind(b)
			return func(d runner.Deps) (runner.Service, error) { return New(c, d) }
		},
		CheckPlan: func(p *plan.Plan) error { return c.CheckPlan(p) },
	}
}

// New builds the windower: one task per source stream, each aggregating that stream's tables.
func New(cfg Config, deps runner.Deps) (*Service, error) {
	cfg.defaults()
	p := deps.Pipeline()
	all := Tables(p)
	if err := cfg.CheckPlan(p); err != nil {
		return nil, err
	}
	graces, _ := cfg.graces(all)
	want := map[string]bool{}
	for _, n := range cfg.Tables {
		want[strings.ToUpper(n)] = true
	}
	s := &Service{cfg: cfg, deps: deps, log: deps.Logger("windower"), views: transform.Views{}}
	fused, fusedSources := fusedStatements(p)
	bySource := map[string]*task{}
	for _, t := range all {
		if len(want) > 0 && !want[t.Name] {
			continue
		}
		if err := unsupportedTable(t); err != nil {
			return nil, err
		}
		k := bySource[t.Source]
		if k == nil {
			in := t.Step.Input
			if t.Step.FusedFrom != nil {
				in = t.Step.FusedFrom
			}
			k = s.newTask(t.Source, in, t.Step.TableInput)
			bySource[t.Source] = k
			s.tasks = append(s.tasks, k)
		}
		ts := newTableState(t, graces[t.Name])
		ts.parts = p.PartitionsOf(t.Step)
		k.tables = append(k.tables, ts)
		k.parts = max(k.parts, ts.parts)
	}
	// A source's fused statements run in its task even when --tables leaves out every table
	// that reads them: their streams are published for everyone else.
	for _, src := range fusedSources {
		if bySource[src] == nil {
			k := s.newTask(src, fused[src][0].FusedFrom, false)
			bySource[src] = k
			s.tasks = append(s.tasks, k)
		}
	}
	for _, k := range s.tasks {
		if err := k.wire(fused[k.source], s.views, true); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// newTask returns a task reading source, whose messages carry in's rows.
func (s *Service) newTask(source string, in *plan.Object, tableInput bool) *task {
	k := &task{source: source, in: in, js: s.deps.JS, cfg: &s.cfg, log: s.log, now: time.Now,
		dec: sqlrt.NewDecoder(in.Columns), row: make(sqlrt.Row, len(in.Columns)+1), rowTime: len(in.Columns), keyAt: -1}
	if tableInput {
		k.kvPrefix = "$KV." + in.Bucket + "."
		k.keyAt = in.Column(in.Key[0])
	}
	return k
}

// Name implements runner.Service.
func (s *Service) Name() string { return "windower" }

// Run aggregates until ctx ends, then flushes what it holds and returns.
func (s *Service) Run(ctx context.Context) error {
	state, err := s.deps.JS.KeyValue(ctx, topology.BucketWindowerState)
	if err != nil {
		return fmt.Errorf("state bucket: %w", err)
	}
	if err := s.checkPlacement(ctx, state); err != nil {
		return err
	}
	if err := s.splitRebuilt(ctx, state); err != nil {
		return err
	}
	if err := s.checkPartitions(ctx, state); err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	for name, v := range s.views {
		o := s.deps.Pipeline().Object(name)
		kv, err := s.deps.JS.KeyValue(ctx, o.Bucket)
		if err != nil {
			return fmt.Errorf("table %s: %w", name, err)
		}
		g.Go(func() error {
			if err := transform.WaitLoader(ctx, s.deps.JS, o, s.log); err != nil {
				return nil // ctx ended
			}
			return v.Run(ctx, kv)
		})
	}
	// Every task's partitions are units of work shared with the other windowers (shared/
	// lease): each is owned by one instance at a time. An instance runs the partitions of a
	// task it owns together, in one task that reads the input once (runParts), from a fresh
	// copy of the task that restores their state from WINDOWER_STATE.
	var units []lease.Unit
	for _, k := range s.tasks {
		k.state = state
		k.crashed, k.crashMid = s.crashed, s.crashMid
		if _, err := k.partitions([]int{0}, s.views, false); err != nil {
			return err // a statement that cannot run fails the start
		}
		ps := newPartSet()
		split := s.deps.Pipeline().Repartition && k.splittable()
		g.Go(func() error { return s.runParts(ctx, k, ps, split) })
		for part := range max(k.parts, 1) {
			units = append(units, lease.Unit{Name: k.unit(part), Run: func(ctx context.Context) error { return ps.own(ctx, part) }})
		}
		if split {
			units = append(units, lease.Unit{Name: k.name() + ".shuffle", Run: func(ctx context.Context) error { return s.runRouter(ctx, k) }})
		}
	}
	g.Go(func() error { return s.deps.Share(ctx, serviceName, units...) })
	if err := g.Wait(); !errors.Is(err, errTaskStopped) {
		return err
	}
	return nil
}

// partitions returns a fresh copy of template task k for a set of its partitions (sorted):
// each table's state per partition of the set it has, empty (restored from WINDOWER_STATE
// when it starts), and its own program. Only the set with partition 0 publishes the fused
// statements' streams (they have one writer); every set evaluates them for its tables.
func (k *task) partitions(set []int, views transform.Views, split bool) (*task, error) {
	c := k.fresh()
	c.set = set
	if split {
		c.mode, c.inSet = modeWork, make([]bool, max(k.parts, 1))
		for _, p := range set {
			c.inSet[p] = true
		}
	}
	for _, t := range k.tables {
		for _, part := range set {
			if part >= max(t.parts, 1) {
				continue
			}
			ts := newTableState(t.spec, time.Duration(t.grace)*time.Millisecond)
			ts.part, ts.parts, ts.countsNull = part, t.parts, part == 0 && !split
			c.tables = append(c.tables, ts)
		}
	}
	if err := c.wire(k.steps, views, k.emit && c.first()); err != nil {
		return nil, err
	}
	return c, nil
}

// fresh is a copy of template task k with no tables, state or progress of its own yet.
func (k *task) fresh() *task {
	c := *k
	c.set, c.tables, c.dirty, c.starts, c.restored, c.lastSeq, c.pending = nil, nil, nil, nil, false, 0, 0
	c.dec, c.row = sqlrt.NewDecoder(k.in.Columns), make(sqlrt.Row, len(k.row))
	return &c
}

// splittable reports whether the repartition step can split k's reading: its tables have
// partitions, it reads a stream (not a table's changes) and it is the source's task (a table
// rebuilt on its own reads the source from its start).
func (k *task) splittable() bool {
	return k.parts > 1 && k.kvPrefix == "" && k.own == ""
}

// router returns a copy of template task k that routes its source's inputs to the partitions
// (the repartition step, see shuffle.go): one state per table, for its stream time.
func (k *task) router(views transform.Views) (*task, error) {
	c := k.fresh()
	c.mode = modeRoute
	for i, t := range k.tables {
		ts := newTableState(t.spec, time.Duration(t.grace)*time.Millisecond)
		ts.parts, ts.ord, ts.countsNull = t.parts, i, true
		c.tables = append(c.tables, ts)
	}
	c.rt = &router{active: make([]bool, len(c.tables))}
	if err := c.wire(k.steps, views, k.emit); err != nil {
		return nil, err
	}
	return c, nil
}

// runRouter is the router's lease unit: it routes k's source until ctx ends.
func (s *Service) runRouter(ctx context.Context, k *task) error {
	c, err := k.router(s.views)
	if err != nil {
		return err
	}
	if c.prog != nil && c.prog.WaitLoaded(ctx) != nil {
		return nil // ctx ended
	}
	return s.runTask(ctx, c)
}

// partSet is what this instance owns of a task's partitions (their lease units register
// here) and what the task running now covers.
type partSet struct {
	mu      sync.Mutex
	owned   map[int]bool
	lost    bool          // a partition's lease was lost since the run began: abort the run
	changed chan struct{} // (1) the owned set changed
	running map[int]bool  // the partitions the current run covers
	ended   chan struct{} // closed when the current run ends
}

func newPartSet() *partSet {
	return &partSet{owned: map[int]bool{}, changed: make(chan struct{}, 1), running: map[int]bool{}, ended: make(chan struct{})}
}

func (ps *partSet) signal() {
	select {
	case ps.changed <- struct{}{}:
	default:
	}
}

// own is partition p's lease unit: p joins the set until ctx ends; then it leaves, and own
// returns once no run covers it any more (gracefully stopped, or aborted if the lease was
// lost), so that the lease is released only after its work stopped.
func (ps *partSet) own(ctx context.Context, p int) error {
	ps.mu.Lock()
	ps.owned[p] = true
	ps.mu.Unlock()
	ps.signal()
	<-ctx.Done()
	ps.mu.Lock()
	delete(ps.owned, p)
	if errors.Is(context.Cause(ctx), lease.ErrLost) {
		ps.lost = true
	}
	ps.mu.Unlock()
	ps.signal()
	for {
		ps.mu.Lock()
		covered, ended := ps.running[p], ps.ended
		ps.mu.Unlock()
		if !covered {
			return nil
		}
		<-ended
	}
}

// begin takes the owned set (sorted) as the next run's.
func (ps *partSet) begin() []int {
	select {
	case <-ps.changed: // what changed so far is in the snapshot
	default:
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var set []int
	for p := range ps.owned {
		set = append(set, p)
	}
	slices.Sort(set)
	ps.lost, ps.running = false, map[int]bool{}
	for _, p := range set {
		ps.running[p] = true
	}
	return set
}

// end records that the current run stopped.
func (ps *partSet) end() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.running = map[int]bool{}
	close(ps.ended)
	ps.ended = make(chan struct{})
}

func (ps *partSet) wasLost() bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.lost
}

// settle is how long runParts waits after a change of the owned set before it starts a run:
// the partitions an instance takes in one lease round then start in one run, not one by one.
const settle = 50 * time.Millisecond

// runParts runs task k over the partitions this instance owns, restarting it whenever they
// change: gracefully when one was handed over or another was taken, at once (lease.ErrLost)
// when one was lost. It returns when ctx ends, when the task fails (its error), or when the
// task stops on its own (a test's crash).
func (s *Service) runParts(ctx context.Context, k *task, ps *partSet, split bool) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ps.changed:
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(settle):
		}
		set := ps.begin()
		if len(set) == 0 {
			ps.end()
			continue
		}
		c, err := k.partitions(set, s.views, split)
		if err != nil {
			ps.end()
			return err
		}
		rctx, cancel := context.WithCancelCause(ctx)
		done := make(chan error, 1)
		go func() {
			if c.prog != nil && !split && c.prog.WaitLoaded(rctx) != nil {
				done <- nil
				return
			}
			done <- s.runTask(rctx, c)
		}()
		onItsOwn := false
		select {
		case <-ps.changed:
			if ps.wasLost() {
				cancel(lease.ErrLost)
			} else {
				cancel(nil)
			}
			err = <-done
			ps.signal() // start the next run with what is owned now
		case err = <-done:
			onItsOwn = ctx.Err() == nil
		case <-ctx.Done():
			cancel(nil)
			err = <-done
		}
		if err != nil && !onItsOwn && ctx.Err() == nil && errors.Is(err, context.Canceled) {
			err = nil // the run was stopped here for a new set: nothing failed
		}
		cancel(nil)
		ps.end()
		if onItsOwn && err == nil {
			return errTaskStopped
		}
		if err != nil || ctx.Err() != nil {
			return err
		}
	}
}

// errTaskStopped: a task stopped on its own (a test's crash); the windower stops with it.
var errTaskStopped = errors.New("windower: a task stopped on its own")

// checkPlacement refuses to run a table whose saved state was built by the other arrangement
// (fused, or reading its derived input stream): its groups count the inputs of another stream,
// by that stream's sequence numbers.
func (s *Service) checkPlacement(ctx context.Context, state jetstream.KeyValue) error {
	for _, k := range s.tasks {
		for _, t := range k.tables {
			other := ""
			switch {
			case t.step.FusedFrom != nil:
				other = t.step.Input.Stream
			case !t.step.TableInput && t.step.Input.Producer != nil && t.step.Input.Producer.Kind == plan.Transform:
				other = plan.RootOf(t.step.Input).Stream
			}
			if other == "" || other == k.source {
				continue
			}
			e, err := state.Get(ctx, progressKey(other))
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				e, err = state.Get(ctx, progressKey(other)+".p0") // partitioned
			}
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("progress of %s: %w", other, err)
			}
			var cp progress
			if json.Unmarshal(e.Value(), &cp) != nil {
				continue
			}
			if _, ok := cp.Tables[t.spec.Name]; ok {
				want := "--fuse=false"
				if t.step.FusedFrom == nil {
					want = "--fuse=true"
				}
				return fmt.Errorf("table %s: its saved state was built reading stream %s, and this plan reads %s for it (fusion changed); run with %s, the arrangement that built it (moving a table's state between the two is not supported)",
					t.spec.Name, other, k.source, want)
			}
		}
	}
	return nil
}

// savedPartitions is the number of partitions task k's saved state is spread over (0: no state).
func savedPartitions(ctx context.Context, state jetstream.KeyValue, k *task) int {
	if e, err := state.Get(ctx, progressKey(k.name())+".p0"); err == nil {
		var cp progress
		if json.Unmarshal(e.Value(), &cp) == nil {
			return max(cp.Parts, 2)
		}
	} else if _, err := state.Get(ctx, progressKey(k.name())); err == nil {
		return 1
	}
	return 0
}

// checkPartitions refuses to run a task whose saved state was spread over another number of
// partitions: its groups would be found by their new owners, but each partition's progress
// (stream time, the input it has applied) would start over. Changing PARTITIONS is a rebuild.
// A task whose number was not chosen (plan.Plan.KeepSavedPartitions, no PARTITIONS) keeps the
// number its state was built with.
func (s *Service) checkPartitions(ctx context.Context, state jetstream.KeyValue) error {
	for _, k := range s.tasks {
		saved := savedPartitions(ctx, state, k)
		if saved == 0 || saved == max(k.parts, 1) {
			continue
		}
		var names []string
		given := false
		for _, t := range k.tables {
			names = append(names, t.spec.Name)
			given = given || s.deps.Pipeline().PartitionsGiven(t.step)
		}
		if !given && len(k.tables) > 0 {
			s.log.Info("keeping the number of partitions the tables' state was built with (--partitions or PARTITIONS changes it, with --rebuild)",
				"task", k.name(), "partitions", saved, "tables", strings.Join(names, ","))
			k.parts = saved
			for _, t := range k.tables {
				t.parts = saved
			}
			continue
		}
		return fmt.Errorf("the saved state of %s (task %s) is spread over %d partition(s), this plan has %d: run with the same PARTITIONS (or --partitions), or rebuild the tables (--rebuild %s)",
			strings.Join(names, ", "), k.name(), saved, max(k.parts, 1), strings.Join(names, ","))
	}
	return nil
}

// splitRebuilt gives every table rebuilt with RebuildTable a task of its own: it reads its
// source from the start while the other tables of that source go on where they are.
func (s *Service) splitRebuilt(ctx context.Context, state jetstream.KeyValue) error {
	var out []*task
	for _, k := range s.tasks {
		if k.own != "" {
			out = append(out, k)
			continue
		}
		var kept []*tableState
		for _, t := range k.tables {
			_, err := state.Get(ctx, ownKey(t.spec.Name))
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound):
				kept = append(kept, t)
				continue
			case err != nil:
				return fmt.Errorf("state of %s: %w", t.spec.Name, err)
			}
			own := *k
			own.tables, own.own, own.dirty, own.starts, own.parts = []*tableState{t}, t.spec.Name, nil, nil, t.parts
			own.row = make(sqlrt.Row, len(k.row))
			own.dec = sqlrt.NewDecoder(k.in.Columns)
			// Its own program (a Program is not shared between goroutines); it publishes
			// nothing: the source's task does.
			if err := own.wire(k.steps, s.views, false); err != nil {
				return err
			}
			out = append(out, &own)
		}
		if len(kept) > 0 || k.steps != nil {
			k.tables, k.parts = kept, 1
			for _, t := range kept {
				k.parts = max(k.parts, t.parts)
			}
			if err := k.wire(k.steps, s.views, true); err != nil {
				return err
			}
			out = append(out, k)
		}
	}
	s.tasks = out
	return nil
}

func (s *Service) runTask(ctx context.Context, k *task) error {
	var names []string
	for _, t := range k.tables {
		name := fmt.Sprintf("%s(grace %s)", t.spec.Name, time.Duration(t.grace)*time.Millisecond)
		if !slices.Contains(names, name) { // one tableState per partition: name each table once
			names = append(names, name)
		}
	}
	msg, stream, resume, checkpointKey, batch := "aggregating", k.source, k.resume, "", s.cfg.BatchSize
	switch k.mode {
	case modeWork:
		msg, stream = "aggregating shuffled rows", topology.ShuffleStream(k.source)
		checkpointKey = k.durable() + "." + stream
		// A shuffle message holds up to maxShuffleBytes of rows (a router's batch): a pull of
		// a few of them is thousands of inputs, and a thousand could be 256 MiB.
		batch = max(1, min(batch, shuffleBatch))
	case modeRoute:
		msg, resume = "routing to partitions", k.routerResume
	}
	s.log.Info(msg, "source", k.source, "task", k.name(), "stream", stream, "partitions", fmt.Sprint(k.set), "tables", strings.Join(names, " "))
	// The consumers named after the set's other partitions were their last owners' (when
	// each was the lowest of a set): this task reads for them now. A router reads for every
	// partition: the source's partition consumers are from before the reading was split.
	stale := k.set[min(1, len(k.set)):]
	if k.mode == modeRoute {
		stale = nil
		for p := range max(k.parts, 1) {
			stale = append(stale, p)
		}
	}
	for _, p := range stale {
		name := "windower-" + k.name() + "-p" + strconv.Itoa(p)
		if err := k.js.DeleteConsumer(ctx, stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			s.log.Warn("stale consumer not deleted", "consumer", name, "err", err)
		}
	}
	err := flow.Run(ctx, k.js, flow.Options{
		Service:       "windower",
		Stream:        stream,
		Durable:       k.durable(),
		CheckpointKey: checkpointKey,
		// Where to resume is the oldest progress of the set's partitions, not the checkpoint
		// of a consumer whose name other sets have used (a router: its checkpoint).
		Resume:   resume,
		Ordered:  k.ordered(),
		Batch:    batch,
		InFlight: s.cfg.InFlight,
		Tick:     tick(s.cfg),
		Log:      s.log,
	}, k)
	if errors.Is(err, errCrashed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", k.source, err)
	}
	return nil
}

func tick(c Config) time.Duration {
	t := c.FlushInterval
	if c.IdleTimeout > 0 && c.IdleTimeout < t {
		t = c.IdleTimeout
	}
	return max(t, 50*time.Millisecond)
}

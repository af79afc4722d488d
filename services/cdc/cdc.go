// Package cdc is the Debezium CDC reader: it materialises the table CUSTOMERS (KV bucket, key =
// id) from the change events Debezium's MySQL connector writes for demo.CUSTOMERS, whether they
// come straight from Debezium Server's NATS JetStream sink or from Kafka through the bridge.
//
// The reader is a shared/flow handler (durable "cdc"): the runtime owns the consumer, resumes
// it in order from its checkpoint (JETSUITE_CHECKPOINTS, key "cdc"), publishes the KV writes a
// batch causes and acks the batch only after JetStream has every one of them. What is the
// reader's own is what those writes are.
//
// Replays and duplicates are harmless: every row remembers the binlog position (file, pos, row)
// of the change that wrote it, deleted keys and truncates keep theirs in CDC_STATE, and an event
// whose position is not newer than the key's is skipped. The positions live in memory (loaded
// from both buckets by watchers at start, and again when the runtime resumes after a batch whose
// writes were not confirmed, since memory may then be ahead of the buckets).
package cdc

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/flow"
	"github.com/jetsuite/jetsuite/shared/kvx"
	"github.com/jetsuite/jetsuite/shared/lease"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/topology"
)

const service = "cdc"

// Events counts change events by what the reader did with them: applied, duplicate (same
// position as the key's), stale (older position), ignored (tombstones, schema changes).
var Events = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "jetsuite_cdc_events_total", Help: "Debezium change events by outcome (applied, duplicate, stale, ignored).",
}, []string{"outcome", "op"})

// Config is the reader's configuration.
type Config struct {
	// Stream is the JetStream stream Debezium writes to (Debezium Server's default DebeziumStream).
	Stream string
	// Subjects are the filter subjects (Debezium's topic names) holding demo.CUSTOMERS events.
	Subjects []string
	// Table is the KV bucket to materialise (CUSTOMERS).
	Table string
	// TombstoneDeletes makes a keyed tombstone delete its key (for ExtractNewRecordState's default
	// delete.tombstone.handling.mode=tombstone, where the d event itself is dropped).
	TombstoneDeletes bool
	// Batch is the largest batch.
	Batch int
}

// DefaultConfig is the configuration without flags or environment: the declared defaults.
func DefaultConfig() Config {
	var c Config
	c.Bind(config.Defaults(service))
	return c
}

// Bind declares the settings on b.
func (c *Config) Bind(b runner.Binder) {
	b.String(&c.Stream, "stream", "",
		"JetStream stream holding Debezium change events (default: the stream of the pipeline's VALUE_FORMAT='DEBEZIUM_JSON' table, DebeziumStream)").
		Was("CDC_STREAM", "")
	b.List(&c.Subjects, "subjects", nil,
		"subjects with the table's change events, comma-separated (default: the table's KAFKA_TOPIC, asgard.demo.CUSTOMERS in the demo)").
		Was("CDC_SUBJECTS", "")
	b.Bool(&c.TombstoneDeletes, "tombstone-deletes", false,
		"treat a keyed tombstone as a delete (flattened events with delete.tombstone.handling.mode=tombstone)").
		Was("CDC_TOMBSTONE_DELETES", "")
	b.Int(&c.Batch, "batch", 1000, "largest batch of change events applied at once").Positive().Was("CDC_BATCH", "")
}

// Spec describes the service to the jetsuite binary.
func Spec() runner.Spec {
	return runner.Spec{
		Name:    service,
		Summary: "Debezium CDC reader: materialises the pipeline's DEBEZIUM_JSON table (KV CUSTOMERS from asgard.demo.CUSTOMERS in the demo)",
		InAll:   true,
		Bind: func(b runner.Binder) func(runner.Deps) (runner.Service, error) {
			var cfg Config
			cfg.Bind(b)
			return func(d runner.Deps) (runner.Service, error) { return NewFromPlan(d, cfg) }
		},
	}
}

// keyState is what the reader remembers per customer id.
type keyState struct {
	pos     position
	present bool
	// deletedRecord says CDC_STATE holds deleted.<id> for this key.
	deletedRecord bool
}

// Reader is the CDC service: a flow.Handler (with Starter and Committer).
type Reader struct {
	cfg   Config
	js    jetstream.JetStream
	deps  runner.Deps
	log   *slog.Logger
	ready *obs.ReadyFlag
	keys  map[string]keyState
	floor position // position of the newest truncate
	// writes are the current batch's KV writes per subject, coalesced so that a key gets one
	// write per batch (order holds the subjects in first-write order).
	writes map[string]kvWrite
	order  []string
	// handled is the newest input handed to Handle; committed the newest whose writes are
	// durable (set by the runtime's acker goroutine). handled > committed at a resume means
	// memory may hold positions the buckets lack: stale then reloads them before the next batch.
	handled   uint64
	committed atomic.Uint64
	stale     bool
	// idle: the pipeline has no DEBEZIUM_JSON table.
	idle bool
}

// kvWrite is one queued KV write (del: a delete marker).
type kvWrite struct {
	bucket, key string
	value       []byte
	del         bool
}

// NewFromPlan returns the reader of the pipeline's table declared over Debezium change events
// (VALUE_FORMAT='DEBEZIUM_JSON'): its stream, subject and bucket are the defaults of Stream,
// Subjects and Table. A pipeline without such a table gets a reader that idles; more than one
// is refused (one reader keeps one table's positions today).
func NewFromPlan(d runner.Deps, cfg Config) (*Reader, error) {
	steps := d.Pipeline().StepsOf(plan.ServiceCDC)
	if len(steps) > 1 {
		return nil, fmt.Errorf("cdc: the pipeline declares %d DEBEZIUM_JSON tables (%s, %s, ...); one is supported", len(steps), steps[0].Name, steps[1].Name)
	}
	if len(steps) == 0 {
		r := New(d, cfg)
		r.idle = true
		return r, nil
	}
	return New(d, cfg), nil
}

// New returns a reader. Settings left empty take their values from the pipeline (Deps.Plan,
// or the built-in demos).
func New(d runner.Deps, cfg Config) *Reader {
	if steps := d.Pipeline().StepsOf(plan.ServiceCDC); len(steps) > 0 {
		st := steps[0]
		if cfg.Stream == "" {
			cfg.Stream = st.Input.Stream
		}
		if len(cfg.Subjects) == 0 {
			cfg.Subjects = []string{st.Input.Subject}
		}
		if cfg.Table == "" {
			cfg.Table = st.Output.Bucket
		}
	}
	// A Config built in code may leave settings zero: they get the declared defaults (values
	// from flags and environment were validated at start).
	def := DefaultConfig()
	if cfg.Stream == "" {
		cfg.Stream = def.Stream
	}
	if len(cfg.Subjects) == 0 {
		cfg.Subjects = def.Subjects
	}
	if cfg.Table == "" {
		cfg.Table = def.Table
	}
	if cfg.Batch <= 0 {
		cfg.Batch = def.Batch
	}
	r := &Reader{cfg: cfg, js: d.JS, deps: d, log: d.Logger(service), ready: obs.NewReadyFlag("loading " + cfg.Table + " and CDC_STATE")}
	if d.Health != nil {
		d.Health.Register(service, r.ready.Check)
	}
	return r
}

// Name implements runner.Service.
func (r *Reader) Name() string { return service }

// Run loads the positions, then applies change events until ctx ends.
func (r *Reader) Run(ctx context.Context) error {
	if r.idle {
		r.ready.Set()
		r.log.Info("no table over Debezium change events in the pipeline: the CDC reader has nothing to do")
		<-ctx.Done()
		return nil
	}
	// The reader is a unit of work shared with the other CDC readers (shared/lease): one
	// instance at a time applies the change events. It loads the table and its positions
	// each time it starts, since another instance may have applied events since.
	r.ready.Set()
	return r.deps.Share(ctx, service, lease.Unit{Name: service, Run: func(ctx context.Context) error {
		if err := r.load(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		r.handled, r.stale = 0, false
		r.committed.Store(0)
		r.log.Info("CDC reader started", "stream", r.cfg.Stream, "subjects", strings.Join(r.cfg.Subjects, ","),
			"table", r.cfg.Table, "keys", len(r.keys))
		return flow.Run(ctx, r.js, flow.Options{
			Service: service,
			Stream:  r.cfg.Stream,
			Filters: r.cfg.Subjects,
			// Unchanged from the hand-written loop, so that the first start after the upgrade
			// resumes from that consumer's ack floor (the runtime's fallback before its first
			// checkpoint); the old CDC_STATE checkpoint.<stream> key is no longer read.
			Durable: service,
			Batch:   r.cfg.Batch,
			Log:     r.log,
		}, r)
	}})
}

// Start implements flow.Starter.
func (r *Reader) Start(_ context.Context, checkpoint uint64) error {
	if r.handled > r.committed.Load() {
		r.stale = true
	}
	r.log.Info("consuming change events", "resume_after_seq", checkpoint, "reload_positions", r.stale)
	return nil
}

// Committed implements flow.Committer.
func (r *Reader) Committed(_ context.Context, seq uint64) { r.committed.Store(seq) }

// load reads both buckets through watchers (initial values up to the nil marker).
func (r *Reader) load(ctx context.Context) error {
	r.keys, r.floor = map[string]keyState{}, position{}
	err := kvx.Load(ctx, r.js, r.cfg.Table, "", func(e jetstream.KeyValueEntry) error {
		r.keys[e.Key()] = keyState{pos: rowPosition(e.Value()), present: true}
		return nil
	})
	if err != nil {
		return err
	}
	return kvx.Load(ctx, r.js, topology.BucketCDCState, "", func(e jetstream.KeyValueEntry) error {
		k := e.Key()
		switch {
		case k == "truncated":
			var rec posRecord
			if json.Unmarshal(e.Value(), &rec) == nil {
				r.floor = rec.position()
			}
		case strings.HasPrefix(k, "deleted."):
			var rec posRecord
			if json.Unmarshal(e.Value(), &rec) != nil {
				return nil
			}
			id, p := strings.TrimPrefix(k, "deleted."), rec.position()
			st := r.keys[id]
			st.deletedRecord = true
			if !st.pos.Valid || (p.Valid && p.compare(st.pos) > 0) {
				st.pos, st.present = p, false
			}
			r.keys[id] = st
		}
		return nil
	})
}

// Handle implements flow.Handler: it applies a batch of change events and adds the KV writes
// they cause (one per key) and the dead letters of bad input to out.
func (r *Reader) Handle(ctx context.Context, in []jetstream.Msg, out *flow.Out) error {
	if len(in) == 0 {
		return nil
	}
	if r.stale {
		if err := r.load(ctx); err != nil {
			// NATS is likely away: the runtime resumes from the checkpoint after the backoff
			// and this batch comes again.
			return flow.Retry(0, time.Second, fmt.Errorf("reload positions: %w", err))
		}
		r.stale = false
	}
	if md, err := in[len(in)-1].Metadata(); err == nil {
		r.handled = md.Sequence.Stream
	}
	clear(r.writes)
	if r.writes == nil {
		r.writes = map[string]kvWrite{}
	}
	r.order = r.order[:0]
	for _, m := range in {
		c, err := decode(m.Data(), m.Headers(), r.cfg.TombstoneDeletes)
		if err != nil {
			if err := out.DeadLetter(m, err); err != nil {
				return err
			}
			continue
		}
		r.apply(c)
	}
	for _, subj := range r.order {
		w := r.writes[subj]
		var err error
		if w.del {
			err = out.Delete(w.bucket, w.key, "")
		} else {
			err = out.Put(w.bucket, w.key, w.value, "")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// put and del queue a KV write; the last write per key in a batch wins, so that a retried
// publish can never land after a newer write to the same key.
func (r *Reader) put(bucket, key string, v []byte) { r.queue(kvWrite{bucket, key, v, false}) }
func (r *Reader) del(bucket, key string)           { r.queue(kvWrite{bucket, key, nil, true}) }

func (r *Reader) queue(w kvWrite) {
	subj := topology.KVSubject(w.bucket, w.key)
	if _, ok := r.writes[subj]; !ok {
		r.order = append(r.order, subj)
	}
	r.writes[subj] = w
}

// fresh says whether an event at pos for key is newer than what the table holds. Events without
// a position (flattened without source fields) are applied in arrival order.
func (r *Reader) fresh(key string, pos position) (bool, string) {
	if !pos.Valid {
		return true, ""
	}
	if r.floor.Valid && pos.compare(r.floor) <= 0 {
		return false, "stale"
	}
	st, ok := r.keys[key]
	if !ok || !st.pos.Valid {
		return true, ""
	}
	switch pos.compare(st.pos) {
	case 0:
		return false, "duplicate"
	case -1:
		return false, "stale"
	}
	return true, ""
}

func (r *Reader) apply(c change) {
	switch c.kind {
	case kindIgnore:
		Events.WithLabelValues("ignored", c.why).Inc()
	case kindTruncate:
		if c.pos.Valid {
			if r.floor.Valid && c.pos.compare(r.floor) <= 0 {
				Events.WithLabelValues("stale", "t").Inc()
				return
			}
			r.floor = c.pos
			rec, _ := json.Marshal(c.pos.record())
			r.put(topology.BucketCDCState, "truncated", rec)
		}
		n := 0
		for k, st := range r.keys {
			if st.present {
				st.present, st.pos = false, c.pos
				r.keys[k] = st
				r.del(r.cfg.Table, k)
				n++
			}
		}
		Events.WithLabelValues("applied", "t").Inc()
		r.log.Info("table truncated", "table", r.cfg.Table, "rows_deleted", n, "position", c.pos.String())
	case kindUpsert, kindDelete:
		if c.oldKey != "" {
			if ok, _ := r.fresh(c.oldKey, c.pos); ok {
				r.remove(c.oldKey, c.pos)
			}
		}
		if ok, why := r.fresh(c.key, c.pos); !ok {
			Events.WithLabelValues(why, c.op).Inc()
			return
		}
		if c.kind == kindDelete {
			r.remove(c.key, c.pos)
		} else {
			r.upsert(c)
		}
		Events.WithLabelValues("applied", c.op).Inc()
	}
}

func (r *Reader) remove(key string, pos position) {
	st := r.keys[key]
	st.present, st.pos = false, pos
	r.del(r.cfg.Table, key)
	if pos.Valid {
		rec, _ := json.Marshal(pos.record())
		r.put(topology.BucketCDCState, "deleted."+key, rec)
		st.deletedRecord = true
	} else if st.deletedRecord {
		r.del(topology.BucketCDCState, "deleted."+key)
		st.deletedRecord = false
	}
	r.keys[key] = st
}

func (r *Reader) upsert(c change) {
	st := r.keys[c.key]
	row := make(map[string]json.RawMessage, len(c.row)+5)
	for k, v := range c.row {
		// ksqlDB's column names are upper case (ID, FIRST_NAME, ...).
		row[strings.ToUpper(k)] = v
	}
	if c.pos.Valid {
		row[colSourceFile], _ = json.Marshal(c.pos.File)
		row[colSourcePos] = json.RawMessage(strconv.FormatInt(c.pos.Pos, 10))
		row[colSourceRow] = json.RawMessage(strconv.FormatInt(c.pos.Row, 10))
	}
	if c.tsMs != 0 {
		row[colSourceTs] = json.RawMessage(strconv.FormatInt(c.tsMs, 10))
	}
	if c.op != "" {
		row[colOp], _ = json.Marshal(c.op)
	}
	v, err := json.Marshal(row)
	if err != nil {
		// Raw values came from a parsed document, so this cannot happen; say so if it does.
		r.log.Error("encode row", "key", c.key, "err", err)
		return
	}
	r.put(r.cfg.Table, c.key, v)
	if st.deletedRecord {
		// The key lives again; its delete record is superseded by the row's own position.
		r.del(topology.BucketCDCState, "deleted."+c.key)
	}
	r.keys[c.key] = keyState{pos: c.pos, present: true}
}

var (
	_ runner.Service = (*Reader)(nil)
	_ flow.Handler   = (*Reader)(nil)
	_ flow.Starter   = (*Reader)(nil)
	_ flow.Committer = (*Reader)(nil)
)

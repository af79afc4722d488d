package jetsuite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/services/generator"
	"github.com/jetsuite/jetsuite/services/windower"
	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// loadPlan compiles the pipeline the running jetsuite executes, as `jetsuite all` does: the
// built-in demos, or the user's --queries-file; fused unless jetsuite runs with --fuse=false.
// The plan is the single source of truth for which streams the pipeline has and which of
// them its steps read; the running server says which consumers exist on them.
func loadPlan(file string, fuse bool) (*plan.Plan, error) {
	p := plan.Demo()
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("queries file: %w", err)
		}
		if p, err = plan.Compile(plan.File{Name: file, SQL: string(b)}); err != nil {
			return nil, err
		}
	}
	if fuse {
		p.Fuse()
	}
	return p, nil
}

// streamsOf are the JetStream streams of the plan's objects, upstream first: a statement
// only reads objects declared before it, so declaration order is a topological order.
func streamsOf(p *plan.Plan) []string {
	var out []string
	seen := map[string]bool{}
	for _, o := range p.Objects {
		if o.Stream != "" && !seen[o.Stream] {
			seen[o.Stream] = true
			out = append(out, o.Stream)
		}
	}
	return out
}

// readersOf maps each stream a step of the plan reads to the steps that read it. A fused
// step reads the source its windower task runs on. Steps over a table read the table's
// bucket through a watcher, not a durable consumer, and are left out.
func readersOf(p *plan.Plan) map[string][]string {
	out := map[string][]string{}
	for _, st := range p.Steps {
		in := st.Input
		if st.FusedFrom != nil {
			in = st.FusedFrom
		}
		if st.TableInput || in == nil || in.Stream == "" {
			continue
		}
		out[in.Stream] = append(out[in.Stream], st.Name)
	}
	return out
}

// ConsumerLag is what one durable consumer has still to do.
type ConsumerLag struct {
	Stream   string `js:"stream"`
	Consumer string `js:"consumer"`
	Lag      uint64 `js:"lag"`
}

// Lag is the pipeline's backlog: every durable consumer on a stream of the plan (the
// services' consumers, and the sinks'), and the streams a step of the plan reads that no
// durable consumer reads (the service that runs the step is not running).
type Lag struct {
	// Total is the sum of NumPending + NumAckPending over Consumers.
	Total     uint64        `js:"total"`
	Consumers []ConsumerLag `js:"consumers"`
	// Missing: "STREAM (read by A, B)" for each stream the plan's steps read without a consumer.
	Missing []string `js:"missing"`
	// CaughtUp: Total is 0 and nothing is missing.
	CaughtUp bool `js:"caughtUp"`
	// Text says where the lag is, for a log line: "enricher-clickstream 1200 on CLICKSTREAM, ...".
	Text string `js:"text"`
}

// PipelineLag reads the lag of every durable consumer on the plan's streams, upstream streams
// first: an input is acked only after its outputs are stored, so once an upstream consumer
// reads 0, what it produced is already counted downstream when that is read after it.
func (c *Conn) PipelineLag(ctx context.Context) (Lag, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var l Lag
	read := map[string]bool{}
	for _, name := range c.streams {
		s, err := c.js.Stream(ctx, name)
		if err != nil {
			return Lag{}, fmt.Errorf("stream %s of the plan: %w", name, err)
		}
		list := s.ListConsumers(ctx)
		var here []ConsumerLag
		for ci := range list.Info() {
			// Ephemeral consumers are the services' KV watchers and clients' queries.
			if ci.Config.Durable == "" {
				continue
			}
			here = append(here, ConsumerLag{Stream: name, Consumer: ci.Name, Lag: ci.NumPending + uint64(ci.NumAckPending)})
		}
		if err := list.Err(); err != nil {
			return Lag{}, fmt.Errorf("consumers of %s: %w", name, err)
		}
		sort.Slice(here, func(i, j int) bool { return here[i].Consumer < here[j].Consumer })
		for _, cl := range here {
			l.Total += cl.Lag
			read[name] = true
		}
		l.Consumers = append(l.Consumers, here...)
	}
	for _, name := range c.streams {
		if steps := c.readers[name]; len(steps) > 0 && !read[name] {
			l.Missing = append(l.Missing, name+" (read by "+strings.Join(steps, ", ")+")")
		}
	}
	l.CaughtUp = l.Total == 0 && len(l.Missing) == 0
	l.Text = l.describe()
	return l, nil
}

func (l Lag) describe() string {
	var parts []string
	for _, cl := range l.Consumers {
		if cl.Lag > 0 {
			parts = append(parts, cl.Consumer+" "+strconv.FormatUint(cl.Lag, 10)+" on "+cl.Stream)
		}
	}
	for _, m := range l.Missing {
		parts = append(parts, "no consumer reads "+m)
	}
	if len(parts) == 0 {
		return "every consumer caught up"
	}
	return strings.Join(parts, ", ")
}

// Pipeline is what CheckPipeline found.
type Pipeline struct {
	Streams   int `js:"streams"`
	Consumers int `js:"consumers"`
	Lag       Lag `js:"lag"`
}

// CheckPipeline tells whether a jetsuite with this plan serves this NATS: every stream of the
// plan exists, and a consumer reads each stream the plan's steps read. A load against
// anything else would publish into nothing (no stream: no acks) or measure nothing.
func (c *Conn) CheckPipeline(ctx context.Context) (Pipeline, error) {
	tctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var absent []string
	for _, name := range c.streams {
		if _, err := c.js.Stream(tctx, name); errors.Is(err, jetstream.ErrStreamNotFound) {
			absent = append(absent, name)
		} else if err != nil {
			return Pipeline{}, fmt.Errorf("stream %s: %w", name, err)
		}
	}
	if len(absent) > 0 {
		return Pipeline{}, fmt.Errorf("%s has no stream %s of the plan: is jetsuite running there (jetsuite all), with the same --queries-file (QUERIES_FILE)?",
			redact(c.cfg.URL), strings.Join(absent, ", "))
	}
	l, err := c.PipelineLag(ctx)
	if err != nil {
		return Pipeline{}, err
	}
	if len(l.Missing) > 0 {
		return Pipeline{}, fmt.Errorf("the pipeline is not running: no consumer reads %s (every service of `jetsuite all` enabled? FUSE=false if jetsuite runs with --fuse=false)",
			strings.Join(l.Missing, "; "))
	}
	return Pipeline{Streams: len(c.streams), Consumers: len(l.Consumers), Lag: l}, nil
}

// redact drops the user and password of a NATS URL for messages: no secrets in logs.
func redact(u string) string {
	var out []string
	for _, one := range strings.Split(u, ",") {
		if p, err := url.Parse(strings.TrimSpace(one)); err == nil && p.User != nil {
			p.User = nil
			one = p.String()
		}
		out = append(out, one)
	}
	return strings.Join(out, ",")
}

// Marker is one end-to-end measurement (JS: {ok, ms, interrupted, error}).
type Marker struct {
	OK bool `js:"ok"`
	// Ms: from the marker's publish to its table row arriving at a KV watcher.
	Ms float64 `js:"ms"`
	// Interrupted: the VU's context ended (the scenario stopped) before the row came.
	Interrupted bool   `js:"interrupted"`
	Err         string `js:"error"`
}

// markerUserBase: marker clicks carry a userid of 1,000,000,000 or more, which no datagen
// click has (-1..39); EVENTS_PER_MIN counts per userid, so each marker makes a row of its own.
const markerUserBase = 1_000_000_000

// MarkClick publishes one marker click and waits, at most timeout, until its EVENTS_PER_MIN
// row appears: the latency a user sees from publish to table row, queueing behind the load
// included. The marker is a datagen click with its own userid, a non-html request and status
// 200, so it adds one row to EVENTS_PER_MIN and one count to the 200s of
// ENRICHED_ERROR_CODES_COUNT, and nothing elsewhere (its username is unknown).
func (c *Conn) MarkClick(ctx context.Context, timeout time.Duration) Marker {
	tbl := c.plan.Object(topology.TableEventsPerMin)
	if tbl == nil || tbl.Window == nil || tbl.Window.Size <= 0 {
		return Marker{Err: "the plan has no windowed " + topology.TableEventsPerMin + " (the clickstream demo's) for markers"}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fail := func(err error) Marker {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return Marker{Interrupted: true, Err: "interrupted"}
		}
		return Marker{Err: err.Error()}
	}
	kv, err := c.js.KeyValue(ctx, tbl.Bucket)
	if err != nil {
		return fail(fmt.Errorf("table %s: %w", tbl.Bucket, err))
	}
	n := markerSeq.Add(1)
	uid := markerUserBase + rand.IntN(1_000_000_000)
	start := time.Now()
	evt := start.UnixMilli()
	size := tbl.Window.Size.Milliseconds()
	key := windower.RowKey(strconv.Itoa(uid), evt-evt%size)
	// Watch first, so the row cannot come before the watcher.
	w, err := kv.Watch(ctx, key)
	if err != nil {
		return fail(fmt.Errorf("watch %s %s: %w", tbl.Bucket, key, err))
	}
	defer func() { _ = w.Stop() }()
	rec := generator.Click(c.cfg.Seed, n)
	rec.UserID = uid
	rec.Request = "GET /k6-marker HTTP/1.1"
	rec.Status = "200"
	data, err := json.Marshal(rec)
	if err != nil {
		return fail(err)
	}
	start = time.Now()
	if _, err := c.js.PublishMsg(ctx, &nats.Msg{Subject: topology.SubjectClickstream, Data: data, Header: nats.Header{
		events.HeaderEventTime: {strconv.FormatInt(evt, 10)},
		events.HeaderMsgID:     {"k6:" + runID + ":marker:" + strconv.FormatUint(n, 10)},
		events.HeaderKey:       {rec.IP},
	}}); err != nil {
		return fail(fmt.Errorf("publish marker: %w", err))
	}
	for {
		select {
		case e := <-w.Updates():
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue // the end of the (empty) initial values
			}
			return Marker{OK: true, Ms: float64(time.Since(start).Microseconds()) / 1000}
		case <-ctx.Done():
			return fail(fmt.Errorf("no %s row for the marker (userid %d) within %v", tbl.Bucket, uid, timeout))
		}
	}
}

var markerSeq atomic.Uint64

// Stats are the events every VU of this k6 process published (markers and reference data
// not included): teardown divides them by the load phase's length.
type Stats struct {
	Published uint64 `js:"published"`
	Failed    uint64 `js:"failed"`
	// LastAckMs is when the newest acked batch got its last ack (epoch ms; 0: none yet).
	LastAckMs int64 `js:"lastAckMs"`
}

var stats struct {
	published, failed atomic.Uint64
	lastAck           atomic.Int64
}

func countBatch(b Batch) {
	stats.published.Add(uint64(b.Acked))
	stats.failed.Add(uint64(b.Failed))
	if b.Acked > 0 {
		now := time.Now().UnixMilli()
		for {
			old := stats.lastAck.Load()
			if old >= now || stats.lastAck.CompareAndSwap(old, now) {
				break
			}
		}
	}
}

func currentStats() Stats {
	return Stats{Published: stats.published.Load(), Failed: stats.failed.Load(), LastAckMs: stats.lastAck.Load()}
}

// results hold what one VU finds for another (k6 VUs share no JS state): the ramp's monitor
// hands its findings to teardown, and tells the load VUs to stop.
var results struct {
	sync.Mutex
	m map[string]any
}

func setResult(k string, v any) {
	results.Lock()
	defer results.Unlock()
	if results.m == nil {
		results.m = map[string]any{}
	}
	results.m[k] = v
}

func getResult(k string) any {
	results.Lock()
	defer results.Unlock()
	return results.m[k]
}

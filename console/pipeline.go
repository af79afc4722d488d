package console

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/ksql"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// The pipeline graph is the plan: one node per stream and table (a source stream, a
// statement's derived stream, a table) and per sink connector, and the source connectors that
// run outside jetsuite; edges go from what a statement reads (its input, its join's table) to
// what it writes, and from the objects a sink reads to the sink.

// Node is one node of the graph.
type Node struct {
	ID string `json:"id"`
	// Kind: source (a stream declared over a subject), statement (CREATE STREAM ... AS
	// SELECT), table (declared over a subject, or CREATE TABLE ... AS SELECT), sink, external
	// (a source connector that runs outside jetsuite).
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Service string `json:"service,omitempty"`
	Stream  string `json:"stream,omitempty"`
	Subject string `json:"subject,omitempty"`
	Bucket  string `json:"bucket,omitempty"`
	Key     string `json:"key,omitempty"`
	Window  string `json:"window,omitempty"`
	// Step is what the statement does: LOAD, TRANSFORM or AGGREGATE.
	Step string `json:"step,omitempty"`
	// FusedInto names the source stream whose windower task runs the statement.
	FusedInto string   `json:"fused_into,omitempty"`
	Class     string   `json:"class,omitempty"` // sinks: opensearch, slack, kafka
	Pos       string   `json:"pos,omitempty"`
	SQL       string   `json:"sql"`
	Columns   []string `json:"columns,omitempty"`
}

// Edge is one edge: From feeds To. Kind: input, join (a join's table), sink, external.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
	Kind string `json:"kind"`
}

// Graph is the plan as nodes and edges.
type Graph struct {
	Files []string `json:"files"`
	Nodes []Node   `json:"nodes"`
	Edges []Edge   `json:"edges"`
}

// GraphOf builds the graph of a plan.
func GraphOf(p *plan.Plan) Graph {
	g := Graph{Files: p.Files, Nodes: []Node{}, Edges: []Edge{}}
	for _, o := range p.Objects {
		n := Node{ID: o.Name, Name: o.Name, Stream: o.Stream, Subject: o.Subject, Bucket: o.Bucket,
			Key: strings.Join(o.Key, ", "), Pos: o.Pos.String(), SQL: o.SQL}
		for _, c := range o.Columns {
			n.Columns = append(n.Columns, c.Name)
		}
		switch {
		case o.Kind == ksql.Table:
			n.Kind = "table"
		case o.Producer == nil:
			n.Kind = "source"
		default:
			n.Kind = "statement"
		}
		if o.Window != nil {
			n.Window = string(o.Window.Kind) + " " + o.Window.Size.String()
			if o.Window.Kind == ksql.Hopping {
				n.Window += " / " + o.Window.Advance.String()
			}
		}
		if st := o.Producer; st != nil {
			n.Service, n.Step = st.Service, st.Kind.String()
			if st.FusedFrom != nil {
				n.FusedInto = st.FusedFrom.Name
			}
			if st.Kind != plan.Load && st.Input != nil {
				g.Edges = append(g.Edges, Edge{From: st.Input.Name, To: o.Name, Kind: "input"})
			}
			if st.Join != nil {
				g.Edges = append(g.Edges, Edge{From: st.Join.Table.Name, To: o.Name, Kind: "join"})
			}
		}
		g.Nodes = append(g.Nodes, n)
	}
	for _, s := range p.Sinks {
		id := "sink:" + s.Name
		g.Nodes = append(g.Nodes, Node{ID: id, Kind: "sink", Name: s.Name, Service: s.Service, Class: s.Class,
			Pos: s.Pos.String(), SQL: s.SQL})
		for _, o := range s.Objects {
			g.Edges = append(g.Edges, Edge{From: o.Name, To: id, Kind: "sink"})
		}
	}
	for _, s := range p.External {
		id := "external:" + s.Name
		g.Nodes = append(g.Nodes, Node{ID: id, Kind: "external", Name: s.Name, Class: s.Class, Pos: s.Pos.String(), SQL: s.SQL})
		// A source connector outside jetsuite writes change events: the objects declared over
		// Debezium's format read what it writes.
		for _, o := range p.Objects {
			if o.Source && o.Format == plan.FormatDebeziumJSON {
				g.Edges = append(g.Edges, Edge{From: id, To: o.Name, Kind: "external"})
			}
		}
	}
	return g
}

func (c *Console) pipeline(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, GraphOf(c.o.Plan))
}

// NodeStats are a node's numbers.
type NodeStats struct {
	// Rate: messages (a stream) or row updates (a table) written per second; for a sink, the
	// inputs it acknowledged per second.
	// Nil until two samples a second or more apart exist.
	Rate *float64 `json:"rate"`
	// Total: messages in the stream, entries in the table's bucket.
	Total uint64 `json:"total"`
	// Lag: messages not yet processed (pending and unacknowledged) by the consumer furthest
	// behind among those that run the node's statement, or (a source) that read the node; nil
	// when there is none (the service that runs it is not running anywhere).
	Lag *uint64 `json:"lag"`
	// Late: events that came after their window closed (late.<TABLE>).
	Late uint64 `json:"late"`
	// DeadLetters: inputs of the node's stream that were rejected (dlq.<stream>).
	DeadLetters uint64 `json:"dead_letters"`
	// LastError: the newest warning or error this process logged about the node.
	LastError *LogEntry `json:"last_error,omitempty"`
	// Consumers: the durable consumers the lag was computed from.
	Consumers []ConsumerStat `json:"consumers,omitempty"`
}

// ConsumerStat is one durable consumer.
type ConsumerStat struct {
	Name       string `json:"name"`
	Stream     string `json:"stream"`
	Pending    uint64 `json:"pending"`
	AckPending int    `json:"ack_pending"`
}

// StatsEvent is one event of the pipeline's stream.
type StatsEvent struct {
	Time  time.Time            `json:"time"`
	Nodes map[string]NodeStats `json:"nodes"`
	Error string               `json:"error,omitempty"`
}

// statsPoller reads JetStream's state every statsEvery while someone watches, and computes
// every node's numbers; viewers share its result.
type statsPoller struct {
	ctx    context.Context
	js     jetstream.JetStream
	plan   *plan.Plan
	errors *Recorder
	log    *slog.Logger

	viewers atomic.Int32
	wake    chan struct{}
	mu      sync.Mutex
	latest  *StatsEvent
	changed chan struct{} // closed and replaced on every new result
	started sync.Once

	// history holds the samples of the last rateWindow, oldest first: rates are measured
	// over that span, so that two polls close together (a new viewer wakes the poller) do not
	// make a rate of a handful of messages.
	history []sample
}

type sample struct {
	at   time.Time
	seqs map[string]uint64 // stream -> last sequence
	acks map[string]uint64 // stream/consumer -> ack floor (consumer sequence)
}

const rateWindow = 10 * time.Second

const statsEvery = 2 * time.Second

func newStatsPoller(ctx context.Context, js jetstream.JetStream, p *plan.Plan, errs *Recorder, log *slog.Logger) *statsPoller {
	return &statsPoller{ctx: ctx, js: js, plan: p, errors: errs, log: log, wake: make(chan struct{}, 1),
		changed: make(chan struct{})}
}

func (s *statsPoller) run() {
	t := time.NewTicker(statsEvery)
	defer t.Stop()
	for {
		if s.viewers.Load() > 0 {
			ev := s.poll()
			s.mu.Lock()
			s.latest = ev
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// watch registers a viewer; it returns the channel closed at the next result and a release.
func (s *statsPoller) watch() func() {
	s.started.Do(func() { go s.run() })
	if s.viewers.Add(1) == 1 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return func() { s.viewers.Add(-1) }
}

func (s *statsPoller) current() (*StatsEvent, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest, s.changed
}

func (c *Console) pipelineEvents(w http.ResponseWriter, r *http.Request) {
	release := c.stats.watch()
	defer release()
	es := startEvents(w)
	if es == nil {
		return
	}
	var last *StatsEvent
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		ev, changed := c.stats.current()
		if ev != nil && ev != last {
			if err := es.send("stats", ev); err != nil {
				return
			}
			last = ev
		}
		select {
		case <-r.Context().Done():
			return
		case <-c.ctx.Done():
			return
		case <-changed:
		case <-ping.C:
			if err := es.ping(); err != nil {
				return
			}
		}
	}
}

// poll reads the streams' and consumers' state and computes every node's numbers.
func (s *statsPoller) poll() *StatsEvent {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	now := time.Now()
	ev := &StatsEvent{Time: now, Nodes: map[string]NodeStats{}}

	infos := map[string]*jetstream.StreamInfo{}
	lister := s.js.ListStreams(ctx)
	for info := range lister.Info() {
		infos[info.Config.Name] = info
	}
	if err := lister.Err(); err != nil {
		ev.Error = "reading the streams: " + err.Error()
		return ev
	}
	subjectCounts := func(stream, filter string) map[string]uint64 {
		st, err := s.js.Stream(ctx, stream)
		if err != nil {
			return nil
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			return nil
		}
		return info.State.Subjects
	}
	dlq := subjectCounts(topology.StreamDeadLetter, topology.DeadLetterPrefix+">")
	late := subjectCounts(topology.StreamLateEvents, topology.LatePrefix+">")

	// The durable consumers of every stream a node reads.
	consumers := map[string][]*jetstream.ConsumerInfo{}
	readStreams := map[string]bool{}
	for _, o := range s.plan.Objects {
		if o.Stream != "" {
			readStreams[o.Stream] = true
		}
		if o.Bucket != "" {
			readStreams["KV_"+o.Bucket] = true
		}
	}
	if s.plan.Repartition {
		// The reading split: the partitions of an aggregation read its source's shuffle stream.
		for _, step := range s.plan.Steps {
			if src := plan.AggregationSource(step); step.Kind == plan.Aggregate && src != "" && s.plan.PartitionsOf(step) > 1 {
				readStreams[topology.ShuffleStream(src)] = true
			}
		}
	}
	for name := range readStreams {
		if infos[name] == nil {
			continue
		}
		st, err := s.js.Stream(ctx, name)
		if err != nil {
			continue
		}
		list := st.ListConsumers(ctx)
		for ci := range list.Info() {
			if ci.Config.Durable != "" {
				consumers[name] = append(consumers[name], ci)
			}
		}
	}

	base := sample{}
	for _, h := range s.history {
		if age := now.Sub(h.at); age <= rateWindow && age >= time.Second {
			base = h
			break
		}
	}
	dt := now.Sub(base.at).Seconds()
	seqs, acks := map[string]uint64{}, map[string]uint64{}
	rate := func(stream string) *float64 {
		info := infos[stream]
		if info == nil {
			return nil
		}
		seqs[stream] = info.State.LastSeq
		prev, ok := base.seqs[stream]
		if !ok || dt <= 0 || info.State.LastSeq < prev {
			return nil
		}
		r := float64(info.State.LastSeq-prev) / dt
		return &r
	}
	total := func(stream string) uint64 {
		if info := infos[stream]; info != nil {
			return info.State.Msgs
		}
		return 0
	}
	// lagOf: the consumer furthest behind among those of the streams whose names start with
	// one of the prefixes (any durable consumer when prefixes is empty).
	lagOf := func(st *NodeStats, streams []string, prefixes []string) {
		for _, name := range streams {
			for _, ci := range consumers[name] {
				if len(prefixes) > 0 && !hasAnyPrefix(ci.Name, prefixes) {
					continue
				}
				pending := ci.NumPending + uint64(ci.NumAckPending)
				st.Consumers = append(st.Consumers, ConsumerStat{Name: ci.Name, Stream: name, Pending: ci.NumPending, AckPending: ci.NumAckPending})
				if st.Lag == nil || pending > *st.Lag {
					p := pending
					st.Lag = &p
				}
			}
		}
	}

	for _, o := range s.plan.Objects {
		var st NodeStats
		dataStream := o.Stream
		if o.Bucket != "" {
			dataStream = "KV_" + o.Bucket
		}
		st.Rate, st.Total = rate(dataStream), total(dataStream)
		if o.Stream != "" && o.Source {
			st.DeadLetters = dlq[topology.DeadLetterPrefix+o.Stream]
		}
		st.Late = late[topology.LatePrefix+o.Name]
		exact := []string{o.Name, o.Stream, o.Bucket}
		var prefixes []string
		switch step := o.Producer; {
		case step == nil: // a source stream: how far behind its slowest reader is
			lagOf(&st, []string{o.Stream}, nil)
		case step.Kind == plan.Load:
			lagOf(&st, []string{o.Stream}, []string{step.Service + "-", step.Service})
		default:
			in := step.Input
			if step.FusedFrom != nil {
				in = step.FusedFrom
			}
			// The enricher's statements have a consumer each (enricher-<name>); the
			// windower's read their source in one task (windower-<SOURCE>[-p<n>]).
			mine := plan.Durable(step.Service, o.Name)
			prefixes = []string{mine}
			if step.Kind == plan.Aggregate || step.FusedFrom != nil {
				mine = step.Service + "-"
			}
			if in != nil {
				streams := []string{in.Stream}
				if step.Kind == plan.Aggregate && s.plan.Repartition && s.plan.PartitionsOf(step) > 1 {
					// The reading split: the partitions read the source's shuffle stream.
					streams = append(streams, topology.ShuffleStream(in.Stream))
				}
				lagOf(&st, streams, []string{mine})
			}
		}
		st.LastError = s.errors.Last(func(e LogEntry) bool { return names(e, exact, prefixes) })
		ev.Nodes[o.Name] = st
	}
	for _, sk := range s.plan.Sinks {
		var st NodeStats
		var streams []string
		for _, o := range sk.Objects {
			if o.Stream != "" {
				streams = append(streams, o.Stream)
			}
			if o.Bucket != "" {
				streams = append(streams, "KV_"+o.Bucket)
			}
		}
		lagOf(&st, streams, []string{sk.Service})
		for _, c := range st.Consumers {
			for _, ci := range consumers[c.Stream] {
				if ci.Name != c.Name {
					continue
				}
				key := c.Stream + "/" + c.Name
				acks[key] = ci.AckFloor.Consumer
				if prev, ok := base.acks[key]; ok && dt > 0 && ci.AckFloor.Consumer >= prev {
					r := float64(ci.AckFloor.Consumer-prev) / dt
					if st.Rate != nil {
						r += *st.Rate
					}
					st.Rate = &r
				}
			}
		}
		st.LastError = s.errors.Last(func(e LogEntry) bool {
			return names(e, []string{sk.Name}, nil) || e.Attrs["service"] == sk.Service
		})
		ev.Nodes["sink:"+sk.Name] = st
	}
	s.history = append(s.history, sample{at: now, seqs: seqs, acks: acks})
	for len(s.history) > 0 && now.Sub(s.history[0].at) > rateWindow {
		s.history = s.history[1:]
	}
	return ev
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

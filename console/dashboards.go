package console

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/services/indexer"
	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/plan"
)

// The dashboards are the indexer's panel table (indexer.Panels), the one place the panels'
// queries live: the Grafana provisioning files in compose/dashboards are generated from it,
// and the console asks the same questions of the same data, only of the KV buckets and streams
// themselves instead of their OpenSearch copies (TestConsoleAsksWhatGrafanaAsks compares).

// PanelSpec is a panel as the browser receives it.
type PanelSpec struct {
	ID string `json:"id"`
	indexer.Panel
	// Headers are a table panel's column titles, as the original named them.
	Headers []string `json:"headers,omitempty"`
}

// DashboardSpec is one dashboard.
type DashboardSpec struct {
	Slug   string      `json:"slug"`
	Title  string      `json:"title"`
	Panels []PanelSpec `json:"panels"`
}

// tableHeaders are the column titles of the originals' table panels (seed inventory A.6).
var tableHeaders = map[string][]string{
	"Stream-Table JOIN on Clickstream and Web_Users":        {"IP Address", "Username", "City", "Site Hits"},
	"TABLE-STREAM JOIN between ClickStream and Codes Table": {"Status Code", "Definition", "Number of events"},
}

// Dashboards returns both dashboards, panel by panel.
func Dashboards() []DashboardSpec {
	var out []DashboardSpec
	for i, p := range indexer.Panels() {
		slug := slugOf(p.Dashboard)
		if len(out) == 0 || out[len(out)-1].Title != p.Dashboard {
			out = append(out, DashboardSpec{Slug: slug, Title: p.Dashboard})
		}
		d := &out[len(out)-1]
		d.Panels = append(d.Panels, PanelSpec{ID: slug + "-" + strconv.Itoa(i+1), Panel: p, Headers: tableHeaders[p.Title]})
	}
	return out
}

func slugOf(title string) string { return strings.ReplaceAll(strings.ToLower(title), " ", "-") }

func (c *Console) dashboards(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Dashboards())
}

// ranges are the time ranges a dashboard offers; the feeds keep the longest.
var ranges = map[string]time.Duration{"5m": 5 * time.Minute, "15m": 15 * time.Minute, "1h": time.Hour}

const keep = time.Hour

// PanelsEvent is one event of a dashboard's stream: every panel's data over [From, To].
type PanelsEvent struct {
	From   int64       `json:"from"`
	To     int64       `json:"to"`
	Panels []PanelData `json:"panels"`
}

// dashboardEvents streams a dashboard's panels: at once, then whenever a row of theirs changed
// (at most once a second), and every 5 s anyway, since the range moves with the clock.
func (c *Console) dashboardEvents(w http.ResponseWriter, r *http.Request) {
	var dash *DashboardSpec
	for _, d := range Dashboards() {
		if d.Slug == r.PathValue("slug") {
			dash = &d
		}
	}
	if dash == nil {
		http.NotFound(w, r)
		return
	}
	span, ok := ranges[r.URL.Query().Get("range")]
	if !ok {
		span = 15 * time.Minute
	}
	sources := map[string]*feed{}
	for _, p := range dash.Panels {
		if sources[p.Source] == nil {
			sources[p.Source] = c.feeds.get(p.Source)
		}
	}
	es := startEvents(w)
	if es == nil {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var sent uint64
	var sentAt time.Time
	for {
		var version uint64
		for _, f := range sources {
			version += f.version.Load()
		}
		if version != sent || time.Since(sentAt) >= 5*time.Second {
			now := time.Now()
			to := now.UnixMilli()
			from := now.Add(-span).UnixMilli()
			ev := PanelsEvent{From: from, To: to}
			snaps := map[string][]*row{}
			for _, p := range dash.Panels {
				f := sources[p.Source]
				rows, err := f.snapshot(snaps)
				var d PanelData
				if err != nil {
					d.Error = err.Error()
				} else {
					d = aggregate(p.Panel, rows, from, to)
				}
				d.ID = p.ID
				ev.Panels = append(ev.Panels, d)
			}
			if err := es.send("panels", ev); err != nil {
				return
			}
			sent, sentAt = version, now
		}
		select {
		case <-r.Context().Done():
			return
		case <-c.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// feeds are the followed tables and streams, one feed per source, started on first use.
type feeds struct {
	ctx  context.Context
	js   jetstream.JetStream
	plan *plan.Plan
	log  *slog.Logger

	mu    sync.Mutex
	feeds map[string]*feed
}

func newFeeds(ctx context.Context, js jetstream.JetStream, p *plan.Plan, log *slog.Logger) *feeds {
	return &feeds{ctx: ctx, js: js, plan: p, log: log, feeds: map[string]*feed{}}
}

func (fs *feeds) get(source string) *feed {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.feeds[source]; f != nil {
		return f
	}
	f := &feed{source: source, rows: map[string]*row{}}
	for _, p := range indexer.Panels() {
		if p.Source != source {
			continue
		}
		f.timeField = p.TimeField
		for _, name := range append([]string{p.TimeField, p.Metric.Field}, p.Columns...) {
			f.addField(name)
		}
		for _, b := range p.Buckets {
			f.addField(b.Field)
		}
	}
	fs.feeds[source] = f
	o := fs.plan.Object(source)
	if o == nil {
		f.err = fmt.Errorf("the pipeline has no stream or table %s", source)
		return f
	}
	go f.follow(fs.ctx, fs.js, o, fs.log)
	return f
}

// feed holds a table's rows, or a stream's messages, whose time is within the longest range.
type feed struct {
	source    string
	fields    []string
	timeField string

	version atomic.Uint64 // counts changes
	mu      sync.RWMutex
	rows    map[string]*row // by KV key, or by stream sequence
	err     error
}

func (f *feed) addField(name string) {
	if name != "" && !slices.Contains(f.fields, name) {
		f.fields = append(f.fields, name)
	}
}

// snapshot returns the feed's rows (shared between the panels of one event through seen).
// Rows are never changed once stored (an update stores a new one), so the copy is shallow.
func (f *feed) snapshot(seen map[string][]*row) ([]*row, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.err != nil {
		return nil, f.err
	}
	if rows, ok := seen[f.source]; ok {
		return rows, nil
	}
	rows := make([]*row, 0, len(f.rows))
	for _, r := range f.rows {
		rows = append(rows, r)
	}
	seen[f.source] = rows
	return rows, nil
}

// follow reads the object's messages from keep ago on and then as they arrive: a table's KV
// bucket through its stream (KV_<bucket>, one subject per key: $KV.<bucket>.<key>; a delete
// or purge marker removes the row), a stream's subject by sequence. Reading the bucket's
// stream from a start time, rather than watching every key, keeps the start cheap for a
// windowed table that holds a day of windows. A row whose window started within the range
// was written within it too (its events came after its start), so none is missed.
func (f *feed) follow(ctx context.Context, js jetstream.JetStream, o *plan.Object, log *slog.Logger) {
	stream, filter, prefix := o.Stream, o.Subject, ""
	if o.Bucket != "" {
		stream, prefix = "KV_"+o.Bucket, "$KV."+o.Bucket+"."
		filter = prefix + ">"
	}
	timeFromColumn := o.Column(f.timeField) >= 0
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	backoff := time.Second
	for ctx.Err() == nil {
		start := time.Now().Add(-keep - time.Minute)
		cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start,
		})
		var cc jetstream.ConsumeContext
		if err == nil {
			f.mu.Lock()
			clear(f.rows) // the consumer delivers everything within the range again
			f.mu.Unlock()
			cc, err = cons.Consume(func(m jetstream.Msg) { f.apply(m, prefix, timeFromColumn) })
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Debug("console: following "+o.Name, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		backoff = time.Second
		for done := false; !done; {
			select {
			case <-ctx.Done():
				cc.Stop()
				return
			case <-cc.Closed():
				done = true // the ordered consumer gave up (the stream went away): start over
			case <-prune.C:
				f.prune()
			}
		}
	}
}

func (f *feed) apply(m jetstream.Msg, prefix string, timeFromColumn bool) {
	var key string
	if prefix != "" {
		key = strings.TrimPrefix(m.Subject(), prefix)
		if op := m.Headers().Get("KV-Operation"); op == "DEL" || op == "PURGE" {
			f.mu.Lock()
			delete(f.rows, key)
			f.mu.Unlock()
			f.version.Add(1)
			return
		}
	} else {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		key = strconv.FormatUint(md.Sequence.Stream, 10)
	}
	var all map[string]any
	if err := json.Unmarshal(m.Data(), &all); err != nil {
		return // the pipeline's rows are JSON objects; anything else is not a row
	}
	r := &row{f: make(map[string]any, len(f.fields))}
	for _, name := range f.fields {
		if v, ok := all[name]; ok {
			r.f[name] = v
		}
	}
	if timeFromColumn {
		t, ok := number(all[f.timeField])
		if !ok {
			return // OpenSearch's range query leaves documents without the time field out too
		}
		r.ts = int64(t)
	} else {
		// A stream's documents carry their event time (the indexer's EXTRACT_TS).
		r.ts = events.EventTimeMillis(m)
		r.f[f.timeField] = float64(r.ts)
	}
	if r.ts < time.Now().Add(-keep).UnixMilli() {
		return
	}
	f.mu.Lock()
	f.rows[key] = r
	f.mu.Unlock()
	f.version.Add(1)
}

// prune drops rows that left the longest range.
func (f *feed) prune() {
	cut := time.Now().Add(-keep).UnixMilli()
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, r := range f.rows {
		if r.ts < cut {
			delete(f.rows, k)
		}
	}
}

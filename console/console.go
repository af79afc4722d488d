// Package console is jetsuite's web console: the originals' two dashboards ("Click Stream
// Analysis" and "Ratings Data") live, the plan as a graph with each node's rate, lag, late
// events, dead letters and last error, a query box for pull and push queries, the dead letters
// and late events, and the generator's controls where the generator runs.
//
// Everything the browser needs is embedded in the binary: dist/ is the bundle that esbuild
// builds from web/ (committed, so that `go build` needs no npm; TestBundleUpToDate rebuilds it
// and fails when it differs). The browser reads JSON and server-sent events from /api/...;
// queries go to the existing POST /query.
//
// The data comes from NATS, not from the process's own state, so the console of any jetsuite
// process (`all`, or one service against a shared NATS) shows the whole pipeline: the
// dashboards follow the tables' KV buckets and the streams as they change, the graph's numbers
// come from JetStream's stream and consumer state. Nothing runs until a browser asks: a
// dashboard's feeds start with its first viewer (and then follow their table or stream until
// the process stops, holding at most the last hour of rows), and the pipeline's numbers are
// polled only while someone watches.
package console

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/plan"
)

//go:embed dist
var dist embed.FS

// Options are what the console reads.
type Options struct {
	// Plan is the pipeline the process runs (its graph, its objects' streams and buckets).
	Plan *plan.Plan
	JS   jetstream.JetStream
	Log  *slog.Logger
	// Command is the process's command (`all` or a service name), shown in the header.
	Command string
	// Errors, when set, holds the process's recent warnings and errors: the graph shows the
	// newest one that names a node as that node's last error.
	Errors *Recorder
}

// Console serves the web console.
type Console struct {
	o     Options
	ctx   context.Context
	feeds *feeds
	stats *statsPoller
}

// Register adds the console's routes to mux: the page at /, its assets under /assets/, and the
// JSON and event-stream endpoints under /api/. Long-lived responses (event streams) end when
// ctx does, so that the HTTP server's graceful shutdown does not wait for browsers.
func Register(ctx context.Context, mux *http.ServeMux, o Options) *Console {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	c := &Console{o: o, ctx: ctx}
	c.feeds = newFeeds(ctx, o.JS, o.Plan, o.Log)
	c.stats = newStatsPoller(ctx, o.JS, o.Plan, o.Errors, o.Log)
	static := staticFiles()
	mux.Handle("GET /{$}", static)
	mux.Handle("GET /assets/", static)
	mux.HandleFunc("GET /api/info", c.info)
	mux.HandleFunc("GET /api/dashboards", c.dashboards)
	mux.HandleFunc("GET /api/dashboards/{slug}/events", c.dashboardEvents)
	mux.HandleFunc("GET /api/pipeline", c.pipeline)
	mux.HandleFunc("GET /api/pipeline/events", c.pipelineEvents)
	mux.HandleFunc("GET /api/nodes/{name}/newest", c.newest)
	mux.HandleFunc("GET /api/problems/{kind}/events", c.problemEvents)
	return c
}

// info is what the header shows: the command, the pipeline's files.
func (c *Console) info(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"command": c.o.Command,
		"files":   c.o.Plan.Files,
		"fused":   c.o.Plan.Fused,
	})
}

// staticFiles serves dist/: index.html at / and the bundle under /assets/. The bundle's names
// do not change between builds, so responses carry an ETag (the content's hash) and are
// revalidated: a new binary never leaves an old bundle in a browser's cache.
func staticFiles() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic("console: embedded dist: " + err.Error()) // a build defect
	}
	type file struct {
		data []byte
		etag string
		ct   string
	}
	var once sync.Once
	files := map[string]file{}
	load := func() {
		_ = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(sub, p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			ct := mime.TypeByExtension(path.Ext(p))
			if ct == "" {
				ct = "application/octet-stream"
			}
			files[p] = file{data: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ct: ct}
			return nil
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(load)
		name := strings.TrimPrefix(r.URL.Path, "/assets/")
		if r.URL.Path == "/" {
			name = "index.html"
		}
		f, ok := files[name]
		if !ok || name == "index.html" && r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", f.ct)
		w.Header().Set("ETag", f.etag)
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.Header.Get("If-None-Match") == f.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write(f.data)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// eventStream is one server-sent events response.
type eventStream struct {
	w http.ResponseWriter
	f http.Flusher
}

// startEvents answers with text/event-stream. It returns nil (and has answered 500) when the
// response cannot be flushed, which only a wrapping middleware could cause.
func startEvents(w http.ResponseWriter) *eventStream {
	f, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return nil
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	// Proxies (nginx) buffer responses unless told otherwise; the events must arrive as sent.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	f.Flush()
	return &eventStream{w: w, f: f}
}

// send writes one event with a JSON payload.
func (e *eventStream) send(event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := e.w.Write([]byte("event: " + event + "\ndata: ")); err != nil {
		return err
	}
	if _, err := e.w.Write(b); err != nil {
		return err
	}
	if _, err := e.w.Write([]byte("\n\n")); err != nil {
		return err
	}
	e.f.Flush()
	return nil
}

// ping keeps an idle stream open through proxies and lets a gone client be noticed.
func (e *eventStream) ping() error {
	if _, err := e.w.Write([]byte(": ping\n\n")); err != nil {
		return err
	}
	e.f.Flush()
	return nil
}

// pingEvery is how often an idle event stream is pinged.
const pingEvery = 15 * time.Second

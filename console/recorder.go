package console

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Recorder is a slog.Handler that passes every record on and keeps the newest warnings and
// errors, so that the pipeline graph can show a node's last error (the newest record that
// names the node's stream, table, bucket or consumer in one of its attributes). Records say
// nothing secret (the project's rule for every log line), so keeping them adds no exposure.
type Recorder struct {
	next  slog.Handler
	attrs []slog.Attr // from WithAttrs, flattened with their groups' names
	group string
	buf   *recordBuffer
}

// LogEntry is a kept record.
type LogEntry struct {
	Time    time.Time         `json:"time"`
	Level   string            `json:"level"`
	Message string            `json:"message"`
	Attrs   map[string]string `json:"attrs"`
}

type recordBuffer struct {
	mu      sync.Mutex
	entries []LogEntry // oldest first, at most recordKeep
}

const recordKeep = 256

// NewRecorder wraps next.
func NewRecorder(next slog.Handler) *Recorder {
	return &Recorder{next: next, buf: &recordBuffer{}}
}

// Enabled implements slog.Handler: warnings are always kept, whatever the level of next.
func (r *Recorder) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || r.next.Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (r *Recorder) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level >= slog.LevelWarn {
		e := LogEntry{Time: rec.Time, Level: rec.Level.String(), Message: rec.Message, Attrs: map[string]string{}}
		for _, a := range r.attrs {
			e.Attrs[a.Key] = a.Value.String()
		}
		rec.Attrs(func(a slog.Attr) bool {
			flatten(e.Attrs, r.group, a)
			return true
		})
		r.buf.mu.Lock()
		if len(r.buf.entries) >= recordKeep {
			r.buf.entries = append(r.buf.entries[:0], r.buf.entries[1:]...)
		}
		r.buf.entries = append(r.buf.entries, e)
		r.buf.mu.Unlock()
	}
	if r.next.Enabled(ctx, rec.Level) {
		return r.next.Handle(ctx, rec)
	}
	return nil
}

func flatten(into map[string]string, prefix string, a slog.Attr) {
	key := a.Key
	if prefix != "" {
		key = prefix + "." + key
	}
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, g := range v.Group() {
			flatten(into, key, g)
		}
		return
	}
	into[key] = v.String()
}

// WithAttrs implements slog.Handler.
func (r *Recorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *r
	n.next = r.next.WithAttrs(attrs)
	m := map[string]string{}
	for _, a := range attrs {
		flatten(m, r.group, a)
	}
	n.attrs = append([]slog.Attr(nil), r.attrs...)
	for k, v := range m {
		n.attrs = append(n.attrs, slog.String(k, v))
	}
	return &n
}

// WithGroup implements slog.Handler.
func (r *Recorder) WithGroup(name string) slog.Handler {
	n := *r
	n.next = r.next.WithGroup(name)
	if n.group != "" {
		n.group += "." + name
	} else {
		n.group = name
	}
	return &n
}

// Last returns the newest kept record for which match is true.
func (r *Recorder) Last(match func(LogEntry) bool) *LogEntry {
	if r == nil {
		return nil
	}
	r.buf.mu.Lock()
	defer r.buf.mu.Unlock()
	for i := len(r.buf.entries) - 1; i >= 0; i-- {
		if match(r.buf.entries[i]) {
			e := r.buf.entries[i]
			return &e
		}
	}
	return nil
}

// names reports whether an entry's attributes name one of the given names (streams, tables,
// buckets: case-insensitive) or a consumer that starts with one of the prefixes.
func names(e LogEntry, exact []string, prefixes []string) bool {
	for _, v := range e.Attrs {
		for _, n := range exact {
			if n != "" && strings.EqualFold(v, n) {
				return true
			}
		}
		for _, p := range prefixes {
			if p != "" && strings.HasPrefix(strings.ToLower(v), p) {
				return true
			}
		}
	}
	return false
}

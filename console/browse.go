package console

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/services/windower"
	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/pipe"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// Message is a stream message or a table row as the browser shows it.
type Message struct {
	Seq     uint64            `json:"seq"`
	Time    int64             `json:"time"` // event time (Event-Time header, else stored), epoch ms
	Subject string            `json:"subject"`
	Key     string            `json:"key,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	// Value is the body when it is JSON, else Text holds it (cut to maxBody bytes).
	Value json.RawMessage `json:"value,omitempty"`
	Text  string          `json:"text,omitempty"`
	Size  int             `json:"size"`
}

// Problem is a dead letter or a late event with where it came from.
type Problem struct {
	Message
	Reason  string `json:"reason"`
	Error   string `json:"error,omitempty"`
	Service string `json:"service,omitempty"`
	Table   string `json:"table,omitempty"`
	// Source position of the rejected or late input: its stream, subject and sequence.
	SourceStream  string `json:"source_stream,omitempty"`
	SourceSubject string `json:"source_subject,omitempty"`
	SourceSeq     uint64 `json:"source_seq,omitempty"`
}

// maxBody is how much of a body the browser gets: a dead letter can be megabytes (too_large).
const maxBody = 4096

func toMessage(m jetstream.Msg, key string) Message {
	out := Message{Subject: m.Subject(), Key: key, Time: events.EventTimeMillis(m), Size: len(m.Data())}
	if md, err := m.Metadata(); err == nil {
		out.Seq = md.Sequence.Stream
	}
	if h := m.Headers(); len(h) > 0 {
		out.Headers = map[string]string{}
		for k, v := range h {
			if len(v) > 0 {
				out.Headers[k] = v[0]
			}
		}
		if out.Key == "" {
			out.Key = h.Get(events.HeaderKey)
		}
	}
	data := m.Data()
	if len(data) <= maxBody && json.Valid(data) {
		out.Value = json.RawMessage(slices.Clone(data))
		return out
	}
	if len(data) > maxBody {
		data = data[:maxBody]
	}
	if utf8.Valid(data) {
		out.Text = string(data)
	} else {
		out.Text = strings.ToValidUTF8(string(data), "\uFFFD")
	}
	return out
}

// readTail reads a stream's messages on filter from sequence from on, up to the stream's last
// sequence when the read started.
func readTail(ctx context.Context, js jetstream.JetStream, stream, filter string, back uint64) ([]jetstream.Msg, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	last := info.State.LastSeq
	if last == 0 || info.State.Msgs == 0 {
		return nil, nil
	}
	from := max(info.State.FirstSeq, 1)
	if last > back && last-back+1 > from {
		from = last - back + 1
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter},
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from})
	if err != nil {
		return nil, err
	}
	var out []jetstream.Msg
	for ctx.Err() == nil {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			return out, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			out = append(out, m)
			if md, err := m.Metadata(); err == nil && md.Sequence.Stream >= last {
				return out, nil
			}
		}
		if got == 0 {
			return out, batch.Error() // nothing more on the filter up to the end
		}
	}
	return out, ctx.Err()
}

// newest answers a node's newest rows (a table: the newest updated rows, one per key) or
// messages (a stream), newest first; a sink shows what it reads.
func (c *Console) newest(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.PathValue("name"), "sink:")
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n <= 0 || n > 200 {
		n = 20
	}
	var objs []*plan.Object
	if o := c.o.Plan.Object(name); o != nil {
		objs = append(objs, o)
	} else {
		for _, s := range c.o.Plan.Sinks {
			if s.Name == name {
				objs = s.Objects
			}
		}
	}
	if len(objs) == 0 {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no stream, table or sink " + name})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	type result struct {
		Object   string    `json:"object"`
		Kind     string    `json:"kind"`
		Messages []Message `json:"messages"`
		Error    string    `json:"error,omitempty"`
	}
	var out []result
	for _, o := range objs {
		res := result{Object: o.Name, Kind: "stream", Messages: []Message{}}
		var msgs []jetstream.Msg
		if o.Bucket != "" {
			res.Kind = "table"
			prefix := "$KV." + o.Bucket + "."
			// A key may have been updated many times among the newest entries.
			msgs, err = readTail(ctx, c.o.JS, "KV_"+o.Bucket, prefix+">", uint64(n)*20)
			seen := map[string]bool{}
			for i := len(msgs) - 1; i >= 0 && len(res.Messages) < n; i-- {
				key := strings.TrimPrefix(msgs[i].Subject(), prefix)
				if seen[key] {
					continue
				}
				seen[key] = true
				if op := msgs[i].Headers().Get("KV-Operation"); op == "DEL" || op == "PURGE" {
					continue
				}
				res.Messages = append(res.Messages, toMessage(msgs[i], key))
			}
		} else {
			msgs, err = readTail(ctx, c.o.JS, o.Stream, o.Subject, uint64(n))
			for i := len(msgs) - 1; i >= 0 && len(res.Messages) < n; i-- {
				res.Messages = append(res.Messages, toMessage(msgs[i], ""))
			}
		}
		if err != nil {
			res.Error = err.Error()
		}
		out = append(out, res)
	}
	writeJSON(w, http.StatusOK, out)
}

// problemEvents streams the dead letters (kind dlq) or late events (kind late): the newest n
// at once, then each new one as it is stored, oldest first within each event.
func (c *Console) problemEvents(w http.ResponseWriter, r *http.Request) {
	var stream, filter string
	switch r.PathValue("kind") {
	case "dlq":
		stream, filter = topology.StreamDeadLetter, topology.DeadLetterPrefix+">"
	case "late":
		stream, filter = topology.StreamLateEvents, topology.LatePrefix+">"
	default:
		http.NotFound(w, r)
		return
	}
	n, err := strconv.ParseUint(r.URL.Query().Get("n"), 10, 64)
	if err != nil || n == 0 || n > 5000 {
		n = 500
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-c.ctx.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	es := startEvents(w)
	if es == nil {
		return
	}
	var cons jetstream.Consumer
	for cons == nil {
		s, err := c.o.JS.Stream(ctx, stream)
		if err == nil {
			var info *jetstream.StreamInfo
			if info, err = s.Info(ctx); err == nil {
				from := uint64(1)
				if info.State.LastSeq >= n {
					from = info.State.LastSeq - n + 1
				}
				cons, err = s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter},
					DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from})
			}
		}
		if err != nil {
			_ = es.send("error", map[string]string{"error": err.Error()})
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Second):
			}
		}
	}
	// "ready" says the backlog was sent: what arrives afterwards is new.
	backlog := true
	idleSince := time.Now()
	for ctx.Err() == nil {
		batch, err := cons.Fetch(200, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			_ = es.send("error", map[string]string{"error": err.Error()})
			time.Sleep(time.Second) // a fetch error is transient (NATS reconnecting); retry
			continue
		}
		var items []Problem
		for m := range batch.Messages() {
			items = append(items, toProblem(m))
		}
		if len(items) > 0 {
			if err := es.send("problems", items); err != nil {
				return
			}
			idleSince = time.Now()
			continue
		}
		if backlog {
			backlog = false
			if err := es.send("ready", map[string]bool{"ready": true}); err != nil {
				return
			}
		}
		if time.Since(idleSince) >= pingEvery {
			if err := es.ping(); err != nil {
				return
			}
			idleSince = time.Now()
		}
	}
}

func toProblem(m jetstream.Msg) Problem {
	p := Problem{Message: toMessage(m, "")}
	h := m.Headers()
	if strings.HasPrefix(m.Subject(), topology.DeadLetterPrefix) {
		p.Reason = h.Get(pipe.HeaderDLQReason)
		p.Error = h.Get(pipe.HeaderDLQError)
		p.Service = h.Get(pipe.HeaderDLQService)
		p.SourceStream = h.Get(pipe.HeaderDLQSourceStream)
		p.SourceSubject = h.Get(pipe.HeaderDLQSourceSubject)
		p.SourceSeq, _ = strconv.ParseUint(h.Get(pipe.HeaderDLQSourceSeq), 10, 64)
		return p
	}
	p.Reason = h.Get(windower.HeaderLateReason)
	p.Table = h.Get(windower.HeaderLateTable)
	p.Service = "windower"
	// The late event's id is late:<TABLE>:<source stream>:<sequence> (the windower's).
	if parts := strings.Split(h.Get(events.HeaderMsgID), ":"); len(parts) == 4 && parts[0] == "late" {
		p.SourceStream = parts[2]
		p.SourceSeq, _ = strconv.ParseUint(parts[3], 10, 64)
	}
	return p
}

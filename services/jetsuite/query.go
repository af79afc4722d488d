package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/ksql"
	"github.com/jetsuite/jetsuite/shared/kvx"
	"github.com/jetsuite/jetsuite/shared/natsx"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/sqlrt"
)

// A transient query, as ksqlDB runs them: a pull query (no EMIT) reads what a table (its KV
// bucket) or a stream holds now and ends; a push query (EMIT CHANGES) streams what arrives from
// now on until the client goes away or LIMIT rows. Both print one JSON object per line: first
// {"columns": [...]}, then one object per row.
type query struct {
	obj     *plan.Object
	decode  []sqlrt.Column // what a stored row is decoded into
	where   *sqlrt.Expr
	project []sqlrt.Expr
	cols    []sqlrt.Column
	push    bool
	limit   int64 // 0: none
	keyAt   int   // position of the single key column to fill from the KV key (-1: none)
}

// The row a query reads: the object's columns, then WINDOW_START and WINDOW_END (windowed
// tables store them with each row), then ROWTIME.
func compileQuery(p *plan.Plan, sql string, limit int64) (*query, error) {
	st, err := ksql.ParseStatement(sql)
	if err != nil {
		return nil, err
	}
	qs, ok := st.(*ksql.QueryStmt)
	if !ok {
		return nil, errors.New("query: only SELECT statements are queries (CREATE ... goes into the queries file)")
	}
	sel := qs.Query
	switch {
	case len(sel.Joins) > 0:
		return nil, errors.New("query: joins in transient queries are not supported (create the joined stream in the pipeline and query it)")
	case len(sel.GroupBy) > 0 || sel.Window != nil:
		return nil, errors.New("query: aggregations in transient queries are not supported (create the table in the pipeline and query it)")
	case len(sel.PartitionBy) > 0:
		return nil, errors.New("query: PARTITION BY in a transient query is not supported")
	case sel.Emit == "FINAL":
		return nil, errors.New("query: EMIT FINAL is not supported in a transient query (use EMIT CHANGES)")
	}
	obj := p.Object(sel.From.Name)
	if obj == nil {
		var names []string
		for _, o := range p.Objects {
			names = append(names, o.Name)
		}
		return nil, fmt.Errorf("query: unknown stream or table %s; the pipeline has %s", sel.From.Name, strings.Join(names, ", "))
	}
	q := &query{obj: obj, push: sel.Emit == "CHANGES", limit: limit, keyAt: -1}
	if sel.Limit != nil && (q.limit == 0 || *sel.Limit < q.limit) {
		q.limit = *sel.Limit
	}
	n := len(obj.Columns)
	q.decode = append(append([]sqlrt.Column(nil), obj.Columns...),
		sqlrt.Column{Name: "WINDOW_START", Type: sqlrt.Type{Kind: sqlrt.BigInt}},
		sqlrt.Column{Name: "WINDOW_END", Type: sqlrt.Type{Kind: sqlrt.BigInt}})
	if len(obj.Key) == 1 && obj.Bucket != "" {
		q.keyAt = obj.Column(obj.Key[0])
	}
	sc := &queryScope{obj: obj, alias: sel.From.Alias, n: n}
	if sel.Where != nil {
		w, err := sqlrt.Compile(timeLiterals(sel.Where), sc)
		if err != nil {
			return nil, err
		}
		q.where = &w
	}
	for i, it := range sel.Items {
		if it.Star {
			for k, c := range obj.Columns {
				k := k
				q.project = append(q.project, sqlrt.Expr{Eval: func(r sqlrt.Row) sqlrt.Value { return r[k] }, Type: c.Type, Text: c.Name})
				q.cols = append(q.cols, c)
			}
			if obj.Windowed() {
				for k, name := range []string{"WINDOWSTART", "WINDOWEND"} {
					at := n + k
					q.project = append(q.project, sqlrt.Expr{Eval: func(r sqlrt.Row) sqlrt.Value { return r[at] }, Type: sqlrt.Type{Kind: sqlrt.BigInt}, Text: name})
					q.cols = append(q.cols, sqlrt.Column{Name: name, Type: sqlrt.Type{Kind: sqlrt.BigInt}})
				}
			}
			continue
		}
		e, err := sqlrt.Compile(it.Expr, sc)
		if err != nil {
			return nil, err
		}
		name := it.Alias
		if name == "" {
			if r, ok := it.Expr.(*ksql.ColumnRef); ok {
				name = r.Name
			} else {
				name = "KSQL_COL_" + strconv.Itoa(i)
			}
		}
		q.project = append(q.project, e)
		q.cols = append(q.cols, sqlrt.Column{Name: name, Type: e.Type})
	}
	return q, nil
}

// queryScope resolves a transient query's columns.
type queryScope struct {
	obj   *plan.Object
	alias string
	n     int
}

func (s *queryScope) Resolve(ref *ksql.ColumnRef) (int, sqlrt.Type, error) {
	if ref.Qualifier != "" && !strings.EqualFold(ref.Qualifier, s.obj.Name) && !strings.EqualFold(ref.Qualifier, s.alias) {
		return 0, sqlrt.Type{}, &ksql.SyntaxError{Line: ref.Pos.Line, Col: ref.Pos.Col, Token: ref.Qualifier, Msg: "unknown source " + ref.Qualifier + "; the query reads " + s.obj.Name}
	}
	big := sqlrt.Type{Kind: sqlrt.BigInt}
	switch ref.Name {
	case "WINDOWSTART", "WINDOWEND":
		if !s.obj.Windowed() {
			return 0, big, &ksql.SyntaxError{Line: ref.Pos.Line, Col: ref.Pos.Col, Token: ref.Name, Msg: s.obj.Name + " is not windowed: it has no " + ref.Name}
		}
		if ref.Name == "WINDOWSTART" {
			return s.n, big, nil
		}
		return s.n + 1, big, nil
	case "ROWTIME":
		return s.n + 2, big, nil
	}
	if i := s.obj.Column(ref.Name); i >= 0 {
		return i, s.obj.Columns[i].Type, nil
	}
	var cols []string
	for _, c := range s.obj.Columns {
		cols = append(cols, c.Name)
	}
	return 0, sqlrt.Type{}, &ksql.SyntaxError{Line: ref.Pos.Line, Col: ref.Pos.Col, Token: ref.Name,
		Msg: "unknown column " + ref.Name + " in " + s.obj.Name + "; columns are " + strings.Join(cols, ", ")}
}

// timeLiterals turns a string compared with WINDOWSTART, WINDOWEND or ROWTIME into epoch
// milliseconds, as ksqlDB does in pull queries (WINDOWSTART > '2020-07-06T15:30:00.000', UTC
// unless the string names a zone).
func timeLiterals(e ksql.Expr) ksql.Expr {
	isTime := func(x ksql.Expr) bool {
		r, ok := x.(*ksql.ColumnRef)
		return ok && (r.Name == "WINDOWSTART" || r.Name == "WINDOWEND" || r.Name == "ROWTIME")
	}
	conv := func(x ksql.Expr) ksql.Expr {
		s, ok := x.(*ksql.StringLit)
		if !ok {
			return x
		}
		if ms, ok := parseTimestamp(s.Value); ok {
			return &ksql.NumberLit{Text: strconv.FormatInt(ms, 10), Kind: ksql.Integer}
		}
		return x
	}
	switch n := e.(type) {
	case *ksql.BinaryExpr:
		l, r := timeLiterals(n.Left), timeLiterals(n.Right)
		switch {
		case isTime(l):
			r = conv(r)
		case isTime(r):
			l = conv(l)
		}
		return &ksql.BinaryExpr{Op: n.Op, Left: l, Right: r}
	case *ksql.BetweenExpr:
		if isTime(n.X) {
			return &ksql.BetweenExpr{X: n.X, Lo: conv(n.Lo), Hi: conv(n.Hi), Not: n.Not}
		}
	case *ksql.UnaryExpr:
		return &ksql.UnaryExpr{Op: n.Op, X: timeLiterals(n.X)}
	}
	return e
}

func parseTimestamp(s string) (int64, bool) {
	for _, layout := range []string{"2006-01-02T15:04:05.000Z07:00", "2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05.000", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UnixMilli(), true
		}
	}
	return 0, false
}

// run executes the query and calls emit with each output line.
func (q *query) run(ctx context.Context, js jetstream.JetStream, emit func([]byte) error) error {
	var names []string
	for _, c := range q.cols {
		names = append(names, c.Name)
	}
	head, _ := json.Marshal(map[string][]string{"columns": names})
	// started emits the column names once the source is open, so that a client that sees them
	// knows a push query sees everything published from then on.
	started := func() error { return emit(head) }
	dec := sqlrt.NewDecoder(q.decode)
	row := make(sqlrt.Row, len(q.decode)+1)
	out := make(sqlrt.Row, len(q.project))
	var n int64
	var buf []byte
	// one applies the query to a stored row; done reports that LIMIT rows are out.
	one := func(data []byte, key string, rowtime int64) (done bool, err error) {
		for i := range row {
			row[i] = sqlrt.Value{}
		}
		if err := dec.Decode(data, row); err != nil {
			return false, nil // a row that does not decode is not shown (the pipeline dead-letters such input)
		}
		row[len(q.decode)] = sqlrt.BigIntValue(rowtime)
		if q.keyAt >= 0 && row[q.keyAt].IsNull() && key != "" {
			k := key
			if q.obj.Windowed() {
				if i := strings.LastIndexByte(k, '.'); i > 0 {
					k = k[:i]
				}
			}
			if text, err := kvx.Unescape(k); err == nil {
				if v, err := sqlrt.FromText(text, q.obj.Columns[q.keyAt].Type); err == nil {
					row[q.keyAt] = v
				}
			}
		}
		if q.where != nil {
			if v := q.where.Eval(row); v.Kind != sqlrt.Boolean || !v.Bool() {
				return false, nil
			}
		}
		for i, e := range q.project {
			out[i] = e.Eval(row)
		}
		buf = sqlrt.AppendObject(buf[:0], q.cols, out)
		if err := emit(buf); err != nil {
			return true, err
		}
		n++
		return q.limit > 0 && n >= q.limit, nil
	}
	if q.obj.Bucket != "" {
		return q.runTable(ctx, js, started, one)
	}
	return q.runStream(ctx, js, started, one)
}

func (q *query) runTable(ctx context.Context, js jetstream.JetStream, started func() error, one func([]byte, string, int64) (bool, error)) error {
	kv, err := js.KeyValue(ctx, q.obj.Bucket)
	if err != nil {
		return fmt.Errorf("query: table %s: %w (is the pipeline running?)", q.obj.Name, err)
	}
	opts := []jetstream.WatchOpt{jetstream.IgnoreDeletes()}
	if q.push {
		opts = append(opts, jetstream.UpdatesOnly())
	}
	w, err := kv.WatchAll(ctx, opts...)
	if err != nil {
		return err
	}
	defer w.Stop()
	if err := started(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if e == nil {
				if !q.push {
					return nil // the pull query has seen every row
				}
				continue
			}
			if done, err := one(e.Value(), e.Key(), e.Created().UnixMilli()); done || err != nil {
				return err
			}
		}
	}
}

func (q *query) runStream(ctx context.Context, js jetstream.JetStream, started func() error, one func([]byte, string, int64) (bool, error)) error {
	s, err := js.Stream(ctx, q.obj.Stream)
	if err != nil {
		return fmt.Errorf("query: stream %s: %w (is the pipeline running?)", q.obj.Name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{q.obj.Subject}}
	last := info.State.LastSeq
	if q.push {
		// From the next message on: the server's last sequence now, not DeliverNew, which
		// would start only when the first pull arrives.
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = last + 1
	} else if last == 0 {
		return started()
	}
	c, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return err
	}
	if err := started(); err != nil {
		return err
	}
	for {
		if ctx.Err() != nil {
			return nil
		}
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if done, err := one(m.Data(), m.Headers().Get(events.HeaderKey), events.EventTimeMillis(m)); done || err != nil {
				return err
			}
			if !q.push && md.Sequence.Stream >= last {
				return nil
			}
		}
		if !q.push && got == 0 {
			return nil // nothing more up to the end of the stream (other subjects' messages end it)
		}
	}
}

// queryCommand is `jetsuite query "SELECT ..."` against a running jetsuite's NATS.
func queryCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("jetsuite query", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reg := config.NewRegistry(fs, os.Getenv)
	var c common
	bindCommon(reg.Shared(), &c)
	limit := fs.Int64("limit", 0, "stop after this many rows (0: a pull query ends by itself, a push query runs until interrupted)")
	sql := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sql, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if sql == "" && fs.NArg() > 0 {
		sql = fs.Arg(0)
	}
	if sql == "" {
		return errors.New(`usage: jetsuite query "SELECT ... FROM NAME [WHERE ...] [EMIT CHANGES] [LIMIT n]" [--limit N]`)
	}
	if err := reg.Resolve(); err != nil {
		return err
	}
	p, err := c.pipeline()
	if err != nil {
		return err
	}
	q, err := compileQuery(p, sql, *limit)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	nc, err := natsx.Connect(cctx, c.clientURL(), "jetsuite-query", nil)
	cancel()
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := natsx.JetStream(nc)
	if err != nil {
		return err
	}
	return q.run(ctx, js, func(line []byte) error {
		_, err := fmt.Fprintf(stdout, "%s\n", line)
		return err
	})
}

// queryHandler serves POST /query: body {"sql": "...", "limit": n}; the answer is one JSON
// object per line (first the column names), flushed as rows come, until the query ends or the
// client goes away. A query that does not compile is a 400 with {"error": "..."}.
func queryHandler(p *plan.Plan, js jetstream.JetStream) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			SQL   string `json:"sql"`
			Limit int64  `json:"limit"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || req.SQL == "" {
			writeQueryError(w, http.StatusBadRequest, errors.New(`body must be {"sql": "SELECT ..."}`))
			return
		}
		q, err := compileQuery(p, req.SQL, req.Limit)
		if err != nil {
			writeQueryError(w, http.StatusBadRequest, err)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		flusher, _ := w.(http.Flusher)
		err = q.run(r.Context(), js, func(line []byte) error {
			if _, err := w.Write(append(line, '\n')); err != nil {
				return err
			}
			if flusher != nil {
				flusher.Flush()
			}
			return nil
		})
		if err != nil && r.Context().Err() == nil {
			b, _ := json.Marshal(map[string]string{"error": err.Error()})
			_, _ = w.Write(append(b, '\n'))
		}
	}
}

func writeQueryError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]string{"error": err.Error()})
	_, _ = w.Write(append(b, '\n'))
}

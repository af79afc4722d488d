// Package transform executes the pipeline's stateless statements (CREATE STREAM ... AS SELECT
// without GROUP BY): stream–table joins against in-memory views of tables, WHERE, the select
// list and PARTITION BY. The enricher runs them on their input streams; the windower runs the
// ones the planner fused into its tasks on their source's messages (plan.Plan.Fuse). Both run
// this one implementation, so a fused statement computes exactly what the unfused one does.
package transform

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/ksql"
	"github.com/jetsuite/jetsuite/shared/kvx"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/sqlrt"
)

// TableRow is a row of a table view: the table's columns, decoded once when the row arrives
// (not once per joined event).
type TableRow struct{ Vals sqlrt.Row }

// TableDecoder returns the View decoder of table o: the KV value's columns, with the primary
// key column taken from the KV key when the value lacks it.
func TableDecoder(o *plan.Object) func(key string, value []byte) (TableRow, error) {
	dec := sqlrt.NewDecoder(o.Columns)
	keyAt := o.Column(o.Key[0])
	return func(key string, value []byte) (TableRow, error) {
		row := make(sqlrt.Row, len(o.Columns))
		if err := dec.Decode(value, row); err != nil {
			return TableRow{}, err
		}
		if keyAt >= 0 && row[keyAt].IsNull() {
			text, err := kvx.Unescape(key)
			if err != nil {
				return TableRow{}, err
			}
			v, err := sqlrt.FromText(text, o.Columns[keyAt].Type)
			if err != nil {
				return TableRow{}, err
			}
			row[keyAt] = v
		}
		return TableRow{Vals: row}, nil
	}
}

// TableKey is the KV key of a table row whose primary key is v ("" for NULL).
func TableKey(v sqlrt.Value) string {
	if v.IsNull() {
		return ""
	}
	return kvx.Escape(sqlrt.KeyText(v))
}

// Views are the in-memory table views joins read, by table name. One service keeps one view
// per table, whichever of its programs join it.
type Views map[string]*View[TableRow]

// For returns the view of table o, creating it (not yet running) when there is none.
func (vs Views) For(o *plan.Object, log *slog.Logger) *View[TableRow] {
	v := vs[o.Name]
	if v == nil {
		v = NewView(o.Bucket, TableDecoder(o), log)
		vs[o.Name] = v
	}
	return v
}

// Program runs Transform steps on the rows of one input stream, in statement order. A step
// reads the program's input or the output of an earlier step of the program (a chain of
// statements fused into one pass: the intermediate stream is published, never re-read).
// A Program is not safe for concurrent use.
type Program struct {
	in     *plan.Object
	steps  []*Step
	inKey  int  // the input's key column, or -1: the input's key is its Jetsuite-Key header
	useKey bool // some step reading the input keeps its key (no PARTITION BY, no join)
	keyBuf []byte
}

// Step is one statement of a Program, with the output of the current input while emit runs.
type Step struct {
	Plan *plan.Step
	// Out holds the output columns (Plan.Output.Columns, in order) and Key the output's key of
	// the current input; valid during the emit call only.
	Out sqlrt.Row
	Key string

	from   int // -1: reads the program's input; else the index of the step whose output it reads
	row    sqlrt.Row
	view   *View[TableRow]
	keyAt  int // the table's key column (in Plan.Row)
	ok     bool
	noJoin prometheus.Counter // inputs with a NULL join key
}

// NewProgram compiles steps (in statement order) that read in, or each other's outputs, into
// one program; joins read their tables from views (created there when missing).
func NewProgram(in *plan.Object, steps []*plan.Step, views Views, log *slog.Logger) (*Program, error) {
	p := &Program{in: in, inKey: -1}
	if len(in.Key) == 1 {
		p.inKey = in.Column(in.Key[0])
	}
	index := map[string]int{} // output object -> step
	for i, st := range steps {
		if st.Kind != plan.Transform {
			return nil, fmt.Errorf("transform: %s is not a stateless statement", st.Name)
		}
		s := &Step{Plan: st, Out: make(sqlrt.Row, len(st.Project)), row: make(sqlrt.Row, len(st.Row)), from: -1,
			noJoin: obs.Dropped.WithLabelValues(st.Name, "null_join_key")}
		switch from, ok := index[st.Input.Name]; {
		case ok:
			s.from = from
		case st.Input.Name != in.Name:
			return nil, fmt.Errorf("transform: %s reads %s, neither %s nor an earlier statement's output", st.Name, st.Input.Name, in.Name)
		default:
			p.useKey = p.useKey || st.Key == nil
		}
		if j := st.Join; j != nil {
			s.view = views.For(j.Table, log)
			s.keyAt = j.TableAt + j.Table.Column(j.Table.Key[0])
		}
		index[st.Output.Name] = i
		p.steps = append(p.steps, s)
	}
	return p, nil
}

// Steps are the program's statements, in order.
func (p *Program) Steps() []*Step { return p.steps }

// Views are the table views the program's joins read.
func (p *Program) Views() []*View[TableRow] {
	var vs []*View[TableRow]
	for _, s := range p.steps {
		if s.view != nil {
			vs = append(vs, s.view)
		}
	}
	return vs
}

// WaitLoaded blocks until every table the program's joins read is loaded, or ctx ends.
func (p *Program) WaitLoaded(ctx context.Context) error {
	for _, v := range p.Views() {
		select {
		case <-v.Loaded():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// InputKey is the key of an input whose columns are in (from its key column, or its
// Jetsuite-Key header h); "" when no step keeps the input's key, so none is computed.
func (p *Program) InputKey(in sqlrt.Row, h nats.Header) string {
	switch {
	case !p.useKey:
		return ""
	case p.inKey >= 0:
		return sqlrt.KeyText(in[p.inKey])
	}
	return h.Get(events.HeaderKey)
}

// Run runs every step on one input: in holds the input's columns, then ROWTIME; inKey is its
// key (InputKey). emit is called for every output, in statement order; its error stops Run.
func (p *Program) Run(in sqlrt.Row, inKey string, emit func(*Step) error) error {
	n := len(p.in.Columns)
	for _, s := range p.steps {
		s.ok = false
		row := s.row
		key := inKey
		if s.from < 0 {
			copy(row, in[:n+1])
		} else {
			src := p.steps[s.from]
			if !src.ok {
				continue // its input was filtered out
			}
			m := copy(row, src.Out)
			row[m] = in[n] // ROWTIME: the output carries its input's event time
			key = src.Key
		}
		if !p.step(s, row, key) {
			continue
		}
		s.ok = true
		if err := emit(s); err != nil {
			return err
		}
	}
	return nil
}

// step joins, filters and projects one row; false: no output.
func (p *Program) step(s *Step, row sqlrt.Row, inKey string) bool {
	st := s.Plan
	if j := st.Join; j != nil {
		for i := j.TableAt; i < len(st.Row); i++ {
			row[i] = sqlrt.Value{}
		}
		k := j.On.Eval(row)
		if k.IsNull() {
			s.noJoin.Inc() // ksqlDB drops a stream row whose join key is NULL
			return false
		}
		var r TableRow
		var found bool
		if k.Kind == sqlrt.Integer || k.Kind == sqlrt.BigInt {
			// The common case (an INT key) without a string per lookup: digits and '-' need no
			// escaping.
			p.keyBuf = strconv.AppendInt(p.keyBuf[:0], k.I, 10)
			r, found = s.view.GetBytes(p.keyBuf)
		} else {
			r, found = s.view.Get(TableKey(k))
		}
		switch {
		case found:
			copy(row[j.TableAt:], r.Vals)
		case j.Type == ksql.InnerJoin:
			return false
		default:
			// LEFT JOIN without a match: the table's key column is the join key all the same
			// (ksqlDB: the key column of a join result is the join key, from the stream side).
			row[s.keyAt] = coerce(k, st.Row[s.keyAt].Type)
		}
	}
	if w := st.Where; w != nil {
		if v := w.Eval(row); v.Kind != sqlrt.Boolean || !v.Bool() {
			return false
		}
	}
	for i, e := range st.Project {
		s.Out[i] = e.Eval(row)
	}
	s.Key = inKey
	if st.Key != nil {
		s.Key = sqlrt.KeyText(st.Key.Eval(row))
	}
	return true
}

// coerce converts a join key to the table key's type (CAST(R.USER_ID AS STRING) joins a
// STRING key; an INT status joins an INT code).
func coerce(v sqlrt.Value, t sqlrt.Type) sqlrt.Value {
	if v.Kind == t.Kind {
		return v
	}
	if c, err := sqlrt.FromText(sqlrt.KeyText(v), t); err == nil {
		return c
	}
	return v
}

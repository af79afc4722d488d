package windower

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jetsuite/jetsuite/shared/ksql"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/sqlrt"
)

// Table is one aggregation of the plan (CREATE TABLE ... AS SELECT ... GROUP BY): the windower
// folds its source stream's rows into the aggregates of each group (and window) and writes the
// table's rows to its KV bucket.
type Table struct {
	Name   string // KV bucket, = the table's name
	Source string // the JetStream stream its task reads
	Step   *plan.Step
}

// Windowed reports whether the table has a WINDOW clause.
func (t Table) Windowed() bool { return t.Step.Window != nil }

// Tables returns the aggregations of p, in statement order.
func Tables(p *plan.Plan) []Table {
	var out []Table
	for _, st := range p.StepsOf(plan.ServiceWindower) {
		if st.Kind != plan.Aggregate {
			continue
		}
		src := st.Input.Stream
		if st.FusedFrom != nil {
			// Fused (plan.Plan.Fuse): the task on the source computes the input's rows.
			src = st.FusedFrom.Stream
		}
		if st.TableInput {
			// A table's changes: the stream behind its KV bucket (every producer of a table,
			// the enricher, the CDC reader and the windower, writes its rows there).
			src = "KV_" + st.Input.Bucket
		}
		out = append(out, Table{Name: st.Output.Name, Source: src, Step: st})
	}
	return out
}

// unsupportedTable says why the windower cannot run t, or nil.
func unsupportedTable(t Table) error {
	if t.Step.TableInput && t.Step.Window != nil && t.Step.Window.Kind == ksql.Session {
		return fmt.Errorf("table %s aggregates table %s in SESSION windows: not supported (use a TUMBLING or HOPPING window, or aggregate the table's source stream)", t.Name, t.Step.Input.Name)
	}
	if t.Source == "" {
		return fmt.Errorf("table %s: its input %s has no stream", t.Name, t.Step.Input.Name)
	}
	return nil
}

// Column is one group-by value of a group, as JSON (persisted with the group's state).
type Column struct {
	Name string `json:"n"`
	JSON string `json:"v"`
}

// win is one open window of one group: its bounds and one accumulator per aggregate. A table
// without WINDOW has one win per group that never closes (Start 0).
type win struct {
	Start int64             `json:"s"` // epoch ms
	End   int64             `json:"e"` // exclusive for time windows; the last event (inclusive) for sessions
	Aggs  []json.RawMessage `json:"a"` // the accumulators' state, written at flush
	// Shown: the window's row is in the table (it satisfied HAVING when last written), so a
	// change that fails HAVING deletes it.
	Shown bool `json:"v,omitempty"`
	// Rows counts the input rows in the window of an aggregation over a TABLE: the window
	// goes (and its row is deleted) when the last one is taken out.
	Rows  int64 `json:"r,omitempty"`
	accs  []sqlrt.Accumulator
	dirty bool // changed since its row was last written
}

func (w *win) marshalAggs() error {
	w.Aggs = w.Aggs[:0]
	for _, a := range w.accs {
		b, err := a.MarshalJSON()
		if err != nil {
			return err
		}
		w.Aggs = append(w.Aggs, b)
	}
	return nil
}

// windowSpec is a table's window in milliseconds.
type windowSpec struct {
	kind      ksql.WindowKind // "" for a table without WINDOW
	size, adv int64
	gap       int64
}

func specOf(w *plan.Window) windowSpec {
	if w == nil {
		return windowSpec{}
	}
	s := windowSpec{kind: w.Kind}
	switch w.Kind {
	case ksql.Session:
		s.gap = w.Size.Milliseconds()
	default:
		s.size, s.adv = w.Size.Milliseconds(), w.Advance.Milliseconds()
	}
	return s
}

// knownTables reports names that are not tables of the windower.
func knownTables(names []string, tables []Table) error {
	var unknown []string
	for _, n := range names {
		found := false
		for _, t := range tables {
			found = found || t.Name == strings.ToUpper(n)
		}
		if !found {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		var all []string
		for _, t := range tables {
			all = append(all, t.Name)
		}
		return fmt.Errorf("unknown tables: %s; the pipeline's aggregations are %s", strings.Join(unknown, ", "), strings.Join(all, ", "))
	}
	return nil
}

// prevRow is what one row of an input TABLE (by its key) added to an aggregation: its group,
// the windows it went into and its aggregate arguments, so that a change or deletion of the
// row takes exactly that out again. Saved in WINDOWER_STATE as _rows.<TABLE>.<input key>.
type prevRow struct {
	Group  string              `json:"g"`
	Starts []int64             `json:"s"`
	Args   [][]json.RawMessage `json:"a"`
	Seq    uint64              `json:"q"` // the input that made it
	args   [][]sqlrt.Value
}

// encode fills Args from args (types: each aggregate's argument types).
func (p *prevRow) encode(aggs []sqlrt.Aggregate) {
	p.Args = make([][]json.RawMessage, len(p.args))
	for i, vs := range p.args {
		p.Args[i] = make([]json.RawMessage, len(vs))
		for j, v := range vs {
			p.Args[i][j] = sqlrt.AppendJSON(nil, v, aggs[i].Args[j].Type)
		}
	}
}

// decode fills args from Args.
func (p *prevRow) decode(aggs []sqlrt.Aggregate) error {
	if len(p.Args) != len(aggs) {
		return fmt.Errorf("%d aggregates saved, the statement has %d", len(p.Args), len(aggs))
	}
	p.args = make([][]sqlrt.Value, len(p.Args))
	for i, vs := range p.Args {
		if len(vs) != len(aggs[i].Args) {
			return fmt.Errorf("aggregate %d: %d arguments saved, the statement has %d", i, len(vs), len(aggs[i].Args))
		}
		p.args[i] = make([]sqlrt.Value, len(vs))
		for j, raw := range vs {
			v, err := sqlrt.FromJSON(raw, aggs[i].Args[j].Type)
			if err != nil {
				return err
			}
			p.args[i][j] = v
		}
	}
	return nil
}

// fusedStatements returns the stateless statements the plan fused into the windower, by the
// source stream whose task runs them (in statement order), and the sources in plan order.
func fusedStatements(p *plan.Plan) (map[string][]*plan.Step, []string) {
	out := map[string][]*plan.Step{}
	var order []string
	for _, st := range p.StepsOf(plan.ServiceWindower) {
		if st.Kind != plan.Transform || st.FusedFrom == nil {
			continue
		}
		src := st.FusedFrom.Stream
		if _, ok := out[src]; !ok {
			order = append(order, src)
		}
		out[src] = append(out[src], st)
	}
	return out, order
}

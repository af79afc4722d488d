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
	Source string // the JetStream stream it reads
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
		out = append(out, Table{Name: st.Output.Name, Source: st.Input.Stream, Step: st})
	}
	return out
}

// unsupportedTable says why the windower cannot run t, or nil.
func unsupportedTable(t Table) error {
	if t.Step.TableInput {
		return fmt.Errorf("table %s aggregates table %s: aggregations over a table are not executed yet (aggregate the table's source stream instead)", t.Name, t.Step.Input.Name)
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

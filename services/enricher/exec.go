package enricher

import (
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/sqlrt"
	"github.com/jetsuite/jetsuite/shared/transform"
)

// durable is a consumer name for a plan object: "enricher-" and the name in lower case with
// dashes (WEB_USERS: enricher-web-users).
func durable(name string) string { return plan.Durable(ServiceName, name) }

// tableLoader returns the loader row function of a Load step: decode the source record with
// the table's columns, key it by its primary key, write it as the table's JSON row.
func tableLoader(st *plan.Step) func(dst, data []byte) (string, []byte, error) {
	o := st.Output
	dec := sqlrt.NewDecoder(o.Columns)
	row := make(sqlrt.Row, len(o.Columns))
	keyAt := st.KeyColumn
	return func(dst, data []byte) (string, []byte, error) {
		for i := range row {
			row[i] = sqlrt.Value{}
		}
		if err := dec.Decode(data, row); err != nil {
			return "", dst, err
		}
		if row[keyAt].IsNull() {
			return "", dst, fmt.Errorf("%w: %s (the primary key of %s)", events.ErrMissingField, o.Columns[keyAt].Name, o.Name)
		}
		return transform.TableKey(row[keyAt]), sqlrt.AppendObject(dst, o.Columns, row), nil
	}
}

// transformer runs every Transform step that reads one stream (a transform.Program): each
// input is decoded once, then each step (in statement order) joins, filters and projects it
// into its output stream.
type transformer struct {
	*stage
	prog   *transform.Program
	dec    *sqlrt.Decoder
	row    sqlrt.Row // the input's columns, then ROWTIME
	ncols  int
	max    int
	cur    jetstream.Msg // the input being transformed
	emitFn func(*transform.Step) error
}

func newTransformer(st *stage, steps []*plan.Step, views transform.Views, maxBytes int) (*transformer, error) {
	in := steps[0].Input
	prog, err := transform.NewProgram(in, steps, views, st.log)
	if err != nil {
		return nil, err
	}
	t := &transformer{stage: st, prog: prog, dec: sqlrt.NewDecoder(in.Columns), ncols: len(in.Columns),
		row: make(sqlrt.Row, len(in.Columns)+1), max: maxBytes}
	t.emitFn = t.emitStep
	st.one = t.one
	return t, nil
}

func (t *transformer) one(msg jetstream.Msg) error {
	data := msg.Data()
	if len(data) > t.max {
		return t.deadLetter(msg, tooLarge(len(data), t.max))
	}
	row := t.row
	for i := range row {
		row[i] = sqlrt.Value{}
	}
	if err := t.dec.Decode(data, row[:t.ncols]); err != nil {
		return t.deadLetter(msg, err)
	}
	row[t.ncols] = sqlrt.BigIntValue(events.EventTimeMillis(msg))
	t.cur = msg
	return t.prog.Run(row, t.prog.InputKey(row, msg.Headers()), t.emitFn)
}

// emitStep publishes one output row of the current input.
func (t *transformer) emitStep(s *transform.Step) error {
	start := len(t.arena)
	t.arena = sqlrt.AppendObject(t.arena, s.Plan.Output.Columns, s.Out)
	return t.emit(s.Plan.Output.Subject, t.arena[start:len(t.arena):len(t.arena)], s.Key, t.cur)
}

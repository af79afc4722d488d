package enricher

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/ksql"
	"github.com/jetsuite/jetsuite/shared/kvx"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/sqlrt"
)

// tableRow is a row of a table view: the table's columns, decoded once when the row arrives
// (not once per joined event).
type tableRow struct{ vals sqlrt.Row }

// tableDecoder returns the View decoder of table o: the KV value's columns, with the primary
// key column taken from the KV key when the value lacks it.
func tableDecoder(o *plan.Object) func(key string, value []byte) (tableRow, error) {
	dec := sqlrt.NewDecoder(o.Columns)
	keyAt := o.Column(o.Key[0])
	return func(key string, value []byte) (tableRow, error) {
		row := make(sqlrt.Row, len(o.Columns))
		if err := dec.Decode(value, row); err != nil {
			return tableRow{}, err
		}
		if keyAt >= 0 && row[keyAt].IsNull() {
			text, err := kvx.Unescape(key)
			if err != nil {
				return tableRow{}, err
			}
			v, err := sqlrt.FromText(text, o.Columns[keyAt].Type)
			if err != nil {
				return tableRow{}, err
			}
			row[keyAt] = v
		}
		return tableRow{vals: row}, nil
	}
}

// tableKey is the KV key of a table row whose primary key is v ("" for NULL).
func tableKey(v sqlrt.Value) string {
	if v.IsNull() {
		return ""
	}
	return kvx.Escape(sqlrt.KeyText(v))
}

// durable is a consumer name for a plan object: "enricher-" and the name in lower case with
// dashes (WEB_USERS: enricher-web-users).
func durable(name string) string {
	return ServiceName + "-" + strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

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
		return tableKey(row[keyAt]), sqlrt.AppendObject(dst, o.Columns, row), nil
	}
}

// transformer runs every Transform step that reads one stream: each input is decoded once,
// then each step (in statement order) joins, filters and projects it into its output stream.
type transformer struct {
	*stage
	steps  []*transformStep
	dec    *sqlrt.Decoder
	row    sqlrt.Row // the input's columns, ROWTIME, then a joined table's columns
	ncols  int
	inKey  int  // the input's key column, or -1: the input's key is its Jetsuite-Key header
	useKey bool // some statement keeps the input's key (no PARTITION BY, no join)
	max    int
	keyBuf []byte
}

type transformStep struct {
	st     *plan.Step
	view   *View[tableRow] // the joined table
	keyAt  int             // the table's key column (in Step.Row)
	out    sqlrt.Row
	noJoin prometheus.Counter // inputs with a NULL join key
}

func newTransformer(st *stage, steps []*plan.Step, views map[string]*View[tableRow], maxBytes int) *transformer {
	in := steps[0].Input
	t := &transformer{stage: st, dec: sqlrt.NewDecoder(in.Columns), ncols: len(in.Columns), inKey: -1, max: maxBytes}
	if len(in.Key) == 1 {
		t.inKey = in.Column(in.Key[0])
	}
	width := len(in.Columns) + 1
	for _, s := range steps {
		ts := &transformStep{st: s, out: make(sqlrt.Row, len(s.Project)),
			noJoin: obs.Dropped.WithLabelValues(s.Name, "null_join_key")}
		if j := s.Join; j != nil {
			ts.view = views[j.Table.Name]
			ts.keyAt = j.TableAt + j.Table.Column(j.Table.Key[0])
		}
		width = max(width, len(s.Row))
		t.useKey = t.useKey || s.Key == nil
		t.steps = append(t.steps, ts)
	}
	t.row = make(sqlrt.Row, width)
	st.one = t.one
	return t
}

// views are the tables the transformer's joins read.
func (t *transformer) views() []interface{ Loaded() <-chan struct{} } {
	var vs []interface{ Loaded() <-chan struct{} }
	for _, s := range t.steps {
		if s.view != nil {
			vs = append(vs, s.view)
		}
	}
	return vs
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
	inKey := ""
	switch {
	case !t.useKey:
	case t.inKey >= 0:
		inKey = sqlrt.KeyText(row[t.inKey])
	default:
		inKey = msg.Headers().Get(events.HeaderKey)
	}
	for _, s := range t.steps {
		if err := t.step(s, msg, inKey); err != nil {
			return err
		}
	}
	return nil
}

func (t *transformer) step(s *transformStep, msg jetstream.Msg, inKey string) error {
	row, st := t.row, s.st
	if j := st.Join; j != nil {
		for i := j.TableAt; i < len(st.Row); i++ {
			row[i] = sqlrt.Value{}
		}
		k := j.On.Eval(row)
		if k.IsNull() {
			s.noJoin.Inc() // ksqlDB drops a stream row whose join key is NULL
			return nil
		}
		var r tableRow
		var found bool
		if k.Kind == sqlrt.Integer || k.Kind == sqlrt.BigInt {
			// The common case (an INT key) without a string per lookup: digits and '-' need no
			// escaping.
			t.keyBuf = strconv.AppendInt(t.keyBuf[:0], k.I, 10)
			r, found = s.view.GetBytes(t.keyBuf)
		} else {
			r, found = s.view.Get(tableKey(k))
		}
		switch {
		case found:
			copy(row[j.TableAt:], r.vals)
		case j.Type == ksql.InnerJoin:
			return nil
		default:
			// LEFT JOIN without a match: the table's key column is the join key all the same
			// (ksqlDB: the key column of a join result is the join key, from the stream side).
			row[s.keyAt] = coerce(k, st.Row[s.keyAt].Type)
		}
	}
	if w := st.Where; w != nil {
		if v := w.Eval(row); v.Kind != sqlrt.Boolean || !v.Bool() {
			return nil
		}
	}
	for i, e := range st.Project {
		s.out[i] = e.Eval(row)
	}
	key := inKey
	if st.Key != nil {
		key = sqlrt.KeyText(st.Key.Eval(row))
	}
	start := len(t.arena)
	t.arena = sqlrt.AppendObject(t.arena, st.Output.Columns, s.out)
	return t.emit(st.Output.Subject, t.arena[start:len(t.arena):len(t.arena)], key, msg)
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

// watchAfter runs a view once after is closed: when the enricher loads the table itself, once
// its loader has caught up.
func watchAfter(ctx context.Context, v *View[tableRow], kv jetstream.KeyValue, after <-chan struct{}) error {
	select {
	case <-after:
	case <-ctx.Done():
		return nil
	}
	return v.Run(ctx, kv)
}

package plan

import (
	"strconv"
	"strings"

	"github.com/jetsuite/jetsuite/shared/ksql"
	"github.com/jetsuite/jetsuite/shared/sqlrt"
)

func (c *compiler) createAsSelect(s *ksql.CreateAsSelect) error {
	q := s.Query
	kind := strings.ToLower(string(s.Kind))
	ws, err := c.with(s.Pos, s.With, kind)
	if err != nil {
		return err
	}
	subject, format := ws.subject, ws.format
	if format != FormatJSON {
		return unsupportedAt(s.Pos, format, "VALUE_FORMAT '"+format+"' for a query's output", "leave VALUE_FORMAT out (JSON)")
	}
	if c.plan.Object(s.Name) != nil {
		return c.declare(&Object{Name: s.Name}, s.Pos)
	}
	in, err := c.source(q.From)
	if err != nil {
		return err
	}
	st := &Step{Name: s.Name, Input: in, Pos: c.pos(s.Pos), SQL: s.String()}
	scope := &relScope{rels: []scopeRel{{obj: in, alias: q.From.Alias}}}
	st.Row, st.RowTime = rowOf(in.Columns)
	scope.rowTime = st.RowTime
	if q.Limit != nil {
		return unsupportedAt(s.Pos, "LIMIT", "LIMIT in a persistent query", "use LIMIT with jetsuite query")
	}
	if len(q.Joins) > 1 {
		return unsupportedAt(q.Joins[1].Right.Pos, q.Joins[1].Right.Name, "more than one JOIN in a statement", "join in two statements: create the first join as a stream")
	}
	if len(q.Joins) == 1 {
		if err := c.join(st, scope, q.Joins[0]); err != nil {
			return err
		}
	}
	if q.Where != nil {
		w, err := sqlrt.Compile(q.Where, scope)
		if err != nil {
			return located(err, s.Pos)
		}
		if w.Type.Kind != sqlrt.Boolean && w.Type.Kind != sqlrt.Null {
			return errAt(firstPos(q.Where), q.Where.String(), "WHERE must be a BOOLEAN condition, not "+w.Type.String(), "")
		}
		st.Where = &w
	}
	out := &Object{Name: s.Name, Kind: s.Kind, Format: FormatJSON, Retention: ws.retention, RetentionBytes: ws.retentionBytes, Partitions: ws.partitions, Pos: st.Pos, SQL: st.SQL, Producer: st}
	st.Output = out
	if len(q.GroupBy) > 0 {
		if s.Kind != ksql.Table {
			return errAt(s.Pos, "STREAM", "a GROUP BY query makes a table", "write CREATE TABLE "+s.Name+" AS SELECT ...")
		}
		if len(q.PartitionBy) > 0 {
			return errAt(firstPos(q.PartitionBy[0]), "PARTITION", "PARTITION BY and GROUP BY in one query", "GROUP BY already keys the table")
		}
		if st.Join != nil {
			return unsupportedAt(q.Joins[0].Right.Pos, q.Joins[0].Right.Name, "a JOIN in an aggregation", "create the joined stream first (CREATE STREAM ... AS SELECT ... JOIN ...), then aggregate it")
		}
		if err := c.aggregate(st, scope, q); err != nil {
			return err
		}
		out.Bucket = s.Name
		if subject != "" {
			return unsupportedAt(s.Pos, subject, "KAFKA_TOPIC for a table", "a table's rows are its KV bucket "+s.Name+"; leave KAFKA_TOPIC out")
		}
	} else {
		if q.Window != nil {
			return errAt(s.Pos, "WINDOW", "WINDOW without GROUP BY", "a window groups rows: add GROUP BY")
		}
		if q.Having != nil {
			return errAt(firstPos(q.Having), "HAVING", "HAVING without GROUP BY", "use WHERE")
		}
		if s.Kind != ksql.Stream {
			return unsupportedAt(s.Pos, "TABLE", "CREATE TABLE ... AS SELECT without GROUP BY", "derive a stream (CREATE STREAM ... AS SELECT), or aggregate with GROUP BY")
		}
		if in.Kind != ksql.Stream {
			return unsupportedAt(q.From.Pos, in.Name, "a stream derived from table "+in.Name, "read the table's source stream")
		}
		if q.Emit == "FINAL" {
			return errAt(s.Pos, "FINAL", "EMIT FINAL is only for windowed aggregations", "use EMIT CHANGES")
		}
		if err := c.transform(st, scope, q); err != nil {
			return err
		}
		if subject == "" {
			subject = s.Name
		}
		out.Subject = subject
		out.Stream = s.Name
		if other := c.bySubjectOrName(subject); other != nil && other.Subject == subject {
			return errAt(s.Pos, subject, "subject "+subject+" is already "+other.Name+"'s", "give KAFKA_TOPIC another name")
		}
	}
	c.plan.Objects = append(c.plan.Objects, out)
	c.plan.Steps = append(c.plan.Steps, st)
	return nil
}

// join compiles a stream–table join.
func (c *compiler) join(st *Step, scope *relScope, j ksql.Join) error {
	switch {
	case j.Within != nil:
		return unsupportedAt(j.Right.Pos, j.Right.Name, "stream–stream joins (WITHIN)", "materialise one side as a TABLE and join stream–table")
	case j.Type == ksql.RightJoin || j.Type == ksql.FullJoin:
		return unsupportedAt(j.Right.Pos, string(j.Type), string(j.Type)+" OUTER JOIN", "use LEFT JOIN or INNER JOIN of a stream with a table")
	}
	if st.Input.Kind != ksql.Stream {
		return unsupportedAt(j.Right.Pos, st.Input.Name, "table–table joins", "join a stream with a table")
	}
	t, err := c.source(j.Right)
	if err != nil {
		return err
	}
	if t.Kind != ksql.Table {
		return unsupportedAt(j.Right.Pos, t.Name, "stream–stream joins", t.Name+" is a stream: declare a TABLE over its subject and join that")
	}
	if t.Windowed() {
		return unsupportedAt(j.Right.Pos, t.Name, "joins with a windowed table", "join with a table that is not windowed")
	}
	at := len(st.Row)
	st.Row = append(st.Row, t.Columns...)
	scope.rels = append(scope.rels, scopeRel{obj: t, alias: j.Right.Alias, at: at})
	// ON must be stream-side-expression = table key.
	eq, ok := j.On.(*ksql.BinaryExpr)
	if !ok || eq.Op != "=" {
		return unsupportedAt(firstPos(j.On), j.On.String(), "a join condition other than an equality", "join ON <stream expression> = <table key column>")
	}
	keyIdx := at + t.Column(t.Key[0])
	side := func(e ksql.Expr) (isKey bool, streamOnly bool, err error) {
		streamOnly = true
		var ferr error
		rewrite(e, func(x ksql.Expr) ksql.Expr {
			if r, ok := x.(*ksql.ColumnRef); ok {
				i, _, err := scope.Resolve(r)
				if err != nil && ferr == nil {
					ferr = err
				}
				if i >= at {
					streamOnly = false
				}
				return x
			}
			return nil
		})
		if r, ok := e.(*ksql.ColumnRef); ok && ferr == nil {
			i, _, _ := scope.Resolve(r)
			isKey = i == keyIdx
		}
		return isKey, streamOnly, ferr
	}
	lk, ls, err := side(eq.Left)
	if err != nil {
		return located(err, j.Right.Pos)
	}
	rk, rs, err := side(eq.Right)
	if err != nil {
		return located(err, j.Right.Pos)
	}
	var streamSide ksql.Expr
	switch {
	case rk && ls:
		streamSide = eq.Left
	case lk && rs:
		streamSide = eq.Right
	default:
		return unsupportedAt(firstPos(j.On), j.On.String(), "joining "+t.Name+" on anything but its key "+t.Key[0],
			"join ON <stream expression> = "+scopeRel{obj: t, alias: j.Right.Alias}.qual()+"."+t.Key[0])
	}
	on, err := sqlrt.Compile(streamSide, scope)
	if err != nil {
		return located(err, j.Right.Pos)
	}
	st.Join = &Join{Type: j.Type, Table: t, On: on, TableAt: at}
	return nil
}

// itemName is the column name of a select item: its alias, a column's own name, a struct
// field's name, else KSQL_COL_<i> as ksqlDB names them.
func itemName(it ksql.SelectItem, i int) string {
	if it.Alias != "" {
		return it.Alias
	}
	switch e := it.Expr.(type) {
	case *ksql.ColumnRef:
		return e.Name
	case *ksql.Dereference:
		return e.Field
	}
	return "KSQL_COL_" + strconv.Itoa(i)
}

// transform compiles the select list and PARTITION BY of a stateless query.
func (c *compiler) transform(st *Step, scope *relScope, q *ksql.Select) error {
	st.Kind, st.Service = Transform, ServiceEnricher
	out := st.Output
	seen := map[string]bool{}
	add := func(name string, e sqlrt.Expr, pos ksql.Pos) error {
		if seen[name] {
			return errAt(pos, name, "column "+name+" appears twice in the select list of "+out.Name, "give one of them another name with AS")
		}
		seen[name] = true
		out.Columns = append(out.Columns, sqlrt.Column{Name: name, Type: e.Type})
		st.Project = append(st.Project, e)
		return nil
	}
	for i, it := range q.Items {
		if it.Star {
			for _, r := range scope.rels {
				if it.Qualifier != "" && !r.is(it.Qualifier) {
					continue
				}
				for k, col := range r.obj.Columns {
					idx, typ := r.at+k, col.Type
					e := sqlrt.Expr{Eval: func(row sqlrt.Row) sqlrt.Value { return row[idx] }, Type: typ, Text: col.Name}
					if err := add(col.Name, e, st.Pos.Pos); err != nil {
						return err
					}
				}
			}
			continue
		}
		if err := noAggregates(it.Expr); err != nil {
			return err
		}
		e, err := sqlrt.Compile(it.Expr, scope)
		if err != nil {
			return located(err, st.Pos.Pos)
		}
		if err := add(itemName(it, i), e, firstPos(it.Expr)); err != nil {
			return err
		}
	}
	switch {
	case len(q.PartitionBy) > 1:
		return unsupportedAt(firstPos(q.PartitionBy[1]), q.PartitionBy[1].String(), "PARTITION BY more than one expression", "partition by one expression")
	case len(q.PartitionBy) == 1:
		k, err := sqlrt.Compile(q.PartitionBy[0], scope)
		if err != nil {
			return located(err, st.Pos.Pos)
		}
		st.Key = &k
		out.Key = []string{keyName(q.PartitionBy[0], q.Items, out)}
	case st.Join != nil:
		k := st.Join.On
		st.Key = &k
		out.Key = []string{keyName(nil, q.Items, out)}
		if r, ok := exprOf(st.Join.On.Text, q.Items); ok {
			out.Key = []string{r}
		}
	default:
		out.Key = append([]string(nil), st.Input.Key...)
	}
	return nil
}

// keyName names the key of a derived stream: the select item that is the key expression, else
// the expression's column name, else ROWKEY.
func keyName(e ksql.Expr, items []ksql.SelectItem, out *Object) string {
	if e != nil {
		if n, ok := exprOf(e.String(), items); ok {
			return n
		}
		if r, ok := e.(*ksql.ColumnRef); ok {
			return r.Name
		}
	}
	return "ROWKEY"
}

func exprOf(text string, items []ksql.SelectItem) (string, bool) {
	for i, it := range items {
		if !it.Star && it.Expr.String() == text {
			return itemName(it, i), true
		}
	}
	return "", false
}

func noAggregates(e ksql.Expr) error {
	var err error
	rewrite(e, func(x ksql.Expr) ksql.Expr {
		if f, ok := x.(*ksql.FuncCall); ok && sqlrt.IsAggregate(f.Name) && err == nil {
			err = errAt(f.Pos, f.Name, "aggregate function "+f.Name+" needs GROUP BY", "add GROUP BY (and CREATE TABLE) to aggregate")
		}
		return nil
	})
	return err
}

// aggregate compiles a GROUP BY query.
func (c *compiler) aggregate(st *Step, scope *relScope, q *ksql.Select) error {
	st.Kind, st.Service = Aggregate, ServiceWindower
	st.TableInput = st.Input.Kind == ksql.Table
	st.EmitFinal = q.Emit == "FINAL"
	out := st.Output
	if q.Window != nil {
		w, err := window(q.Window, st.Pos.Pos)
		if err != nil {
			return err
		}
		st.Window, out.Window = w, w
	} else if st.EmitFinal {
		return errAt(st.Pos.Pos, "FINAL", "EMIT FINAL needs a WINDOW", "use EMIT CHANGES")
	}
	if st.TableInput && st.Input.Windowed() && q.Window == nil {
		return unsupportedAt(q.From.Pos, st.Input.Name, "aggregating windowed table "+st.Input.Name+" without a WINDOW", "add the WINDOW the result is grouped by")
	}
	// GROUP BY values and their result columns $G<i>.
	var texts []string
	for i, g := range q.GroupBy {
		if err := noAggregates(g); err != nil {
			return err
		}
		e, err := sqlrt.Compile(g, scope)
		if err != nil {
			return located(err, st.Pos.Pos)
		}
		st.GroupBy = append(st.GroupBy, e)
		st.Result = append(st.Result, sqlrt.Column{Name: "$G" + strconv.Itoa(i), Type: e.Type})
		texts = append(texts, g.String())
	}
	rs := &resultScope{windowed: q.Window != nil, groupBy: strings.Join(texts, ", ")}
	// Aggregate calls become result columns $A<j> (the same call twice is computed once).
	aggIdx := map[string]int{}
	var aggErr error
	// sameGroup is the GROUP BY position x is (the same text, or the same column however
	// qualified), else -1.
	groupCol := make([]int, len(q.GroupBy))
	for i, g := range q.GroupBy {
		groupCol[i] = -1
		if r, ok := g.(*ksql.ColumnRef); ok {
			groupCol[i], _, _ = scope.Resolve(r)
		}
	}
	sameGroup := func(x ksql.Expr) int {
		for i, t := range texts {
			if x.String() == t {
				return i
			}
		}
		if r, ok := x.(*ksql.ColumnRef); ok {
			if idx, _, err := scope.Resolve(r); err == nil {
				for i, gc := range groupCol {
					if gc == idx {
						return i
					}
				}
			}
		}
		return -1
	}
	lift := func(e ksql.Expr) ksql.Expr {
		return rewrite(e, func(x ksql.Expr) ksql.Expr {
			if i := sameGroup(x); i >= 0 {
				return &ksql.ColumnRef{Name: "$G" + strconv.Itoa(i), Pos: firstPos(x)}
			}
			f, ok := x.(*ksql.FuncCall)
			if !ok || !sqlrt.IsAggregate(f.Name) {
				return nil
			}
			if j, ok := aggIdx[f.String()]; ok {
				return &ksql.ColumnRef{Name: "$A" + strconv.Itoa(j), Pos: f.Pos}
			}
			a, err := sqlrt.CompileAggregate(f, scope, st.TableInput)
			if err != nil {
				if aggErr == nil {
					aggErr = located(err, f.Pos)
				}
				return x
			}
			if st.TableInput && !a.CanUndo {
				if aggErr == nil {
					aggErr = unsupportedAt(f.Pos, f.Name, f.Name+" over table "+st.Input.Name, "aggregate the table's source stream instead")
				}
				return x
			}
			j := len(st.Aggregates)
			aggIdx[f.String()] = j
			st.Aggregates = append(st.Aggregates, a)
			return &ksql.ColumnRef{Name: "$A" + strconv.Itoa(j), Pos: f.Pos}
		})
	}
	type item struct {
		name   string
		lifted ksql.Expr
		key    int // GROUP BY position when the item is exactly a GROUP BY expression, else -1
		pos    ksql.Pos
	}
	var items []item
	for i, it := range q.Items {
		if it.Star {
			return unsupportedAt(st.Pos.Pos, "*", "SELECT * in an aggregation", "list the GROUP BY columns and aggregates")
		}
		key := sameGroup(it.Expr)
		items = append(items, item{name: itemName(it, i), lifted: lift(it.Expr), key: key, pos: firstPos(it.Expr)})
		if aggErr != nil {
			return aggErr
		}
	}
	var having ksql.Expr
	if q.Having != nil {
		having = lift(q.Having)
		if aggErr != nil {
			return aggErr
		}
	}
	for j, a := range st.Aggregates {
		st.Result = append(st.Result, sqlrt.Column{Name: "$A" + strconv.Itoa(j), Type: a.Type})
	}
	if st.Window != nil {
		st.Result = append(st.Result,
			sqlrt.Column{Name: "WINDOWSTART", Type: sqlrt.Type{Kind: sqlrt.BigInt}},
			sqlrt.Column{Name: "WINDOWEND", Type: sqlrt.Type{Kind: sqlrt.BigInt}})
	}
	rs.cols = st.Result
	st.KeyColumns = make([]int, len(q.GroupBy))
	for i := range st.KeyColumns {
		st.KeyColumns[i] = -1
	}
	seen := map[string]bool{}
	for i, it := range items {
		if seen[it.name] {
			return errAt(it.pos, it.name, "column "+it.name+" appears twice in the select list of "+out.Name, "give one of them another name with AS")
		}
		seen[it.name] = true
		e, err := sqlrt.Compile(it.lifted, rs)
		if err != nil {
			return located(err, st.Pos.Pos)
		}
		st.Columns = append(st.Columns, e)
		out.Columns = append(out.Columns, sqlrt.Column{Name: it.name, Type: e.Type})
		if it.key >= 0 && st.KeyColumns[it.key] < 0 {
			st.KeyColumns[it.key] = i
		}
	}
	for g, k := range st.KeyColumns {
		if k >= 0 {
			out.Key = append(out.Key, out.Columns[k].Name)
		} else {
			out.Key = append(out.Key, "KSQL_COL_G"+strconv.Itoa(g))
		}
	}
	if having != nil {
		h, err := sqlrt.Compile(having, rs)
		if err != nil {
			return located(err, st.Pos.Pos)
		}
		if h.Type.Kind != sqlrt.Boolean && h.Type.Kind != sqlrt.Null {
			return errAt(firstPos(q.Having), q.Having.String(), "HAVING must be a BOOLEAN condition, not "+h.Type.String(), "")
		}
		h.Text = q.Having.String() // as written, not as lifted
		st.Having = &h
	}
	return nil
}

// window converts a WINDOW clause.
func window(w *ksql.Window, pos ksql.Pos) (*Window, error) {
	out := &Window{Kind: w.Kind, Size: w.Size.Duration()}
	if out.Size <= 0 {
		return nil, errAt(pos, w.Size.String(), "window size must be positive", "")
	}
	switch w.Kind {
	case ksql.Hopping:
		out.Advance = w.Advance.Duration()
		if out.Advance <= 0 || out.Advance > out.Size {
			return nil, errAt(pos, w.Advance.String(), "ADVANCE BY must be positive and at most the window size", "")
		}
	case ksql.Tumbling:
		out.Advance = out.Size
	}
	if w.Grace != nil {
		out.Grace, out.HasGrace = w.Grace.Duration(), true
	}
	if w.Retention != nil {
		out.Retention = w.Retention.Duration()
		if out.Retention < out.Size {
			return nil, errAt(pos, w.Retention.String(), "RETENTION must be at least the window size", "")
		}
	}
	return out, nil
}

package ksql

import (
	"strconv"
	"strings"
)

// Format prints statements as canonical SQL, one per line, each ending
// in ';'. Parsing the result gives the same AST (positions aside).
func Format(stmts []Statement) string {
	var b strings.Builder
	for _, s := range stmts {
		b.WriteString(s.String())
		b.WriteString(";\n")
	}
	return b.String()
}

// FormatExpr prints e; with fullParens every compound sub-expression
// (including e itself) is wrapped in parentheses, which makes the
// parser's precedence visible.
func FormatExpr(e Expr, fullParens bool) string {
	var b strings.Builder
	writeExpr(&b, e, fullParens)
	return b.String()
}

// quoteIdent prints a name unquoted when the lexer would read it back
// unchanged, back-quoted otherwise.
func quoteIdent(s string) string {
	ok := s != "" && !reserved[s]
	for i, r := range s {
		switch {
		case r == '_' || (r >= 'A' && r <= 'Z'):
		case i > 0 && r >= '0' && r <= '9':
		default:
			ok = false
		}
	}
	if ok {
		return s
	}
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

// quoteString prints a '...' literal, doubling embedded quotes.
func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (s *SetStmt) String() string { return "SET " + quoteString(s.Key) + " = " + quoteString(s.Value) }

func writeProps(b *strings.Builder, props []Property, connector bool) {
	if props == nil {
		return
	}
	b.WriteString(" WITH (")
	for i, p := range props {
		if i > 0 {
			b.WriteString(", ")
		}
		if connector {
			b.WriteString(quoteString(p.Key))
		} else {
			b.WriteString(quoteIdent(p.Key))
		}
		b.WriteString(" = ")
		b.WriteString(p.Value.String())
	}
	b.WriteString(")")
}

func createHead(b *strings.Builder, orReplace bool, kind string, ifNotExists bool, name string) {
	b.WriteString("CREATE ")
	if orReplace {
		b.WriteString("OR REPLACE ")
	}
	b.WriteString(kind)
	if ifNotExists {
		b.WriteString(" IF NOT EXISTS")
	}
	b.WriteString(" ")
	b.WriteString(quoteIdent(name))
}

func (s *CreateSource) String() string {
	var b strings.Builder
	createHead(&b, s.OrReplace, string(s.Kind), s.IfNotExists, s.Name)
	b.WriteString(" (")
	for i, c := range s.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteIdent(c.Name) + " " + c.Type.String())
		if c.PrimaryKey {
			b.WriteString(" PRIMARY KEY")
		}
		if c.Key {
			b.WriteString(" KEY")
		}
	}
	b.WriteString(")")
	writeProps(&b, s.With, false)
	return b.String()
}

func (s *CreateAsSelect) String() string {
	var b strings.Builder
	createHead(&b, s.OrReplace, string(s.Kind), s.IfNotExists, s.Name)
	writeProps(&b, s.With, false)
	b.WriteString(" AS ")
	b.WriteString(s.Query.String())
	return b.String()
}

func (s *InsertInto) String() string {
	return "INSERT INTO " + quoteIdent(s.Target) + " " + s.Query.String()
}

func (s *DropStmt) String() string {
	out := "DROP " + string(s.Kind)
	if s.IfExists {
		out += " IF EXISTS"
	}
	out += " " + quoteIdent(s.Name)
	if s.DeleteTopic {
		out += " DELETE TOPIC"
	}
	return out
}

func (s *CreateConnector) String() string {
	var b strings.Builder
	createHead(&b, false, string(s.Kind)+" CONNECTOR", s.IfNotExists, s.Name)
	writeProps(&b, s.With, true)
	return b.String()
}

func (s *QueryStmt) String() string { return s.Query.String() }

func writeRelation(b *strings.Builder, r Relation) {
	b.WriteString(quoteIdent(r.Name))
	if r.Alias != "" {
		b.WriteString(" " + quoteIdent(r.Alias))
	}
}

func exprList(es []Expr) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.String()
	}
	return strings.Join(parts, ", ")
}

// String prints the query on one line.
func (q *Select) String() string {
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, it := range q.Items {
		if i > 0 {
			b.WriteString(", ")
		}
		switch {
		case it.Star && it.Qualifier != "":
			b.WriteString(quoteIdent(it.Qualifier) + ".*")
		case it.Star:
			b.WriteString("*")
		default:
			b.WriteString(it.Expr.String())
			if it.Alias != "" {
				b.WriteString(" AS " + quoteIdent(it.Alias))
			}
		}
	}
	b.WriteString(" FROM ")
	writeRelation(&b, q.From)
	for _, j := range q.Joins {
		b.WriteString(" " + string(j.Type) + " JOIN ")
		writeRelation(&b, j.Right)
		if j.Within != nil {
			if j.WithinAfter != nil {
				b.WriteString(" WITHIN (" + j.Within.String() + ", " + j.WithinAfter.String() + ")")
			} else {
				b.WriteString(" WITHIN " + j.Within.String())
			}
		}
		b.WriteString(" ON " + j.On.String())
	}
	if w := q.Window; w != nil {
		b.WriteString(" WINDOW " + w.String())
	}
	if q.Where != nil {
		b.WriteString(" WHERE " + q.Where.String())
	}
	if q.GroupBy != nil {
		b.WriteString(" GROUP BY " + exprList(q.GroupBy))
	}
	if q.PartitionBy != nil {
		b.WriteString(" PARTITION BY " + exprList(q.PartitionBy))
	}
	if q.Having != nil {
		b.WriteString(" HAVING " + q.Having.String())
	}
	if q.Emit != "" {
		b.WriteString(" EMIT " + q.Emit)
	}
	if q.Limit != nil {
		b.WriteString(" LIMIT " + strconv.FormatInt(*q.Limit, 10))
	}
	return b.String()
}

// String prints e.g. TUMBLING (SIZE 60 SECOND, GRACE PERIOD 1 MINUTE).
func (w *Window) String() string {
	var parts []string
	switch w.Kind {
	case Session:
		parts = append(parts, w.Size.String())
	default:
		parts = append(parts, "SIZE "+w.Size.String())
		if w.Advance != nil {
			parts = append(parts, "ADVANCE BY "+w.Advance.String())
		}
	}
	if w.Retention != nil {
		parts = append(parts, "RETENTION "+w.Retention.String())
	}
	if w.Grace != nil {
		parts = append(parts, "GRACE PERIOD "+w.Grace.String())
	}
	return string(w.Kind) + " (" + strings.Join(parts, ", ") + ")"
}

// String prints the type, e.g. DECIMAL(10, 2) or MAP<STRING, ARRAY<INT>>.
func (t *Type) String() string {
	switch t.Name {
	case "DECIMAL":
		if len(t.Params) == 2 {
			return "DECIMAL(" + strconv.Itoa(t.Params[0]) + ", " + strconv.Itoa(t.Params[1]) + ")"
		}
	case "ARRAY":
		if t.Elem != nil {
			return "ARRAY<" + t.Elem.String() + ">"
		}
	case "MAP":
		if t.Key != nil && t.Value != nil {
			return "MAP<" + t.Key.String() + ", " + t.Value.String() + ">"
		}
	case "STRUCT":
		parts := make([]string, len(t.Fields))
		for i, f := range t.Fields {
			parts[i] = quoteIdent(f.Name) + " " + f.Type.String()
		}
		return "STRUCT<" + strings.Join(parts, ", ") + ">"
	}
	return t.Name
}

// Precedence levels, lowest first.
const (
	precOr = iota + 1
	precAnd
	precNot
	precCmp
	precAdd
	precMul
	precUnary
	precPrimary
)

func prec(e Expr) int {
	switch e := e.(type) {
	case *BinaryExpr:
		switch e.Op {
		case "OR":
			return precOr
		case "AND":
			return precAnd
		case "+", "-":
			return precAdd
		case "*", "/", "%":
			return precMul
		}
		return precCmp
	case *UnaryExpr:
		if e.Op == "NOT" {
			return precNot
		}
		return precUnary
	case *LikeExpr, *InExpr, *BetweenExpr, *IsNullExpr:
		return precCmp
	}
	return precPrimary
}

// child writes e, parenthesised when its precedence is below min (or,
// in full mode, whenever it is compound).
func child(b *strings.Builder, e Expr, min int, full bool) {
	if prec(e) < min && !full {
		b.WriteString("(")
		writeExpr(b, e, full)
		b.WriteString(")")
		return
	}
	writeExpr(b, e, full)
}

func writeExpr(b *strings.Builder, e Expr, full bool) {
	open := full && prec(e) < precPrimary
	if open {
		b.WriteString("(")
		defer b.WriteString(")")
	}
	not := func(n bool) {
		if n {
			b.WriteString(" NOT")
		}
	}
	switch e := e.(type) {
	case *ColumnRef:
		if e.Qualifier != "" {
			b.WriteString(quoteIdent(e.Qualifier) + ".")
		}
		b.WriteString(quoteIdent(e.Name))
	case *StringLit:
		b.WriteString(quoteString(e.Value))
	case *NumberLit:
		b.WriteString(e.Text)
	case *BoolLit:
		if e.Value {
			b.WriteString("TRUE")
		} else {
			b.WriteString("FALSE")
		}
	case *NullLit:
		b.WriteString("NULL")
	case *BinaryExpr:
		pr := prec(e)
		if pr == precCmp {
			// comparison is not associative: both sides are additive.
			child(b, e.Left, precAdd, full)
			b.WriteString(" " + e.Op + " ")
			child(b, e.Right, precAdd, full)
			return
		}
		child(b, e.Left, pr, full)
		b.WriteString(" " + e.Op + " ")
		child(b, e.Right, pr+1, full)
	case *UnaryExpr:
		if e.Op == "NOT" {
			b.WriteString("NOT ")
			child(b, e.X, precNot, full)
			return
		}
		b.WriteString(e.Op)
		if u, ok := e.X.(*UnaryExpr); ok && u.Op != "NOT" && !full {
			// avoid "--" (a comment) and "+-"-style ambiguity
			b.WriteString("(")
			writeExpr(b, e.X, full)
			b.WriteString(")")
			return
		}
		child(b, e.X, precUnary, full)
	case *LikeExpr:
		child(b, e.X, precAdd, full)
		not(e.Not)
		b.WriteString(" LIKE ")
		child(b, e.Pattern, precAdd, full)
	case *InExpr:
		child(b, e.X, precAdd, full)
		not(e.Not)
		b.WriteString(" IN (")
		for i, x := range e.List {
			if i > 0 {
				b.WriteString(", ")
			}
			writeExpr(b, x, full)
		}
		b.WriteString(")")
	case *BetweenExpr:
		child(b, e.X, precAdd, full)
		not(e.Not)
		b.WriteString(" BETWEEN ")
		child(b, e.Lo, precAdd, full)
		b.WriteString(" AND ")
		child(b, e.Hi, precAdd, full)
	case *IsNullExpr:
		child(b, e.X, precAdd, full)
		b.WriteString(" IS")
		not(e.Not)
		b.WriteString(" NULL")
	case *FuncCall:
		b.WriteString(quoteIdent(e.Name) + "(")
		if e.Star {
			b.WriteString("*")
		}
		for i, a := range e.Args {
			if i > 0 {
				b.WriteString(", ")
			}
			writeExpr(b, a, full)
		}
		b.WriteString(")")
	case *CastExpr:
		b.WriteString("CAST(")
		writeExpr(b, e.X, full)
		b.WriteString(" AS " + e.Type.String() + ")")
	case *CaseExpr:
		b.WriteString("CASE")
		if e.Operand != nil {
			b.WriteString(" ")
			writeExpr(b, e.Operand, full)
		}
		for _, w := range e.Whens {
			b.WriteString(" WHEN ")
			writeExpr(b, w.Cond, full)
			b.WriteString(" THEN ")
			writeExpr(b, w.Result, full)
		}
		if e.Else != nil {
			b.WriteString(" ELSE ")
			writeExpr(b, e.Else, full)
		}
		b.WriteString(" END")
	case *Dereference:
		child(b, e.X, precPrimary, full)
		b.WriteString("->" + quoteIdent(e.Field))
	case *Subscript:
		child(b, e.X, precPrimary, full)
		b.WriteString("[")
		writeExpr(b, e.Index, full)
		b.WriteString("]")
	}
}

func (e *ColumnRef) String() string   { return FormatExpr(e, false) }
func (e *StringLit) String() string   { return FormatExpr(e, false) }
func (e *NumberLit) String() string   { return FormatExpr(e, false) }
func (e *BoolLit) String() string     { return FormatExpr(e, false) }
func (e *NullLit) String() string     { return FormatExpr(e, false) }
func (e *BinaryExpr) String() string  { return FormatExpr(e, false) }
func (e *UnaryExpr) String() string   { return FormatExpr(e, false) }
func (e *LikeExpr) String() string    { return FormatExpr(e, false) }
func (e *InExpr) String() string      { return FormatExpr(e, false) }
func (e *BetweenExpr) String() string { return FormatExpr(e, false) }
func (e *IsNullExpr) String() string  { return FormatExpr(e, false) }
func (e *FuncCall) String() string    { return FormatExpr(e, false) }
func (e *CastExpr) String() string    { return FormatExpr(e, false) }
func (e *CaseExpr) String() string    { return FormatExpr(e, false) }
func (e *Dereference) String() string { return FormatExpr(e, false) }
func (e *Subscript) String() string   { return FormatExpr(e, false) }

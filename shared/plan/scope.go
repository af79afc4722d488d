package plan

import (
	"strings"

	"github.com/jetsuite/jetsuite/shared/ksql"
	"github.com/jetsuite/jetsuite/shared/sqlrt"
)

// relScope resolves column references against a step's row: the columns of one or two
// relations (FROM and the joined table), each known by its name and alias, plus ROWTIME.
type relScope struct {
	rels    []scopeRel
	rowTime int
}

type scopeRel struct {
	obj   *Object
	alias string
	at    int // where its columns start in the row
}

func (r scopeRel) is(q string) bool {
	return strings.EqualFold(q, r.obj.Name) || (r.alias != "" && strings.EqualFold(q, r.alias))
}

// Resolve implements sqlrt.Scope.
func (s *relScope) Resolve(ref *ksql.ColumnRef) (int, sqlrt.Type, error) {
	if ref.Qualifier == "" && ref.Name == "ROWTIME" {
		return s.rowTime, sqlrt.Type{Kind: sqlrt.BigInt}, nil
	}
	if ref.Name == "WINDOWSTART" || ref.Name == "WINDOWEND" {
		return 0, sqlrt.Type{}, errAt(ref.Pos, ref.Name, ref.Name+" is only known in the select list and HAVING of a windowed aggregation", "")
	}
	var found []int
	var typ sqlrt.Type
	var in []string
	for _, r := range s.rels {
		if ref.Qualifier != "" && !r.is(ref.Qualifier) {
			continue
		}
		in = append(in, r.obj.Name)
		if ref.Qualifier != "" && ref.Name == "ROWTIME" {
			return s.rowTime, sqlrt.Type{Kind: sqlrt.BigInt}, nil
		}
		if i := r.obj.Column(ref.Name); i >= 0 {
			found = append(found, r.at+i)
			typ = r.obj.Columns[i].Type
		}
	}
	switch {
	case ref.Qualifier != "" && len(in) == 0:
		var names []string
		for _, r := range s.rels {
			names = append(names, r.obj.Name)
			if r.alias != "" {
				names[len(names)-1] += " (" + r.alias + ")"
			}
		}
		return 0, typ, errAt(ref.Pos, ref.Qualifier, "unknown source "+ref.Qualifier+" in "+ref.String()+"; the query reads "+strings.Join(names, ", "), "")
	case len(found) == 0:
		var cols []string
		for _, r := range s.rels {
			if ref.Qualifier != "" && !r.is(ref.Qualifier) {
				continue
			}
			for _, c := range r.obj.Columns {
				cols = append(cols, c.Name)
			}
		}
		return 0, typ, errAt(ref.Pos, ref.Name, "unknown column "+ref.Name+" in "+strings.Join(in, ", ")+"; columns are "+strings.Join(cols, ", "), "")
	case len(found) > 1:
		return 0, typ, errAt(ref.Pos, ref.Name, "column "+ref.Name+" is ambiguous: it is in "+strings.Join(in, " and "), "qualify it, e.g. "+s.rels[0].qual()+"."+ref.Name)
	}
	return found[0], typ, nil
}

func (r scopeRel) qual() string {
	if r.alias != "" {
		return r.alias
	}
	return r.obj.Name
}

// resultScope resolves the select list and HAVING of an aggregation: GROUP BY values and
// aggregate results (the compiler rewrote them into references to internal names), and
// WINDOWSTART / WINDOWEND.
type resultScope struct {
	cols     []sqlrt.Column // the result row: $G<i>, $A<j>, WINDOWSTART, WINDOWEND
	windowed bool
	groupBy  string // for error messages
}

// Resolve implements sqlrt.Scope.
func (s *resultScope) Resolve(ref *ksql.ColumnRef) (int, sqlrt.Type, error) {
	if ref.Qualifier == "" {
		for i, c := range s.cols {
			if c.Name == ref.Name {
				return i, c.Type, nil
			}
		}
	}
	if ref.Name == "WINDOWSTART" || ref.Name == "WINDOWEND" {
		return 0, sqlrt.Type{}, errAt(ref.Pos, ref.Name, ref.Name+" needs a WINDOW clause", "")
	}
	return 0, sqlrt.Type{}, errAt(ref.Pos, ref.String(), "column "+ref.String()+" is neither in GROUP BY ("+s.groupBy+") nor inside an aggregate function",
		"add it to GROUP BY or aggregate it, e.g. LATEST_BY_OFFSET("+ref.String()+")")
}

// rewrite returns e with every node for which f returns a replacement replaced (f sees a
// node before its children; children of a replaced node are not visited).
func rewrite(e ksql.Expr, f func(ksql.Expr) ksql.Expr) ksql.Expr {
	if e == nil {
		return nil
	}
	if r := f(e); r != nil {
		return r
	}
	rw := func(x ksql.Expr) ksql.Expr { return rewrite(x, f) }
	list := func(xs []ksql.Expr) []ksql.Expr {
		out := make([]ksql.Expr, len(xs))
		for i, x := range xs {
			out[i] = rw(x)
		}
		return out
	}
	switch n := e.(type) {
	case *ksql.BinaryExpr:
		return &ksql.BinaryExpr{Op: n.Op, Left: rw(n.Left), Right: rw(n.Right)}
	case *ksql.UnaryExpr:
		return &ksql.UnaryExpr{Op: n.Op, X: rw(n.X)}
	case *ksql.LikeExpr:
		return &ksql.LikeExpr{X: rw(n.X), Pattern: rw(n.Pattern), Not: n.Not}
	case *ksql.InExpr:
		return &ksql.InExpr{X: rw(n.X), List: list(n.List), Not: n.Not}
	case *ksql.BetweenExpr:
		return &ksql.BetweenExpr{X: rw(n.X), Lo: rw(n.Lo), Hi: rw(n.Hi), Not: n.Not}
	case *ksql.IsNullExpr:
		return &ksql.IsNullExpr{X: rw(n.X), Not: n.Not}
	case *ksql.FuncCall:
		return &ksql.FuncCall{Name: n.Name, Args: list(n.Args), Star: n.Star, Pos: n.Pos}
	case *ksql.CastExpr:
		return &ksql.CastExpr{X: rw(n.X), Type: n.Type}
	case *ksql.CaseExpr:
		c := &ksql.CaseExpr{Operand: rw(n.Operand), Else: rw(n.Else)}
		for _, w := range n.Whens {
			c.Whens = append(c.Whens, ksql.When{Cond: rw(w.Cond), Result: rw(w.Result)})
		}
		return c
	case *ksql.Dereference:
		return &ksql.Dereference{X: rw(n.X), Field: n.Field}
	case *ksql.Subscript:
		return &ksql.Subscript{X: rw(n.X), Index: rw(n.Index)}
	}
	return e
}

// firstPos is the position of the first column reference or call in e (zero if none).
func firstPos(e ksql.Expr) ksql.Pos {
	var p ksql.Pos
	rewrite(e, func(x ksql.Expr) ksql.Expr {
		if p.Line != 0 {
			return x
		}
		switch n := x.(type) {
		case *ksql.ColumnRef:
			p = n.Pos
			return x
		case *ksql.FuncCall:
			p = n.Pos
		}
		return nil
	})
	return p
}

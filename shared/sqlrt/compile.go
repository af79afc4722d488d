package sqlrt

import (
	"math"
	"strconv"
	"strings"

	"github.com/jetsuite/jetsuite/shared/ksql"
)

// Compile type-checks e against scope and returns it as a function of a row.
//
// The rules are ksqlDB's: NULL propagates through operators and most functions; AND, OR and
// NOT use three-valued logic; INT op INT is INT (division truncates, overflow wraps at 32
// bits like Java); mixed numbers widen INT < BIGINT < DECIMAL < DOUBLE; '+' on two strings
// concatenates; comparisons need comparable types (numbers with numbers, strings with
// strings). Runtime failures that ksqlDB logs and turns into NULL (division of integers by
// zero, CAST('x' AS INT), an array index out of range) are NULL here too.
//
// Errors are *ksql.SyntaxError with the line and column of the offending column reference or
// function call (Line 0 when the expression has neither; the caller places those).
func Compile(e ksql.Expr, scope Scope) (Expr, error) {
	c := &compiler{scope: scope}
	return c.expr(e)
}

type compiler struct{ scope Scope }

func typeErr(e ksql.Expr, msg, hint string) error {
	p := posOf(e)
	return &ksql.SyntaxError{Line: p.Line, Col: p.Col, Token: e.String(), Msg: msg, Hint: hint}
}

func unsupported(e ksql.Expr, what, hint string) error {
	p := posOf(e)
	return &ksql.SyntaxError{Line: p.Line, Col: p.Col, Token: e.String(), Msg: what + " is not supported", Hint: hint, Unsupported: true}
}

// posOf is the position of the first column reference or function call in e.
func posOf(e ksql.Expr) ksql.Pos {
	switch n := e.(type) {
	case *ksql.ColumnRef:
		return n.Pos
	case *ksql.FuncCall:
		return n.Pos
	case *ksql.BinaryExpr:
		return firstOf(n.Left, n.Right)
	case *ksql.UnaryExpr:
		return posOf(n.X)
	case *ksql.LikeExpr:
		return firstOf(n.X, n.Pattern)
	case *ksql.InExpr:
		return firstOf(append([]ksql.Expr{n.X}, n.List...)...)
	case *ksql.BetweenExpr:
		return firstOf(n.X, n.Lo, n.Hi)
	case *ksql.IsNullExpr:
		return posOf(n.X)
	case *ksql.CastExpr:
		return posOf(n.X)
	case *ksql.CaseExpr:
		xs := []ksql.Expr{}
		if n.Operand != nil {
			xs = append(xs, n.Operand)
		}
		for _, w := range n.Whens {
			xs = append(xs, w.Cond, w.Result)
		}
		if n.Else != nil {
			xs = append(xs, n.Else)
		}
		return firstOf(xs...)
	case *ksql.Dereference:
		return posOf(n.X)
	case *ksql.Subscript:
		return firstOf(n.X, n.Index)
	}
	return ksql.Pos{}
}

func firstOf(xs ...ksql.Expr) ksql.Pos {
	for _, x := range xs {
		if p := posOf(x); p.Line != 0 {
			return p
		}
	}
	return ksql.Pos{}
}

func (c *compiler) expr(e ksql.Expr) (Expr, error) {
	x, err := c.node(e)
	if err != nil {
		return Expr{}, err
	}
	x.Text = e.String()
	return x, nil
}

func constant(v Value, t Type) Expr { return Expr{Eval: func(Row) Value { return v }, Type: t} }

func (c *compiler) node(e ksql.Expr) (Expr, error) {
	switch n := e.(type) {
	case *ksql.ColumnRef:
		return c.column(n)
	case *ksql.StringLit:
		return constant(StringValue(n.Value), Type{Kind: String}), nil
	case *ksql.BoolLit:
		return constant(BoolValue(n.Value), Type{Kind: Boolean}), nil
	case *ksql.NullLit:
		return constant(Value{}, Type{}), nil
	case *ksql.NumberLit:
		return number(n)
	case *ksql.BinaryExpr:
		return c.binary(n)
	case *ksql.UnaryExpr:
		return c.unary(n)
	case *ksql.IsNullExpr:
		x, err := c.expr(n.X)
		if err != nil {
			return Expr{}, err
		}
		not := n.Not
		return Expr{Type: Type{Kind: Boolean}, Eval: func(r Row) Value { return BoolValue(x.Eval(r).IsNull() != not) }}, nil
	case *ksql.LikeExpr:
		return c.like(n)
	case *ksql.InExpr:
		return c.in(n)
	case *ksql.BetweenExpr:
		return c.between(n)
	case *ksql.FuncCall:
		if IsAggregate(n.Name) {
			return Expr{}, typeErr(n, "aggregate function "+n.Name+" is not allowed here", "aggregates belong in the select list or HAVING of a GROUP BY query")
		}
		return c.call(n)
	case *ksql.CastExpr:
		return c.cast(n)
	case *ksql.CaseExpr:
		return c.caseExpr(n)
	case *ksql.Dereference:
		x, err := c.expr(n.X)
		if err != nil {
			return Expr{}, err
		}
		return field(n, x, n.Field)
	case *ksql.Subscript:
		return c.subscript(n)
	}
	return Expr{}, unsupported(e, "expression "+e.String(), "")
}

func number(n *ksql.NumberLit) (Expr, error) {
	switch n.Kind {
	case ksql.Integer:
		i, err := strconv.ParseInt(n.Text, 10, 64)
		if err != nil {
			return Expr{}, typeErr(n, "integer "+n.Text+" is out of range", "")
		}
		if i >= math.MinInt32 && i <= math.MaxInt32 {
			return constant(IntValue(int32(i)), Type{Kind: Integer}), nil
		}
		return constant(BigIntValue(i), Type{Kind: BigInt}), nil
	case ksql.Decimal:
		f, _ := strconv.ParseFloat(n.Text, 64)
		scale := 0
		if i := strings.IndexByte(n.Text, '.'); i >= 0 {
			scale = len(n.Text) - i - 1
		}
		prec := len(strings.ReplaceAll(strings.TrimLeft(n.Text, "-0"), ".", ""))
		if prec < scale {
			prec = scale
		}
		if prec == 0 {
			prec = 1
		}
		return constant(DecimalValue(f), Type{Kind: Decimal, Precision: prec, Scale: scale}), nil
	}
	f, err := strconv.ParseFloat(n.Text, 64)
	if err != nil {
		return Expr{}, typeErr(n, "number "+n.Text+" is out of range", "")
	}
	return constant(DoubleValue(f), Type{Kind: Double}), nil
}

// column resolves a column reference; Q.F where Q is no source but a STRUCT column is field
// access (ksqlDB's dotted form of Q->F).
func (c *compiler) column(n *ksql.ColumnRef) (Expr, error) {
	i, t, err := c.scope.Resolve(n)
	if err != nil {
		if n.Qualifier != "" {
			if j, st, err2 := c.scope.Resolve(&ksql.ColumnRef{Name: n.Qualifier, Pos: n.Pos}); err2 == nil && st.Kind == Struct {
				x := Expr{Type: st, Eval: func(r Row) Value { return r[j] }, Text: n.Qualifier}
				return field(n, x, n.Name)
			}
		}
		return Expr{}, err
	}
	return Expr{Type: t, Eval: func(r Row) Value { return r[i] }}, nil
}

func field(n ksql.Expr, x Expr, name string) (Expr, error) {
	if x.Type.Kind != Struct {
		return Expr{}, typeErr(n, "-> needs a STRUCT, "+x.Text+" is "+x.Type.String(), "")
	}
	for i, f := range x.Type.Fields {
		if strings.EqualFold(f.Name, name) {
			return Expr{Type: f.Type, Eval: func(r Row) Value {
				v := x.Eval(r)
				if v.Kind != Struct {
					return Value{}
				}
				fs := v.Array()
				if i >= len(fs) {
					return Value{}
				}
				return fs[i]
			}}, nil
		}
	}
	var names []string
	for _, f := range x.Type.Fields {
		names = append(names, f.Name)
	}
	return Expr{}, typeErr(n, "unknown field "+name+" in "+x.Text+"; fields are "+strings.Join(names, ", "), "")
}

func (c *compiler) subscript(n *ksql.Subscript) (Expr, error) {
	x, err := c.expr(n.X)
	if err != nil {
		return Expr{}, err
	}
	idx, err := c.expr(n.Index)
	if err != nil {
		return Expr{}, err
	}
	switch x.Type.Kind {
	case Array:
		if !isInt(idx.Type.Kind) {
			return Expr{}, typeErr(n, "an ARRAY index must be an integer, "+idx.Text+" is "+idx.Type.String(), "")
		}
		return Expr{Type: *x.Type.Elem, Eval: func(r Row) Value {
			a, i := x.Eval(r), idx.Eval(r)
			if a.Kind != Array || i.IsNull() {
				return Value{}
			}
			// ksqlDB arrays are 1-based; negative indexes count from the end.
			vs, k := a.Array(), i.I
			if k < 0 {
				k = int64(len(vs)) + k + 1
			}
			if k < 1 || k > int64(len(vs)) {
				return Value{}
			}
			return vs[k-1]
		}}, nil
	case Map:
		if idx.Type.Kind != String && idx.Type.Kind != Null {
			return Expr{}, typeErr(n, "a MAP key must be a STRING, "+idx.Text+" is "+idx.Type.String(), "")
		}
		return Expr{Type: *x.Type.Value, Eval: func(r Row) Value {
			m, k := x.Eval(r), idx.Eval(r)
			if m.Kind != Map || k.IsNull() {
				return Value{}
			}
			return m.Map()[k.S]
		}}, nil
	}
	return Expr{}, typeErr(n, "[] needs an ARRAY or a MAP, "+x.Text+" is "+x.Type.String(), "")
}

func isInt(k Kind) bool { return k == Integer || k == BigInt }

// rank orders numeric kinds for widening.
func rank(k Kind) int {
	switch k {
	case Integer:
		return 1
	case BigInt:
		return 2
	case Decimal:
		return 3
	case Double:
		return 4
	}
	return 0
}

// widen is the type mixed numeric operands take.
func widen(a, b Type) Type {
	if a.Kind == Null {
		return b
	}
	if b.Kind == Null {
		return a
	}
	if rank(a.Kind) >= rank(b.Kind) {
		if a.Kind == Decimal && b.Kind == Decimal {
			return Type{Kind: Decimal, Precision: max(a.Precision, b.Precision), Scale: max(a.Scale, b.Scale)}
		}
		if a.Kind == Decimal && isInt(b.Kind) {
			return Type{Kind: Decimal, Precision: max(a.Precision, 19+a.Scale), Scale: a.Scale}
		}
		return a
	}
	return widen(b, a)
}

func numericOrNull(k Kind) bool { return k.numeric() || k == Null }

func (c *compiler) binary(n *ksql.BinaryExpr) (Expr, error) {
	l, err := c.expr(n.Left)
	if err != nil {
		return Expr{}, err
	}
	r, err := c.expr(n.Right)
	if err != nil {
		return Expr{}, err
	}
	switch n.Op {
	case "AND", "OR":
		for _, x := range []Expr{l, r} {
			if x.Type.Kind != Boolean && x.Type.Kind != Null {
				return Expr{}, typeErr(n, n.Op+" needs BOOLEAN operands, "+x.Text+" is "+x.Type.String(), "")
			}
		}
		return logic(n.Op == "AND", l, r), nil
	case "=", "<>", "!=", "<", "<=", ">", ">=":
		if !comparable(l.Type, r.Type) {
			return Expr{}, typeErr(n, "cannot compare "+l.Type.String()+" with "+r.Type.String()+" in "+n.String(), "CAST one side, e.g. CAST("+r.Text+" AS "+l.Type.String()+")")
		}
		return comparison(n.Op, l, r), nil
	case "+":
		if (l.Type.Kind == String || l.Type.Kind == Null) && (r.Type.Kind == String || r.Type.Kind == Null) && (l.Type.Kind == String || r.Type.Kind == String) {
			return Expr{Type: Type{Kind: String}, Eval: func(row Row) Value {
				a, b := l.Eval(row), r.Eval(row)
				if a.IsNull() || b.IsNull() {
					return Value{}
				}
				return StringValue(a.S + b.S)
			}}, nil
		}
	}
	if !numericOrNull(l.Type.Kind) || !numericOrNull(r.Type.Kind) {
		return Expr{}, typeErr(n, "operator "+n.Op+" needs numbers, "+n.String()+" has "+l.Type.String()+" and "+r.Type.String(),
			map[bool]string{true: "'+' joins two strings; CAST a number AS STRING first", false: ""}[n.Op == "+"])
	}
	t := widen(l.Type, r.Type)
	if t.Kind == Decimal {
		switch n.Op {
		case "*":
			t.Scale = l.Type.Scale + r.Type.Scale
		case "/":
			t.Scale = max(6, l.Type.Scale+r.Type.Precision+1)
		}
		t.Precision = max(t.Precision, t.Scale+1)
	}
	if t.Kind == Null {
		t = Type{Kind: Integer}
	}
	return arith(n.Op, t, l, r), nil
}

func logic(and bool, l, r Expr) Expr {
	return Expr{Type: Type{Kind: Boolean}, Eval: func(row Row) Value {
		a := l.Eval(row)
		if !a.IsNull() && a.Bool() != and { // FALSE AND x, TRUE OR x
			return a
		}
		b := r.Eval(row)
		switch {
		case !b.IsNull() && b.Bool() != and:
			return b
		case a.IsNull() || b.IsNull():
			return Value{}
		}
		return BoolValue(and)
	}}
}

func comparable(a, b Type) bool {
	switch {
	case a.Kind == Null || b.Kind == Null:
		return true
	case a.Kind.numeric() && b.Kind.numeric():
		return true
	case a.Kind == String && b.Kind == String, a.Kind == Boolean && b.Kind == Boolean:
		return true
	case a.Kind == Array || a.Kind == Map || a.Kind == Struct:
		return a.Equal(b)
	}
	return false
}

func comparison(op string, l, r Expr) Expr {
	var test func(int) bool
	switch op {
	case "=":
		test = func(c int) bool { return c == 0 }
	case "<>", "!=":
		test = func(c int) bool { return c != 0 }
	case "<":
		test = func(c int) bool { return c < 0 }
	case "<=":
		test = func(c int) bool { return c <= 0 }
	case ">":
		test = func(c int) bool { return c > 0 }
	default:
		test = func(c int) bool { return c >= 0 }
	}
	structured := l.Type.Kind == Array || l.Type.Kind == Map || l.Type.Kind == Struct
	return Expr{Type: Type{Kind: Boolean}, Eval: func(row Row) Value {
		a, b := l.Eval(row), r.Eval(row)
		if a.IsNull() || b.IsNull() {
			return Value{}
		}
		if structured {
			if op != "=" && op != "<>" && op != "!=" {
				return Value{}
			}
			return BoolValue(Equal(a, b) == (op == "="))
		}
		c, ok := Compare(a, b)
		if !ok {
			return Value{}
		}
		return BoolValue(test(c))
	}}
}

func arith(op string, t Type, l, r Expr) Expr {
	var eval func(a, b Value) Value
	switch t.Kind {
	case Integer, BigInt:
		wrap := func(i int64) Value {
			if t.Kind == Integer {
				return IntValue(int32(i))
			}
			return BigIntValue(i)
		}
		switch op {
		case "+":
			eval = func(a, b Value) Value { return wrap(a.I + b.I) }
		case "-":
			eval = func(a, b Value) Value { return wrap(a.I - b.I) }
		case "*":
			eval = func(a, b Value) Value { return wrap(a.I * b.I) }
		case "/":
			eval = func(a, b Value) Value {
				if b.I == 0 {
					return Value{}
				}
				return wrap(a.I / b.I)
			}
		default:
			eval = func(a, b Value) Value {
				if b.I == 0 {
					return Value{}
				}
				return wrap(a.I % b.I)
			}
		}
	default:
		mk := DoubleValue
		if t.Kind == Decimal {
			scale := t.Scale
			mk = func(f float64) Value { return DecimalValue(roundDecimal(f, scale)) }
		}
		switch op {
		case "+":
			eval = func(a, b Value) Value { return mk(a.Float() + b.Float()) }
		case "-":
			eval = func(a, b Value) Value { return mk(a.Float() - b.Float()) }
		case "*":
			eval = func(a, b Value) Value { return mk(a.Float() * b.Float()) }
		case "/":
			eval = func(a, b Value) Value {
				if t.Kind == Decimal && b.Float() == 0 {
					return Value{}
				}
				return mk(a.Float() / b.Float())
			}
		default:
			eval = func(a, b Value) Value {
				if t.Kind == Decimal && b.Float() == 0 {
					return Value{}
				}
				return mk(math.Mod(a.Float(), b.Float()))
			}
		}
	}
	return Expr{Type: t, Eval: func(row Row) Value {
		a, b := l.Eval(row), r.Eval(row)
		if a.IsNull() || b.IsNull() {
			return Value{}
		}
		return eval(a, b)
	}}
}

func (c *compiler) unary(n *ksql.UnaryExpr) (Expr, error) {
	x, err := c.expr(n.X)
	if err != nil {
		return Expr{}, err
	}
	if n.Op == "NOT" {
		if x.Type.Kind != Boolean && x.Type.Kind != Null {
			return Expr{}, typeErr(n, "NOT needs a BOOLEAN, "+x.Text+" is "+x.Type.String(), "")
		}
		return Expr{Type: Type{Kind: Boolean}, Eval: func(r Row) Value {
			v := x.Eval(r)
			if v.IsNull() {
				return v
			}
			return BoolValue(!v.Bool())
		}}, nil
	}
	if !numericOrNull(x.Type.Kind) {
		return Expr{}, typeErr(n, "unary "+n.Op+" needs a number, "+x.Text+" is "+x.Type.String(), "")
	}
	if n.Op == "+" {
		return x, nil
	}
	t := x.Type
	return Expr{Type: t, Eval: func(r Row) Value {
		v := x.Eval(r)
		switch v.Kind {
		case Integer:
			return IntValue(int32(-v.I))
		case BigInt:
			return BigIntValue(-v.I)
		case Double, Decimal:
			v.F = -v.F
		}
		return v
	}}, nil
}

func (c *compiler) like(n *ksql.LikeExpr) (Expr, error) {
	x, err := c.expr(n.X)
	if err != nil {
		return Expr{}, err
	}
	p, err := c.expr(n.Pattern)
	if err != nil {
		return Expr{}, err
	}
	if (x.Type.Kind != String && x.Type.Kind != Null) || (p.Type.Kind != String && p.Type.Kind != Null) {
		return Expr{}, typeErr(n, "LIKE needs STRING operands, "+n.String()+" has "+x.Type.String()+" and "+p.Type.String(), "")
	}
	not := n.Not
	if lit, ok := n.Pattern.(*ksql.StringLit); ok {
		m := likeMatcher(lit.Value)
		return Expr{Type: Type{Kind: Boolean}, Eval: func(r Row) Value {
			v := x.Eval(r)
			if v.IsNull() {
				return Value{}
			}
			return BoolValue(m(v.S) != not)
		}}, nil
	}
	return Expr{Type: Type{Kind: Boolean}, Eval: func(r Row) Value {
		v, pv := x.Eval(r), p.Eval(r)
		if v.IsNull() || pv.IsNull() {
			return Value{}
		}
		return BoolValue(likeMatcher(pv.S)(v.S) != not)
	}}, nil
}

// likeMatcher compiles a LIKE pattern: % any run of characters, _ one character, everything
// else literal and case-sensitive (as ksqlDB).
func likeMatcher(pattern string) func(string) bool {
	pat := []rune(pattern)
	// Fast forms: '%x%', 'x%', '%x', 'x' without '_'.
	if !strings.ContainsRune(pattern, '_') {
		inner := strings.Trim(pattern, "%")
		if !strings.Contains(inner, "%") {
			pre, suf := strings.HasPrefix(pattern, "%"), strings.HasSuffix(pattern, "%") && len(pattern) > 1
			switch {
			case pre && suf:
				return func(s string) bool { return strings.Contains(s, inner) }
			case pre:
				return func(s string) bool { return strings.HasSuffix(s, inner) }
			case suf:
				return func(s string) bool { return strings.HasPrefix(s, inner) }
			default:
				return func(s string) bool { return s == inner }
			}
		}
	}
	return func(s string) bool { return likeMatch(pat, []rune(s)) }
}

func likeMatch(p, s []rune) bool {
	// Iterative wildcard matching with backtracking to the last %.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '_' || (p[pi] != '%' && p[pi] == s[si])):
			pi++
			si++
		case pi < len(p) && p[pi] == '%':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '%' {
		pi++
	}
	return pi == len(p)
}

func (c *compiler) in(n *ksql.InExpr) (Expr, error) {
	x, err := c.expr(n.X)
	if err != nil {
		return Expr{}, err
	}
	list := make([]Expr, len(n.List))
	for i, e := range n.List {
		if list[i], err = c.expr(e); err != nil {
			return Expr{}, err
		}
		if !comparable(x.Type, list[i].Type) {
			return Expr{}, typeErr(n, "cannot compare "+x.Type.String()+" with "+list[i].Type.String()+" in "+n.String(), "")
		}
	}
	not := n.Not
	return Expr{Type: Type{Kind: Boolean}, Eval: func(r Row) Value {
		v := x.Eval(r)
		if v.IsNull() {
			return Value{}
		}
		sawNull := false
		for _, e := range list {
			w := e.Eval(r)
			if w.IsNull() {
				sawNull = true
				continue
			}
			if c, ok := Compare(v, w); (ok && c == 0) || (!ok && Equal(v, w)) {
				return BoolValue(!not)
			}
		}
		if sawNull {
			return Value{}
		}
		return BoolValue(not)
	}}, nil
}

func (c *compiler) between(n *ksql.BetweenExpr) (Expr, error) {
	lo := &ksql.BinaryExpr{Op: ">=", Left: n.X, Right: n.Lo}
	hi := &ksql.BinaryExpr{Op: "<=", Left: n.X, Right: n.Hi}
	var e ksql.Expr = &ksql.BinaryExpr{Op: "AND", Left: lo, Right: hi}
	if n.Not {
		e = &ksql.UnaryExpr{Op: "NOT", X: e}
	}
	return c.node(e)
}

func (c *compiler) caseExpr(n *ksql.CaseExpr) (Expr, error) {
	var operand Expr
	var err error
	if n.Operand != nil {
		if operand, err = c.expr(n.Operand); err != nil {
			return Expr{}, err
		}
	}
	conds := make([]Expr, len(n.Whens))
	results := make([]Expr, len(n.Whens))
	var t Type
	for i, w := range n.Whens {
		if conds[i], err = c.expr(w.Cond); err != nil {
			return Expr{}, err
		}
		if n.Operand != nil {
			if !comparable(operand.Type, conds[i].Type) {
				return Expr{}, typeErr(n, "cannot compare "+operand.Type.String()+" with "+conds[i].Type.String()+" in CASE", "")
			}
		} else if conds[i].Type.Kind != Boolean && conds[i].Type.Kind != Null {
			return Expr{}, typeErr(w.Cond, "WHEN needs a BOOLEAN condition, "+conds[i].Text+" is "+conds[i].Type.String(), "")
		}
		if results[i], err = c.expr(w.Result); err != nil {
			return Expr{}, err
		}
		if t, err = unify(n, t, results[i].Type); err != nil {
			return Expr{}, err
		}
	}
	var els Expr
	if n.Else != nil {
		if els, err = c.expr(n.Else); err != nil {
			return Expr{}, err
		}
		if t, err = unify(n, t, els.Type); err != nil {
			return Expr{}, err
		}
	}
	hasElse := n.Else != nil
	conv := func(v Value) Value { return coerceTo(v, t) }
	return Expr{Type: t, Eval: func(r Row) Value {
		var ov Value
		if operand.Eval != nil {
			ov = operand.Eval(r)
		}
		for i, cond := range conds {
			cv := cond.Eval(r)
			if operand.Eval != nil {
				if ov.IsNull() || cv.IsNull() {
					continue
				}
				if c, ok := Compare(ov, cv); !(ok && c == 0) && !(!ok && Equal(ov, cv)) {
					continue
				}
			} else if cv.IsNull() || !cv.Bool() {
				continue
			}
			return conv(results[i].Eval(r))
		}
		if hasElse {
			return conv(els.Eval(r))
		}
		return Value{}
	}}, nil
}

// unify is the common type of t and u (CASE arms, COALESCE arguments).
func unify(n ksql.Expr, t, u Type) (Type, error) {
	switch {
	case t.Kind == Null:
		return u, nil
	case u.Kind == Null:
		return t, nil
	case t.Kind.numeric() && u.Kind.numeric():
		return widen(t, u), nil
	case t.Equal(u):
		return t, nil
	}
	return t, typeErr(n, "mixed types "+t.String()+" and "+u.String()+" in "+n.String(), "CAST them to one type")
}

// coerceTo converts a numeric value to the numeric type t (after widening); others pass.
func coerceTo(v Value, t Type) Value {
	if v.IsNull() || v.Kind == t.Kind || !v.Kind.numeric() || !t.Kind.numeric() {
		return v
	}
	switch t.Kind {
	case BigInt:
		return BigIntValue(v.I)
	case Double:
		return DoubleValue(v.Float())
	case Decimal:
		return DecimalValue(v.Float())
	}
	return v
}

func (c *compiler) cast(n *ksql.CastExpr) (Expr, error) {
	x, err := c.expr(n.X)
	if err != nil {
		return Expr{}, err
	}
	t, err := TypeOf(n.Type)
	if err != nil {
		return Expr{}, typeErr(n, err.Error(), "")
	}
	conv, ok := caster(x.Type, t)
	if !ok {
		return Expr{}, typeErr(n, "cannot CAST "+x.Type.String()+" AS "+t.String(), "")
	}
	return Expr{Type: t, Eval: func(r Row) Value {
		v := x.Eval(r)
		if v.IsNull() {
			return v
		}
		return conv(v)
	}}, nil
}

// caster returns the conversion of CAST(from AS to); values passed to it are not NULL.
func caster(from, to Type) (func(Value) Value, bool) {
	if from.Kind == Null || from.Equal(to) {
		return func(v Value) Value { return v }, true
	}
	switch to.Kind {
	case String:
		if from.Kind == Array || from.Kind == Map || from.Kind == Struct {
			return nil, false
		}
		return func(v Value) Value { return StringValue(KeyText(v)) }, true
	case Boolean:
		if from.Kind != String {
			return nil, false
		}
		return func(v Value) Value { return BoolValue(strings.EqualFold(strings.TrimSpace(v.S), "true")) }, true
	case Integer, BigInt:
		bits := 64
		if to.Kind == Integer {
			bits = 32
		}
		mk := func(i int64) Value {
			if bits == 32 {
				return IntValue(int32(i))
			}
			return BigIntValue(i)
		}
		switch {
		case isInt(from.Kind):
			return func(v Value) Value { return mk(v.I) }, true
		case from.Kind == Double || from.Kind == Decimal:
			return func(v Value) Value { return mk(int64(v.F)) }, true
		case from.Kind == String:
			return func(v Value) Value {
				i, err := strconv.ParseInt(strings.TrimSpace(v.S), 10, bits)
				if err != nil {
					return Value{}
				}
				return mk(i)
			}, true
		}
	case Double, Decimal:
		mk := DoubleValue
		if to.Kind == Decimal {
			mk = func(f float64) Value { return DecimalValue(roundDecimal(f, to.Scale)) }
		}
		switch {
		case from.Kind.numeric():
			return func(v Value) Value { return mk(v.Float()) }, true
		case from.Kind == String:
			return func(v Value) Value {
				f, err := strconv.ParseFloat(strings.TrimSpace(v.S), 64)
				if err != nil {
					return Value{}
				}
				return mk(f)
			}, true
		}
	case Array:
		if from.Kind != Array {
			return nil, false
		}
		ec, ok := caster(*from.Elem, *to.Elem)
		if !ok {
			return nil, false
		}
		return func(v Value) Value {
			in := v.Array()
			out := make([]Value, len(in))
			for i, e := range in {
				if !e.IsNull() {
					out[i] = ec(e)
				}
			}
			return ArrayValue(out)
		}, true
	case Map:
		if from.Kind != Map {
			return nil, false
		}
		vc, ok := caster(*from.Value, *to.Value)
		if !ok {
			return nil, false
		}
		return func(v Value) Value {
			out := make(map[string]Value, len(v.Map()))
			for k, e := range v.Map() {
				if !e.IsNull() {
					e = vc(e)
				}
				out[k] = e
			}
			return MapValue(out)
		}, true
	}
	return nil, false
}

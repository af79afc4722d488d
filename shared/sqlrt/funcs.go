package sqlrt

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jetsuite/jetsuite/shared/ksql"
)

// A scalar function: its arity and a builder that type-checks the compiled arguments and
// returns the call.
type scalar struct {
	min, max int    // argument count; max -1 for any number
	sig      string // for messages: "LCASE(STRING)"
	build    func(n *ksql.FuncCall, args []Expr) (Expr, error)
}

// scalars is the function table. It is a function (not a package variable) so that the table
// cannot be changed from outside and needs no init order.
func scalars() map[string]scalar {
	return map[string]scalar{
		"LCASE":             {1, 1, "LCASE(STRING)", strFunc(strings.ToLower)},
		"UCASE":             {1, 1, "UCASE(STRING)", strFunc(strings.ToUpper)},
		"TRIM":              {1, 1, "TRIM(STRING)", strFunc(strings.TrimSpace)},
		"LEN":               {1, 1, "LEN(STRING)", lenFunc},
		"CONCAT":            {1, -1, "CONCAT(STRING, ...)", concatFunc},
		"SUBSTRING":         {2, 3, "SUBSTRING(STRING, INT [, INT])", substringFunc},
		"REPLACE":           {3, 3, "REPLACE(STRING, STRING, STRING)", replaceFunc},
		"IFNULL":            {2, 2, "IFNULL(x, default)", coalesceFunc},
		"COALESCE":          {1, -1, "COALESCE(x, ...)", coalesceFunc},
		"ABS":               {1, 1, "ABS(number)", absFunc},
		"ROUND":             {1, 2, "ROUND(number [, INT])", roundFunc},
		"FLOOR":             {1, 1, "FLOOR(number)", floorCeil(math.Floor)},
		"CEIL":              {1, 1, "CEIL(number)", floorCeil(math.Ceil)},
		"TIMESTAMPTOSTRING": {2, 3, "TIMESTAMPTOSTRING(BIGINT, STRING [, STRING])", timestampToString},
		"STRINGTOTIMESTAMP": {2, 3, "STRINGTOTIMESTAMP(STRING, STRING [, STRING])", stringToTimestamp},
		"UNIX_TIMESTAMP":    {0, 0, "UNIX_TIMESTAMP()", unixTimestamp},
		"AS_VALUE":          {1, 1, "AS_VALUE(x)", func(_ *ksql.FuncCall, a []Expr) (Expr, error) { return a[0], nil }},
		"EXTRACTJSONFIELD":  {2, 2, "EXTRACTJSONFIELD(STRING, STRING)", extractJSONField},
	}
}

// FunctionNames is the sorted list of scalar functions Compile knows.
func FunctionNames() []string {
	var names []string
	for n := range scalars() {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (c *compiler) call(n *ksql.FuncCall) (Expr, error) {
	f, ok := scalars()[n.Name]
	if !ok {
		return Expr{}, &ksql.SyntaxError{Line: n.Pos.Line, Col: n.Pos.Col, Token: n.Name, Unsupported: true,
			Msg:  "function " + n.Name + " is not supported",
			Hint: "the scalar functions are " + strings.Join(FunctionNames(), ", ") + "; the aggregates " + strings.Join(AggregateNames(), ", ")}
	}
	if n.Star || len(n.Args) < f.min || (f.max >= 0 && len(n.Args) > f.max) {
		return Expr{}, typeErr(n, "wrong number of arguments to "+n.Name+"; it takes "+f.sig, "")
	}
	args := make([]Expr, len(n.Args))
	for i, a := range n.Args {
		x, err := c.expr(a)
		if err != nil {
			return Expr{}, err
		}
		args[i] = x
	}
	return f.build(n, args)
}

// want checks that every argument has one of the kinds (NULL literals pass).
func want(n *ksql.FuncCall, sig string, args []Expr, kinds ...func(Kind) bool) error {
	for i, a := range args {
		k := kinds[min(i, len(kinds)-1)]
		if a.Type.Kind != Null && !k(a.Type.Kind) {
			return typeErr(n, n.Name+" does not take "+a.Type.String()+" ("+a.Text+"); it takes "+sig, "")
		}
	}
	return nil
}

func isString(k Kind) bool { return k == String }
func isNumber(k Kind) bool { return k.numeric() }

func strFunc(f func(string) string) func(*ksql.FuncCall, []Expr) (Expr, error) {
	return func(n *ksql.FuncCall, a []Expr) (Expr, error) {
		if err := want(n, n.Name+"(STRING)", a, isString); err != nil {
			return Expr{}, err
		}
		x := a[0]
		return Expr{Type: Type{Kind: String}, Eval: func(r Row) Value {
			v := x.Eval(r)
			if v.IsNull() {
				return v
			}
			return StringValue(f(v.S))
		}}, nil
	}
}

func lenFunc(n *ksql.FuncCall, a []Expr) (Expr, error) {
	if err := want(n, "LEN(STRING)", a, isString); err != nil {
		return Expr{}, err
	}
	x := a[0]
	return Expr{Type: Type{Kind: Integer}, Eval: func(r Row) Value {
		v := x.Eval(r)
		if v.IsNull() {
			return v
		}
		return IntValue(int32(utf8.RuneCountInString(v.S)))
	}}, nil
}

// concatFunc: ksqlDB's CONCAT skips NULL arguments.
func concatFunc(n *ksql.FuncCall, a []Expr) (Expr, error) {
	if err := want(n, "CONCAT(STRING, ...)", a, isString); err != nil {
		return Expr{}, err
	}
	return Expr{Type: Type{Kind: String}, Eval: func(r Row) Value {
		var b strings.Builder
		for _, x := range a {
			if v := x.Eval(r); !v.IsNull() {
				b.WriteString(v.S)
			}
		}
		return StringValue(b.String())
	}}, nil
}

// substringFunc: positions are 1-based in characters; a negative start counts from the end.
func substringFunc(n *ksql.FuncCall, a []Expr) (Expr, error) {
	if err := want(n, "SUBSTRING(STRING, INT [, INT])", a, isString, isInt); err != nil {
		return Expr{}, err
	}
	return Expr{Type: Type{Kind: String}, Eval: func(r Row) Value {
		s, p := a[0].Eval(r), a[1].Eval(r)
		if s.IsNull() || p.IsNull() {
			return Value{}
		}
		rs := []rune(s.S)
		start := p.I
		if start < 0 {
			start = int64(len(rs)) + start + 1
		}
		if start < 1 {
			start = 1
		}
		end := int64(len(rs)) + 1
		if len(a) == 3 {
			l := a[2].Eval(r)
			if l.IsNull() {
				return Value{}
			}
			end = min(end, start+max(l.I, 0))
		}
		if start > int64(len(rs)) || end <= start {
			return StringValue("")
		}
		return StringValue(string(rs[start-1 : end-1]))
	}}, nil
}

func replaceFunc(n *ksql.FuncCall, a []Expr) (Expr, error) {
	if err := want(n, "REPLACE(STRING, STRING, STRING)", a, isString); err != nil {
		return Expr{}, err
	}
	return Expr{Type: Type{Kind: String}, Eval: func(r Row) Value {
		s, o, w := a[0].Eval(r), a[1].Eval(r), a[2].Eval(r)
		if s.IsNull() || o.IsNull() || w.IsNull() {
			return Value{}
		}
		return StringValue(strings.ReplaceAll(s.S, o.S, w.S))
	}}, nil
}

func coalesceFunc(n *ksql.FuncCall, a []Expr) (Expr, error) {
	var t Type
	for _, x := range a {
		var err error
		if t, err = unify(n, t, x.Type); err != nil {
			return Expr{}, err
		}
	}
	return Expr{Type: t, Eval: func(r Row) Value {
		for _, x := range a {
			if v := x.Eval(r); !v.IsNull() {
				return coerceTo(v, t)
			}
		}
		return Value{}
	}}, nil
}

func absFunc(n *ksql.FuncCall, a []Expr) (Expr, error) {
	if err := want(n, "ABS(number)", a, isNumber); err != nil {
		return Expr{}, err
	}
	x := a[0]
	return Expr{Type: x.Type, Eval: func(r Row) Value {
		v := x.Eval(r)
		switch {
		case isInt(v.Kind) && v.I < 0:
			v.I = -v.I
		case v.Kind == Double || v.Kind == Decimal:
			v.F = math.Abs(v.F)
		}
		return v
	}}, nil
}

// roundFunc follows ksqlDB: ROUND(DOUBLE) is a BIGINT, ROUND(DOUBLE, n) a DOUBLE, DECIMALs
// keep their kind with the new scale; halves round up (Java's Math.round / HALF_UP).
func roundFunc(n *ksql.FuncCall, a []Expr) (Expr, error) {
	if err := want(n, "ROUND(number [, INT])", a, isNumber, isInt); err != nil {
		return Expr{}, err
	}
	x := a[0]
	t := x.Type
	if len(a) == 1 {
		switch t.Kind {
		case Double:
			t = Type{Kind: BigInt}
		case Decimal:
			t.Scale = 0
		}
	}
	var places Expr
	if len(a) == 2 {
		places = a[1]
		if _, ok := n.Args[1].(*ksql.NumberLit); ok && t.Kind == Decimal {
			t.Scale = int(places.Eval(nil).I)
		}
	}
	return Expr{Type: t, Eval: func(r Row) Value {
		v := x.Eval(r)
		if v.IsNull() {
			return v
		}
		d := 0
		if places.Eval != nil {
			p := places.Eval(r)
			if p.IsNull() {
				return Value{}
			}
			d = int(p.I)
		}
		switch v.Kind {
		case Integer, BigInt:
			if d < 0 {
				p := int64(math.Pow10(-d))
				q := v.I / p * p
				if rem := v.I - q; rem*2 >= p {
					q += p
				} else if rem*2 <= -p {
					q -= p
				}
				v.I = q
			}
			return v
		case Double:
			f := math.Floor(v.F*math.Pow10(d)+0.5) / math.Pow10(d)
			if t.Kind == BigInt {
				return BigIntValue(int64(f))
			}
			return DoubleValue(f)
		}
		return DecimalValue(roundDecimal(v.F, d))
	}}, nil
}

func floorCeil(f func(float64) float64) func(*ksql.FuncCall, []Expr) (Expr, error) {
	return func(n *ksql.FuncCall, a []Expr) (Expr, error) {
		if err := want(n, n.Name+"(number)", a, isNumber); err != nil {
			return Expr{}, err
		}
		x := a[0]
		t := x.Type
		if t.Kind == Decimal {
			t.Scale = 0
		}
		return Expr{Type: t, Eval: func(r Row) Value {
			v := x.Eval(r)
			if v.Kind == Double || v.Kind == Decimal {
				v.F = f(v.F)
			}
			return v
		}}, nil
	}
}

// location returns the zone of the optional third argument (UTC without one).
func location(n *ksql.FuncCall, a []Expr) (func(Row) (*time.Location, bool), error) {
	if len(a) < 3 {
		return func(Row) (*time.Location, bool) { return time.UTC, true }, nil
	}
	if lit, ok := n.Args[2].(*ksql.StringLit); ok {
		loc, err := time.LoadLocation(lit.Value)
		if err != nil {
			return nil, typeErr(n, "unknown time zone '"+lit.Value+"' in "+n.Name, "use an IANA name such as 'Europe/London' or 'UTC'")
		}
		return func(Row) (*time.Location, bool) { return loc, true }, nil
	}
	z := a[2]
	return func(r Row) (*time.Location, bool) {
		v := z.Eval(r)
		if v.IsNull() {
			return nil, false
		}
		loc, err := time.LoadLocation(v.S)
		return loc, err == nil
	}, nil
}

// formatter returns the Go layout of a Java DateTimeFormatter pattern, checked once when the
// pattern is a literal.
func formatter(n *ksql.FuncCall, a []Expr) (func(Row) (string, bool), error) {
	if lit, ok := n.Args[1].(*ksql.StringLit); ok {
		layout, err := JavaLayout(lit.Value)
		if err != nil {
			return nil, typeErr(n, "bad pattern '"+lit.Value+"' in "+n.Name+": "+err.Error(), "")
		}
		return func(Row) (string, bool) { return layout, true }, nil
	}
	p := a[1]
	return func(r Row) (string, bool) {
		v := p.Eval(r)
		if v.IsNull() {
			return "", false
		}
		l, err := JavaLayout(v.S)
		return l, err == nil
	}, nil
}

// timeFunc builds TIMESTAMPTOSTRING and STRINGTOTIMESTAMP: the pattern (and zone) checked
// once when they are literals, then f applied to the first argument.
func timeFunc(sig string, first func(Kind) bool, result Kind, f func(v Value, layout string, loc *time.Location) Value) func(*ksql.FuncCall, []Expr) (Expr, error) {
	return func(n *ksql.FuncCall, a []Expr) (Expr, error) {
		if err := want(n, sig, a, first, isString); err != nil {
			return Expr{}, err
		}
		layout, err := formatter(n, a)
		if err != nil {
			return Expr{}, err
		}
		zone, err := location(n, a)
		if err != nil {
			return Expr{}, err
		}
		return Expr{Type: Type{Kind: result}, Eval: func(r Row) Value {
			v := a[0].Eval(r)
			l, ok := layout(r)
			loc, ok2 := zone(r)
			if v.IsNull() || !ok || !ok2 {
				return Value{}
			}
			return f(v, l, loc)
		}}, nil
	}
}

func timestampToString(n *ksql.FuncCall, a []Expr) (Expr, error) {
	return timeFunc("TIMESTAMPTOSTRING(BIGINT, STRING [, STRING])", isInt, String,
		func(v Value, layout string, loc *time.Location) Value {
			return StringValue(time.UnixMilli(v.I).In(loc).Format(layout))
		})(n, a)
}

func stringToTimestamp(n *ksql.FuncCall, a []Expr) (Expr, error) {
	return timeFunc("STRINGTOTIMESTAMP(STRING, STRING [, STRING])", isString, BigInt,
		func(v Value, layout string, loc *time.Location) Value {
			t, err := time.ParseInLocation(layout, v.S, loc)
			if err != nil {
				return Value{}
			}
			return BigIntValue(t.UnixMilli())
		})(n, a)
}

func unixTimestamp(*ksql.FuncCall, []Expr) (Expr, error) {
	return Expr{Type: Type{Kind: BigInt}, Eval: func(Row) Value { return BigIntValue(time.Now().UnixMilli()) }}, nil
}

// extractJSONField follows a JSONPath of the form $.a.b[0] into a JSON string; scalars come
// back as their text, objects and arrays as JSON.
func extractJSONField(n *ksql.FuncCall, a []Expr) (Expr, error) {
	if err := want(n, "EXTRACTJSONFIELD(STRING, STRING)", a, isString); err != nil {
		return Expr{}, err
	}
	lit, ok := n.Args[1].(*ksql.StringLit)
	if !ok {
		return Expr{}, typeErr(n, "EXTRACTJSONFIELD needs a literal path such as '$.a.b'", "")
	}
	path, err := jsonPath(lit.Value)
	if err != nil {
		return Expr{}, typeErr(n, "bad JSON path '"+lit.Value+"': "+err.Error(), "")
	}
	return Expr{Type: Type{Kind: String}, Eval: func(r Row) Value {
		s := a[0].Eval(r)
		if s.IsNull() {
			return s
		}
		var v any
		if json.Unmarshal([]byte(s.S), &v) != nil {
			return Value{}
		}
		for _, step := range path {
			switch x := v.(type) {
			case map[string]any:
				v = x[step.key]
			case []any:
				if step.index < 0 || step.index >= len(x) {
					return Value{}
				}
				v = x[step.index]
			default:
				return Value{}
			}
		}
		switch x := v.(type) {
		case nil:
			return Value{}
		case string:
			return StringValue(x)
		}
		b, _ := json.Marshal(v)
		return StringValue(string(b))
	}}, nil
}

type pathStep struct {
	key   string
	index int
}

func jsonPath(p string) ([]pathStep, error) {
	if !strings.HasPrefix(p, "$") {
		return nil, errString("it must start with $")
	}
	var steps []pathStep
	rest := p[1:]
	for rest != "" {
		switch rest[0] {
		case '.':
			rest = rest[1:]
			i := strings.IndexAny(rest, ".[")
			if i < 0 {
				i = len(rest)
			}
			if i == 0 {
				return nil, errString("empty field name")
			}
			steps = append(steps, pathStep{key: rest[:i], index: -1})
			rest = rest[i:]
		case '[':
			j := strings.IndexByte(rest, ']')
			if j < 0 {
				return nil, errString("missing ]")
			}
			in := rest[1:j]
			if len(in) >= 2 && (in[0] == '\'' || in[0] == '"') {
				steps = append(steps, pathStep{key: in[1 : len(in)-1], index: -1})
			} else {
				k := 0
				for _, c := range in {
					if c < '0' || c > '9' {
						return nil, errString("bad index " + in)
					}
					k = k*10 + int(c-'0')
				}
				steps = append(steps, pathStep{index: k})
			}
			rest = rest[j+1:]
		default:
			return nil, errString("unexpected " + rest[:1])
		}
	}
	return steps, nil
}

type errString string

func (e errString) Error() string { return string(e) }

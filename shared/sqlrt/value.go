package sqlrt

import (
	"math"
	"strconv"
	"strings"

	"github.com/jetsuite/jetsuite/shared/ksql"
)

// Value constructors.
func BoolValue(b bool) Value {
	if b {
		return Value{Kind: Boolean, I: 1}
	}
	return Value{Kind: Boolean}
}

// IntValue is an INTEGER.
func IntValue(i int32) Value { return Value{Kind: Integer, I: int64(i)} }

// BigIntValue is a BIGINT.
func BigIntValue(i int64) Value { return Value{Kind: BigInt, I: i} }

// DoubleValue is a DOUBLE.
func DoubleValue(f float64) Value { return Value{Kind: Double, F: f} }

// DecimalValue is a DECIMAL (held as float64).
func DecimalValue(f float64) Value { return Value{Kind: Decimal, F: f} }

// StringValue is a STRING.
func StringValue(s string) Value { return Value{Kind: String, S: s} }

// ArrayValue is an ARRAY.
func ArrayValue(vs []Value) Value { return Value{Kind: Array, X: vs} }

// MapValue is a MAP.
func MapValue(m map[string]Value) Value { return Value{Kind: Map, X: m} }

// StructValue is a STRUCT: one value per field of its type, in the type's order.
func StructValue(vs []Value) Value { return Value{Kind: Struct, X: vs} }

// IsNull reports whether v is SQL NULL.
func (v Value) IsNull() bool { return v.Kind == Null }

// Bool is the value of a BOOLEAN.
func (v Value) Bool() bool { return v.I != 0 }

// Array is the elements of an ARRAY (or the fields of a STRUCT).
func (v Value) Array() []Value {
	a, _ := v.X.([]Value)
	return a
}

// Map is the entries of a MAP.
func (v Value) Map() map[string]Value {
	m, _ := v.X.(map[string]Value)
	return m
}

// Float is a numeric value as float64.
func (v Value) Float() float64 {
	switch v.Kind {
	case Integer, BigInt, Boolean:
		return float64(v.I)
	}
	return v.F
}

func (k Kind) numeric() bool { return k == Integer || k == BigInt || k == Double || k == Decimal }

// String renders v for messages and debugging: SQL literal syntax.
func (v Value) String() string {
	switch v.Kind {
	case Null:
		return "NULL"
	case Boolean:
		if v.Bool() {
			return "TRUE"
		}
		return "FALSE"
	case String:
		return "'" + strings.ReplaceAll(v.S, "'", "''") + "'"
	case Array, Struct:
		var parts []string
		for _, e := range v.Array() {
			parts = append(parts, e.String())
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case Map:
		var parts []string
		for k, e := range v.Map() {
			parts = append(parts, strconv.Quote(k)+": "+e.String())
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return KeyText(v)
}

// KeyText is the text of a key value as jetsuite keys KV entries and the Jetsuite-Key header:
// integers in decimal, strings as they are, booleans true/false, doubles in their shortest
// form; NULL is "".
func KeyText(v Value) string {
	switch v.Kind {
	case Null:
		return ""
	case Boolean:
		return strconv.FormatBool(v.Bool())
	case Integer, BigInt:
		return strconv.FormatInt(v.I, 10)
	case Double:
		return formatDouble(v.F)
	case Decimal:
		return strconv.FormatFloat(v.F, 'f', -1, 64)
	case String:
		return v.S
	}
	return v.String()
}

// formatDouble prints a DOUBLE as Java's Double.toString does for the usual range: integral
// values keep ".0" (2.0), others the shortest representation.
func formatDouble(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		switch {
		case math.IsNaN(f):
			return "NaN"
		case f > 0:
			return "Infinity"
		}
		return "-Infinity"
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e7 {
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	if a := math.Abs(f); a >= 1e-3 && a < 1e7 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	s := strconv.FormatFloat(f, 'E', -1, 64)
	// Java: 1.0E10, not 1E+10
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	exp = strings.TrimPrefix(exp, "+")
	neg := strings.HasPrefix(exp, "-")
	exp = strings.TrimLeft(strings.TrimPrefix(exp, "-"), "0") // Java: 1.5E-7, not 1.5E-07
	if neg {
		exp = "-" + exp
	}
	return mant + "E" + exp
}

// Equal reports whether a and b are the same value; NULL equals NULL (as group keys compare).
// Numbers of different kinds are equal when their values are.
func Equal(a, b Value) bool {
	if a.Kind == Null || b.Kind == Null {
		return a.Kind == b.Kind
	}
	if c, ok := Compare(a, b); ok {
		return c == 0
	}
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case Array, Struct:
		x, y := a.Array(), b.Array()
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case Map:
		x, y := a.Map(), b.Map()
		if len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !Equal(v, w) {
				return false
			}
		}
		return true
	}
	return false
}

// Compare orders a and b: numbers across kinds, strings lexicographically (by bytes), booleans
// false < true. ok is false for NULL or values that do not compare.
func Compare(a, b Value) (int, bool) {
	switch {
	case a.Kind == Null || b.Kind == Null:
		return 0, false
	case a.Kind.numeric() && b.Kind.numeric():
		if (a.Kind == Integer || a.Kind == BigInt) && (b.Kind == Integer || b.Kind == BigInt) {
			return cmp3(a.I < b.I, a.I > b.I), true
		}
		x, y := a.Float(), b.Float()
		return cmp3(x < y, x > y), true
	case a.Kind == String && b.Kind == String:
		return strings.Compare(a.S, b.S), true
	case a.Kind == Boolean && b.Kind == Boolean:
		return cmp3(a.I < b.I, a.I > b.I), true
	}
	return 0, false
}

func cmp3(less, greater bool) int {
	switch {
	case less:
		return -1
	case greater:
		return 1
	}
	return 0
}

// TypeOf converts a declared type.
func TypeOf(t *ksql.Type) (Type, error) {
	switch t.Name {
	case "INT", "INTEGER":
		return Type{Kind: Integer}, nil
	case "BIGINT":
		return Type{Kind: BigInt}, nil
	case "DOUBLE":
		return Type{Kind: Double}, nil
	case "DECIMAL":
		out := Type{Kind: Decimal, Precision: 38, Scale: 0}
		if len(t.Params) > 0 {
			out.Precision = t.Params[0]
		}
		if len(t.Params) > 1 {
			out.Scale = t.Params[1]
		}
		return out, nil
	case "BOOLEAN":
		return Type{Kind: Boolean}, nil
	case "VARCHAR", "STRING":
		return Type{Kind: String}, nil
	case "ARRAY":
		e, err := TypeOf(t.Elem)
		if err != nil {
			return Type{}, err
		}
		return Type{Kind: Array, Elem: &e}, nil
	case "MAP":
		k, err := TypeOf(t.Key)
		if err != nil {
			return Type{}, err
		}
		if k.Kind != String {
			return Type{}, &ksql.SyntaxError{Token: t.Key.Name, Msg: "MAP keys must be STRING, not " + k.String(), Unsupported: true, Hint: "declare MAP<STRING, ...>"}
		}
		v, err := TypeOf(t.Value)
		if err != nil {
			return Type{}, err
		}
		return Type{Kind: Map, Value: &v}, nil
	case "STRUCT":
		out := Type{Kind: Struct}
		for _, f := range t.Fields {
			ft, err := TypeOf(f.Type)
			if err != nil {
				return Type{}, err
			}
			out.Fields = append(out.Fields, Field{Name: f.Name, Type: ft})
		}
		return out, nil
	case "TIMESTAMP", "DATE", "TIME":
		return Type{}, &ksql.SyntaxError{Token: t.Name, Msg: "type " + t.Name + " is not supported", Unsupported: true,
			Hint: "use BIGINT epoch milliseconds (TIMESTAMPTOSTRING formats them)"}
	case "BYTES":
		return Type{}, &ksql.SyntaxError{Token: t.Name, Msg: "type BYTES is not supported", Unsupported: true, Hint: "use STRING (base64)"}
	}
	return Type{}, &ksql.SyntaxError{Token: t.Name, Msg: "unknown type " + t.Name, Unsupported: true,
		Hint: "types are INT, BIGINT, DOUBLE, DECIMAL, BOOLEAN, VARCHAR/STRING, ARRAY, MAP and STRUCT"}
}

// String renders t in ksqlDB's spelling.
func (t Type) String() string {
	switch t.Kind {
	case Null:
		return "NULL"
	case Boolean:
		return "BOOLEAN"
	case Integer:
		return "INTEGER"
	case BigInt:
		return "BIGINT"
	case Double:
		return "DOUBLE"
	case Decimal:
		return "DECIMAL(" + strconv.Itoa(t.Precision) + ", " + strconv.Itoa(t.Scale) + ")"
	case String:
		return "STRING"
	case Array:
		return "ARRAY<" + t.Elem.String() + ">"
	case Map:
		return "MAP<STRING, " + t.Value.String() + ">"
	case Struct:
		var parts []string
		for _, f := range t.Fields {
			parts = append(parts, "`"+f.Name+"` "+f.Type.String())
		}
		return "STRUCT<" + strings.Join(parts, ", ") + ">"
	}
	return "UNKNOWN"
}

// Equal reports whether t and u are the same type.
func (t Type) Equal(u Type) bool { return t.String() == u.String() }

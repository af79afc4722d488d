package sqlrt

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/jetsuite/jetsuite/shared/ksql"
)

// testScope is a row of named columns.
type testScope []Column

func (s testScope) Resolve(ref *ksql.ColumnRef) (int, Type, error) {
	for i, c := range s {
		if c.Name == ref.Name && ref.Qualifier == "" {
			return i, c.Type, nil
		}
	}
	return 0, Type{}, &ksql.SyntaxError{Line: ref.Pos.Line, Col: ref.Pos.Col, Msg: "unknown column " + ref.Name}
}

var (
	tBig = Type{Kind: BigInt}
	tStr = tString
)

// The test row: one column of each kind, plus NULLs.
var scope = testScope{
	{Name: "I", Type: tInt}, {Name: "B", Type: tBig}, {Name: "D", Type: tDouble}, {Name: "S", Type: tStr},
	{Name: "T", Type: tBool}, {Name: "NI", Type: tInt}, {Name: "NS", Type: tStr}, {Name: "NB", Type: tBool},
	{Name: "A", Type: Type{Kind: Array, Elem: &tInt}},
	{Name: "M", Type: Type{Kind: Map, Value: &tStr}},
	{Name: "ST", Type: Type{Kind: Struct, Fields: []Field{{Name: "CITY", Type: tStr}, {Name: "ZIP", Type: tInt}}}},
	{Name: "DEC", Type: Type{Kind: Decimal, Precision: 5, Scale: 2}},
	{Name: "F", Type: tBool},
	{Name: "MS", Type: tBig},
}

var row = Row{
	IntValue(7), BigIntValue(10_000_000_000), DoubleValue(2.5), StringValue("Hello World"),
	BoolValue(true), {}, {}, {},
	ArrayValue([]Value{IntValue(1), IntValue(2), IntValue(3)}),
	MapValue(map[string]Value{"k": StringValue("v")}),
	StructValue([]Value{StringValue("Leeds"), IntValue(1234)}),
	DecimalValue(12.34),
	BoolValue(false),
	BigIntValue(1_700_000_000_123), // 2023-11-14 22:13:20.123 UTC
}

func eval(t *testing.T, src string) Value {
	t.Helper()
	e, err := ksql.ParseExpr(src)
	if err != nil {
		t.Fatalf("parse %s: %v", src, err)
	}
	x, err := Compile(e, scope)
	if err != nil {
		t.Fatalf("compile %s: %v", src, err)
	}
	return x.Eval(row)
}

func TestExpressions(t *testing.T) {
	cases := []struct {
		src  string
		want Value
	}{
		// arithmetic and widening
		{"I + 1", IntValue(8)},
		{"I / 2", IntValue(3)},
		{"-7 / 2", IntValue(-3)},
		{"I % 4", IntValue(3)},
		{"I / 0", null},
		{"I * B", BigIntValue(70_000_000_000)},
		{"I + D", DoubleValue(9.5)},
		{"D / 0", DoubleValue(math.Inf(1))},
		{"2147483647 + 1", IntValue(math.MinInt32)},
		{"I + NI", null},
		{"-I", IntValue(-7)},
		{"DEC + 1", DecimalValue(13.34)},
		{"1.5 * 2", DecimalValue(3.0)},
		{"1.5E1 + 1", DoubleValue(16)},
		// strings
		{"S + '!'", StringValue("Hello World!")},
		{"S + NS", null},
		{"LCASE(S)", StringValue("hello world")},
		{"UCASE(S)", StringValue("HELLO WORLD")},
		{"CONCAT(S, NS, '-', 'x')", StringValue("Hello World-x")},
		{"SUBSTRING(S, 7)", StringValue("World")},
		{"SUBSTRING(S, 1, 5)", StringValue("Hello")},
		{"SUBSTRING(S, -5, 3)", StringValue("Wor")},
		{"SUBSTRING(S, 40)", StringValue("")},
		{"LEN(S)", IntValue(11)},
		{"LEN('héllo')", IntValue(5)},
		{"TRIM('  a b  ')", StringValue("a b")},
		{"REPLACE(S, 'o', '0')", StringValue("Hell0 W0rld")},
		{"LCASE(NS)", null},
		// null handling
		{"IFNULL(NS, 'none')", StringValue("none")},
		{"IFNULL(S, 'none')", StringValue("Hello World")},
		{"COALESCE(NI, NI, I)", IntValue(7)},
		{"COALESCE(NI, B)", BigIntValue(10_000_000_000)},
		{"COALESCE(NI, I, B)", BigIntValue(7)},
		{"NI IS NULL", BoolValue(true)},
		{"I IS NOT NULL", BoolValue(true)},
		// numbers
		{"ABS(-3)", IntValue(3)},
		{"ABS(-2.5E0)", DoubleValue(2.5)},
		{"ROUND(D)", BigIntValue(3)},
		{"ROUND(-2.5E0)", BigIntValue(-2)},
		{"ROUND(1.2345E0, 2)", DoubleValue(1.23)},
		{"ROUND(DEC, 1)", DecimalValue(12.3)},
		{"ROUND(1250, -2)", IntValue(1300)},
		{"FLOOR(D)", DoubleValue(2)},
		{"CEIL(D)", DoubleValue(3)},
		{"FLOOR(I)", IntValue(7)},
		// comparison and logic (three-valued)
		{"I = 7", BoolValue(true)},
		{"I <> 7", BoolValue(false)},
		{"I != 8", BoolValue(true)},
		{"I < B", BoolValue(true)},
		{"D >= 2.5", BoolValue(true)},
		{"S > 'Apple'", BoolValue(true)},
		{"NI = 1", null},
		{"NI = NI", null},
		{"T AND NB", null},
		{"F AND NB", BoolValue(false)},
		{"T OR NB", BoolValue(true)},
		{"F OR NB", null},
		{"NOT NB", null},
		{"NOT F", BoolValue(true)},
		// LIKE, IN, BETWEEN
		{"S LIKE 'Hello%'", BoolValue(true)},
		{"S LIKE '%World'", BoolValue(true)},
		{"S LIKE '%lo W%'", BoolValue(true)},
		{"S LIKE 'H_llo%'", BoolValue(true)},
		{"S LIKE 'h%'", BoolValue(false)},
		{"S NOT LIKE '%x%'", BoolValue(true)},
		{"S LIKE 'Hello World'", BoolValue(true)},
		{"S LIKE '%o%o%'", BoolValue(true)},
		{"S LIKE '%o%z%'", BoolValue(false)},
		{"NS LIKE '%'", null},
		{"I IN (1, 7, 9)", BoolValue(true)},
		{"I IN (1, 2)", BoolValue(false)},
		{"I IN (1, NULL)", null},
		{"I NOT IN (1, 2)", BoolValue(true)},
		{"I IN (7, NULL)", BoolValue(true)},
		{"I BETWEEN 1 AND 7", BoolValue(true)},
		{"I BETWEEN 8 AND 9", BoolValue(false)},
		{"I NOT BETWEEN 8 AND 9", BoolValue(true)},
		// CAST
		{"CAST(I AS STRING)", StringValue("7")},
		{"CAST(D AS VARCHAR)", StringValue("2.5")},
		{"CAST(2.0E0 AS STRING)", StringValue("2.0")},
		{"CAST('42' AS INT)", IntValue(42)},
		{"CAST(' 42 ' AS BIGINT)", BigIntValue(42)},
		{"CAST('x' AS INT)", null},
		{"CAST(D AS INT)", IntValue(2)},
		{"CAST(I AS DOUBLE)", DoubleValue(7)},
		{"CAST('TRUE' AS BOOLEAN)", BoolValue(true)},
		{"CAST(D AS DECIMAL(4, 1))", DecimalValue(2.5)},
		{"CAST(NI AS STRING)", null},
		// CASE
		{"CASE WHEN I > 5 THEN 'big' ELSE 'small' END", StringValue("big")},
		{"CASE WHEN I > 50 THEN 'big' END", null},
		{"CASE I WHEN 1 THEN 'one' WHEN 7 THEN 'seven' END", StringValue("seven")},
		{"CASE WHEN NB THEN 1 ELSE 2 END", IntValue(2)},
		{"CASE WHEN T THEN I ELSE B END", BigIntValue(7)},
		// structured values
		{"A[1]", IntValue(1)},
		{"A[3]", IntValue(3)},
		{"A[-1]", IntValue(3)},
		{"A[4]", null},
		{"M['k']", StringValue("v")},
		{"M['nope']", null},
		{"ST->CITY", StringValue("Leeds")},
		{"ST->zip", IntValue(1234)},
		{"ST.CITY", StringValue("Leeds")},
		// time
		{"TIMESTAMPTOSTRING(MS, 'yyyy-MM-dd HH:mm:ss.SSS')", StringValue("2023-11-14 22:13:20.123")},
		{"TIMESTAMPTOSTRING(MS, 'yyyy-MM-dd''T''HH:mm', 'Europe/London')", StringValue("2023-11-14T22:13")},
		{"TIMESTAMPTOSTRING(MS, 'dd MMM yyyy HH:mm', 'Asia/Tokyo')", StringValue("15 Nov 2023 07:13")},
		{"STRINGTOTIMESTAMP('2023-11-14 22:13:20.123', 'yyyy-MM-dd HH:mm:ss.SSS')", BigIntValue(1_700_000_000_123)},
		{"STRINGTOTIMESTAMP('2023-11-14 23:13', 'yyyy-MM-dd HH:mm', 'Europe/Paris')", BigIntValue(1_699_999_980_000)},
		{"STRINGTOTIMESTAMP('garbage', 'yyyy-MM-dd')", null},
		{"AS_VALUE(I)", IntValue(7)},
		{"EXTRACTJSONFIELD('{\"a\":{\"b\":[1,\"x\"]}}', '$.a.b[1]')", StringValue("x")},
		{"EXTRACTJSONFIELD('{\"a\":{\"b\":[1,\"x\"]}}', '$.a')", StringValue(`{"b":[1,"x"]}`)},
	}
	for _, c := range cases {
		got := eval(t, c.src)
		if !Equal(got, c.want) || got.Kind != c.want.Kind || (got.Kind == Double && got.F != c.want.F) {
			t.Errorf("%s = %v (%d), want %v (%d)", c.src, got, got.Kind, c.want, c.want.Kind)
		}
	}
}

func TestUnixTimestampIsNow(t *testing.T) {
	v := eval(t, "UNIX_TIMESTAMP()")
	if v.Kind != BigInt || v.I < 1_700_000_000_000 {
		t.Fatalf("UNIX_TIMESTAMP() = %v", v)
	}
}

func TestExpressionTypes(t *testing.T) {
	cases := map[string]string{
		"I + 1":               "INTEGER",
		"I + B":               "BIGINT",
		"I + D":               "DOUBLE",
		"DEC * 2":             "DECIMAL(21, 2)",
		"S + 'x'":             "STRING",
		"ROUND(D)":            "BIGINT",
		"ROUND(D, 1)":         "DOUBLE",
		"I > 1 AND T":         "BOOLEAN",
		"A[1]":                "INTEGER",
		"CAST(I AS BIGINT)":   "BIGINT",
		"COALESCE(NI, 1.5E0)": "DOUBLE",
	}
	for src, want := range cases {
		e, _ := ksql.ParseExpr(src)
		x, err := Compile(e, scope)
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		if got := x.Type.String(); got != want {
			t.Errorf("type of %s = %s, want %s", src, got, want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct{ src, want string }{
		{"S + 1", "operator + needs numbers"},
		{"S = 1", "cannot compare STRING with INT"},
		{"I AND T", "AND needs BOOLEAN operands"},
		{"NOT I", "NOT needs a BOOLEAN"},
		{"I LIKE 'x'", "LIKE needs STRING operands"},
		{"LCASE(I)", "LCASE does not take INT"},
		{"LCASE(S, S)", "wrong number of arguments to LCASE"},
		{"NOPE(S)", "function NOPE is not supported"},
		{"COUNT(S)", "aggregate function COUNT is not allowed here"},
		{"CAST(A AS INT)", "cannot CAST ARRAY<INTEGER> AS INTEGER"},
		{"CASE WHEN T THEN 1 ELSE 'x' END", "mixed types INTEGER and STRING"},
		{"ST->NOPE", "unknown field NOPE in ST; fields are CITY, ZIP"},
		{"I->X", "-> needs a STRUCT"},
		{"I[1]", "[] needs an ARRAY or a MAP"},
		{"A['x']", "an ARRAY index must be an integer"},
		{"TIMESTAMPTOSTRING(MS, 'yyyy QQ')", "pattern letter Q is not supported"},
		{"TIMESTAMPTOSTRING(MS, 'yyyy', 'Mars/Base')", "unknown time zone 'Mars/Base'"},
		{"I IN (1, 'x')", "cannot compare INTEGER with STRING"},
		{"UNKNOWNCOL + 1", "unknown column UNKNOWNCOL"},
	}
	for _, c := range cases {
		e, err := ksql.ParseExpr(c.src)
		if err != nil {
			t.Fatalf("parse %s: %v", c.src, err)
		}
		_, err = Compile(e, scope)
		var se *ksql.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%s: error %v is not a *ksql.SyntaxError", c.src, err)
			continue
		}
		if !strings.Contains(se.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.src, err, c.want)
		}
		if se.Line != 1 || se.Col < 1 {
			t.Errorf("%s: error at %d:%d, want a position on line 1", c.src, se.Line, se.Col)
		}
	}
}

func TestJavaLayout(t *testing.T) {
	cases := map[string]string{
		"yyyy-MM-dd HH:mm:ss":      "2006-01-02 15:04:05",
		"yyyy-MM-dd'T'HH:mm:ssXXX": "2006-01-02T15:04:05Z07:00",
		"dd/MMM/yyyy:HH:mm:ss Z":   "02/Jan/2006:15:04:05 -0700",
		"h:mm a":                   "3:04 PM",
		"EEEE, d MMMM yy":          "Monday, 2 January 06",
		"HH:mm:ss,SSS":             "15:04:05,000",
		"'It''s' HH":               "It's 15",
	}
	for in, want := range cases {
		got, err := JavaLayout(in)
		if err != nil || got != want {
			t.Errorf("JavaLayout(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"yyyy'", "ss SSS", "yyyy Q", "'at 5'"} {
		if _, err := JavaLayout(bad); err == nil {
			t.Errorf("JavaLayout(%q) accepted", bad)
		}
	}
}

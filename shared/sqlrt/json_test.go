package sqlrt

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/jetsuite/jetsuite/shared/events"
)

var (
	tDec0   = Type{Kind: Decimal, Precision: 10, Scale: 0}
	tIntArr = Type{Kind: Array, Elem: &tInt}
	tStrMap = Type{Kind: Map, Value: &tString}
	tPoint  = Type{Kind: Struct, Fields: []Field{{Name: "X", Type: tInt}, {Name: "LABEL", Type: tString}}}
	// ARRAY<MAP<STRING, STRUCT<X INT, LABEL STRING>>>
	tNested = Type{Kind: Array, Elem: &Type{Kind: Map, Value: &tPoint}}
)

func TestFromJSONAccepted(t *testing.T) {
	tests := []struct {
		in   string
		t    Type
		want Value
	}{
		// NULL, whatever the type
		{`null`, tInt, Value{}},
		{`null`, tString, Value{}},
		{` null `, tNested, Value{}},
		// BOOLEAN
		{`true`, tBool, BoolValue(true)},
		{`false`, tBool, BoolValue(false)},
		{`"true"`, tBool, BoolValue(true)},
		{`"TRUE"`, tBool, BoolValue(true)},
		{`"False"`, tBool, BoolValue(false)},
		{`"\u0074rue"`, tBool, BoolValue(true)},
		// INTEGER
		{`302`, tInt, IntValue(302)},
		{`"302"`, tInt, IntValue(302)},
		{`" 302 "`, tInt, IntValue(302)},
		{`-7`, tInt, IntValue(-7)},
		{`3.9`, tInt, IntValue(3)},
		{`-3.9`, tInt, IntValue(-3)},
		{`1e2`, tInt, IntValue(100)},
		{`"+5"`, tInt, IntValue(5)},
		{`"007"`, tInt, IntValue(7)},
		{`"\t-12 "`, tInt, IntValue(-12)},
		{`"-0"`, tInt, IntValue(0)},
		{`"1\u0032"`, tInt, IntValue(12)},
		{`2147483647`, tInt, IntValue(math.MaxInt32)},
		{`-2147483648`, tInt, IntValue(math.MinInt32)},
		// BIGINT
		{`2147483648`, tBig, BigIntValue(2147483648)},
		{`"9223372036854775807"`, tBig, BigIntValue(math.MaxInt64)},
		{`-9223372036854775808`, tBig, BigIntValue(math.MinInt64)},
		{`1.5`, tBig, BigIntValue(1)},
		// DOUBLE
		{`1.5`, tDouble, DoubleValue(1.5)},
		{`2`, tDouble, DoubleValue(2)},
		{`-1e-3`, tDouble, DoubleValue(-0.001)},
		{`"2.25"`, tDouble, DoubleValue(2.25)},
		{`" 7 "`, tDouble, DoubleValue(7)},
		// DECIMAL(10, 2): rounded half-up
		{`1.234`, tDec, DecimalValue(1.23)},
		{`1.235`, tDec, DecimalValue(1.24)},
		{`1.005`, tDec, DecimalValue(1.01)},
		{`-1.005`, tDec, DecimalValue(-1.01)},
		{`9.999`, tDec, DecimalValue(10)},
		{`-9.995`, tDec, DecimalValue(-10)},
		{`-0.001`, tDec, DecimalValue(0)},
		{`"3.14159"`, tDec, DecimalValue(3.14)},
		{`12`, tDec, DecimalValue(12)},
		{`2.5`, tDec0, DecimalValue(2.5)}, // scale 0: kept (rounded when written)
		// STRING
		{`"abc"`, tString, StringValue("abc")},
		{`""`, tString, StringValue("")},
		{`"a\"b\\c\u00e9\n"`, tString, StringValue("a\"b\\cé\n")},
		{`302`, tString, StringValue("302")},
		{`-1.50e3`, tString, StringValue("-1.50e3")},
		{`true`, tString, StringValue("true")},
		{`false`, tString, StringValue("false")},
		// ARRAY
		{`[]`, tIntArr, ArrayValue([]Value{})},
		{`[1, "2", 3.7, null]`, tIntArr, ArrayValue([]Value{IntValue(1), IntValue(2), IntValue(3), {}})},
		// MAP
		{`{}`, tStrMap, MapValue(map[string]Value{})},
		{`{"a": 1, "B": "x", "a\"b": null, "c": true}`, tStrMap,
			MapValue(map[string]Value{"a": StringValue("1"), "B": StringValue("x"), `a"b`: {}, "c": StringValue("true")})},
		{`{"a": 1, "a": 2}`, tStrMap, MapValue(map[string]Value{"a": StringValue("2")})},
		// STRUCT: fields ignoring case, in the type's order, missing NULL, unknown ignored
		{`{"label": "p", "x": "4", "z": [1]}`, tPoint, StructValue([]Value{IntValue(4), StringValue("p")})},
		{`{"X": 1}`, tPoint, StructValue([]Value{IntValue(1), {}})},
		{`{}`, tPoint, StructValue([]Value{{}, {}})},
		{`{"x": 1, "X": 2}`, tPoint, StructValue([]Value{IntValue(2), {}})},
		// nested
		{`[{"p": {"x": 1, "label": "a"}}, {}, null, {"q": null}]`, tNested, ArrayValue([]Value{
			MapValue(map[string]Value{"p": StructValue([]Value{IntValue(1), StringValue("a")})}),
			MapValue(map[string]Value{}),
			{},
			MapValue(map[string]Value{"q": {}}),
		})},
		// unknown type: the JSON value as it is
		{`[1, 1.5, "s", true, {"k": null}]`, Type{}, ArrayValue([]Value{
			BigIntValue(1), DoubleValue(1.5), StringValue("s"), BoolValue(true), MapValue(map[string]Value{"k": {}}),
		})},
	}
	for _, tt := range tests {
		got, err := FromJSON([]byte(tt.in), tt.t)
		if err != nil {
			t.Errorf("FromJSON(%s, %s): %v", tt.in, tt.t, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("FromJSON(%s, %s) = %#v, want %#v", tt.in, tt.t, got, tt.want)
		}
	}
}

func TestFromJSONRefused(t *testing.T) {
	tests := []struct {
		in   string
		t    Type
		want error  // sentinel
		msg  string // in the message
	}{
		{`1`, tBool, events.ErrCoercion, "cannot coerce number 1 to BOOLEAN"},
		{`"yes"`, tBool, events.ErrCoercion, `string "yes" to BOOLEAN`},
		{`[true]`, tBool, events.ErrCoercion, "array to BOOLEAN"},
		{`true`, tInt, events.ErrCoercion, "boolean to INTEGER"},
		{`2147483648`, tInt, events.ErrCoercion, "out of range"},
		{`-2147483649`, tInt, events.ErrCoercion, "INTEGER"},
		{`"2147483648"`, tInt, events.ErrCoercion, "INTEGER"},
		{`"abc"`, tInt, events.ErrCoercion, `string "abc" to INTEGER`},
		{`"3.9"`, tInt, events.ErrCoercion, "INTEGER"},
		{`{"a":1}`, tInt, events.ErrCoercion, "object to INTEGER"},
		{`9223372036854775808`, tBig, events.ErrCoercion, "BIGINT"},
		{`"9223372036854775808"`, tBig, events.ErrCoercion, "BIGINT"},
		{`1e19`, tBig, events.ErrCoercion, "BIGINT"},
		{`""`, tInt, events.ErrCoercion, "INTEGER"},
		{`"-"`, tInt, events.ErrCoercion, "INTEGER"},
		{`"+-5"`, tInt, events.ErrCoercion, "INTEGER"},
		{`"1_000"`, tInt, events.ErrCoercion, "INTEGER"},
		{`"0x10"`, tInt, events.ErrCoercion, "INTEGER"},
		{`false`, tBig, events.ErrCoercion, "boolean to BIGINT"},
		{`true`, tDouble, events.ErrCoercion, "boolean to DOUBLE"},
		{`"abc"`, tDouble, events.ErrCoercion, `string "abc" to DOUBLE`},
		{`1e400`, tDouble, events.ErrCoercion, "number 1e400 to DOUBLE"},
		{`[1.5]`, tDec, events.ErrCoercion, "array to DECIMAL(10, 2)"},
		{`{"a":1}`, tString, events.ErrCoercion, "object to STRING"},
		{`[1]`, tString, events.ErrCoercion, "array to STRING"},
		{`{"a":1}`, tIntArr, events.ErrCoercion, "object to ARRAY<INTEGER>"},
		{`[1, true]`, tIntArr, events.ErrCoercion, "[1]: cannot coerce boolean to INTEGER"},
		{`"x"`, tStrMap, events.ErrCoercion, "string \"x\" to MAP<STRING, STRING>"},
		{`{"k": {}}`, tStrMap, events.ErrCoercion, `["k"]: cannot coerce object to STRING`},
		{`[1]`, tPoint, events.ErrCoercion, "array to STRUCT<`X` INTEGER, `LABEL` STRING>"},
		{`{"x": "one"}`, tPoint, events.ErrCoercion, `.X: cannot coerce string "one" to INTEGER`},
		{`[{"p": {"x": true}}]`, tNested, events.ErrCoercion, `[0]: ["p"]: .X: cannot coerce boolean to INTEGER`},
		// not JSON
		{``, tInt, events.ErrNotJSON, ""},
		{`   `, tString, events.ErrNotJSON, ""},
		{`tru`, tBool, events.ErrNotJSON, ""},
		{`1 2`, tInt, events.ErrNotJSON, ""},
		{`"abc`, tString, events.ErrNotJSON, ""},
		{`01`, tInt, events.ErrNotJSON, ""},
		{`[1,]`, tIntArr, events.ErrNotJSON, ""},
		{`{"a" 1}`, tStrMap, events.ErrNotJSON, ""},
		{`{'a': 1}`, tStrMap, events.ErrNotJSON, ""},
	}
	for _, tt := range tests {
		v, err := FromJSON([]byte(tt.in), tt.t)
		if !errors.Is(err, tt.want) {
			t.Errorf("FromJSON(%s, %s) = %v, %v; want error %v", tt.in, tt.t, v, err, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("FromJSON(%s, %s) error %q does not contain %q", tt.in, tt.t, err, tt.msg)
		}
	}
}

// clickCols is a click-like row: the CLICKSTREAM columns ksqlDB's quickstart declares, less one.
var clickCols = []Column{
	{Name: "_TIME", Type: tBig},
	{Name: "TIME", Type: tString},
	{Name: "IP", Type: tString},
	{Name: "REQUEST", Type: tString},
	{Name: "STATUS", Type: tInt},
	{Name: "USERID", Type: tInt},
	{Name: "BYTES", Type: tBig},
}

const clickJSON = `{"_time":1700000000123,"time":"14/Nov/2023:22:13:20 +0000","ip":"111.168.57.122","userid":"13","remote_user":"-","request":"GET /images/logo-small.png HTTP/1.1","status":302,"bytes":"4006","referrer":"-","agent":"Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)"}`

func TestDecode(t *testing.T) {
	d := NewDecoder(clickCols)
	row := make(Row, len(clickCols))
	if err := d.Decode([]byte(clickJSON), row); err != nil {
		t.Fatal(err)
	}
	want := Row{
		BigIntValue(1700000000123), StringValue("14/Nov/2023:22:13:20 +0000"), StringValue("111.168.57.122"),
		StringValue("GET /images/logo-small.png HTTP/1.1"), IntValue(302), IntValue(13), BigIntValue(4006),
	}
	if !reflect.DeepEqual(row, want) {
		t.Errorf("Decode =\n%v\nwant\n%v", row, want)
	}

	// A longer row is left alone past the columns; missing members and null are NULL (also
	// over values a previous Decode left); members come in any order and any case.
	row = append(row, StringValue("extra"))
	if err := d.Decode([]byte(` { "Bytes" : 1.9 , "IP":null, "uSeRiD": -4 } `), row); err != nil {
		t.Fatal(err)
	}
	want = Row{{}, {}, {}, {}, {}, IntValue(-4), BigIntValue(1), StringValue("extra")}
	if !reflect.DeepEqual(row, want) {
		t.Errorf("Decode =\n%v\nwant\n%v", row, want)
	}
}

func TestDecodeDuplicateCase(t *testing.T) {
	// Two columns whose names differ only in case (quoted names): the first one gets the member.
	cols := []Column{{Name: "ID", Type: tInt}, {Name: "name", Type: tString}, {Name: "NAME", Type: tString}, {Name: "id", Type: tString}}
	d := NewDecoder(cols)
	row := make(Row, len(cols))
	if err := d.Decode([]byte(`{"Name":"x","id":7}`), row); err != nil {
		t.Fatal(err)
	}
	want := Row{IntValue(7), StringValue("x"), {}, {}}
	if !reflect.DeepEqual(row, want) {
		t.Errorf("Decode = %v, want %v", row, want)
	}
	// The same member twice (in any case): the last one wins.
	if err := d.Decode([]byte(`{"id":1,"ID":"2","Id":3}`), row); err != nil {
		t.Fatal(err)
	}
	want = Row{IntValue(3), {}, {}, {}}
	if !reflect.DeepEqual(row, want) {
		t.Errorf("Decode = %v, want %v", row, want)
	}
}

func TestDecodeNested(t *testing.T) {
	cols := []Column{{Name: "TAGS", Type: Type{Kind: Array, Elem: &tString}}, {Name: "ATTRS", Type: tStrMap}, {Name: "P", Type: tPoint}, {Name: "OK", Type: tBool}, {Name: "PRICE", Type: tDec}}
	d := NewDecoder(cols)
	row := make(Row, len(cols))
	in := `{"tags":["a",1,true,null],"attrs":{"k":"v","n":2},"p":{"LABEL":"L","x":"-5"},"ok":"TRUE","price":"19.999"}`
	if err := d.Decode([]byte(in), row); err != nil {
		t.Fatal(err)
	}
	want := Row{
		ArrayValue([]Value{StringValue("a"), StringValue("1"), StringValue("true"), {}}),
		MapValue(map[string]Value{"k": StringValue("v"), "n": StringValue("2")}),
		StructValue([]Value{IntValue(-5), StringValue("L")}),
		BoolValue(true),
		DecimalValue(20),
	}
	if !reflect.DeepEqual(row, want) {
		t.Errorf("Decode =\n%v\nwant\n%v", row, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	d := NewDecoder(clickCols)
	row := make(Row, len(clickCols))
	tests := []struct {
		in    string
		want  []error
		notIs []error
		msg   string
	}{
		{`[1,2]`, []error{events.ErrNotObject}, []error{events.ErrNotJSON}, ""},
		{`"s"`, []error{events.ErrNotObject}, nil, ""},
		{`42`, []error{events.ErrNotObject}, nil, ""},
		{`null`, []error{events.ErrNotObject}, nil, ""},
		{``, []error{events.ErrNotJSON}, []error{events.ErrNotObject}, ""},
		{`xyz`, []error{events.ErrNotJSON}, []error{events.ErrNotObject}, ""},
		{`[1,`, []error{events.ErrNotJSON}, []error{events.ErrNotObject}, ""},
		{`{"ip":"a"`, []error{events.ErrNotJSON}, nil, ""},
		{`{"ip":"a"}x`, []error{events.ErrNotJSON}, nil, ""},
		{`{"ip":"a",}`, []error{events.ErrNotJSON}, nil, ""},
		{`{"status":"\x"}`, []error{events.ErrNotJSON}, []error{events.ErrWrongType}, ""},
		{`{"ip":"\x"}`, []error{events.ErrNotJSON}, []error{events.ErrWrongType}, ""},
		{`{"other":"\x"}`, []error{events.ErrNotJSON}, nil, ""},
		{`{"status":true}`, []error{events.ErrWrongType, events.ErrCoercion}, []error{events.ErrNotJSON}, "wrong type: STATUS: cannot coerce boolean to INTEGER"},
		{`{"userid":"x1"}`, []error{events.ErrWrongType, events.ErrCoercion}, nil, `USERID: cannot coerce string "x1" to INTEGER`},
		{`{"status":2147483648}`, []error{events.ErrWrongType, events.ErrCoercion}, nil, "STATUS"},
		{`{"IP":{"a":1}}`, []error{events.ErrWrongType, events.ErrCoercion}, nil, "IP: cannot coerce object to STRING"},
		{`{"bytes":[1]}`, []error{events.ErrWrongType, events.ErrCoercion}, nil, "BYTES: cannot coerce array to BIGINT"},
	}
	for _, tt := range tests {
		err := d.Decode([]byte(tt.in), row)
		for _, w := range tt.want {
			if !errors.Is(err, w) {
				t.Errorf("Decode(%s) = %v, want it to wrap %v", tt.in, err, w)
			}
		}
		for _, w := range tt.notIs {
			if errors.Is(err, w) {
				t.Errorf("Decode(%s) = %v, should not wrap %v", tt.in, err, w)
			}
		}
		if err != nil && !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("Decode(%s) error %q does not contain %q", tt.in, err, tt.msg)
		}
	}
}

func TestAppendJSON(t *testing.T) {
	tests := []struct {
		v    Value
		t    Type
		want string
	}{
		{Value{}, tInt, `null`},
		{Value{}, tPoint, `null`},
		{BoolValue(true), tBool, `true`},
		{BoolValue(false), tBool, `false`},
		{IntValue(-302), tInt, `-302`},
		{BigIntValue(math.MaxInt64), tBig, `9223372036854775807`},
		{DoubleValue(2), tDouble, `2.0`},
		{DoubleValue(0.1), tDouble, `0.1`},
		{DoubleValue(1e10), tDouble, `1.0E10`},
		{DoubleValue(math.NaN()), tDouble, `null`},
		{DoubleValue(math.Inf(-1)), tDouble, `null`},
		{BigIntValue(3), tDouble, `3.0`}, // a BIGINT value in a DOUBLE column
		{DecimalValue(1.5), tDec, `1.50`},
		{DecimalValue(1.005), tDec, `1.01`},
		{DecimalValue(-0.001), tDec, `0.00`},
		{DecimalValue(2.5), tDec0, `3`},
		{DecimalValue(-2.5), tDec0, `-3`},
		{DecimalValue(12), tDec0, `12`},
		{IntValue(7), tDec, `7.00`},
		{StringValue(""), tString, `""`},
		{StringValue("a\"b\\c\n\r\t\x01<>&é\u2028\xff"), tString, `"a\"b\\c\n\r\t\u0001\u003c\u003e\u0026é\u2028\ufffd"`},
		{StringValue("x"), tInt, `"x"`}, // a value that does not fit its type: as its own kind
		{ArrayValue([]Value{IntValue(1), {}, IntValue(3)}), tIntArr, `[1,null,3]`},
		{ArrayValue([]Value{}), tIntArr, `[]`},
		{ArrayValue(nil), tIntArr, `[]`},
		{MapValue(map[string]Value{"b": StringValue("2"), "a": StringValue("1"), "<": {}}), tStrMap, `{"\u003c":null,"a":"1","b":"2"}`},
		{StructValue([]Value{IntValue(1), StringValue("p")}), tPoint, `{"X":1,"LABEL":"p"}`},
		{StructValue([]Value{IntValue(1)}), tPoint, `{"X":1,"LABEL":null}`},
		{StructValue([]Value{IntValue(1), StringValue("p")}), Type{}, `[1,"p"]`},
		{ArrayValue([]Value{MapValue(map[string]Value{"p": StructValue([]Value{IntValue(1), StringValue("a")})})}), tNested, `[{"p":{"X":1,"LABEL":"a"}}]`},
	}
	for _, tt := range tests {
		got := string(AppendJSON([]byte("prefix "), tt.v, tt.t))
		if got != "prefix "+tt.want {
			t.Errorf("AppendJSON(%v, %s) = %s, want %s", tt.v, tt.t, got, tt.want)
		}
	}
}

func TestAppendStringLikeEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\x1f\x7f", "<script>&amp;</script>", "é漢字🙂", "\u2028\u2029", "bad \xff\xfe utf8", "\xe2\x80"} {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, encoding/json %s", s, got, want)
		}
	}
}

func TestInvalidUTF8AsEncodingJSON(t *testing.T) {
	for _, in := range []string{"\"a\xffb\"", "\"\xa2\"", "\"\xed\xa0\x80x\"", "\"\xe2\x80\"", "\"ok é\""} {
		var want string
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		got, err := FromJSON([]byte(in), tString)
		if err != nil || got.S != want {
			t.Errorf("FromJSON(%q) = %q, %v; encoding/json %q", in, got.S, err, want)
		}
		obj := "{" + in + ":1}"
		var wantMap map[string]int
		if err := json.Unmarshal([]byte(obj), &wantMap); err != nil {
			t.Fatal(err)
		}
		m, err := FromJSON([]byte(obj), Type{Kind: Map, Value: &tInt})
		if err != nil {
			t.Fatal(err)
		}
		for k := range wantMap {
			if _, ok := m.Map()[k]; !ok || len(m.Map()) != 1 {
				t.Errorf("FromJSON(%q) = %v; encoding/json has key %q", obj, m, k)
			}
		}
	}
}

func TestAppendObject(t *testing.T) {
	cols := []Column{
		{Name: "USERID", Type: tInt},
		{Name: "NAME", Type: tString},
		{Name: "SCORE", Type: tDouble},
		{Name: "PRICE", Type: tDec},
		{Name: "TAGS", Type: Type{Kind: Array, Elem: &tString}},
		{Name: "P", Type: tPoint},
		{Name: "OK", Type: tBool},
		{Name: `we"ird<`, Type: tBig},
	}
	row := Row{IntValue(13), StringValue("Ann \"A\""), DoubleValue(4.5), DecimalValue(9.9), ArrayValue([]Value{StringValue("x")}), StructValue([]Value{IntValue(2), {}}), BoolValue(false), {}}
	got := string(AppendObject(nil, cols, row))
	want := `{"USERID":13,"NAME":"Ann \"A\"","SCORE":4.5,"PRICE":9.90,"TAGS":["x"],"P":{"X":2,"LABEL":null},"OK":false,"we\"ird\u003c":null}`
	if got != want {
		t.Errorf("AppendObject =\n%s\nwant\n%s", got, want)
	}
	if got := string(AppendObject(nil, nil, nil)); got != `{}` {
		t.Errorf("AppendObject of no columns = %s", got)
	}
	// Decoding what was written gives the row back.
	back := make(Row, len(cols))
	if err := NewDecoder(cols).Decode([]byte(want), back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, row) {
		t.Errorf("round trip =\n%v\nwant\n%v", back, row)
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		v Value
		t Type
	}{
		{Value{}, tInt},
		{BoolValue(true), tBool},
		{BoolValue(false), tBool},
		{IntValue(math.MinInt32), tInt},
		{IntValue(math.MaxInt32), tInt},
		{BigIntValue(math.MinInt64), tBig},
		{BigIntValue(math.MaxInt64), tBig},
		{DoubleValue(0), tDouble},
		{DoubleValue(-2), tDouble},
		{DoubleValue(0.1), tDouble},
		{DoubleValue(1.0 / 3), tDouble},
		{DoubleValue(123456789.125), tDouble},
		{DoubleValue(-4.9e-324), tDouble},
		{DoubleValue(math.MaxFloat64), tDouble},
		{DecimalValue(0), tDec},
		{DecimalValue(-12345.67), tDec},
		{DecimalValue(0.01), tDec},
		{DecimalValue(42), tDec0},
		{StringValue(""), tString},
		{StringValue("héllo \"world\"\n<&>\u2028\x00"), tString},
		{ArrayValue([]Value{IntValue(1), {}, IntValue(-1)}), tIntArr},
		{ArrayValue([]Value{}), tIntArr},
		{MapValue(map[string]Value{"": StringValue("e"), "K\"": {}, "a": StringValue("1")}), tStrMap},
		{MapValue(map[string]Value{}), tStrMap},
		{StructValue([]Value{IntValue(9), StringValue("nine")}), tPoint},
		{StructValue([]Value{{}, {}}), tPoint},
		{ArrayValue([]Value{
			MapValue(map[string]Value{"p": StructValue([]Value{IntValue(1), StringValue("a")}), "q": {}}),
			{},
			MapValue(map[string]Value{}),
		}), tNested},
	}
	for _, tt := range tests {
		b := AppendJSON(nil, tt.v, tt.t)
		got, err := FromJSON(b, tt.t)
		if err != nil {
			t.Errorf("FromJSON(AppendJSON(%v, %s) = %s): %v", tt.v, tt.t, b, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.v) {
			t.Errorf("FromJSON(AppendJSON(%v, %s) = %s) = %#v, want %#v", tt.v, tt.t, b, got, tt.v)
		}
		if !json.Valid(b) {
			t.Errorf("AppendJSON(%v, %s) = %s: not valid JSON", tt.v, tt.t, b)
		}
		// encoding/json reads it.
		var a any
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.UseNumber()
		if err := dec.Decode(&a); err != nil {
			t.Errorf("encoding/json(%s): %v", b, err)
		}
	}
}

func TestRoundDecimal(t *testing.T) {
	tests := []struct {
		f     float64
		scale int
		want  float64
	}{
		{1.005, 2, 1.01},
		{1.004999, 2, 1},
		{0.125, 2, 0.13},
		{-0.125, 2, -0.13},
		{99.995, 2, 100},
		{-99.995, 2, -100},
		{2.5, 0, 3},
		{-2.5, 0, -3},
		{0.4, 0, 0},
		{9.5, 0, 10},
		{123, 2, 123},
		{1e22, 2, 1e22},
		{1.5e-7, 3, 0},
		{-1.5e-7, 3, 0},
		{5e-4, 3, 0.001},
	}
	for _, tt := range tests {
		got := roundDecimal(tt.f, tt.scale)
		if got != tt.want || math.Signbit(got) != math.Signbit(tt.want) {
			t.Errorf("roundDecimal(%v, %d) = %v, want %v", tt.f, tt.scale, got, tt.want)
		}
	}
}

// TestGarbageNeverPanics feeds mutated JSON to every decoder: no panic, and nothing that is not
// valid JSON is accepted.
func TestGarbageNeverPanics(t *testing.T) {
	seeds := []string{
		clickJSON,
		`{"tags":["a",1,true,null],"attrs":{"k":"v","n":2},"p":{"LABEL":"L","x":"-5"},"ok":"TRUE","price":"19.999"}`,
		`{"a\"b":[{"x":[[],{}]}],"n":-1.5e+10}`,
		`[1,"2",{"3":null}]`,
	}
	cols := append([]Column{
		{Name: "TAGS", Type: Type{Kind: Array, Elem: &tString}}, {Name: "ATTRS", Type: tStrMap},
		{Name: "P", Type: tPoint}, {Name: "OK", Type: tBool}, {Name: "PRICE", Type: tDec}, {Name: "N", Type: tDouble},
	}, clickCols...)
	d := NewDecoder(cols)
	row := make(Row, len(cols))
	const alphabet = "{}[]\",:\\ -+.eE0123456789truefalsnul\x00\xff"
	rng := rand.New(rand.NewSource(1))
	types := []Type{tInt, tString, tNested, tPoint, Type{}, tDec}
	for n := 0; n < 20000; n++ {
		b := []byte(seeds[rng.Intn(len(seeds))])
		for k := rng.Intn(4) + 1; k > 0 && len(b) > 0; k-- {
			i := rng.Intn(len(b))
			switch rng.Intn(3) {
			case 0:
				b[i] = alphabet[rng.Intn(len(alphabet))]
			case 1:
				b = append(b[:i], b[i+1:]...)
			case 2:
				b = append(b[:i], append([]byte{alphabet[rng.Intn(len(alphabet))]}, b[i:]...)...)
			}
		}
		if rng.Intn(5) == 0 {
			b = b[:rng.Intn(len(b)+1)]
		}
		valid := json.Valid(b)
		if err := d.Decode(b, row); err == nil && !valid {
			t.Fatalf("Decode accepted invalid JSON %q", b)
		} else if err != nil && !valid && !errors.Is(err, events.ErrNotJSON) && !errors.Is(err, events.ErrWrongType) {
			t.Fatalf("Decode(%q) = %v: want ErrNotJSON", b, err)
		}
		for _, typ := range types {
			if _, err := FromJSON(b, typ); err == nil && !valid {
				t.Fatalf("FromJSON accepted invalid JSON %q", b)
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(clickJSON))
	f.Add([]byte(`{"p":{"x":1},"tags":[1,"a"]}`))
	f.Add([]byte(`[{"a":null}]`))
	f.Add([]byte("{\"request\":\"\xa2\"}"))
	f.Add([]byte(`{"k":[1,-0.5,"s\u00e9",{"x":true}],"n":1e300}`))
	cols := append([]Column{{Name: "P", Type: tPoint}, {Name: "TAGS", Type: Type{Kind: Array, Elem: &tString}}}, clickCols...)
	d := NewDecoder(cols)
	f.Fuzz(func(t *testing.T, b []byte) {
		row := make(Row, len(cols))
		if err := d.Decode(b, row); err == nil {
			if !json.Valid(b) {
				t.Fatalf("Decode accepted invalid JSON %q", b)
			}
			// What decodes, written back, decodes to the same row.
			out := AppendObject(nil, cols, row)
			back := make(Row, len(cols))
			if err := d.Decode(out, back); err != nil || !reflect.DeepEqual(back, row) {
				t.Fatalf("round trip of %q via %s: %v, %v", b, out, back, err)
			}
		}
		for _, typ := range []Type{{}, tNested, tString} {
			v, err := FromJSON(b, typ)
			if err != nil {
				continue
			}
			if !json.Valid(b) {
				t.Fatalf("FromJSON accepted invalid JSON %q", b)
			}
			out := AppendJSON(nil, v, typ)
			back, err := FromJSON(out, typ)
			if err != nil || !reflect.DeepEqual(back, v) {
				t.Fatalf("round trip of %q as %s via %s: %#v, %v; want %#v", b, typ, out, back, err, v)
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	d := NewDecoder(clickCols)
	row := make(Row, len(clickCols))
	data := []byte(clickJSON)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Decode(data, row); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeClickEvents is the baseline: the hand-written decoder of the same record.
func BenchmarkDecodeClickEvents(b *testing.B) {
	data := []byte(clickJSON)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.DecodeClick(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendObject(b *testing.B) {
	d := NewDecoder(clickCols)
	row := make(Row, len(clickCols))
	if err := d.Decode([]byte(clickJSON), row); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendObject(buf[:0], clickCols, row)
	}
}

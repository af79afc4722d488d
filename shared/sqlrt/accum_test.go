package sqlrt

import (
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// same reports whether a and b are the same value exactly: same kinds all the way down,
// floats bit for bit (nil and empty arrays / maps are the same).
func same(a, b Value) bool {
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case Null:
		return true
	case Boolean, Integer, BigInt:
		return a.I == b.I
	case Double, Decimal:
		return math.Float64bits(a.F) == math.Float64bits(b.F)
	case String:
		return a.S == b.S
	case Array, Struct:
		x, y := a.Array(), b.Array()
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if !same(x[i], y[i]) {
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
			if !ok || !same(v, w) {
				return false
			}
		}
		return true
	}
	return false
}

var (
	tInt    = Type{Kind: Integer}
	tBigInt = Type{Kind: BigInt}
	tDouble = Type{Kind: Double}
	tDec    = Type{Kind: Decimal, Precision: 10, Scale: 2}
	tString = Type{Kind: String}
	tBool   = Type{Kind: Boolean}
	null    = Value{}
)

func arrOf(vs ...Value) Value { return ArrayValue(vs) }

type aggCase struct {
	name     string
	fn       string
	args     []Type // nil: one argument of the inputs' type given by typ
	typ      Type
	inputs   []Value
	want     Value
	wantType Type
	canUndo  bool
}

func aggCases() []aggCase {
	ints := []Value{IntValue(3), null, IntValue(-1), IntValue(7), IntValue(3)}
	bigs := []Value{BigIntValue(1 << 40), null, BigIntValue(5), BigIntValue(-2)}
	dbls := []Value{DoubleValue(1.5), null, DoubleValue(2.25), DoubleValue(-0.5)}
	decs := []Value{DecimalValue(1.25), DecimalValue(2.5), null}
	strs := []Value{StringValue("b"), null, StringValue("a"), StringValue("c"), StringValue("a")}
	nulls := []Value{null, null}
	arrs := []Value{arrOf(IntValue(1), IntValue(2)), arrOf(), arrOf(IntValue(1), IntValue(2)), null}
	maps := []Value{
		MapValue(map[string]Value{"a": BigIntValue(1), "b": StringValue("x")}),
		MapValue(map[string]Value{"b": StringValue("x"), "a": BigIntValue(1)}),
		MapValue(map[string]Value{"a": IntValue(1), "b": StringValue("x")}), // INT, not BIGINT
	}
	tArrInt := Type{Kind: Array, Elem: &tInt}
	arrayOf := func(t Type) Type { return Type{Kind: Array, Elem: &t} }
	return []aggCase{
		{name: "count star", fn: "COUNT", args: []Type{}, inputs: ints, want: BigIntValue(5), wantType: tBigInt, canUndo: true},
		{name: "count col", fn: "COUNT", typ: tInt, inputs: ints, want: BigIntValue(4), wantType: tBigInt, canUndo: true},
		{name: "count none", fn: "COUNT", typ: tInt, inputs: nulls, want: BigIntValue(0), wantType: tBigInt, canUndo: true},
		{name: "sum int", fn: "SUM", typ: tInt, inputs: ints, want: IntValue(12), wantType: tInt, canUndo: true},
		{name: "sum int wraps", fn: "SUM", typ: tInt, inputs: []Value{IntValue(math.MaxInt32), IntValue(1)}, want: IntValue(math.MinInt32), wantType: tInt, canUndo: true},
		{name: "sum bigint", fn: "SUM", typ: tBigInt, inputs: bigs, want: BigIntValue(1<<40 + 3), wantType: tBigInt, canUndo: true},
		{name: "sum double", fn: "SUM", typ: tDouble, inputs: dbls, want: DoubleValue(3.25), wantType: tDouble, canUndo: true},
		{name: "sum decimal", fn: "SUM", typ: tDec, inputs: decs, want: DecimalValue(3.75), wantType: tDec, canUndo: true},
		{name: "sum none int", fn: "SUM", typ: tInt, inputs: nulls, want: IntValue(0), wantType: tInt, canUndo: true},
		{name: "sum none decimal", fn: "SUM", typ: tDec, inputs: nil, want: DecimalValue(0), wantType: tDec, canUndo: true},
		{name: "min int", fn: "MIN", typ: tInt, inputs: ints, want: IntValue(-1), wantType: tInt},
		{name: "max int", fn: "MAX", typ: tInt, inputs: ints, want: IntValue(7), wantType: tInt},
		{name: "min double", fn: "MIN", typ: tDouble, inputs: dbls, want: DoubleValue(-0.5), wantType: tDouble},
		{name: "max decimal", fn: "MAX", typ: tDec, inputs: decs, want: DecimalValue(2.5), wantType: tDec},
		{name: "min string", fn: "MIN", typ: tString, inputs: strs, want: StringValue("a"), wantType: tString},
		{name: "max string", fn: "MAX", typ: tString, inputs: strs, want: StringValue("c"), wantType: tString},
		{name: "max none", fn: "MAX", typ: tBigInt, inputs: nulls, want: null, wantType: tBigInt},
		{name: "avg int", fn: "AVG", typ: tInt, inputs: ints, want: DoubleValue(3), wantType: tDouble, canUndo: true},
		{name: "avg bigint", fn: "AVG", typ: tBigInt, inputs: []Value{BigIntValue(1), BigIntValue(2)}, want: DoubleValue(1.5), wantType: tDouble, canUndo: true},
		{name: "avg double", fn: "AVG", typ: tDouble, inputs: dbls, want: DoubleValue(3.25 / 3), wantType: tDouble, canUndo: true},
		{name: "avg decimal", fn: "AVG", typ: tDec, inputs: decs, want: DoubleValue(1.875), wantType: tDouble, canUndo: true},
		{name: "avg none", fn: "AVG", typ: tDouble, inputs: nulls, want: null, wantType: tDouble, canUndo: true},
		{name: "count_distinct int", fn: "COUNT_DISTINCT", typ: tInt, inputs: ints, want: BigIntValue(3), wantType: tBigInt},
		{name: "count_distinct string", fn: "COUNT_DISTINCT", typ: tString, inputs: strs, want: BigIntValue(3), wantType: tBigInt},
		{name: "count_distinct arrays", fn: "COUNT_DISTINCT", typ: tArrInt, inputs: arrs, want: BigIntValue(2), wantType: tBigInt},
		{name: "count_distinct maps", fn: "COUNT_DISTINCT", typ: Type{Kind: Map, Value: &tBigInt}, inputs: maps, want: BigIntValue(2), wantType: tBigInt},
		{name: "count_distinct none", fn: "COUNT_DISTINCT", typ: tInt, inputs: nulls, want: BigIntValue(0), wantType: tBigInt},
		{name: "collect_list int", fn: "COLLECT_LIST", typ: tInt, inputs: ints,
			want: arrOf(IntValue(3), null, IntValue(-1), IntValue(7), IntValue(3)), wantType: arrayOf(tInt), canUndo: true},
		{name: "collect_list arrays", fn: "COLLECT_LIST", typ: tArrInt, inputs: arrs,
			want: arrOf(arrs...), wantType: arrayOf(tArrInt), canUndo: true},
		{name: "collect_list none", fn: "COLLECT_LIST", typ: tString, inputs: nil, want: arrOf(), wantType: arrayOf(tString), canUndo: true},
		{name: "collect_set string", fn: "COLLECT_SET", typ: tString, inputs: strs,
			want: arrOf(StringValue("b"), null, StringValue("a"), StringValue("c")), wantType: arrayOf(tString), canUndo: true},
		{name: "collect_set double", fn: "COLLECT_SET", typ: tDouble, inputs: append(dbls, DoubleValue(1.5), DoubleValue(2.25)),
			want: arrOf(DoubleValue(1.5), null, DoubleValue(2.25), DoubleValue(-0.5)), wantType: arrayOf(tDouble), canUndo: true},
		{name: "collect_set arrays", fn: "COLLECT_SET", typ: tArrInt, inputs: arrs,
			want: arrOf(arrOf(IntValue(1), IntValue(2)), arrOf(), null), wantType: arrayOf(tArrInt), canUndo: true},
		{name: "latest", fn: "LATEST_BY_OFFSET", typ: tString, inputs: []Value{StringValue("x"), StringValue("y"), null},
			want: StringValue("y"), wantType: tString},
		{name: "latest none", fn: "LATEST_BY_OFFSET", typ: tString, inputs: nulls, want: null, wantType: tString},
		{name: "latest bool", fn: "LATEST_BY_OFFSET", typ: tBool, inputs: []Value{BoolValue(true), BoolValue(false)},
			want: BoolValue(false), wantType: tBool},
		{name: "earliest", fn: "EARLIEST_BY_OFFSET", typ: tBigInt, inputs: []Value{null, BigIntValue(4), BigIntValue(9)},
			want: BigIntValue(4), wantType: tBigInt},
		{name: "earliest none", fn: "EARLIEST_BY_OFFSET", typ: tBigInt, inputs: nil, want: null, wantType: tBigInt},
	}
}

func (c aggCase) argTypes() []Type {
	if c.args != nil {
		return c.args
	}
	return []Type{c.typ}
}

func (c aggCase) argsOf(v Value) []Value {
	if len(c.argTypes()) == 0 {
		return nil
	}
	return []Value{v}
}

func (c aggCase) new(t *testing.T) func() Accumulator {
	t.Helper()
	newAcc, typ, canUndo, err := NewAccumulatorFunc(c.fn, c.argTypes())
	if err != nil {
		t.Fatalf("NewAccumulatorFunc(%s): %v", c.fn, err)
	}
	if !typ.Equal(c.wantType) {
		t.Errorf("result type %s, want %s", typ, c.wantType)
	}
	if canUndo != c.canUndo {
		t.Errorf("canUndo %v, want %v", canUndo, c.canUndo)
	}
	return newAcc
}

func (c aggCase) feed(a Accumulator, vs []Value) Accumulator {
	for _, v := range vs {
		a.Add(c.argsOf(v))
	}
	return a
}

func checkResult(t *testing.T, what string, got, want Value) {
	t.Helper()
	if !same(got, want) {
		t.Errorf("%s: got %s (kind %d), want %s (kind %d)", what, got, got.Kind, want, want.Kind)
	}
}

func TestAccumulatorResults(t *testing.T) {
	for _, c := range aggCases() {
		t.Run(c.name, func(t *testing.T) {
			newAcc := c.new(t)
			a := c.feed(newAcc(), c.inputs)
			checkResult(t, "result", a.Result(), c.want)
			// Result is a snapshot: later Undos and Adds do not change it.
			r := a.Result()
			before := canonicalKey(r)
			if c.canUndo && len(c.inputs) > 0 {
				a.Undo(c.argsOf(c.inputs[0]))
			}
			c.feed(a, c.inputs)
			if canonicalKey(r) != before {
				t.Errorf("Result aliased state: %s became %s", before, canonicalKey(r))
			}
		})
	}
}

func TestAccumulatorUndo(t *testing.T) {
	for _, c := range aggCases() {
		t.Run(c.name, func(t *testing.T) {
			newAcc := c.new(t)
			if !c.canUndo {
				a := c.feed(newAcc(), c.inputs)
				if len(c.inputs) > 0 && a.Undo(c.argsOf(c.inputs[0])) {
					t.Errorf("Undo reported true for %s", c.fn)
				}
				return
			}
			// Undo each input in turn: the result is that of adding the others.
			for i := range c.inputs {
				a := c.feed(newAcc(), c.inputs)
				if !a.Undo(c.argsOf(c.inputs[i])) {
					t.Fatalf("Undo reported false")
				}
				rest := append(append([]Value(nil), c.inputs[:i]...), c.inputs[i+1:]...)
				want := c.feed(newAcc(), rest).Result()
				got := a.Result()
				if c.fn == "COLLECT_LIST" {
					// the last equal element goes; compare as multisets
					if !sameMultiset(got, want) {
						t.Errorf("undo %d: got %s, want %s", i, got, want)
					}
					continue
				}
				if c.fn == "COLLECT_SET" {
					// order can differ when the first occurrence was undone
					if !sameMultiset(got, want) {
						t.Errorf("undo %d: got %s, want %s", i, got, want)
					}
					continue
				}
				checkResult(t, "undo", got, want)
			}
			// Undo everything: back to the empty result.
			a := c.feed(newAcc(), c.inputs)
			for _, v := range c.inputs {
				a.Undo(c.argsOf(v))
			}
			checkResult(t, "undo all", a.Result(), newAcc().Result())
		})
	}
}

func sameMultiset(a, b Value) bool {
	keys := func(v Value) []string {
		var ks []string
		for _, x := range v.Array() {
			ks = append(ks, canonicalKey(x))
		}
		sort.Strings(ks)
		return ks
	}
	return reflect.DeepEqual(keys(a), keys(b))
}

func TestAccumulatorUndoExamples(t *testing.T) {
	undo := func(fn string, typ Type, add []Value, rm Value) Value {
		newAcc, _, _, err := NewAccumulatorFunc(fn, []Type{typ})
		if err != nil {
			t.Fatal(err)
		}
		a := newAcc()
		for _, v := range add {
			a.Add([]Value{v})
		}
		a.Undo([]Value{rm})
		return a.Result()
	}
	// COLLECT_LIST removes the last equal element
	checkResult(t, "list", undo("COLLECT_LIST", tInt, []Value{IntValue(1), IntValue(2), IntValue(1), IntValue(3)}, IntValue(1)),
		arrOf(IntValue(1), IntValue(2), IntValue(3)))
	checkResult(t, "list absent", undo("COLLECT_LIST", tInt, []Value{IntValue(1)}, IntValue(5)), arrOf(IntValue(1)))
	checkResult(t, "list null", undo("COLLECT_LIST", tInt, []Value{null, IntValue(1)}, null), arrOf(IntValue(1)))
	// COLLECT_SET keeps a value while some occurrence remains
	checkResult(t, "set kept", undo("COLLECT_SET", tString, []Value{StringValue("a"), StringValue("b"), StringValue("a")}, StringValue("a")),
		arrOf(StringValue("a"), StringValue("b")))
	checkResult(t, "set gone", undo("COLLECT_SET", tString, []Value{StringValue("a"), StringValue("b"), StringValue("c")}, StringValue("a")),
		arrOf(StringValue("b"), StringValue("c")))
	// AVG back to no rows is NULL, SUM back to 0
	checkResult(t, "avg", undo("AVG", tInt, []Value{IntValue(4)}, IntValue(4)), null)
	checkResult(t, "sum", undo("SUM", tDouble, []Value{DoubleValue(4)}, DoubleValue(4)), DoubleValue(0))
}

func TestAccumulatorMerge(t *testing.T) {
	for _, c := range aggCases() {
		t.Run(c.name, func(t *testing.T) {
			newAcc := c.new(t)
			want := c.feed(newAcc(), c.inputs).Result()
			for split := 0; split <= len(c.inputs); split++ {
				a := c.feed(newAcc(), c.inputs[:split])
				b := c.feed(newAcc(), c.inputs[split:])
				a.Merge(b)
				checkResult(t, "merge at "+strconv.Itoa(split), a.Result(), want)
				// the merged accumulator goes on
				c.feed(a, c.inputs)
				checkResult(t, "after merge", a.Result(), c.feed(c.feed(newAcc(), c.inputs), c.inputs).Result())
			}
		})
	}
}

func TestAccumulatorJSON(t *testing.T) {
	for _, c := range aggCases() {
		t.Run(c.name, func(t *testing.T) {
			newAcc := c.new(t)
			for split := 0; split <= len(c.inputs); split++ {
				a := c.feed(newAcc(), c.inputs[:split])
				b, err := a.MarshalJSON()
				if err != nil {
					t.Fatal(err)
				}
				r := newAcc()
				if err := r.UnmarshalJSON(b); err != nil {
					t.Fatalf("UnmarshalJSON(%s): %v", b, err)
				}
				checkResult(t, "restored "+string(b), r.Result(), a.Result())
				b2, _ := r.MarshalJSON()
				if string(b2) != string(b) {
					t.Errorf("re-marshal: %s, was %s", b2, b)
				}
				c.feed(r, c.inputs[split:])
				checkResult(t, "continued from "+string(b), r.Result(), c.want)
				if c.canUndo && split > 0 {
					r := newAcc()
					_ = r.UnmarshalJSON(b)
					r.Undo(c.argsOf(c.inputs[0]))
					w := c.feed(newAcc(), c.inputs[1:split]).Result()
					if got := r.Result(); !same(got, w) && (got.Kind != Array || !sameMultiset(got, w)) {
						t.Errorf("undo after restore from %s: got %s, want %s", b, r.Result(), w)
					}
				}
			}
		})
	}
}

func TestValueStateRoundTrip(t *testing.T) {
	vals := []Value{
		null, BoolValue(true), BoolValue(false), IntValue(0), IntValue(-7), BigIntValue(0), BigIntValue(math.MaxInt64),
		DoubleValue(0), DoubleValue(math.Copysign(0, -1)), DoubleValue(0.1), DoubleValue(1e300), DoubleValue(math.SmallestNonzeroFloat64),
		DoubleValue(math.Inf(1)), DoubleValue(math.Inf(-1)), DecimalValue(0), DecimalValue(12.34),
		StringValue(""), StringValue("héllo \"x\"\n"),
		arrOf(), arrOf(null, IntValue(1), DoubleValue(2), DecimalValue(2), StringValue("")),
		MapValue(map[string]Value{}), MapValue(map[string]Value{"a": null, "b": arrOf(BigIntValue(1)), "": BoolValue(false)}),
		StructValue([]Value{IntValue(1), null, StructValue([]Value{StringValue("z")})}),
	}
	newAcc, _, _, err := NewAccumulatorFunc("COLLECT_LIST", []Type{{}})
	if err != nil {
		t.Fatal(err)
	}
	a := newAcc()
	for _, v := range vals {
		a.Add([]Value{v})
	}
	b, err := a.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	r := newAcc()
	if err := r.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	got := r.Result().Array()
	if len(got) != len(vals) {
		t.Fatalf("%d values back, want %d: %s", len(got), len(vals), b)
	}
	for i := range vals {
		checkResult(t, "value "+vals[i].String(), got[i], vals[i])
	}
	// NaN survives too (same does not compare NaN bits through formatting, so check apart)
	a = newAcc()
	a.Add([]Value{DoubleValue(math.NaN())})
	b, _ = a.MarshalJSON()
	r = newAcc()
	if err := r.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	if v := r.Result().Array()[0]; v.Kind != Double || !math.IsNaN(v.F) {
		t.Errorf("NaN came back as %s", v)
	}
	// NULL and zero differ in state
	for _, fn := range []string{"MIN", "LATEST_BY_OFFSET", "EARLIEST_BY_OFFSET"} {
		newAcc, _, _, _ := NewAccumulatorFunc(fn, []Type{tInt})
		zero, empty := newAcc(), newAcc()
		zero.Add([]Value{IntValue(0)})
		bz, _ := zero.MarshalJSON()
		be, _ := empty.MarshalJSON()
		rz, re := newAcc(), newAcc()
		_ = rz.UnmarshalJSON(bz)
		_ = re.UnmarshalJSON(be)
		checkResult(t, fn+" zero", rz.Result(), IntValue(0))
		checkResult(t, fn+" empty", re.Result(), null)
	}
	if err := newAcc().UnmarshalJSON([]byte(`{"x":[{"k":99}]}`)); err == nil {
		t.Error("unknown kind accepted")
	}
}

func TestCollectLimit(t *testing.T) {
	for _, fn := range []string{"COLLECT_LIST", "COLLECT_SET"} {
		newAcc, _, _, _ := NewAccumulatorFunc(fn, []Type{tInt})
		a, b := newAcc(), newAcc()
		for i := range 1500 {
			a.Add([]Value{IntValue(int32(i))})
			b.Add([]Value{IntValue(int32(-i - 1))})
		}
		if n := len(a.Result().Array()); n != collectLimit {
			t.Errorf("%s: %d elements, want %d", fn, n, collectLimit)
		}
		a.Undo([]Value{IntValue(5)})
		a.Merge(b)
		got := a.Result().Array()
		if len(got) != collectLimit || !same(got[len(got)-1], IntValue(-1)) {
			t.Errorf("%s merge at limit: %d elements, last %s", fn, len(got), got[len(got)-1])
		}
	}
}

func TestMergeOrder(t *testing.T) {
	mk := func(fn string, vs ...Value) Accumulator {
		newAcc, _, _, err := NewAccumulatorFunc(fn, []Type{tString})
		if err != nil {
			t.Fatal(err)
		}
		a := newAcc()
		for _, v := range vs {
			a.Add([]Value{v})
		}
		return a
	}
	x, y, z := StringValue("x"), StringValue("y"), StringValue("z")
	cases := []struct {
		fn         string
		recv, othr []Value
		want       Value
	}{
		{"LATEST_BY_OFFSET", []Value{x}, []Value{y}, y},
		{"LATEST_BY_OFFSET", []Value{x}, []Value{null}, x},
		{"LATEST_BY_OFFSET", nil, []Value{y}, y},
		{"EARLIEST_BY_OFFSET", []Value{x}, []Value{y}, x},
		{"EARLIEST_BY_OFFSET", nil, []Value{y}, y},
		{"COLLECT_LIST", []Value{y, x}, []Value{x, z}, arrOf(y, x, x, z)},
		{"COLLECT_SET", []Value{y, x}, []Value{z, x, y}, arrOf(y, x, z)},
		{"MIN", []Value{y}, []Value{x}, x},
		{"MAX", []Value{y}, nil, y},
		{"COUNT_DISTINCT", []Value{y, x}, []Value{z, x}, BigIntValue(3)},
	}
	for _, c := range cases {
		a := mk(c.fn, c.recv...)
		a.Merge(mk(c.fn, c.othr...))
		checkResult(t, c.fn, a.Result(), c.want)
	}
}

func TestAccumulatorErrors(t *testing.T) {
	cases := []struct {
		fn   string
		args []Type
		want string
	}{
		{"COUNT", []Type{tInt, tInt}, "COUNT takes one argument"},
		{"SUM", []Type{tString}, "SUM takes one numeric argument"},
		{"SUM", nil, "SUM takes one numeric argument"},
		{"AVG", []Type{tBool}, "AVG takes one numeric argument"},
		{"MIN", []Type{tBool}, "MIN takes one numeric or STRING argument"},
		{"MAX", []Type{{Kind: Array, Elem: &tInt}}, "MAX takes one numeric or STRING argument"},
		{"COLLECT_LIST", []Type{tInt, tInt}, "COLLECT_LIST takes one argument"},
		{"LATEST_BY_OFFSET", nil, "LATEST_BY_OFFSET takes one argument"},
		{"MEDIAN", []Type{tInt}, "unknown aggregate function MEDIAN"},
	}
	for _, c := range cases {
		_, _, _, err := NewAccumulatorFunc(c.fn, c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s%v: error %v, want %q", c.fn, c.args, err, c.want)
		}
	}
}

func TestAggregateNames(t *testing.T) {
	names := AggregateNames()
	if !sort.StringsAreSorted(names) || len(names) != 10 {
		t.Errorf("names %v", names)
	}
	for _, n := range names {
		args := []Type{tInt}
		if _, _, _, err := NewAccumulatorFunc(n, args); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	names[0] = "X"
	if AggregateNames()[0] != "AVG" {
		t.Error("AggregateNames shares its slice")
	}
}

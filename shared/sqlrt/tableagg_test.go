package sqlrt

import (
	"testing"
)

// MIN and MAX over a TABLE undo: a row that changes or goes takes its value out.
func TestTableMinMaxUndo(t *testing.T) {
	for _, max := range []bool{false, true} {
		name := map[bool]string{false: "MIN", true: "MAX"}[max]
		newAcc, typ, canUndo, err := NewTableAccumulatorFunc(name, []Type{{Kind: Integer}})
		if err != nil || !canUndo || typ.Kind != Integer {
			t.Fatalf("%s over a table: %v %v %v", name, typ, canUndo, err)
		}
		if _, _, canUndo, _ := NewAccumulatorFunc(name, []Type{{Kind: Integer}}); canUndo {
			t.Errorf("%s over a stream claims to undo", name)
		}
		a := newAcc()
		want := func(v Value, when string) {
			t.Helper()
			if got := a.Result(); !Equal(got, v) || got.Kind != v.Kind {
				t.Errorf("%s %s: %v, want %v", name, when, got, v)
			}
		}
		for _, v := range []int32{5, 3, 9, 3} {
			a.Add([]Value{IntValue(v)})
		}
		a.Add([]Value{{}}) // NULL: not a value
		want(IntValue(map[bool]int32{false: 3, true: 9}[max]), "after 5 3 9 3")
		a.Undo([]Value{IntValue(3)}) // one of two 3s goes
		want(IntValue(map[bool]int32{false: 3, true: 9}[max]), "after undoing one 3")
		a.Undo([]Value{IntValue(3)})
		a.Undo([]Value{IntValue(9)})
		want(IntValue(5), "after undoing 3 and 9")
		a.Undo([]Value{IntValue(42)}) // never added: nothing happens
		want(IntValue(5), "after undoing a value never added")

		// state round trip, then merge
		b, err := a.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		c := newAcc()
		if err := c.UnmarshalJSON(b); err != nil {
			t.Fatal(err)
		}
		d := newAcc()
		d.Add([]Value{IntValue(1)})
		d.Add([]Value{IntValue(7)})
		c.Merge(d)
		want2 := map[bool]int32{false: 1, true: 7}[max]
		if got := c.Result(); got.I != int64(want2) {
			t.Errorf("%s after round trip and merge: %v, want %d", name, got, want2)
		}
		a.Undo([]Value{IntValue(5)})
		want(Value{}, "empty")
	}
}

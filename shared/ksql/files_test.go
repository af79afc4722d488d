package ksql

import (
	"os"
	"reflect"
	"testing"
)

func parseFile(t *testing.T, name string) []Statement {
	t.Helper()
	src, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	stmts, err := Parse(name, string(src))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return stmts
}

// clearPos zeroes every statement position so ASTs from different
// sources compare equal.
func clearPos(stmts []Statement) {
	for _, s := range stmts {
		reflect.ValueOf(s).Elem().FieldByName("Pos").Set(reflect.ValueOf(Pos{}))
	}
}

func TestDemoFilesRoundTrip(t *testing.T) {
	for _, f := range []string{"clickstream.sql", "ratings.sql", "ratings_json.sql"} {
		stmts := parseFile(t, f)
		for i, s := range stmts {
			printed := s.String()
			again, err := ParseStatement(printed)
			if err != nil {
				t.Fatalf("%s statement %d: reparse %q: %v", f, i+1, printed, err)
			}
			a, b := []Statement{s}, []Statement{again}
			clearPos(a)
			clearPos(b)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("%s statement %d: round trip differs:\n%s\n%s", f, i+1, printed, again.String())
			}
			if again.String() != printed {
				t.Errorf("%s statement %d: printing is not stable:\n%s\n%s", f, i+1, printed, again.String())
			}
		}
		// the whole script round-trips through Format too
		again, err := Parse("formatted", Format(stmts))
		if err != nil {
			t.Fatalf("%s: reparse Format: %v", f, err)
		}
		clearPos(again)
		clearPos(stmts)
		if !reflect.DeepEqual(stmts, again) {
			t.Errorf("%s: Format round trip differs", f)
		}
	}
}

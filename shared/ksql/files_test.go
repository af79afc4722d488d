package ksql

import (
	"bytes"
	"os"
	"reflect"
	"testing"
)

// parseFile parses a demo file from testdata. "ratings_json.sql" is ratings.sql with
// VALUE_FORMAT='JSON' in place of 'AVRO' (as jetsuite runs it), derived here rather than kept
// as a second copy.
func parseFile(t *testing.T, name string) []Statement {
	t.Helper()
	file := name
	if name == "ratings_json.sql" {
		file = "ratings.sql"
	}
	src, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	if name == "ratings_json.sql" {
		src = bytes.ReplaceAll(src, []byte("VALUE_FORMAT='AVRO'"), []byte("VALUE_FORMAT='JSON'"))
	}
	stmts, err := Parse(name, string(src))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return stmts
}

// clearPos zeroes every position in the statements (of statements,
// column references and function calls) so ASTs from different sources
// compare equal.
func clearPos(stmts []Statement) {
	for _, s := range stmts {
		zeroPos(reflect.ValueOf(s))
	}
}

var posType = reflect.TypeOf(Pos{})

func zeroPos(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			zeroPos(v.Elem())
		}
	case reflect.Struct:
		if v.Type() == posType {
			if v.CanSet() {
				v.Set(reflect.Zero(posType))
			}
			return
		}
		for i := 0; i < v.NumField(); i++ {
			zeroPos(v.Field(i))
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			zeroPos(v.Index(i))
		}
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

func TestClickstreamFacts(t *testing.T) {
	stmts := parseFile(t, "clickstream.sql")
	if len(stmts) != 12 {
		t.Fatalf("clickstream.sql: %d statements, want 12", len(stmts))
	}
	cs := stmts[0].(*CreateSource)
	if cs.Kind != Stream || cs.Name != "CLICKSTREAM" || len(cs.Columns) != 8 {
		t.Errorf("stmt 1: %s %s with %d columns", cs.Kind, cs.Name, len(cs.Columns))
	}
	if c := cs.Columns[0]; c.Name != "_TIME" || c.Type.Name != "BIGINT" {
		t.Errorf("stmt 1 column 1: %+v", c)
	}
	if got := cs.With; len(got) != 2 || got[0].Key != "KAFKA_TOPIC" || got[0].Value.(*StringLit).Value != "clickstream" {
		t.Errorf("stmt 1 WITH: %v", got)
	}
	if pos := cs.Position(); pos != (Pos{5, 1}) {
		t.Errorf("stmt 1 at %v, want 5:1", pos)
	}
	codes := stmts[1].(*CreateSource)
	if codes.Kind != Table || !codes.Columns[0].PrimaryKey || codes.Columns[1].PrimaryKey {
		t.Errorf("stmt 2: %s, primary key flags %v %v", codes.Kind, codes.Columns[0].PrimaryKey, codes.Columns[1].PrimaryKey)
	}
	if u := stmts[2].(*CreateSource); u.Columns[1].Name != "REGISTERED_AT" {
		t.Errorf("stmt 3 column 2: %q, want upper-cased REGISTERED_AT", u.Columns[1].Name)
	}

	uc := stmts[3].(*CreateAsSelect)
	if uc.Kind != Stream || uc.Name != "USER_CLICKSTREAM" {
		t.Errorf("stmt 4: %s %s", uc.Kind, uc.Name)
	}
	q := uc.Query
	if q.From != (Relation{"CLICKSTREAM", "C", Pos{56, 10}}) || len(q.Joins) != 1 {
		t.Fatalf("stmt 4 FROM %+v joins %d", q.From, len(q.Joins))
	}
	if j := q.Joins[0]; j.Type != LeftJoin || j.Right != (Relation{"WEB_USERS", "U", Pos{57, 19}}) || j.On.String() != "C.USERID = U.USER_ID" {
		t.Errorf("stmt 4 join: %s %+v ON %s", j.Type, j.Right, j.On)
	}
	if len(q.Items) != 7 || q.Items[1].Expr.String() != "U.USERNAME" {
		t.Errorf("stmt 4 items: %d, second %v", len(q.Items), q.Items[1].Expr)
	}
	if j := stmts[4].(*CreateAsSelect).Query.Joins[0]; j.On.String() != "CLICKSTREAM.STATUS = CLICKSTREAM_CODES.CODE" || j.Right.Alias != "" {
		t.Errorf("stmt 5 join: ON %s alias %q", j.On, j.Right.Alias)
	}

	epm := stmts[5].(*CreateAsSelect)
	if epm.Kind != Table || epm.Name != "EVENTS_PER_MIN" {
		t.Errorf("stmt 6: %s %s", epm.Kind, epm.Name)
	}
	if w := epm.Query.Window; w == nil || w.Kind != Tumbling || w.Size != (Duration{60, "SECOND"}) || w.Advance != nil || w.Grace != nil {
		t.Errorf("stmt 6 window: %v", w)
	} else if w.Size.Duration().Seconds() != 60 {
		t.Errorf("stmt 6 window size %v", w.Size.Duration())
	}
	if it := epm.Query.Items[3]; it.Alias != "EVENTS" || it.Expr.String() != "COUNT(*)" || !it.Expr.(*FuncCall).Star {
		t.Errorf("stmt 6 item 4: %v AS %s", it.Expr, it.Alias)
	}
	if g := exprList(epm.Query.GroupBy); g != "USERID" {
		t.Errorf("stmt 6 group by %s", g)
	}

	ppm := stmts[6].(*CreateAsSelect).Query
	if w := ppm.Window; w.Kind != Hopping || w.Size != (Duration{60, "SECOND"}) || *w.Advance != (Duration{5, "SECOND"}) {
		t.Errorf("stmt 7 window: %v", w)
	}
	if ppm.Where.String() != "REQUEST LIKE '%html%'" {
		t.Errorf("stmt 7 where: %s", ppm.Where)
	}
	if w := stmts[7].(*CreateAsSelect).Query.Window; w.Kind != Session || w.Size != (Duration{30, "SECOND"}) {
		t.Errorf("stmt 8 window: %v", w)
	}
	alert := stmts[8].(*CreateAsSelect)
	if alert.Name != "ERRORS_PER_MIN_ALERT" || alert.Query.Having.String() != "COUNT(*) > 5 AND COUNT(*) IS NOT NULL" {
		t.Errorf("stmt 9: %s having %v", alert.Name, alert.Query.Having)
	}
	if w := alert.Query.Window; *w.Advance != (Duration{20, "SECOND"}) {
		t.Errorf("stmt 9 advance %v", w.Advance)
	}
	eec := stmts[10].(*CreateAsSelect)
	if len(eec.With) != 1 || eec.With[0].Key != "KEY_FORMAT" || exprList(eec.Query.GroupBy) != "CODE, DEFINITION" || eec.Query.Having.String() != "COUNT(*) > 1" {
		t.Errorf("stmt 11: with %v group by %s having %v", eec.With, exprList(eec.Query.GroupBy), eec.Query.Having)
	}
	if it := eec.Query.Items[5]; it.Alias != "COUNT" {
		t.Errorf("stmt 11 last alias %q", it.Alias)
	}
	uia := stmts[11].(*CreateAsSelect)
	if uia.Name != "USER_IP_ACTIVITY" || exprList(uia.Query.GroupBy) != "USERNAME, IP, CITY" || len(uia.Query.Items) != 8 {
		t.Errorf("stmt 12: %s group by %s", uia.Name, exprList(uia.Query.GroupBy))
	}
}

func TestRatingsFacts(t *testing.T) {
	stmts := parseFile(t, "ratings.sql")
	if len(stmts) != 13 {
		t.Fatalf("ratings.sql: %d statements, want 13", len(stmts))
	}
	sink := stmts[0].(*CreateConnector)
	if sink.Kind != Sink || sink.Name != "SINK_ES_RATINGS" || len(sink.With) != 9 {
		t.Errorf("stmt 1: %s %s %d props", sink.Kind, sink.Name, len(sink.With))
	}
	if p := sink.With[7]; p.Key != "transforms.ExtractTimestamp.type" || p.Value.(*StringLit).Value != "org.apache.kafka.connect.transforms.InsertField$Value" {
		t.Errorf("stmt 1 prop 8: %+v", p)
	}
	live := stmts[1].(*CreateAsSelect)
	if live.Name != "RATINGS_LIVE" || live.Query.Emit != "CHANGES" || live.Query.Where.String() != "LCASE(CHANNEL) NOT LIKE '%test%'" {
		t.Errorf("stmt 2: %s emit %q where %v", live.Name, live.Query.Emit, live.Query.Where)
	}
	if src := stmts[3].(*CreateConnector); src.Kind != Source || len(src.With) != 18 {
		t.Errorf("stmt 4: %s %d props", src.Kind, len(src.With))
	}
	cust := stmts[4].(*CreateSource)
	if cust.Kind != Table || !cust.Columns[0].PrimaryKey || cust.With[1].Value.String() != "'AVRO'" {
		t.Errorf("stmt 5: %v", cust)
	}
	if cs := stmts[5].(*CreateSource); cs.Kind != Stream || !cs.Columns[0].Key || cs.Columns[0].PrimaryKey {
		t.Errorf("stmt 6: %v", cs)
	}
	if set := stmts[6].(*SetStmt); set.Key != "auto.offset.reset" || set.Value != "earliest" {
		t.Errorf("stmt 7: %v", set)
	}
	enr := stmts[7].(*CreateAsSelect)
	if enr.With[0].Key != "KAFKA_TOPIC" || enr.With[0].Value.(*StringLit).Value != "ratings-enriched" {
		t.Errorf("stmt 8 with: %v", enr.With)
	}
	if j := enr.Query.Joins[0]; j.Type != LeftJoin || j.On.String() != "CAST(R.USER_ID AS STRING) = C.CUSTOMER_ID" {
		t.Errorf("stmt 8 join %s ON %v", j.Type, j.On)
	}
	if it := enr.Query.Items[5]; it.Alias != "FULL_NAME" || FormatExpr(it.Expr, true) != "((C.FIRST_NAME + ' ') + C.LAST_NAME)" {
		t.Errorf("stmt 8 item 6: %s AS %s", FormatExpr(it.Expr, true), it.Alias)
	}
	if w := enr.Query.Where.String(); w != "C.FIRST_NAME IS NOT NULL" {
		t.Errorf("stmt 8 where %s", w)
	}
	unhappy := stmts[8].(*CreateAsSelect).Query
	if exprList(unhappy.PartitionBy) != "FULL_NAME" || FormatExpr(unhappy.Where, true) != "((STARS < 3) AND (CLUB_STATUS = 'platinum'))" || unhappy.Emit != "" {
		t.Errorf("stmt 9: partition by %s where %s", exprList(unhappy.PartitionBy), FormatExpr(unhappy.Where, true))
	}
	if s := stmts[9].(*CreateConnector); s.With[2].Value.(*StringLit).Value != "" {
		t.Errorf("stmt 10: type.name %v", s.With[2].Value)
	}
	agg := stmts[10].(*CreateAsSelect)
	if w := agg.Query.Window; w.Kind != Tumbling || w.Size != (Duration{15, "MINUTE"}) || w.Size.Duration().Minutes() != 15 {
		t.Errorf("stmt 11 window %v", w)
	}
	if it := agg.Query.Items[2]; it.Expr.String() != "COLLECT_LIST(STARS)" || it.Alias != "RATINGS" {
		t.Errorf("stmt 11 item 3: %v AS %s", it.Expr, it.Alias)
	}
	push := stmts[11].(*QueryStmt)
	if push.Query.Emit != "CHANGES" || push.Query.Items[0].Alias != "WINDOW_START_TS" {
		t.Errorf("stmt 12: %v", push)
	}
	pull := stmts[12].(*QueryStmt)
	if pull.Query.Emit != "" || pull.Query.Where.String() != "FULL_NAME = 'Rica Blaisdell' AND WINDOWSTART > '2020-07-06T15:30:00.000'" {
		t.Errorf("stmt 13: %v", pull)
	}
	if pos := pull.Position(); pos.Line != 104 || pos.Col != 1 {
		t.Errorf("stmt 13 at %v, want 104:1", pos)
	}
}

func TestRatingsJSONDiffersOnlyInFormat(t *testing.T) {
	avro, js := parseFile(t, "ratings.sql"), parseFile(t, "ratings_json.sql")
	if len(avro) != len(js) {
		t.Fatalf("%d vs %d statements", len(avro), len(js))
	}
	diff := 0
	for i := range avro {
		if avro[i].String() != js[i].String() {
			diff++
			if got := js[i].(*CreateSource).With[1].Value.(*StringLit).Value; got != "JSON" {
				t.Errorf("stmt %d VALUE_FORMAT %q", i+1, got)
			}
		}
	}
	if diff != 2 {
		t.Errorf("%d statements differ, want 2", diff)
	}
}

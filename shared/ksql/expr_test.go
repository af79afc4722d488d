package ksql

import (
	"reflect"
	"testing"
)

func TestExprPrecedence(t *testing.T) {
	cases := []struct{ in, full, min string }{
		{"a + b * c", "(A + (B * C))", "A + B * C"},
		{"(a + b) * c", "((A + B) * C)", "(A + B) * C"},
		{"a - b - c", "((A - B) - C)", "A - B - C"},
		{"a - (b - c)", "(A - (B - C))", "A - (B - C)"},
		{"a / b % c * d", "(((A / B) % C) * D)", "A / B % C * D"},
		{"-a * b", "((-A) * B)", "-A * B"},
		{"-(a * b)", "(-(A * B))", "-(A * B)"},
		{"- -a", "(-(-A))", "-(-A)"},
		{"a - -1", "(A - (-1))", "A - -1"},
		{"a OR b AND c", "(A OR (B AND C))", "A OR B AND C"},
		{"(a OR b) AND c", "((A OR B) AND C)", "(A OR B) AND C"},
		{"NOT a AND b", "((NOT A) AND B)", "NOT A AND B"},
		{"NOT (a AND b)", "(NOT (A AND B))", "NOT (A AND B)"},
		{"NOT a = b", "(NOT (A = B))", "NOT A = B"},
		{"a = b OR c <> d AND e != f", "((A = B) OR ((C <> D) AND (E != F)))", "A = B OR C <> D AND E != F"},
		{"a + 1 >= b * 2", "((A + 1) >= (B * 2))", "A + 1 >= B * 2"},
		{"a <= b AND c < d AND e > f", "(((A <= B) AND (C < D)) AND (E > F))", "A <= B AND C < D AND E > F"},
		{"x LIKE 'a%' OR y NOT LIKE '%b'", "((X LIKE 'a%') OR (Y NOT LIKE '%b'))", "X LIKE 'a%' OR Y NOT LIKE '%b'"},
		{"x IN (1, 2 + 3) AND y NOT IN ('a')", "((X IN (1, (2 + 3))) AND (Y NOT IN ('a')))", "X IN (1, 2 + 3) AND Y NOT IN ('a')"},
		{"x BETWEEN 1 AND 2 AND y", "((X BETWEEN 1 AND 2) AND Y)", "X BETWEEN 1 AND 2 AND Y"},
		{"x NOT BETWEEN a + 1 AND b * 2", "(X NOT BETWEEN (A + 1) AND (B * 2))", "X NOT BETWEEN A + 1 AND B * 2"},
		{"x + 1 IS NOT NULL OR y IS NULL", "(((X + 1) IS NOT NULL) OR (Y IS NULL))", "X + 1 IS NOT NULL OR Y IS NULL"},
		{"(a = b) = c", "((A = B) = C)", "(A = B) = C"},
		{"first + ' ' + last", "((FIRST + ' ') + LAST)", "FIRST + ' ' + LAST"},
		{"s->f->g[0] + m['k']", "(S->F->G[0] + M['k'])", "S->F->G[0] + M['k']"},
		{"t.a->b", "T.A->B", "T.A->B"},
		{"(a + b)->c", "(A + B)->C", "(A + B)->C"},
		{"count(*) > 5 and count(*) is not null", "((COUNT(*) > 5) AND (COUNT(*) IS NOT NULL))", "COUNT(*) > 5 AND COUNT(*) IS NOT NULL"},
		{"cast(a + 1 as decimal(10, 2)) * 2", "(CAST((A + 1) AS DECIMAL(10, 2)) * 2)", "CAST(A + 1 AS DECIMAL(10, 2)) * 2"},
		{"case when a > 1 then 'x' when a is null then 'n' else 'y' end", "CASE WHEN (A > 1) THEN 'x' WHEN (A IS NULL) THEN 'n' ELSE 'y' END", "CASE WHEN A > 1 THEN 'x' WHEN A IS NULL THEN 'n' ELSE 'y' END"},
		{"case s when 1 then true end = false", "(CASE S WHEN 1 THEN TRUE END = FALSE)", "CASE S WHEN 1 THEN TRUE END = FALSE"},
		{"f(a, g(b, 1.5), 2e3, null)", "F(A, G(B, 1.5), 2e3, NULL)", "F(A, G(B, 1.5), 2e3, NULL)"},
		{"'it''s' + `mixedCase`", "('it''s' + `mixedCase`)", "'it''s' + `mixedCase`"},
		{"`select` + windowstart + rowtime", "((`select` + WINDOWSTART) + ROWTIME)", "`select` + WINDOWSTART + ROWTIME"},
	}
	for _, c := range cases {
		e, err := ParseExpr(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got := FormatExpr(e, true); got != c.full {
			t.Errorf("%q full parens:\n got %s\nwant %s", c.in, got, c.full)
		}
		if got := e.String(); got != c.min {
			t.Errorf("%q minimal:\n got %s\nwant %s", c.in, got, c.min)
		}
		for _, printed := range []string{c.full, c.min} {
			again, err := ParseExpr(printed)
			if err != nil {
				t.Errorf("reparse %q: %v", printed, err)
				continue
			}
			zeroPos(reflect.ValueOf(e))
			zeroPos(reflect.ValueOf(again))
			if !reflect.DeepEqual(e, again) {
				t.Errorf("%q: reparse of %q gives a different tree", c.in, printed)
			}
		}
	}
}

func TestLexer(t *testing.T) {
	src := "select `My Col`, a.b->c, 'it''s' /* x\ny */ -- note\n<> != <= >= -> 3.25 7 1e6 [x] %"
	toks, err := Lex("", src)
	if err != nil {
		t.Fatal(err)
	}
	want := []Token{
		{Ident, "select", "SELECT", 1, 1},
		{QIdent, "`My Col`", "My Col", 1, 8},
		{Op, ",", ",", 1, 16},
		{Ident, "a", "A", 1, 18},
		{Op, ".", ".", 1, 19},
		{Ident, "b", "B", 1, 20},
		{Op, "->", "->", 1, 21},
		{Ident, "c", "C", 1, 23},
		{Op, ",", ",", 1, 24},
		{String, "'it''s'", "it's", 1, 26},
		{Op, "<>", "<>", 3, 1},
		{Op, "!=", "!=", 3, 4},
		{Op, "<=", "<=", 3, 7},
		{Op, ">=", ">=", 3, 10},
		{Op, "->", "->", 3, 13},
		{Decimal, "3.25", "3.25", 3, 16},
		{Integer, "7", "7", 3, 21},
		{Double, "1e6", "1e6", 3, 23},
		{Op, "[", "[", 3, 27},
		{Ident, "x", "X", 3, 28},
		{Op, "]", "]", 3, 29},
		{Op, "%", "%", 3, 31},
		{EOF, "", "", 3, 32},
	}
	if !reflect.DeepEqual(toks, want) {
		for i := range toks {
			if i >= len(want) || toks[i] != want[i] {
				t.Errorf("token %d: got %+v", i, toks[i])
				if i < len(want) {
					t.Errorf("         want %+v", want[i])
				}
			}
		}
		if len(toks) != len(want) {
			t.Errorf("%d tokens, want %d", len(toks), len(want))
		}
	}
}

// Statements beyond the demo files: every construct round-trips.
func TestStatementRoundTrip(t *testing.T) {
	cases := []struct{ in, want string }{
		{"drop stream if exists s delete topic", "DROP STREAM IF EXISTS S DELETE TOPIC"},
		{"DROP TABLE t", "DROP TABLE T"},
		{"create stream s (a int) with (kafka_topic='s', retention_ms=-1, retention_bytes = - 2.5)",
			"CREATE STREAM S (A INT) WITH (KAFKA_TOPIC = 's', RETENTION_MS = -1, RETENTION_BYTES = -2.5)"},
		{"insert into s select * from t where a > 1 emit changes",
			"INSERT INTO S SELECT * FROM T WHERE A > 1 EMIT CHANGES"},
		{"create or replace stream if not exists s (id int key, m map<string, array<bigint>>, p struct<x double, `y z` decimal(4,2)>, b bytes, ts timestamp, d date, t time, n integer, ok boolean, st string) with (kafka_topic='s', partitions=3, wrap_single_value=false)",
			"CREATE OR REPLACE STREAM IF NOT EXISTS S (ID INT KEY, M MAP<STRING, ARRAY<BIGINT>>, P STRUCT<X DOUBLE, `y z` DECIMAL(4, 2)>, B BYTES, TS TIMESTAMP, D DATE, T TIME, N INTEGER, OK BOOLEAN, ST STRING) WITH (KAFKA_TOPIC = 's', PARTITIONS = 3, WRAP_SINGLE_VALUE = FALSE)"},
		{"create table t as select a.*, b.x from a inner join b on a.id = b.id join c as cc on cc.id = a.id full outer join d on d.id = a.id right join e on e.id = a.id emit final",
			"CREATE TABLE T AS SELECT A.*, B.X FROM A INNER JOIN B ON A.ID = B.ID INNER JOIN C CC ON CC.ID = A.ID FULL JOIN D ON D.ID = A.ID RIGHT JOIN E ON E.ID = A.ID EMIT FINAL"},
		{"create stream j as select * from a left outer join b within 1 hour on a.k = b.k left join c within (1 minute, 2 minutes) on a.k = c.k",
			"CREATE STREAM J AS SELECT * FROM A LEFT JOIN B WITHIN 1 HOUR ON A.K = B.K LEFT JOIN C WITHIN (1 MINUTE, 2 MINUTES) ON A.K = C.K"},
		{"create table w as select k, count(*) c from s window tumbling (size 1 minute, retention 2 days, grace period 10 seconds) group by k having count(*) > 1 emit final",
			"CREATE TABLE W AS SELECT K, COUNT(*) AS C FROM S WINDOW TUMBLING (SIZE 1 MINUTE, RETENTION 2 DAYS, GRACE PERIOD 10 SECONDS) GROUP BY K HAVING COUNT(*) > 1 EMIT FINAL"},
		{"create table h as select k, sum(v) from s window hopping (size 1 hour, advance by 10 minutes, grace period 5 milliseconds) group by k",
			"CREATE TABLE H AS SELECT K, SUM(V) FROM S WINDOW HOPPING (SIZE 1 HOUR, ADVANCE BY 10 MINUTES, GRACE PERIOD 5 MILLISECONDS) GROUP BY K"},
		{"create table x as select k from s window session (5 minutes, grace period 1 minute) group by k",
			"CREATE TABLE X AS SELECT K FROM S WINDOW SESSION (5 MINUTES, GRACE PERIOD 1 MINUTE) GROUP BY K"},
		{"select * from t where k = 1 limit 10", "SELECT * FROM T WHERE K = 1 LIMIT 10"},
		{"create stream p as select a, b from s partition by a, b", "CREATE STREAM P AS SELECT A, B FROM S PARTITION BY A, B"},
		{"create source connector if not exists c with ('a'='b')", "CREATE SOURCE CONNECTOR IF NOT EXISTS C WITH ('a' = 'b')"},
		{"set 'a.b' = 'it''s'", "SET 'a.b' = 'it''s'"},
		{"create stream `lower` as select `from` as `to` from `t t`", "CREATE STREAM `lower` AS SELECT `from` AS `to` FROM `t t`"},
		{"select `FROM` as `Select` from `T`", "SELECT `FROM` AS `Select` FROM T"},
	}
	for _, c := range cases {
		s, err := ParseStatement(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got := s.String(); got != c.want {
			t.Errorf("%q:\n got %s\nwant %s", c.in, got, c.want)
			continue
		}
		again, err := ParseStatement(c.want)
		if err != nil {
			t.Errorf("reparse %q: %v", c.want, err)
			continue
		}
		a, b := []Statement{s}, []Statement{again}
		clearPos(a)
		clearPos(b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%q: reparse gives a different tree", c.in)
		}
	}
}

package ksql

import (
	"errors"
	"testing"
)

func TestSyntaxErrors(t *testing.T) {
	cases := []struct {
		src         string
		line, col   int
		msg         string // full Error() text
		unsupported bool
	}{
		{"CREATE STREAM s (a INT;", 1, 23, "bad.sql:1:23: expected ')' after column list, found ';'", false},
		{"CREATE STREAM s (a INT) WITH (kafka_topic='t')", 1, 47, "bad.sql:1:47: expected ';' after statement, found end of input", false},
		{"SELECT a b c FROM t;", 1, 12, "bad.sql:1:12: expected ',' or FROM after select item, found 'c'", false},
		{"SELECT * FROM t WHERE a = ;", 1, 27, "bad.sql:1:27: expected expression, found ';'", false},
		{"SELECT * FROM t\n  WHERE (a = 1;", 2, 15, "bad.sql:2:15: expected ')' to close '(', found ';'", false},
		{"CREATE TABLE t (id INT KEY) WITH (kafka_topic='t');", 1, 24, "bad.sql:1:24: KEY is for streams (hint: a table column is declared PRIMARY KEY)", false},
		{"CREATE STREAM s (id INT PRIMARY KEY) WITH (kafka_topic='t');", 1, 25, "bad.sql:1:25: PRIMARY KEY is for tables (hint: a stream column is declared KEY)", false},
		{"CREATE STREAM s (a FLOAT);", 1, 20, "bad.sql:1:20: expected type (INT, BIGINT, DOUBLE, DECIMAL, BOOLEAN, VARCHAR, STRING, BYTES, TIMESTAMP, DATE, TIME, ARRAY, MAP or STRUCT), found 'FLOAT'", false},
		{"CREATE TABLE t AS SELECT k, COUNT(*) FROM s\nWINDOW TUMBLING (SIZE 60 SECCONDS) GROUP BY k;", 2, 26, "bad.sql:2:26: expected time unit (MILLISECONDS, SECONDS, MINUTES, HOURS or DAYS) after 60, found 'SECCONDS'", false},
		{"CREATE TABLE t AS SELECT k FROM s WINDOW HOPPING (SIZE 1 MINUTE) GROUP BY k;", 1, 64, "bad.sql:1:64: expected ',' ADVANCE BY in HOPPING window, found ')'", false},
		{"CREATE TABLE t AS SELECT k FROM s WINDOW SLIDING (SIZE 1 MINUTE);", 1, 42, "bad.sql:1:42: expected TUMBLING, HOPPING or SESSION after WINDOW, found 'SLIDING'", false},
		{"CREATE TABLE t AS SELECT k FROM s WINDOW TUMBLING (SIZE 1 MINUTE, GRACE 1 MINUTE);", 1, 73, "bad.sql:1:73: expected PERIOD after GRACE, found '1'", false},
		{"CREATE STREAM s AS SELECT * FROM a LEFT JOIN b a.k = b.k;", 1, 49, "bad.sql:1:49: expected ON after JOIN B, found '.'", false},
		{"CREATE STREAM s AS SELECT * FROM a LEFT b ON a.k = b.k;", 1, 41, "bad.sql:1:41: expected JOIN after LEFT, found 'b'", false},
		{"SET auto.offset.reset = 'earliest';", 1, 5, "bad.sql:1:5: expected quoted property name after SET, found 'auto'", false},
		{"CREATE SINK CONNECTOR c WITH (connector.class = 'x');", 1, 31, "bad.sql:1:31: expected quoted property name, found 'connector'", false},
		{"CREATE STREAM s (a INT) WITH (kafka_topic = t);", 1, 45, "bad.sql:1:45: expected value for property KAFKA_TOPIC, found 't'", false},
		{"SELECT 'abc FROM t;", 1, 8, "bad.sql:1:8: unterminated string literal", false},
		{"SELECT a FROM t /* never closed", 1, 17, "bad.sql:1:17: unterminated block comment", false},
		{"SELECT a # b FROM t;", 1, 10, "bad.sql:1:10: unexpected character '#'", false},
		{"SELECT 12abc FROM t;", 1, 10, "bad.sql:1:10: malformed number 12a", false},
		{"UPDATE t SET a = 1;", 1, 1, "bad.sql:1:1: expected statement (CREATE, DROP, INSERT, SELECT or SET), found 'UPDATE'", false},
		{"CREATE VIEW v AS SELECT * FROM t;", 1, 8, "bad.sql:1:8: expected STREAM, TABLE, SINK CONNECTOR or SOURCE CONNECTOR after CREATE, found 'VIEW'", false},
		{"SELECT * FROM t EMIT NOW;", 1, 22, "bad.sql:1:22: expected CHANGES or FINAL after EMIT, found 'NOW'", false},
		{"SELECT CAST(a STRING) FROM t;", 1, 15, "bad.sql:1:15: expected AS in CAST(expr AS type), found 'STRING'", false},
		{"SELECT CASE a END FROM t;", 1, 15, "bad.sql:1:15: expected WHEN in CASE, found 'END'", false},
		{"SELECT CASE WHEN a THEN 1 FROM t;", 1, 27, "bad.sql:1:27: expected END to close CASE, found 'FROM'", false},
		{"SELECT a FROM t WHERE a IS 1;", 1, 28, "bad.sql:1:28: expected NULL after IS, found '1'", false},
		{"SELECT a FROM t WHERE a IN 1, 2;", 1, 28, "bad.sql:1:28: expected '(' after IN, found '1'", false},
		{"SELECT a FROM t WHERE a BETWEEN 1 OR 2;", 1, 35, "bad.sql:1:35: expected AND in BETWEEN, found 'OR'", false},
		{"SELECT a FROM select;", 1, 15, "bad.sql:1:15: expected stream or table name, found 'select'", false},
		{"CREATE STREAM s (m MAP<STRING INT>);", 1, 31, "bad.sql:1:31: expected ',' after MAP key type, found 'INT'", false},
		{"CREATE STREAM s (d DECIMAL(10));", 1, 30, "bad.sql:1:30: expected ',' between DECIMAL precision and scale, found ')'", false},
		{"CREATE TABLE t WITH (kafka_topic='x') SELECT * FROM s;", 1, 39, "bad.sql:1:39: expected AS SELECT after WITH (...), found 'SELECT'", false},
		{"DROP STREAM IF s;", 1, 16, "bad.sql:1:16: expected EXISTS after IF, found 's'", false},
		{"-- first statement is fine\nSET 'a' = 'b';\n\nCREATE STREAM s AS\n  SELECT a,\n  FROM t;", 6, 3, "bad.sql:6:3: expected expression, found 'FROM'", false},
		{"SELECT a->1 FROM t;", 1, 11, "bad.sql:1:11: expected field name after '->', found '1'", false},
		{"SELECT a[1 FROM t;", 1, 12, "bad.sql:1:12: expected ']' after subscript, found 'FROM'", false},
		// recognisable but not supported
		{"CREATE TYPE address AS STRUCT<street STRING>;", 1, 8, "bad.sql:1:8: CREATE TYPE is not supported (hint: spell the STRUCT type out in the column list)", true},
		{"INSERT INTO s (a, b) VALUES (1, 2);", 1, 15, "bad.sql:1:15: INSERT ... VALUES is not supported (hint: publish the record to the source subject, or use INSERT INTO ... SELECT)", true},
		{"INSERT INTO s VALUES (1, 2);", 1, 15, "bad.sql:1:15: INSERT ... VALUES is not supported (hint: publish the record to the source subject, or use INSERT INTO ... SELECT)", true},
		{"\n  PRINT 'clickstream' FROM BEGINNING;", 2, 3, "bad.sql:2:3: PRINT is not supported (hint: PRINT is an interactive command; read the subject with the NATS CLI)", true},
		{"SHOW STREAMS;", 1, 1, "bad.sql:1:1: SHOW is not supported (hint: it is an interactive command, not part of a pipeline)", true},
		{"TERMINATE ALL;", 1, 1, "bad.sql:1:1: TERMINATE is not supported (hint: queries are started and stopped by deploying the plan)", true},
		{"SELECT a FROM (SELECT a FROM t);", 1, 15, "bad.sql:1:15: a sub-query in FROM is not supported (hint: create the inner query as its own stream or table)", true},
		{"SELECT ARRAY[1, 2] FROM t;", 1, 8, "bad.sql:1:8: ARRAY constructor is not supported (hint: build the value in a function)", true},
		{"DROP CONNECTOR c;", 1, 6, "bad.sql:1:6: DROP CONNECTOR is not supported (hint: remove the CREATE statement from the pipeline)", true},
		{"SELECT COUNT(DISTINCT a) FROM t;", 1, 14, "bad.sql:1:14: DISTINCT in a function call is not supported (hint: use COUNT_DISTINCT)", true},
	}
	for _, c := range cases {
		_, err := Parse("bad.sql", c.src)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%q: got %v, want a *SyntaxError", c.src, err)
			continue
		}
		if se.Line != c.line || se.Col != c.col {
			t.Errorf("%q: at %d:%d, want %d:%d", c.src, se.Line, se.Col, c.line, c.col)
		}
		if se.Error() != c.msg {
			t.Errorf("%q:\n got %s\nwant %s", c.src, se.Error(), c.msg)
		}
		if se.Unsupported != c.unsupported || se.File != "bad.sql" {
			t.Errorf("%q: Unsupported=%v File=%q", c.src, se.Unsupported, se.File)
		}
	}
}

func TestSyntaxErrorFields(t *testing.T) {
	_, err := Parse("p.sql", "CREATE STREAM s (a INT;")
	se, ok := err.(*SyntaxError)
	if !ok {
		t.Fatalf("got %T", err)
	}
	if se.Token != "';'" || se.Expected != "')' after column list" {
		t.Errorf("Token %q Expected %q", se.Token, se.Expected)
	}
	if _, err := ParseExpr("a +"); err == nil || err.Error() != "1:4: expected expression, found end of input" {
		t.Errorf("ParseExpr: %v", err)
	}
	if _, err := ParseStatement("SELECT * FROM t; SELECT"); err == nil || err.Error() != "1:18: expected end of statement, found 'SELECT'" {
		t.Errorf("ParseStatement: %v", err)
	}
}

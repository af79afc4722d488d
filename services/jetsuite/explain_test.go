package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const ordersSQL = `CREATE STREAM ORDERS (ID BIGINT, CUSTOMER VARCHAR, TOTAL DOUBLE) WITH (KAFKA_TOPIC='orders');
CREATE TABLE SPEND AS SELECT CUSTOMER, SUM(TOTAL) AS SPENT FROM ORDERS GROUP BY CUSTOMER;
`

// `explain FILE` prints the plan of a file of one's own; `show --queries-file` lists its names.
func TestExplainAndShowAFile(t *testing.T) {
	f := writeFile(t, "orders.sql", ordersSQL)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"explain", f}, &out, &out); err != nil {
		t.Fatalf("explain: %v\n%s", err, out.String())
	}
	for _, want := range []string{"windower  AGGREGATE SPEND", "group by CUSTOMER", "aggregate SUM(TOTAL)", "read  stream ORDERS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("explain lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"show", "--queries-file", f}, &out, &out); err != nil {
		t.Fatalf("show: %v", err)
	}
	if !strings.Contains(out.String(), "SPEND") || !strings.Contains(out.String(), "ORDERS") || strings.Contains(out.String(), "EVENTS_PER_MIN") {
		t.Errorf("show --queries-file lists:\n%s", out.String())
	}
}

// A file with an error runs nothing and creates nothing: the error names file, line, column.
func TestBadQueriesFileRunsNothing(t *testing.T) {
	f := writeFile(t, "bad.sql", ordersSQL+"CREATE STREAM BIG AS SELECT ID, AMOUNT FROM ORDERS;\n")
	dir := t.TempDir()
	err := run(context.Background(), []string{"all", "--queries-file", f, "--data-dir", dir, "--http-listen", "none", "--nats-listen", "none"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), f+":3:33: unknown column AMOUNT in ORDERS; columns are ID, CUSTOMER, TOTAL") {
		t.Fatalf("err = %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("the data directory is not empty: %v", entries)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"explain", f}, &out, &out); err == nil || !strings.Contains(err.Error(), ":3:33:") {
		t.Errorf("explain of a bad file: %v", err)
	}
}

// PARTITIONS in a statement's WITH, else its input's, else --partitions: explain shows each
// aggregation's count; a bad count is an error at its position.
func TestExplainPartitions(t *testing.T) {
	f := writeFile(t, "orders.sql", `CREATE STREAM ORDERS (ID BIGINT, CUSTOMER VARCHAR, TOTAL DOUBLE) WITH (KAFKA_TOPIC='orders', PARTITIONS=3);
CREATE TABLE SPEND AS SELECT CUSTOMER, SUM(TOTAL) AS SPENT FROM ORDERS GROUP BY CUSTOMER;
CREATE TABLE SPEND8 WITH (PARTITIONS=8) AS SELECT CUSTOMER, COUNT(*) AS N FROM ORDERS GROUP BY CUSTOMER;
CREATE STREAM REFUNDS (ID BIGINT, CUSTOMER VARCHAR) WITH (KAFKA_TOPIC='refunds');
CREATE TABLE REFUNDED AS SELECT CUSTOMER, COUNT(*) AS N FROM REFUNDS GROUP BY CUSTOMER;
`)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"explain", "--partitions", "5", f}, &out, &out); err != nil {
		t.Fatalf("explain: %v\n%s", err, out.String())
	}
	text := out.String()
	for table, want := range map[string]string{"SPEND": "partitions 3", "SPEND8": "partitions 8", "REFUNDED": "partitions 5"} {
		i := strings.Index(text, "AGGREGATE "+table+" ")
		if i < 0 {
			t.Fatalf("explain lacks %s:\n%s", table, text)
		}
		block := text[i:]
		if j := strings.Index(block[1:], "AGGREGATE "); j > 0 {
			block = block[:j+1]
		}
		if !strings.Contains(block, want) {
			t.Errorf("%s: explain lacks %q:\n%s", table, want, block)
		}
	}
	bad := writeFile(t, "bad.sql", "CREATE STREAM ORDERS (ID BIGINT) WITH (KAFKA_TOPIC='orders', PARTITIONS=0);\n")
	if err := run(context.Background(), []string{"explain", bad}, &out, &out); err == nil || !strings.Contains(err.Error(), "PARTITIONS must be") {
		t.Errorf("PARTITIONS=0: %v", err)
	}
}

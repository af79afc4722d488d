package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// lines runs a query to the end and returns its output lines.
func lines(t *testing.T, env *natstest.Env, sql string, limit int64) []string {
	t.Helper()
	q, err := compileQuery(plan.Demo(), sql, limit)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []string
	err = q.run(ctx, env.JS, func(b []byte) error { out = append(out, string(b)); return nil })
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// The ratings demo's pull query: rows of a windowed table by key and a WINDOWSTART range given
// as ksqlDB's timestamp string.
func TestPullQueryWindowedTable(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	kv, err := env.JS.KeyValue(ctx, topology.TableRatingsPerCustomerPer15Minute)
	if err != nil {
		t.Fatal(err)
	}
	// 2020-07-06T15:15Z, 15:30Z and 15:45Z windows of Rica Blaisdell, one of someone else
	for _, r := range []struct {
		key  string
		body string
	}{
		{"Rica=20Blaisdell.1594048500000", `{"FULL_NAME":"Rica Blaisdell","RATINGS_COUNT":2,"RATINGS":[1,4],"WINDOW_START":1594048500000,"WINDOW_END":1594049400000}`},
		{"Rica=20Blaisdell.1594049400000", `{"FULL_NAME":"Rica Blaisdell","RATINGS_COUNT":1,"RATINGS":[5],"WINDOW_START":1594049400000,"WINDOW_END":1594050300000}`},
		{"Rica=20Blaisdell.1594050300000", `{"FULL_NAME":"Rica Blaisdell","RATINGS_COUNT":3,"RATINGS":[2,2,3],"WINDOW_START":1594050300000,"WINDOW_END":1594051200000}`},
		{"Ruthie=20Brockherst.1594050300000", `{"FULL_NAME":"Ruthie Brockherst","RATINGS_COUNT":1,"RATINGS":[1],"WINDOW_START":1594050300000,"WINDOW_END":1594051200000}`},
	} {
		if _, err := kv.Put(ctx, r.key, []byte(r.body)); err != nil {
			t.Fatal(err)
		}
	}
	got := lines(t, env, `SELECT TIMESTAMPTOSTRING(WINDOWSTART, 'yyyy-MM-dd HH:mm:ss') AS WINDOW_START_TS,
       FULL_NAME, RATINGS_COUNT, RATINGS
FROM   RATINGS_PER_CUSTOMER_PER_15MINUTE
WHERE  FULL_NAME='Rica Blaisdell'
  AND  WINDOWSTART > '2020-07-06T15:30:00.000';`, 0)
	want := []string{
		`{"columns":["WINDOW_START_TS","FULL_NAME","RATINGS_COUNT","RATINGS"]}`,
		`{"WINDOW_START_TS":"2020-07-06 15:45:00","FULL_NAME":"Rica Blaisdell","RATINGS_COUNT":3,"RATINGS":[2,2,3]}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// LIMIT in the statement and --limit both stop early
	if got := lines(t, env, "SELECT FULL_NAME FROM RATINGS_PER_CUSTOMER_PER_15MINUTE LIMIT 2;", 0); len(got) != 3 {
		t.Errorf("LIMIT 2: %v", got)
	}
	if got := lines(t, env, "SELECT FULL_NAME FROM RATINGS_PER_CUSTOMER_PER_15MINUTE;", 1); len(got) != 2 {
		t.Errorf("--limit 1: %v", got)
	}
}

// A pull query on a table whose rows lack the key column (CUSTOMERS as the CDC reader writes
// them) fills it from the KV key.
func TestPullQueryKeyFromKVKey(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	kv, _ := env.JS.KeyValue(ctx, topology.TableCustomers)
	for k, v := range map[string]string{"1": `{"id":1,"first_name":"Rica","club_status":"platinum"}`, "2": `{"id":2,"first_name":"Ruthie","club_status":"gold"}`} {
		if _, err := kv.Put(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	got := lines(t, env, "SELECT CUSTOMER_ID, FIRST_NAME FROM CUSTOMERS WHERE CLUB_STATUS = 'platinum';", 0)
	if len(got) != 2 || got[1] != `{"CUSTOMER_ID":"1","FIRST_NAME":"Rica"}` {
		t.Errorf("got %v", got)
	}
}

// A push query streams what arrives after it starts, until the client goes away or LIMIT; over
// HTTP the lines arrive as they happen.
func TestPushQueryOverHTTP(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	// one message before the query starts: a push query does not show it
	publish := func(body string) {
		m := nats.NewMsg("RATINGS_WITH_CUSTOMER_DATA")
		m.Header.Set(events.HeaderEventTime, "1594049400000")
		m.Data = []byte(body)
		if _, err := env.JS.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	publish(`{"RATING_ID":1,"STARS":1,"FULL_NAME":"Before","CLUB_STATUS":"platinum"}`)
	srv := httptest.NewServer(queryHandler(plan.Demo(), env.JS))
	defer srv.Close()
	body, _ := json.Marshal(map[string]any{"sql": "SELECT RATING_ID, FULL_NAME, ROWTIME AS T FROM RATINGS_WITH_CUSTOMER_DATA WHERE STARS < 3 EMIT CHANGES LIMIT 2;"})
	resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || sc.Text() != `{"columns":["RATING_ID","FULL_NAME","T"]}` {
		t.Fatalf("first line %q", sc.Text())
	}
	// After the header the consumer exists: what is published now is seen. (Published here,
	// before reading on: the answer streams, so the rows wait in the connection meanwhile.)
	publish(`{"RATING_ID":2,"STARS":5,"FULL_NAME":"Happy"}`)
	publish(`{"RATING_ID":3,"STARS":2,"FULL_NAME":"Rica Blaisdell"}`)
	publish(`{"RATING_ID":4,"STARS":1,"FULL_NAME":"Ruthie Brockherst"}`)
	publish(`{"RATING_ID":5,"STARS":1,"FULL_NAME":"After the limit"}`)
	var rows []string
	for sc.Scan() {
		rows = append(rows, sc.Text())
	}
	want := []string{`{"RATING_ID":3,"FULL_NAME":"Rica Blaisdell","T":1594049400000}`, `{"RATING_ID":4,"FULL_NAME":"Ruthie Brockherst","T":1594049400000}`}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows\n%s\nwant\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}

	// a query that does not compile is a 400 that says why
	resp2, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"sql":"SELECT NOPE FROM RATINGS_WITH_CUSTOMER_DATA;"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	var e map[string]string
	_ = json.NewDecoder(resp2.Body).Decode(&e)
	if resp2.StatusCode != http.StatusBadRequest || !strings.Contains(e["error"], "unknown column NOPE in RATINGS_WITH_CUSTOMER_DATA") {
		t.Errorf("status %d error %q", resp2.StatusCode, e["error"])
	}
}

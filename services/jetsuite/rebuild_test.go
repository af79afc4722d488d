package main

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jetsuite/jetsuite/services/windower"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/topology"
)

const rebuildSQL = `
CREATE STREAM clicks (userid INT, status INT, bytes BIGINT) WITH (kafka_topic='clicks');
CREATE TABLE CLICKS_PER_USER AS SELECT userid, COUNT(*) AS n FROM clicks GROUP BY userid;
CREATE TABLE BYTES_PER_USER AS SELECT userid, SUM(bytes) AS b FROM clicks GROUP BY userid;
`

// --rebuild of a table: a changed aggregation is computed again from the start of its source
// in a task of its own, while the other table of the same source goes on where it was
// (nothing counted twice), also across a later restart.
func TestRebuildTable(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	p1 := compileOrFail(t, rebuildSQL)
	if err := p1.Catalog().Ensure(ctx, env.JS, topology.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := checkDefinitions(ctx, env.JS, p1, nil, topology.Options{}); err != nil {
		t.Fatal(err)
	}
	type click struct{ user, status, bytes int }
	var clicks []click
	publish := func(n int) {
		for i := 0; i < n; i++ {
			c := click{user: 1 + len(clicks)%4, status: []int{200, 404, 302}[len(clicks)%3], bytes: 100 + len(clicks)}
			clicks = append(clicks, c)
			publishJSON(t, env.JS, "clicks", "c"+strconv.Itoa(len(clicks)), goldenT0+int64(len(clicks)), fmt.Sprintf(`{"userid":%d,"status":%d,"bytes":%d}`, c.user, c.status, c.bytes))
		}
		waitPublished(t, env.JS)
	}
	run := func(p *plan.Plan, durables ...string) {
		nc, js := env.Connect(t)
		w, err := windower.New(windower.Config{Grace: time.Hour, FlushInterval: 10 * time.Millisecond}, runner.Deps{NC: nc, JS: js, Plan: p, Health: obs.NewHealth()})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- w.Run(rctx) }()
		for _, d := range durables {
			waitAckFloor(t, env.JS, "CLICKS", d, uint64(len(clicks)))
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	publish(90)
	run(p1, "windower-CLICKS")

	p2 := compileOrFail(t, strings.Replace(rebuildSQL, "SUM(bytes) AS b FROM clicks GROUP BY", "SUM(bytes) AS b FROM clicks WHERE status < 400 GROUP BY", 1))
	if _, err := checkDefinitions(ctx, env.JS, p2, nil, topology.Options{}); !errors.Is(err, ErrDefinitionChanged) {
		t.Fatalf("changed table without --rebuild: %v", err)
	}
	rebuilt, err := checkDefinitions(ctx, env.JS, p2, []string{"bytes_per_user"}, topology.Options{})
	if err != nil || len(rebuilt) != 1 || rebuilt[0] != "BYTES_PER_USER" {
		t.Fatalf("rebuild: %v %v", rebuilt, err)
	}
	if n := len(bucketRows(t, env.JS, "BYTES_PER_USER")); n != 0 {
		t.Errorf("BYTES_PER_USER still holds %d rows after --rebuild", n)
	}
	publish(30)
	run(p2, "windower-CLICKS", "windower-CLICKS-BYTES_PER_USER")
	publish(20) // and on: both tasks resume where they are
	run(p2, "windower-CLICKS", "windower-CLICKS-BYTES_PER_USER")

	wantN, wantB := map[string]string{}, map[string]string{}
	n, b := map[int]int{}, map[int]int{}
	for _, c := range clicks {
		n[c.user]++
		if c.status < 400 {
			b[c.user] += c.bytes
		}
	}
	for u, v := range n {
		wantN[strconv.Itoa(u)] = fmt.Sprintf(`{"USERID":%d,"N":%d}`, u, v)
	}
	for u, v := range b {
		wantB[strconv.Itoa(u)] = fmt.Sprintf(`{"USERID":%d,"B":%d}`, u, v)
	}
	if got := bucketRows(t, env.JS, "CLICKS_PER_USER"); !reflect.DeepEqual(got, wantN) {
		t.Errorf("CLICKS_PER_USER (not rebuilt) = %v, want %v", got, wantN)
	}
	if got := bucketRows(t, env.JS, "BYTES_PER_USER"); !reflect.DeepEqual(got, wantB) {
		t.Errorf("BYTES_PER_USER (rebuilt) = %v, want %v", got, wantB)
	}
}

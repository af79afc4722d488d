package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/topology"
)

const fpPipeline = `
CREATE STREAM clicks (userid INT, ip VARCHAR, status INT, bytes BIGINT) WITH (kafka_topic='clicks');
CREATE STREAM OK_CLICKS AS SELECT userid, ip, bytes FROM clicks WHERE status < 400;
CREATE TABLE BYTES_PER_USER AS SELECT userid, SUM(bytes) AS total FROM OK_CLICKS GROUP BY userid;
`

func compileOrFail(t *testing.T, src string) *plan.Plan {
	t.Helper()
	p, err := plan.Compile(plan.File{Name: "fp.sql", SQL: src})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A changed statement is refused at start and names what changed (and, for what reads it, that
// an input changed), unless --rebuild names it; a rebuilt stream is emptied and the processors
// reading its input start that input over.
func TestChangedDefinitionsRefusedUnlessRebuilt(t *testing.T) {
	env := natstest.Start(t)
	ctx := context.Background()
	p1 := compileOrFail(t, fpPipeline)
	if err := p1.Catalog().Ensure(ctx, env.JS, topology.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := checkDefinitions(ctx, env.JS, p1, nil, topology.Options{}); err != nil {
		t.Fatalf("first start: %v", err)
	}
	if _, err := checkDefinitions(ctx, env.JS, p1, nil, topology.Options{}); err != nil {
		t.Fatalf("same definitions again: %v", err)
	}

	p2 := compileOrFail(t, strings.Replace(fpPipeline, "status < 400", "status < 500", 1))
	_, err := checkDefinitions(ctx, env.JS, p2, nil, topology.Options{})
	if !errors.Is(err, ErrDefinitionChanged) {
		t.Fatalf("changed statement: %v", err)
	}
	for _, want := range []string{
		"OK_CLICKS (its statement changed since it was built:",
		"was: CREATE STREAM OK_CLICKS AS SELECT USERID, IP, BYTES FROM CLICKS WHERE STATUS < 400",
		"now: CREATE STREAM OK_CLICKS AS SELECT USERID, IP, BYTES FROM CLICKS WHERE STATUS < 500",
		"BYTES_PER_USER (a stream or table it reads changed since it was built:",
		"--rebuild BYTES_PER_USER,OK_CLICKS",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	// a table declared over a topic is that topic's rows: nothing to rebuild, said plainly
	loaded := compileOrFail(t, fpPipeline+"CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR) WITH (kafka_topic='users');\n")
	if _, err := checkDefinitions(ctx, env.JS, loaded, []string{"USERS"}, topology.Options{}); err == nil ||
		!strings.Contains(err.Error(), "USERS is declared over subject users, its rows are that subject's; there is nothing to rebuild") {
		t.Fatalf("rebuild of a loaded table: %v", err)
	}

	// a stream: emptied, and the checkpoints on its input forgotten
	if _, err := env.JS.Publish(ctx, "OK_CLICKS", []byte(`{"USERID":1}`)); err != nil {
		t.Fatal(err)
	}
	cps, _ := env.JS.KeyValue(ctx, topology.BucketCheckpoints)
	_, _ = cps.Put(ctx, "enricher-CLICKS", []byte(`{"stream":"CLICKS","seq":7}`))
	_, _ = cps.Put(ctx, "windower-OK_CLICKS", []byte(`{"stream":"OK_CLICKS","seq":1}`))
	p3 := compileOrFail(t, strings.Replace(fpPipeline, "status < 400", "status < 300", 1)+"\n-- the table keeps its statement\n")
	p3.Object("BYTES_PER_USER").Fingerprint = p1.Object("BYTES_PER_USER").Fingerprint // pretend only the stream changed
	rebuilt, err := checkDefinitions(ctx, env.JS, p3, []string{"ok_clicks"}, topology.Options{})
	if err != nil || len(rebuilt) != 1 || rebuilt[0] != "OK_CLICKS" {
		t.Fatalf("rebuild: %v %v", rebuilt, err)
	}
	s, _ := env.JS.Stream(ctx, "OK_CLICKS")
	if info, _ := s.Info(ctx); info.State.Msgs != 0 {
		t.Errorf("OK_CLICKS still holds %d messages", info.State.Msgs)
	}
	if _, err := cps.Get(ctx, "enricher-CLICKS"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("checkpoint on CLICKS kept: %v", err)
	}
	if _, err := cps.Get(ctx, "windower-OK_CLICKS"); err != nil {
		t.Errorf("checkpoint on another stream lost: %v", err)
	}
	// and the new definition is the stored one now
	if _, err := checkDefinitions(ctx, env.JS, p3, nil, topology.Options{}); err != nil {
		t.Errorf("after the rebuild: %v", err)
	}
}

package generator

import (
	"flag"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/runner"
)

func TestSpecSettings(t *testing.T) {
	spec := Spec()
	if spec.Name != "generator" || !spec.InAll {
		t.Fatalf("spec %+v", spec)
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	env := map[string]string{"JETSUITE_GENERATOR_RATE": "123", "JETSUITE_GENERATOR_SESSIONIZE": "true", "JETSUITE_GENERATOR_NEWS": "false"}
	reg := config.NewRegistry(fs, func(k string) string { return env[k] })
	build := spec.Bind(reg.Service(spec.Name))
	if err := fs.Parse([]string{"--generator-ratings-rate=7", "--generator-cdc-step=2s", "--generator-seed=9", "--generator-customers=false"}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Resolve(); err != nil {
		t.Fatal(err)
	}
	e := natstest.Start(t)
	nc, js := e.Connect(t)
	svc, err := build(runner.Deps{NC: nc, JS: js, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	c := svc.(*Service).cfg
	if c.ClickRate != 123 || !c.Sessionize || c.News || c.RatingsRate != 7 || c.CDCStep != 2*time.Second ||
		c.Seed != 9 || c.Customers || !c.Clickstream || c.CodesRate != DefaultConfig().CodesRate {
		t.Fatalf("config %+v", c)
	}
	var names []string
	for _, src := range svc.(*Service).sources {
		names = append(names, src.name)
	}
	if len(names) != 5 {
		t.Errorf("quickstarts %v, want all but imply-news and customers", names)
	}
}

// With a pipeline of the user's own, the generator feeds only the demo subjects some statement
// reads, and remembers the others to say so.
func TestFeedsOnlyWhatThePipelineReads(t *testing.T) {
	p, err := plan.Compile(plan.File{Name: "mine.sql", SQL: `
CREATE STREAM clicks (ip VARCHAR, bytes BIGINT) WITH (kafka_topic='clickstream', value_format='json');
CREATE TABLE BYTES_PER_IP AS SELECT ip, SUM(bytes) AS total FROM clicks GROUP BY ip;`})
	if err != nil {
		t.Fatal(err)
	}
	e := natstest.Start(t)
	nc, js := e.Connect(t)
	svc, err := New(DefaultConfig(), runner.Deps{NC: nc, JS: js, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Plan: p})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, src := range svc.sources {
		names = append(names, src.name)
	}
	if len(names) != 1 || names[0] != QClickstream {
		t.Errorf("feeds %v, want only %s", names, QClickstream)
	}
	if len(svc.unread) != 6 {
		t.Errorf("left alone %v, want the 6 other quickstarts", svc.unread)
	}
}

package jetsuite

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"go.k6.io/k6/js/modulestest"
	"go.k6.io/k6/lib"
	"go.k6.io/k6/metrics"

	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// The module in a k6 JS runtime: the client is built in the init context, talks to NATS only
// in VU context, and publishes report the Go-side metrics into the VU's sample stream.
func TestModuleInVU(t *testing.T) {
	env := natstest.Start(t)
	rt := modulestest.NewRuntime(t)
	mi := new(RootModule).NewModuleInstance(rt.VU)
	if err := rt.VU.Runtime().Set("jetsuite", mi.Exports().Named); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.VU.Runtime().RunString(`const client = new jetsuite.Client({url: "` + env.Server.ClientURL() + `", seed: 3, timeout: "5s"})`); err != nil {
		t.Fatal(err)
	}
	// The init context: no NATS yet.
	if _, err := rt.VU.Runtime().RunString(`client.publishClicks(1)`); err == nil {
		t.Fatal("publish in the init context: no error")
	}

	registry := metrics.NewRegistry()
	samples := make(chan metrics.SampleContainer, 100)
	rt.MoveToVUContext(&lib.State{
		Options:    lib.Options{SystemTags: &metrics.DefaultSystemTagSet},
		Samples:    samples,
		Tags:       lib.NewVUStateTags(registry.RootTagSet().With("scenario", "test")),
		VUIDGlobal: 4,
	})
	if _, err := rt.VU.Runtime().RunString(`
		const b = client.publishClicks(25);
		if (b.n !== 25 || b.acked !== 25 || b.failed !== 0 || !(b.ms > 0)) throw new Error(JSON.stringify(b));
		const r = client.publishRatings(5);
		if (r.acked !== 5) throw new Error(JSON.stringify(r));
	`); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.VU.Runtime().RunString(`client.consumerLag("CLICKSTREAM", "probe")`); err == nil {
		t.Fatal("lag of a missing consumer: no exception")
	}
	if _, err := env.JS.CreateConsumer(t.Context(), topology.StreamClickstream, jetstream.ConsumerConfig{Durable: "probe"}); err != nil {
		t.Fatal(err)
	}
	v, err := rt.VU.Runtime().RunString(`
		client.streamMessages("CLICKSTREAM") * 1000 + client.tableRows("EVENTS_PER_MIN") * 10 + client.consumerLag("CLICKSTREAM", "probe");
	`)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.ToInteger(); got != 25*1000+0+25 {
		t.Fatalf("streamMessages*1000 + tableRows*10 + lag = %d, want %d", got, 25*1000+25)
	}
	// The pipeline's lag: probe is the one consumer, and the other streams the plan reads
	// have none, so it is not caught up; its total is reported as the gauge.
	if v, err = rt.VU.Runtime().RunString(`
		const l = client.pipelineLag();
		if (l.caughtUp || l.missing.length === 0 || l.consumers[0].consumer !== "probe") throw new Error(JSON.stringify(l));
		l.total;
	`); err != nil || v.ToInteger() != 25 {
		t.Fatalf("pipelineLag().total = %v (%v), want 25", v, err)
	}
	if _, err := rt.VU.Runtime().RunString(`client.checkPipeline()`); err == nil || !strings.Contains(err.Error(), "the pipeline is not running") {
		t.Fatalf("checkPipeline without the services: %v", err)
	}
	// Results pass between VUs of the process; stats count every VU's events.
	if v, err = rt.VU.Runtime().RunString(`
		client.setResult("k", {rate: 5});
		client.result("k").rate * 1000 + (client.result("none") === null ? 1 : 0);
	`); err != nil || v.ToInteger() != 5001 {
		t.Fatalf("results: %v (%v)", v, err)
	}
	if v, err = rt.VU.Runtime().RunString(`client.stats().published`); err != nil || v.ToInteger() < 30 {
		t.Fatalf("stats().published = %v (%v), want at least this test's 30", v, err)
	}
	// A marker with nothing to write its row: not ok, saying why; no latency sample.
	if v, err = rt.VU.Runtime().RunString(`const m = client.markClick(0.2); m.ok ? "ok" : m.error`); err != nil || !strings.Contains(v.String(), "no EVENTS_PER_MIN row") {
		t.Fatalf("markClick = %v (%v)", v, err)
	}
	if _, err := rt.VU.Runtime().RunString(`client.close()`); err != nil {
		t.Fatal(err)
	}

	// Samples: per batch a latency, a published and a failed count, tagged by subject; the lag gauge.
	got := map[string]float64{}
	close(samples)
	for c := range samples {
		for _, s := range c.GetSamples() {
			tag, _ := s.Tags.Get("subject")
			if tag == "" {
				tag, _ = s.Tags.Get("consumer")
			}
			if sc, _ := s.Tags.Get("scenario"); sc != "test" {
				t.Errorf("sample %s lost the VU's tags: %v", s.Metric.Name, s.Tags.Map())
			}
			got[s.Metric.Name+"/"+tag] += s.Value
		}
	}
	for k, want := range map[string]float64{
		MetricPublished + "/clickstream":     25,
		MetricPublished + "/ratings":         5,
		MetricPublishFailed + "/clickstream": 0,
		MetricPipelineLag + "/":              25,
	} {
		if g, ok := got[k]; !ok || g != want {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, want)
		}
	}
	if _, ok := got[MetricE2E+"/"]; ok {
		t.Errorf("a marker that never arrived made a latency sample: %v", got)
	}
	if got[MetricPublishAck+"/clickstream"] <= 0 {
		t.Errorf("no publish-ack latency for clickstream: %v", got)
	}
}

package main

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/services/enricher"
	"github.com/jetsuite/jetsuite/services/generator"
	"github.com/jetsuite/jetsuite/services/windower"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// pipelineEvents per benchmark iteration.
const pipelineEvents = 200_000

// datagenClicks returns the generator's clicks n..n+count as messages with event times 1 ms
// apart (so windows open and close while the benchmark runs).
func datagenClicks(from, count int) []*nats.Msg {
	out := make([]*nats.Msg, count)
	for i := range out {
		n := from + i
		m := nats.NewMsg(topology.SubjectClickstream)
		m.Header.Set("Event-Time", strconv.FormatInt(goldenT0+int64(n), 10))
		m.Header.Set(jetstream.MsgIDHeader, "bench:"+strconv.Itoa(n))
		m.Data, _ = json.Marshal(generator.Click(42, uint64(n)))
		out[i] = m
	}
	return out
}

func publishMsgs(b *testing.B, js jetstream.JetStream, msgs []*nats.Msg) time.Duration {
	start := time.Now()
	for _, m := range msgs {
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	waitPublished(b, js)
	return time.Since(start)
}

// BenchmarkPipeline: clicks/s through the enrich + seven-window pipeline (enricher: two joins
// and two output streams; windower: the seven clickstream tables), from clicks already in the
// stream until every derived input is aggregated, flushed to KV and acked. In the same run it
// measures the raw JetStream rate on the same server: async publish with Nats-Msg-Id, and a
// durable consumer that only acks. fused: the plan as the binary runs it by default (the
// windower joins on CLICKSTREAM's messages and publishes the joined streams); unfused: the
// enricher joins and the windower reads the joined streams back.
func BenchmarkPipeline(b *testing.B) {
	b.Run("fused", func(b *testing.B) { benchPipeline(b, true) })
	b.Run("unfused", func(b *testing.B) { benchPipeline(b, false) })
}

func benchPipeline(b *testing.B, fuse bool) {
	env := natstest.Start(b)
	ctx := context.Background()
	for n := range 39 {
		u, _ := json.Marshal(generator.User(42, uint64(n)))
		publishJSON(b, env.JS, topology.SubjectClickstreamUsers, "u"+strconv.Itoa(n), goldenT0, string(u))
	}
	for n := range 6 {
		c, _ := json.Marshal(generator.Code(42, uint64(n)))
		publishJSON(b, env.JS, topology.SubjectClickstreamCodes, "c"+strconv.Itoa(n), goldenT0, string(c))
	}
	waitPublished(b, env.JS)
	nc, js := env.Connect(b)
	p := plan.Demo()
	if fuse {
		p.Fuse()
	}
	deps := runner.Deps{NC: nc, JS: js, Health: obs.NewHealth(), Log: obs.NewLogger(nil, "text", "warn"), Plan: p}
	var pubTime, rawTime, pipeTime time.Duration
	for i := 0; i < b.N; i++ {
		msgs := datagenClicks(i*pipelineEvents, pipelineEvents)
		pubTime += publishMsgs(b, env.JS, msgs)
		want := uint64((i + 1) * pipelineEvents)

		// Raw: a durable consumer on the same stream that only acks.
		raw, err := env.JS.CreateOrUpdateConsumer(ctx, topology.StreamClickstream, jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 20000})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		it, _ := raw.Messages(jetstream.PullMaxMessages(2000))
		for range pipelineEvents {
			m, err := it.Next()
			if err != nil {
				b.Fatal(err)
			}
			_ = m.Ack()
		}
		it.Stop()
		rawTime += time.Since(start)

		enr, err := enricher.New(enricher.DefaultConfig(), deps)
		if err != nil {
			b.Fatal(err)
		}
		win, err := windower.New(windower.Config{Grace: time.Hour}, deps)
		if err != nil {
			b.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		start = time.Now()
		go func() { done <- runner.RunAll(rctx, deps.Log, enr, win) }()
		inputs := []string{topology.StreamClickstream, topology.StreamUserClickstream, topology.StreamEnrichedErrorCodes}
		if fuse {
			inputs = inputs[:1] // acked once the joined streams' messages are stored too
		}
		for _, s := range inputs {
			waitAckFloor(b, env.JS, s, "windower-"+s, want)
		}
		pipeTime += time.Since(start)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	events := float64(b.N * pipelineEvents)
	b.ReportMetric(events/pipeTime.Seconds(), "pipeline-events/s")
	b.ReportMetric(events/pubTime.Seconds(), "raw-publish/s")
	b.ReportMetric(events/rawTime.Seconds(), "raw-consume+ack/s")
	b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
}

// peakRSSMiB is the process's peak resident memory (server, services and benchmark together).
func peakRSSMiB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			return float64(kb) / 1024
		}
	}
	return 0
}

// BenchmarkRatingsEnrichment: ratings/s through the enricher's ratings statements (RATINGS_LIVE /
// RATINGS_TEST split and the join with CUSTOMERS into RATINGS_WITH_CUSTOMER_DATA), from ratings
// already in the stream until every one is published downstream and acked. The demo's
// UNHAPPY_PLATINUM_CUSTOMERS statement (the enricher's since issue 9; before, the alerting
// service's, which this benchmark did not run) is left out, so that the figure compares with
// the earlier ones.
func BenchmarkRatingsEnrichment(b *testing.B) {
	env := natstest.Start(b)
	ctx := context.Background()
	kv, err := env.JS.KeyValue(ctx, topology.TableCustomers)
	if err != nil {
		b.Fatal(err)
	}
	for id := 1; id <= 20; id++ {
		row, _ := json.Marshal(map[string]any{"ID": id, "FIRST_NAME": "First" + strconv.Itoa(id), "LAST_NAME": "Last", "EMAIL": "x@example.com", "CLUB_STATUS": "platinum"})
		if _, err := kv.Put(ctx, strconv.Itoa(id), row); err != nil {
			b.Fatal(err)
		}
	}
	nc, js := env.Connect(b)
	p := plan.Demo()
	p.Steps = slices.DeleteFunc(p.Steps, func(st *plan.Step) bool { return st.Name == topology.StreamUnhappyPlatinumCustomers })
	deps := runner.Deps{NC: nc, JS: js, Health: obs.NewHealth(), Log: obs.NewLogger(nil, "text", "warn"), Plan: p}
	var total time.Duration
	for i := 0; i < b.N; i++ {
		msgs := make([]*nats.Msg, pipelineEvents)
		for j := range msgs {
			n := i*pipelineEvents + j
			m := nats.NewMsg(topology.SubjectRatings)
			m.Header.Set("Event-Time", strconv.FormatInt(goldenT0+int64(n), 10))
			m.Header.Set(jetstream.MsgIDHeader, "bench:"+strconv.Itoa(n))
			m.Data, _ = json.Marshal(generator.Rating(42, uint64(n)))
			msgs[j] = m
		}
		publishMsgs(b, env.JS, msgs)
		enr, err := enricher.New(enricher.DefaultConfig(), deps)
		if err != nil {
			b.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- enr.Run(rctx) }()
		waitAckFloor(b, env.JS, topology.StreamRatings, "enricher-ratings", uint64((i+1)*pipelineEvents))
		total += time.Since(start)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*pipelineEvents)/total.Seconds(), "ratings/s")
}

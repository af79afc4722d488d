package alerting

import (
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// BenchmarkSlackLatency publishes unhappy platinum ratings to RATINGS_WITH_CUSTOMER_DATA at
// 1,000/s and measures, per rating, the time from its publish to the chat.postMessage call that
// carries it arriving at a local Slack server (filter -> UNHAPPY_PLATINUM_CUSTOMERS -> notifier
// with intent records -> Slack). Pacing is off (JETSUITE_ALERTING_SLACK_RATE=0), as a local server has no limit:
// this measures the pipeline, not Slack's one message per second. Run with
// go test -bench SlackLatency -benchtime 3000x ./services/alerting/
func BenchmarkSlackLatency(b *testing.B) {
	b.Run("unpaced", func(b *testing.B) { benchLatency(b, 0, 0) })
	b.Run("paced_1000_per_s_burst_20", func(b *testing.B) { benchLatency(b, 1000, 20) })
}

func benchLatency(b *testing.B, benchRate float64, benchBurst int) {
	h := newHarness(b)
	h.cfg.Rate, h.cfg.Burst = benchRate, benchBurst
	h.start()
	// Warm up: consumers created, state loaded, first post done.
	h.publishRating(unhappyRating(1_000_000), time.Now().UnixMilli())
	h.waitAlerts([]int64{1_000_000}, 10*time.Second)

	n := b.N
	perSecond := 1000
	if v, err := strconv.Atoi(os.Getenv("BENCH_RATE")); err == nil && v > 0 {
		perSecond = v
	}
	sent := make([]time.Time, n)
	b.ResetTimer()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	for i := 0; i < n; i++ {
		// 1,000 per second (BENCH_RATE overrides): sleep on the ticker until this one is due.
		for time.Until(start.Add(time.Duration(i)*time.Second/time.Duration(perSecond))) > 0 {
			<-tick.C
		}
		m := nats.NewMsg(topology.StreamRatingsWithCustomerData)
		m.Data = unhappyRating(int64(i)).json()
		now := time.Now()
		m.Header.Set(events.HeaderEventTime, strconv.FormatInt(now.UnixMilli(), 10))
		sent[i] = now
		if _, err := h.js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	want := make([]int64, n)
	for i := range want {
		want[i] = int64(i)
	}
	h.waitAlerts(want, 60*time.Second)
	b.StopTimer()
	elapsed := time.Since(start)

	var lat []time.Duration
	for _, p := range h.slack.snapshot() {
		for _, id := range p.IDs {
			i, err := strconv.Atoi(strings.TrimPrefix(id, "rating."))
			if err != nil || i >= n {
				continue
			}
			lat = append(lat, p.At.Sub(sent[i]))
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
	b.ReportMetric(float64(n)/elapsed.Seconds(), "ratings/s")
	b.ReportMetric(float64(len(h.slack.snapshot())-1), "slack-calls")
}

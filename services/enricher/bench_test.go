package enricher

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/pipe"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// benchEvents is how many clicks one benchmark iteration pushes through.
const benchEvents = 100_000

// fill publishes n datagen-like clicks (asynchronously, as fast as JetStream takes them) and
// the users and codes tables.
func (h *harness) fill(n int) {
	h.t.Helper()
	for i := 1; i <= 40; i++ {
		h.publish(topology.SubjectClickstreamUsers, userJSON(testUser{i, "user" + strconv.Itoa(i%18), "London"}))
	}
	for code, def := range testCodes {
		h.publish(topology.SubjectClickstreamCodes, `{"code":`+strconv.Itoa(code)+`,"definition":"`+def+`"}`)
	}
	statuses := []string{"200", "302", "404", "405", "406", "407"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 0; i < n; i++ {
		m := nats.NewMsg(topology.SubjectClickstream)
		m.Data = []byte(clickJSON(i%41-1, statuses[i%6]))
		m.Header.Set(events.HeaderEventTime, strconv.FormatInt(1700000000000+int64(i), 10))
		if _, err := h.js.PublishMsgAsync(m); err != nil {
			h.t.Fatal(err)
		}
	}
	select {
	case <-h.js.PublishAsyncComplete():
	case <-ctx.Done():
		h.t.Fatal("publishing clicks did not complete")
	}
}

// BenchmarkEnricher measures the enricher end to end through a real embedded JetStream server
// (file storage): clicks in, USER_CLICKSTREAM and ENRICHED_ERROR_CODES out, inputs acked. Beside
// it, the same server's raw rates: async publish of the clicks (without Nats-Msg-Id) and
// consume + ack of them. Per click the enricher consumes and acks one message and publishes two
// (with Nats-Msg-Id, so JetStream also de-duplicates them).
func BenchmarkEnricher(b *testing.B) {
	b.Run("enricher", func(b *testing.B) { benchEnricher(b, DefaultConfig()) })
	b.Run("enricher-inflight-1", func(b *testing.B) {
		cfg := DefaultConfig()
		cfg.InFlight = 1
		benchEnricher(b, cfg)
	})
	b.Run("raw-publish", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			h := newHarness(b)
			b.StartTimer()
			start := time.Now()
			h.fill(benchEvents)
			b.ReportMetric(benchEvents/time.Since(start).Seconds(), "msgs/s")
		}
	})
	b.Run("raw-consume-ack", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			h := newHarness(b)
			h.fill(benchEvents)
			cons, err := pipe.SharedConsumer(context.Background(), h.js, topology.StreamClickstream, "bench")
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start := time.Now()
			n := 0
			ctx, cancel := context.WithCancel(context.Background())
			_ = pipe.Batches(ctx, cons, pipe.BatchOptions{}, func(_ context.Context, batch []jetstream.Msg) error {
				pipe.AckAll(batch, false)
				if n += len(batch); n >= benchEvents {
					cancel()
				}
				return nil
			})
			b.ReportMetric(benchEvents/time.Since(start).Seconds(), "msgs/s")
			cancel()
		}
	})
}

func benchEnricher(b *testing.B, cfg Config) {
	for range b.N {
		b.StopTimer()
		h := newHarness(b)
		h.fill(benchEvents)
		b.StartTimer()
		start := time.Now()
		r := h.start(cfg)
		for h.count(topology.StreamUserClickstream) < benchEvents || h.count(topology.StreamEnrichedErrorCodes) < benchEvents {
			time.Sleep(5 * time.Millisecond)
		}
		b.ReportMetric(benchEvents/time.Since(start).Seconds(), "events/s")
		b.StopTimer()
		r.stop()
	}
}

package windower_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/services/windower"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/topology"
)

const benchEvents = 100_000

// benchClicks builds clicks shaped like the datagen quickstart (status and bytes as strings),
// with event times 1 ms apart.
func benchClicks(from int) []*nats.Msg {
	rng := rand.New(rand.NewPCG(1, uint64(from)))
	statuses := []string{"200", "302", "404", "405", "406", "407"}
	requests := []string{"GET /index.html HTTP/1.1", "GET /site/user_status.html HTTP/1.1", "GET /images/track.png HTTP/1.1"}
	out := make([]*nats.Msg, benchEvents)
	for i := range out {
		n := from + i
		m := nats.NewMsg(topology.SubjectClickstream)
		m.Header.Set("Event-Time", strconv.FormatInt(t0+int64(n), 10))
		m.Header.Set(jetstream.MsgIDHeader, "bench-"+strconv.Itoa(n))
		m.Data = fmt.Appendf(nil, `{"ip":"222.90.225.%d","userid":%d,"remote_user":"-","time":"%d","_time":%d,"request":%q,"status":%q,"bytes":"4096","referrer":"-","agent":"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}`,
			rng.IntN(40), rng.IntN(41)-1, n, n, requests[rng.IntN(3)], statuses[rng.IntN(6)])
		out[i] = m
	}
	return out
}

func publishAll(b *testing.B, js jetstream.JetStream, msgs []*nats.Msg) {
	for _, m := range msgs {
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		b.Fatal("publish timed out")
	}
}

// BenchmarkWindowerClickstream: clicks/s through the four clickstream tables (EVENTS_PER_MIN,
// PAGES_PER_MIN, ERRORS_PER_MIN, ERRORS_PER_MIN_ALERT: about 20 window updates per click),
// from a stream that already holds them to rows and state flushed to KV and inputs acked.
func BenchmarkWindowerClickstream(b *testing.B) {
	env := natstest.Start(b)
	var total time.Duration
	for i := 0; i < b.N; i++ {
		publishAll(b, env.JS, benchClicks(i*benchEvents))
		start := time.Now()
		stop := startWindower(b, env, windower.Config{Grace: time.Hour, Tables: []string{"EVENTS_PER_MIN", "PAGES_PER_MIN", "ERRORS_PER_MIN", "ERRORS_PER_MIN_ALERT"}}, nil)
		waitAcked(b, env.JS, topology.StreamClickstream, "windower-"+topology.StreamClickstream, uint64((i+1)*benchEvents))
		total += time.Since(start)
		_ = stop()
	}
	b.ReportMetric(float64(b.N*benchEvents)/total.Seconds(), "events/s")
}

// BenchmarkRawJetStream measures, on the same kind of server, plain async publishing with
// Nats-Msg-Id and a durable pull consumer that only acks: the ceiling any service here works under.
func BenchmarkRawJetStream(b *testing.B) {
	env := natstest.Start(b)
	ctx := context.Background()
	var pubTime, consTime time.Duration
	for i := 0; i < b.N; i++ {
		msgs := benchClicks(i * benchEvents)
		start := time.Now()
		publishAll(b, env.JS, msgs)
		pubTime += time.Since(start)
		cons, err := env.JS.CreateOrUpdateConsumer(ctx, topology.StreamClickstream, jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 20000})
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		it, err := cons.Messages(jetstream.PullMaxMessages(2000))
		if err != nil {
			b.Fatal(err)
		}
		for range benchEvents {
			m, err := it.Next()
			if err != nil {
				b.Fatal(err)
			}
			_ = m.Ack()
		}
		it.Stop()
		consTime += time.Since(start)
	}
	b.ReportMetric(float64(b.N*benchEvents)/pubTime.Seconds(), "publish/s")
	b.ReportMetric(float64(b.N*benchEvents)/consTime.Seconds(), "consume+ack/s")
}

func waitAcked(b *testing.B, js jetstream.JetStream, stream, durable string, seq uint64) {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		c, err := js.Consumer(context.Background(), stream, durable)
		if err == nil {
			if info, err := c.Info(context.Background()); err == nil && info.AckFloor.Stream >= seq {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatalf("%s/%s did not reach %d", stream, durable, seq)
}

package generator

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/topology"
)

func BenchmarkClick(b *testing.B) {
	n := uint64(0)
	for b.Loop() {
		c := Click(testSeed, n)
		if _, err := json.Marshal(c); err != nil {
			b.Fatal(err)
		}
		n++
	}
}

// BenchmarkGeneratorClicks measures how fast the generator publishes clicks into an embedded
// JetStream server (file storage) when the rate is not the limit: the load-test ceiling.
func BenchmarkGeneratorClicks(b *testing.B) {
	env := natstest.Start(b)
	nc, js := env.Connect(b)
	cfg := DefaultConfig()
	cfg.Seed = testSeed
	cfg.ClickRate = 1e7
	cfg.Codes, cfg.Users, cfg.Pageviews, cfg.News, cfg.Ratings, cfg.Customers = false, false, false, false, false, false
	svc, err := New(cfg, runner.Deps{NC: nc, JS: js, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Health: obs.NewHealth()})
	if err != nil {
		b.Fatal(err)
	}
	stream, err := js.Stream(context.Background(), topology.StreamClickstream)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { done <- svc.Run(ctx) }()
	for {
		info, err := stream.Info(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if info.State.Msgs >= uint64(b.N) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}

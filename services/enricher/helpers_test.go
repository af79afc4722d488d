package enricher

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/runner"
)

type harness struct {
	t   testing.TB
	env *natstest.Env
	js  jetstream.JetStream
}

func newHarness(t testing.TB) *harness {
	env := natstest.Start(t)
	return &harness{t: t, env: env, js: env.JS}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// running is a started enricher.
type running struct {
	svc    *Service
	health *obs.Health
	stop   func()
}

// start runs an enricher on its own connection until stop (or the end of the test).
func (h *harness) start(cfg Config) *running {
	h.t.Helper()
	_, js := h.env.Connect(h.t)
	health := obs.NewHealth()
	svc, err := New(cfg, runner.Deps{JS: js, Log: quietLog(), Health: health})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					h.t.Errorf("enricher: %v", err)
				}
			case <-time.After(20 * time.Second):
				h.t.Error("enricher did not stop")
			}
		})
	}
	h.t.Cleanup(stop)
	return &running{svc: svc, health: health, stop: stop}
}

// publish publishes body on subject with headers (name, value pairs) and returns its sequence.
func (h *harness) publish(subject, body string, headers ...string) uint64 {
	h.t.Helper()
	m := nats.NewMsg(subject)
	m.Data = []byte(body)
	for i := 0; i+1 < len(headers); i += 2 {
		m.Header.Set(headers[i], headers[i+1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := h.js.PublishMsg(ctx, m)
	if err != nil {
		h.t.Fatalf("publish %s: %v", subject, err)
	}
	return ack.Sequence
}

func (h *harness) count(stream string) uint64 {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := h.js.Stream(ctx, stream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.Msgs
}

// waitCount waits until stream holds at least n messages.
func (h *harness) waitCount(stream string, n uint64) {
	h.t.Helper()
	eventually(h.t, 20*time.Second, func() bool { return h.count(stream) >= n },
		func() string {
			return stream + " has " + strconv.FormatUint(h.count(stream), 10) + " messages, want " + strconv.FormatUint(n, 10)
		})
}

// messages returns every message of stream (optionally only those on subject), in order.
func (h *harness) messages(stream, subject string) []*jetstream.RawStreamMsg {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := h.js.Stream(ctx, stream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			h.t.Fatal(err)
		}
		if subject == "" || m.Subject == subject {
			out = append(out, m)
		}
	}
	return out
}

func eventually(t testing.TB, timeout time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func decode[T any](t testing.TB, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return v
}

// counterValue reads a Prometheus counter.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

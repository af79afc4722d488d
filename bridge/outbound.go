package bridge

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/pipe"
)

// outbound copies JetStream streams into Kafka topics.
type outbound struct {
	s  *Service
	cl *kgo.Client
}

func newOutbound(s *Service, brokers []string) (*outbound, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("jetsuite-bridge"),
		kgo.WithLogger(kgoLogger{s.log.With("direction", "to_kafka")}),
		// Idempotent writes are kgo's default (and need acks from all in-sync replicas): a
		// retried produce request does not duplicate records within the producer's session.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// The original demo's topics were created on first write.
		kgo.AllowAutoTopicCreation(),
		kgo.ProducerLinger(5*time.Millisecond),
		// No kgo.RecordDeliveryTimeout: kgo measures it from the record's timestamp, which here
		// is the event time (possibly long past), so it would fail such records at once. The
		// batch's context bounds the wait instead.
	)
	if err != nil {
		return nil, fmt.Errorf("bridge: kafka producer: %w", err)
	}
	return &outbound{s: s, cl: cl}, nil
}

func (o *outbound) run(ctx context.Context, started chan<- struct{}) error {
	defer o.cl.Close()
	g, gctx := errgroup.WithContext(ctx)
	var consumers []jetstream.Consumer
	for _, r := range o.s.to {
		cons, err := pipe.SharedConsumer(ctx, o.s.js, r.from, o.s.cfg.DurablePrefix+r.from)
		if err != nil {
			return fmt.Errorf("bridge: %w", err)
		}
		consumers = append(consumers, cons)
	}
	started <- struct{}{}
	for i, r := range o.s.to {
		key := o.s.keys[r.from]
		g.Go(func() error {
			return pipe.Batches(gctx, consumers[i], pipe.BatchOptions{MaxMessages: o.s.cfg.Batch, Log: o.s.log},
				func(ctx context.Context, batch []jetstream.Msg) error {
					o.forward(ctx, r, key, batch)
					return nil
				})
		})
	}
	return g.Wait()
}

// forward produces a batch and acks each message once Kafka acknowledged its record; a message
// whose record failed is nak'ed for redelivery (at-least-once into Kafka).
func (o *outbound) forward(ctx context.Context, r route, keyField string, batch []jetstream.Msg) {
	if len(batch) == 0 {
		return
	}
	begin := time.Now()
	// Records Kafka has not taken when this ends fail (kgo fails them only where that cannot
	// break the idempotent producer's sequence numbers) and their messages are redelivered.
	pctx, cancel := context.WithTimeout(ctx, o.s.cfg.AckTimeout)
	defer cancel()
	errs := make([]error, len(batch))
	var wg sync.WaitGroup
	wg.Add(len(batch))
	for i, m := range batch {
		o.cl.Produce(pctx, Record(r.to, keyField, m), func(_ *kgo.Record, err error) {
			errs[i] = err
			wg.Done()
		})
	}
	wg.Wait()
	failed := 0
	for i, m := range batch {
		if errs[i] != nil {
			failed++
			_ = m.NakWithDelay(time.Second)
			continue
		}
		_ = m.Ack()
	}
	if failed > 0 {
		o.s.log.Warn("kafka did not take some records; nak'ed for redelivery", "stream", r.from, "topic", r.to,
			"failed", failed, "of", len(batch), "err", firstErr(errs))
	}
	obs.Processed.WithLabelValues("bridge", r.from).Add(float64(len(batch) - failed))
	obs.BatchLatency.WithLabelValues("bridge", r.from).Observe(time.Since(begin).Seconds())
}

func firstErr(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Record builds the Kafka record for a JetStream message: the key from keyField of the JSON body
// (else the Jetsuite-Key header), the timestamp from Event-Time (else the JetStream timestamp),
// a null value for a tombstone, and the message's headers except those the record carries in
// its own fields and the Nats-* ones.
func Record(topic, keyField string, m jetstream.Msg) *kgo.Record {
	h := m.Headers()
	rec := &kgo.Record{Topic: topic, Value: m.Data(), Timestamp: time.UnixMilli(events.EventTimeMillis(m))}
	if rec.Value == nil {
		rec.Value = []byte{}
	}
	if h.Get(events.HeaderTombstone) == "true" {
		rec.Value = nil
	}
	if keyField != "" {
		rec.Key = jsonKey(m.Data(), keyField)
	}
	if rec.Key == nil {
		if k, ok := h[events.HeaderKey]; ok && len(k) > 0 {
			rec.Key = []byte(k[0])
			if h.Get(HeaderKeyEncoding) == "base64" {
				if raw, err := base64.StdEncoding.DecodeString(k[0]); err == nil {
					rec.Key = raw
				}
			}
		}
	}
	for k, vs := range h {
		switch {
		case k == events.HeaderKey, k == HeaderKeyEncoding, k == events.HeaderTombstone, k == events.HeaderEventTime:
			continue
		case len(k) >= 5 && strings.EqualFold(k[:5], "nats-"):
			continue
		}
		for _, v := range vs {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	}
	if src := events.SourceID(m); src != "" {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: HeaderSource, Value: []byte(src)})
	}
	return rec
}

// jsonKey returns the text of a top-level field of a JSON object: a string without quotes,
// anything else (number, boolean, object) as its JSON text; nil when absent, null or not JSON.
func jsonKey(data []byte, field string) []byte {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil
	}
	raw, ok := obj[field]
	if !ok {
		return nil
	}
	raw = bytes.TrimSpace(raw)
	if bytes.Equal(raw, []byte("null")) {
		return nil
	}
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			return []byte(s)
		}
	}
	return raw
}

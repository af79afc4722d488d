package bridge

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/flow"
	"github.com/jetsuite/jetsuite/shared/lease"
)

// outbound copies JetStream streams into Kafka topics: one shared/flow processor per route
// (durable <prefix><STREAM>), whose handler produces each batch and returns once Kafka took it.
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

// retryAfter is how long a route waits after Kafka did not take a batch before the runtime
// delivers the rest of it again (what a nak's delay was before the port).
const retryAfter = time.Second

func (o *outbound) run(ctx context.Context, started chan<- struct{}) error {
	defer o.cl.Close()
	// A route naming a stream that does not exist is a configuration error: say so at start
	// rather than have its processor retry forever.
	for _, r := range o.s.to {
		if _, err := o.s.js.Stream(ctx, r.from); err != nil {
			return fmt.Errorf("bridge: stream %s: %w", r.from, err)
		}
	}
	started <- struct{}{}
	// Each route is a unit of work shared with the other bridges (shared/lease): one instance
	// at a time forwards a stream. (The Kafka-to-NATS direction needs no leases: its Kafka
	// consumer group spreads the topics' partitions over the bridges.)
	var units []lease.Unit
	for _, r := range o.s.to {
		durable := o.s.cfg.DurablePrefix + r.from
		units = append(units, lease.Unit{Name: durable, Run: func(ctx context.Context) error {
			h := &forwarder{o: o, r: r, key: o.s.keys[r.from]}
			return flow.Run(ctx, o.s.js, flow.Options{
				Service: "bridge",
				Stream:  r.from,
				Durable: durable,
				Batch:   o.s.cfg.Batch,
				Log:     o.s.log.With("direction", "to_kafka", "stream", r.from, "topic", r.to),
			}, h)
		}})
	}
	return o.s.deps.Share(ctx, "bridge", units...)
}

// forwarder is one route's flow handler: it produces a batch to Kafka and returns once Kafka
// acknowledged every record; the runtime then checkpoints and acks the batch (cumulatively).
type forwarder struct {
	o   *outbound
	r   route
	key string
}

// Handle implements flow.Handler. Records Kafka did not take within AckTimeout fail (kgo fails
// them only where that cannot break the idempotent producer's sequence numbers); the handler then
// keeps the inputs before the first failed record and returns flow.Retry: the runtime acks those,
// and delivers the rest again, in order, after retryAfter. A record after the first failed one
// that Kafka did take is produced again then (at-least-once, as before; jetsuite-source tells
// the copies apart).
func (f *forwarder) Handle(ctx context.Context, in []jetstream.Msg, _ *flow.Out) error {
	if len(in) == 0 {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, f.o.s.cfg.AckTimeout)
	defer cancel()
	recs := make([]*kgo.Record, len(in))
	index := make(map[*kgo.Record]int, len(in))
	for i, m := range in {
		recs[i] = Record(f.r.to, f.key, m)
		index[recs[i]] = i
	}
	// ProduceSync stops lingering once the batch is buffered; its results come in completion
	// order, hence the index.
	done := len(in)
	var firstErr error
	failed := 0
	for _, res := range f.o.cl.ProduceSync(pctx, recs...) {
		if res.Err == nil {
			continue
		}
		failed++
		if i := index[res.Record]; i < done {
			done, firstErr = i, res.Err
		}
	}
	if failed == 0 {
		return nil
	}
	f.o.s.log.Warn("kafka did not take some records; the rest of the batch is delivered again", "stream", f.r.from,
		"topic", f.r.to, "failed", failed, "of", len(in), "kept", done, "err", firstErr)
	return flow.Retry(done, retryAfter, firstErr)
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

package enricher

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/pipe"
)

// stage is one consume -> transform -> publish loop: a shared durable consumer on one source
// stream, a Publisher for the batch's outputs and dead letters, and the ack discipline
// (outputs durable first, then the inputs are acked).
type stage struct {
	name    string // consumer durable name
	stream  string // source stream
	js      jetstream.JetStream
	log     *slog.Logger
	pub     *pipe.Publisher
	dlq     pipe.DeadLetter
	timeout time.Duration // how long to wait for publish acks before the batch is nak'ed
	batch   int

	processed prometheus.Counter
	latency   prometheus.Observer
	lag       prometheus.Gauge

	// Output messages and their bodies are reused from batch to batch: once Wait has seen every
	// publish acknowledged, nats.go holds no reference to them any more.
	msgs  []*nats.Msg
	nmsg  int
	arena []byte
}

func newStage(cfg Config, js jetstream.JetStream, log *slog.Logger, name, stream string) *stage {
	pub := pipe.NewPublisher(js, ServiceName)
	return &stage{
		name: name, stream: stream, js: js,
		log:       log.With("stage", name),
		pub:       pub,
		dlq:       pipe.DeadLetter{Pub: pub, Service: ServiceName, Log: log},
		timeout:   cfg.PublishTimeout,
		batch:     cfg.BatchSize,
		processed: obs.Processed.WithLabelValues(ServiceName, stream),
		latency:   obs.BatchLatency.WithLabelValues(ServiceName, stream),
		lag:       obs.Lag.WithLabelValues(ServiceName, stream),
	}
}

// consumer creates or binds the stage's shared durable consumer (explicit acks: several
// enricher instances may share it).
func (s *stage) consumer(ctx context.Context) (jetstream.Consumer, error) {
	return pipe.SharedConsumer(ctx, s.js, s.stream, s.name)
}

// consume hands batches of cons to handle until ctx ends.
func (s *stage) consume(ctx context.Context, cons jetstream.Consumer, handle pipe.Handler) error {
	s.log.Info("consuming", "stream", s.stream, "consumer", s.name)
	return pipe.Batches(ctx, cons, pipe.BatchOptions{MaxMessages: s.batch, Log: s.log}, handle)
}

// run consumes the stage's stream with handle until ctx ends.
func (s *stage) run(ctx context.Context, handle pipe.Handler) error {
	cons, err := s.consumer(ctx)
	if err != nil {
		return err
	}
	return s.consume(ctx, cons, handle)
}

// begin starts a batch: output messages and the body arena are reused.
func (s *stage) begin() {
	s.nmsg = 0
	s.arena = s.arena[:0]
}

// out returns a reusable output message on subject. Its headers still hold the previous
// output's values (emit overwrites all of them, which keeps the value slices for reuse); its body
// must stay untouched until finish returns (a slice of s.arena, or the input's own body).
func (s *stage) out(subject string) *nats.Msg {
	if s.nmsg == len(s.msgs) {
		s.msgs = append(s.msgs, &nats.Msg{Header: make(nats.Header, 4)})
	}
	m := s.msgs[s.nmsg]
	s.nmsg++
	m.Subject = subject
	m.Reply = ""
	m.Data = nil
	return m
}

// setHeader sets a single-valued header, reusing the value slice when there is one.
func setHeader(h nats.Header, key, value string) {
	if v := h[key]; cap(v) > 0 {
		h[key] = append(v[:0], value)
		return
	}
	h[key] = []string{value}
}

// deadLetter sends msg to the dead-letter stream through the batch's publisher.
func (s *stage) deadLetter(msg jetstream.Msg, cause error) error {
	return s.dlq.Send(msg, cause)
}

// tooLarge is the error for an input over the size limit.
func tooLarge(n, limit int) error {
	return fmt.Errorf("%w: %d bytes, limit %d", pipe.ErrTooLarge, n, limit)
}

// finish waits until every output of the batch is durable, then acks the batch. When the outputs
// cannot be confirmed in time (NATS away, stream full), the batch is nak'ed with a delay and
// will be redelivered; the outputs' Nats-Msg-Id makes the retry harmless. The loop goes on.
func (s *stage) finish(ctx context.Context, batch []jetstream.Msg, started time.Time, publishErr error) bool {
	err := publishErr
	if err == nil {
		wctx, cancel := context.WithTimeout(ctx, s.timeout)
		err = s.pub.Wait(wctx)
		cancel()
	}
	if err != nil {
		s.pub.Discard()
		// nats.go may still hold the messages of a publish it retries internally: start afresh.
		s.msgs, s.arena = nil, nil
		s.log.Warn("outputs not confirmed; batch will be redelivered", "messages", len(batch), "err", err)
		for _, m := range batch {
			_ = m.NakWithDelay(time.Second)
		}
		return false
	}
	pipe.AckAll(batch, false)
	s.processed.Add(float64(len(batch)))
	s.latency.Observe(time.Since(started).Seconds())
	if md, err := batch[len(batch)-1].Metadata(); err == nil {
		s.lag.Set(float64(md.NumPending))
	}
	return true
}

// intKey is the KV key of an integer primary key.
func intKey(v int32) string { return strconv.FormatInt(int64(v), 10) }

// validKey reports whether key can be a KV key (nats.go's rule: ^[-/_=.a-zA-Z0-9]+$, no leading,
// trailing or double dot).
func validKey(key string) bool {
	if key == "" || key[0] == '.' || key[len(key)-1] == '.' {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '/', c == '_', c == '=':
		case c == '.':
			if key[i-1] == '.' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// source is what the outputs of one input need to know about it: its de-duplication id (the
// part after "<output>:") and its event time header value.
type source struct {
	id        string // "<stream>:<seq>", as events.SourceID
	eventTime string // epoch ms
}

func sourceOf(msg jetstream.Msg) source {
	var src source
	if md, err := msg.Metadata(); err == nil {
		src.id = md.Stream + ":" + strconv.FormatUint(md.Sequence.Stream, 10)
	}
	h := msg.Headers()
	if _, ok := events.HeaderMillis(h); ok {
		src.eventTime = h.Get(events.HeaderEventTime)
	} else {
		src.eventTime = strconv.FormatInt(events.EventTimeMillis(msg), 10)
	}
	return src
}

// emit publishes one output: subject, body, key, and the headers every derived stream carries.
func (s *stage) emit(subject string, body []byte, key string, src source) error {
	m := s.out(subject)
	m.Data = body
	setHeader(m.Header, events.HeaderMsgID, subject+":"+src.id)
	setHeader(m.Header, events.HeaderEventTime, src.eventTime)
	if key != "" {
		setHeader(m.Header, events.HeaderKey, key)
	} else {
		delete(m.Header, events.HeaderKey)
	}
	return s.pub.Publish(m)
}

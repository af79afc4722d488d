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
// stream, and the ack discipline (a batch's outputs durable first, then its inputs are acked).
//
// Waiting for a batch's publish acks is a round trip during which the loop would sit idle, so
// up to `inflight` batches are in flight: while an acker goroutine waits for batch k's outputs
// and then acks batch k, the loop already transforms and publishes batch k+1. Outputs are
// published in input order on one connection, so they land in input order. Each in-flight
// batch owns a slot (publisher, reusable output messages and body arena).
type stage struct {
	name    string // consumer durable name
	stream  string // source stream
	js      jetstream.JetStream
	log     *slog.Logger
	timeout time.Duration // how long to wait for publish acks before the batch is nak'ed
	batch   int

	// one transforms one input, publishing its outputs (or its dead letter) with s.emit.
	one func(jetstream.Msg) error
	// acked, when set, runs after a batch was acked (with its last message); idle, on ticks.
	acked func(ctx context.Context, last jetstream.Msg)
	idle  func(ctx context.Context)

	processed prometheus.Counter
	latency   prometheus.Observer
	lag       prometheus.Gauge

	slots []*slot
	next  int
	cur   *slot
	// arena is the current slot's body arena while a batch is transformed: outputs' bodies are
	// slices of it (they stay valid when it grows: the old array is not reused until the
	// batch is acked).
	arena []byte
	acks  chan *slot
}

// slot is one in-flight batch.
type slot struct {
	pub     *pipe.Publisher
	dlq     pipe.DeadLetter
	msgs    []*nats.Msg // output messages, reused once nats.go no longer holds them
	nmsg    int
	arena   []byte
	batch   []jetstream.Msg // the inputs (a copy: pipe.Batches reuses its slice)
	started time.Time
	err     error
	free    chan struct{} // holds a token while the slot is free
}

func newStage(cfg Config, js jetstream.JetStream, log *slog.Logger, name, stream string) *stage {
	s := &stage{
		name: name, stream: stream, js: js,
		log:       log.With("stage", name),
		timeout:   cfg.PublishTimeout,
		batch:     cfg.BatchSize,
		processed: obs.Processed.WithLabelValues(ServiceName, stream),
		latency:   obs.BatchLatency.WithLabelValues(ServiceName, stream),
		lag:       obs.Lag.WithLabelValues(ServiceName, stream),
	}
	for range max(cfg.InFlight, 1) {
		pub := pipe.NewPublisher(js, ServiceName)
		sl := &slot{pub: pub, dlq: pipe.DeadLetter{Pub: pub, Service: ServiceName, Log: log}, free: make(chan struct{}, 1)}
		sl.free <- struct{}{}
		s.slots = append(s.slots, sl)
	}
	return s
}

// consumer creates or binds the stage's shared durable consumer (explicit acks: several
// enricher instances may share it).
func (s *stage) consumer(ctx context.Context) (jetstream.Consumer, error) {
	return pipe.SharedConsumer(ctx, s.js, s.stream, s.name)
}

// run consumes the stage's stream until ctx ends.
func (s *stage) run(ctx context.Context) error {
	cons, err := s.consumer(ctx)
	if err != nil {
		return err
	}
	return s.consume(ctx, cons)
}

// consume hands batches of cons to s.one until ctx ends, then drains the in-flight batches.
func (s *stage) consume(ctx context.Context, cons jetstream.Consumer) error {
	s.log.Info("consuming", "stream", s.stream, "consumer", s.name, "batch", s.batch, "in_flight", len(s.slots))
	s.acks = make(chan *slot, len(s.slots))
	done := make(chan struct{})
	work := context.WithoutCancel(ctx)
	go func() {
		defer close(done)
		for sl := range s.acks {
			s.complete(work, sl)
		}
	}()
	err := pipe.Batches(ctx, cons, pipe.BatchOptions{MaxMessages: s.batch, Log: s.log}, s.handle)
	close(s.acks)
	<-done
	return err
}

func (s *stage) handle(ctx context.Context, batch []jetstream.Msg) error {
	if len(batch) == 0 {
		if s.idle != nil {
			s.idle(ctx)
		}
		return nil
	}
	sl := s.slots[s.next]
	s.next = (s.next + 1) % len(s.slots)
	<-sl.free // wait until the batch that used this slot is acked
	sl.started = time.Now()
	sl.nmsg, sl.err = 0, nil
	s.cur, s.arena = sl, sl.arena[:0]
	for _, msg := range batch {
		if sl.err = s.one(msg); sl.err != nil {
			break
		}
	}
	sl.arena = s.arena
	sl.batch = append(sl.batch[:0], batch...)
	s.acks <- sl
	return nil
}

// complete waits until every output of a batch is durable, then acks the batch. When the
// outputs cannot be confirmed in time (NATS away, stream full), the batch is nak'ed with a delay
// and will be redelivered; the outputs' Nats-Msg-Id makes the retry harmless. The loop goes on.
func (s *stage) complete(ctx context.Context, sl *slot) {
	defer func() { sl.free <- struct{}{} }()
	batch := sl.batch
	err := sl.err
	if err == nil {
		wctx, cancel := context.WithTimeout(ctx, s.timeout)
		err = sl.pub.Wait(wctx)
		cancel()
	}
	if err != nil {
		sl.pub.Discard()
		// nats.go may still hold the messages of a publish it retries internally: start afresh.
		sl.msgs, sl.arena = nil, nil
		s.log.Warn("outputs not confirmed; batch will be redelivered", "messages", len(batch), "err", err)
		for _, m := range batch {
			_ = m.NakWithDelay(time.Second)
		}
		return
	}
	pipe.AckAll(batch, false)
	s.processed.Add(float64(len(batch)))
	s.latency.Observe(time.Since(sl.started).Seconds())
	last := batch[len(batch)-1]
	if md, err := last.Metadata(); err == nil {
		s.lag.Set(float64(md.NumPending))
	}
	if s.acked != nil {
		s.acked(ctx, last)
	}
	clear(sl.batch) // let the inputs go
}

// out returns a reusable output message on subject. Its headers still hold the previous
// output's values (the caller overwrites or deletes each, keeping the value slices for reuse);
// its body must stay untouched until the batch is acked (a slice of s.arena, or an input's
// own body).
func (s *stage) out(subject string) *nats.Msg {
	sl := s.cur
	if sl.nmsg == len(sl.msgs) {
		sl.msgs = append(sl.msgs, &nats.Msg{Header: make(nats.Header, 4)})
	}
	m := sl.msgs[sl.nmsg]
	sl.nmsg++
	m.Subject = subject
	m.Reply = ""
	m.Data = nil
	return m
}

// publish publishes an output of the current batch.
func (s *stage) publish(m *nats.Msg) error { return s.cur.pub.Publish(m) }

// setHeader sets a single-valued header, reusing the value slice when there is one.
func setHeader(h nats.Header, key, value string) {
	if v := h[key]; cap(v) > 0 {
		h[key] = append(v[:0], value)
		return
	}
	h[key] = []string{value}
}

// deadLetter sends msg to the dead-letter stream with the current batch's outputs.
func (s *stage) deadLetter(msg jetstream.Msg, cause error) error {
	return s.cur.dlq.Send(msg, cause)
}

// tooLarge is the error for an input over the size limit.
func tooLarge(n, limit int) error {
	return fmt.Errorf("%w: %d bytes, limit %d", pipe.ErrTooLarge, n, limit)
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
	return s.publish(m)
}

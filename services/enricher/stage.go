package enricher

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/flow"
	"github.com/jetsuite/jetsuite/shared/pipe"
)

// stage is one of the enricher's processors: a shared/flow handler that transforms each input
// of one source stream into its outputs (derived-stream messages, KV writes or a dead letter).
// The runtime does the I/O: batches, publishing with ids derived from the input, order across
// crashes, checkpoints, acks. Up to Config.InFlight batches await their acks while the next
// one is transformed.
type stage struct {
	name    string // consumer durable name and checkpoint key
	stream  string // source stream
	ordered []string
	js      jetstream.JetStream
	log     *slog.Logger
	cfg     Config

	// one transforms one input, adding its outputs (or its dead letter) to the current batch.
	one func(jetstream.Msg) error
	// started runs before the first batch with the checkpoint, acked after inputs are durable
	// (with the newest one's sequence), idle on ticks without input.
	started func(ctx context.Context, checkpoint uint64)
	acked   func(ctx context.Context, seq uint64)
	idle    func(ctx context.Context)

	cur *flow.Out
	// arena is the current batch's body arena while it is transformed: outputs' bodies are
	// slices of it (flow keeps it untouched until the batch is confirmed).
	arena []byte
}

func newStage(cfg Config, js jetstream.JetStream, log *slog.Logger, name, stream string, ordered ...string) *stage {
	return &stage{name: name, stream: stream, ordered: ordered, js: js, cfg: cfg, log: log.With("stage", name)}
}

// run consumes the stage's stream until ctx ends.
func (s *stage) run(ctx context.Context) error {
	return flow.Run(ctx, s.js, flow.Options{
		Service:        ServiceName,
		Stream:         s.stream,
		Durable:        s.name,
		Ordered:        s.ordered,
		Batch:          s.cfg.BatchSize,
		InFlight:       s.cfg.InFlight,
		PublishTimeout: s.cfg.PublishTimeout,
		Log:            s.log,
	}, s)
}

// Handle implements flow.Handler.
func (s *stage) Handle(ctx context.Context, in []jetstream.Msg, out *flow.Out) error {
	if len(in) == 0 {
		if s.idle != nil {
			s.idle(ctx)
		}
		return nil
	}
	s.cur, s.arena = out, out.Arena()
	defer func() { out.SetArena(s.arena); s.cur = nil }()
	for _, msg := range in {
		if err := s.one(msg); err != nil {
			return err
		}
	}
	return nil
}

// Start implements flow.Starter.
func (s *stage) Start(ctx context.Context, checkpoint uint64) error {
	if s.started != nil {
		s.started(ctx, checkpoint)
	}
	return nil
}

// Committed implements flow.Committer.
func (s *stage) Committed(ctx context.Context, seq uint64) {
	if s.acked != nil {
		s.acked(ctx, seq)
	}
}

// out returns a reusable output message on subject with empty headers.
func (s *stage) out(subject string) *nats.Msg { return s.cur.Msg(subject) }

// publish publishes an output of the current batch.
func (s *stage) publish(m *nats.Msg) error { return s.cur.Publish(m) }

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
	return s.cur.DeadLetter(msg, cause)
}

// tooLarge is the error for an input over the size limit.
func tooLarge(n, limit int) error {
	return fmt.Errorf("%w: %d bytes, limit %d", pipe.ErrTooLarge, n, limit)
}

// source is what a KV write caused by an input needs to know about it: its de-duplication id
// (the part after "<bucket>:") and its event time header value.
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

// emit publishes one derived-stream output of msg: subject, body, key (flow sets the id and
// the event time, chains it after the stream's previous output).
func (s *stage) emit(subject string, body []byte, key string, msg jetstream.Msg) error {
	return s.cur.Emit(subject, body, key, msg)
}

// Package flow is jetsuite's one processing runtime: every service that turns the messages of
// a JetStream stream into outputs (derived-stream messages, KV writes, external calls) plugs a
// Handler into Run, and Run does the I/O: it pulls the input in batches, hands each batch to
// the handler, publishes what the handler produced, waits until JetStream has it, records the
// checkpoint, acks the inputs, dead-letters poison input, counts and logs.
//
// # Guarantees
//
// A Processor is the single owner of its input (one durable consumer, one running instance at
// a time; scale-out by partitions builds on this by giving each partition one owner). For it:
//
//   - Exactly-once effect. Every output carries a Nats-Msg-Id derived from the input that
//     caused it ("<subject>:<stream>:<seq>"), so a republished output is dropped by JetStream's
//     de-duplication. On top of that, a derived stream that this processor alone writes (an
//     Ordered output) is resumed from its own last message: at start Run reads the source
//     position of the stream's newest message and skips every output at or before it, so a
//     restart later than the de-duplication window still writes nothing twice.
//   - Order. Outputs to an Ordered stream land in the order of the inputs that caused them,
//     also across a SIGKILL of the processor, a NATS server restart or a lost publish: each
//     output is published with Nats-Expected-Last-Msg-Id naming the output before it (on a
//     replicated stream Nats-Expected-Last-Sequence naming its sequence: see chain), so the
//     server refuses an output whose predecessor is missing (a publish lost in a reconnect or
//     a leader change) instead of storing it out of order; Run then republishes from the
//     first refused one.
//   - Resume. On start, Run reads the processor's checkpoint (bucket JETSUITE_CHECKPOINTS, key
//     = the durable name, or Options.CheckpointKey; before the first checkpoint, the consumer's
//     ack floor) and recreates its consumer to deliver strictly after it, in stream order.
//     What was in flight when the previous owner died is delivered again at once, first, not
//     after an ack wait, and never behind newer inputs.
//   - No stall. A graceful stop finishes the batches it handed to the handler (their outputs
//     durable, checkpointed and acked) and drops what it fetched but did not start; the next
//     start delivers those again at once, because it recreates the consumer from the
//     checkpoint. Nothing waits out an ack wait.
//   - Inputs are acked (cumulatively) only after everything they caused is durable.
//
// Several instances of a service share its processors through shared/lease: each processor
// (or partition) has one owner at a time, and an owner that loses its lease (its context
// cancelled with cause lease.ErrLost) stops at once, without draining: nothing more is
// published, checkpointed or acked, and the next owner resumes from the checkpoint. Without
// leases, the newest instance to start a processor takes its consumer over and the older one
// stops receiving, unfenced.
package flow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/pipe"
)

// Handler computes the outputs of a batch of inputs. Handle is called with the inputs in
// stream order (len(in) == 0 on an idle tick, so time-driven work can run). It adds outputs to
// out and returns nil; Run then makes them durable and acks the inputs. Handle must not keep
// in or out past the call.
//
// Returning an error: a *RetryError (see Retry) keeps the inputs it did not finish in
// JetStream and redelivers them, in order, after a backoff; ErrStop stops Run cleanly; any
// other error stops Run with that error.
type Handler interface {
	Handle(ctx context.Context, in []jetstream.Msg, out *Out) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, in []jetstream.Msg, out *Out) error

// Handle implements Handler.
func (f HandlerFunc) Handle(ctx context.Context, in []jetstream.Msg, out *Out) error {
	return f(ctx, in, out)
}

// Starter is implemented by handlers that keep state: Start is called before the first batch,
// and again after every resume, with the stream sequence of the last input whose effects are
// durable (0: none). Inputs at or before it may be delivered again only if the handler's own
// state lags the checkpoint; the handler decides what to skip. An error stops Run, unless it
// says NATS could not answer for a moment (natsx.Transient): then Start is called again in the
// next session, after a backoff, so it must be safe to repeat after a failure.
type Starter interface {
	Start(ctx context.Context, checkpoint uint64) error
}

// Committer is implemented by handlers that want to know when inputs are durable: Committed is
// called, in order, with the stream sequence of the newest input acked.
type Committer interface {
	Committed(ctx context.Context, seq uint64)
}

// Flusher is implemented by handlers that hold inputs in memory (see Out.Hold): on a graceful
// stop Flush is called once more, with no inputs, to make that state durable; what it adds to
// out is waited for and the held inputs are committed with it. After a crash nothing is
// flushed: the next start resumes from the last checkpoint and the handler's Start decides
// what its saved state already holds.
type Flusher interface {
	Flush(ctx context.Context, out *Out) error
}

// ErrStop, returned by a handler, stops Run without an error once the outputs added so far
// are durable (a test's crash uses its own error instead).
var ErrStop = errors.New("flow: stop")

// RetryError asks Run to keep the inputs from Done on in JetStream and deliver them again after
// After (a transient failure: Slack or OpenSearch away). The first Done inputs of the batch and
// the outputs added for them are kept.
type RetryError struct {
	Done  int
	After time.Duration
	Err   error
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("retry after %s (%d done): %v", e.After, e.Done, e.Err)
}

func (e *RetryError) Unwrap() error { return e.Err }

// Retry returns a *RetryError: the batch's first done inputs are finished, the rest is to be
// delivered again after the backoff.
func Retry(done int, after time.Duration, err error) error {
	return &RetryError{Done: done, After: after, Err: err}
}

// Options declares a processor: its input, what it writes, and how it batches.
type Options struct {
	// Service names the service (metrics label, dead-letter header, log).
	Service string
	// Stream is the input stream; Filters optionally restrict it to some subjects.
	Stream  string
	Filters []string
	// Durable is the consumer's name (on Stream) and, unless CheckpointKey is set, the
	// checkpoint's key; unique per processor.
	Durable string
	// CheckpointKey is the checkpoint's key when the durable name alone is not unique: a
	// service that uses one durable name on several streams (the indexer's "indexer" on every
	// stream it follows) keys each processor's checkpoint by durable and stream. A KV key may
	// hold dots, a durable name may not, so "<durable>.<stream>" never collides with another
	// processor's durable name. Default: Durable.
	CheckpointKey string
	// Resume, when set, says where to resume instead of the checkpoint: the processor
	// recreates its consumer to deliver strictly after what it returns (and passes it to the
	// handler's Start). A handler that keeps its own progress, per partition of a consumer
	// that changes hands, knows better than one checkpoint key (the windower). Its errors are
	// treated as Start's.
	Resume func(ctx context.Context) (uint64, error)
	// Ordered lists the streams this processor alone writes (its derived streams): their
	// outputs are chained and resumed from their last message (see the package doc).
	Ordered []string
	// Batch is the largest batch (default 1000).
	Batch int
	// InFlight is how many batches may wait for their outputs' acks while the next one is
	// handled (default 1). More than one pipelines a stateless handler; the order of outputs
	// and acks is kept regardless.
	InFlight int
	// Tick is how long the input may be idle before Handle is called with no inputs (default
	// 1s).
	Tick time.Duration
	// Linger is how long a batch may wait for more inputs after its first one arrived (default
	// 2ms). A handler whose every batch costs a round trip to an external system (a _bulk
	// request) trades latency for fuller batches with it.
	Linger time.Duration
	// PublishTimeout bounds the wait for one round of publish acks before the missing ones
	// are published again (default 5s); Outputs carry ids, so a second copy is dropped.
	PublishTimeout time.Duration
	// Drain bounds how long a stop may wait for the batches in flight (default 15s).
	Drain time.Duration
	// Log receives the processor's log lines (default slog.Default()).
	Log *slog.Logger
}

func (o *Options) validate() error {
	switch {
	case o.Service == "":
		return errors.New("flow: Options.Service is required")
	case o.Stream == "":
		return errors.New("flow: Options.Stream is required")
	case o.Durable == "":
		return errors.New("flow: Options.Durable is required")
	case o.Batch < 0, o.InFlight < 0, o.Tick < 0, o.Linger < 0, o.PublishTimeout < 0, o.Drain < 0:
		return fmt.Errorf("flow %s: negative option", o.Durable)
	}
	if o.Batch == 0 {
		o.Batch = 1000
	}
	if o.InFlight == 0 {
		o.InFlight = 1
	}
	if o.Tick == 0 {
		o.Tick = time.Second
	}
	if o.PublishTimeout == 0 {
		o.PublishTimeout = 5 * time.Second
	}
	if o.Drain == 0 {
		o.Drain = 15 * time.Second
	}
	if o.CheckpointKey == "" {
		o.CheckpointKey = o.Durable
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	o.Log = o.Log.With("flow", o.Durable)
	return nil
}

// Run runs h on the processor's input until ctx ends (then it finishes what it started and
// returns nil), h returns ErrStop or a fatal error. Transient trouble (NATS away, outputs not
// confirmed, deliveries lost in transit, a RetryError) is logged and resumed from the
// checkpoint with a backoff.
func Run(ctx context.Context, js jetstream.JetStream, o Options, h Handler) error {
	if err := o.validate(); err != nil {
		return err
	}
	p := &processor{js: js, o: o, h: h,
		processed: obs.Processed.WithLabelValues(o.Service, o.Stream),
		latency:   obs.BatchLatency.WithLabelValues(o.Service, o.Stream),
		lag:       obs.Lag.WithLabelValues(o.Service, o.Stream),
	}
	backoff := time.Duration(0)
	for {
		if backoff > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
		}
		err := p.session(ctx)
		var retry *RetryError
		var stop fatal
		switch {
		case err == nil || errors.Is(err, ErrStop):
			return nil
		case ctx.Err() != nil:
			// Stopped: whatever failed on the way out (a Resume or Start cut short by the
			// context) is no failure of the processor.
			return nil
		case errors.As(err, &stop):
			return stop.err
		case errors.As(err, &retry):
			backoff = retry.After
			o.Log.Warn("handler asked to retry; resuming from the checkpoint", "after", backoff, "err", retry.Err)
		case errors.Is(err, pipe.ErrGap):
			backoff = 0
		default:
			backoff = min(max(2*backoff, 200*time.Millisecond), 5*time.Second)
			o.Log.Warn("resuming from the checkpoint", "after", backoff, "err", err)
		}
	}
}

// fatal wraps an error that must stop Run (a handler's own error, a Start that failed).
type fatal struct{ err error }

func (f fatal) Error() string { return f.err.Error() }
func (f fatal) Unwrap() error { return f.err }

// Seq is an input's stream sequence, read from its reply subject without the allocations of
// Metadata (0 when it has none): "$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>...",
// or with a domain and account hash, "$JS.ACK.<domain>.<hash>.<stream>.<consumer>...".
func Seq(m jetstream.Msg) uint64 {
	r := m.Reply()
	if !strings.HasPrefix(r, "$JS.ACK.") {
		return seqOf(m)
	}
	var tokens [12]string
	n := 0
	for n < len(tokens) {
		i := strings.IndexByte(r, '.')
		if i < 0 {
			tokens[n] = r
			n++
			break
		}
		tokens[n], r = r[:i], r[i+1:]
		n++
	}
	at := 5 // the stream sequence, in the 9-token form
	if n >= 11 {
		at = 7
	}
	if n < 9 {
		return seqOf(m)
	}
	v, err := strconv.ParseUint(tokens[at], 10, 64)
	if err != nil {
		return seqOf(m)
	}
	return v
}

// seqOf is an input's stream sequence (0 when it has no metadata).
func seqOf(m jetstream.Msg) uint64 {
	md, err := m.Metadata()
	if err != nil {
		return 0
	}
	return md.Sequence.Stream
}

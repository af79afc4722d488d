// Package pipe is the data-flow plumbing every service shares: pulling input in batches,
// publishing outputs asynchronously and waiting until JetStream has them all, sending poison
// input to the dead-letter stream, and creating consumers.
//
// The rule it serves: ack an input only after everything it caused is durable. A service pulls a
// batch, publishes what the batch causes (each output with a Nats-Msg-Id derived from its input),
// waits for every publish ack, then acks the batch.
package pipe

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BatchOptions tunes Batches.
type BatchOptions struct {
	// MaxMessages is the largest batch (default 1000).
	MaxMessages int
	// Linger is how long a batch may wait for more messages after its first (default 2ms).
	Linger time.Duration
	// Tick calls the handler with an empty batch when nothing arrived for this long (default 1s),
	// so that time-driven work (closing idle windows, flushing) runs without input.
	Tick time.Duration
	// Log receives iterator errors that do not stop the loop.
	Log *slog.Logger
}

func (o *BatchOptions) defaults() {
	if o.MaxMessages <= 0 {
		o.MaxMessages = 1000
	}
	if o.Linger <= 0 {
		o.Linger = 2 * time.Millisecond
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
}

// Handler processes one batch (possibly empty, on a tick) and acks what it finished. It runs
// with a context that is not cancelled when the service is asked to stop, so an in-flight batch
// completes (drains); returning an error stops the loop.
type Handler func(ctx context.Context, batch []jetstream.Msg) error

// Batches pulls from cons with a prefetching iterator and hands the handler batches of up to
// MaxMessages, one at a time and in delivery order, until ctx ends.
func Batches(ctx context.Context, cons jetstream.Consumer, o BatchOptions, h Handler) error {
	o.defaults()
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * o.MaxMessages))
	if err != nil {
		return err
	}
	defer it.Stop()
	work := context.WithoutCancel(ctx)
	batch := make([]jetstream.Msg, 0, o.MaxMessages)
	for {
		if ctx.Err() != nil {
			return nil
		}
		wait, cancel := context.WithTimeout(ctx, o.Tick)
		first, err := it.Next(jetstream.NextContext(wait))
		cancel()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, context.DeadlineExceeded):
				if err := h(work, nil); err != nil {
					return err
				}
			case errors.Is(err, jetstream.ErrMsgIteratorClosed):
				return err
			default:
				// Missed heartbeats and the like: the iterator keeps trying (nats.go treats
				// these as non-terminal); say so and go on.
				o.Log.Warn("pull iterator", "err", err)
			}
			continue
		}
		batch = append(batch[:0], first)
		// One deadline for the whole batch (not a timer per message): take what is buffered
		// and what arrives within Linger.
		linger, cancelLinger := context.WithTimeout(ctx, o.Linger)
		for len(batch) < o.MaxMessages {
			m, err := it.Next(jetstream.NextContext(linger))
			if err != nil {
				break
			}
			batch = append(batch, m)
		}
		cancelLinger()
		if err := h(work, batch); err != nil {
			return err
		}
	}
}

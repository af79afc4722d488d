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
	// Ordered makes Batches check that deliveries arrive without gaps (consumer sequence
	// 1, 2, 3, ... as on a fresh consumer from ResumeConsumer). A gap means messages were lost
	// on the way (the client dropped them as a slow consumer, e.g. after a reconnect); with
	// cumulative acks the next ack would cover them unseen. Batches then hands the handler what
	// came before the gap and returns ErrGap: the caller resumes from its last applied sequence.
	Ordered bool
	// Drain is how long an in-flight batch may go on after the service was asked to stop
	// (default 15s); then its context is cancelled too, so that a stop never hangs on a NATS
	// that is away.
	Drain time.Duration
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
	if o.Drain <= 0 {
		o.Drain = 15 * time.Second
	}
}

// ErrGap is returned by Batches (with BatchOptions.Ordered) when deliveries were lost.
var ErrGap = errors.New("deliveries lost in transit (consumer sequence gap): resume from the last applied sequence")

// Handler processes one batch (possibly empty, on a tick) and acks what it finished. It runs
// with a context that is cancelled only BatchOptions.Drain after the service was asked to stop,
// so an in-flight batch completes (drains); returning an error stops the loop.
type Handler func(ctx context.Context, batch []jetstream.Msg) error

// Batches pulls from cons (a prefetching Consume, at most 2*MaxMessages in flight) and hands
// the handler batches of up to MaxMessages, one at a time and in delivery order, until ctx ends.
//
// It uses Consume rather than the Messages iterator on purpose: the iterator watches heartbeats
// and reconnects only while a Next call is blocked, so with the short Next calls a ticking loop
// needs, a NATS server restart could leave it waiting forever for pulls the new server never
// received. Consume keeps that bookkeeping in its own goroutine.
func Batches(ctx context.Context, cons jetstream.Consumer, o BatchOptions, h Handler) error {
	o.defaults()
	msgs := make(chan jetstream.Msg, 2*o.MaxMessages)
	stopped := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-stopped:
			_ = m.Nak() // fetched after the stop: release it for redelivery now
		}
	}, jetstream.PullMaxMessages(2*o.MaxMessages), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		// Missed heartbeats, a reconnect: Consume recovers by itself; say so.
		o.Log.Warn("pull consumer", "err", err)
	}))
	if err != nil {
		return err
	}
	defer func() {
		// A stop releases what was fetched and not handed to the handler, so that another
		// instance (or the next start) gets it at once instead of after the ack wait.
		close(stopped)
		cc.Stop()
		for {
			select {
			case m := <-msgs:
				_ = m.Nak()
			default:
				return
			}
		}
	}()

	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopDrain := context.AfterFunc(ctx, func() { time.AfterFunc(o.Drain, cancelWork) })
	defer stopDrain()
	batch := make([]jetstream.Msg, 0, o.MaxMessages)
	var lastDelivery uint64
	tick := time.NewTimer(o.Tick)
	defer tick.Stop()
	linger := time.NewTimer(o.Linger)
	defer linger.Stop()
	for {
		var first jetstream.Msg
		tick.Reset(o.Tick)
		select {
		case <-ctx.Done():
			return nil
		case <-cc.Closed():
			return jetstream.ErrMsgIteratorClosed
		case <-tick.C:
			if err := h(work, nil); err != nil {
				return err
			}
			continue
		case first = <-msgs:
		}
		batch = batch[:0]
		gap := !o.inOrder(first, &lastDelivery)
		if !gap {
			batch = append(batch, first)
			// Take what is buffered and what arrives within Linger of the first message.
			linger.Reset(o.Linger)
		collect:
			for len(batch) < o.MaxMessages {
				select {
				case m := <-msgs:
					if !o.inOrder(m, &lastDelivery) {
						gap = true
						break collect
					}
					batch = append(batch, m)
				case <-linger.C:
					break collect
				}
			}
		}
		if len(batch) > 0 {
			if err := h(work, batch); err != nil {
				return err
			}
		}
		if gap {
			o.Log.Warn("consumer sequence gap: deliveries were lost, resuming", "after_delivery", lastDelivery)
			return ErrGap
		}
	}
}

// inOrder checks, for Ordered batches, that m is the delivery after *last, and advances it.
func (o *BatchOptions) inOrder(m jetstream.Msg, last *uint64) bool {
	if !o.Ordered {
		return true
	}
	md, err := m.Metadata()
	if err != nil || md.Sequence.Consumer != *last+1 {
		return false
	}
	*last = md.Sequence.Consumer
	return true
}

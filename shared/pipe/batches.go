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

// Batches pulls from cons and hands the handler batches of up to MaxMessages, one at a time and
// in delivery order, until ctx ends.
//
// One goroutine issues the pull requests, one after the other (Fetch of MaxMessages, expiring
// after a few seconds, with a 1 s idle heartbeat), and buffers up to 2*MaxMessages: while the
// handler works on one batch, the next is on its way. It does not use Consume: nats.go's Consume
// (v1.53) can skip a refill when a batch's messages arrive while the pull that asked for them is
// still being sent, and then waits two heartbeats (30 s by default) with nothing outstanding,
// which stalled whole pipelines for 30 s under load. Nor the Messages iterator: it watches
// heartbeats only inside Next, so a NATS restart could leave it waiting forever. A sequential
// Fetch loop has neither problem: the next pull goes out as soon as the previous one ends, and
// a pull lost in a restart ends by its heartbeat within 2 s.
func Batches(ctx context.Context, cons jetstream.Consumer, o BatchOptions, h Handler) error {
	o.defaults()
	msgs := make(chan jetstream.Msg, 2*o.MaxMessages)
	stopped := make(chan struct{})
	fetchErr := make(chan error, 1)
	fetched := make(chan struct{})
	go func() {
		defer close(fetched)
		fetchLoop(cons, o, msgs, stopped, fetchErr)
	}()
	defer func() {
		// A stop releases what was fetched and not handed to the handler, so that another
		// instance (or the next start) gets it at once instead of after the ack wait.
		close(stopped)
		<-fetched
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
		case err := <-fetchErr:
			return err
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

// fetchExpiry bounds one pull request; fetchHeartbeat is its idle heartbeat (a pull the server
// lost, e.g. in a restart, ends after two missed heartbeats).
const (
	fetchExpiry    = 5 * time.Second
	fetchHeartbeat = time.Second
)

// fetchLoop pulls until stopped, one request at a time, and feeds msgs. Transient errors (NATS
// away, a missed heartbeat) are logged and retried with a backoff; a consumer that is gone ends
// the loop with the error on errs.
func fetchLoop(cons jetstream.Consumer, o BatchOptions, msgs chan<- jetstream.Msg, stopped <-chan struct{}, errs chan<- error) {
	stopCtx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		select {
		case <-stopped:
			stop()
		case <-stopCtx.Done():
		}
	}()
	backoff := time.Duration(0)
	for {
		select {
		case <-stopped:
			return
		case <-time.After(backoff):
		}
		// The pull ends by its expiry, or at once on a stop (its context).
		fctx, cancel := context.WithTimeout(context.Background(), fetchExpiry)
		stopFetch := context.AfterFunc(stopCtx, cancel)
		b, err := cons.Fetch(o.MaxMessages, jetstream.FetchContext(fctx), jetstream.FetchHeartbeat(fetchHeartbeat))
		if err == nil {
			for m := range b.Messages() {
				select {
				case msgs <- m:
				case <-stopped:
					_ = m.Nak() // fetched after the stop: release it for redelivery now
				}
			}
			err = b.Error()
		}
		stopFetch()
		cancel()
		if stopCtx.Err() != nil {
			return
		}
		switch {
		case err == nil:
			backoff = 0
			continue
		case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrConsumerDeleted):
			select {
			case errs <- err:
			default:
			}
			return
		}
		backoff = min(max(2*backoff, 100*time.Millisecond), 2*time.Second)
		select {
		case <-stopped:
			return
		default:
		}
		o.Log.Warn("pull consumer", "err", err, "retry_in", backoff)
	}
}

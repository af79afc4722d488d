package alerting

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/pipe"
)

// batches is pipe.Batches with one difference that matters for alert latency: Linger bounds
// the time from a batch's first message to its hand-over, not the gap between two messages.
// With a per-gap linger, a steady stream faster than one message per Linger never leaves a gap,
// so a batch grows until MaxMessages: at 1,000 alerts/s that held the first alert of each batch
// back for up to MaxMessages milliseconds.
func batches(ctx context.Context, cons jetstream.Consumer, o pipe.BatchOptions, h pipe.Handler) error {
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
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * o.MaxMessages))
	if err != nil {
		return err
	}
	defer it.Stop()
	work := context.WithoutCancel(ctx)
	batch := make([]jetstream.Msg, 0, o.MaxMessages)
	for ctx.Err() == nil {
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
				o.Log.Warn("pull iterator", "err", err)
			}
			continue
		}
		batch = append(batch[:0], first)
		deadline := time.Now().Add(o.Linger)
		for len(batch) < o.MaxMessages {
			left := time.Until(deadline)
			if left <= 0 {
				break
			}
			m, err := it.Next(jetstream.NextMaxWait(left))
			if err != nil {
				break
			}
			batch = append(batch, m)
		}
		if err := h(work, batch); err != nil {
			return err
		}
	}
	return nil
}

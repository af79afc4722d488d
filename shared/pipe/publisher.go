package pipe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/obs"
)

// Publisher publishes messages asynchronously and remembers them until Wait has seen every
// publish acknowledged by JetStream. It is not safe for concurrent use: each batch loop owns one.
type Publisher struct {
	JS      jetstream.JetStream
	Service string
	// AckTimeout bounds how long Wait waits for a round of publish acks before it treats the
	// missing ones as failed and publishes them again (an ack can be lost for good, e.g. when
	// the connection closed; Nats-Msg-Id makes the second publish harmless if the first one
	// landed). 0 means DefaultAckTimeout.
	AckTimeout time.Duration
	futs       []jetstream.PubAckFuture
}

// DefaultAckTimeout is Publisher.AckTimeout when none is set.
const DefaultAckTimeout = 30 * time.Second

// NewPublisher returns a Publisher for a service.
func NewPublisher(js jetstream.JetStream, service string) *Publisher {
	return &Publisher{JS: js, Service: service}
}

// Publish starts publishing msg. Give every output a Nats-Msg-Id derived from its input.
func (p *Publisher) Publish(msg *nats.Msg) error {
	for attempt := 0; ; attempt++ {
		f, err := p.JS.PublishMsgAsync(msg)
		if err == nil {
			p.futs = append(p.futs, f)
			return nil
		}
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) || attempt >= 50 {
			return fmt.Errorf("publish %s: %w", msg.Subject, err)
		}
		// Too many in flight: let JetStream catch up (backpressure), then try again.
		select {
		case <-p.JS.PublishAsyncComplete():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Pending is the number of publishes not yet waited for.
func (p *Publisher) Pending() int { return len(p.futs) }

// Wait waits until every publish since the last Wait is acknowledged. Publishes that failed
// (timeouts, NATS away) are retried with backoff until ctx ends; because outputs carry
// Nats-Msg-Id, a retry of a publish that did land is recognised as a duplicate.
func (p *Publisher) Wait(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		failed, err := p.collect(ctx)
		if err != nil {
			return err
		}
		if len(failed) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d publishes not acknowledged: %w", len(failed), ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
		for _, m := range failed {
			if err := p.Publish(m); err != nil {
				p.futs = nil
				return err
			}
		}
	}
}

// collect waits for all current futures and returns the messages whose publish failed.
func (p *Publisher) collect(ctx context.Context) ([]*nats.Msg, error) {
	futs := p.futs
	p.futs = nil
	var failed []*nats.Msg
	ackTimeout := p.AckTimeout
	if ackTimeout <= 0 {
		ackTimeout = DefaultAckTimeout
	}
	timeout := time.NewTimer(ackTimeout)
	defer timeout.Stop()
	for i, f := range futs {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				obs.DedupHits.WithLabelValues(p.Service, ack.Stream).Inc()
			} else {
				obs.Published.WithLabelValues(p.Service, ack.Stream).Inc()
			}
		case <-f.Err():
			failed = append(failed, f.Msg())
		case <-timeout.C:
			for _, rest := range futs[i:] {
				failed = append(failed, rest.Msg())
			}
			return failed, nil
		case <-ctx.Done():
			for _, rest := range futs[i:] {
				failed = append(failed, rest.Msg())
			}
			return failed, fmt.Errorf("waiting for publish acks: %w", ctx.Err())
		}
	}
	return failed, nil
}

// Discard forgets pending publishes (after a fatal error).
func (p *Publisher) Discard() { p.futs = nil }

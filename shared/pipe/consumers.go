package pipe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// SharedConsumer creates or updates a durable pull consumer with explicit acks. Every instance
// of a stateless service binds to the same one, and JetStream spreads the messages among them.
func SharedConsumer(ctx context.Context, js jetstream.JetStream, stream, durable string, filters ...string) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 20000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	setFilters(&cfg, filters)
	c, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", durable, stream, err)
	}
	return c, nil
}

// ResumeConsumerMark is the consumer metadata key that marks a consumer ResumeConsumer created
// (its ack floor is not a checkpoint: see shared/flow).
const ResumeConsumerMark = "jetsuite-resume"

// ResumeConsumer (re)creates a durable consumer owned by one stateful instance that keeps its
// own checkpoint, delivering in stream order from the sequence after checkpoint. It deletes an
// existing consumer first: after a crash JetStream would redeliver the unacked messages only
// when their ack wait runs out, behind newer ones, and a stateful service needs the replay in
// order to compute exactly what it computed before. Acks are cumulative (AckAll).
func ResumeConsumer(ctx context.Context, js jetstream.JetStream, stream, durable string, checkpoint uint64, filters ...string) (jetstream.Consumer, error) {
	if err := js.DeleteConsumer(ctx, stream, durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("reset consumer %s on %s: %w", durable, stream, err)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       durable,
		Metadata:      map[string]string{ResumeConsumerMark: "1"},
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       2 * time.Minute,
		MaxAckPending: 100000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if checkpoint > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = checkpoint + 1
	}
	setFilters(&cfg, filters)
	c, err := js.CreateConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", durable, stream, err)
	}
	return c, nil
}

func setFilters(cfg *jetstream.ConsumerConfig, filters []string) {
	switch len(filters) {
	case 0:
	case 1:
		cfg.FilterSubject = filters[0]
	default:
		cfg.FilterSubjects = filters
	}
}

// AckAll acknowledges every message of a batch that needs it: with AckAll consumers the last
// one covers the rest; with explicit acks each is acked. Ack is fire-and-forget: a lost ack only
// causes a redelivery, which outputs' Nats-Msg-Id makes harmless.
func AckAll(batch []jetstream.Msg, cumulative bool) {
	if len(batch) == 0 {
		return
	}
	if cumulative {
		_ = batch[len(batch)-1].Ack()
		return
	}
	for _, m := range batch {
		_ = m.Ack()
	}
}

package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/pipe"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// checkpoint is what JETSUITE_CHECKPOINTS holds under a processor's durable name: the input
// stream and the sequence of the newest input whose effects are durable. One format for every
// processor.
type checkpoint struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
}

// Checkpoint returns the checkpoint of the processor with the given key (its durable name, or
// Options.CheckpointKey) on stream (0 when there is none, or when it belongs to another stream).
func Checkpoint(ctx context.Context, js jetstream.JetStream, key, stream string) (uint64, error) {
	kv, err := js.KeyValue(ctx, topology.BucketCheckpoints)
	if err != nil {
		return 0, fmt.Errorf("checkpoints bucket %s: %w", topology.BucketCheckpoints, err)
	}
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("checkpoint %s: %w", key, err)
	}
	var cp checkpoint
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		return 0, fmt.Errorf("checkpoint %s: %w", key, err)
	}
	if cp.Stream != stream {
		return 0, nil
	}
	return cp.Seq, nil
}

// checkpointMsg is the KV put that records cp under key.
func checkpointMsg(key string, cp checkpoint) *nats.Msg {
	data, _ := json.Marshal(cp)
	return &nats.Msg{Subject: topology.KVSubject(topology.BucketCheckpoints, key), Data: data}
}

// ackFloor is where a processor resumes before it wrote its first checkpoint: the ack floor of
// a consumer that a version before shared/flow created (those acked an input only once its
// effects were durable). A consumer flow created itself (pipe.ResumeConsumer marks it) says
// nothing: without a checkpoint nothing of it is known to be durable, and JetStream moves an ack
// floor over messages that were delivered but never acked when later ones of the same subject
// replace them (a KV bucket's stream), so trusting it would skip inputs.
func ackFloor(ctx context.Context, js jetstream.JetStream, stream, durable string) (uint64, error) {
	c, err := js.Consumer(ctx, stream, durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	info := c.CachedInfo()
	if _, ours := info.Config.Metadata[pipe.ResumeConsumerMark]; ours {
		return 0, nil
	}
	return info.AckFloor.Stream, nil
}

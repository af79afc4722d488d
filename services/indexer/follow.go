package indexer

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/flow"
	"github.com/jetsuite/jetsuite/shared/pipe"
)

// Headers added to a dead-lettered document besides pipe's (reason, error, service, source).
const (
	HeaderDLQIndex            = "Jetsuite-Dlq-Index"
	HeaderDLQDocID            = "Jetsuite-Dlq-Doc-Id"
	HeaderDLQOpenSearchStatus = "Jetsuite-Dlq-Opensearch-Status"
	HeaderDLQOpenSearchType   = "Jetsuite-Dlq-Opensearch-Type"
)

// ReasonRejected is the dead-letter reason of a document OpenSearch refused (a mapping error).
const ReasonRejected = "opensearch_rejected"

// maxHold caps how long one batch retries inside the handler (Config.AckWait). The runtime's
// consumers have a 2-minute ack wait, and a batch prefetched behind the one retrying may wait
// that long again before its own turn: holding each for at most a minute means JetStream never
// redelivers behind our back.
const maxHold = time.Minute

// follow indexes one source until ctx ends: a shared/flow processor on the source's stream
// (durable Config.Durable, checkpoint "<durable>.<stream>"), which resumes from its checkpoint,
// batches (up to BulkDocs, lingering FlushInterval for a fuller batch) and acks cumulatively once
// a batch's _bulk is confirmed and its dead letters are stored.
func (x *Indexer) follow(ctx context.Context, s source) error {
	drain := x.cfg.DrainTimeout
	if drain <= 0 {
		drain = time.Nanosecond // 0 stops at once; flow's 0 would mean its default
	}
	return flow.Run(ctx, x.js, flow.Options{
		Service: ServiceName,
		Stream:  s.Stream,
		Durable: x.cfg.Durable,
		// One durable name on every followed stream, as before the port (operators and the ack
		// floors' history know it); the checkpoint needs a key per stream.
		CheckpointKey: x.cfg.Durable + "." + s.Stream,
		Batch:         x.cfg.BulkDocs,
		Linger:        x.cfg.FlushInterval,
		Drain:         drain,
		Log:           x.log.With("stream", s.Stream),
	}, &follower{x: x, s: s})
}

// follower is the handler of one source: one _bulk (split by size) per batch.
type follower struct {
	x *Indexer
	s source
}

// Handle indexes a batch. It returns nil once every document is confirmed or rejected (the
// rejected ones dead-lettered through out, so the runtime acks the batch only after the dead
// letters are stored too).
//
// OpenSearch away (or an item that keeps failing with 429/5xx): the writer retries inside the
// handler, with backoff, for at most Config.AckWait; then the handler returns flow.Retry(0, ...):
// nothing of the batch is acked, and the runtime resumes from the checkpoint after RetryMax,
// delivering the same batch again first. So nothing is acked while OpenSearch is away, order per
// stream is kept (a batch is never passed by the next one), and the consumer is recreated from
// the checkpoint instead of messages timing out of their ack wait. Done is 0 even when some
// chunks of the batch were confirmed: the writer's verdicts are all or nothing, and re-sending
// a confirmed document is harmless (same id; tables: same external version, a 409 = done).
func (f *follower) Handle(ctx context.Context, in []jetstream.Msg, out *flow.Out) error {
	if len(in) == 0 {
		return nil // an idle tick: nothing is time-driven here
	}
	ops := make([]op, 0, len(in))
	opMsg := make([]jetstream.Msg, 0, len(in))
	type bad struct {
		msg jetstream.Msg
		o   op
		v   verdict
	}
	var dead []bad
	for _, m := range in {
		o, err := f.s.doc(m)
		if err != nil {
			dead = append(dead, bad{msg: m, v: verdict{Type: pipe.ReasonNotJSON, Reason: err.Error()}})
			continue
		}
		ops = append(ops, o)
		opMsg = append(opMsg, m)
	}

	wctx, cancel := context.WithTimeout(ctx, min(f.x.cfg.AckWait, maxHold))
	verdicts, err := f.x.w.write(wctx, ops, nil)
	cancel()
	if err != nil {
		// Also on a stop whose drain ran out (ctx ended): a retry, not a failure, so the
		// runtime returns cleanly and the batch is delivered again at the next start.
		return flow.Retry(0, f.x.cfg.RetryMax, fmt.Errorf("%d documents not confirmed by OpenSearch (its error is logged above): %w", len(ops), err))
	}
	for i, v := range verdicts {
		if !v.OK {
			dead = append(dead, bad{msg: opMsg[i], o: ops[i], v: v})
		}
	}
	for _, d := range dead {
		if err := out.Reject(d.msg, rejection(f.s, d.o, d.v)); err != nil {
			// NATS away or stalled: the whole batch again later (its documents re-sent under
			// the same ids, its dead letters under the same Nats-Msg-Ids), not a fatal error.
			return flow.Retry(0, f.x.cfg.RetryMax, err)
		}
	}
	return nil
}

// rejection says why OpenSearch refused a document: pipe's dead-letter headers (so every dead
// letter reads the same) plus the index, document id and OpenSearch's status and error type.
func rejection(s source, o op, v verdict) pipe.Rejection {
	r := pipe.Rejection{Reason: ReasonRejected, Error: v.Type + ": " + v.Reason, Extra: nats.Header{}}
	if v.Status == 0 {
		r.Reason, r.Error = pipe.ReasonNotJSON, v.Reason
	}
	r.Extra.Set(HeaderDLQIndex, s.Index)
	if o.ID != "" {
		r.Extra.Set(HeaderDLQDocID, o.ID)
	}
	if v.Status != 0 {
		r.Extra.Set(HeaderDLQOpenSearchStatus, strconv.Itoa(v.Status))
		r.Extra.Set(HeaderDLQOpenSearchType, v.Type)
	}
	return r
}

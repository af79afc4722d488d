package indexer

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/obs"
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

// follow indexes one source until ctx ends. Batches are fetched by size (BulkDocs) or interval
// (FlushInterval, a fetch's longest wait), whichever comes first, one batch in flight at a time.
// Fetch (not a prefetching iterator) on purpose: a prefetched message's ack wait would run out
// while OpenSearch is away, and it would be redelivered behind our back.
func (x *Indexer) follow(ctx, work context.Context, s source) error {
	cons, err := x.consumer(ctx, s)
	if err != nil {
		return nil // ctx ended
	}
	pub := pipe.NewPublisher(x.js, ServiceName)
	msgs := make([]jetstream.Msg, 0, x.cfg.BulkDocs)
	for ctx.Err() == nil {
		batch, err := cons.Fetch(x.cfg.BulkDocs, jetstream.FetchMaxWait(x.cfg.FlushInterval))
		if err != nil {
			x.log.Warn("fetch", "stream", s.Stream, "err", err)
			sleep(ctx, time.Second)
			continue
		}
		msgs = msgs[:0]
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && len(msgs) == 0 {
			x.log.Warn("fetch", "stream", s.Stream, "err", err)
			sleep(ctx, time.Second)
			continue
		}
		if len(msgs) == 0 {
			continue
		}
		if err := x.handle(work, s, pub, msgs); err != nil {
			if work.Err() != nil {
				// Stopped without finishing (killed, or the drain timed out): nothing of this
				// batch was acked; JetStream redelivers it after the ack wait.
				x.log.Warn("stopped with a batch in flight; it will be redelivered", "stream", s.Stream, "messages", len(msgs))
				return nil
			}
			return err
		}
	}
	return nil
}

// handle indexes one batch and acks it once every document is confirmed or dead-lettered.
func (x *Indexer) handle(ctx context.Context, s source, pub *pipe.Publisher, msgs []jetstream.Msg) error {
	start := time.Now()
	ops := make([]op, 0, len(msgs))
	opMsg := make([]jetstream.Msg, 0, len(msgs))
	type bad struct {
		msg jetstream.Msg
		o   op
		v   verdict
	}
	var dead []bad
	for _, m := range msgs {
		o, err := s.doc(m)
		if err != nil {
			dead = append(dead, bad{msg: m, v: verdict{Type: pipe.ReasonNotJSON, Reason: err.Error()}})
			continue
		}
		ops = append(ops, o)
		opMsg = append(opMsg, m)
	}

	stop := x.keepAlive(msgs)
	verdicts, err := x.w.write(ctx, ops, nil)
	stop()
	if err != nil {
		return err
	}
	for i, v := range verdicts {
		if !v.OK {
			dead = append(dead, bad{msg: opMsg[i], o: ops[i], v: v})
		}
	}
	if len(dead) > 0 {
		dl := pipe.DeadLetter{Pub: pub, Service: ServiceName, Log: x.log}
		for _, d := range dead {
			if err := dl.Reject(d.msg, rejection(s, d.o, d.v)); err != nil {
				pub.Discard()
				return err
			}
		}
		if err := pub.Wait(ctx); err != nil {
			return err
		}
	}
	pipe.AckAll(msgs, false)
	obs.Processed.WithLabelValues(ServiceName, s.Stream).Add(float64(len(msgs)))
	obs.BatchLatency.WithLabelValues(ServiceName, s.Stream).Observe(time.Since(start).Seconds())
	if md, err := msgs[len(msgs)-1].Metadata(); err == nil {
		obs.Lag.WithLabelValues(ServiceName, s.Stream).Set(float64(md.NumPending))
	}
	return nil
}

// keepAlive tells JetStream the batch is being worked on (progress acks) every third of the ack
// wait, so that a batch waiting for OpenSearch is not redelivered. The returned func stops it.
func (x *Indexer) keepAlive(msgs []jetstream.Msg) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(x.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	}()
	return func() { close(done); <-stopped }
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

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

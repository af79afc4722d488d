package indexer

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/pipe"
	"github.com/jetsuite/jetsuite/shared/topology"
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
		for _, d := range dead {
			if err := pub.Publish(deadLetter(d.msg, s, d.o, d.v)); err != nil {
				pub.Discard()
				return err
			}
			reason := ReasonRejected
			if d.v.Status == 0 {
				reason = pipe.ReasonNotJSON
			}
			obs.DeadLettered.WithLabelValues(ServiceName, s.Stream, reason).Inc()
			x.log.Warn("dead-lettered document", "stream", s.Stream, "index", s.Index, "id", d.o.ID,
				"status", d.v.Status, "type", d.v.Type, "reason", d.v.Reason)
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

// deadLetter builds the dead-letter message of a document: pipe.DeadLetter's headers (so every
// dead letter reads the same) plus the index, document id and OpenSearch's status and error type.
func deadLetter(msg jetstream.Msg, s source, o op, v verdict) *nats.Msg {
	md, _ := msg.Metadata()
	stream, seq := s.Stream, uint64(0)
	if md != nil {
		stream, seq = md.Stream, md.Sequence.Stream
	}
	out := nats.NewMsg(topology.DeadLetterPrefix + stream)
	for k, vals := range msg.Headers() {
		out.Header[k] = append([]string(nil), vals...)
	}
	reason, text := ReasonRejected, v.Type+": "+v.Reason
	if v.Status == 0 {
		reason, text = pipe.ReasonNotJSON, v.Reason
	}
	text = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, text)
	if len(text) > 1024 {
		text = text[:1024] + "..."
	}
	out.Header.Set(pipe.HeaderDLQReason, reason)
	out.Header.Set(pipe.HeaderDLQError, text)
	out.Header.Set(pipe.HeaderDLQService, ServiceName)
	out.Header.Set(pipe.HeaderDLQSourceStream, stream)
	out.Header.Set(pipe.HeaderDLQSourceSubject, msg.Subject())
	out.Header.Set(pipe.HeaderDLQSourceSeq, strconv.FormatUint(seq, 10))
	out.Header.Set(HeaderDLQIndex, s.Index)
	if o.ID != "" {
		out.Header.Set(HeaderDLQDocID, o.ID)
	}
	if v.Status != 0 {
		out.Header.Set(HeaderDLQOpenSearchStatus, strconv.Itoa(v.Status))
		out.Header.Set(HeaderDLQOpenSearchType, v.Type)
	}
	out.Header.Set(events.HeaderMsgID, "dlq:"+ServiceName+":"+stream+":"+strconv.FormatUint(seq, 10))
	out.Data = msg.Data()
	return out
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// limitWatchEvery is how often `all` looks at the streams' and buckets' limits. What a consumer
// lost between two checks is seen at the next one (see consumers), so the interval mostly
// delays the report; what a consumer skipped and then lost to a restart of its processor
// before a check goes unseen, so it is short. A check costs two requests per stream.
const limitWatchEvery = 10 * time.Second

// nearlyFull is the fill above which a bucket that refuses new keys at its limit is reported.
const nearlyFull = 0.9

// limitWatch reports what the byte limits do, which JetStream itself does silently: how full
// every stream and bucket is (jetsuite_stream_fill_ratio), input a processor lost because its
// stream dropped messages before delivering them to it (jetsuite_discarded_unread_total and a
// warning), and buckets nearing the limit at which they refuse new keys (a warning).
type limitWatch struct {
	js      jetstream.JetStream
	log     *slog.Logger
	streams []string
	buckets []topology.Bucket
	// marks: per stream and consumer, what the last check saw.
	marks map[string]consumerMark
	// warned: buckets reported nearly full (until they are no longer).
	warned map[string]bool
}

func newLimitWatch(js jetstream.JetStream, c topology.Catalog, log *slog.Logger) *limitWatch {
	w := &limitWatch{js: js, log: log, buckets: c.Buckets, marks: map[string]consumerMark{}, warned: map[string]bool{}}
	for _, s := range c.Streams {
		w.streams = append(w.streams, s.Name)
	}
	return w
}

// run checks every limitWatchEvery until ctx ends.
func (w *limitWatch) run(ctx context.Context) {
	t := time.NewTicker(limitWatchEvery)
	defer t.Stop()
	w.check(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.check(ctx)
		}
	}
}

// check looks once at every stream and bucket.
func (w *limitWatch) check(ctx context.Context) {
	for _, name := range w.streams {
		info, ok := w.info(ctx, name)
		if !ok {
			continue
		}
		w.consumers(ctx, name, info.State.FirstSeq)
	}
	for _, b := range w.buckets {
		info, ok := w.info(ctx, topology.BucketStream(b.Name))
		if !ok || b.Windowed || info.Config.MaxBytes <= 0 || info.Config.Discard != jetstream.DiscardNew {
			continue
		}
		fill := float64(info.State.Bytes) / float64(info.Config.MaxBytes)
		switch {
		case fill >= nearlyFull && !w.warned[b.Name]:
			w.warned[b.Name] = true
			w.log.Warn("bucket nearly full: at its byte limit it refuses new keys and its writer stalls until there is room (raise --bucket-max-bytes or the table's RETENTION_BYTES)",
				"bucket", b.Name, "bytes", info.State.Bytes, "limit", config.FormatBytes(info.Config.MaxBytes))
		case fill < nearlyFull:
			delete(w.warned, b.Name)
		}
	}
}

// info reads a stream's state and sets its fill gauge.
func (w *limitWatch) info(ctx context.Context, name string) (*jetstream.StreamInfo, bool) {
	s, err := w.js.Stream(ctx, name)
	if err != nil {
		return nil, false
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, false
	}
	if info.Config.MaxBytes > 0 {
		obs.StreamFill.WithLabelValues(name).Set(float64(info.State.Bytes) / float64(info.Config.MaxBytes))
	}
	return info, true
}

// consumerMark is what the watch saw of a consumer at its last check.
type consumerMark struct {
	created          time.Time // tells a recreated consumer (a processor resuming) apart
	stream, consumer uint64    // its delivered stream and consumer sequences
	judged           uint64    // stream sequences below this one were judged (lost or not)
}

// consumers counts, for every durable consumer that reads the whole stream, the messages the
// stream removed before delivering them to it, once each:
//
//   - while the consumer fetches, the server skips what was removed, so its delivered stream
//     sequence advances by more than its delivered consumer sequence: the difference, within
//     the sequences removed since the last check, was skipped;
//   - a consumer that lags without fetching has lost everything between its delivered
//     position and the oldest message left.
//
// Messages delivered and being processed when removed are not lost (the processor acks them as
// usual). Consumers that read some subjects of a stream (the CDC reader's) are left out: the
// server skips the other subjects' messages too.
func (w *limitWatch) consumers(ctx context.Context, stream string, first uint64) {
	s, err := w.js.Stream(ctx, stream)
	if err != nil {
		return
	}
	l := s.ListConsumers(ctx)
	for ci := range l.Info() {
		if ci.Config.Durable == "" || ci.Config.FilterSubject != "" || len(ci.Config.FilterSubjects) > 0 {
			continue
		}
		key := stream + "/" + ci.Name
		m, seen := w.marks[key]
		d := ci.Delivered.Stream
		if !seen || !m.created.Equal(ci.Created) {
			// A consumer not seen before, or recreated (a processor resuming from its
			// checkpoint). One that starts at a given sequence is judged from there: what
			// the server skipped since is lost (the stream had dropped it before the
			// processor came back for it). Of one that starts at the oldest message left, the
			// start is unknown: only what it lost past its position counts.
			m = consumerMark{created: ci.Created, stream: d, consumer: ci.Delivered.Consumer, judged: max(m.judged, first)}
			if ci.Config.DeliverPolicy == jetstream.DeliverByStartSequencePolicy && ci.Config.OptStartSeq > 0 {
				m.stream, m.consumer, m.judged = ci.Config.OptStartSeq-1, 0, max(w.marks[key].judged, ci.Config.OptStartSeq)
			} else if d > 0 {
				m.judged = w.marks[key].judged
			}
		}
		var lost uint64
		// Skipped while fetching: within (the last check's position, now], below first.
		if ds, dc := d-m.stream, ci.Delivered.Consumer-m.consumer; d >= m.stream && ci.Delivered.Consumer >= m.consumer && ds > dc {
			lo, hi := max(m.stream+1, m.judged), min(first-1, d)
			if hi >= lo {
				lost += min(ds-dc, hi-lo+1)
			}
		}
		// Removed past what it was delivered.
		if lo := max(d+1, m.judged); first > lo {
			lost += first - lo
		}
		w.marks[key] = consumerMark{created: ci.Created, stream: d, consumer: ci.Delivered.Consumer, judged: max(m.judged, first)}
		if lost == 0 {
			continue
		}
		obs.DiscardedUnread.WithLabelValues(stream, ci.Name).Add(float64(lost))
		w.log.Warn("the stream dropped input this consumer had not processed: it reached its byte (or age) limit while the consumer lagged behind; it goes on from the oldest message left (raise --stream-max-bytes or the stream's RETENTION_BYTES)",
			"stream", stream, "consumer", ci.Name, "lost", lost, "delivered_up_to", d, "oldest_left", first)
	}
	if err := l.Err(); err != nil && ctx.Err() == nil {
		w.log.Debug("list consumers", "stream", stream, "err", err)
	}
}

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

// limitWatchEvery is how often `all` looks at the streams' and buckets' limits. A loss is seen
// as long as the consumer lags behind the oldest message left, so a sample every half minute
// catches a processor that keeps falling behind; a short blip between samples can go unseen.
const limitWatchEvery = 30 * time.Second

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
	// counted: per stream and consumer, the sequence up to which losses were counted.
	counted map[string]uint64
	// warned: buckets reported nearly full (until they are no longer).
	warned map[string]bool
}

func newLimitWatch(js jetstream.JetStream, c topology.Catalog, log *slog.Logger) *limitWatch {
	w := &limitWatch{js: js, log: log, buckets: c.Buckets, counted: map[string]uint64{}, warned: map[string]bool{}}
	for _, s := range c.Streams {
		w.streams = append(w.streams, s.Name)
	}
	return w
}

// run checks every limitWatchEvery until ctx ends.
func (w *limitWatch) run(ctx context.Context) {
	t := time.NewTicker(limitWatchEvery)
	defer t.Stop()
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

// consumers counts, for every durable consumer of the stream, the messages the stream removed
// before they were delivered to it: those between the last one it was delivered and the oldest
// message left. (Messages delivered and not yet acknowledged when removed are still being
// processed; a processor that restarts from a checkpoint before them gets a new consumer,
// delivered up to the checkpoint, and they count then.) Each is counted once. A consumer seen
// for the first time with nothing delivered (a processor starting, or rebuilding, from the
// oldest message left) has lost nothing.
func (w *limitWatch) consumers(ctx context.Context, stream string, first uint64) {
	s, err := w.js.Stream(ctx, stream)
	if err != nil {
		return
	}
	l := s.ListConsumers(ctx)
	for ci := range l.Info() {
		delivered := ci.Delivered.Stream
		if ci.Config.Durable == "" || first <= delivered+1 {
			continue
		}
		key := stream + "/" + ci.Name
		counted, seen := w.counted[key]
		if !seen && delivered == 0 {
			w.counted[key] = first
			continue
		}
		from := max(delivered+1, counted)
		if first <= from {
			continue
		}
		lost := first - from
		w.counted[key] = first
		obs.DiscardedUnread.WithLabelValues(stream, ci.Name).Add(float64(lost))
		w.log.Warn("the stream dropped input this consumer had not processed: it reached its byte (or age) limit while the consumer lagged behind; it goes on from the oldest message left (raise --stream-max-bytes or the stream's RETENTION_BYTES)",
			"stream", stream, "consumer", ci.Name, "lost", lost, "delivered_up_to", delivered, "oldest_left", first)
	}
	if err := l.Err(); err != nil && ctx.Err() == nil {
		w.log.Debug("list consumers", "stream", stream, "err", err)
	}
}

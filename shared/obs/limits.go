package obs

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// What the byte limits of streams and buckets do (docs/FOOTPRINT.md).
var (
	// StreamFill is how full a stream (or a bucket's stream, KV_<bucket>) is: its bytes over
	// its byte limit.
	StreamFill = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "jetsuite_stream_fill_ratio", Help: "Bytes of a stream (KV_<bucket> for a bucket) over its byte limit (1: at the limit).",
	}, []string{"stream"})
	// DiscardedUnread counts messages a stream removed (at its byte or age limit) before they
	// were delivered to a durable consumer of it: input that processor skipped.
	DiscardedUnread = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "jetsuite_discarded_unread_total", Help: "Messages removed by a stream's limits before they were delivered to a durable consumer (skipped input).",
	}, []string{"stream", "consumer"})
)

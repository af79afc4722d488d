package obs

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The metrics every service reports. Labels: service (generator, enricher, windower, ...),
// stream or table, and reason where it applies.
var (
	// Processed counts input messages a service finished with (acked), per source stream.
	Processed = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "jetsuite_processed_total", Help: "Input messages processed and acked.",
	}, []string{"service", "stream"})
	// Published counts messages published (and acknowledged by JetStream) per subject or stream.
	Published = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "jetsuite_published_total", Help: "Messages published and acknowledged by JetStream.",
	}, []string{"service", "stream"})
	// DedupHits counts publishes JetStream recognised as duplicates (Nats-Msg-Id seen before).
	DedupHits = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "jetsuite_dedup_hits_total", Help: "Publishes de-duplicated by JetStream (a redelivery or replay caused nothing new).",
	}, []string{"service", "stream"})
	// DeadLettered counts poison inputs sent to the dead-letter stream.
	DeadLettered = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "jetsuite_dead_lettered_total", Help: "Inputs sent to the dead-letter stream, by reason.",
	}, []string{"service", "stream", "reason"})
	// Late counts events that arrived after a window of theirs had closed.
	Late = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "jetsuite_late_events_total", Help: "Events later than the table's grace period (published to late.<TABLE>).",
	}, []string{"table"})
	// Dropped counts events a table ignores on purpose (a NULL group key), so none vanish unseen.
	Dropped = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "jetsuite_dropped_total", Help: "Events not aggregated on purpose, by reason (e.g. null_key).",
	}, []string{"table", "reason"})
	// Lag is the consumer's pending count as of the last message seen.
	Lag = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "jetsuite_consumer_lag", Help: "Messages in the stream not yet delivered to the consumer.",
	}, []string{"service", "stream"})
	// BatchLatency measures how long a batch took from fetch to ack.
	BatchLatency = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "jetsuite_batch_seconds", Help: "Time from a batch's first message to its ack.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"service", "stream"})
	// EventLatency measures event time to output (for derived events), in seconds.
	EventLatency = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "jetsuite_event_latency_seconds", Help: "Wall-clock time from event time to durable output.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
	}, []string{"service"})
)

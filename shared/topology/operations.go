package topology

import "time"

// Operational streams: what went wrong, what came late, which windows closed.
const (
	// StreamDeadLetter holds poison input: subject "dlq.<source stream>", the original body, and
	// headers that say why (see package pipe).
	StreamDeadLetter = "DEAD_LETTER"
	// StreamLateEvents holds events that arrived after their window closed: "late.<TABLE>".
	StreamLateEvents = "LATE_EVENTS"
	// StreamWindowsFinal holds one final row per window when it closes: "final.<TABLE>"
	// (EMIT FINAL for consumers such as alerts).
	StreamWindowsFinal = "WINDOWS_FINAL"
)

// Subject prefixes of the operational streams.
const (
	DeadLetterPrefix = "dlq."
	LatePrefix       = "late."
	FinalPrefix      = "final."
	ShufflePrefix    = "shuffle."
)

// ShuffleStream is the stream of the windower's repartition step for an aggregation source:
// the source's inputs routed to the partitions of its aggregations, written by the source's
// router alone and read by every partition's owner (see services/windower's shuffle.go).
func ShuffleStream(source string) string { return "SHUFFLE_" + source }

// ShuffleSubject is the subject of ShuffleStream(source).
func ShuffleSubject(source string) string { return ShufflePrefix + source }

// ShuffleMaxAge is how long a shuffle stream keeps a message: partition owners apply it within
// seconds; a day covers an owner that is down (limits retention, not interest, because a
// partition's consumer is recreated by each new owner).
const ShuffleMaxAge = 24 * time.Hour

// State buckets owned by services (not tables).
const (
	// BucketWindowerState holds the windower's open windows and input checkpoints.
	BucketWindowerState = "WINDOWER_STATE"
	// BucketGeneratorState holds the generator's iteration counters (like datagen's source
	// offsets), so that a restart continues (rating_id keeps counting up).
	BucketGeneratorState = "GENERATOR_STATE"
	// BucketCDCState holds the CDC reader's bookkeeping (binlog positions of deleted keys).
	BucketCDCState = "CDC_STATE"
	// BucketAlertingState holds which alerts were sent (one Slack message per rating, ever).
	BucketAlertingState = "ALERTING_STATE"
	// BucketCheckpoints holds every processor's checkpoint (shared/flow): key = its durable
	// consumer name, value {"stream": ..., "seq": ...}, the newest input whose effects are
	// durable.
	BucketCheckpoints = "JETSUITE_CHECKPOINTS"
	// BucketPlan holds, per derived stream and table, the fingerprint and SQL of the
	// definition it was built with: a changed statement is refused unless rebuilt.
	BucketPlan = "JETSUITE_PLAN"
	// BucketLeases holds who owns which unit of work (shared/lease): "m.<service>.<instance>"
	// per live instance and "u.<service>.<unit>" per owned unit, each expiring LeaseTTL after
	// its last renewal.
	BucketLeases = "JETSUITE_LEASES"
)

// LeaseTTL is how long a lease (and an instance's membership) outlives its last renewal: the
// longest a dead instance's work waits before another instance takes it over.
const LeaseTTL = 5 * time.Second

// Operations are the operational streams and the state buckets every plan needs.
func Operations() Catalog {
	return Catalog{
		Streams: []Stream{
			{Name: StreamDeadLetter, Subjects: []string{DeadLetterPrefix + ">"}, MaxAge: 30 * 24 * time.Hour,
				Description: "poison input with the reason in headers"},
			{Name: StreamLateEvents, Subjects: []string{LatePrefix + ">"}, MaxAge: 7 * 24 * time.Hour,
				Description: "events later than their table's grace period"},
			{Name: StreamWindowsFinal, Subjects: []string{FinalPrefix + ">"}, MaxAge: 7 * 24 * time.Hour,
				Description: "final rows of closed windows"},
		},
		Buckets: []Bucket{
			{Name: BucketWindowerState, State: true, TTL: 7 * 24 * time.Hour, Description: "windower: open windows per group key and input checkpoints"},
			{Name: BucketGeneratorState, State: true, Description: "generator: iteration counters per quickstart"},
			{Name: BucketCDCState, State: true, Description: "CDC reader: binlog positions of deleted keys"},
			{Name: BucketAlertingState, State: true, Description: "alerting: alerts sent, per rating id"},
			{Name: BucketCheckpoints, State: true, Description: "every processor's checkpoint: the newest input whose effects are durable"},
			{Name: BucketLeases, State: true, TTL: LeaseTTL, MaxBytes: 1 << 20, Description: "which instance owns which unit of work (partition, processor), renewed every second"},
			{Name: BucketPlan, State: true, Description: "the definition (fingerprint and SQL) each derived stream and table was built with"},
		},
	}
}

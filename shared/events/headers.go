// Package events holds jetsuite's event types, their JSON codecs (with ksqlDB's JSON coercion
// rules) and the message headers every service agrees on.
package events

import (
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers jetsuite reads and writes.
const (
	// HeaderEventTime is the event time in epoch milliseconds. The generator sets it, the Kafka
	// bridge copies the record timestamp into it, derived streams carry it forward.
	HeaderEventTime = "Event-Time"
	// HeaderMsgID is JetStream's de-duplication id.
	HeaderMsgID = jetstream.MsgIDHeader
	// HeaderKey carries the original (Kafka-style) record key.
	HeaderKey = "Jetsuite-Key"
	// HeaderTombstone marks a Kafka record whose value was null (a tombstone), carried by the
	// bridge as an empty message so the CDC reader can act on it.
	HeaderTombstone = "Jetsuite-Tombstone"
	// HeaderWindowKey names the row (KV key) a final or late message is about.
	HeaderWindowKey = "Jetsuite-Window-Key"
)

// CopyHeaders copies src's headers into dst, except JetStream's publish-time controls
// (Nats-Expected-*, Nats-Rollup, Nats-TTL and the like): a message carrying another's headers
// (a dead letter, a late event, a record bridged to Kafka) must not inherit the conditions its
// source was stored under.
func CopyHeaders(dst, src nats.Header) {
	for k, v := range src {
		if IsPublishControl(k) {
			continue
		}
		dst[k] = append([]string(nil), v...)
	}
}

// IsPublishControl reports whether a header is one of JetStream's publish-time controls.
func IsPublishControl(key string) bool {
	return strings.HasPrefix(key, "Nats-Expected-") || key == "Nats-Rollup" || key == "Nats-TTL" ||
		strings.HasPrefix(key, "Nats-Batch-") || key == "Nats-Required-Api-Level"
}

// EventTimeMillis returns the message's event time: the Event-Time header when it parses, else
// the JetStream timestamp at which the message was stored.
func EventTimeMillis(msg jetstream.Msg) int64 {
	if ms, ok := HeaderMillis(msg.Headers()); ok {
		return ms
	}
	if md, err := msg.Metadata(); err == nil {
		return md.Timestamp.UnixMilli()
	}
	return time.Now().UnixMilli()
}

// HeaderMillis parses the Event-Time header.
func HeaderMillis(h nats.Header) (int64, bool) {
	v := h.Get(HeaderEventTime)
	if v == "" {
		return 0, false
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false
	}
	return ms, true
}

// SourceID names an input message for de-duplication of what it causes: "<stream>:<seq>".
func SourceID(msg jetstream.Msg) string {
	md, err := msg.Metadata()
	if err != nil {
		return ""
	}
	return md.Stream + ":" + strconv.FormatUint(md.Sequence.Stream, 10)
}

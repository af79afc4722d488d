package bridge

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/pipe"
)

// A record over the NATS max payload becomes a headers-only dead letter on dlq.kafka.<topic>
// that names its topic, partition and offset (built by pipe.DeadLetterOf).
func TestTooLargeRecordDeadLettered(t *testing.T) {
	in := &inbound{s: &Service{log: testLogger(t)}, subjects: map[string]string{"ratings": "ratings"}, maxPayload: 512}
	rec := &kgo.Record{Topic: "ratings", Partition: 2, Offset: 41, Key: []byte("bin\nkey"),
		Value: []byte(strings.Repeat("x", 600)), Timestamp: time.UnixMilli(1_700_000_000_123),
		Headers: []kgo.RecordHeader{{Key: "traceId", Value: []byte("abc")}}}
	m := in.message(rec)
	if m.Subject != "dlq.kafka.ratings" || len(m.Data) != 0 {
		t.Fatalf("dead letter on %q with %d bytes of body", m.Subject, len(m.Data))
	}
	want := map[string]string{
		pipe.HeaderDLQReason:        pipe.ReasonTooLarge,
		pipe.HeaderDLQService:       "bridge",
		pipe.HeaderDLQSourceStream:  "kafka.ratings",
		pipe.HeaderDLQSourceSubject: "ratings",
		pipe.HeaderDLQSourceSeq:     "2:41",
		events.HeaderMsgID:          "dlq:bridge:kafka:ratings:2:41",
		events.HeaderEventTime:      "1700000000123",
		events.HeaderKey:            "YmluCmtleQ==", // base64("bin\nkey")
		HeaderKeyEncoding:           "base64",
	}
	for k, v := range want {
		if got := m.Header.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("header %s = %q, want [%q]", k, got, v)
		}
	}
	if e := m.Header.Get(pipe.HeaderDLQError); !strings.Contains(e, "over the NATS max payload 512") {
		t.Errorf("error header %q", e)
	}
	if m.Header.Get("traceId") != "" {
		t.Errorf("the record's other headers were copied: %v", m.Header)
	}
}

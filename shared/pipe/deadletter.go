package pipe

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// Headers on a dead-lettered message (the original headers are kept as well).
const (
	HeaderDLQReason        = "Jetsuite-Dlq-Reason" // short machine-readable reason, e.g. not_json
	HeaderDLQError         = "Jetsuite-Dlq-Error"  // the error text
	HeaderDLQService       = "Jetsuite-Dlq-Service"
	HeaderDLQSourceStream  = "Jetsuite-Dlq-Stream"
	HeaderDLQSourceSubject = "Jetsuite-Dlq-Subject"
	HeaderDLQSourceSeq     = "Jetsuite-Dlq-Sequence"
)

// KV operation marker on a bucket's stream: JetStream KV writes a delete as an empty message
// with this header ("DEL"; "PURGE" for a purge).
const (
	HeaderKVOperation = "KV-Operation"
	KVOperationDelete = "DEL"
	KVOperationPurge  = "PURGE"
)

// Reasons for dead-lettering.
const (
	ReasonNotJSON       = "not_json"
	ReasonWrongType     = "wrong_type"
	ReasonMissingField  = "missing_field"
	ReasonTooLarge      = "too_large"
	ReasonUnknownStatus = "unknown_status"
	ReasonInvalid       = "invalid"
)

// ErrTooLarge reports an input over the size limit.
var ErrTooLarge = errors.New("payload too large")

// ReasonFor classifies an error into a dead-letter reason code, by the typed errors it wraps
// (never by its text).
func ReasonFor(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, ErrTooLarge):
		return ReasonTooLarge
	case errors.Is(err, events.ErrMissingField):
		return ReasonMissingField
	case errors.Is(err, events.ErrUnknownStatus):
		return ReasonUnknownStatus
	case errors.Is(err, events.ErrNotObject), errors.Is(err, events.ErrNotJSON), errors.As(err, &syn):
		return ReasonNotJSON
	case errors.Is(err, events.ErrCoercion), errors.Is(err, events.ErrWrongType), errors.As(err, &typ):
		return ReasonWrongType
	}
	return ReasonInvalid
}

// Rejection says why an input is dead-lettered: a reason code, the error text, and headers a
// service adds (e.g. the indexer's OpenSearch status).
type Rejection struct {
	Reason string
	Error  string
	Extra  nats.Header
}

// RejectionFor is the rejection of an input that failed with err.
func RejectionFor(err error) Rejection { return Rejection{Reason: ReasonFor(err), Error: err.Error()} }

// Source is where a dead-lettered input came from: a JetStream message (SourceOf) or anything
// else, such as a Kafka record (stream "kafka:<topic>", seq its offset, ID its own id).
type Source struct {
	Stream  string
	Subject string
	Seq     uint64
	// ID makes the dead letter's Nats-Msg-Id unique per input (default "<stream>:<seq>").
	ID      string
	Headers nats.Header
	Data    []byte
}

// SourceOf describes a JetStream message as a dead-letter source.
func SourceOf(msg jetstream.Msg) Source {
	src := Source{Stream: "unknown", Subject: msg.Subject(), Headers: msg.Headers(), Data: msg.Data()}
	if md, err := msg.Metadata(); err == nil {
		src.Stream, src.Seq = md.Stream, md.Sequence.Stream
	}
	return src
}

// DeadLetterMsg builds the dead letter of a JetStream input: see DeadLetterOf.
func DeadLetterMsg(service string, msg jetstream.Msg, r Rejection, log *slog.Logger) *nats.Msg {
	return DeadLetterOf(service, SourceOf(msg), r, log)
}

// DeadLetterOf builds the message that dead-letters src on "dlq.<source stream>": the input's
// body and headers plus headers that say why and where from. It counts and logs the dead
// letter; the caller publishes the message like any other output (and acks the input only
// once it is durable).
func DeadLetterOf(service string, src Source, r Rejection, log *slog.Logger) *nats.Msg {
	out := nats.NewMsg(topology.DeadLetterPrefix + src.Stream)
	events.CopyHeaders(out.Header, src.Headers)
	out.Header.Del(HeaderKVOperation)
	text := strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, r.Error)
	if len(text) > 1024 {
		text = text[:1024] + "..."
	}
	out.Header.Set(HeaderDLQReason, r.Reason)
	out.Header.Set(HeaderDLQError, text)
	out.Header.Set(HeaderDLQService, service)
	out.Header.Set(HeaderDLQSourceStream, src.Stream)
	out.Header.Set(HeaderDLQSourceSubject, src.Subject)
	out.Header.Set(HeaderDLQSourceSeq, strconv.FormatUint(src.Seq, 10))
	for k, v := range r.Extra {
		out.Header[k] = append([]string(nil), v...)
	}
	id := src.ID
	if id == "" {
		id = src.Stream + ":" + strconv.FormatUint(src.Seq, 10)
	}
	out.Header.Set(events.HeaderMsgID, "dlq:"+service+":"+id)
	out.Data = src.Data
	obs.DeadLettered.WithLabelValues(service, src.Stream, r.Reason).Inc()
	if log == nil {
		log = slog.Default()
	}
	log.Warn("dead-lettered input", "stream", src.Stream, "seq", src.Seq, "reason", r.Reason, "err", text)
	return out
}

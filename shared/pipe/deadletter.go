package pipe

import (
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

// ReasonFor classifies a decoding error into a reason code.
func ReasonFor(err error) string {
	switch {
	case errors.Is(err, ErrTooLarge):
		return ReasonTooLarge
	case errors.Is(err, events.ErrMissingField):
		return ReasonMissingField
	case errors.Is(err, events.ErrUnknownStatus):
		return ReasonUnknownStatus
	case errors.Is(err, events.ErrNotObject), strings.HasPrefix(err.Error(), "not JSON"):
		return ReasonNotJSON
	case errors.Is(err, events.ErrCoercion), strings.HasPrefix(err.Error(), "wrong type"):
		return ReasonWrongType
	}
	return ReasonInvalid
}

// DeadLetter sends poison input to "dlq.<source stream>" with headers that say why and where it
// came from, counts it and logs it. The caller then acks or terminates the input.
type DeadLetter struct {
	Pub     *Publisher
	Service string
	Log     *slog.Logger
}

// Send dead-letters msg because of cause (its reason code from ReasonFor).
func (d DeadLetter) Send(msg jetstream.Msg, cause error) error {
	return d.Reject(msg, Rejection{Reason: ReasonFor(cause), Error: cause.Error()})
}

// Rejection says why an input is dead-lettered: a reason code, the error text, and headers a
// service adds (e.g. the indexer's OpenSearch status).
type Rejection struct {
	Reason string
	Error  string
	Extra  nats.Header
}

// Reject publishes msg's body and headers to the dead-letter stream with the rejection's
// headers (through the batch's publisher, so the caller waits for it like for any other
// output), counts it and logs it.
func (d DeadLetter) Reject(msg jetstream.Msg, r Rejection) error {
	md, _ := msg.Metadata()
	stream, seq := "unknown", uint64(0)
	if md != nil {
		stream, seq = md.Stream, md.Sequence.Stream
	}
	out := nats.NewMsg(topology.DeadLetterPrefix + stream)
	for k, v := range msg.Headers() {
		out.Header[k] = append([]string(nil), v...)
	}
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
	out.Header.Set(HeaderDLQService, d.Service)
	out.Header.Set(HeaderDLQSourceStream, stream)
	out.Header.Set(HeaderDLQSourceSubject, msg.Subject())
	out.Header.Set(HeaderDLQSourceSeq, strconv.FormatUint(seq, 10))
	for k, v := range r.Extra {
		out.Header[k] = append([]string(nil), v...)
	}
	out.Header.Set(events.HeaderMsgID, "dlq:"+d.Service+":"+stream+":"+strconv.FormatUint(seq, 10))
	out.Data = msg.Data()
	obs.DeadLettered.WithLabelValues(d.Service, stream, r.Reason).Inc()
	log := d.Log
	if log == nil {
		log = slog.Default()
	}
	log.Warn("dead-lettered input", "stream", stream, "seq", seq, "reason", r.Reason, "err", text)
	return d.Pub.Publish(out)
}

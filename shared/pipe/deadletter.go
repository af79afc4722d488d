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

// Send publishes msg's body and headers to the dead-letter stream (through the batch's
// publisher, so the caller waits for it like for any other output).
func (d DeadLetter) Send(msg jetstream.Msg, cause error) error {
	md, _ := msg.Metadata()
	stream, seq := "unknown", uint64(0)
	if md != nil {
		stream, seq = md.Stream, md.Sequence.Stream
	}
	reason := ReasonFor(cause)
	out := nats.NewMsg(topology.DeadLetterPrefix + stream)
	for k, v := range msg.Headers() {
		out.Header[k] = append([]string(nil), v...)
	}
	text := strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, cause.Error())
	if len(text) > 512 {
		text = text[:512] + "..."
	}
	out.Header.Set(HeaderDLQReason, reason)
	out.Header.Set(HeaderDLQError, text)
	out.Header.Set(HeaderDLQService, d.Service)
	out.Header.Set(HeaderDLQSourceStream, stream)
	out.Header.Set(HeaderDLQSourceSubject, msg.Subject())
	out.Header.Set(HeaderDLQSourceSeq, strconv.FormatUint(seq, 10))
	out.Header.Set(events.HeaderMsgID, "dlq:"+d.Service+":"+stream+":"+strconv.FormatUint(seq, 10))
	out.Data = msg.Data()
	obs.DeadLettered.WithLabelValues(d.Service, stream, reason).Inc()
	log := d.Log
	if log == nil {
		log = slog.Default()
	}
	log.Warn("dead-lettered input", "stream", stream, "seq", seq, "reason", reason, "err", text)
	return d.Pub.Publish(out)
}

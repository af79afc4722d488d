package enricher

import (
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// newsRouter routes the imply-news mixed stream by recordType, like the imply-news ksql
// (EXTRACTJSONFIELD(payload,'$.recordType') = 'click'): "click" records go to imply-news-clicks,
// "session" records to imply-news-sessions, bodies unchanged. Anything else is dead-lettered.
type newsRouter struct {
	*stage
	max int
}

// ErrUnknownRecordType is the dead-letter cause for a recordType other than click or session.
var ErrUnknownRecordType = fmt.Errorf("unknown recordType")

func (r *newsRouter) one(msg jetstream.Msg) error {
	data := msg.Data()
	if len(data) > r.max {
		return r.deadLetter(msg, tooLarge(len(data), r.max))
	}
	var rec struct {
		RecordType events.String `json:"recordType"`
	}
	if err := events.Decode(data, &rec); err != nil {
		return r.deadLetter(msg, err)
	}
	var subject string
	switch {
	case !rec.RecordType.Valid:
		return r.deadLetter(msg, fmt.Errorf("%w: recordType", events.ErrMissingField))
	case rec.RecordType.V == "click":
		subject = topology.SubjectImplyNewsClicks
	case rec.RecordType.V == "session":
		subject = topology.SubjectImplyNewsSession
	default:
		return r.deadLetter(msg, fmt.Errorf("%w %q", ErrUnknownRecordType, rec.RecordType.V))
	}
	// The Kafka record key (sid) travels on, like the topic's key does in the original.
	return r.emit(subject, data, msg.Headers().Get(events.HeaderKey), msg)
}

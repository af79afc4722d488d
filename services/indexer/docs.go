package indexer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/events"
)

// ExtractTSField is added to every stream document: the event time in epoch milliseconds, like
// the originals' Kafka Connect InsertField$Value timestamp.field=EXTRACT_TS, so that dashboards
// have a time field for streams.
const ExtractTSField = "EXTRACT_TS"

// kvOperationHeader marks KV deletes and purges (values "DEL", "PURGE") on a bucket's stream.
const kvOperationHeader = "KV-Operation"

// errNotObject is a message body OpenSearch could not take as a document.
var errNotObject = errors.New("not a JSON object")

// source is one thing the indexer follows: a derived stream or a table (KV bucket).
type source struct {
	Name   string // ksqlDB object name: USER_CLICKSTREAM, EVENTS_PER_MIN, ...
	Stream string // JetStream stream consumed: the stream itself, or KV_<bucket> for a table
	Table  bool
	Index  string
}

// StreamDocID is the document id of a stream message: "<stream>:<stream sequence>", the same
// value events.SourceID gives, so a replay or redelivery overwrites the same document.
func StreamDocID(stream string, seq uint64) string {
	return stream + ":" + strconv.FormatUint(seq, 10)
}

// doc turns a message of the source into a bulk operation.
func (s source) doc(msg jetstream.Msg) (op, error) {
	md, err := msg.Metadata()
	if err != nil {
		return op{}, fmt.Errorf("message metadata: %w", err)
	}
	if s.Table {
		return s.tableDoc(msg, md)
	}
	body, err := compactObject(msg.Data())
	if err != nil {
		return op{}, err
	}
	body, err = withField(body, ExtractTSField, events.EventTimeMillis(msg))
	if err != nil {
		return op{}, err
	}
	return op{Index: s.Index, ID: StreamDocID(md.Stream, md.Sequence.Stream), Body: body}, nil
}

// tableDoc makes an upsert (or delete) keyed by the KV key, versioned by the KV revision.
func (s source) tableDoc(msg jetstream.Msg, md *jetstream.MsgMetadata) (op, error) {
	prefix := "$KV." + s.Name + "."
	key, ok := strings.CutPrefix(msg.Subject(), prefix)
	if !ok || key == "" {
		return op{}, fmt.Errorf("subject %q is not a key of bucket %s", msg.Subject(), s.Name)
	}
	o := op{Index: s.Index, ID: key, Version: md.Sequence.Stream}
	switch msg.Headers().Get(kvOperationHeader) {
	case "DEL", "PURGE":
		return o, nil
	}
	body, err := compactObject(msg.Data())
	if err != nil {
		return op{}, err
	}
	o.Body = body
	return o, nil
}

// compactObject validates that data is one JSON object and returns it on one line (bulk bodies
// are newline-delimited: a pretty-printed document would break the whole request).
func compactObject(data []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errNotObject
	}
	var buf bytes.Buffer
	buf.Grow(len(trimmed) + 32)
	if err := json.Compact(&buf, trimmed); err != nil {
		return nil, fmt.Errorf("%w: %w", events.ErrNotJSON, err)
	}
	return buf.Bytes(), nil
}

// withField sets a numeric top-level field of a compact JSON object. The common case (the field
// is absent) splices it in without decoding the document.
func withField(obj []byte, name string, v int64) ([]byte, error) {
	quoted := `"` + name + `"`
	if !bytes.Contains(obj, []byte(quoted)) {
		out := make([]byte, 0, len(obj)+len(quoted)+24)
		out = append(out, '{')
		out = append(out, quoted...)
		out = append(out, ':')
		out = strconv.AppendInt(out, v, 10)
		if len(obj) > 2 { // not "{}"
			out = append(out, ',')
		}
		return append(out, obj[1:]...), nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(obj, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", events.ErrNotJSON, err)
	}
	m[name] = json.RawMessage(strconv.FormatInt(v, 10))
	return json.Marshal(m)
}

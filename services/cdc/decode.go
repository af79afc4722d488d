package cdc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/jetsuite/jetsuite/shared/events"
)

// kind is what a change event asks the table to do.
type kind int

const (
	kindIgnore   kind = iota // tombstone, schema change: nothing to do
	kindUpsert               // op r, c, u (or a flattened row)
	kindDelete               // op d (or a flattened row with __deleted=true / __op=d)
	kindTruncate             // op t
)

// change is one decoded Debezium event.
type change struct {
	kind kind
	// key is the customer id as text ("42"); empty for truncates and ignored events.
	key string
	// oldKey is set when an update moved the row to another primary key (a connector that
	// emits u with before.id != after.id; MySQL emits d + c instead, which needs nothing special).
	oldKey string
	// row holds the row's columns (after, or the flattened value) with their raw JSON values.
	row map[string]json.RawMessage
	pos position
	op  string
	// tsMs is source.ts_ms (when the change was made in the database), 0 if unknown.
	tsMs int64
	// why says why an ignored event was ignored (for the metric).
	why string
}

// Decoding errors; each dead-letters the event with its reason.
var (
	errNotJSON   = fmt.Errorf("%w: Debezium change event expected", events.ErrNotJSON)
	errUnknownOp = errors.New("unknown Debezium op")
	errNoID      = fmt.Errorf("%w: id (after.id, before.id, flattened id or Jetsuite-Key)", events.ErrMissingField)
)

// decode turns one message into a change. It accepts every form Debezium produces for MySQL
// with the JSON converter:
//
//   - the full envelope {before, after, source, op, ts_ms, transaction}, with or without the
//     JsonConverter wrapper {"schema": ..., "payload": ...};
//   - the flattened ExtractNewRecordState value (row columns at the top level plus optional
//     __deleted, __op, __source_ts_ms, __source_file, __source_pos, __source_row ...), with or
//     without the wrapper;
//   - tombstones: an empty body, a JSON null, {"schema":null,"payload":null}, or the Kafka
//     bridge's empty message with the Jetsuite-Tombstone header.
//
// tombstoneDeletes turns a keyed tombstone into a delete (for the flattened form with the
// default delete.tombstone.handling.mode=tombstone, where the tombstone is the only trace of a
// delete); by default tombstones are ignored, as the d event before them already deleted.
func decode(data []byte, h nats.Header, tombstoneDeletes bool) (change, error) {
	body := bytes.TrimSpace(data)
	if h.Get(events.HeaderTombstone) != "" || len(body) == 0 || string(body) == "null" {
		return tombstone(h, tombstoneDeletes)
	}
	if body[0] != '{' {
		return change{}, errNotJSON
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return change{}, fmt.Errorf("%w: %v", errNotJSON, err)
	}
	raw := body
	// The JsonConverter wrapper has exactly these two fields; a row never has both.
	if p, ok := obj["payload"]; ok && len(obj) == 2 {
		if _, ok := obj["schema"]; ok {
			p = bytes.TrimSpace(p)
			if len(p) == 0 || string(p) == "null" {
				return tombstone(h, tombstoneDeletes)
			}
			obj, raw = nil, p
			if err := json.Unmarshal(p, &obj); err != nil || obj == nil {
				return change{}, fmt.Errorf("%w: payload is not an object", errNotJSON)
			}
		}
	}
	if _, ok := obj["ddl"]; ok {
		// A schema change event (subject <prefix>, when include.schema.changes=true).
		return change{kind: kindIgnore, why: "schema_change"}, nil
	}
	if isEnvelope(obj) {
		return decodeEnvelope(raw, h)
	}
	return decodeFlattened(obj, h)
}

func isEnvelope(obj map[string]json.RawMessage) bool {
	if _, ok := obj["op"]; !ok {
		return false
	}
	_, a := obj["after"]
	_, b := obj["before"]
	_, s := obj["source"]
	return a || b || s
}

func tombstone(h nats.Header, tombstoneDeletes bool) (change, error) {
	if !tombstoneDeletes {
		return change{kind: kindIgnore, why: "tombstone"}, nil
	}
	key, ok := keyFromHeader(h)
	if !ok {
		return change{kind: kindIgnore, why: "tombstone_without_key"}, nil
	}
	return change{kind: kindDelete, key: key, op: "d"}, nil
}

type envelope struct {
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	Source *source         `json:"source"`
	Op     string          `json:"op"`
}

type source struct {
	File string          `json:"file"`
	Pos  json.RawMessage `json:"pos"`
	Row  json.RawMessage `json:"row"`
	TsMs json.RawMessage `json:"ts_ms"`
}

func decodeEnvelope(raw []byte, h nats.Header) (change, error) {
	var e envelope
	if err := json.Unmarshal(raw, &e); err != nil {
		return change{}, fmt.Errorf("%w: envelope: %v", errNotJSON, err)
	}
	c := change{op: e.Op}
	if e.Source != nil {
		c.pos = parsePosition(e.Source.File, e.Source.Pos, e.Source.Row)
		c.tsMs, _ = rawInt(e.Source.TsMs)
	}
	before, err := rowOf(e.Before)
	if err != nil {
		return change{}, err
	}
	after, err := rowOf(e.After)
	if err != nil {
		return change{}, err
	}
	switch e.Op {
	case "r", "c", "u":
		if after == nil {
			return change{}, fmt.Errorf("%w: op %q without after", events.ErrMissingField, e.Op)
		}
		c.kind, c.row = kindUpsert, after
		if c.key = idOf(after); c.key == "" {
			return change{}, errNoID
		}
		if old := idOf(before); e.Op == "u" && old != "" && old != c.key {
			c.oldKey = old
		}
	case "d":
		c.kind = kindDelete
		if c.key = idOf(before); c.key == "" {
			var ok bool
			if c.key, ok = keyFromHeader(h); !ok {
				return change{}, errNoID
			}
		}
	case "t":
		c.kind = kindTruncate
	default:
		return change{}, fmt.Errorf("%w %q", errUnknownOp, e.Op)
	}
	if c.kind != kindTruncate && c.key == "" {
		return change{}, errNoID
	}
	return c, nil
}

func decodeFlattened(obj map[string]json.RawMessage, h nats.Header) (change, error) {
	row := make(map[string]json.RawMessage, len(obj))
	meta := map[string]json.RawMessage{}
	for k, v := range obj {
		if strings.HasPrefix(k, "__") {
			meta[strings.ToLower(k)] = v
			continue
		}
		row[k] = v
	}
	c := change{kind: kindUpsert, row: row}
	if v, ok := meta["__op"]; ok {
		if err := json.Unmarshal(v, &c.op); err != nil {
			return change{}, fmt.Errorf("%w: __op %s", errUnknownOp, v)
		}
	}
	switch c.op {
	case "", "r", "c", "u":
	case "d":
		c.kind = kindDelete
	case "t":
		c.kind = kindTruncate
	default:
		return change{}, fmt.Errorf("%w %q (__op)", errUnknownOp, c.op)
	}
	if v, ok := meta["__deleted"]; ok && isTrue(v) {
		c.kind = kindDelete
	}
	if f, ok := meta["__source_file"]; ok {
		var file string
		_ = json.Unmarshal(f, &file)
		c.pos = parsePosition(file, meta["__source_pos"], meta["__source_row"])
	}
	c.tsMs, _ = rawInt(meta["__source_ts_ms"])
	if c.kind == kindTruncate {
		c.row = nil
		return c, nil
	}
	if c.key = idOf(row); c.key == "" {
		var ok bool
		if c.key, ok = keyFromHeader(h); !ok {
			return change{}, errNoID
		}
	}
	if c.kind == kindDelete {
		c.row = nil
	}
	return c, nil
}

// isTrue reads __deleted, which ExtractNewRecordState writes as the string "true"/"false".
func isTrue(v json.RawMessage) bool {
	s := strings.Trim(string(bytes.TrimSpace(v)), `"`)
	return strings.EqualFold(s, "true")
}

func rowOf(raw json.RawMessage) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var row map[string]json.RawMessage
	if err := json.Unmarshal(raw, &row); err != nil {
		return nil, fmt.Errorf("%w: row is not an object", errNotJSON)
	}
	return row, nil
}

// idOf returns the row's id column (any case) as decimal text, or "" when absent or not an
// integer.
func idOf(row map[string]json.RawMessage) string {
	for k, v := range row {
		if strings.EqualFold(k, "id") {
			var id events.BigInt
			if err := id.UnmarshalJSON(v); err != nil || !id.Valid {
				return ""
			}
			return strconv.FormatInt(id.V, 10)
		}
	}
	return ""
}

// keyFromHeader reads the Kafka record key the bridge carries in Jetsuite-Key: a bare id
// ("42", ExtractField$Key + StringConverter), {"id":42}, or {"schema":...,"payload":{"id":42}}.
func keyFromHeader(h nats.Header) (string, bool) {
	v := strings.TrimSpace(h.Get(events.HeaderKey))
	if v == "" {
		return "", false
	}
	if v[0] != '{' {
		var id events.BigInt
		if err := id.UnmarshalJSON([]byte(v)); err == nil && id.Valid {
			return strconv.FormatInt(id.V, 10), true
		}
		if err := id.UnmarshalJSON([]byte(strconv.Quote(v))); err == nil && id.Valid {
			return strconv.FormatInt(id.V, 10), true
		}
		return "", false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(v), &obj); err != nil {
		return "", false
	}
	if p, ok := obj["payload"]; ok {
		if err := json.Unmarshal(p, &obj); err != nil {
			return "", false
		}
	}
	k := idOf(obj)
	return k, k != ""
}

func rawInt(raw json.RawMessage) (int64, bool) {
	var v events.BigInt
	if err := v.UnmarshalJSON(raw); err != nil || !v.Valid {
		return 0, false
	}
	return v.V, true
}

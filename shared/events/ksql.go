package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The types below decode JSON the way ksqlDB's JSON format does (KsqlJsonDeserializer /
// JsonSerdeUtils): field names match case-insensitively (encoding/json does that), an INT or
// BIGINT column accepts a JSON number or a string that holds an integer ("302" -> 302), a
// VARCHAR column accepts any scalar and keeps its text (302 -> "302"), and JSON null or a
// missing field is SQL NULL. Anything else (true for an INT, "abc" for an INT, an object for a
// VARCHAR) is a decoding error, which sends the record to the dead-letter subject.

// ErrCoercion is wrapped by every coercion failure.
var ErrCoercion = errors.New("cannot coerce")

// Int is a nullable ksqlDB INT.
type Int struct {
	V     int32
	Valid bool
}

// UnmarshalJSON implements ksqlDB's INT coercion.
func (i *Int) UnmarshalJSON(b []byte) error {
	v, ok, err := parseInteger(b, math.MinInt32, math.MaxInt32, "INT")
	i.V, i.Valid = int32(v), ok
	return err
}

// MarshalJSON writes the number or null.
func (i Int) MarshalJSON() ([]byte, error) {
	if !i.Valid {
		return []byte("null"), nil
	}
	return strconv.AppendInt(nil, int64(i.V), 10), nil
}

// NewInt returns a valid Int.
func NewInt(v int32) Int { return Int{V: v, Valid: true} }

// BigInt is a nullable ksqlDB BIGINT.
type BigInt struct {
	V     int64
	Valid bool
}

// UnmarshalJSON implements ksqlDB's BIGINT coercion.
func (i *BigInt) UnmarshalJSON(b []byte) error {
	v, ok, err := parseInteger(b, math.MinInt64, math.MaxInt64, "BIGINT")
	i.V, i.Valid = v, ok
	return err
}

// MarshalJSON writes the number or null.
func (i BigInt) MarshalJSON() ([]byte, error) {
	if !i.Valid {
		return []byte("null"), nil
	}
	return strconv.AppendInt(nil, i.V, 10), nil
}

// NewBigInt returns a valid BigInt.
func NewBigInt(v int64) BigInt { return BigInt{V: v, Valid: true} }

// String is a nullable ksqlDB VARCHAR.
type String struct {
	V     string
	Valid bool
}

// UnmarshalJSON implements ksqlDB's VARCHAR coercion: strings as they are, numbers and
// booleans as their JSON text.
func (s *String) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*s = String{}
	case b[0] == '"':
		v, err := unquote(b)
		if err != nil {
			return err
		}
		*s = String{V: v, Valid: true}
	case b[0] == '{' || b[0] == '[':
		return fmt.Errorf("%w %s to VARCHAR", ErrCoercion, kind(b))
	default:
		*s = String{V: string(b), Valid: true}
	}
	return nil
}

// MarshalJSON writes the string or null.
func (s String) MarshalJSON() ([]byte, error) {
	if !s.Valid {
		return []byte("null"), nil
	}
	return json.Marshal(s.V)
}

// NewString returns a valid String.
func NewString(v string) String { return String{V: v, Valid: true} }

// Or returns the value, or def when NULL.
func (s String) Or(def string) string {
	if s.Valid {
		return s.V
	}
	return def
}

func parseInteger(b []byte, lo, hi int64, typ string) (int64, bool, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return 0, false, nil
	}
	if b[0] == '"' {
		s, err := unquote(b)
		if err != nil {
			return 0, false, err
		}
		v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || v < lo || v > hi {
			return 0, false, fmt.Errorf("%w string %q to %s", ErrCoercion, s, typ)
		}
		return v, true, nil
	}
	if b[0] != '-' && (b[0] < '0' || b[0] > '9') {
		return 0, false, fmt.Errorf("%w %s to %s", ErrCoercion, kind(b), typ)
	}
	if v, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		if v < lo || v > hi {
			return 0, false, fmt.Errorf("%w %s to %s: out of range", ErrCoercion, b, typ)
		}
		return v, true, nil
	}
	// A JSON number with a fraction or exponent: ksqlDB (Jackson's intValue) truncates it.
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f < float64(lo) || f > float64(hi) {
		return 0, false, fmt.Errorf("%w %s to %s", ErrCoercion, b, typ)
	}
	return int64(f), true, nil
}

// unquote decodes a JSON string literal; the common case (no escapes) without a second parse.
func unquote(b []byte) (string, error) {
	if len(b) >= 2 && b[len(b)-1] == '"' && bytes.IndexByte(b[1:len(b)-1], '\\') < 0 {
		return string(b[1 : len(b)-1]), nil
	}
	var s string
	err := json.Unmarshal(b, &s)
	return s, err
}

func kind(b []byte) string {
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case '"':
		return "string"
	}
	return "value"
}

package events

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Click is a record of the clickstream topic (datagen quickstart clickstream). Only the columns
// ksqlDB's CLICKSTREAM stream declares are decoded; remote_user and referrer pass through
// untouched in the original bytes.
type Click struct {
	UnderTime BigInt `json:"_time"`
	Time      String `json:"time"`
	IP        String `json:"ip"`
	Request   String `json:"request"`
	Status    Int    `json:"status"`
	UserID    Int    `json:"userid"`
	Bytes     BigInt `json:"bytes"`
	Agent     String `json:"agent"`
}

// Validation errors. Each names the reason a record is dead-lettered.
var (
	ErrMissingField  = errors.New("missing required field")
	ErrUnknownStatus = errors.New("unknown status code")
	ErrNotObject     = errors.New("not a JSON object")
	// ErrNotJSON: the input is not valid JSON.
	ErrNotJSON = errors.New("not JSON")
	// ErrWrongType: a field's value has a type ksqlDB's coercion rules do not accept.
	ErrWrongType = errors.New("wrong type")
)

// DecodeClick decodes and validates a click. ip, userid and status are required (they are the
// join and group keys); status must be an HTTP status code (100..599).
func DecodeClick(data []byte) (Click, error) {
	var c Click
	err := scanObject(data, func(key, v []byte) error {
		var err error
		switch {
		case keyIs(key, "ip"):
			err = c.IP.UnmarshalJSON(v)
		case keyIs(key, "userid"):
			err = c.UserID.UnmarshalJSON(v)
		case keyIs(key, "status"):
			err = c.Status.UnmarshalJSON(v)
		case keyIs(key, "request"):
			err = c.Request.UnmarshalJSON(v)
		case keyIs(key, "bytes"):
			err = c.Bytes.UnmarshalJSON(v)
		case keyIs(key, "time"):
			err = c.Time.UnmarshalJSON(v)
		case keyIs(key, "_time"):
			err = c.UnderTime.UnmarshalJSON(v)
		case keyIs(key, "agent"):
			err = c.Agent.UnmarshalJSON(v)
		default:
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrWrongType, key, err)
		}
		return nil
	})
	if err != nil {
		return c, err
	}
	switch {
	case !c.IP.Valid:
		return c, fmt.Errorf("%w: ip", ErrMissingField)
	case !c.UserID.Valid:
		return c, fmt.Errorf("%w: userid", ErrMissingField)
	case !c.Status.Valid:
		return c, fmt.Errorf("%w: status", ErrMissingField)
	case c.Status.V < 100 || c.Status.V > 599:
		return c, fmt.Errorf("%w: %d is not an HTTP status", ErrUnknownStatus, c.Status.V)
	}
	return c, nil
}

// StatusCode is a record of clickstream_codes: TABLE CLICKSTREAM_CODES (code INT PRIMARY KEY).
type StatusCode struct {
	Code       Int    `json:"code"`
	Definition String `json:"definition"`
}

// DecodeStatusCode decodes a status code row; code is required.
func DecodeStatusCode(data []byte) (StatusCode, error) {
	var c StatusCode
	if err := decodeObject(data, &c); err != nil {
		return c, err
	}
	if !c.Code.Valid {
		return c, fmt.Errorf("%w: code", ErrMissingField)
	}
	return c, nil
}

// WebUser is a record of clickstream_users: TABLE WEB_USERS (user_id INT PRIMARY KEY).
type WebUser struct {
	UserID       Int    `json:"user_id"`
	RegisteredAt BigInt `json:"registered_at"`
	Username     String `json:"username"`
	FirstName    String `json:"first_name"`
	LastName     String `json:"last_name"`
	City         String `json:"city"`
	Level        String `json:"level"`
}

// DecodeWebUser decodes a user row; user_id is required.
func DecodeWebUser(data []byte) (WebUser, error) {
	var u WebUser
	if err := decodeObject(data, &u); err != nil {
		return u, err
	}
	if !u.UserID.Valid {
		return u, fmt.Errorf("%w: user_id", ErrMissingField)
	}
	return u, nil
}

// Decode decodes any jetsuite row type (used for derived streams, whose producer is jetsuite).
func Decode(data []byte, v any) error { return decodeObject(data, v) }

func decodeObject(data []byte, v any) error {
	i := 0
	for i < len(data) && (data[i] == ' ' || data[i] == '\n' || data[i] == '\t' || data[i] == '\r') {
		i++
	}
	if i == len(data) || data[i] != '{' {
		return ErrNotObject
	}
	if err := json.Unmarshal(data, v); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return fmt.Errorf("%w: %w", ErrNotJSON, err)
		}
		return fmt.Errorf("%w: %w", ErrWrongType, err)
	}
	return nil
}

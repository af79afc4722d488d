package enricher

import (
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// userRow is what USER_CLICKSTREAM needs of a WEB_USERS row, JSON-encoded once when the row
// arrives (not once per click).
type userRow struct {
	key      string // user_id as text: the output's Jetsuite-Key
	username []byte // JSON value of USERNAME (a string or null)
	city     []byte // JSON value of CITY
}

func decodeUserRow(key string, value []byte) (userRow, error) {
	var u events.WebUser
	if err := events.Decode(value, &u); err != nil {
		return userRow{}, err
	}
	return userRow{
		key:      key,
		username: appendNullString(nil, u.Username),
		city:     appendNullString(nil, u.City),
	}, nil
}

// codeRow is a CLICKSTREAM_CODES row with its whole ENRICHED_ERROR_CODES output pre-encoded:
// every click with this status produces exactly these bytes.
type codeRow struct {
	key string
	out []byte
}

func decodeCodeRow(key string, value []byte) (codeRow, error) {
	var c events.StatusCode
	if err := events.Decode(value, &c); err != nil {
		return codeRow{}, err
	}
	code, err := strconv.ParseInt(key, 10, 32)
	if err != nil {
		// ksqlDB's key is the code column; a key that is not an INT cannot match a status.
		return codeRow{}, err
	}
	return codeRow{key: key, out: enrichedErrorCode(nil, int32(code), c.Definition)}, nil
}

func enrichedErrorCode(b []byte, code int32, definition events.String) []byte {
	b = append(b, `{"CODE":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"DEFINITION":`...)
	b = appendNullString(b, definition)
	return append(b, '}')
}

// clickJoiner produces USER_CLICKSTREAM and ENRICHED_ERROR_CODES from CLICKSTREAM:
//
//	USER_CLICKSTREAM     = clickstream c LEFT JOIN WEB_USERS u ON c.userid = u.user_id
//	                       (USERID, USERNAME, IP, CITY, REQUEST, STATUS, BYTES; key userid)
//	ENRICHED_ERROR_CODES = clickstream LEFT JOIN CLICKSTREAM_CODES ON status = code
//	                       (CODE, DEFINITION; key status; every click, not only errors)
//
// Each click yields one row of each, in input order.
type clickJoiner struct {
	*stage
	users  *View[userRow]
	codes  *View[codeRow]
	max    int
	keyBuf []byte
}

func (j *clickJoiner) one(msg jetstream.Msg) error {
	data := msg.Data()
	if len(data) > j.max {
		return j.deadLetter(msg, tooLarge(len(data), j.max))
	}
	c, err := events.DecodeClick(data)
	if err != nil {
		return j.deadLetter(msg, err)
	}

	// USER_CLICKSTREAM
	j.keyBuf = strconv.AppendInt(j.keyBuf[:0], int64(c.UserID.V), 10)
	u, found := j.users.GetBytes(j.keyBuf)
	start := len(j.arena)
	b := append(j.arena, `{"USERID":`...)
	b = append(b, j.keyBuf...)
	b = append(b, `,"USERNAME":`...)
	if found {
		b = append(b, u.username...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"IP":`...)
	b = appendNullString(b, c.IP)
	b = append(b, `,"CITY":`...)
	if found {
		b = append(b, u.city...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"REQUEST":`...)
	b = appendNullString(b, c.Request)
	b = append(b, `,"STATUS":`...)
	b = strconv.AppendInt(b, int64(c.Status.V), 10)
	b = append(b, `,"BYTES":`...)
	b = appendBigInt(b, c.Bytes)
	b = append(b, '}')
	j.arena = b
	userKey := u.key
	if !found {
		userKey = string(j.keyBuf)
	}
	if err := j.emit(topology.StreamUserClickstream, b[start:len(b):len(b)], userKey, msg); err != nil {
		return err
	}

	// ENRICHED_ERROR_CODES
	j.keyBuf = strconv.AppendInt(j.keyBuf[:0], int64(c.Status.V), 10)
	code, found := j.codes.GetBytes(j.keyBuf)
	if found {
		return j.emit(topology.StreamEnrichedErrorCodes, code.out, code.key, msg)
	}
	start = len(j.arena)
	j.arena = enrichedErrorCode(j.arena, c.Status.V, events.String{})
	return j.emit(topology.StreamEnrichedErrorCodes, j.arena[start:len(j.arena):len(j.arena)], string(j.keyBuf), msg)
}

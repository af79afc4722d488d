package enricher

import (
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// customerRow is what RATINGS_WITH_CUSTOMER_DATA needs of a CUSTOMERS row: whether the WHERE
// clause (first_name IS NOT NULL) lets it through, and the output's customer columns
// (ID, FULL_NAME, CLUB_STATUS, EMAIL) JSON-encoded once when the row arrives.
type customerRow struct {
	named bool
	tail  []byte // `,"ID":…,"FULL_NAME":…,"CLUB_STATUS":…,"EMAIL":…}`
}

func decodeCustomerRow(key string, value []byte) (customerRow, error) {
	var c events.Customer
	if err := events.Decode(value, &c); err != nil {
		return customerRow{}, err
	}
	b := append([]byte(nil), `,"ID":`...)
	if c.ID.Valid {
		b = appendInt(b, c.ID)
	} else {
		b = append(b, key...) // the row's key is its id (the CDC reader writes it so)
	}
	b = append(b, `,"FULL_NAME":`...)
	b = appendNullString(b, fullName(c.FirstName, c.LastName))
	b = append(b, `,"CLUB_STATUS":`...)
	b = appendNullString(b, c.ClubStatus)
	b = append(b, `,"EMAIL":`...)
	b = appendNullString(b, c.Email)
	b = append(b, '}')
	return customerRow{named: c.FirstName.Valid, tail: b}, nil
}

// fullName is first_name + ' ' + last_name. ksqlDB's + yields NULL when last_name is NULL; a row
// that passed WHERE first_name IS NOT NULL would then lose its name, and with it its group in
// RATINGS_PER_CUSTOMER_PER_15MINUTE (NULL keys are dropped) and its name in the Slack alert.
// jetsuite deliberately keeps the first name alone in that case (documented in the README).
func fullName(first, last events.String) events.String {
	switch {
	case !first.Valid:
		return events.String{}
	case !last.Valid:
		return first
	}
	return events.NewString(first.V + " " + last.V)
}

// ratingsJoiner splits RATINGS into RATINGS_LIVE / RATINGS_TEST and joins it with CUSTOMERS:
//
//	RATINGS_LIVE = SELECT RATING_ID, USER_ID, STARS, CHANNEL, MESSAGE FROM RATINGS
//	               WHERE LCASE(CHANNEL) NOT LIKE '%test%'
//	RATINGS_TEST = the same with LIKE '%test%'
//	RATINGS_WITH_CUSTOMER_DATA = SELECT R.RATING_ID, R.MESSAGE, R.STARS, R.CHANNEL, C.ID,
//	               C.FIRST_NAME + ' ' + C.LAST_NAME AS FULL_NAME, C.CLUB_STATUS, C.EMAIL
//	               FROM RATINGS R LEFT JOIN CUSTOMERS C ON R.USER_ID = C.ID
//	               WHERE C.FIRST_NAME IS NOT NULL
//
// The join reads all ratings, as the 2021 ksqldb-statements.sql does (its adoc joins
// RATINGS_LIVE instead), so test-channel ratings are enriched too.
type ratingsJoiner struct {
	*stage
	customers *View[customerRow]
	max       int
	keyBuf    []byte

	noCustomer, noFirstName, nullChannelLive, nullChannelTest prometheus.Counter
}

func newRatingsJoiner(st *stage, customers *View[customerRow], max int) *ratingsJoiner {
	return &ratingsJoiner{
		stage: st, customers: customers, max: max,
		noCustomer:      obs.Dropped.WithLabelValues(topology.StreamRatingsWithCustomerData, "no_customer"),
		noFirstName:     obs.Dropped.WithLabelValues(topology.StreamRatingsWithCustomerData, "null_first_name"),
		nullChannelLive: obs.Dropped.WithLabelValues(topology.StreamRatingsLive, "null_channel"),
		nullChannelTest: obs.Dropped.WithLabelValues(topology.StreamRatingsTest, "null_channel"),
	}
}

// isTest is LCASE(channel) LIKE '%test%'.
func isTest(channel string) bool { return strings.Contains(strings.ToLower(channel), "test") }

func (j *ratingsJoiner) one(msg jetstream.Msg) error {
	data := msg.Data()
	if len(data) > j.max {
		return j.deadLetter(msg, tooLarge(len(data), j.max))
	}
	r, err := events.DecodeRating(data)
	if err != nil {
		return j.deadLetter(msg, err)
	}
	ratingKey := strconv.FormatInt(r.RatingID.V, 10)

	// RATINGS_LIVE / RATINGS_TEST. A NULL channel satisfies neither predicate (SQL NULL).
	if r.Channel.Valid {
		start := len(j.arena)
		b := append(j.arena, `{"RATING_ID":`...)
		b = appendBigInt(b, r.RatingID)
		b = append(b, `,"USER_ID":`...)
		b = appendInt(b, r.UserID)
		b = append(b, `,"STARS":`...)
		b = appendInt(b, r.Stars)
		b = append(b, `,"CHANNEL":`...)
		b = appendNullString(b, r.Channel)
		b = append(b, `,"MESSAGE":`...)
		b = appendNullString(b, r.Message)
		b = append(b, '}')
		j.arena = b
		subject := topology.StreamRatingsLive
		if isTest(r.Channel.V) {
			subject = topology.StreamRatingsTest
		}
		if err := j.emit(subject, b[start:len(b):len(b)], ratingKey, msg); err != nil {
			return err
		}
	} else {
		j.nullChannelLive.Inc()
		j.nullChannelTest.Inc()
	}

	// RATINGS_WITH_CUSTOMER_DATA
	var c customerRow
	found := false
	if r.UserID.Valid {
		j.keyBuf = strconv.AppendInt(j.keyBuf[:0], int64(r.UserID.V), 10)
		c, found = j.customers.GetBytes(j.keyBuf)
	}
	switch {
	case !found:
		j.noCustomer.Inc()
		return nil
	case !c.named:
		j.noFirstName.Inc()
		return nil
	}
	start := len(j.arena)
	b := append(j.arena, `{"RATING_ID":`...)
	b = appendBigInt(b, r.RatingID)
	b = append(b, `,"MESSAGE":`...)
	b = appendNullString(b, r.Message)
	b = append(b, `,"STARS":`...)
	b = appendInt(b, r.Stars)
	b = append(b, `,"CHANNEL":`...)
	b = appendNullString(b, r.Channel)
	b = append(b, c.tail...)
	j.arena = b
	return j.emit(topology.StreamRatingsWithCustomerData, b[start:len(b):len(b)], string(j.keyBuf), msg)
}

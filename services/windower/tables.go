package windower

import (
	"strconv"
	"strings"
	"time"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// Kind is a window type, as ksqlDB's WINDOW clause names them.
type Kind int

// Window kinds.
const (
	Tumbling Kind = iota
	Hopping
	Session
)

func (k Kind) String() string {
	return [...]string{"TUMBLING", "HOPPING", "SESSION"}[k]
}

// Window is a window definition. Tumbling and hopping windows are aligned to the epoch and
// half-open [start, end); session windows span their first to their last event, both included,
// and merge when an event falls within Gap of them.
type Window struct {
	Kind    Kind
	Size    time.Duration // tumbling, hopping
	Advance time.Duration // hopping
	Gap     time.Duration // session
}

// Column is one key column of a table row: its name and its JSON value.
type Column struct {
	Name string `json:"n"`
	JSON string `json:"v"`
}

// Table is one windowed ksqlDB table: count(*) (and optionally collect_list) per group key and
// window, over one source stream, after a WHERE filter, with an optional HAVING count > N.
type Table struct {
	Name   string // KV bucket, = the ksqlDB table name
	Source string // input stream
	Window Window
	// Where filters records (nil: every record).
	Where func(*Record) bool
	// GroupBy returns the key columns; ok=false when a key column is NULL (ksqlDB drops the row).
	GroupBy func(*Record) (cols []Column, ok bool)
	// HavingCountAbove keeps only rows whose count is above it (-1: no HAVING clause).
	HavingCountAbove int64
	// CountColumn names the count(*) column.
	CountColumn string
	// ListColumn, when set, names a COLLECT_LIST(STARS) column.
	ListColumn string
	// EventTSIsEnd makes EVENT_TS the window end instead of its start (CLICK_USER_SESSIONS).
	EventTSIsEnd bool
}

// Record is one decoded input, of whichever source stream it came from.
type Record struct {
	Click     events.Click
	UserClick events.UserClick
	Code      events.EnrichedErrorCode
	Rating    events.RatingWithCustomer
}

func intCol(name string, v events.Int) (Column, bool) {
	return Column{name, strconv.FormatInt(int64(v.V), 10)}, v.Valid
}

func strCol(name string, v events.String) (Column, bool) {
	return Column{name, strconv.Quote(v.V)}, v.Valid
}

func cols(cs ...func() (Column, bool)) ([]Column, bool) {
	out := make([]Column, 0, len(cs))
	for _, c := range cs {
		col, ok := c()
		if !ok {
			return nil, false
		}
		out = append(out, col)
	}
	return out, true
}

// Tables returns the windowed tables of both pipelines, as statements.sql and
// ksqldb-statements.sql declare them.
func Tables() []Table {
	const noHaving = -1
	min1 := time.Minute
	return []Table{
		{
			Name: topology.TableEventsPerMin, Source: topology.StreamClickstream,
			Window: Window{Kind: Tumbling, Size: min1},
			GroupBy: func(r *Record) ([]Column, bool) {
				return cols(func() (Column, bool) { return intCol("USERID", r.Click.UserID) })
			},
			HavingCountAbove: noHaving, CountColumn: "EVENTS",
		},
		{
			Name: topology.TablePagesPerMin, Source: topology.StreamClickstream,
			Window: Window{Kind: Hopping, Size: min1, Advance: 5 * time.Second},
			Where:  func(r *Record) bool { return strings.Contains(r.Click.Request.V, "html") },
			GroupBy: func(r *Record) ([]Column, bool) {
				return cols(func() (Column, bool) { return intCol("USERID", r.Click.UserID) })
			},
			HavingCountAbove: noHaving, CountColumn: "PAGES",
		},
		{
			Name: topology.TableErrorsPerMin, Source: topology.StreamClickstream,
			Window: Window{Kind: Hopping, Size: min1, Advance: 5 * time.Second},
			Where:  func(r *Record) bool { return r.Click.Status.Valid && r.Click.Status.V > 400 },
			GroupBy: func(r *Record) ([]Column, bool) {
				return cols(func() (Column, bool) { return intCol("STATUS", r.Click.Status) })
			},
			HavingCountAbove: noHaving, CountColumn: "ERRORS",
		},
		{
			Name: topology.TableErrorsPerMinAlert, Source: topology.StreamClickstream,
			Window: Window{Kind: Hopping, Size: min1, Advance: 20 * time.Second},
			Where:  func(r *Record) bool { return r.Click.Status.Valid && r.Click.Status.V > 400 },
			GroupBy: func(r *Record) ([]Column, bool) {
				return cols(func() (Column, bool) { return intCol("STATUS", r.Click.Status) })
			},
			HavingCountAbove: 5, CountColumn: "ERRORS",
		},
		{
			Name: topology.TableClickUserSessions, Source: topology.StreamUserClickstream,
			Window: Window{Kind: Session, Gap: 30 * time.Second},
			GroupBy: func(r *Record) ([]Column, bool) {
				return cols(func() (Column, bool) { return strCol("USERNAME", r.UserClick.Username) })
			},
			HavingCountAbove: noHaving, CountColumn: "EVENTS", EventTSIsEnd: true,
		},
		{
			Name: topology.TableEnrichedErrorCodesCount, Source: topology.StreamEnrichedErrorCodes,
			Window: Window{Kind: Tumbling, Size: 30 * time.Second},
			GroupBy: func(r *Record) ([]Column, bool) {
				return cols(
					func() (Column, bool) { return intCol("CODE", r.Code.Code) },
					func() (Column, bool) { return strCol("DEFINITION", r.Code.Definition) },
				)
			},
			HavingCountAbove: 1, CountColumn: "COUNT",
		},
		{
			Name: topology.TableUserIPActivity, Source: topology.StreamUserClickstream,
			Window: Window{Kind: Tumbling, Size: min1},
			GroupBy: func(r *Record) ([]Column, bool) {
				return cols(
					func() (Column, bool) { return strCol("USERNAME", r.UserClick.Username) },
					func() (Column, bool) { return strCol("IP", r.UserClick.IP) },
					func() (Column, bool) { return strCol("CITY", r.UserClick.City) },
				)
			},
			HavingCountAbove: 1, CountColumn: "COUNT",
		},
		{
			Name: topology.TableRatingsPerCustomerPer15Minute, Source: topology.StreamRatingsWithCustomerData,
			Window: Window{Kind: Tumbling, Size: 15 * time.Minute},
			GroupBy: func(r *Record) ([]Column, bool) {
				return cols(func() (Column, bool) { return strCol("FULL_NAME", r.Rating.FullName) })
			},
			HavingCountAbove: noHaving, CountColumn: "RATINGS_COUNT", ListColumn: "RATINGS",
		},
	}
}

// decode decodes a message of the given source stream into r.
func decode(source string, data []byte, r *Record) error {
	switch source {
	case topology.StreamClickstream:
		c, err := events.DecodeClick(data)
		r.Click = c
		return err
	case topology.StreamUserClickstream:
		u, err := events.DecodeUserClick(data)
		r.UserClick = u
		return err
	case topology.StreamEnrichedErrorCodes:
		c, err := events.DecodeEnrichedErrorCode(data)
		r.Code = c
		return err
	case topology.StreamRatingsWithCustomerData:
		return events.Decode(data, &r.Rating)
	}
	return nil
}

// listValue is the value a COLLECT_LIST column collects from a record.
func listValue(r *Record) (int32, bool) { return r.Rating.Stars.V, r.Rating.Stars.Valid }

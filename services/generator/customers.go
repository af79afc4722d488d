package generator

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The customers source speaks Debezium: MySQL connector change events of demo.CUSTOMERS as
// Debezium Server's NATS JetStream sink publishes them (subject asgard.demo.CUSTOMERS, value
// only, no key): a snapshot of the demo's 20 rows (op r) on first start, then the demo's
// scripted changes (Rick Astley, customer 2), then occasional random updates.

// Debezium identity of the simulated connector (topic.prefix asgard, server.id of the MySQL
// server in debezium/example-mysql).
const (
	DebeziumVersion = "2.7.3.Final"
	DebeziumName    = "asgard"
	DebeziumDB      = "demo"
	DebeziumTable   = "CUSTOMERS"
	mysqlServerID   = 223344
	binlogFile      = "mysql-bin.000003"
	// snapshotPos is the binlog position the snapshot reads (SHOW MASTER STATUS); every
	// snapshot record carries it, as Debezium's do.
	snapshotPos  = 154
	mysqlThread  = 7
	seedRowCount = 20
)

// CustomerRow is a row of demo.CUSTOMERS as Debezium serialises it (before/after). Nullable
// columns are pointers; TIMESTAMP columns are io.debezium.time.ZonedTimestamp strings (UTC).
type CustomerRow struct {
	ID         int     `json:"id"`
	FirstName  *string `json:"first_name"`
	LastName   *string `json:"last_name"`
	Email      *string `json:"email"`
	Gender     *string `json:"gender"`
	ClubStatus *string `json:"club_status"`
	Comments   *string `json:"comments"`
	CreateTS   *string `json:"create_ts"`
	UpdateTS   *string `json:"update_ts"`
}

// DebeziumSource is the source block of a MySQL change event, fields in Debezium's order.
type DebeziumSource struct {
	Version   string  `json:"version"`
	Connector string  `json:"connector"`
	Name      string  `json:"name"`
	TsMs      int64   `json:"ts_ms"`
	Snapshot  string  `json:"snapshot"`
	DB        string  `json:"db"`
	Sequence  *string `json:"sequence"`
	TsUs      int64   `json:"ts_us"`
	TsNs      int64   `json:"ts_ns"`
	Table     string  `json:"table"`
	ServerID  int64   `json:"server_id"`
	GTID      *string `json:"gtid"`
	File      string  `json:"file"`
	Pos       int64   `json:"pos"`
	Row       int     `json:"row"`
	Thread    *int64  `json:"thread"`
	Query     *string `json:"query"`
}

// DebeziumEnvelope is a change event value (JsonConverter payload), fields in Debezium's order.
type DebeziumEnvelope struct {
	Before      *CustomerRow    `json:"before"`
	After       *CustomerRow    `json:"after"`
	Source      DebeziumSource  `json:"source"`
	Transaction json.RawMessage `json:"transaction"`
	Op          string          `json:"op"`
	TsMs        int64           `json:"ts_ms"`
	TsUs        int64           `json:"ts_us"`
	TsNs        int64           `json:"ts_ns"`
}

var jsonNull = json.RawMessage("null")

// seedCustomers is customers.sql's INSERT (seed-inventory C.2): id, first_name, last_name,
// email, gender, club_status, comments.
var seedCustomers = [seedRowCount][6]string{
	{"Rica", "Blaisdell", "rblaisdell0@rambler.ru", "Female", "bronze", "Universal optimal hierarchy"},
	{"Ruthie", "Brockherst", "rbrockherst1@ow.ly", "Female", "platinum", "Reverse-engineered tangible interface"},
	{"Mariejeanne", "Cocci", "mcocci2@techcrunch.com", "Female", "bronze", "Multi-tiered bandwidth-monitored capability"},
	{"Hashim", "Rumke", "hrumke3@sohu.com", "Male", "platinum", "Self-enabling 24/7 firmware"},
	{"Hansiain", "Coda", "hcoda4@senate.gov", "Male", "platinum", "Centralized full-range approach"},
	{"Robinet", "Leheude", "rleheude5@reddit.com", "Female", "platinum", "Virtual upward-trending definition"},
	{"Fay", "Huc", "fhuc6@quantcast.com", "Female", "bronze", "Operative composite capacity"},
	{"Patti", "Rosten", "prosten7@ihg.com", "Female", "silver", "Integrated bandwidth-monitored instruction set"},
	{"Even", "Tinham", "etinham8@facebook.com", "Male", "silver", "Virtual full-range info-mediaries"},
	{"Brena", "Tollerton", "btollerton9@furl.net", "Female", "silver", "Diverse tangible methodology"},
	{"Alexandro", "Peeke-Vout", "apeekevouta@freewebs.com", "Male", "gold", "Ameliorated value-added orchestration"},
	{"Sheryl", "Hackwell", "shackwellb@paginegialle.it", "Female", "gold", "Self-enabling global parallelism"},
	{"Laney", "Toopin", "ltoopinc@icio.us", "Female", "platinum", "Phased coherent alliance"},
	{"Isabelita", "Talboy", "italboyd@imageshack.us", "Female", "gold", "Cloned transitional synergy"},
	{"Rodrique", "Silverton", "rsilvertone@umn.edu", "Male", "gold", "Re-engineered static application"},
	{"Clair", "Vardy", "cvardyf@reverbnation.com", "Male", "bronze", "Expanded bottom-line Graphical User Interface"},
	{"Brianna", "Paradise", "bparadiseg@nifty.com", "Female", "bronze", "Open-source global toolset"},
	{"Waldon", "Keddey", "wkeddeyh@weather.com", "Male", "gold", "Business-focused multi-state functionalities"},
	{"Josiah", "Brockett", "jbrocketti@com.com", "Male", "gold", "Realigned didactic info-mediaries"},
	{"Anselma", "Rook", "arookj@europa.eu", "Female", "gold", "Cross-group 24/7 application"},
}

var clubStatuses = [...]string{"bronze", "silver", "gold", "platinum"}

// scriptStep is one of the demo's SQL statements against CUSTOMERS.
type scriptStep struct {
	id     int
	column string // "" for the INSERT
	value  string
	// wait is the delay before this step, in units of the configured step interval.
	wait int
}

// customerScript is the demo's sequence (build-a-streaming-pipeline): INSERT Rick Astley with
// only his name, give him an email, make him bronze then platinum; make customer 2 bronze and,
// a while later, platinum again.
var customerScript = [scriptSteps]scriptStep{
	{id: 42, wait: 1},
	{id: 42, column: "email", value: "rick@example.com", wait: 1},
	{id: 42, column: "club_status", value: "bronze", wait: 1},
	{id: 42, column: "club_status", value: "platinum", wait: 1},
	{id: 2, column: "club_status", value: "bronze", wait: 1},
	{id: 2, column: "club_status", value: "platinum", wait: 4},
}

// CustomerEvents is how many events the snapshot and the script produce together; events from
// here on are random updates.
const CustomerEvents = seedRowCount + scriptSteps

const scriptSteps = 6

// Customers simulates MySQL + Debezium for demo.CUSTOMERS. Event n is a function of the seed,
// n and the table's state (the before image); exported fields are the state that survives a
// restart.
type Customers struct {
	Seed uint64 `json:"-"`
	// Step is the time between scripted changes; UpdateEvery between random updates.
	Step        time.Duration `json:"-"`
	UpdateEvery time.Duration `json:"-"`

	// Epoch (ms) is when this table was seeded; it scopes message ids, so that a re-snapshot
	// after the state was lost is new data, not a duplicate.
	Epoch int64 `json:"epoch"`
	// File and Pos are the binlog coordinates of the next change.
	File string              `json:"file"`
	Pos  int64               `json:"pos"`
	Rows map[int]CustomerRow `json:"rows"`
}

// RotateAfter makes the table's binlog continue in the file after last ("mysql-bin.000003" ->
// "mysql-bin.000004"), as a restarted MySQL does. A fresh table (state lost) whose subject still
// holds older events starts there, so that its snapshot is newer than everything before it.
func (c *Customers) RotateAfter(last string) bool {
	i := strings.LastIndexByte(last, '.')
	num, err := strconv.Atoi(last[i+1:])
	if i < 0 || err != nil {
		return false
	}
	c.File = fmt.Sprintf("%s.%0*d", last[:i], len(last)-i-1, num+1)
	return true
}

// Delay is how long to wait before event n once event n-1 was emitted.
func (c *Customers) Delay(n uint64) time.Duration {
	switch {
	case n < seedRowCount:
		return 0
	case n < CustomerEvents:
		return time.Duration(customerScript[n-seedRowCount].wait) * c.Step
	default:
		return c.UpdateEvery
	}
}

func strp(s string) *string { return &s }

func zoned(t time.Time) *string { return strp(t.UTC().Truncate(time.Second).Format(time.RFC3339)) }

// Next returns change event n at wall-clock time now and applies it to the table.
func (c *Customers) Next(n uint64, now time.Time) DebeziumEnvelope {
	if c.Rows == nil {
		c.Rows = map[int]CustomerRow{}
	}
	if c.Epoch == 0 {
		c.Epoch = now.UnixMilli()
	}
	if c.File == "" {
		c.File = binlogFile
	}
	if n < seedRowCount {
		return c.snapshot(n, now)
	}
	var before, after *CustomerRow
	op := "u"
	if n < CustomerEvents {
		st := customerScript[n-seedRowCount]
		if st.column == "" {
			op = "c"
			after = &CustomerRow{ID: st.id, FirstName: strp("Rick"), LastName: strp("Astley"),
				CreateTS: zoned(now), UpdateTS: zoned(now)}
		} else {
			before, after = c.update(st.id, st.column, st.value, now)
		}
	} else {
		r := rngFor(c.Seed, saltCustomers, n)
		id := 1 + r.IntN(seedRowCount)
		row := c.Rows[id]
		if r.IntN(5) < 4 {
			cur := ""
			if row.ClubStatus != nil {
				cur = *row.ClubStatus
			}
			next := cur
			for next == cur {
				next = pick(r, clubStatuses[:])
			}
			before, after = c.update(id, "club_status", next, now)
		} else {
			before, after = c.update(id, "comments", seedCustomers[r.IntN(seedRowCount)][5], now)
		}
	}
	c.Rows[after.ID] = *after
	// A row event's position: MySQL's binlog grows by the event's size, roughly the row images.
	pos := c.Pos
	c.Pos += 150 + rowSize(before) + rowSize(after)
	// The binlog event header has second precision, so source.ts_ms of a change is whole seconds.
	changed := now.Truncate(time.Second)
	thread := int64(mysqlThread)
	return DebeziumEnvelope{
		Before: before, After: after, Op: op, Transaction: jsonNull,
		Source: c.source(changed, "false", pos, &thread),
		TsMs:   now.UnixMilli(), TsUs: now.UnixMicro(), TsNs: now.UnixNano(),
	}
}

func (c *Customers) snapshot(n uint64, now time.Time) DebeziumEnvelope {
	seeded := time.UnixMilli(c.Epoch)
	s := seedCustomers[n]
	row := CustomerRow{ID: int(n) + 1, FirstName: strp(s[0]), LastName: strp(s[1]), Email: strp(s[2]),
		Gender: strp(s[3]), ClubStatus: strp(s[4]), Comments: strp(s[5]),
		CreateTS: zoned(seeded), UpdateTS: zoned(seeded)}
	c.Rows[row.ID] = row
	// Debezium marks the first and last snapshot records; every other one says "true".
	mark := "true"
	switch n {
	case 0:
		mark = "first"
	case seedRowCount - 1:
		mark = "last"
		// Streaming continues after the snapshot's binlog position.
		c.Pos = snapshotPos + 65
	}
	return DebeziumEnvelope{
		After: &row, Op: "r", Transaction: jsonNull,
		Source: c.source(now, mark, snapshotPos, nil),
		TsMs:   now.UnixMilli(), TsUs: now.UnixMicro(), TsNs: now.UnixNano(),
	}
}

func (c *Customers) update(id int, column, value string, now time.Time) (before, after *CustomerRow) {
	old, ok := c.Rows[id]
	if !ok {
		old = CustomerRow{ID: id, CreateTS: zoned(now)}
	}
	b, a := old, old
	switch column {
	case "email":
		a.Email = strp(value)
	case "club_status":
		a.ClubStatus = strp(value)
	case "comments":
		a.Comments = strp(value)
	default:
		panic(fmt.Sprintf("generator: no column %q", column))
	}
	// update_ts is ON UPDATE CURRENT_TIMESTAMP.
	a.UpdateTS = zoned(now)
	return &b, &a
}

func (c *Customers) source(t time.Time, snapshot string, pos int64, thread *int64) DebeziumSource {
	return DebeziumSource{
		Version: DebeziumVersion, Connector: "mysql", Name: DebeziumName,
		TsMs: t.UnixMilli(), TsUs: t.UnixMicro(), TsNs: t.UnixNano(),
		Snapshot: snapshot, DB: DebeziumDB, Table: DebeziumTable, ServerID: mysqlServerID,
		File: c.File, Pos: pos, Row: 0, Thread: thread,
	}
}

func rowSize(r *CustomerRow) int64 {
	if r == nil {
		return 0
	}
	n := int64(4)
	for _, s := range []*string{r.FirstName, r.LastName, r.Email, r.Gender, r.ClubStatus, r.Comments, r.CreateTS, r.UpdateTS} {
		if s != nil {
			n += int64(len(*s)) + 1
		}
	}
	return n
}

// EncodeDebezium serialises an envelope as Debezium's JsonConverter does: the bare payload
// (schemas.enable=false) or {"schema":...,"payload":...} (schemas.enable=true).
func EncodeDebezium(e DebeziumEnvelope, withSchema bool) ([]byte, error) {
	if !withSchema {
		return json.Marshal(e)
	}
	return json.Marshal(struct {
		Schema  json.RawMessage  `json:"schema"`
		Payload DebeziumEnvelope `json:"payload"`
	}{json.RawMessage(customersEnvelopeSchema), e})
}

// customersEnvelopeSchema is the Connect schema JsonConverter writes for asgard.demo.CUSTOMERS.
const customersEnvelopeSchema = `{"type":"struct","fields":[` +
	`{"type":"struct","fields":` + customersValueFields + `,"optional":true,"name":"asgard.demo.CUSTOMERS.Value","field":"before"},` +
	`{"type":"struct","fields":` + customersValueFields + `,"optional":true,"name":"asgard.demo.CUSTOMERS.Value","field":"after"},` +
	`{"type":"struct","fields":[` +
	`{"type":"string","optional":false,"field":"version"},` +
	`{"type":"string","optional":false,"field":"connector"},` +
	`{"type":"string","optional":false,"field":"name"},` +
	`{"type":"int64","optional":false,"field":"ts_ms"},` +
	`{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},"default":"false","field":"snapshot"},` +
	`{"type":"string","optional":false,"field":"db"},` +
	`{"type":"string","optional":true,"field":"sequence"},` +
	`{"type":"int64","optional":true,"field":"ts_us"},` +
	`{"type":"int64","optional":true,"field":"ts_ns"},` +
	`{"type":"string","optional":true,"field":"table"},` +
	`{"type":"int64","optional":false,"field":"server_id"},` +
	`{"type":"string","optional":true,"field":"gtid"},` +
	`{"type":"string","optional":false,"field":"file"},` +
	`{"type":"int64","optional":false,"field":"pos"},` +
	`{"type":"int32","optional":false,"field":"row"},` +
	`{"type":"int64","optional":true,"field":"thread"},` +
	`{"type":"string","optional":true,"field":"query"}` +
	`],"optional":false,"name":"io.debezium.connector.mysql.Source","field":"source"},` +
	`{"type":"struct","fields":[` +
	`{"type":"string","optional":false,"field":"id"},` +
	`{"type":"int64","optional":false,"field":"total_order"},` +
	`{"type":"int64","optional":false,"field":"data_collection_order"}` +
	`],"optional":true,"name":"event.block","version":1,"field":"transaction"},` +
	`{"type":"string","optional":false,"field":"op"},` +
	`{"type":"int64","optional":true,"field":"ts_ms"},` +
	`{"type":"int64","optional":true,"field":"ts_us"},` +
	`{"type":"int64","optional":true,"field":"ts_ns"}` +
	`],"optional":false,"name":"asgard.demo.CUSTOMERS.Envelope","version":2}`

const customersValueFields = `[` +
	`{"type":"int32","optional":false,"field":"id"},` +
	`{"type":"string","optional":true,"field":"first_name"},` +
	`{"type":"string","optional":true,"field":"last_name"},` +
	`{"type":"string","optional":true,"field":"email"},` +
	`{"type":"string","optional":true,"field":"gender"},` +
	`{"type":"string","optional":true,"field":"club_status"},` +
	`{"type":"string","optional":true,"field":"comments"},` +
	`{"type":"string","optional":true,"name":"io.debezium.time.ZonedTimestamp","version":1,"default":"1970-01-01T00:00:00Z","field":"create_ts"},` +
	`{"type":"string","optional":true,"name":"io.debezium.time.ZonedTimestamp","version":1,"default":"1970-01-01T00:00:00Z","field":"update_ts"}` +
	`]`

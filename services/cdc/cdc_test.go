package cdc

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/flow"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/pipe"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// --- fixtures: Debezium MySQL connector change events, shaped like the Debezium docs
// (mysql.adoc: create/update/delete/tombstone/truncate events; event-flattening.adoc). ---

type customer struct {
	ID                                             int
	First, Last, Email, Gender, Club, Comments, TS string
}

var (
	rica  = customer{1, "Rica", "Blaisdell", "rblaisdell0@rambler.ru", "Female", "bronze", "Universal optimal hierarchy", "2018-11-13T12:46:03Z"}
	ruth  = customer{2, "Ruthie", "Brockherst", "rbrockherst1@ow.ly", "Female", "platinum", "Reverse-engineered tangible interface", "2018-11-13T12:46:03Z"}
	laney = customer{13, "Laney", "Toopin", "ltoopinc@icio.us", "Female", "platinum", "Phased coherent alliance", "2018-11-13T12:46:03Z"}
)

func (c customer) row() map[string]any {
	nullable := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	return map[string]any{
		"id": c.ID, "first_name": nullable(c.First), "last_name": nullable(c.Last), "email": nullable(c.Email),
		"gender": nullable(c.Gender), "club_status": nullable(c.Club), "comments": nullable(c.Comments),
		"create_ts": "2018-11-13T12:46:03Z", "update_ts": nullable(c.TS),
	}
}

// dbz is one envelope event.
type dbz struct {
	op            string
	before, after *customer
	file          string
	pos           int64
	row           int
	snapshot      string // "true", "first", "last", "false"
	query         string
}

func (e dbz) payload() map[string]any {
	var before, after any
	if e.before != nil {
		before = e.before.row()
	}
	if e.after != nil {
		after = e.after.row()
	}
	snap := e.snapshot
	if snap == "" {
		snap = "false"
	}
	src := map[string]any{
		"version": "3.2.0.Final", "connector": "mysql", "name": "asgard", "ts_ms": 1542113163000,
		"ts_us": 1542113163000000, "ts_ns": 1542113163000000000, "snapshot": snap, "db": "demo",
		"sequence": nil, "table": "CUSTOMERS", "server_id": 223344, "gtid": nil,
		"file": e.file, "pos": e.pos, "row": e.row, "thread": 7, "query": nil,
	}
	if snap != "false" {
		src["server_id"], src["thread"] = 0, nil
	}
	if e.query != "" {
		src["query"] = e.query
	}
	if e.op == "t" {
		src["table"] = "CUSTOMERS"
	}
	p := map[string]any{"source": src, "op": e.op, "ts_ms": 1542113163523, "ts_us": 1542113163523041,
		"ts_ns": 1542113163523041000, "transaction": nil}
	if e.op != "t" {
		p["before"], p["after"] = before, after
	}
	return p
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func schema(t testing.TB, file string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withSchema wraps a payload like JsonConverter with schemas.enable=true.
func withSchema(t testing.TB, schemaFile string, payload any) []byte {
	return mustJSON(t, map[string]any{"schema": schema(t, schemaFile), "payload": payload})
}

// flat is an ExtractNewRecordState value with add.fields=op,source.ts_ms and
// delete.tombstone.handling.mode=rewrite (__deleted).
func flat(c customer, op string, deleted bool) map[string]any {
	m := c.row()
	m["__op"] = op
	m["__source_ts_ms"] = 1542113163000
	m["__deleted"] = strconv.FormatBool(deleted)
	return m
}

// --- harness ---

type harness struct {
	t      *testing.T
	env    *natstest.Env
	js     jetstream.JetStream
	cfg    Config
	cancel context.CancelFunc
	done   chan error
	last   uint64
}

func newHarness(t *testing.T) *harness {
	env := natstest.Start(t)
	_, js := env.Connect(t)
	h := &harness{t: t, env: env, js: js, cfg: Config{Batch: 100}}
	t.Cleanup(h.stop)
	return h
}

func (h *harness) start() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := New(runner.Deps{JS: h.js, Health: obs.NewHealth()}, h.cfg)
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- r.Run(ctx) }()
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("reader: %v", err)
	}
	h.cancel = nil
}

func (h *harness) publish(data []byte, hdr nats.Header) {
	h.t.Helper()
	m := nats.NewMsg(topology.SubjectCustomersCDC)
	m.Data = data
	for k, v := range hdr {
		m.Header[k] = v
	}
	ack, err := h.js.PublishMsg(context.Background(), m)
	if err != nil {
		h.t.Fatal(err)
	}
	h.last = ack.Sequence
}

// wait waits until the reader has acked everything published so far.
func (h *harness) wait() {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := h.js.Consumer(context.Background(), topology.StreamDebezium, service)
		if err == nil {
			info, err := c.Info(context.Background())
			if err == nil && info.AckFloor.Stream >= h.last {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("reader did not ack up to seq %d", h.last)
}

// table reads the whole CUSTOMERS bucket.
func (h *harness) table() map[string]map[string]any {
	h.t.Helper()
	ctx := context.Background()
	kv, err := h.js.KeyValue(ctx, topology.TableCustomers)
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]map[string]any{}
	keys, err := kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return out
	}
	if err != nil {
		h.t.Fatal(err)
	}
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if err != nil {
			h.t.Fatal(err)
		}
		var row map[string]any
		if err := json.Unmarshal(e.Value(), &row); err != nil {
			h.t.Fatal(err)
		}
		// The enricher decodes rows with events.Customer: make sure that works.
		var c events.Customer
		if err := events.Decode(e.Value(), &c); err != nil || !c.ID.Valid || strconv.Itoa(int(c.ID.V)) != k {
			h.t.Fatalf("row %s does not decode as events.Customer: %v %+v", k, err, c)
		}
		out[k] = row
	}
	return out
}

func keysOf(m map[string]map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func expectKeys(t *testing.T, tab map[string]map[string]any, want ...string) {
	t.Helper()
	got := keysOf(tab)
	sort.Strings(want)
	if len(got) != len(want) {
		t.Fatalf("keys %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("keys %v, want %v", got, want)
		}
	}
}

func expectField(t *testing.T, tab map[string]map[string]any, key, col string, want any) {
	t.Helper()
	got := tab[key][col]
	if f, ok := got.(float64); ok {
		got = int64(f)
	}
	if got != want {
		t.Fatalf("%s.%s = %v (%T), want %v (%T)", key, col, got, got, want, want)
	}
}

// rick follows the demo's scripted changes: INSERT (42, Rick, Astley), set email, bronze, platinum.
func rickScript() []dbz {
	rick := customer{ID: 42, First: "Rick", Last: "Astley"}
	withEmail := rick
	withEmail.Email = "rick@example.com"
	bronze := withEmail
	bronze.Club = "bronze"
	plat := bronze
	plat.Club = "platinum"
	return []dbz{
		{op: "c", after: &rick, file: "mysql-bin.000003", pos: 10154, query: "INSERT INTO CUSTOMERS (ID,FIRST_NAME,LAST_NAME) VALUES (42,'Rick','Astley')"},
		{op: "u", before: &rick, after: &withEmail, file: "mysql-bin.000003", pos: 10541},
		{op: "u", before: &withEmail, after: &bronze, file: "mysql-bin.000003", pos: 10907},
		{op: "u", before: &bronze, after: &plat, file: "mysql-bin.000003", pos: 11274},
	}
}

func snapshotOf(cs ...customer) []dbz {
	var out []dbz
	for i := range cs {
		snap := "true"
		switch i {
		case 0:
			snap = "first"
		case len(cs) - 1:
			snap = "last"
		}
		out = append(out, dbz{op: "r", after: &cs[i], file: "mysql-bin.000003", pos: 157, snapshot: snap})
	}
	return out
}

func TestEnvelopeForms(t *testing.T) {
	for _, wrapped := range []bool{true, false} {
		t.Run(map[bool]string{true: "with_schema", false: "without_schema"}[wrapped], func(t *testing.T) {
			h := newHarness(t)
			h.start()
			enc := func(e dbz) []byte {
				if wrapped {
					return withSchema(t, "envelope_schema.json", e.payload())
				}
				return mustJSON(t, e.payload())
			}
			for _, e := range snapshotOf(rica, ruth, laney) {
				h.publish(enc(e), nil)
			}
			for _, e := range rickScript() {
				h.publish(enc(e), nil)
			}
			// Delete Ruthie, then the tombstone (as the Kafka bridge carries it, and as an empty body).
			h.publish(enc(dbz{op: "d", before: &ruth, file: "mysql-bin.000003", pos: 11640}), nil)
			h.publish(nil, nats.Header{events.HeaderTombstone: {"true"}, events.HeaderKey: {`{"id":2}`}})
			h.publish(nil, nil)
			if wrapped {
				h.publish([]byte(`{"schema":null,"payload":null}`), nil)
			}
			h.wait()
			tab := h.table()
			expectKeys(t, tab, "1", "13", "42")
			expectField(t, tab, "42", "CLUB_STATUS", "platinum")
			expectField(t, tab, "42", "EMAIL", "rick@example.com")
			expectField(t, tab, "42", "FIRST_NAME", "Rick")
			expectField(t, tab, "42", "ID", int64(42))
			expectField(t, tab, "42", "__SOURCE_FILE", "mysql-bin.000003")
			expectField(t, tab, "42", "__SOURCE_POS", int64(11274))
			expectField(t, tab, "42", "__SOURCE_ROW", int64(0))
			expectField(t, tab, "42", "__OP", "u")
			expectField(t, tab, "1", "LAST_NAME", "Blaisdell")
			expectField(t, tab, "1", "__OP", "r")
			expectField(t, tab, "1", "CREATE_TS", "2018-11-13T12:46:03Z")
			if _, ok := tab["42"]["COMMENTS"]; !ok {
				t.Fatal("NULL columns must be present as null")
			}

			// Truncate (op t: no before/after, only source) clears the table; later inserts land.
			h.publish(enc(dbz{op: "t", file: "mysql-bin.000004", pos: 219}), nil)
			h.wait()
			expectKeys(t, h.table())
			h.publish(enc(dbz{op: "c", after: &ruth, file: "mysql-bin.000004", pos: 500}), nil)
			// A replayed pre-truncate event does not resurrect its row.
			h.publish(enc(dbz{op: "u", before: &rica, after: &rica, file: "mysql-bin.000003", pos: 20000}), nil)
			h.wait()
			expectKeys(t, h.table(), "2")
		})
	}
}

func TestFlattenedForms(t *testing.T) {
	h := newHarness(t)
	h.start()
	// Without schema wrapper, rewrite mode: the delete keeps the row and says __deleted=true.
	h.publish(mustJSON(t, flat(rica, "r", false)), nil)
	h.publish(mustJSON(t, flat(ruth, "c", false)), nil)
	silverRica := rica
	silverRica.Club = "silver"
	h.publish(mustJSON(t, flat(silverRica, "u", false)), nil)
	h.publish(mustJSON(t, flat(ruth, "d", true)), nil)
	// With the schema wrapper.
	h.publish(withSchema(t, "flattened_schema.json", flat(laney, "c", false)), nil)
	// Only __deleted (add.fields without op): still a delete.
	only := laney.row()
	only["__deleted"] = "true"
	h.publish(withSchema(t, "flattened_schema.json", only), nil)
	h.publish(withSchema(t, "flattened_schema.json", flat(laney, "c", false)), nil)
	// Plain flattened value as in the 2021 demo (no added fields), key from the Kafka key.
	plain := customer{ID: 7, First: "Fay", Last: "Huc", Email: "fhuc6@quantcast.com", Club: "bronze"}
	h.publish(mustJSON(t, plain.row()), nats.Header{events.HeaderKey: {"7"}})
	h.wait()
	tab := h.table()
	expectKeys(t, tab, "1", "13", "7")
	expectField(t, tab, "1", "CLUB_STATUS", "silver")
	expectField(t, tab, "13", "EMAIL", "ltoopinc@icio.us")
	expectField(t, tab, "7", "FIRST_NAME", "Fay")
	if _, ok := tab["1"]["__DELETED"]; ok {
		t.Fatal("__deleted is metadata, not a column")
	}
	// With source position fields added (add.fields=source.file,source.pos,source.row), replays
	// are recognised in the flattened form as well.
	pos := func(c customer, p int64) []byte {
		m := flat(c, "u", false)
		m["__source_file"], m["__source_pos"], m["__source_row"] = "mysql-bin.000007", p, 0
		return mustJSON(t, m)
	}
	goldRica := rica
	goldRica.Club = "gold"
	h.publish(pos(goldRica, 900), nil)
	h.publish(pos(silverRica, 800), nil) // older: ignored
	h.wait()
	expectField(t, h.table(), "1", "CLUB_STATUS", "gold")
}

func TestReplaysAndOutOfOrderDuplicates(t *testing.T) {
	h := newHarness(t)
	h.start()
	script := rickScript()
	var all [][]byte
	for _, e := range script {
		all = append(all, mustJSON(t, e.payload()))
	}
	for _, b := range all {
		h.publish(b, nil)
	}
	h.wait()
	want := h.table()
	expectField(t, want, "42", "CLUB_STATUS", "platinum")

	// Out-of-order duplicates (Debezium Server retried after an ambiguous ack; the connector
	// replayed from its last committed offset): older positions never overwrite newer ones.
	for _, i := range []int{2, 0, 1, 3, 1} {
		h.publish(all[i], nil)
	}
	h.wait()
	expectField(t, h.table(), "42", "CLUB_STATUS", "platinum")
	expectField(t, h.table(), "42", "__SOURCE_POS", int64(11274))

	// Delete, then replay the create: the delete's position (kept in CDC_STATE) wins.
	rick := *script[3].after
	h.publish(mustJSON(t, dbz{op: "d", before: &rick, file: "mysql-bin.000003", pos: 12000}.payload()), nil)
	h.publish(all[0], nil)
	h.wait()
	expectKeys(t, h.table())

	// Restart: positions are reloaded from KV (CUSTOMERS and CDC_STATE), replays still harmless.
	h.stop()
	// The resume point is the runtime's checkpoint (a graceful stop leaves an exact one), not a
	// key of the reader's own in CDC_STATE.
	if cp, err := flow.Checkpoint(context.Background(), h.js, service, topology.StreamDebezium); err != nil || cp != h.last {
		t.Fatalf("checkpoint %d (%v), want %d", cp, err, h.last)
	}
	if st, err := h.js.KeyValue(context.Background(), topology.BucketCDCState); err != nil {
		t.Fatal(err)
	} else if _, err := st.Get(context.Background(), "checkpoint."+topology.StreamDebezium); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("legacy checkpoint key written: %v", err)
	}
	h.start()
	for _, b := range all {
		h.publish(b, nil)
	}
	h.publish(mustJSON(t, snapshotOf(rica)[0].payload()), nil)
	h.wait()
	expectKeys(t, h.table(), "1")
	// A newer binlog file (compared by its numeric suffix) re-creates 42.
	h.publish(mustJSON(t, dbz{op: "c", after: &rick, file: "mysql-bin.000010", pos: 4}.payload()), nil)
	h.publish(mustJSON(t, dbz{op: "u", before: &rick, after: &rick, file: "mysql-bin.000009", pos: 99999}.payload()), nil)
	h.wait()
	tab := h.table()
	expectKeys(t, tab, "1", "42")
	expectField(t, tab, "42", "__SOURCE_FILE", "mysql-bin.000010")
	// The delete record of 42 is gone now that the row lives again.
	st, _ := h.js.KeyValue(context.Background(), topology.BucketCDCState)
	if _, err := st.Get(context.Background(), "deleted.42"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("deleted.42 should be gone: %v", err)
	}
}

func TestPrimaryKeyChange(t *testing.T) {
	h := newHarness(t)
	h.start()
	h.publish(mustJSON(t, snapshotOf(rica)[0].payload()), nil)
	moved := rica
	moved.ID = 1001
	// UPDATE CUSTOMERS SET id=1001 WHERE id=1: d (header __debezium.newkey) + tombstone + c
	// (header __debezium.oldkey), all from the same binlog event.
	h.publish(withSchema(t, "envelope_schema.json", dbz{op: "d", before: &rica, file: "mysql-bin.000003", pos: 900}.payload()),
		nats.Header{"__debezium.newkey": {`{"id":1001}`}})
	h.publish(nil, nats.Header{events.HeaderTombstone: {"true"}, events.HeaderKey: {`{"id":1}`}})
	h.publish(withSchema(t, "envelope_schema.json", dbz{op: "c", after: &moved, file: "mysql-bin.000003", pos: 900}.payload()),
		nats.Header{"__debezium.oldkey": {`{"id":1}`}})
	h.wait()
	tab := h.table()
	expectKeys(t, tab, "1001")
	expectField(t, tab, "1001", "FIRST_NAME", "Rica")
}

func TestDeadLetters(t *testing.T) {
	h := newHarness(t)
	h.start()
	noID := rica.row()
	delete(noID, "id")
	h.publish([]byte("this is not json"), nil)
	h.publish(mustJSON(t, map[string]any{"before": nil, "after": rica.row(), "source": map[string]any{}, "op": "x"}), nil)
	h.publish(mustJSON(t, dbz{op: "c", after: &rica, file: "mysql-bin.000003", pos: 1}.payload())[:40], nil)
	h.publish(mustJSON(t, map[string]any{"before": nil, "after": noID, "source": map[string]any{"file": "mysql-bin.000003", "pos": 3}, "op": "c"}), nil)
	h.publish(mustJSON(t, map[string]any{"first_name": "no id anywhere"}), nil)
	h.publish(mustJSON(t, dbz{op: "c", after: &ruth, file: "mysql-bin.000003", pos: 2}.payload()), nil)
	h.wait()
	expectKeys(t, h.table(), "2")

	ctx := context.Background()
	cons, err := h.js.CreateConsumer(ctx, topology.StreamDeadLetter, jetstream.ConsumerConfig{FilterSubject: topology.DeadLetterPrefix + topology.StreamDebezium})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(100)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for m := range batch.Messages() {
		reasons = append(reasons, m.Headers().Get(pipe.HeaderDLQReason))
	}
	want := []string{pipe.ReasonNotJSON, pipe.ReasonInvalid, pipe.ReasonNotJSON, pipe.ReasonMissingField, pipe.ReasonMissingField}
	if len(reasons) != len(want) {
		t.Fatalf("dead letters %v, want %v", reasons, want)
	}
	for i := range want {
		if reasons[i] != want[i] {
			t.Fatalf("dead letters %v, want %v", reasons, want)
		}
	}
}

func TestTombstoneDeletesOption(t *testing.T) {
	h := newHarness(t)
	h.cfg.TombstoneDeletes = true
	h.start()
	h.publish(mustJSON(t, rica.row()), nats.Header{events.HeaderKey: {"1"}})
	h.publish(mustJSON(t, ruth.row()), nats.Header{events.HeaderKey: {"2"}})
	// Flattened, delete.tombstone.handling.mode=tombstone: the delete is only a keyed tombstone.
	h.publish(nil, nats.Header{events.HeaderTombstone: {"true"}, events.HeaderKey: {`{"schema":{"type":"struct"},"payload":{"id":2}}`}})
	h.wait()
	expectKeys(t, h.table(), "1")
}

func TestPositionOrder(t *testing.T) {
	p := func(f string, pos, row int64) position {
		return parsePosition(f, json.RawMessage(strconv.FormatInt(pos, 10)), json.RawMessage(strconv.FormatInt(row, 10)))
	}
	cases := []struct {
		a, b position
		want int
	}{
		{p("mysql-bin.000003", 10, 0), p("mysql-bin.000003", 10, 0), 0},
		{p("mysql-bin.000003", 10, 1), p("mysql-bin.000003", 10, 0), 1},
		{p("mysql-bin.000003", 9, 5), p("mysql-bin.000003", 10, 0), -1},
		{p("mysql-bin.000004", 1, 0), p("mysql-bin.000003", 99999, 9), 1},
		{p("mysql-bin.1000000", 1, 0), p("mysql-bin.999999", 5, 0), 1},
	}
	for _, c := range cases {
		if got := c.a.compare(c.b); got != c.want {
			t.Errorf("%s vs %s = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

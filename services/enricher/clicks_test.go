package enricher

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/pipe"
	"github.com/jetsuite/jetsuite/shared/topology"
)

type testUser struct {
	id             int
	username, city string
}

var testUsers = []testUser{
	{1, "akatz1022", "Palo Alto"},
	{2, "bobk_43", "London"},
	{3, "Ferd88", "Frankfurt"},
}

var testCodes = map[int]string{200: "Successful", 302: "Redirect", 404: "Page not found", 405: "Method not allowed"}

func userJSON(u testUser) string {
	return fmt.Sprintf(`{"user_id":%d,"registered_at":1407645330000,"username":%q,"first_name":"Elwyn","last_name":"Vanyard","city":%q,"level":"Gold"}`,
		u.id, u.username, u.city)
}

func clickJSON(userid, status any) string {
	return fmt.Sprintf(`{"ip":"111.152.45.45","userid":%s,"remote_user":"-","time":"1","_time":1,"request":"GET /index.html HTTP/1.1","status":%s,"bytes":"1289","referrer":"-","agent":"Mozilla/5.0"}`,
		jsonValue(userid), jsonValue(status))
}

func jsonValue(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

func (h *harness) loadTables() {
	h.t.Helper()
	for _, u := range testUsers {
		h.publish(topology.SubjectClickstreamUsers, userJSON(u))
	}
	for code, def := range testCodes {
		h.publish(topology.SubjectClickstreamCodes, fmt.Sprintf(`{"code":%d,"definition":%q}`, code, def))
	}
}

// userClick is a row of USER_CLICKSTREAM as clickstream.sql's statement selects it.
type userClick struct {
	UserID   events.Int    `json:"USERID"`
	Username events.String `json:"USERNAME"`
	IP       events.String `json:"IP"`
	City     events.String `json:"CITY"`
	Request  events.String `json:"REQUEST"`
	Status   events.Int    `json:"STATUS"`
	Bytes    events.BigInt `json:"BYTES"`
}

// enrichedErrorCode is a row of ENRICHED_ERROR_CODES.
type enrichedErrorCode struct {
	Code       events.Int    `json:"CODE"`
	Definition events.String `json:"DEFINITION"`
}

// expected computes a click's two output rows independently of the enricher's code.
func expectedClick(userid, status int, users []testUser, codes map[int]string) (userClick, enrichedErrorCode) {
	uc := userClick{
		UserID: events.NewInt(int32(userid)), IP: events.NewString("111.152.45.45"),
		Request: events.NewString("GET /index.html HTTP/1.1"), Status: events.NewInt(int32(status)),
		Bytes: events.NewBigInt(1289),
	}
	for _, u := range users {
		if u.id == userid {
			uc.Username, uc.City = events.NewString(u.username), events.NewString(u.city)
		}
	}
	ec := enrichedErrorCode{Code: events.NewInt(int32(status))}
	if def, ok := codes[status]; ok {
		ec.Definition = events.NewString(def)
	}
	return uc, ec
}

func TestClickJoins(t *testing.T) {
	h := newHarness(t)
	h.loadTables()
	// Clicks published before the enricher starts: the joiner must wait for the tables.
	type click struct {
		userid, status any
		wantUser       int
		wantStatus     int
	}
	clicks := []click{
		{1, "302", 1, 302},   // status as a string (datagen), coerced
		{2, 302, 2, 302},     // status as a number
		{-1, "404", -1, 404}, // unknown user: LEFT JOIN -> USERNAME, CITY null
		{"3", "500", 3, 500}, // userid as a string; 500 is no row of CLICKSTREAM_CODES -> DEFINITION null
	}
	var seqs []uint64
	for i, c := range clicks {
		hdr := []string{events.HeaderEventTime, strconv.Itoa(1700000000000 + i)}
		if i == 3 {
			hdr = nil // no Event-Time: the stored timestamp is the event time
		}
		seqs = append(seqs, h.publish(topology.SubjectClickstream, clickJSON(c.userid, c.status), hdr...))
	}
	r := h.start(DefaultConfig())
	h.waitCount(topology.StreamUserClickstream, uint64(len(clicks)))
	h.waitCount(topology.StreamEnrichedErrorCodes, uint64(len(clicks)))
	eventually(t, 5*time.Second, func() bool { return r.health.Ready() == nil }, func() string { return fmt.Sprint(r.health.Ready()) })

	inputs := h.messages(topology.StreamClickstream, "")
	ucs := h.messages(topology.StreamUserClickstream, "")
	ecs := h.messages(topology.StreamEnrichedErrorCodes, "")
	if len(ucs) != len(clicks) || len(ecs) != len(clicks) {
		t.Fatalf("outputs: %d USER_CLICKSTREAM, %d ENRICHED_ERROR_CODES, want %d each", len(ucs), len(ecs), len(clicks))
	}
	for i, c := range clicks {
		wantUC, wantEC := expectedClick(c.wantUser, c.wantStatus, testUsers, testCodes)
		if got := decode[userClick](t, ucs[i].Data); got != wantUC {
			t.Errorf("USER_CLICKSTREAM[%d] = %+v (%s), want %+v", i, got, ucs[i].Data, wantUC)
		}
		if got := decode[enrichedErrorCode](t, ecs[i].Data); got != wantEC {
			t.Errorf("ENRICHED_ERROR_CODES[%d] = %+v (%s), want %+v", i, got, ecs[i].Data, wantEC)
		}
		wantTime := strconv.Itoa(1700000000000 + i)
		if i == 3 {
			wantTime = strconv.FormatInt(inputs[i].Time.UnixMilli(), 10)
		}
		src := topology.StreamClickstream + ":" + strconv.FormatUint(seqs[i], 10)
		for _, out := range []struct {
			stream, key string
			hdr         map[string][]string
		}{
			{topology.StreamUserClickstream, strconv.Itoa(c.wantUser), ucs[i].Header},
			{topology.StreamEnrichedErrorCodes, strconv.Itoa(c.wantStatus), ecs[i].Header},
		} {
			get := func(k string) string {
				if v := out.hdr[k]; len(v) > 0 {
					return v[0]
				}
				return ""
			}
			if got := get(events.HeaderEventTime); got != wantTime {
				t.Errorf("%s[%d] Event-Time = %q, want %q", out.stream, i, got, wantTime)
			}
			if got := get(events.HeaderKey); got != out.key {
				t.Errorf("%s[%d] Jetsuite-Key = %q, want %q", out.stream, i, got, out.key)
			}
			if got, want := get(events.HeaderMsgID), out.stream+":"+src; got != want {
				t.Errorf("%s[%d] Nats-Msg-Id = %q, want %q", out.stream, i, got, want)
			}
		}
	}
	if !strings.HasPrefix(string(ucs[0].Data), `{"USERID":1,"USERNAME":"akatz1022","IP":`) {
		t.Errorf("column names/order: %s", ucs[0].Data)
	}

	// The tables themselves: KV rows with ksqlDB's upper-case column names.
	ctx := context.Background()
	kv, err := h.js.KeyValue(ctx, topology.TableWebUsers)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "2")
	if err != nil {
		t.Fatal(err)
	}
	row := decode[map[string]any](t, e.Value())
	for col, want := range map[string]any{"USER_ID": 2.0, "REGISTERED_AT": 1407645330000.0, "USERNAME": "bobk_43",
		"FIRST_NAME": "Elwyn", "LAST_NAME": "Vanyard", "CITY": "London", "LEVEL": "Gold"} {
		if row[col] != want {
			t.Errorf("WEB_USERS[2].%s = %v, want %v (row %s)", col, row[col], want, e.Value())
		}
	}
	codes, err := h.js.KeyValue(ctx, topology.TableClickstreamCodes)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := codes.Get(ctx, "404"); err != nil || string(e.Value()) != `{"CODE":404,"DEFINITION":"Page not found"}` {
		t.Errorf("CLICKSTREAM_CODES[404] = %v, %v", e, err)
	}
}

func TestTableUpdatesAndDeletes(t *testing.T) {
	h := newHarness(t)
	h.loadTables()
	r := h.start(DefaultConfig())
	h.publish(topology.SubjectClickstream, clickJSON(1, "302"))
	h.waitCount(topology.StreamUserClickstream, 1)

	// An update of the source table reaches the view, and later clicks see it.
	h.publish(topology.SubjectClickstreamUsers, userJSON(testUser{1, "Reeva43", "Raleigh"}))
	eventually(t, 10*time.Second, func() bool {
		u, ok := r.svc.views[topology.TableWebUsers].Get("1")
		return ok && u.Vals[2].S == "Reeva43" // USERNAME
	}, func() string { return "WEB_USERS view never saw the update of user 1" })
	h.publish(topology.SubjectClickstream, clickJSON(1, "302"))
	h.waitCount(topology.StreamUserClickstream, 2)

	// A tombstone from the bridge deletes the row; a KV delete (from anyone) too.
	h.publish(topology.SubjectClickstreamUsers, "", events.HeaderTombstone, "true", events.HeaderKey, "1")
	codes, err := h.js.KeyValue(context.Background(), topology.TableClickstreamCodes)
	if err != nil {
		t.Fatal(err)
	}
	if err := codes.Delete(context.Background(), "302"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool {
		_, user := r.svc.views[topology.TableWebUsers].Get("1")
		_, code := r.svc.views[topology.TableClickstreamCodes].Get("302")
		return !user && !code
	}, func() string { return "views never saw the deletes" })
	h.publish(topology.SubjectClickstream, clickJSON(1, "302"))
	h.waitCount(topology.StreamUserClickstream, 3)
	h.waitCount(topology.StreamEnrichedErrorCodes, 3)

	ucs := h.messages(topology.StreamUserClickstream, "")
	ecs := h.messages(topology.StreamEnrichedErrorCodes, "")
	updated := []testUser{{1, "Reeva43", "Raleigh"}}
	noCode := map[int]string{}
	for i, want := range []struct {
		users []testUser
		codes map[int]string
	}{{testUsers, testCodes}, {updated, testCodes}, {nil, noCode}} {
		wantUC, wantEC := expectedClick(1, 302, want.users, want.codes)
		if got := decode[userClick](t, ucs[i].Data); got != wantUC {
			t.Errorf("click %d: USER_CLICKSTREAM %+v, want %+v", i, got, wantUC)
		}
		if got := decode[enrichedErrorCode](t, ecs[i].Data); got != wantEC {
			t.Errorf("click %d: ENRICHED_ERROR_CODES %+v, want %+v", i, got, wantEC)
		}
	}
}

func TestJoinerWaitsForInitialLoad(t *testing.T) {
	h := newHarness(t)
	// Many users, then clicks for all of them, all before the enricher starts: every click must
	// find its user, so the joiner cannot have started before the table was complete.
	const n = 1000
	var users []testUser
	for i := 1; i <= n; i++ {
		u := testUser{i, "user" + strconv.Itoa(i), "city" + strconv.Itoa(i%7)}
		users = append(users, u)
		h.publish(topology.SubjectClickstreamUsers, userJSON(u))
	}
	for i := 1; i <= n; i++ {
		h.publish(topology.SubjectClickstream, clickJSON(i, 200))
	}
	// No status codes: the codes table is loaded at once, the users table decides.
	r := h.start(DefaultConfig())
	if r.svc.Ready() == nil {
		t.Error("ready before any table was loaded")
	}
	h.waitCount(topology.StreamUserClickstream, n)
	h.waitCount(topology.StreamEnrichedErrorCodes, n)
	for i, m := range h.messages(topology.StreamUserClickstream, "") {
		want, _ := expectedClick(i+1, 200, users, nil)
		if got := decode[userClick](t, m.Data); got != want {
			t.Fatalf("click %d joined as %+v, want %+v", i+1, got, want)
		}
	}
	for i, m := range h.messages(topology.StreamEnrichedErrorCodes, "") {
		if got := decode[enrichedErrorCode](t, m.Data); got != (enrichedErrorCode{Code: events.NewInt(200)}) {
			t.Fatalf("click %d: %s", i+1, m.Data)
		}
	}
	if err := r.svc.Ready(); err != nil {
		t.Errorf("not ready after the joins: %v", err)
	}
}

func TestDeadLetters(t *testing.T) {
	h := newHarness(t)
	h.loadTables()
	big := clickJSON(1, 200)
	big = big[:len(big)-1] + `,"padding":"` + strings.Repeat("x", 1<<20) + `"}`
	bad := []struct {
		body, reason string
	}{
		{`hello`, pipe.ReasonNotJSON},
		{`{"ip":"1.2.3.4","userid":1,`, pipe.ReasonNotJSON},
		{`[1,2,3]`, pipe.ReasonNotJSON},
		{`{"ip":"1.2.3.4","userid":true,"status":200}`, pipe.ReasonWrongType},
		{`{"ip":"1.2.3.4","userid":"abc","status":200}`, pipe.ReasonWrongType},
		{`{"ip":{"a":1},"userid":1,"status":200}`, pipe.ReasonWrongType},
		{big, pipe.ReasonTooLarge},
	}
	// Rows that are valid SQL, whatever a click should look like: a missing column is NULL. A
	// NULL join key drops the row from that join's output (as ksqlDB does: no userid, no
	// USER_CLICKSTREAM row; no status, no ENRICHED_ERROR_CODES row); status 999 is a number.
	sqlValid := []string{`{"ip":"1.2.3.4","status":200}`, `{"ip":"1.2.3.4","userid":1}`, clickJSON(1, "999")}
	before := map[string]float64{}
	for _, b := range bad {
		before[b.reason] = counterValue(obs.DeadLettered.WithLabelValues(ServiceName, topology.StreamClickstream, b.reason))
	}
	var seqs []uint64
	for i, b := range bad {
		seqs = append(seqs, h.publish(topology.SubjectClickstream, b.body))
		// A good click after every bad one: the pipeline goes on.
		h.publish(topology.SubjectClickstream, clickJSON(1+i%3, 200))
	}
	for _, body := range sqlValid {
		h.publish(topology.SubjectClickstream, body)
	}
	h.start(DefaultConfig())
	h.waitCount(topology.StreamUserClickstream, uint64(len(bad)+2))
	h.waitCount(topology.StreamEnrichedErrorCodes, uint64(len(bad)+2))
	h.waitCount(topology.StreamDeadLetter, uint64(len(bad)))
	dead := h.messages(topology.StreamDeadLetter, topology.DeadLetterPrefix+topology.StreamClickstream)
	if len(dead) != len(bad) {
		t.Fatalf("%d dead letters, want %d", len(dead), len(bad))
	}
	perReason := map[string]float64{}
	for i, b := range bad {
		d := dead[i]
		get := func(k string) string { return d.Header.Get(k) }
		if got := get(pipe.HeaderDLQReason); got != b.reason {
			t.Errorf("dead letter %d (%.40s): reason %q, want %q (error %q)", i, b.body, got, b.reason, get(pipe.HeaderDLQError))
		}
		for k, want := range map[string]string{
			pipe.HeaderDLQService:       ServiceName,
			pipe.HeaderDLQSourceStream:  topology.StreamClickstream,
			pipe.HeaderDLQSourceSubject: topology.SubjectClickstream,
			pipe.HeaderDLQSourceSeq:     strconv.FormatUint(seqs[i], 10),
		} {
			if got := get(k); got != want {
				t.Errorf("dead letter %d: %s = %q, want %q", i, k, got, want)
			}
		}
		if get(pipe.HeaderDLQError) == "" {
			t.Errorf("dead letter %d: no error text", i)
		}
		if string(d.Data) != b.body {
			t.Errorf("dead letter %d: body changed (%d bytes, want %d)", i, len(d.Data), len(b.body))
		}
		perReason[b.reason]++
	}
	for reason, n := range perReason {
		got := counterValue(obs.DeadLettered.WithLabelValues(ServiceName, topology.StreamClickstream, reason)) - before[reason]
		if got != n {
			t.Errorf("dead-letter counter %s: +%v, want +%v", reason, got, n)
		}
	}
	// Every good click got through, and nothing else did: the last input's outputs are the
	// last messages of both streams.
	if got := h.count(topology.StreamUserClickstream); got != uint64(len(bad)+2) {
		t.Errorf("USER_CLICKSTREAM has %d rows, want %d", got, len(bad)+2)
	}
	if got := h.count(topology.StreamEnrichedErrorCodes); got != uint64(len(bad)+2) {
		t.Errorf("ENRICHED_ERROR_CODES has %d rows, want %d", got, len(bad)+2)
	}
	codes := h.messages(topology.StreamEnrichedErrorCodes, topology.StreamEnrichedErrorCodes)
	if last := string(codes[len(codes)-1].Data); last != `{"CODE":999,"DEFINITION":null}` {
		t.Errorf("last ENRICHED_ERROR_CODES row %s, want code 999 without a definition", last)
	}
}

func TestSizeLimitSetting(t *testing.T) {
	h := newHarness(t)
	cfg := DefaultConfig()
	cfg.MaxBytes = 100
	body := clickJSON(1, 200) // ~190 bytes
	h.publish(topology.SubjectClickstream, body)
	h.start(cfg)
	h.waitCount(topology.StreamDeadLetter, 1)
	d := h.messages(topology.StreamDeadLetter, "")
	if got := d[0].Header.Get(pipe.HeaderDLQReason); got != pipe.ReasonTooLarge {
		t.Errorf("reason %q, want too_large", got)
	}
}

func TestRedeliveryProducesNoDuplicates(t *testing.T) {
	h := newHarness(t)
	h.loadTables()
	const n = 500
	for i := 0; i < n; i++ {
		h.publish(topology.SubjectClickstream, clickJSON(i%5, []int{200, 302, 404}[i%3]))
	}
	h.publish(topology.SubjectImplyNews, `{"recordType":"click","sid":1}`)
	r := h.start(DefaultConfig())
	h.waitCount(topology.StreamUserClickstream, n)
	h.waitCount(topology.StreamEnrichedErrorCodes, n)
	h.waitCount(topology.StreamImplyNewsClicks, 1)
	first := h.messages(topology.StreamUserClickstream, "")
	r.stop()

	// Reset: forget every consumer's progress and checkpoint, so every input is delivered
	// again.
	ctx := context.Background()
	checkpoints, err := h.js.KeyValue(ctx, topology.BucketCheckpoints)
	if err != nil {
		t.Fatal(err)
	}
	for stream, durable := range map[string]string{
		topology.StreamClickstream: durable(topology.StreamClickstream), topology.StreamClickstreamUsers: durable(topology.TableWebUsers),
		topology.StreamClickstreamCodes: durable(topology.TableClickstreamCodes), topology.StreamImplyNews: durable(topology.StreamImplyNews),
	} {
		if err := h.js.DeleteConsumer(ctx, stream, durable); err != nil {
			t.Fatal(err)
		}
		if err := checkpoints.Delete(ctx, durable); err != nil {
			t.Fatal(err)
		}
	}
	dedup := counterValue(obs.DedupHits.WithLabelValues(ServiceName, topology.StreamUserClickstream))
	h.start(DefaultConfig())
	eventually(t, 20*time.Second, func() bool {
		return counterValue(obs.DedupHits.WithLabelValues(ServiceName, topology.StreamUserClickstream))-dedup >= n
	}, func() string { return "the replay was not de-duplicated" })
	time.Sleep(200 * time.Millisecond)
	for stream, want := range map[string]uint64{
		topology.StreamUserClickstream: n, topology.StreamEnrichedErrorCodes: n, topology.StreamImplyNewsClicks: 1,
	} {
		if got := h.count(stream); got != want {
			t.Errorf("%s has %d messages after the replay, want %d", stream, got, want)
		}
	}
	// Order follows input order.
	for i, m := range first {
		if got := decode[userClick](t, m.Data); got.UserID.V != int32(i%5) {
			t.Fatalf("output %d has USERID %d, want %d", i, got.UserID.V, i%5)
		}
	}
}

func TestInstancesShareTheWork(t *testing.T) {
	h := newHarness(t)
	h.loadTables()
	h.start(DefaultConfig())
	h.start(DefaultConfig())
	const n = 2000
	for i := 0; i < n; i++ {
		h.publish(topology.SubjectClickstream, clickJSON(1+i%3, 200))
	}
	h.waitCount(topology.StreamUserClickstream, n)
	h.waitCount(topology.StreamEnrichedErrorCodes, n)
	time.Sleep(200 * time.Millisecond)
	seen := map[string]bool{}
	for _, m := range h.messages(topology.StreamUserClickstream, "") {
		id := m.Header.Get(events.HeaderMsgID)
		if seen[id] {
			t.Fatalf("duplicate output %s", id)
		}
		seen[id] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct outputs, want %d", len(seen), n)
	}
}

func TestLoaderDeadLetters(t *testing.T) {
	h := newHarness(t)
	h.publish(topology.SubjectClickstreamUsers, `{"username":"no id"}`)
	h.publish(topology.SubjectClickstreamUsers, `{"user_id":"x"}`)
	h.publish(topology.SubjectClickstreamUsers, "", events.HeaderTombstone, "true", events.HeaderKey, "a b")
	h.publish(topology.SubjectClickstreamUsers, userJSON(testUsers[0]))
	h.publish(topology.SubjectClickstreamCodes, `{"definition":"no code"}`)
	r := h.start(DefaultConfig())
	h.waitCount(topology.StreamDeadLetter, 4)
	eventually(t, 10*time.Second, func() bool { _, ok := r.svc.views[topology.TableWebUsers].Get("1"); return ok },
		func() string { return "the good user row never reached the view" })
	var reasons []string
	for _, d := range h.messages(topology.StreamDeadLetter, "") {
		reasons = append(reasons, d.Subject+"/"+d.Header.Get(pipe.HeaderDLQReason))
	}
	want := []string{"dlq.CLICKSTREAM_USERS/missing_field", "dlq.CLICKSTREAM_USERS/wrong_type",
		"dlq.CLICKSTREAM_USERS/missing_field", "dlq.CLICKSTREAM_CODES_SRC/missing_field"}
	got := map[string]int{}
	for _, r := range reasons {
		got[r]++
	}
	for _, w := range want {
		got[w]--
	}
	for k, v := range got {
		if v != 0 {
			t.Errorf("dead letters %v, want %v (differs at %s)", reasons, want, k)
			break
		}
	}
}

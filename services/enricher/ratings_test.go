package enricher

import (
	"slices"

	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jetsuite/jetsuite/shared/sqlrt"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/pipe"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// Rows as the CDC reader writes them into CUSTOMERS: upper-case columns plus bookkeeping.
var testCustomers = map[string]string{
	"1":  `{"ID":1,"FIRST_NAME":"Rica","LAST_NAME":"Blaisdell","EMAIL":"rblaisdell0@rambler.ru","GENDER":"Female","CLUB_STATUS":"bronze","COMMENTS":"Universal optimal hierarchy","CREATE_TS":"2021-09-08T08:03:24Z","UPDATE_TS":"2021-09-08T08:03:24Z","_POS":"mysql-bin.000003:1234"}`,
	"2":  `{"ID":2,"FIRST_NAME":"Ruthie","LAST_NAME":"Brockherst","EMAIL":"rbrockherst1@ow.ly","GENDER":"Female","CLUB_STATUS":"platinum"}`,
	"42": `{"ID":42,"FIRST_NAME":"Rick","LAST_NAME":"Astley","EMAIL":null,"GENDER":null,"CLUB_STATUS":null}`,
	"7":  `{"ID":7,"FIRST_NAME":null,"LAST_NAME":"Huc","EMAIL":"fhuc6@quantcast.com","CLUB_STATUS":"bronze"}`,
	"8":  `{"ID":8,"FIRST_NAME":"Patti","LAST_NAME":null,"EMAIL":"prosten7@ihg.com","CLUB_STATUS":"silver"}`,
}

func ratingJSON(id, user int, stars int, channel any) string {
	ch := "null"
	if channel != nil {
		ch = fmt.Sprintf("%q", channel)
	}
	return fmt.Sprintf(`{"rating_id":%d,"user_id":%d,"stars":%d,"route_id":2021,"rating_time":%d,"channel":%s,"message":"thank you for the most friendly, helpful experience today at your new lounge"}`,
		id, user, stars, id*10, ch)
}

const ratingMessage = "thank you for the most friendly, helpful experience today at your new lounge"

func TestRatingsSplitAndJoin(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	kv, err := h.js.KeyValue(ctx, topology.TableCustomers)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range testCustomers {
		if _, err := kv.PutString(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	type rating struct {
		id, user, stars int
		channel         any
	}
	ratings := []rating{
		{1, 1, 4, "iOS"},          // live, joined
		{2, 42, 1, "iOS-test"},    // test, joined; Rick has no email
		{3, 99, 2, "web"},         // live; no such customer: dropped by WHERE
		{4, 7, 3, "android"},      // live; first_name NULL: dropped by WHERE
		{5, 8, 1, "Android-TEST"}, // test (LCASE); last_name NULL: FULL_NAME is the first name
		{6, 2, 2, nil},            // NULL channel: neither live nor test; joined
		{7, -1, 5, "TestFlight"},  // test; user -1 never a customer
	}
	for _, r := range ratings {
		h.publish(topology.SubjectRatings, ratingJSON(r.id, r.user, r.stars, r.channel))
	}
	// No rating_id is a NULL RATING_ID (a valid row); "x1" is no BIGINT (a dead letter).
	h.publish(topology.SubjectRatings, `{"user_id":1,"stars":3,"channel":"iOS"}`)
	bad := h.publish(topology.SubjectRatings, `{"rating_id":"x1"}`)
	run := h.start(DefaultConfig())

	// The expected rows, as the statements of ratings.sql define them (hand-written bytes).
	live := func(user, stars int, channel, msg string) string {
		return fmt.Sprintf(`{"USER_ID":%d,"STARS":%d,"CHANNEL":%q,"MESSAGE":%s}`, user, stars, channel, msg)
	}
	m := `"` + ratingMessage + `"`
	wantLive := []string{live(1, 4, "iOS", m), live(99, 2, "web", m), live(7, 3, "android", m), live(1, 3, "iOS", "null")}
	wantTest := []string{live(42, 1, "iOS-test", m), live(8, 1, "Android-TEST", m), live(-1, 5, "TestFlight", m)}
	joined := func(id any, stars int, channel any, customer, name, status, email any) string {
		q := func(v any) string {
			if s, ok := v.(string); ok {
				return fmt.Sprintf("%q", s)
			}
			if v == nil {
				return "null"
			}
			return fmt.Sprint(v)
		}
		msg := m
		if id == "null" {
			msg = "null"
		}
		return fmt.Sprintf(`{"RATING_ID":%v,"MESSAGE":%s,"STARS":%d,"CHANNEL":%s,"CUSTOMER_ID":%s,"FULL_NAME":%s,"CLUB_STATUS":%s,"EMAIL":%s}`,
			id, msg, stars, q(channel), q(customer), q(name), q(status), q(email))
	}
	wantJoined := []string{
		joined(1, 4, "iOS", "1", "Rica Blaisdell", "bronze", "rblaisdell0@rambler.ru"),
		joined(2, 1, "iOS-test", "42", "Rick Astley", nil, nil),              // Rick has no email
		joined(5, 1, "Android-TEST", "8", nil, "silver", "prosten7@ihg.com"), // LAST_NAME NULL: + gives NULL
		joined(6, 2, nil, "2", "Ruthie Brockherst", "platinum", "rbrockherst1@ow.ly"),
		joined("null", 3, "iOS", "1", "Rica Blaisdell", "bronze", "rblaisdell0@rambler.ru"),
	}
	wantKeys := []string{"1", "42", "8", "2", "1"} // the join key
	h.waitCount(topology.StreamRatingsLive, uint64(len(wantLive)))
	h.waitCount(topology.StreamRatingsTest, uint64(len(wantTest)))
	h.waitCount(topology.StreamRatingsWithCustomerData, uint64(len(wantJoined)))
	h.waitCount(topology.StreamDeadLetter, 1)

	for stream, want := range map[string][]string{topology.StreamRatingsLive: wantLive, topology.StreamRatingsTest: wantTest} {
		got := h.messages(stream, "")
		if len(got) != len(want) {
			t.Fatalf("%s has %d rows, want %d", stream, len(got), len(want))
		}
		for i, m := range got {
			if string(m.Data) != want[i] {
				t.Errorf("%s[%d] = %s, want %s", stream, i, m.Data, want[i])
			}
			if k := m.Header.Get(events.HeaderKey); k != "" {
				t.Errorf("%s[%d] key %q, want none (RATINGS has no key)", stream, i, k)
			}
		}
	}
	got := h.messages(topology.StreamRatingsWithCustomerData, "")
	if len(got) != len(wantJoined) {
		t.Fatalf("%d joined rows, want %d", len(got), len(wantJoined))
	}
	for i, m := range got {
		if string(m.Data) != wantJoined[i] {
			t.Errorf("RATINGS_WITH_CUSTOMER_DATA[%d] = %s, want %s", i, m.Data, wantJoined[i])
		}
		if k := m.Header.Get(events.HeaderKey); k != wantKeys[i] {
			t.Errorf("RATINGS_WITH_CUSTOMER_DATA[%d] key %q, want %q", i, k, wantKeys[i])
		}
	}
	dead := h.messages(topology.StreamDeadLetter, topology.DeadLetterPrefix+topology.StreamRatings)
	if len(dead) != 1 || dead[0].Header.Get(pipe.HeaderDLQReason) != pipe.ReasonWrongType || dead[0].Header.Get(pipe.HeaderDLQSourceSeq) != fmt.Sprint(bad) {
		t.Errorf("ratings dead letters: %d %v", len(dead), dead)
	}

	// A customer change (CDC) reaches later joins; a deleted customer joins no more.
	if _, err := kv.PutString(ctx, "1", `{"ID":1,"FIRST_NAME":"Rica","LAST_NAME":"Blaisdell","EMAIL":"rica@example.com","CLUB_STATUS":"platinum"}`); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool {
		c, ok := run.svc.views[topology.TableCustomers].Get("1")
		_, gone := run.svc.views[topology.TableCustomers].Get("2")
		return ok && !gone && slices.ContainsFunc(c.Vals, func(v sqlrt.Value) bool { return v.S == "rica@example.com" })
	}, func() string { return "CUSTOMERS view did not follow" })
	h.publish(topology.SubjectRatings, ratingJSON(8, 1, 1, "iOS"))
	h.publish(topology.SubjectRatings, ratingJSON(9, 2, 1, "iOS"))
	h.waitCount(topology.StreamRatingsLive, uint64(len(wantLive)+2))
	time.Sleep(200 * time.Millisecond)
	got = h.messages(topology.StreamRatingsWithCustomerData, "")
	if len(got) != len(wantJoined)+1 {
		t.Fatalf("%d joined rows after the changes, want %d", len(got), len(wantJoined)+1)
	}
	if last, want := string(got[len(got)-1].Data), joined(8, 1, "iOS", "1", "Rica Blaisdell", "platinum", "rica@example.com"); last != want {
		t.Errorf("join after the update: %s, want %s", last, want)
	}
}

func TestImplyNewsRouter(t *testing.T) {
	h := newHarness(t)
	click := `{"timestamp":1650000000,"recordType":"click","url":"https://imply-news.com/home","sid":1001,"uid":"u1"}`
	session := `{"timestamp":1650000000,"recordType":"session","sid":1001,"home":1,"content":0}`
	h.publish(topology.SubjectImplyNews, click, events.HeaderKey, "1001")
	h.publish(topology.SubjectImplyNews, session)
	h.publish(topology.SubjectImplyNews, `{"recordType":"user","uid":"u1"}`)
	h.publish(topology.SubjectImplyNews, `{"sid":1}`)
	h.publish(topology.SubjectImplyNews, `not json`)
	h.publish(topology.SubjectImplyNews, click)
	h.start(DefaultConfig())
	h.waitCount(topology.StreamImplyNewsClicks, 2)
	h.waitCount(topology.StreamImplyNewsSessions, 1)
	h.waitCount(topology.StreamDeadLetter, 1)
	// SELECT * keeps every declared column (NULL where the record has none); the session
	// route selects six.
	wantClick := `{"timestamp":1650000000,"recordType":"click","url":"https://imply-news.com/home","useragent":null,"statuscode":null,"state":null,"statesVisited":null,"sid":1001,"uid":"u1","isSubscriber":null,"campaign":null,"channel":null,"contentId":null,"subContentId":null,"gender":null,"age":null,"latitude":null,"longitude":null,"place_name":null,"country_code":null,"timezone":null}`
	wantSession := `{"timestamp":1650000000,"recordType":"session","useragent":null,"statesVisited":null,"sid":1001,"uid":null}`
	clicks := h.messages(topology.StreamImplyNewsClicks, "")
	if string(clicks[0].Data) != wantClick || string(clicks[1].Data) != wantClick {
		t.Errorf("click rows %s, want %s", clicks[0].Data, wantClick)
	}
	if clicks[0].Header.Get(events.HeaderKey) != "1001" || clicks[0].Header.Get(events.HeaderMsgID) != topology.SubjectImplyNewsClicks+":"+topology.StreamImplyNews+":1" {
		t.Errorf("click headers: %v", clicks[0].Header)
	}
	if s := h.messages(topology.StreamImplyNewsSessions, ""); string(s[0].Data) != wantSession {
		t.Errorf("session row %s, want %s", s[0].Data, wantSession)
	}
	var reasons []string
	for _, d := range h.messages(topology.StreamDeadLetter, topology.DeadLetterPrefix+topology.StreamImplyNews) {
		reasons = append(reasons, d.Header.Get(pipe.HeaderDLQReason))
	}
	// recordType 'user' and a record without one match neither WHERE: no row, no error.
	if fmt.Sprint(reasons) != fmt.Sprint([]string{pipe.ReasonNotJSON}) {
		t.Errorf("imply-news dead-letter reasons %v", reasons)
	}
}

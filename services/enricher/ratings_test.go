package enricher

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/obs"
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

type splitRow struct {
	RatingID events.BigInt `json:"RATING_ID"`
	UserID   events.Int    `json:"USER_ID"`
	Stars    events.Int    `json:"STARS"`
	Channel  events.String `json:"CHANNEL"`
	Message  events.String `json:"MESSAGE"`
}

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
	noCustomer := counterValue(obs.Dropped.WithLabelValues(topology.StreamRatingsWithCustomerData, "no_customer"))
	noFirst := counterValue(obs.Dropped.WithLabelValues(topology.StreamRatingsWithCustomerData, "null_first_name"))
	for _, r := range ratings {
		h.publish(topology.SubjectRatings, ratingJSON(r.id, r.user, r.stars, r.channel))
	}
	bad := h.publish(topology.SubjectRatings, `{"user_id":1,"stars":3,"channel":"iOS"}`)
	h.publish(topology.SubjectRatings, `{"rating_id":"x1"}`)
	run := h.start(DefaultConfig())

	wantLive := []int{1, 3, 4}
	wantTest := []int{2, 5, 7}
	wantJoined := []events.RatingWithCustomer{
		{RatingID: events.NewBigInt(1), Message: events.NewString(ratingMessage), Stars: events.NewInt(4), Channel: events.NewString("iOS"),
			ID: events.NewInt(1), FullName: events.NewString("Rica Blaisdell"), ClubStatus: events.NewString("bronze"), Email: events.NewString("rblaisdell0@rambler.ru")},
		{RatingID: events.NewBigInt(2), Message: events.NewString(ratingMessage), Stars: events.NewInt(1), Channel: events.NewString("iOS-test"),
			ID: events.NewInt(42), FullName: events.NewString("Rick Astley")},
		{RatingID: events.NewBigInt(5), Message: events.NewString(ratingMessage), Stars: events.NewInt(1), Channel: events.NewString("Android-TEST"),
			ID: events.NewInt(8), FullName: events.NewString("Patti"), ClubStatus: events.NewString("silver"), Email: events.NewString("prosten7@ihg.com")},
		{RatingID: events.NewBigInt(6), Message: events.NewString(ratingMessage), Stars: events.NewInt(2),
			ID: events.NewInt(2), FullName: events.NewString("Ruthie Brockherst"), ClubStatus: events.NewString("platinum"), Email: events.NewString("rbrockherst1@ow.ly")},
	}
	h.waitCount(topology.StreamRatingsLive, uint64(len(wantLive)))
	h.waitCount(topology.StreamRatingsTest, uint64(len(wantTest)))
	h.waitCount(topology.StreamRatingsWithCustomerData, uint64(len(wantJoined)))
	h.waitCount(topology.StreamDeadLetter, 2)
	time.Sleep(200 * time.Millisecond)

	byID := map[int]rating{}
	for _, r := range ratings {
		byID[r.id] = r
	}
	for stream, want := range map[string][]int{topology.StreamRatingsLive: wantLive, topology.StreamRatingsTest: wantTest} {
		got := h.messages(stream, "")
		if len(got) != len(want) {
			t.Fatalf("%s has %d rows, want %d", stream, len(got), len(want))
		}
		for i, m := range got {
			r := byID[want[i]]
			row := decode[splitRow](t, m.Data)
			exp := splitRow{events.NewBigInt(int64(r.id)), events.NewInt(int32(r.user)), events.NewInt(int32(r.stars)),
				events.NewString(r.channel.(string)), events.NewString(ratingMessage)}
			if row != exp {
				t.Errorf("%s[%d] = %+v, want %+v", stream, i, row, exp)
			}
			if k := m.Header.Get(events.HeaderKey); k != fmt.Sprint(r.id) {
				t.Errorf("%s[%d] key %q", stream, i, k)
			}
		}
	}
	joined := h.messages(topology.StreamRatingsWithCustomerData, "")
	if len(joined) != len(wantJoined) {
		t.Fatalf("%d joined rows, want %d", len(joined), len(wantJoined))
	}
	for i, m := range joined {
		if got := decode[events.RatingWithCustomer](t, m.Data); got != wantJoined[i] {
			t.Errorf("RATINGS_WITH_CUSTOMER_DATA[%d] = %+v\n(%s), want %+v", i, got, m.Data, wantJoined[i])
		}
		if k := m.Header.Get(events.HeaderKey); k != fmt.Sprint(wantJoined[i].ID.V) {
			t.Errorf("RATINGS_WITH_CUSTOMER_DATA[%d] key %q", i, k)
		}
	}
	if got := counterValue(obs.Dropped.WithLabelValues(topology.StreamRatingsWithCustomerData, "no_customer")) - noCustomer; got != 2 {
		t.Errorf("no_customer drops: %v, want 2", got)
	}
	if got := counterValue(obs.Dropped.WithLabelValues(topology.StreamRatingsWithCustomerData, "null_first_name")) - noFirst; got != 1 {
		t.Errorf("null_first_name drops: %v, want 1", got)
	}
	dead := h.messages(topology.StreamDeadLetter, topology.DeadLetterPrefix+topology.StreamRatings)
	if len(dead) != 2 || dead[0].Header.Get(pipe.HeaderDLQReason) != pipe.ReasonMissingField ||
		dead[0].Header.Get(pipe.HeaderDLQSourceSeq) != fmt.Sprint(bad) || dead[1].Header.Get(pipe.HeaderDLQReason) != pipe.ReasonWrongType {
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
		c, ok := run.svc.customers.Get("1")
		_, gone := run.svc.customers.Get("2")
		return ok && !gone && bytes.Contains(c.tail, []byte("rica@example.com"))
	}, func() string { return "CUSTOMERS view did not follow" })
	h.publish(topology.SubjectRatings, ratingJSON(8, 1, 1, "iOS"))
	h.publish(topology.SubjectRatings, ratingJSON(9, 2, 1, "iOS"))
	h.waitCount(topology.StreamRatingsLive, uint64(len(wantLive)+2))
	time.Sleep(200 * time.Millisecond)
	joined = h.messages(topology.StreamRatingsWithCustomerData, "")
	if len(joined) != len(wantJoined)+1 {
		t.Fatalf("%d joined rows after the changes, want %d", len(joined), len(wantJoined)+1)
	}
	got := decode[events.RatingWithCustomer](t, joined[len(joined)-1].Data)
	if got.RatingID.V != 8 || got.ClubStatus.V != "platinum" || got.Email.V != "rica@example.com" {
		t.Errorf("join after the update: %+v", got)
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
	h.waitCount(topology.StreamDeadLetter, 3)
	clicks := h.messages(topology.StreamImplyNewsClicks, "")
	if string(clicks[0].Data) != click || string(clicks[1].Data) != click {
		t.Errorf("click bodies changed: %s", clicks[0].Data)
	}
	if clicks[0].Header.Get(events.HeaderKey) != "1001" || clicks[0].Header.Get(events.HeaderMsgID) != topology.SubjectImplyNewsClicks+":"+topology.StreamImplyNews+":1" {
		t.Errorf("click headers: %v", clicks[0].Header)
	}
	if s := h.messages(topology.StreamImplyNewsSessions, ""); string(s[0].Data) != session {
		t.Errorf("session body changed: %s", s[0].Data)
	}
	var reasons []string
	for _, d := range h.messages(topology.StreamDeadLetter, topology.DeadLetterPrefix+topology.StreamImplyNews) {
		reasons = append(reasons, d.Header.Get(pipe.HeaderDLQReason))
	}
	if fmt.Sprint(reasons) != fmt.Sprint([]string{pipe.ReasonInvalid, pipe.ReasonMissingField, pipe.ReasonNotJSON}) {
		t.Errorf("imply-news dead-letter reasons %v", reasons)
	}
}

package enricher

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/pipe"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// TestUnhappyPlatinumCustomers runs the demo's statement
//
//	SELECT FULL_NAME, CLUB_STATUS, EMAIL, STARS, MESSAGE, RATING_ID FROM RATINGS_WITH_CUSTOMER_DATA
//	WHERE STARS < 3 AND CLUB_STATUS = 'platinum' PARTITION BY FULL_NAME
//
// over rows that probe its WHERE clause (NULLs, case, coercion), against the clause evaluated
// by hand on the fixture's own values.
func TestUnhappyPlatinumCustomers(t *testing.T) {
	h := newHarness(t)
	type row struct {
		id    int64
		stars any // int, "2" (coerced), or nil
		club  any
		name  string
	}
	inputs := []row{
		{1, 1, "platinum", "A"},     // in
		{2, 3, "platinum", "B"},     // STARS < 3 fails
		{3, 2, "gold", "C"},         // not platinum
		{4, 2, "Platinum", "D"},     // case-sensitive
		{5, nil, "platinum", "E"},   // NULL STARS
		{6, 1, nil, "F"},            // NULL CLUB_STATUS
		{7, "2", "platinum", " G "}, // "2" -> 2: in; the key is the name
		{8, 0, "platinum", "H"},     // in
	}
	var want []row
	for i, r := range inputs {
		body, _ := json.Marshal(map[string]any{"RATING_ID": r.id, "MESSAGE": "m" + fmt.Sprint(r.id), "STARS": r.stars, "CHANNEL": "iOS",
			"CUSTOMER_ID": "13", "FULL_NAME": r.name, "CLUB_STATUS": r.club, "EMAIL": r.name + "@x"})
		h.publish(topology.StreamRatingsWithCustomerData, string(body), events.HeaderEventTime, strconv.Itoa(1700000000000+i))
		stars, isInt := r.stars.(int)
		if s, ok := r.stars.(string); ok {
			stars, _ = strconv.Atoi(s)
			isInt = true
		}
		if isInt && stars < 3 && r.club == "platinum" {
			want = append(want, r)
		}
	}
	h.publish(topology.StreamRatingsWithCustomerData, "{not json")
	h.start(DefaultConfig())
	h.waitCount(topology.StreamUnhappyPlatinumCustomers, uint64(len(want)))
	h.waitCount(topology.StreamDeadLetter, 1)
	got := h.messages(topology.StreamUnhappyPlatinumCustomers, "")
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i, m := range got {
		r := want[i]
		stars := fmt.Sprint(r.stars)
		exp := fmt.Sprintf(`{"FULL_NAME":%q,"CLUB_STATUS":"platinum","EMAIL":%q,"STARS":%s,"MESSAGE":"m%d","RATING_ID":%d}`, r.name, r.name+"@x", stars, r.id, r.id)
		if string(m.Data) != exp {
			t.Errorf("row %d = %s, want %s", i, m.Data, exp)
		}
		// NATS headers do not keep leading and trailing blanks.
		if k := m.Header.Get(events.HeaderKey); k != strings.TrimSpace(r.name) {
			t.Errorf("row %d key %q, want %q (PARTITION BY FULL_NAME)", i, k, strings.TrimSpace(r.name))
		}
		if id := m.Header.Get(events.HeaderMsgID); id != topology.StreamUnhappyPlatinumCustomers+":"+topology.StreamRatingsWithCustomerData+":"+strconv.FormatInt(r.id, 10) {
			t.Errorf("row %d Nats-Msg-Id %q is not derived from its input", i, id)
		}
		if et := m.Header.Get(events.HeaderEventTime); et != strconv.FormatInt(1700000000000+r.id-1, 10) {
			t.Errorf("row %d Event-Time %q is not the input's", i, et)
		}
	}
	dead := h.messages(topology.StreamDeadLetter, topology.DeadLetterPrefix+topology.StreamRatingsWithCustomerData)
	if len(dead) != 1 || dead[0].Header.Get(pipe.HeaderDLQReason) != pipe.ReasonNotJSON {
		t.Errorf("dead letters %d %v", len(dead), dead)
	}
}

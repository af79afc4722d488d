package generator

import (
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jetsuite/jetsuite/shared/events"
)

const testSeed = 42

func TestClickDistribution(t *testing.T) {
	users := map[int]int{}
	ips := map[string]int{}
	statuses := map[string]int{}
	html := 0
	const n = 20000
	for i := range uint64(n) {
		c := Click(testSeed, i)
		users[c.UserID]++
		ips[c.IP]++
		statuses[c.Status]++
		if !slices.Contains(clickIPs[:], c.IP) || !slices.Contains(clickRequests[:], c.Request) ||
			!slices.Contains(clickStatuses[:], c.Status) || !slices.Contains(clickBytes[:], c.Bytes) ||
			!slices.Contains(clickAgents[:], c.Agent) {
			t.Fatalf("click %d has a value outside datagen's options: %+v", i, c)
		}
		if c.RemoteUser != "-" || c.Referrer != "-" {
			t.Fatalf("click %d: remote_user/referrer %q/%q, want -", i, c.RemoteUser, c.Referrer)
		}
		if want := int64(1 + 10*i); c.UnderTime != want || c.Time != strconv.FormatInt(want, 10) {
			t.Fatalf("click %d: time %q _time %d, want iteration %d", i, c.Time, c.UnderTime, want)
		}
		if regexp.MustCompile(`html`).MatchString(c.Request) {
			html++
		}
	}
	for u := -1; u <= 39; u++ {
		if users[u] == 0 {
			t.Errorf("userid %d never generated", u)
		}
	}
	if len(users) != 41 {
		t.Errorf("userids: %d distinct values, want 41 (-1..39): %v", len(users), users)
	}
	// 36 distinct addresses among the 40 options (4 duplicated).
	if len(ips) != 36 {
		t.Errorf("%d distinct ips, want 36", len(ips))
	}
	// Duplicated options weigh double: 222.168.57.122 (2/40) vs 111.152.45.45 (1/40).
	if r := float64(ips["222.168.57.122"]) / float64(ips["111.152.45.45"]); r < 1.6 || r > 2.5 {
		t.Errorf("duplicate ip weight ratio %.2f, want ~2", r)
	}
	if p := float64(html) / n; p < 0.63 || p > 0.70 {
		t.Errorf("P(html) = %.3f, want ~4/6", p)
	}
	if len(statuses) != 6 {
		t.Errorf("statuses %v", statuses)
	}

	// status and bytes are JSON strings, field order as datagen's.
	b, err := json.Marshal(Click(testSeed, 0))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"status", "bytes", "time", "ip"} {
		if _, ok := raw[f].(string); !ok {
			t.Errorf("%s is %T in %s, want a JSON string", f, raw[f], b)
		}
	}
	for _, f := range []string{"userid", "_time"} {
		if _, ok := raw[f].(float64); !ok {
			t.Errorf("%s is %T in %s, want a JSON number", f, raw[f], b)
		}
	}
	if !regexp.MustCompile(`^\{"ip":.*"userid":.*"remote_user":.*"time":.*"_time":.*"request":.*"status":.*"bytes":.*"referrer":.*"agent":`).Match(b) {
		t.Errorf("field order: %s", b)
	}
	// The shared decoder (ksqlDB's coercion) accepts it.
	c, err := events.DecodeClick(b)
	if err != nil || !c.Status.Valid || c.Status.V < 200 {
		t.Fatalf("DecodeClick(%s) = %+v, %v", b, c, err)
	}
}

func TestCodesUsersPageviews(t *testing.T) {
	for i, want := range StatusCodes {
		if got := Code(testSeed, uint64(i)); got != want {
			t.Errorf("code %d = %+v, want %+v", i, got, want)
		}
	}
	seen := map[int]int{}
	for n := uint64(6); n < 600; n++ {
		c := Code(testSeed, n)
		if !slices.Contains(StatusCodes[:], c) {
			t.Fatalf("code %d = %+v not in the table", n, c)
		}
		seen[c.Code]++
	}
	if len(seen) != 6 {
		t.Errorf("random codes cover %v", seen)
	}

	first := map[int]UserRecord{}
	for n := range uint64(3 * WebUserIDs) {
		u := User(testSeed, n)
		if want := int(n%WebUserIDs) + 1; u.UserID != want {
			t.Fatalf("user event %d has user_id %d, want %d", n, u.UserID, want)
		}
		if !slices.Contains(usernames[:], u.Username) || !slices.Contains(firstNames[:], u.FirstName) ||
			!slices.Contains(lastNames[:], u.LastName) || !slices.Contains(cities[:], u.City) ||
			!slices.Contains(levels[:], u.Level) || u.RegisteredAt < registeredMin || u.RegisteredAt >= registeredMax {
			t.Fatalf("user %d out of range: %+v", n, u)
		}
		if f, ok := first[u.UserID]; !ok {
			first[u.UserID] = u
		} else if f.Username != u.Username || f.FirstName != u.FirstName || f.LastName != u.LastName || f.RegisteredAt != u.RegisteredAt {
			t.Fatalf("user %d changed identity: %+v then %+v", u.UserID, f, u)
		}
	}
	if len(first) != WebUserIDs {
		t.Errorf("%d users, want %d", len(first), WebUserIDs)
	}
	b, _ := json.Marshal(User(testSeed, 0))
	if wu, err := events.DecodeWebUser(b); err != nil || wu.UserID.V != 1 {
		t.Fatalf("DecodeWebUser(%s) = %+v, %v", b, wu, err)
	}

	re := regexp.MustCompile(`^User_[1-9]$`)
	rp := regexp.MustCompile(`^Page_[1-9][0-9]$`)
	for n := range uint64(2000) {
		p := Pageview(testSeed, n)
		if p.Viewtime != int64(1+10*n) || !re.MatchString(p.UserID) || !rp.MatchString(p.PageID) {
			t.Fatalf("pageview %d: %+v", n, p)
		}
	}
}

func TestRatingDistribution(t *testing.T) {
	users := map[int]bool{}
	stars := map[int]bool{}
	channels := map[string]bool{}
	messages := map[string]bool{}
	for n := range uint64(10000) {
		r := Rating(testSeed, n)
		if r.RatingID != int64(n)+1 || r.RatingTime != int64(1+12*n) {
			t.Fatalf("rating %d: id %d time %d", n, r.RatingID, r.RatingTime)
		}
		if r.UserID < -1 || r.UserID > 19 || r.Stars < 1 || r.Stars > 4 || r.RouteID < 1 || r.RouteID > 9998 ||
			!slices.Contains(ratingChannels[:], r.Channel) || !slices.Contains(ratingMessages[:], r.Message) {
			t.Fatalf("rating %d out of range: %+v", n, r)
		}
		users[r.UserID], stars[r.Stars], channels[r.Channel], messages[r.Message] = true, true, true, true
	}
	if len(users) != 21 || len(stars) != 4 || len(channels) != 5 || len(messages) != 11 {
		t.Errorf("coverage: %d users, %d stars, %d channels, %d messages", len(users), len(stars), len(channels), len(messages))
	}
	b, _ := json.Marshal(Rating(testSeed, 0))
	if r, err := events.DecodeRating(b); err != nil || r.RatingID.V != 1 {
		t.Fatalf("DecodeRating(%s) = %+v, %v", b, r, err)
	}
}

func TestDeterminism(t *testing.T) {
	run := func(seed uint64) []any {
		var out []any
		for n := range uint64(200) {
			out = append(out, Click(seed, n), Rating(seed, n), User(seed, n), Pageview(seed, n), Code(seed, n))
		}
		return out
	}
	if !reflect.DeepEqual(run(7), run(7)) {
		t.Fatal("two runs with the same seed differ")
	}
	diff := 0
	for n := range uint64(100) {
		if Click(7, n) != Click(8, n) {
			diff++
		}
	}
	if diff < 90 {
		t.Errorf("seeds 7 and 8 give %d/100 different clicks; seeds do not matter?", diff)
	}

	now := time.Unix(1_700_000_000, 0)
	a, b := &NewsStream{Seed: 7, MaxOpen: 20}, &NewsStream{Seed: 7, MaxOpen: 20}
	for n := range uint64(500) {
		ka, ra := a.Next(n, now)
		kb, rb := b.Next(n, now)
		if ka != kb || !reflect.DeepEqual(ra, rb) {
			t.Fatalf("imply-news record %d differs: %v / %v", n, ra, rb)
		}
	}
	ca, cb := &Customers{Seed: 7, Step: time.Second, UpdateEvery: time.Second}, &Customers{Seed: 7, Step: time.Second, UpdateEvery: time.Second}
	for n := range uint64(60) {
		at := now.Add(time.Duration(n) * time.Second)
		ea, eb := ca.Next(n, at), cb.Next(n, at)
		ja, _ := json.Marshal(ea)
		jb, _ := json.Marshal(eb)
		if string(ja) != string(jb) {
			t.Fatalf("customers event %d differs:\n%s\n%s", n, ja, jb)
		}
	}
}

func TestNewsStream(t *testing.T) {
	s := &NewsStream{Seed: testSeed, MaxOpen: 30}
	now := time.Unix(1_700_000_000, 0)
	clicks := map[uint64][]NewsClickRecord{}
	sessions := 0
	for n := range uint64(20000) {
		key, rec := s.Next(n, now.Add(time.Duration(n)*time.Millisecond))
		switch r := rec.(type) {
		case NewsClickRecord:
			if key != strconv.FormatUint(r.Sid, 10) || r.RecordType != "click" {
				t.Fatalf("click %d: key %s %+v", n, key, r)
			}
			prev := clicks[r.Sid]
			if len(r.StatesVisited) != len(prev)+1 || r.StatesVisited[len(prev)] != r.State ||
				(len(prev) == 0 && r.State != "home") {
				t.Fatalf("click %d: states %v after %d clicks", n, r.StatesVisited, len(prev))
			}
			if !slices.Contains([]string{"200", "404", "500"}, r.StatusCode) {
				t.Fatalf("statuscode %q", r.StatusCode)
			}
			clicks[r.Sid] = append(prev, r)
		case NewsSessionRecord:
			cs := clicks[r.Sid]
			if len(cs) == 0 || cs[len(cs)-1].State != "exitSession" || r.RecordType != "session" {
				t.Fatalf("session %d ended after %d clicks (last %v)", r.Sid, len(cs), cs)
			}
			if !reflect.DeepEqual(r.StatesVisited, cs[len(cs)-1].StatesVisited) || r.Home != 1 || r.ExitSession != 1 {
				t.Fatalf("session record %+v does not summarise its clicks", r)
			}
			sessions++
			delete(clicks, r.Sid)
		default:
			t.Fatalf("record %d is %T", n, rec)
		}
	}
	if sessions < 1000 {
		t.Errorf("only %d sessions completed in 20000 records", sessions)
	}
	if len(s.Open) > 30 {
		t.Errorf("%d sessions open, max 30", len(s.Open))
	}
	// State survives a JSON round trip (what GENERATOR_STATE keeps).
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back NewsStream
	if err := json.Unmarshal(b, &back); err != nil || back.NextSid != s.NextSid || len(back.Open) != len(s.Open) {
		t.Fatalf("state round trip: %v %+v", err, back)
	}
}

func TestPacer(t *testing.T) {
	var p pacer
	start := time.Unix(1000, 0)
	sent := int64(0)
	for ms := 0; ms <= 10000; ms += 7 {
		d := p.due(20, start.Add(time.Duration(ms)*time.Millisecond))
		p.took(d)
		sent += d
	}
	if sent < 199 || sent > 201 {
		t.Errorf("20/s over 10 s sent %d", sent)
	}
	// After a 10 s stall, at most one second's worth is made up.
	d := p.due(20, start.Add(20*time.Second))
	if d > 21 {
		t.Errorf("after a stall %d due, want <= 21", d)
	}
}

func TestSessionizeSchedule(t *testing.T) {
	s := time.Second
	for _, c := range []struct {
		at     time.Duration
		paused bool
		until  time.Duration
	}{
		{0, false, 90 * s},
		{89 * s, false, s},
		{90 * s, true, 35 * s},
		{124 * s, true, s},
		{125 * s, false, 90 * s},
		{214 * s, false, s},
		{215 * s, true, 35 * s},
		{250 * s, false, 90 * s},
		{90*s + 100*125*s + 10*s, true, 25 * s},
	} {
		p, u := SessionizePaused(c.at)
		if p != c.paused || u != c.until {
			t.Errorf("at %v: paused %v for %v, want %v for %v", c.at, p, u, c.paused, c.until)
		}
	}
	// A fake clock ticking every second through 10 cycles: paused exactly 35 s of every 125 s
	// after the warm-up, never during it.
	paused := 0
	for at := time.Duration(0); at < 90*s+10*125*s; at += s {
		if p, _ := SessionizePaused(at); p {
			if at < 90*s {
				t.Fatalf("paused during warm-up at %v", at)
			}
			paused++
		}
	}
	if paused != 10*35 {
		t.Errorf("paused %d s over 10 cycles, want 350", paused)
	}
}

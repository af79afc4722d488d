package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/pipe"
	"github.com/jetsuite/jetsuite/shared/testenv"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// TestChaos: both pipelines under faults. The enricher, the windower, the CDC reader and the
// alerter run as separate `jetsuite <service>` OS processes against one embedded NATS server.
// The test publishes clicks and ratings (out-of-order, late, duplicated by Nats-Msg-Id, and
// garbage), SIGKILLs the enricher, the windower and the alerter several times each at
// seeded-random progress points (restarting each at once), and restarts the NATS server once on
// the same data. Then:
//   - every row of every windowed table equals the independent reference (package reference)
//     computed over the inputs in source-stream order;
//   - every derived stream holds each input exactly once and in input order;
//   - every garbage input is in DEAD_LETTER, once per service that reads it, with its reason;
//   - every consumer has nothing pending within settleWithin of the end (nothing waits out a
//     30 s ack wait);
//   - Slack got exactly one message per unhappy platinum rating, in rating order.
//
// JETSUITE_CHAOS_SEED picks another seed (inputs, kill points and the restart point derive from
// it); the seed is logged.
func TestChaos(t *testing.T) {
	// The fused plan (the default: the windower runs the joins on CLICKSTREAM and RATINGS and
	// publishes the joined streams) and the unfused one: the same end state. And fused with
	// the reading split (--repartition, four partitions): each kill stops the router and the
	// partitions' owner at once.
	for _, fuse := range []bool{true, false} {
		t.Run(fmt.Sprintf("fuse=%v", fuse), func(t *testing.T) { chaos(t, fuse, false) })
	}
	t.Run("fuse=true,repartition", func(t *testing.T) { chaos(t, true, true) })
}

func chaos(t *testing.T, fuse, split bool) {
	cfg := chaosConfig{clicks: 20_000, ratings: 3_000, publishFor: 20 * time.Second,
		kills: map[string]int{"enricher": 4, "windower": 4, "alerting": 3}, seed: 20261201}
	if testing.Short() {
		cfg = chaosConfig{clicks: 5_000, ratings: 800, publishFor: 8 * time.Second,
			kills: map[string]int{"enricher": 2, "windower": 2, "alerting": 1}, seed: cfg.seed}
	}
	cfg.fuse = fuse
	if split {
		cfg.partitions, cfg.repartition = 4, true
	}
	runChaos(t, cfg)
}

// runChaos runs the chaos test as cfg says.
func runChaos(t *testing.T, cfg chaosConfig) {
	fuse := cfg.fuse
	if s := os.Getenv("JETSUITE_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("JETSUITE_CHAOS_SEED: %v", err)
		}
		cfg.seed = v
	}
	started := time.Now()
	plan := newChaosPlan(cfg)
	t.Logf("seed %d: %d clicks, %d ratings, %d garbage, %d duplicate publications, %d inputs in all; publishing over %s",
		cfg.seed, cfg.clicks, cfg.ratings, plan.garbage, plan.dups, len(plan.inputs), cfg.publishFor)

	tmp := t.TempDir()
	bin := buildJetsuite(t, tmp)
	dataDir, addr := t.TempDir(), testenv.FreeAddr(t)
	env := natstest.StartAt(t, dataDir, addr)
	url := "nats://" + addr
	ctx := context.Background()
	nc, js := natstest.Dial(t, url, "chaos-test", 10*time.Second)

	// Tables first: web users and status codes (the enricher loads them), customers as Debezium
	// change events (the CDC reader materialises CUSTOMERS).
	const slackChannel = "C0CHAOS0001"
	slack := newChaosSlack(t, slackChannel)
	procEnv := chaosEnv(map[string]string{
		"NATS_URL":                         url,
		"JETSUITE_HTTP_LISTEN":             "none",
		"JETSUITE_LOG_LEVEL":               "info",
		"JETSUITE_WINDOWER_FLUSH_INTERVAL": "100ms",
		// Stream time follows event time only: a service that is down for a moment must not
		// let the wall clock close windows (the reference knows no wall clock).
		"JETSUITE_WINDOWER_IDLE_TIMEOUT": "0s",
		"JETSUITE_FUSE":                  strconv.FormatBool(fuse),
		"JETSUITE_PARTITIONS":            strconv.Itoa(max(cfg.partitions, 1)),
		"JETSUITE_REPARTITION":           strconv.FormatBool(cfg.repartition),
		"SLACK_BOT_TOKEN":                "xoxb-chaos-test",
		"SLACK_CHANNEL":                  slackChannel,
		"SLACK_API_URL":                  slack.srv.GetAPIURL(),
		"SLACK_RATE":                     "0", // unpaced: one message per alert, no digests
		"SLACK_RETRY_MIN":                "100ms",
		"SLACK_RETRY_MAX":                "1s",
	})
	// Instance n > 1 of a service is "<service>-<n>"; the monkey kills instance 1.
	procs := map[string]*proc{}
	var names []string
	for _, service := range []string{"cdc", "enricher", "windower", "alerting"} {
		for i := range max(cfg.instances[service], 1) {
			name := service
			if i > 0 {
				name += "-" + strconv.Itoa(i+1)
			}
			procs[name] = newProc(t, bin, name, tmp, procEnv)
			names = append(names, name)
		}
	}
	var joiner *proc // started later, once cfg.joinAt inputs are published
	if cfg.join != "" {
		joiner = newProc(t, bin, cfg.join, tmp, procEnv)
		procs[joiner.name] = joiner // (the monkey reads the map: no writes once it runs)
		names = append(names, joiner.name)
	}
	pub := &chaosPublisher{t: t, js: js}
	pub.publish(plan.tables)
	procs["cdc"].start()
	waitCustomers(t, js, plan.customers)
	for _, name := range names {
		if name != "cdc" && procs[name] != joiner {
			procs[name].start()
		}
	}

	// The monkey kills at progress points; the publisher paces the inputs and restarts NATS once.
	monkey := newChaosMonkey(t, cfg, plan, js, slack, procs, started)
	monkeyDone := make(chan struct{})
	go func() { defer close(monkeyDone); monkey.run() }()

	// Bursts of seeded-random size (so that the services have batches in flight when they are
	// killed), on a schedule that spreads the inputs over cfg.publishFor.
	rng := rand.New(rand.NewPCG(cfg.seed, 99))
	var bursts []int // end index of each burst
	for n := 0; n < len(plan.inputs); {
		n = min(len(plan.inputs), n+20+rng.IntN(1200))
		bursts = append(bursts, n)
	}
	restartAt := len(plan.inputs) * (35 + rng.IntN(31)) / 100
	t.Logf("publishing in %d bursts; NATS restart planned after input %d", len(bursts), restartAt)
	pubStart, from, restarted := time.Now(), 0, false
	for _, to := range bursts {
		at := pubStart.Add(time.Duration(float64(cfg.publishFor) * float64(from) / float64(len(plan.inputs))))
		if d := time.Until(at); d > 0 {
			<-time.After(d)
		}
		if !restarted && to > restartAt {
			pub.publish(plan.inputs[from:restartAt])
			monkey.published.Store(int64(restartAt))
			env = restartNATS(t, env, dataDir, addr, nc, time.Since(started))
			restarted = true
			// The last inputs again, same Nats-Msg-Ids: the restarted server still knows them.
			dupFrom := max(0, restartAt-50)
			pub.publish(dupsOf(plan.inputs[dupFrom:restartAt]))
			t.Logf("republished inputs %d..%d after the restart (duplicates by Nats-Msg-Id)", dupFrom+1, restartAt)
			from = restartAt
		}
		pub.publish(plan.inputs[from:to])
		from = to
		monkey.published.Store(int64(to))
		if joiner != nil && !joiner.running() && to >= cfg.joinAt {
			joiner.start()
			t.Logf("started %s after input %d, at %s", joiner.name, to, time.Since(started).Truncate(time.Millisecond))
		}
	}
	end := time.Now()
	t.Logf("all %d inputs published after %s", len(plan.inputs), end.Sub(started).Truncate(time.Millisecond))

	// Nothing may wait out an ack wait: within settleWithin of the last input every kill is
	// done, every output is there and every consumer has nothing pending.
	check := newChaosCheck(t, js, plan, slack, cfg)
	const settleWithin = 20 * time.Second
	settled, last := waitSettled(ctx, check, monkey, monkeyDone, end.Add(settleWithin))
	if settled {
		t.Logf("settled %s after the last input", time.Since(end).Truncate(time.Millisecond))
	} else {
		t.Errorf("not settled %s after the last input (an ack wait is 30 s): %s", settleWithin, strings.Join(last, "; "))
		settled, last = waitSettled(ctx, check, monkey, monkeyDone, end.Add(60*time.Second))
		if settled {
			t.Logf("settled only %s after the last input", time.Since(end).Truncate(time.Millisecond))
		} else {
			t.Errorf("not settled 60 s after the last input: %s", strings.Join(last, "; "))
		}
	}
	monkey.stop()
	<-monkeyDone
	t.Logf("chaos: %s, 1 NATS restart", monkey.summary())
	for name, p := range procs {
		if !p.running() && !(cfg.stayDead[name] && p.kills > 0) {
			t.Errorf("%s is not running at the end\n%s", name, p.tail(20))
		}
		for _, e := range p.exits {
			t.Logf("NOTE: %s", e)
		}
	}

	check.all()
	if t.Failed() {
		for _, name := range names {
			p := procs[name]
			t.Logf("%s: %d starts, %d kills, %d WARN, %d ERROR lines; last lines:\n%s", name, p.starts, p.kills,
				p.count("level=WARN"), p.count("level=ERROR"), p.tail(8))
		}
		logs := map[string]string{}
		for name, p := range procs {
			logs[name+".log"] = p.logPath
		}
		keepLogs(t, logs)
	}
	t.Logf("chaos test took %s", time.Since(started).Truncate(time.Millisecond))
}

type chaosConfig struct {
	clicks, ratings int
	publishFor      time.Duration
	kills           map[string]int
	seed            uint64
	fuse            bool // the services run the fused plan
	// instances runs more than one instance of a service (default 1 each), partitions
	// spreads every aggregation over that many partitions (default 1), and join names an
	// instance started once joinAt inputs are published ("windower-4").
	instances  map[string]int
	partitions int
	// repartition: the windower splits its reading (a router and the shuffle stream).
	repartition bool
	join        string
	joinAt      int
	// stayDead: the monkey does not restart these services after killing them (their work
	// must move to their other instances).
	stayDead map[string]bool
}

// chaosInput is one message the test publishes.
type chaosInput struct {
	subject, id string
	ts          int64
	body        string
	reason      string // garbage: the dead-letter reason expected
	click       *goldenClick
	rating      *chaosRating
}

type chaosRating struct {
	id                   int64
	user, stars          int
	channel, message     string
	ts                   int64
	fullName             string // after the join; "" when the rating does not join
	club                 string
	joined, unhappy, tst bool
}

type chaosCustomer struct {
	id          int
	first, last any // string or nil
	email, club string
}

// fullName is FIRST_NAME + ' ' + LAST_NAME: "" (NULL) when either is NULL.
func (c chaosCustomer) fullName() string {
	if c.first == nil || c.last == nil {
		return ""
	}
	return c.first.(string) + " " + c.last.(string)
}

func (c chaosCustomer) row() map[string]any {
	return map[string]any{"id": c.id, "first_name": c.first, "last_name": c.last, "email": c.email, "gender": "Female",
		"club_status": c.club, "comments": nil, "create_ts": "2026-11-21T10:00:00Z", "update_ts": "2026-11-21T10:00:00Z"}
}

type chaosPlan struct {
	users     []goldenUser
	customers []chaosCustomer
	tables    []chaosInput // users, codes and customer change events, published before the services start
	inputs    []chaosInput // clicks and ratings, valid, garbage and duplicates, in publish order
	garbage   int
	dups      int
}

const chaosRatingsT0 = int64(1_763_719_200_000)

// newChaosPlan derives every input from the seed.
func newChaosPlan(cfg chaosConfig) *chaosPlan {
	rng := rand.New(rand.NewPCG(cfg.seed, 7))
	p := &chaosPlan{}
	for id := 1; id <= 39; id++ {
		p.users = append(p.users, goldenUser{id, goldenNames[id%len(goldenNames)], goldenCities[id%len(goldenCities)]})
	}
	for _, u := range p.users {
		p.tables = append(p.tables, chaosInput{subject: topology.SubjectClickstreamUsers, id: "user-" + strconv.Itoa(u.id), ts: goldenT0,
			body: fmt.Sprintf(`{"user_id":%d,"username":%q,"registered_at":1410180399070,"first_name":"Greta","last_name":"Garrity","city":%q,"level":"Gold"}`, u.id, u.username, u.city)})
	}
	codes := make([]int, 0, len(goldenCodes))
	for code := range goldenCodes {
		codes = append(codes, code)
	}
	sort.Ints(codes)
	for _, code := range codes {
		p.tables = append(p.tables, chaosInput{subject: topology.SubjectClickstreamCodes, id: "code-" + strconv.Itoa(code), ts: goldenT0,
			body: fmt.Sprintf(`{"code":%d,"definition":%q}`, code, goldenCodes[code])})
	}
	// Customers: created, then some promoted to platinum; two without a first name (their
	// ratings do not join), one without a last name (its FULL_NAME is NULL: no row in RATINGS_PER_CUSTOMER_PER_15MINUTE).
	clubs := []string{"platinum", "gold", "silver", "bronze"}
	firsts := []string{"Rick", "Ruthie", "Mariejeanne", "Hashim", "Hansiain", "Robinet", "Sonnie", "Lucien"}
	lasts := []string{"Astley", "Brockherst", "Cocci", "Rumke", "Coda", "Leheude", "Cuttles", "Walden"}
	pos := 1000
	for id := 1; id <= 24; id++ {
		c := chaosCustomer{id: id, first: firsts[id%len(firsts)], last: lasts[(id/len(firsts)+id)%len(lasts)],
			email: fmt.Sprintf("customer%d@example.com", id), club: clubs[id%len(clubs)]}
		switch id {
		case 7, 19:
			c.first = nil
		case 11:
			c.last = nil
		}
		pos += 10
		p.tables = append(p.tables, chaosInput{subject: topology.SubjectCustomersCDC, id: fmt.Sprintf("dbz-%d", pos), ts: chaosRatingsT0,
			body: debeziumEvent("c", pos, nil, c.row())})
		if id%5 == 0 && c.club != "platinum" {
			before := c.row()
			c.club = "platinum"
			pos += 10
			p.tables = append(p.tables, chaosInput{subject: topology.SubjectCustomersCDC, id: fmt.Sprintf("dbz-%d", pos), ts: chaosRatingsT0,
				body: debeziumEvent("u", pos, before, c.row())})
		}
		p.customers = append(p.customers, c)
	}
	byCustomer := map[int]chaosCustomer{}
	for _, c := range p.customers {
		byCustomer[c.id] = c
	}

	clicks := chaosClicks(rng, cfg.clicks)
	ratings := chaosRatings(rng, cfg.ratings, byCustomer)
	// One schedule: ratings spread among the clicks.
	var valid []chaosInput
	ri := 0
	for i := range clicks {
		c := &clicks[i]
		valid = append(valid, chaosInput{subject: topology.SubjectClickstream, id: c.id, ts: c.ts, body: c.body(), click: c})
		for ri < len(ratings) && ri*len(clicks) <= i*len(ratings) {
			r := &ratings[ri]
			valid = append(valid, chaosInput{subject: topology.SubjectRatings, id: "rating-" + strconv.FormatInt(r.id, 10), ts: r.ts, body: r.body(), rating: r})
			ri++
		}
	}
	for ; ri < len(ratings); ri++ {
		r := &ratings[ri]
		valid = append(valid, chaosInput{subject: topology.SubjectRatings, id: "rating-" + strconv.FormatInt(r.id, 10), ts: r.ts, body: r.body(), rating: r})
	}
	// Garbage (about 0.5 %) and duplicates (about 1 %: an earlier input again, same id).
	big := `{"ip":"10.0.0.1","userid":3,"request":"GET /big.html HTTP/1.1","status":"200","agent":"` + strings.Repeat("x", 70<<10) + `"}`
	clickGarbage := []struct{ reason, body string }{
		{pipe.ReasonNotJSON, `GET /index.html HTTP/1.1`},
		{pipe.ReasonNotJSON, `{"ip":"10.0.0.1","userid":3,"status":"200"`},
		// A missing column is a NULL and status 999 a number (valid rows, as in ksqlDB); values
		// of the wrong type are garbage.
		{pipe.ReasonWrongType, `{"ip":{"v4":"10.0.0.1"},"userid":3,"request":"GET /a.html HTTP/1.1","status":"200"}`},
		{pipe.ReasonWrongType, `{"ip":"10.0.0.1","userid":"one","request":"GET /a.html HTTP/1.1","status":"200"}`},
		{pipe.ReasonWrongType, `{"ip":"10.0.0.1","userid":3,"request":"GET /a.html HTTP/1.1","status":true}`},
		{pipe.ReasonTooLarge, big},
	}
	ratingGarbage := []struct{ reason, body string }{
		{pipe.ReasonNotJSON, `{"rating_id":`},
		{pipe.ReasonNotJSON, `"hello"`},
		{pipe.ReasonWrongType, `{"rating_id":7,"user_id":3,"stars":[2],"channel":"web"}`},
		{pipe.ReasonWrongType, `{"rating_id":"x1","user_id":3,"stars":1}`},
	}
	tooLarge := 0
	for i, in := range valid {
		p.inputs = append(p.inputs, in)
		if r := rng.IntN(1000); r < 5 {
			n := len(p.inputs)
			if in.subject == topology.SubjectClickstream {
				g := clickGarbage[rng.IntN(len(clickGarbage))]
				if g.reason == pipe.ReasonTooLarge {
					if tooLarge >= 3 {
						g = clickGarbage[0]
					}
					tooLarge++
				}
				p.inputs = append(p.inputs, chaosInput{subject: in.subject, id: fmt.Sprintf("garbage-click-%d", n), ts: in.ts, body: g.body, reason: g.reason})
			} else {
				g := ratingGarbage[rng.IntN(len(ratingGarbage))]
				p.inputs = append(p.inputs, chaosInput{subject: in.subject, id: fmt.Sprintf("garbage-rating-%d", n), ts: in.ts, body: g.body, reason: g.reason})
			}
			p.garbage++
		} else if r < 15 && i > 0 {
			d := valid[max(0, i-1-rng.IntN(300))]
			p.inputs = append(p.inputs, d)
			p.dups++
		}
	}
	return p
}

// chaosClicks is goldenLog's recipe at another size: clicks every 250 ms of event time, 12 %
// out of order within grace, 3 % late, users clicking in bursts so that sessions end and merge,
// unknown users (NULL USERNAME) and an unknown status code (NULL DEFINITION).
func chaosClicks(rng *rand.Rand, n int) []goldenClick {
	ips := []string{"111.152.45.45", "222.90.225.227", "233.168.257.122"}
	reqs := []string{"GET /index.html HTTP/1.1", "GET /images/track.png HTTP/1.1", "GET /site/login.html HTTP/1.1"}
	statuses := []string{"200", "302", "404", "405", "406", "407", "500"}
	clicks := make([]goldenClick, 0, n)
	for i := range n {
		base := goldenT0 + int64(i)*250
		ts := base
		switch r := rng.IntN(100); {
		case r < 3:
			ts = base - 60_000 - rng.Int64N(60_000)
		case r < 15:
			ts = base - rng.Int64N(25_000)
		}
		slot := (base - goldenT0) / 40_000
		var candidates []int
		for id := 1; id <= 39; id++ {
			if (int64(id%len(goldenNames))+slot)%3 == 0 {
				candidates = append(candidates, id)
			}
		}
		candidates = append(candidates, -1, 0, 42)
		clicks = append(clicks, goldenClick{
			id: "click-" + strconv.Itoa(i), ts: ts, ip: ips[rng.IntN(len(ips))], userid: candidates[rng.IntN(len(candidates))],
			req: reqs[rng.IntN(len(reqs))], status: statuses[rng.IntN(len(statuses))],
		})
	}
	return clicks
}

// chaosRatings: a rating every 1.5 s of event time (15-minute windows), 10 % out of order within
// grace, 3 % late; users 1..28 (25..28 are no customers).
func chaosRatings(rng *rand.Rand, n int, customers map[int]chaosCustomer) []chaosRating {
	channels := []string{"iOS", "android", "web", "iOS-test", "Web-TEST"}
	messages := []string{"meh", "worst. flight. ever. #neveragain", "your team here rocks!", "more peanuts please", "(expletive deleted)"}
	out := make([]chaosRating, 0, n)
	for i := range n {
		base := chaosRatingsT0 + int64(i)*1500
		ts := base
		switch r := rng.IntN(100); {
		case r < 3:
			ts = base - 900_000 - rng.Int64N(900_000)
		case r < 13:
			ts = base - rng.Int64N(25_000)
		}
		r := chaosRating{id: 5000 + int64(i), user: 1 + rng.IntN(28), stars: 1 + rng.IntN(5), channel: channels[rng.IntN(len(channels))],
			message: messages[rng.IntN(len(messages))], ts: ts}
		r.tst = strings.Contains(strings.ToLower(r.channel), "test")
		if c, ok := customers[r.user]; ok && c.first != nil {
			r.joined, r.fullName, r.club = true, c.fullName(), c.club
			r.unhappy = r.stars < 3 && c.club == "platinum"
		}
		out = append(out, r)
	}
	return out
}

func (r chaosRating) body() string {
	return fmt.Sprintf(`{"rating_id":%d,"user_id":%d,"stars":%d,"route_id":%d,"rating_time":%d,"channel":%q,"message":%q}`,
		r.id, r.user, r.stars, 100+r.user, r.ts, r.channel, r.message)
}

func dupsOf(in []chaosInput) []chaosInput { return append([]chaosInput(nil), in...) }

// chaosPublisher publishes inputs as the generator does (Event-Time and Nats-Msg-Id headers),
// asynchronously, waits for every ack, and retries what failed (same id: harmless).
type chaosPublisher struct {
	t  *testing.T
	js jetstream.JetStream
}

func (p *chaosPublisher) publish(ins []chaosInput) {
	t := p.t
	t.Helper()
	msg := func(in chaosInput) *nats.Msg {
		m := nats.NewMsg(in.subject)
		m.Header.Set("Event-Time", strconv.FormatInt(in.ts, 10))
		m.Header.Set(jetstream.MsgIDHeader, in.id)
		m.Data = []byte(in.body)
		return m
	}
	futures := make([]jetstream.PubAckFuture, len(ins))
	sendErrs := make([]error, len(ins))
	for i, in := range ins {
		// A publish that cannot even be sent (the connection is reconnecting: the cluster
		// test stops the node it is connected to) is retried below like a failed one.
		futures[i], sendErrs[i] = p.js.PublishMsgAsync(msg(in))
	}
	select {
	case <-p.js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publish acks did not arrive within 30 s")
	}
	for i, f := range futures {
		err := sendErrs[i]
		if f != nil {
			select {
			case <-f.Ok():
				continue
			case err = <-f.Err():
			}
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err2 := p.js.PublishMsg(ctx, msg(ins[i]))
			cancel()
			if err2 == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("publish %s: %v, retries: %v", ins[i].id, err, err2)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// restartNATS stops the server and starts it again on the same data and address; every client
// (the services, the test's own connection) reconnects.
func restartNATS(t *testing.T, env *natstest.Env, dir, addr string, nc *nats.Conn, at time.Duration) *natstest.Env {
	t.Helper()
	down := time.Now()
	env.Stop()
	env = natstest.StartAt(t, dir, addr)
	deadline := time.Now().Add(30 * time.Second)
	for !nc.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("the test's connection did not reconnect within 30 s of the NATS restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("NATS server restarted at %s (down %s)", at.Truncate(time.Millisecond), time.Since(down).Truncate(time.Millisecond))
	return env
}

// waitCustomers waits until the CDC reader has materialised every customer.
func waitCustomers(t *testing.T, js jetstream.JetStream, customers []chaosCustomer) {
	t.Helper()
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, topology.TableCustomers)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		missing := 0
		for _, c := range customers {
			e, err := kv.Get(ctx, strconv.Itoa(c.id))
			var row map[string]any
			if err == nil {
				_ = json.Unmarshal(e.Value(), &row)
			}
			if row["CLUB_STATUS"] != c.club {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CUSTOMERS: %d of %d customers not (yet) as published after 60 s", missing, len(customers))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// chaosMonkey kills the enricher, the windower and the alerter at seeded-random points of the
// input (a point is due once that many inputs are published) and restarts each at once. A due
// kill waits until the victim's current incarnation is up (consuming), then (up to 2 s) for a
// moment when it holds unfinished input, so that it dies mid-batch; the log names the victim's
// own progress at that moment.
type chaosMonkey struct {
	t         *testing.T
	procs     map[string]*proc
	published atomic.Int64 // inputs published so far (the publisher counts)
	victims   []*victim
	quit      chan struct{}
	once      sync.Once
	start     time.Time
	stayDead  map[string]bool
}

// victim is a service with its kill points.
type victim struct {
	name    string
	up      string // a line the service logs when it consumes
	measure string // what progress measures
	// progress returns the measure and how many inputs the victim holds unfinished: unacked,
	// and for the enricher also without outputs yet.
	progress func(ctx context.Context) (n uint64, busy int, err error)
	points   []int64 // inputs published
	next     int
	dueSince time.Time // when the next point became due
}

func newChaosMonkey(t *testing.T, cfg chaosConfig, plan *chaosPlan, js jetstream.JetStream, slack *chaosSlack, procs map[string]*proc, start time.Time) *chaosMonkey {
	rng := rand.New(rand.NewPCG(cfg.seed, 13))
	consumer := func(ctx context.Context, stream, durable string) (*jetstream.ConsumerInfo, error) {
		c, err := js.Consumer(ctx, stream, durable)
		if err != nil {
			return nil, err
		}
		return c.Info(ctx)
	}
	m := &chaosMonkey{t: t, procs: procs, quit: make(chan struct{}), start: start, stayDead: cfg.stayDead}
	// Partitioned, the windower's progress is its consumers' least delivered sequence and their
	// pending inputs together (whichever instance runs which partitions).
	windowerProgress := func(stream string) func(ctx context.Context) (uint64, int, error) {
		return func(ctx context.Context) (uint64, int, error) {
			s, err := js.Stream(ctx, stream)
			if err != nil {
				return 0, 0, err
			}
			var n uint64
			busy, found := 0, 0
			names := s.ConsumerNames(ctx)
			for name := range names.Name() {
				// One consumer per set of partitions (-p<n>), or with the reading split the
				// router's (-shuffle).
				if name != "windower-"+stream && !strings.HasPrefix(name, "windower-"+stream+"-") {
					continue
				}
				info, err := consumer(ctx, stream, name)
				if err != nil {
					return 0, 0, err
				}
				if found == 0 || info.Delivered.Stream < n {
					n = info.Delivered.Stream
				}
				found++
				if !info.Created.Before(procs["windower"].startedAt()) {
					busy += info.NumAckPending
				}
			}
			if err := names.Err(); err != nil || found == 0 {
				return 0, 0, fmt.Errorf("no windower consumer on %s (%v)", stream, err)
			}
			return n, busy, nil
		}
	}
	m.victims = []*victim{
		// The enricher is busy when it holds input whose outputs are not out yet: delivered
		// beyond the source of the newest USER_CLICKSTREAM message, and unacked.
		{name: "enricher", up: "stage=enricher-clickstream stream=CLICKSTREAM", measure: "CLICKSTREAM seq delivered to enricher-clickstream", progress: func(ctx context.Context) (uint64, int, error) {
			info, err := consumer(ctx, topology.StreamClickstream, "enricher-clickstream")
			if err != nil {
				return 0, 0, err
			}
			n, busy := info.Delivered.Stream, 0
			s, err := js.Stream(ctx, topology.StreamUserClickstream)
			if err != nil {
				return 0, 0, err
			}
			var out uint64
			if last, err := s.GetLastMsgForSubject(ctx, topology.StreamUserClickstream); err == nil {
				out, _ = sourceSeq(last.Header.Get(jetstream.MsgIDHeader), topology.StreamClickstream)
			}
			if info.NumAckPending > 0 && n > out {
				busy = int(n - out)
			}
			return n, busy, nil
		}},
		// The windower recreates its consumer at start: one older than the incarnation is stale.
		{name: "windower", up: "source=USER_CLICKSTREAM", measure: "USER_CLICKSTREAM seq delivered to windower-USER_CLICKSTREAM",
			progress: windowerProgress(topology.StreamUserClickstream)},
		{name: "alerting", up: "sending alerts to Slack", measure: "Slack messages received", progress: func(ctx context.Context) (uint64, int, error) {
			n := uint64(slack.count())
			info, err := consumer(ctx, topology.StreamUnhappyPlatinumCustomers, "alerting-slack")
			if err != nil {
				return n, 0, nil
			}
			return n, info.NumAckPending, nil
		}},
	}
	if cfg.fuse {
		// Fused, the enricher only loads WEB_USERS and CLICKSTREAM_CODES (published first):
		// it is killed idle and must come back without disturbing anything. The windower
		// reads CLICKSTREAM and publishes the joined streams.
		m.victims[0] = &victim{name: "enricher", up: "stage=enricher-web-users stream=CLICKSTREAM_USERS", measure: "CLICKSTREAM_USERS seq delivered to enricher-web-users",
			progress: func(ctx context.Context) (uint64, int, error) {
				info, err := consumer(ctx, topology.StreamClickstreamUsers, "enricher-web-users")
				if err != nil {
					return 0, 0, err
				}
				return info.Delivered.Stream, info.NumAckPending, nil
			}}
		m.victims[1] = &victim{name: "windower", up: "source=CLICKSTREAM task=CLICKSTREAM", measure: "CLICKSTREAM seq delivered to windower-CLICKSTREAM",
			progress: windowerProgress(topology.StreamClickstream)}
	}
	for _, v := range m.victims {
		// One point in each of k equal slices of 8 %..92 % of the inputs.
		k := cfg.kills[v.name]
		for i := range k {
			lo := 0.08 + 0.84*float64(i)/float64(k)
			v.points = append(v.points, int64(float64(len(plan.inputs))*(lo+0.84/float64(k)*rng.Float64())))
		}
		t.Logf("kill plan: %s after input %v of %d", v.name, v.points, len(plan.inputs))
	}
	return m
}

func (m *chaosMonkey) run() {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-m.quit:
			return
		case <-tick.C:
		}
		left := 0
		for _, v := range m.victims {
			p := m.procs[v.name]
			if msg, ok := p.exitedOnItsOwn(); ok {
				m.t.Logf("%s; restarting it\n%s", msg, p.tail(10))
				p.start()
			}
			if v.next >= len(v.points) {
				continue
			}
			left++
			published := m.published.Load()
			if published < v.points[v.next] || !p.up(v.up) {
				continue
			}
			if v.dueSince.IsZero() {
				v.dueSince = time.Now()
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			n, busy, err := v.progress(ctx)
			cancel()
			if (err != nil || busy == 0) && time.Since(v.dueSince) < 2*time.Second {
				continue // NATS away, the consumer being recreated, or nothing in flight
			}
			pid := p.kill()
			restarted := "restarted"
			if m.stayDead[v.name] {
				restarted = "left dead"
			} else {
				p.start()
			}
			progress := fmt.Sprintf("%s = %d", v.measure, n)
			if err != nil {
				progress = fmt.Sprintf("%s unknown (%v)", v.measure, err)
			}
			m.t.Logf("kill %d/%d: SIGKILL %s (pid %d) at %s, %d inputs published (point %d), %s, %d inputs unfinished by its consumer's count; %s",
				v.next+1, len(v.points), v.name, pid, time.Since(m.start).Truncate(time.Millisecond), published, v.points[v.next], progress, busy, restarted)
			v.dueSince = time.Time{}
			v.next++
		}
		if left == 0 {
			return
		}
	}
}

func (m *chaosMonkey) stop() { m.once.Do(func() { close(m.quit) }) }

func (m *chaosMonkey) summary() string {
	var parts []string
	total := 0
	for _, v := range m.victims {
		parts = append(parts, fmt.Sprintf("%s killed %d times", v.name, v.next))
		total += v.next
	}
	return fmt.Sprintf("%d kills (%s)", total, strings.Join(parts, ", "))
}

func (m *chaosMonkey) progressReport() string {
	var parts []string
	for _, v := range m.victims {
		if v.next < len(v.points) {
			parts = append(parts, fmt.Sprintf("%s: %d inputs published, next point %d", v.name, m.published.Load(), v.points[v.next]))
		}
	}
	return strings.Join(parts, "; ")
}

// TestScaleOut: the chaos test with several instances of each service sharing the work
// (shared/lease): two enrichers, three windowers with every aggregation in four partitions,
// two alerters. The first windower is SIGKILLed mid-stream and stays dead (its partitions
// must move to the others), a fourth windower joins later (partitions move to it), the first
// enricher and alerter are killed and restarted, and NATS restarts once. The end state must be
// the same as one instance's: every table equal to the reference, every derived stream each
// input once and in input order, one Slack message per unhappy platinum rating. Both ways:
// every windower reading the whole source, and the reading split (--repartition: the router
// moves with its lease like any partition).
func TestScaleOut(t *testing.T) {
	for _, split := range []bool{false, true} {
		t.Run(fmt.Sprintf("repartition=%v", split), func(t *testing.T) { scaleOut(t, split) })
	}
}

func scaleOut(t *testing.T, split bool) {
	cfg := chaosConfig{clicks: 12_000, ratings: 2_000, publishFor: 20 * time.Second,
		kills: map[string]int{"enricher": 1, "windower": 1, "alerting": 1}, seed: 20261202, fuse: true,
		instances: map[string]int{"enricher": 2, "windower": 3, "alerting": 2}, partitions: 4,
		join: "windower-4", stayDead: map[string]bool{"windower": true}, repartition: split}
	if testing.Short() {
		cfg.clicks, cfg.ratings, cfg.publishFor = 4_000, 600, 10*time.Second
	}
	// The fourth windower joins at two thirds of the inputs, after the first one's kill point
	// (one point in 8 %..92 %: it may come later; the join happens regardless).
	cfg.joinAt = (cfg.clicks + cfg.ratings) * 2 / 3
	runChaos(t, cfg)
}

package indexer

import (
	"strconv"
	"strings"

	"github.com/jetsuite/jetsuite/shared/topology"
)

// The fixture is what a run of both pipelines writes: derived stream messages (as the enricher
// publishes them) and table changelogs (as the windower and loaders write them: every count
// change is a KV put, a merged-away session or a row that drops below HAVING is a KV delete).
// Values follow the datagen quickstarts and the customers table.

var (
	fxUsers    = []string{"akatz1022", "bobk_43", "Ferd88", "Reeva43", "Oriana_70", "AbdelKable_86"}
	fxCities   = []string{"Frankfurt", "Palo Alto", "San Diego", "London", "Raleigh", "New York"}
	fxIPs      = []string{"111.168.57.122", "122.152.45.245", "222.245.174.248", "111.90.225.227", "222.145.8.144"}
	fxStatuses = []int{200, 302, 404, 405, 406, 407, 200, 404}
	fxDefs     = map[int]string{200: "Successful", 302: "Redirect", 404: "Page not found", 405: "Method not allowed", 406: "Not acceptable", 407: "Proxy authentication required"}
	fxRequests = []string{"GET /index.html HTTP/1.1", "GET /site/user_status.html HTTP/1.1", "GET /images/logo-small.png HTTP/1.1", "GET /site/login.html HTTP/1.1"}
	fxChannels = []string{"iOS", "Android", "web", "iOS-test"}
	fxClub     = []string{"bronze", "silver", "gold", "platinum"}
	fxFirst    = []string{"Rica", "Ruthie", "Mariejeanne", "Hashim", "Hansiain", "Robinet", "Fay", "Patti", "Even", "Laney"}
	fxLast     = []string{"Blaisdell", "Brockherst", "Cocci", "Rumke", "Coda", "Leheude", "Huc", "Rosten", "Labram", "Toopin"}
	fxMessages = []string{"Exceeded all my expectations. Thank you !", "more peanuts please", "why is it so difficult to keep the bathrooms clean ?", "thank you for the most friendly, helpful experience today at your new lounge"}
)

// escapeKey writes a key column the way the windower does ('.' and other bytes as =XX).
func escapeKey(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
			continue
		}
		b.WriteString("=" + strings.ToUpper(strconv.FormatInt(int64(c)+0x100, 16)[1:]))
	}
	return b.String()
}

// windows counts rows of one windowed table and writes every change.
type windows struct {
	p      *publisher
	table  string
	size   int64
	having int64 // rows are written only while count > having
	counts map[string]int64
	lists  map[string][]any
}

func newWindows(p *publisher, table string, size, having int64) *windows {
	return &windows{p: p, table: table, size: size, having: having, counts: map[string]int64{}, lists: map[string][]any{}}
}

// add counts one event of group key at event time ts; row adds the value columns.
func (w *windows) add(key string, ts int64, countCol string, row map[string]any, item any) {
	start := ts - ts%w.size
	k := key + "." + strconv.FormatInt(start, 10)
	w.counts[k]++
	if item != nil {
		w.lists[k] = append(w.lists[k], item)
	}
	if w.counts[k] <= w.having {
		return
	}
	doc := map[string]any{"EVENT_TS": start, "WINDOW_START": start, "WINDOW_END": start + w.size, countCol: w.counts[k]}
	for c, v := range row {
		doc[c] = v
	}
	if item != nil {
		doc["RATINGS"] = w.lists[k]
	}
	w.p.row(w.table, k, doc)
}

// pipelineRun publishes n clicks' and n ratings' worth of derived messages and table rows with
// event times from base, 250 ms apart.
func pipelineRun(p *publisher, n int, base int64) {
	for i, code := range []int{200, 302, 404, 405, 406, 407} {
		p.row(topology.TableClickstreamCodes, strconv.Itoa(code), map[string]any{"CODE": code, "DEFINITION": fxDefs[code]})
		_ = i
	}
	for id := 1; id <= 10; id++ {
		p.row(topology.TableWebUsers, strconv.Itoa(id), map[string]any{"USER_ID": id, "USERNAME": fxUsers[id%len(fxUsers)],
			"CITY": fxCities[id%len(fxCities)], "LEVEL": "Gold", "REGISTERED_AT": base - int64(id)*86_400_000})
		p.row(topology.TableCustomers, strconv.Itoa(id), map[string]any{"ID": id, "FIRST_NAME": fxFirst[id-1], "LAST_NAME": fxLast[id-1],
			"EMAIL": strings.ToLower(fxFirst[id-1]) + "@example.com", "CLUB_STATUS": fxClub[id%len(fxClub)], "CREATE_TS": "2021-09-08T08:03:24Z"})
	}
	// A customer changes club, another one is deleted: upsert and delete by key.
	p.row(topology.TableCustomers, "3", map[string]any{"ID": 3, "FIRST_NAME": fxFirst[2], "LAST_NAME": fxLast[2],
		"EMAIL": "mcocci@example.com", "CLUB_STATUS": "platinum", "CREATE_TS": "2021-09-08T08:03:24Z"})
	p.row(topology.TableCustomers, "10", nil)

	events := newWindows(p, topology.TableEventsPerMin, 60_000, 0)
	pages := newWindows(p, topology.TablePagesPerMin, 5_000, 0)
	errs := newWindows(p, topology.TableErrorsPerMin, 5_000, 0)
	alerts := newWindows(p, topology.TableErrorsPerMinAlert, 20_000, 5)
	sessions := newWindows(p, topology.TableClickUserSessions, 30_000, 0)
	codes := newWindows(p, topology.TableEnrichedErrorCodesCount, 30_000, 1)
	ipAct := newWindows(p, topology.TableUserIPActivity, 60_000, 1)
	perCustomer := newWindows(p, topology.TableRatingsPerCustomerPer15Minute, 900_000, 0)

	for i := 0; i < n; i++ {
		ts := base + int64(i)*250
		uid := i%10 + 1
		user, city, ip := fxUsers[uid%len(fxUsers)], fxCities[uid%len(fxCities)], fxIPs[i%len(fxIPs)]
		status := fxStatuses[i%len(fxStatuses)]
		req := fxRequests[i%len(fxRequests)]
		p.message(topology.StreamUserClickstream, ts, map[string]any{"USERID": uid, "USERNAME": user, "IP": ip,
			"CITY": city, "REQUEST": req, "STATUS": status, "BYTES": 1000 + i})
		p.message(topology.StreamEnrichedErrorCodes, ts, map[string]any{"CODE": status, "DEFINITION": fxDefs[status]})
		events.add(strconv.Itoa(uid), ts, "EVENTS", map[string]any{"USERID": uid}, nil)
		if strings.Contains(req, "html") {
			pages.add(strconv.Itoa(uid), ts, "PAGES", map[string]any{"USERID": uid}, nil)
		}
		if status > 400 {
			errs.add(strconv.Itoa(status), ts, "ERRORS", map[string]any{"STATUS": status}, nil)
			alerts.add(strconv.Itoa(status), ts, "ERRORS", map[string]any{"STATUS": status}, nil)
		}
		sessions.add(escapeKey(user), ts, "EVENTS", map[string]any{"USERNAME": user}, nil)
		codes.add(strconv.Itoa(status)+"/"+escapeKey(fxDefs[status]), ts, "COUNT", map[string]any{"CODE": status, "DEFINITION": fxDefs[status]}, nil)
		ipAct.add(escapeKey(user)+"/"+escapeKey(ip)+"/"+escapeKey(city), ts, "COUNT", map[string]any{"USERNAME": user, "IP": ip, "CITY": city}, nil)

		cid := i%12 - 1 // -1 and 0 have no customer, like the ratings generator's user ids
		stars := i%5 + 1
		channel := fxChannels[i%len(fxChannels)]
		msg := fxMessages[i%len(fxMessages)]
		rating := map[string]any{"RATING_ID": i + 1, "USER_ID": cid, "STARS": stars, "CHANNEL": channel, "MESSAGE": msg}
		if strings.Contains(strings.ToLower(channel), "test") {
			p.message(topology.StreamRatingsTest, ts, rating)
		} else {
			p.message(topology.StreamRatingsLive, ts, rating)
		}
		if cid < 1 || cid == 10 {
			continue
		}
		full := fxFirst[cid-1] + " " + fxLast[cid-1]
		club := fxClub[cid%len(fxClub)]
		if cid == 3 {
			club = "platinum"
		}
		email := strings.ToLower(fxFirst[cid-1]) + "@example.com"
		p.message(topology.StreamRatingsWithCustomerData, ts, map[string]any{"RATING_ID": i + 1, "MESSAGE": msg, "STARS": stars,
			"CHANNEL": channel, "CUSTOMER_ID": strconv.Itoa(cid), "FULL_NAME": full, "CLUB_STATUS": club, "EMAIL": email})
		if stars < 3 && club == "platinum" {
			p.message(topology.StreamUnhappyPlatinumCustomers, ts, map[string]any{"FULL_NAME": full, "CLUB_STATUS": club,
				"EMAIL": email, "STARS": stars, "MESSAGE": msg})
		}
		perCustomer.add(escapeKey(full), ts, "RATINGS_COUNT", map[string]any{"FULL_NAME": full}, stars)
	}
	// A session merged away (ksqlDB deletes the older row): a KV delete of a row that exists.
	for k := range sessions.counts {
		p.row(topology.TableClickUserSessions, k, nil)
		break
	}
}

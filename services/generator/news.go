package generator

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The imply-news simulator (hellmarbecker/imply-news news_process.py, seed-inventory B.6): web
// sessions walk a Markov chain over page states; each step emits a "click" record, and when a
// session reaches exitSession a "session" record summarises it. Both record types share one
// subject and are told apart by recordType. Faker is replaced by small fixed lists (user
// agents, places, words); the hour-of-day time envelope is not reproduced (the rate is flat).

// NewsStates are the states of the session model; a session starts at home and ends after
// exitSession, which has no transitions.
var NewsStates = [...]string{"home", "content", "clickbait", "subscribe", "plusContent", "affiliateLink", "exitSession"}

const newsExit = 6

// newsTransitions is the default transition matrix, rows and columns in NewsStates order.
var newsTransitions = [6][7]float64{
	{.10, .30, .06, 0, .20, .02, .32},     // home
	{.15, .45, .06, .002, .20, .02, .118}, // content
	{.10, .10, .50, 0, .16, .02, .12},     // clickbait
	{.10, .20, 0, 0, .50, .02, .18},       // subscribe
	{.10, .30, .06, .002, .40, .02, .118}, // plusContent
	{.20, .20, 0, 0, .05, 0, .55},         // affiliateLink
}

type weighted struct {
	v string
	p float64
}

var (
	newsChannels  = []weighted{{"social media", .3}, {"organic search", .2}, {"paid search", .3}, {"display", .1}, {"affiliate", .1}}
	newsCampaigns = []weighted{{"fb-1 Be Informed", .3}, {"fb-2 US Election", .4}, {"af-1 Latest News", .2}, {"google-1 Be Informed", .1}}
	newsGenders   = []weighted{{"m", .5}, {"w", .5}}
	newsAges      = []weighted{{"18-25", .1}, {"26-35", .1}, {"36-50", .4}, {"51-60", .3}, {"61+", .1}}
	newsStatus    = []weighted{{"200", .9}, {"404", .05}, {"500", .05}}
	newsContent   = strings.Fields("News Comment World Business Sport Puzzle Law")
)

// newsUserAgents stands in for Faker's user_agent().
var newsUserAgents = [...]string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
	"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
	"Opera/9.80 (Windows NT 6.1; U; de) Presto/2.9.181 Version/12.00",
}

// newsPlaces stands in for Faker's location_on_land(): latitude, longitude, place name,
// country code, time zone (strings, as Faker returns them).
var newsPlaces = [...][5]string{
	{"40.72371", "-73.95097", "Greenpoint", "US", "America/New_York"},
	{"37.77493", "-122.41942", "San Francisco", "US", "America/Los_Angeles"},
	{"41.85003", "-87.65005", "Chicago", "US", "America/Chicago"},
	{"51.50853", "-0.12574", "London", "GB", "Europe/London"},
	{"52.52437", "13.41053", "Berlin", "DE", "Europe/Berlin"},
	{"48.13743", "11.57549", "Munich", "DE", "Europe/Berlin"},
	{"50.11552", "8.68417", "Frankfurt am Main", "DE", "Europe/Berlin"},
	{"48.85341", "2.3488", "Paris", "FR", "Europe/Paris"},
	{"52.37403", "4.88969", "Amsterdam", "NL", "Europe/Amsterdam"},
	{"40.4165", "-3.70256", "Madrid", "ES", "Europe/Madrid"},
	{"35.6895", "139.69171", "Tokyo", "JP", "Asia/Tokyo"},
	{"-33.86785", "151.20732", "Sydney", "AU", "Australia/Sydney"},
	{"19.07283", "72.88261", "Mumbai", "IN", "Asia/Kolkata"},
	{"-23.5475", "-46.63611", "Sao Paulo", "BR", "America/Sao_Paulo"},
}

// newsWords stands in for Faker's lorem word list (sentence(nb_words=6)).
var newsWords = strings.Fields("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod " +
	"tempor incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud " +
	"exercitation ullamco laboris nisi aliquip ex ea commodo consequat")

const newsBaseURL = "https://imply-news.com"

// newsMaxPath bounds a session's length (the chain ends with probability 1, this only guards
// against an absurdly long walk).
const newsMaxPath = 200

func selectAttr(r *rand.Rand, d []weighted) string {
	x := r.Float64()
	cume := 0.0
	for _, w := range d {
		cume += w.p
		if cume >= x {
			return w.v
		}
	}
	return d[len(d)-1].v
}

// NewsSessionPlan is everything about one imply-news session, a pure function of (seed, sid):
// who, where from, and the whole walk through the states (Path, home first, exitSession last).
type NewsSessionPlan struct {
	Sid          uint64
	UID          string
	IsSubscriber int
	Gender, Age  string
	Place        [5]string
	UserAgent    string
	Campaign     string
	Channel      string
	ContentID    string
	SubContentID string
	Path         []string
}

// NewsSession plans session sid. As in the original, contentId and subContentId stay the same
// for the whole session; user attributes are a function of the uid (10000..99999), so a user
// who comes back keeps gender, age, subscription and place.
func NewsSession(seed, sid uint64) NewsSessionPlan {
	r := rngFor(seed, saltNewsSession, sid)
	p := NewsSessionPlan{Sid: sid, UID: strconv.Itoa(10000 + r.IntN(90000))}
	u := rngFor(seed, saltNewsUser, uint64(len(p.UID))<<32|uint64(atoiOr0(p.UID)))
	if u.IntN(100) < 5 {
		p.IsSubscriber = 1
	}
	p.Gender = selectAttr(u, newsGenders)
	p.Age = selectAttr(u, newsAges)
	p.Place = pick(u, newsPlaces[:])
	p.UserAgent = pick(r, newsUserAgents[:])
	p.Campaign = selectAttr(r, newsCampaigns)
	p.Channel = selectAttr(r, newsChannels)
	p.ContentID = pick(r, newsContent)
	words := make([]string, 6)
	for i := range words {
		words[i] = pick(r, newsWords)
	}
	words[0] = strings.ToUpper(words[0][:1]) + words[0][1:]
	p.SubContentID = strings.Join(words, " ")
	state := 0
	p.Path = append(p.Path, NewsStates[0])
	for state != newsExit {
		if len(p.Path) == newsMaxPath-1 {
			state = newsExit
		} else {
			state = nextState(r, state)
		}
		p.Path = append(p.Path, NewsStates[state])
	}
	return p
}

func nextState(r *rand.Rand, from int) int {
	x := r.Float64()
	cume := 0.0
	for to, p := range newsTransitions[from] {
		cume += p
		if p > 0 && cume >= x {
			return to
		}
	}
	return newsExit
}

func atoiOr0(s string) int {
	v, _ := strconv.Atoi(s)
	return v
}

// Records is how many records the session emits: a click per state, then the session record.
func (p NewsSessionPlan) Records() int { return len(p.Path) + 1 }

// NewsClickRecord is an imply-news click (recordType "click"); timestamp is epoch seconds.
type NewsClickRecord struct {
	Timestamp     int64    `json:"timestamp"`
	RecordType    string   `json:"recordType"`
	URL           string   `json:"url"`
	UserAgent     string   `json:"useragent"`
	StatusCode    string   `json:"statuscode"`
	State         string   `json:"state"`
	StatesVisited []string `json:"statesVisited"`
	Sid           uint64   `json:"sid"`
	UID           string   `json:"uid"`
	IsSubscriber  int      `json:"isSubscriber"`
	Campaign      string   `json:"campaign"`
	Channel       string   `json:"channel"`
	ContentID     string   `json:"contentId"`
	SubContentID  string   `json:"subContentId"`
	Gender        string   `json:"gender"`
	Age           string   `json:"age"`
	Latitude      string   `json:"latitude"`
	Longitude     string   `json:"longitude"`
	PlaceName     string   `json:"place_name"`
	CountryCode   string   `json:"country_code"`
	Timezone      string   `json:"timezone"`
}

// NewsSessionRecord is an imply-news session summary (recordType "session"): timestamp is the
// session's start (epoch seconds), plus one 0/1 column per state visited.
type NewsSessionRecord struct {
	Timestamp     int64    `json:"timestamp"`
	RecordType    string   `json:"recordType"`
	UserAgent     string   `json:"useragent"`
	StatesVisited []string `json:"statesVisited"`
	Sid           uint64   `json:"sid"`
	UID           string   `json:"uid"`
	IsSubscriber  int      `json:"isSubscriber"`
	Campaign      string   `json:"campaign"`
	Channel       string   `json:"channel"`
	Gender        string   `json:"gender"`
	Age           string   `json:"age"`
	Latitude      string   `json:"latitude"`
	Longitude     string   `json:"longitude"`
	PlaceName     string   `json:"place_name"`
	CountryCode   string   `json:"country_code"`
	Timezone      string   `json:"timezone"`
	Home          int      `json:"home"`
	Content       int      `json:"content"`
	Clickbait     int      `json:"clickbait"`
	Subscribe     int      `json:"subscribe"`
	PlusContent   int      `json:"plusContent"`
	AffiliateLink int      `json:"affiliateLink"`
	ExitSession   int      `json:"exitSession"`
}

// Click returns the session's click i (0 <= i < len(Path)), stamped with ts (epoch seconds).
func (p NewsSessionPlan) Click(seed uint64, i int, ts int64) NewsClickRecord {
	r := rngFor(seed, saltNews, p.Sid<<12|uint64(i))
	state := p.Path[i]
	return NewsClickRecord{
		Timestamp: ts, RecordType: "click",
		URL:        newsBaseURL + "/" + state + "/" + p.ContentID + "/" + strings.ReplaceAll(p.SubContentID, " ", "-"),
		UserAgent:  p.UserAgent,
		StatusCode: selectAttr(r, newsStatus),
		State:      state, StatesVisited: slices.Clone(p.Path[:i+1]),
		Sid: p.Sid, UID: p.UID, IsSubscriber: p.IsSubscriber,
		Campaign: p.Campaign, Channel: p.Channel, ContentID: p.ContentID, SubContentID: p.SubContentID,
		Gender: p.Gender, Age: p.Age,
		Latitude: p.Place[0], Longitude: p.Place[1], PlaceName: p.Place[2], CountryCode: p.Place[3], Timezone: p.Place[4],
	}
}

// Session returns the session's summary record; start is its first click's time (epoch s).
func (p NewsSessionPlan) Session(start int64) NewsSessionRecord {
	s := NewsSessionRecord{
		Timestamp: start, RecordType: "session", UserAgent: p.UserAgent,
		StatesVisited: slices.Clone(p.Path), Sid: p.Sid, UID: p.UID, IsSubscriber: p.IsSubscriber,
		Campaign: p.Campaign, Channel: p.Channel, Gender: p.Gender, Age: p.Age,
		Latitude: p.Place[0], Longitude: p.Place[1], PlaceName: p.Place[2], CountryCode: p.Place[3], Timezone: p.Place[4],
	}
	for _, st := range p.Path {
		switch st {
		case "home":
			s.Home = 1
		case "content":
			s.Content = 1
		case "clickbait":
			s.Clickbait = 1
		case "subscribe":
			s.Subscribe = 1
		case "plusContent":
			s.PlusContent = 1
		case "affiliateLink":
			s.AffiliateLink = 1
		case "exitSession":
			s.ExitSession = 1
		}
	}
	return s
}

// NewsStream interleaves many open sessions into one record stream, like news_process.py's
// loop: each step either opens a session (probability 1/2, while fewer than MaxOpen are open)
// or advances a random open one. Its exported fields are the state that survives a restart.
type NewsStream struct {
	Seed    uint64            `json:"-"`
	MaxOpen int               `json:"-"`
	NextSid uint64            `json:"next_sid"`
	Open    []NewsOpenSession `json:"open"`

	plans map[uint64]NewsSessionPlan
}

// NewsOpenSession is a session that has not emitted its session record yet.
type NewsOpenSession struct {
	Sid   uint64 `json:"sid"`
	Pos   int    `json:"pos"`
	Start int64  `json:"start"`
}

// Next returns record n of the stream (a NewsClickRecord or NewsSessionRecord) and its key
// (the sid). For a given seed and MaxOpen, the sequence of records is reproducible except for
// the wall-clock timestamps.
func (s *NewsStream) Next(n uint64, now time.Time) (key string, record any) {
	if s.NextSid == 0 {
		s.NextSid = 1
	}
	if s.plans == nil {
		s.plans = map[uint64]NewsSessionPlan{}
	}
	r := rngFor(s.Seed, saltNews, ^n)
	var i int
	if len(s.Open) == 0 || (len(s.Open) < max(s.MaxOpen, 1) && r.IntN(2) == 0) {
		s.Open = append(s.Open, NewsOpenSession{Sid: s.NextSid, Start: now.Unix()})
		s.NextSid++
		i = len(s.Open) - 1
	} else {
		i = r.IntN(len(s.Open))
	}
	o := &s.Open[i]
	plan, ok := s.plans[o.Sid]
	if !ok {
		plan = NewsSession(s.Seed, o.Sid)
		s.plans[o.Sid] = plan
	}
	key = strconv.FormatUint(o.Sid, 10)
	if o.Pos < len(plan.Path) {
		record = plan.Click(s.Seed, o.Pos, now.Unix())
		o.Pos++
		return key, record
	}
	record = plan.Session(o.Start)
	delete(s.plans, o.Sid)
	s.Open = slices.Delete(s.Open, i, i+1)
	return key, record
}

package generator

import (
	"math/rand/v2"
	"strconv"
)

// Event n of a quickstart is a pure function of (seed, n): a PCG seeded from both, with a salt
// per quickstart so that two quickstarts never draw the same numbers. That is what makes
// `--seed` reproducible and lets other packages (the Kafka bridge demo, tests, benchmarks)
// regenerate any event without running the generator.
const (
	saltClick uint64 = iota + 1
	saltCode
	saltUser
	saltUserIdentity
	saltPageview
	saltRating
	saltNews
	saltNewsSession
	saltNewsUser
	saltCustomers
)

// splitmix64 spreads neighbouring inputs (n, n+1) over the whole 64-bit space before they seed
// a PCG, so consecutive events are not correlated.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func rngFor(seed, salt, n uint64) *rand.Rand {
	return rand.New(rand.NewPCG(splitmix64(seed^splitmix64(salt)), splitmix64(n+salt<<56)))
}

func pick[T any](r *rand.Rand, list []T) T { return list[r.IntN(len(list))] }

// rangeInt is avro-random-generator's range: min inclusive, max exclusive.
func rangeInt(r *rand.Rand, lo, hi int64) int64 { return lo + r.Int64N(hi-lo) }

// ClickRecord is a record of the clickstream quickstart, fields in datagen's order. status and
// bytes are JSON strings, as datagen writes them.
type ClickRecord struct {
	IP         string `json:"ip"`
	UserID     int    `json:"userid"`
	RemoteUser string `json:"remote_user"`
	Time       string `json:"time"`
	UnderTime  int64  `json:"_time"`
	Request    string `json:"request"`
	Status     string `json:"status"`
	Bytes      string `json:"bytes"`
	Referrer   string `json:"referrer"`
	Agent      string `json:"agent"`
}

// Click is event n (from 0) of the clickstream quickstart. time and _time are datagen's
// iteration counter (start 1, step 10), not the wall clock. Key: IP.
func Click(seed, n uint64) ClickRecord {
	r := rngFor(seed, saltClick, n)
	it := 1 + 10*int64(n)
	return ClickRecord{
		IP:         pick(r, clickIPs[:]),
		UserID:     int(rangeInt(r, -1, 40)),
		RemoteUser: "-",
		Time:       strconv.FormatInt(it, 10),
		UnderTime:  it,
		Request:    pick(r, clickRequests[:]),
		Status:     pick(r, clickStatuses[:]),
		Bytes:      pick(r, clickBytes[:]),
		Referrer:   "-",
		Agent:      pick(r, clickAgents[:]),
	}
}

// CodeRecord is a record of clickstream_codes. Key: Code.
type CodeRecord struct {
	Code       int    `json:"code"`
	Definition string `json:"definition"`
}

// Code is event n of clickstream_codes: the six codes in order first (so the CLICKSTREAM_CODES
// table is complete at once), then a uniformly random one each time.
func Code(seed, n uint64) CodeRecord {
	if n < uint64(len(StatusCodes)) {
		return StatusCodes[n]
	}
	return pick(rngFor(seed, saltCode, n), StatusCodes[:])
}

// UserRecord is a record of clickstream_users, fields in datagen's order. Key: UserID.
type UserRecord struct {
	UserID       int    `json:"user_id"`
	Username     string `json:"username"`
	RegisteredAt int64  `json:"registered_at"`
	FirstName    string `json:"first_name"`
	LastName     string `json:"last_name"`
	City         string `json:"city"`
	Level        string `json:"level"`
}

// User is event n of clickstream_users. Unlike datagen (user_id counts up without bound, so
// only ids 1..39 ever join with clicks) user ids cycle through 1..39: events 0..38 create the
// users, later events update them. A user's identity (username, names, registered_at) is a
// function of (seed, user_id) and stays put; city and level change with n, like a profile edit.
func User(seed, n uint64) UserRecord {
	id := int(n%WebUserIDs) + 1
	ident := rngFor(seed, saltUserIdentity, uint64(id))
	u := UserRecord{
		UserID:       id,
		Username:     pick(ident, usernames[:]),
		RegisteredAt: rangeInt(ident, registeredMin, registeredMax),
		FirstName:    pick(ident, firstNames[:]),
		LastName:     pick(ident, lastNames[:]),
	}
	r := ident
	if n >= WebUserIDs {
		r = rngFor(seed, saltUser, n)
	}
	u.City = pick(r, cities[:])
	u.Level = pick(r, levels[:])
	return u
}

// PageviewRecord is a record of the pageviews quickstart (kafka-connect-datagen variant). Key:
// Viewtime.
type PageviewRecord struct {
	Viewtime int64  `json:"viewtime"`
	UserID   string `json:"userid"`
	PageID   string `json:"pageid"`
}

// Pageview is event n of pageviews: viewtime is the iteration counter (start 1, step 10),
// userid matches User_[1-9], pageid Page_[1-9][0-9].
func Pageview(seed, n uint64) PageviewRecord {
	r := rngFor(seed, saltPageview, n)
	return PageviewRecord{
		Viewtime: 1 + 10*int64(n),
		UserID:   "User_" + strconv.Itoa(1+r.IntN(9)),
		PageID:   "Page_" + strconv.Itoa(10+r.IntN(90)),
	}
}

// RatingRecord is a record of the ratings quickstart, fields in datagen's order. Key: RatingID.
type RatingRecord struct {
	RatingID   int64  `json:"rating_id"`
	UserID     int    `json:"user_id"`
	Stars      int    `json:"stars"`
	RouteID    int    `json:"route_id"`
	RatingTime int64  `json:"rating_time"`
	Channel    string `json:"channel"`
	Message    string `json:"message"`
}

// Rating is event n of ratings: rating_id n+1 (counts up, also across restarts), user_id
// -1..19, stars 1..4 (datagen's range max is exclusive: no 5-star ratings), route_id 1..9998,
// rating_time the iteration counter (start 1, step 12).
func Rating(seed, n uint64) RatingRecord {
	r := rngFor(seed, saltRating, n)
	return RatingRecord{
		RatingID:   int64(n) + 1,
		UserID:     int(rangeInt(r, -1, 20)),
		Stars:      int(rangeInt(r, 1, 5)),
		RouteID:    int(rangeInt(r, 1, 9999)),
		RatingTime: 1 + 12*int64(n),
		Channel:    pick(r, ratingChannels[:]),
		Message:    pick(r, ratingMessages[:]),
	}
}

// Package generator is jetsuite's data generator: kafka-connect-datagen's quickstarts
// (clickstream, clickstream_codes, clickstream_users, pageviews, ratings), the imply-news
// click/session simulator, and a MySQL + Debezium simulation of demo.CUSTOMERS, published to the
// subjects the originals' Kafka topics are named after.
//
// Event n of a quickstart is a pure function of (seed, n) (see Click, Rating, ...); n counts on
// across restarts (kept in KV bucket GENERATOR_STATE), and every message's Nats-Msg-Id is
// derived from the quickstart and n, so JetStream recognises a regenerated event after a crash
// and a restart never repeats an id.
package generator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/lease"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/pipe"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// Quickstart names (used in the control API, in GENERATOR_STATE keys and in message ids).
const (
	QClickstream = "clickstream"
	QCodes       = "clickstream_codes"
	QUsers       = "clickstream_users"
	QPageviews   = "pageviews"
	QNews        = "imply-news"
	QRatings     = "ratings"
	QCustomers   = "customers"
)

// Config is the generator's settings.
type Config struct {
	// Seed makes runs reproducible; 0 picks one on first start and remembers it.
	Seed int

	ClickRate     float64
	CodesRate     float64
	UsersRate     float64
	PageviewsRate float64
	NewsRate      float64
	RatingsRate   float64

	// CDCStep is the time between the demo's scripted CUSTOMERS changes, CDCUpdateEvery between
	// the random updates that follow (0: none). CDCSchemas wraps events in JsonConverter's
	// {"schema","payload"} form.
	CDCStep        time.Duration
	CDCUpdateEvery time.Duration
	CDCSchemas     bool

	// Sessionize pauses clicks like sessionize-data.sh.
	Sessionize bool
	// NewsSessions is how many imply-news sessions are open at most.
	NewsSessions int
	// Flush is how often counters are saved to GENERATOR_STATE.
	Flush time.Duration

	// Which quickstarts run.
	Clickstream, Codes, Users, Pageviews, News, Ratings, Customers bool
}

// DefaultConfig is the configuration without flags or environment: the declared defaults.
func DefaultConfig() Config {
	var c Config
	c.Bind(config.Defaults(serviceName))
	return c
}

const serviceName = "generator"

// Bind declares every setting on b.
func (c *Config) Bind(b runner.Binder) {
	b.Int(&c.Seed, "seed", 0, "random seed (same seed, same events); 0 picks one on first start and keeps it in GENERATOR_STATE").
		NonNegative().Was("", "seed")
	b.Float(&c.ClickRate, "rate", 20, "clickstream events per second").NonNegative().Was("", "rate")
	b.Float(&c.CodesRate, "codes-rate", 0.1, "clickstream_codes re-emits per second (all 6 codes are sent at first start)").
		NonNegative().Was("", "codes-rate")
	b.Float(&c.UsersRate, "users-rate", 0.5, "clickstream_users updates per second (users 1..39 are sent at first start)").
		NonNegative().Was("", "users-rate")
	b.Float(&c.PageviewsRate, "pageviews-rate", 5, "pageviews events per second").NonNegative().Was("", "pageviews-rate")
	b.Float(&c.NewsRate, "news-rate", 5, "imply-news records (clicks and sessions) per second").NonNegative().Was("", "news-rate")
	b.Float(&c.RatingsRate, "ratings-rate", 2, "ratings events per second").NonNegative().Was("", "ratings-rate")
	b.Duration(&c.CDCStep, "cdc-step", 15*time.Second, "time between the demo's scripted CUSTOMERS changes (Rick Astley, customer 2)").
		Positive().Was("", "cdc-step")
	b.Duration(&c.CDCUpdateEvery, "cdc-update-interval", 30*time.Second, "time between random CUSTOMERS updates after the script (0: none)").
		NonNegative().Was("", "cdc-update-interval")
	b.Bool(&c.CDCSchemas, "cdc-schemas", false, "wrap change events in JsonConverter's {\"schema\",\"payload\"} (Debezium's schemas.enable=true)").
		Was("", "cdc-schemas")
	b.Bool(&c.Sessionize, "sessionize", false, "pause clicks like sessionize-data.sh (90 s warm-up, then 35 s pause / 90 s run)").
		Was("", "sessionize")
	b.Int(&c.NewsSessions, "news-sessions", 100, "imply-news sessions open at most").Positive().Was("", "news-sessions")
	b.Duration(&c.Flush, "flush", time.Second, "how often iteration counters are saved to GENERATOR_STATE").Positive()
	for _, q := range []struct {
		p    *bool
		name string
		what string
	}{
		{&c.Clickstream, "clickstream", "clickstream"},
		{&c.Codes, "codes", "clickstream_codes"},
		{&c.Users, "users", "clickstream_users"},
		{&c.Pageviews, "pageviews", "pageviews"},
		{&c.News, "news", "imply-news"},
		{&c.Ratings, "ratings", "ratings"},
		{&c.Customers, "customers", "Debezium CUSTOMERS change events (asgard.demo.CUSTOMERS)"},
	} {
		b.Bool(q.p, q.name, true, "generate "+q.what)
	}
}

// Spec describes the generator to the jetsuite binary.
func Spec() runner.Spec {
	return runner.Spec{
		Name:    serviceName,
		Summary: "datagen quickstarts (clickstream, codes, users, pageviews, ratings), imply-news, Debezium CUSTOMERS",
		InAll:   true,
		Bind: func(b runner.Binder) func(runner.Deps) (runner.Service, error) {
			var cfg Config
			cfg.Bind(b)
			return func(d runner.Deps) (runner.Service, error) { return New(cfg, d) }
		},
	}
}

// Service generates events until its context ends.
type Service struct {
	cfg  Config
	deps runner.Deps
	// unread are the quickstarts that are on but whose subject no statement of the pipeline
	// reads: the generator leaves them alone (and says so at start).
	unread []string
	log    *slog.Logger
	now    func() time.Time

	sources []*source
	ready   *obs.ReadyFlag
	seed    atomic.Uint64
	started atomic.Int64 // unix nanos when Run started (the sessionize schedule counts from it)
	wake    chan struct{}
}

// source is one quickstart. Fields above the line are fixed, the loop alone owns the middle
// part, the atomics are shared with the control API.
type source struct {
	name, subject string
	rate          float64 // events per second (0 and delay set: scheduled)
	burst         uint64  // events 0..burst-1 are sent at once
	withKey       bool    // Jetsuite-Key header (Debezium's sink sends no key)
	gen           func(seed, n uint64, now time.Time) (key string, value []byte, err error)
	state         any                                  // extra state saved with n (pointer), or nil
	delay         func(n uint64) (time.Duration, bool) // scheduled sources: wait before event n
	msgID         func(n uint64) string

	n         uint64
	savedN    uint64
	pace      pacer
	nextAt    time.Time
	wasPaused bool

	count         atomic.Uint64
	paused        atomic.Bool
	sessionPaused atomic.Bool
	// wantRate holds the float64 bits of the rate to generate at: the configured one, or
	// one set through the control API (SetRate); the loop paces rate and follows it.
	wantRate atomic.Uint64
}

// New builds the generator.
func New(cfg Config, d runner.Deps) (*Service, error) {
	if d.JS == nil || d.NC == nil {
		return nil, errors.New("generator: needs a NATS connection with JetStream")
	}
	if cfg.Flush <= 0 {
		cfg.Flush = time.Second
	}
	s := &Service{cfg: cfg, deps: d, log: d.Logger("generator"), now: time.Now,
		ready: obs.NewReadyFlag("generator: loading GENERATOR_STATE"), wake: make(chan struct{}, 1)}
	s.buildSources()
	if d.Health != nil {
		d.Health.Register("generator", s.ready.Check)
	}
	if d.HTTP != nil {
		s.registerHTTP(d.HTTP.Mux)
	}
	return s, nil
}

// Name is the service name.
func (s *Service) Name() string { return "generator" }

func jsonGen[T any](f func(seed, n uint64) T, key func(T) string) func(seed, n uint64, _ time.Time) (string, []byte, error) {
	return func(seed, n uint64, _ time.Time) (string, []byte, error) {
		v := f(seed, n)
		b, err := json.Marshal(v)
		return key(v), b, err
	}
}

func (s *Service) buildSources() {
	c := s.cfg
	// The generator feeds the demo subjects some statement reads (a STREAM or TABLE declared
	// over it), so that a user's pipeline gets the demo data it asks for and nothing else.
	read := map[string]bool{}
	for _, o := range s.deps.Pipeline().Objects {
		if o.Source {
			read[o.Subject] = true
		}
	}
	id := func(q string) func(uint64) string {
		return func(n uint64) string { return "generator:" + q + ":" + strconv.FormatUint(n, 10) }
	}
	add := func(on bool, src *source) {
		if !on {
			return
		}
		if !read[src.subject] {
			s.unread = append(s.unread, src.name+" ("+src.subject+")")
			return
		}
		if src.msgID == nil {
			src.msgID = id(src.name)
		}
		src.wantRate.Store(math.Float64bits(src.rate))
		src.withKey = src.name != QCustomers
		s.sources = append(s.sources, src)
	}
	add(c.Clickstream, &source{name: QClickstream, subject: topology.SubjectClickstream, rate: c.ClickRate,
		gen: jsonGen(Click, func(v ClickRecord) string { return v.IP })})
	add(c.Codes, &source{name: QCodes, subject: topology.SubjectClickstreamCodes, rate: c.CodesRate,
		burst: uint64(len(StatusCodes)),
		gen:   jsonGen(Code, func(v CodeRecord) string { return strconv.Itoa(v.Code) })})
	add(c.Users, &source{name: QUsers, subject: topology.SubjectClickstreamUsers, rate: c.UsersRate,
		burst: WebUserIDs,
		gen:   jsonGen(User, func(v UserRecord) string { return strconv.Itoa(v.UserID) })})
	add(c.Pageviews, &source{name: QPageviews, subject: topology.SubjectPageviews, rate: c.PageviewsRate,
		gen: jsonGen(Pageview, func(v PageviewRecord) string { return strconv.FormatInt(v.Viewtime, 10) })})
	news := &NewsStream{MaxOpen: c.NewsSessions}
	add(c.News, &source{name: QNews, subject: topology.SubjectImplyNews, rate: c.NewsRate, state: news,
		gen: func(seed, n uint64, now time.Time) (string, []byte, error) {
			news.Seed = seed
			key, rec := news.Next(n, now)
			b, err := json.Marshal(rec)
			return key, b, err
		}})
	add(c.Ratings, &source{name: QRatings, subject: topology.SubjectRatings, rate: c.RatingsRate,
		gen: jsonGen(Rating, func(v RatingRecord) string { return strconv.FormatInt(v.RatingID, 10) })})
	cust := &Customers{Step: c.CDCStep, UpdateEvery: c.CDCUpdateEvery}
	add(c.Customers, &source{name: QCustomers, subject: topology.SubjectCustomersCDC, state: cust,
		delay: func(n uint64) (time.Duration, bool) {
			if n >= CustomerEvents && cust.UpdateEvery <= 0 {
				return 0, false
			}
			return cust.Delay(n), true
		},
		msgID: func(n uint64) string {
			return "generator:" + QCustomers + ":" + strconv.FormatInt(cust.Epoch, 10) + ":" + strconv.FormatUint(n, 10)
		},
		gen: func(seed, n uint64, now time.Time) (string, []byte, error) {
			cust.Seed = seed
			e := cust.Next(n, now)
			b, err := EncodeDebezium(e, s.cfg.CDCSchemas)
			return strconv.Itoa(e.After.ID), b, err
		}})
}

// savedState is a quickstart's entry in GENERATOR_STATE.
type savedState struct {
	N     uint64          `json:"n"`
	Seed  uint64          `json:"seed"`
	State json.RawMessage `json:"state,omitempty"`
	Saved time.Time       `json:"saved"`
}

const seedKey = "seed"

// Run generates until ctx ends, then waits for outstanding acks and saves the counters. The
// generation is a unit of work shared with the other generators (shared/lease): one instance
// at a time generates, continuing from the counters the previous one saved.
func (s *Service) Run(ctx context.Context) error {
	kv, err := s.deps.JS.KeyValue(ctx, topology.BucketGeneratorState)
	if err != nil {
		return fmt.Errorf("generator: state bucket %s: %w", topology.BucketGeneratorState, err)
	}
	subs, err := s.subscribeControl()
	if err != nil {
		return err
	}
	defer func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}()
	s.ready.Set()
	return s.deps.Share(ctx, serviceName, lease.Unit{Name: serviceName, Run: func(ctx context.Context) error {
		return s.generate(ctx, kv)
	}})
}

// generate restores the counters, generates until ctx ends, then waits for outstanding acks and
// saves the counters.
func (s *Service) generate(ctx context.Context, kv jetstream.KeyValue) error {
	if err := s.load(ctx, kv); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s.started.Store(s.now().UnixNano())
	var qs []string
	for _, src := range s.sources {
		qs = append(qs, fmt.Sprintf("%s@%d", src.name, src.n))
	}
	s.log.Info("generating", "seed", s.seed.Load(), "quickstarts", strings.Join(qs, " "),
		"click_rate", s.cfg.ClickRate, "sessionize", s.cfg.Sessionize)
	if len(s.unread) > 0 {
		s.log.Info("not generating: no statement of the pipeline reads these subjects", "quickstarts", strings.Join(s.unread, ", "))
	}

	pub := pipe.NewPublisher(s.deps.JS, "generator")
	err := s.loop(ctx, pub, kv)
	if errors.Is(context.Cause(ctx), lease.ErrLost) {
		return err // another instance may generate by now: its counters are the ones to keep
	}
	// Drain: wait for what is in flight and save where we are, so a restart continues exactly.
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if werr := pub.Wait(dctx); werr != nil {
		s.log.Warn("publishes unacknowledged at stop; the next start regenerates them with the same ids", "err", werr)
		return errors.Join(err, s.save(dctx, kv, true))
	}
	return errors.Join(err, s.save(dctx, kv, false))
}

// load resolves the seed and restores every quickstart's counter and state.
func (s *Service) load(ctx context.Context, kv jetstream.KeyValue) error {
	seed := uint64(s.cfg.Seed)
	if seed == 0 {
		e, err := kv.Get(ctx, seedKey)
		switch {
		case err == nil:
			seed, err = strconv.ParseUint(string(e.Value()), 10, 64)
			if err != nil {
				return fmt.Errorf("generator: bad seed in %s: %w", topology.BucketGeneratorState, err)
			}
		case errors.Is(err, jetstream.ErrKeyNotFound):
			seed = rand.Uint64()>>1 | 1
			if _, err := kv.Put(ctx, seedKey, []byte(strconv.FormatUint(seed, 10))); err != nil {
				return fmt.Errorf("generator: save seed: %w", err)
			}
		default:
			return fmt.Errorf("generator: read seed: %w", err)
		}
	}
	s.seed.Store(seed)
	for _, src := range s.sources {
		e, err := kv.Get(ctx, src.name)
		var st savedState
		switch {
		case err == nil:
			if err := json.Unmarshal(e.Value(), &st); err != nil {
				return fmt.Errorf("generator: state of %s: %w", src.name, err)
			}
			src.n = st.N
			if src.state != nil && len(st.State) > 0 {
				if err := json.Unmarshal(st.State, src.state); err != nil {
					return fmt.Errorf("generator: state of %s: %w", src.name, err)
				}
			}
		case errors.Is(err, jetstream.ErrKeyNotFound):
		default:
			return fmt.Errorf("generator: read state of %s: %w", src.name, err)
		}
		s.recover(ctx, src, err == nil)
		src.savedN = src.n
		src.count.Store(src.n)
	}
	return nil
}

// recover moves a counter past the last event this generator published on the subject. State is
// flushed periodically, so after a crash it may lag behind what was published; regenerated
// events would carry the same ids, which JetStream only drops within its duplicate window.
func (s *Service) recover(ctx context.Context, src *source, hadState bool) {
	if src.name == QCustomers && hadState {
		// The table is the state: with it, a regenerated event equals the original.
		return
	}
	stream, err := s.deps.JS.StreamNameBySubject(ctx, src.subject)
	if err != nil {
		s.log.Warn("no stream for subject", "subject", src.subject, "err", err)
		return
	}
	st, err := s.deps.JS.Stream(ctx, stream)
	if err != nil {
		return
	}
	m, err := st.GetLastMsgForSubject(ctx, src.subject)
	if err != nil {
		return
	}
	if cust, ok := src.state.(*Customers); ok {
		// Without its state the table starts over like Debezium without offsets: a new
		// snapshot under a new epoch, in the next binlog file so it supersedes older events.
		if file := lastBinlogFile(m.Data); file != "" && cust.RotateAfter(file) {
			s.log.Info("customers state lost: new snapshot in the next binlog file", "after", file, "file", cust.File)
		}
		return
	}
	prefix := "generator:" + src.name + ":"
	id := m.Header.Get(events.HeaderMsgID)
	if !strings.HasPrefix(id, prefix) {
		return
	}
	last, err := strconv.ParseUint(strings.TrimPrefix(id, prefix), 10, 64)
	if err != nil || last < src.n {
		return
	}
	s.log.Info("continuing after the last published event", "quickstart", src.name, "saved", src.n, "published", last)
	src.n = last + 1
	if news, ok := src.state.(*NewsStream); ok && !hadState {
		var rec struct {
			Sid uint64 `json:"sid"`
		}
		if json.Unmarshal(m.Data, &rec) == nil {
			news.NextSid = rec.Sid + 1
		}
	}
}

// save writes the counters (and extra state) of quickstarts that moved. Call it only when every
// publish so far is acknowledged, so that the saved n never runs ahead of the stream.
func (s *Service) save(ctx context.Context, kv jetstream.KeyValue, force bool) error {
	var errs []error
	for _, src := range s.sources {
		if src.n == src.savedN && !force {
			continue
		}
		st := savedState{N: src.n, Seed: s.seed.Load(), Saved: s.now().UTC()}
		if src.state != nil {
			b, err := json.Marshal(src.state)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			st.State = b
		}
		b, err := json.Marshal(st)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := kv.Put(ctx, src.name, b); err != nil {
			errs = append(errs, fmt.Errorf("save state of %s: %w", src.name, err))
			continue
		}
		src.savedN = src.n
	}
	return errors.Join(errs...)
}

const (
	// maxPerWake bounds the events one quickstart sends per wake-up, so the others, acks and
	// state flushes get their turn at any rate.
	maxPerWake = 4096
	// waitAt is how many unacknowledged publishes the loop lets build up before waiting for
	// acks (below the JetStream client's async limit of 8192).
	waitAt  = 4096
	minWake = time.Millisecond
	maxWake = 100 * time.Millisecond
)

func (s *Service) loop(ctx context.Context, pub *pipe.Publisher, kv jetstream.KeyValue) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	lastFlush := s.now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-s.wake:
		}
		now := s.now()
		wakeAt := now.Add(maxWake)
		for _, src := range s.sources {
			next, err := s.emitDue(pub, src, now)
			if err != nil {
				return err
			}
			if next.Before(wakeAt) {
				wakeAt = next
			}
		}
		flush := now.Sub(lastFlush) >= s.cfg.Flush
		if pub.Pending() >= waitAt || (flush && pub.Pending() > 0) {
			if err := pub.Wait(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("generator: %w", err)
			}
		}
		if flush {
			if err := s.save(ctx, kv, false); err != nil && ctx.Err() == nil {
				s.log.Warn("saving generator state failed; will retry", "err", err)
			}
			lastFlush = now
		}
		timer.Reset(min(max(wakeAt.Sub(s.now()), minWake), maxWake))
	}
}

// clickPausedBySchedule applies --sessionize to the clickstream quickstart.
func (s *Service) clickPausedBySchedule(now time.Time) bool {
	if !s.cfg.Sessionize {
		return false
	}
	paused, _ := SessionizePaused(now.Sub(time.Unix(0, s.started.Load())))
	return paused
}

// emitDue sends what src owes at now and returns when it next owes something.
func (s *Service) emitDue(pub *pipe.Publisher, src *source, now time.Time) (time.Time, error) {
	later := now.Add(maxWake)
	sp := src.name == QClickstream && s.clickPausedBySchedule(now)
	src.sessionPaused.Store(sp)
	if sp || src.paused.Load() {
		src.wasPaused = true
		return later, nil
	}
	if src.wasPaused {
		// A pause is not made up for afterwards.
		src.pace.reset()
		src.wasPaused = false
	}
	if r := math.Float64frombits(src.wantRate.Load()); r != src.rate {
		// A new rate counts from now: the pacer's baseline was for the old one.
		src.rate = r
		src.pace.reset()
	}
	seed := s.seed.Load()
	sent := 0
	send := func() error {
		key, value, err := src.gen(seed, src.n, now)
		if err != nil {
			return fmt.Errorf("generator: %s event %d: %w", src.name, src.n, err)
		}
		h := nats.Header{
			events.HeaderEventTime: {strconv.FormatInt(now.UnixMilli(), 10)},
			events.HeaderMsgID:     {src.msgID(src.n)},
		}
		if src.withKey {
			h[events.HeaderKey] = []string{key}
		}
		if err := pub.Publish(&nats.Msg{Subject: src.subject, Header: h, Data: value}); err != nil {
			return fmt.Errorf("generator: %w", err)
		}
		src.n++
		sent++
		return nil
	}
	defer func() { src.count.Store(src.n) }()
	for src.n < src.burst && sent < maxPerWake {
		if err := send(); err != nil {
			return later, err
		}
	}
	if src.n < src.burst {
		return now, nil
	}
	if src.delay != nil {
		if src.nextAt.IsZero() {
			d, ok := src.delay(src.n)
			if !ok {
				return later, nil
			}
			src.nextAt = now.Add(d)
		}
		for !now.Before(src.nextAt) && sent < maxPerWake {
			if err := send(); err != nil {
				return later, err
			}
			d, ok := src.delay(src.n)
			if !ok {
				src.nextAt = now.Add(100 * 365 * 24 * time.Hour)
				break
			}
			src.nextAt = now.Add(d)
		}
		return src.nextAt, nil
	}
	due := min(src.pace.due(src.rate, now), maxPerWake-int64(sent))
	for range due {
		if err := send(); err != nil {
			return later, err
		}
	}
	src.pace.took(due)
	return src.pace.next(src.rate, now), nil
}

// lastBinlogFile reads source.file from a Debezium change event, with or without the
// JsonConverter schema wrapper ("" if it is not one).
func lastBinlogFile(data []byte) string {
	var e struct {
		Source  struct{ File string } `json:"source"`
		Payload struct {
			Source struct{ File string } `json:"source"`
		} `json:"payload"`
	}
	if json.Unmarshal(data, &e) != nil {
		return ""
	}
	if e.Source.File != "" {
		return e.Source.File
	}
	return e.Payload.Source.File
}

// Package jetsuite is the k6 extension k6/x/jetsuite: it loads jetsuite's source subjects over
// NATS JetStream (the datagen quickstarts' own records, from the generator package) and reads
// back what the pipeline made of them (table rows, stream sizes, consumer lag).
//
// The NATS side (this file) knows nothing of k6, so it is tested against an embedded server
// without a k6 runtime; module.go binds it to k6's JS runtime and metrics.
package jetsuite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/services/generator"
	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// Conn is one NATS connection of one k6 VU.
type Conn struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	cfg Options
	// plan is the pipeline jetsuite runs; streams its streams, upstream first; readers the
	// steps that read each stream (see loadPlan).
	plan    *plan.Plan
	streams []string
	readers map[string][]string
}

// Options configure a Client (JS: new Client({url, seed, timeout})).
type Options struct {
	URL string `js:"url"`
	// Seed picks the datagen records; events differ per seed, never per run.
	Seed uint64 `js:"seed"`
	// Timeout bounds one batch's wait for its acks and every admin request.
	Timeout time.Duration `js:"-"`
	// QueriesFile is jetsuite's --queries-file, if it runs one (empty: the built-in demos).
	QueriesFile string `js:"queriesFile"`
	// NoFuse: jetsuite runs with --fuse=false (JS: fuse: false).
	NoFuse bool `js:"-"`
}

// Batch is what one publish call did (JS: {n, acked, duplicates, failed, ms}).
type Batch struct {
	N          int     `js:"n"`
	Acked      int     `js:"acked"`
	Duplicates int     `js:"duplicates"`
	Failed     int     `js:"failed"`
	Ms         float64 `js:"ms"`
	// Err is the first failure, "" when every message was acked.
	Err string `js:"error"`
}

// seq numbers events across every VU of this k6 process, so no two VUs publish the same
// datagen record; runID keeps message ids of two runs apart inside the server's duplicate
// window (a rerun within two minutes would otherwise be dropped as duplicates).
var (
	seq   atomic.Uint64
	runID = strconv.FormatInt(time.Now().UnixNano(), 36)
)

// Dial connects to NATS.
func Dial(o Options) (*Conn, error) {
	if o.URL == "" {
		o.URL = nats.DefaultURL
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	p, err := loadPlan(o.QueriesFile, !o.NoFuse)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(o.URL, nats.Name("k6-jetsuite"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("cannot connect to NATS at %s (is jetsuite running? `jetsuite all` serves NATS; NATS_URL): %w", redact(o.URL), err)
	}
	// Enough room that a batch never stalls on the client's own pending limit.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(16384))
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &Conn{nc: nc, js: js, cfg: o, plan: p, streams: streamsOf(p), readers: readersOf(p)}, nil
}

// Close drains nothing: every publish call already waited for its acks.
func (c *Conn) Close() { c.nc.Close() }

// idPrefix names the run, VU and iteration in message ids; the event's process-wide sequence
// number follows, so two calls in one iteration do not collide either.
func idPrefix(vu uint64, iter int64) string {
	return "k6:" + runID + ":" + strconv.FormatUint(vu, 10) + "." + strconv.FormatInt(iter, 10) + ":"
}

// PublishClicks publishes n clickstream quickstart records to `clickstream` and waits for their acks.
func (c *Conn) PublishClicks(ctx context.Context, n int, vu uint64, iter int64) Batch {
	return c.publish(ctx, n, topology.SubjectClickstream, idPrefix(vu, iter), func(k uint64) (string, any) {
		r := generator.Click(c.cfg.Seed, k)
		return r.IP, r
	})
}

// PublishRatings publishes n ratings quickstart records to `ratings` and waits for their acks.
func (c *Conn) PublishRatings(ctx context.Context, n int, vu uint64, iter int64) Batch {
	return c.publish(ctx, n, topology.SubjectRatings, idPrefix(vu, iter), func(k uint64) (string, any) {
		r := generator.Rating(c.cfg.Seed, k)
		return strconv.FormatInt(r.RatingID, 10), r
	})
}

// publish sends n records asynchronously, all with the same Event-Time (the batch is one
// iteration's worth of clicks), and waits for every ack.
func (c *Conn) publish(ctx context.Context, n int, subject, idp string, gen func(k uint64) (string, any)) Batch {
	b := Batch{N: n}
	if n <= 0 {
		return b
	}
	start := time.Now()
	first := seq.Add(uint64(n)) - uint64(n)
	evt := strconv.FormatInt(start.UnixMilli(), 10)
	futures := make([]jetstream.PubAckFuture, 0, n)
	fail := func(err error) {
		b.Failed++
		if b.Err == "" {
			b.Err = err.Error()
		}
	}
	for i := range n {
		k := first + uint64(i)
		key, rec := gen(k)
		data, err := json.Marshal(rec)
		if err != nil {
			fail(err)
			continue
		}
		m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{
			events.HeaderEventTime: {evt},
			events.HeaderMsgID:     {idp + strconv.FormatUint(k, 10)},
			events.HeaderKey:       {key},
		}}
		f, err := c.js.PublishMsgAsync(m)
		if err != nil {
			fail(err)
			continue
		}
		futures = append(futures, f)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			b.Acked++
			if ack.Duplicate {
				b.Duplicates++
			}
		case err := <-f.Err():
			fail(err)
		case <-ctx.Done():
			fail(fmt.Errorf("waiting for acks: %w", ctx.Err()))
		}
	}
	b.Ms = float64(time.Since(start).Microseconds()) / 1000
	countBatch(b)
	return b
}

// SeedReference publishes what the joins need when the generator is off: the 39 web users and
// 6 status codes (tables WEB_USERS, CLICKSTREAM_CODES) and the CUSTOMERS snapshot as Debezium
// change events. Message ids are fixed, so seeding twice within the duplicate window is a no-op,
// and later the same rows again. Returns how many messages were acked.
func (c *Conn) SeedReference(ctx context.Context) (int, error) {
	var msgs []*nats.Msg
	add := func(subject, id, key string, v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		h := nats.Header{events.HeaderMsgID: {id}}
		if key != "" {
			h[events.HeaderKey] = []string{key}
		}
		msgs = append(msgs, &nats.Msg{Subject: subject, Data: data, Header: h})
		return nil
	}
	seed := strconv.FormatUint(c.cfg.Seed, 10)
	for n := range uint64(generator.WebUserIDs) {
		u := generator.User(c.cfg.Seed, n)
		if err := add(topology.SubjectClickstreamUsers, "k6:users:"+seed+":"+strconv.FormatUint(n, 10), strconv.Itoa(u.UserID), u); err != nil {
			return 0, err
		}
	}
	for n := range uint64(len(generator.StatusCodes)) {
		code := generator.Code(c.cfg.Seed, n)
		if err := add(topology.SubjectClickstreamCodes, "k6:codes:"+strconv.FormatUint(n, 10), strconv.Itoa(code.Code), code); err != nil {
			return 0, err
		}
	}
	cust := &generator.Customers{Seed: c.cfg.Seed}
	now := time.Now()
	for n := range uint64(generator.CustomerEvents) {
		data, err := generator.EncodeDebezium(cust.Next(n, now), false)
		if err != nil {
			return 0, err
		}
		msgs = append(msgs, &nats.Msg{Subject: topology.SubjectCustomersCDC, Data: data,
			Header: nats.Header{events.HeaderMsgID: {"k6:customers:" + strconv.FormatUint(n, 10)}}})
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	for _, m := range msgs {
		// In order, one at a time: CDC events must apply in binlog order, and this runs once.
		if _, err := c.js.PublishMsg(ctx, m); err != nil {
			return 0, fmt.Errorf("seed %s: %w", m.Subject, err)
		}
	}
	return len(msgs), nil
}

// TableRows is the number of values a table's KV bucket holds (KV status: live keys, plus
// delete markers and history if any).
func (c *Conn) TableRows(ctx context.Context, table string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	kv, err := c.js.KeyValue(ctx, table)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("table %s: %w", table, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("table %s: %w", table, err)
	}
	return st.Values(), nil
}

// StreamMessages is the number of messages a stream holds.
func (c *Conn) StreamMessages(ctx context.Context, stream string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	s, err := c.js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	return s.CachedInfo().State.Msgs, nil
}

// ConsumerLag is what a durable consumer has still to do: messages not yet delivered plus
// delivered but not yet acked.
func (c *Conn) ConsumerLag(ctx context.Context, stream, durable string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	cons, err := c.js.Consumer(ctx, stream, durable)
	if err != nil {
		return 0, fmt.Errorf("consumer %s on %s: %w", durable, stream, err)
	}
	info := cons.CachedInfo()
	return info.NumPending + uint64(info.NumAckPending), nil
}

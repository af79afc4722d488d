package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/flow"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/topology"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildBin != "" {
		_ = os.RemoveAll(buildBin[:len(buildBin)-len("/bridgemain")])
	}
	os.Exit(code)
}

// fromKafka is a config that only copies topics into JetStream.
func fromKafka(brokers []string, group string, topics ...string) Config {
	c := DefaultConfig()
	c.Brokers, c.Group, c.FromKafka, c.ToKafka = brokers, group, topics, nil
	return c
}

func TestKafkaToJetStreamCarriesKeyHeadersTimestampTombstone(t *testing.T) {
	brokers := startKfake(t, 2, topology.SubjectRatings, topology.SubjectCustomersCDC, "renamed")
	env := natstest.Start(t)
	cl := kafkaClient(t, brokers)
	ts := time.UnixMilli(1_700_000_000_123)
	produce(t, cl,
		&kgo.Record{Topic: topology.SubjectRatings, Partition: 0, Key: []byte("42"), Value: []byte(`{"rating_id":42}`), Timestamp: ts,
			Headers: []kgo.RecordHeader{{Key: "traceId", Value: []byte("abc")}, {Key: "multi", Value: []byte("1")}, {Key: "multi", Value: []byte("2")},
				{Key: "Nats-Expected-Stream", Value: []byte("NOPE")}, {Key: "bad", Value: []byte("line\r\nbreak")}}},
		&kgo.Record{Topic: topology.SubjectCustomersCDC, Key: []byte(`{"id":7}`), Value: nil, Timestamp: ts}, // tombstone
		&kgo.Record{Topic: topology.SubjectCustomersCDC, Key: []byte("bin\nkey"), Value: []byte{}, Timestamp: ts},
		&kgo.Record{Topic: "renamed", Value: []byte("x"), Timestamp: ts},
	)
	c := fromKafka(brokers, "g1", topology.SubjectRatings, topology.SubjectCustomersCDC, "renamed="+topology.SubjectRatings+".renamed")
	_, js := env.Connect(t)
	// A stream for the renamed topic's subject (ratings.renamed is outside RATINGS' subjects).
	if err := topology.EnsureStream(context.Background(), js, topology.Stream{Name: "RENAMED", Subjects: []string{"ratings.renamed"}}, topology.Options{}); err != nil {
		t.Fatal(err)
	}
	b := startBridge(t, env, c)
	if err := waitFor(20*time.Second, func() error {
		if n := streamMsgs(t, js, topology.StreamRatings) + streamMsgs(t, js, topology.StreamDebezium) + streamMsgs(t, js, "RENAMED"); n != 4 {
			return fmt.Errorf("%d of 4 messages", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b.stop(t)

	rating := readStream(t, js, topology.StreamRatings)[0]
	h := rating.Headers()
	checks := map[string]string{
		events.HeaderKey:       "42",
		events.HeaderEventTime: "1700000000123",
		events.HeaderMsgID:     "kafka:ratings:0:0",
		"traceId":              "abc",
	}
	for k, v := range checks {
		if got := h.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if got := h.Values("multi"); len(got) != 2 || got[0] != "1" || got[1] != "2" {
		t.Errorf("repeated header multi = %q, want [1 2]", got)
	}
	if h.Get("Nats-Expected-Stream") != "" || h.Get("bad") != "" {
		t.Errorf("unsafe headers were copied: %v", h)
	}
	if h.Get(events.HeaderTombstone) != "" {
		t.Error("a record with a value is marked as tombstone")
	}
	if string(rating.Data()) != `{"rating_id":42}` || rating.Subject() != "ratings" {
		t.Errorf("got %s %q", rating.Subject(), rating.Data())
	}

	cdc := readStream(t, js, topology.StreamDebezium)
	if len(cdc) != 2 {
		t.Fatalf("%d CDC messages", len(cdc))
	}
	byKey := map[string]jetstream.Msg{}
	for _, m := range cdc {
		byKey[m.Headers().Get(events.HeaderKey)] = m
	}
	tomb := byKey[`{"id":7}`]
	if tomb == nil || tomb.Headers().Get(events.HeaderTombstone) != "true" || len(tomb.Data()) != 0 {
		t.Errorf("tombstone not carried: %v", tomb)
	}
	bin := byKey["YmluCmtleQ=="] // base64("bin\nkey")
	if bin == nil || bin.Headers().Get(HeaderKeyEncoding) != "base64" || bin.Headers().Get(events.HeaderTombstone) != "" {
		t.Errorf("binary key / empty value not carried: %v", cdc[1].Headers())
	}
	if r := readStream(t, js, "RENAMED"); len(r) != 1 || r[0].Subject() != "ratings.renamed" {
		t.Errorf("topic=subject mapping: %v", r)
	}
	// Committed exactly up to what was published.
	if got := committed(t, brokers, "g1", topology.SubjectRatings); got[0] != 1 {
		t.Errorf("committed %v, want partition 0 at 1", got)
	}
}

// JetStream away: nothing is committed; back: everything arrives, exactly once.
func TestKafkaToJetStreamCommitsOnlyAfterAck(t *testing.T) {
	brokers := startKfake(t, 3, "orders")
	env := natstest.Start(t)
	_, js := env.Connect(t)
	cl := kafkaClient(t, brokers)
	produceN(t, cl, "orders", 0, 3000)
	c := fromKafka(brokers, "g2", "orders")
	c.AckTimeout = 500 * time.Millisecond
	c.Batch = 1000
	// No stream for "orders" yet: every publish fails (no responders).
	b := startBridge(t, env, c)
	time.Sleep(2 * time.Second)
	if got := committed(t, brokers, "g2", "orders"); len(got) != 0 {
		t.Fatalf("committed %v although JetStream acknowledged nothing", got)
	}
	if err := topology.EnsureStream(context.Background(), js, topology.Stream{Name: "ORDERS", Subjects: []string{"orders"}}, topology.Options{}); err != nil {
		t.Fatal(err)
	}
	produceN(t, cl, "orders", 3000, 2000)
	if err := waitFor(30*time.Second, func() error {
		if n := streamMsgs(t, js, "ORDERS"); n < 5000 {
			return fmt.Errorf("%d of 5000", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b.stop(t)
	assertExactlyOnce(t, js, "ORDERS", expected(t, brokers, "orders"))
	ends := endOffsets(t, brokers, "orders")
	if got := committed(t, brokers, "g2", "orders"); fmt.Sprint(got) != fmt.Sprint(ends) {
		t.Fatalf("committed %v, want the end offsets %v", got, ends)
	}
}

// Two bridges in one group share the partitions; one joins and one leaves mid-run (revocation):
// every record arrives exactly once.
func TestKafkaToJetStreamGroupRebalance(t *testing.T) {
	brokers := startKfake(t, 6, "orders")
	env := natstest.Start(t)
	_, js := env.Connect(t)
	if err := topology.EnsureStream(context.Background(), js, topology.Stream{Name: "ORDERS", Subjects: []string{"orders"}}, topology.Options{}); err != nil {
		t.Fatal(err)
	}
	cl := kafkaClient(t, brokers)
	c := fromKafka(brokers, "g3", "orders")
	c.Batch = 500
	a := startBridge(t, env, c)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			produceN(t, cl, "orders", i*1000, 1000)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	b := startBridge(t, env, c)
	time.Sleep(300 * time.Millisecond)
	a.stop(t)
	<-done
	if err := waitFor(60*time.Second, func() error {
		if n := streamMsgs(t, js, "ORDERS"); n < 20000 {
			return fmt.Errorf("%d of 20000", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b.stop(t)
	assertExactlyOnce(t, js, "ORDERS", expected(t, brokers, "orders"))
}

// The bridge process is SIGKILLed mid-run, twice, and restarted: JetStream holds every record
// exactly once (uncommitted batches are replayed and de-duplicated by Nats-Msg-Id).
func TestKafkaToJetStreamSurvivesKill(t *testing.T) {
	brokers := startKfake(t, 3, "orders")
	env := natstest.Start(t)
	_, js := env.Connect(t)
	if err := topology.EnsureStream(context.Background(), js, topology.Stream{Name: "ORDERS", Subjects: []string{"orders"}}, topology.Options{}); err != nil {
		t.Fatal(err)
	}
	const total = 60000
	produceN(t, kafkaClient(t, brokers), "orders", 0, total)
	procEnv := []string{
		"JETSUITE_NATS_URL=" + env.Server.ClientURL(), "JETSUITE_BRIDGE_KAFKA_BROKERS=" + brokers[0], "JETSUITE_BRIDGE_GROUP=gkill",
		"JETSUITE_BRIDGE_FROM_KAFKA=orders", "JETSUITE_BRIDGE_TO_KAFKA=", "JETSUITE_BRIDGE_BATCH=500", "JETSUITE_BRIDGE_SESSION_TIMEOUT=6s",
	}
	bridgeBinary(t) // build before the clock matters
	killTwiceThenFinish(t, js, "ORDERS", procEnv, total, 3000, 30*time.Second, 60*time.Second)
	assertExactlyOnce(t, js, "ORDERS", expected(t, brokers, "orders"))
}

func TestJetStreamToKafka(t *testing.T) {
	brokers := startKfake(t, 1)
	env := natstest.Start(t)
	_, js := env.Connect(t)
	ctx := context.Background()
	pub := func(subject, body string, hdr map[string]string) {
		m := nats.NewMsg(subject)
		m.Data = []byte(body)
		for k, v := range hdr {
			m.Header[k] = []string{v}
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	pub(topology.StreamUnhappyPlatinumCustomers, `{"RATING_ID":1,"FULL_NAME":"Rica Blaisdell","STARS":1}`,
		map[string]string{events.HeaderEventTime: "1700000000456", "traceId": "t1", events.HeaderMsgID: "m1"})
	// The enricher keys a join's rows by the join key (header), the customer id.
	pub(topology.StreamRatingsWithCustomerData, `{"RATING_ID":2,"CUSTOMER_ID":"5","FULL_NAME":"Hansiain Coda"}`, map[string]string{events.HeaderKey: "5"})
	pub(topology.StreamRatingsWithCustomerData, ``, map[string]string{events.HeaderTombstone: "true", events.HeaderKey: "9"})
	pub(topology.StreamRatingsWithCustomerData, `not json`, map[string]string{events.HeaderKey: "fallback"})

	c := DefaultConfig()
	c.Brokers, c.FromKafka = brokers, nil
	c.ToKafka = []string{topology.StreamUnhappyPlatinumCustomers, topology.StreamRatingsWithCustomerData + "=ratings-enriched"}
	b := startBridge(t, env, c)

	got := map[string][]*kgo.Record{}
	cons := kafkaClient(t, brokers, kgo.ConsumeTopics(topology.StreamUnhappyPlatinumCustomers, "ratings-enriched"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for n := 0; n < 4; {
		fs := cons.PollFetches(pctx)
		if pctx.Err() != nil {
			t.Fatalf("got %d of 4 records", n)
		}
		fs.EachRecord(func(r *kgo.Record) { got[r.Topic] = append(got[r.Topic], r); n++ })
	}
	u := got[topology.StreamUnhappyPlatinumCustomers][0]
	if string(u.Key) != "Rica Blaisdell" || u.Timestamp.UnixMilli() != 1700000000456 {
		t.Errorf("key %q timestamp %d", u.Key, u.Timestamp.UnixMilli())
	}
	hdr := map[string]string{}
	for _, h := range u.Headers {
		hdr[h.Key] = string(h.Value)
	}
	if hdr["traceId"] != "t1" || hdr[HeaderSource] != topology.StreamUnhappyPlatinumCustomers+":1" || hdr[events.HeaderMsgID] != "" || hdr[events.HeaderEventTime] != "" {
		t.Errorf("headers %v", hdr)
	}
	e := got["ratings-enriched"]
	if len(e) != 3 {
		t.Fatalf("%d enriched records", len(e))
	}
	// The topic has several partitions: records of different keys arrive in any order.
	byKey := map[string]*kgo.Record{}
	for _, r := range e {
		byKey[string(r.Key)] = r
	}
	if r := byKey["5"]; r == nil || string(r.Value) != `{"RATING_ID":2,"CUSTOMER_ID":"5","FULL_NAME":"Hansiain Coda"}` {
		t.Errorf("no record keyed 5 with the joined row: %v", byKey)
	}
	if r := byKey["9"]; r == nil || r.Value != nil {
		t.Errorf("no tombstone keyed 9: %v", byKey)
	}
	if r := byKey["fallback"]; r == nil || string(r.Value) != "not json" {
		t.Errorf("no record keyed from its header: %v", byKey)
	}
	// Every message acked (after Kafka took it): nothing pending in the durable consumers.
	if err := waitFor(10*time.Second, func() error {
		for _, s := range []string{topology.StreamUnhappyPlatinumCustomers, topology.StreamRatingsWithCustomerData} {
			ci, err := js.Consumer(ctx, s, c.DurablePrefix+s)
			if err != nil {
				return err
			}
			info, err := ci.Info(ctx)
			if err != nil {
				return err
			}
			if info.NumAckPending != 0 || info.NumPending != 0 {
				return fmt.Errorf("%s: %d ack pending, %d pending", s, info.NumAckPending, info.NumPending)
			}
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	b.stop(t)
}

// Kafka refuses produce requests: JetStream messages stay unacked (redelivered); once Kafka takes
// them, they are acked.
func TestJetStreamToKafkaAcksOnlyAfterKafka(t *testing.T) {
	kf, env, js := outboundSetup(t)
	ctx := context.Background()
	kf.refuse.Store(true)
	c := DefaultConfig()
	c.Brokers, c.FromKafka = kf.ListenAddrs(), nil
	c.ToKafka = []string{topology.StreamUnhappyPlatinumCustomers}
	c.AckTimeout = time.Second
	b := startBridge(t, env, c)
	durable := c.DurablePrefix + topology.StreamUnhappyPlatinumCustomers
	info := func() *jetstream.ConsumerInfo {
		// The runtime recreates the consumer from the checkpoint every time it resumes after
		// Kafka refused a batch: between its delete and create, look again.
		var inf *jetstream.ConsumerInfo
		if err := waitFor(5*time.Second, func() error {
			ci, err := js.Consumer(ctx, topology.StreamUnhappyPlatinumCustomers, durable)
			if err != nil {
				return err
			}
			inf, err = ci.Info(ctx)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return inf
	}
	time.Sleep(3 * time.Second)
	if inf := info(); inf.AckFloor.Consumer != 0 {
		t.Fatalf("acked %d messages while Kafka refused every record", inf.AckFloor.Consumer)
	}
	if kf.refused.Load() == 0 {
		t.Fatal("no produce request reached the refusing broker")
	}
	kf.refuse.Store(false)
	if err := waitFor(30*time.Second, func() error {
		if inf := info(); inf.NumAckPending != 0 || inf.NumPending != 0 || inf.AckFloor.Stream != 10 {
			return fmt.Errorf("ack floor %d, ack pending %d", inf.AckFloor.Stream, inf.NumAckPending)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b.stop(t)
	// Every message reached Kafka (a refused-then-retried record may be there twice: at-least-once).
	seen := map[string]bool{}
	cons := kafkaClient(t, kf.ListenAddrs(), kgo.ConsumeTopics(topology.StreamUnhappyPlatinumCustomers), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for len(seen) < 10 {
		fs := cons.PollFetches(pctx)
		if pctx.Err() != nil {
			t.Fatalf("%d of 10 distinct records in Kafka", len(seen))
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Key)] = true })
	}
}

// Kafka fails every record at once (a non-retriable error, so kgo gives up on them and the
// handler hands the batch back with flow.Retry): nothing is acked, the batch is delivered again
// from the checkpoint, and once Kafka takes it every record lands once, in stream order.
func TestJetStreamToKafkaRetriesFromCheckpointInOrder(t *testing.T) {
	kf, env, js := outboundSetup(t)
	ctx := context.Background()
	kf.code.Store(87) // INVALID_RECORD: not retriable
	kf.refuse.Store(true)
	c := DefaultConfig()
	c.Brokers, c.FromKafka = kf.ListenAddrs(), nil
	c.ToKafka = []string{topology.StreamUnhappyPlatinumCustomers}
	b := startBridge(t, env, c)
	// Three refused produce requests: the batch came back at least twice.
	if err := waitFor(30*time.Second, func() error {
		if n := kf.refused.Load(); n < 3 {
			return fmt.Errorf("%d refused produce requests", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	durable := c.DurablePrefix + topology.StreamUnhappyPlatinumCustomers
	if cp, err := flow.Checkpoint(ctx, js, durable, topology.StreamUnhappyPlatinumCustomers); err != nil || cp != 0 {
		t.Fatalf("checkpoint %d (%v) while Kafka refused every record", cp, err)
	}
	kf.refuse.Store(false)
	if err := waitFor(30*time.Second, func() error {
		cp, err := flow.Checkpoint(ctx, js, durable, topology.StreamUnhappyPlatinumCustomers)
		if err == nil && cp != 10 {
			err = fmt.Errorf("checkpoint %d", cp)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	b.stop(t)
	cons := kafkaClient(t, kf.ListenAddrs(), kgo.ConsumeTopics(topology.StreamUnhappyPlatinumCustomers), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var keys []string
	for len(keys) < 10 {
		fs := cons.PollFetches(pctx)
		if pctx.Err() != nil {
			t.Fatalf("%d of 10 records in Kafka: %v", len(keys), keys)
		}
		fs.EachRecord(func(r *kgo.Record) { keys = append(keys, string(r.Key)) })
	}
	for i, k := range keys {
		if want := fmt.Sprintf("n%d", i); k != want {
			t.Fatalf("record %d has key %q, want %q (all: %v)", i, k, want, keys)
		}
	}
}

func TestEmbeddedKafkaProducesRatings(t *testing.T) {
	env := natstest.Start(t)
	_, js := env.Connect(t)
	c := DefaultConfig()
	c.Embedded, c.RatingsPerSecond, c.RatingsSeed = true, 200, 7
	c.EmbeddedDir = t.TempDir()
	b := startBridge(t, env, c)
	if err := waitFor(20*time.Second, func() error {
		if n := streamMsgs(t, js, topology.StreamRatings); n < 20 {
			return fmt.Errorf("%d ratings", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b.stop(t)
	msgs := readStream(t, js, topology.StreamRatings)
	for i, m := range msgs {
		r, err := events.DecodeRating(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		want := demoRating(7, uint64(i))
		if r.RatingID.V != int64(i+1) || m.Headers().Get(events.HeaderKey) != strconv.Itoa(i+1) {
			t.Fatalf("message %d: rating_id %v key %q", i, r.RatingID, m.Headers().Get(events.HeaderKey))
		}
		wantJSON, _ := json.Marshal(want.value)
		if string(m.Data()) != string(wantJSON) {
			t.Fatalf("message %d: %s, want %s", i, m.Data(), wantJSON)
		}
	}
	// Restart on the same data: rating ids and Kafka offsets continue (no id reused).
	n := len(msgs)
	b = startBridge(t, env, c)
	if err := waitFor(20*time.Second, func() error {
		if got := streamMsgs(t, js, topology.StreamRatings); got < uint64(n+20) {
			return fmt.Errorf("%d ratings", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b.stop(t)
	msgs = readStream(t, js, topology.StreamRatings)
	for i, m := range msgs {
		if r, _ := events.DecodeRating(m.Data()); r.RatingID.V != int64(i+1) {
			t.Fatalf("after restart, message %d has rating_id %d", i, r.RatingID.V)
		}
	}
}

// controlledKfake is a kfake cluster whose produce requests can be refused.
type controlledKfake struct {
	*kfake.Cluster
	refuse  atomic.Bool
	refused atomic.Int64
	// code is the error refused partitions get (0: 7, REQUEST_TIMED_OUT, retriable).
	code atomic.Int32
}

func newControlledKfake() (*controlledKfake, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1))
	if err != nil {
		return nil, err
	}
	k := &controlledKfake{Cluster: c}
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !k.refuse.Load() {
			return nil, nil, false
		}
		k.refused.Add(1)
		r := req.(*kmsg.ProduceRequest)
		resp := r.ResponseKind().(*kmsg.ProduceResponse)
		for _, t := range r.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = 7 // REQUEST_TIMED_OUT: retriable
				if c := k.code.Load(); c != 0 {
					rp.ErrorCode = int16(c)
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	return k, nil
}

// outboundSetup starts a Kafka whose answers the test controls and a NATS server with ten
// UNHAPPY_PLATINUM_CUSTOMERS messages waiting for the bridge.
func outboundSetup(t *testing.T) (*controlledKfake, *natstest.Env, jetstream.JetStream) {
	t.Helper()
	kf, err := newControlledKfake()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kf.Close)
	env := natstest.Start(t)
	_, js := env.Connect(t)
	for i := range 10 {
		if _, err := js.Publish(context.Background(), topology.StreamUnhappyPlatinumCustomers, fmt.Appendf(nil, `{"FULL_NAME":"n%d"}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	return kf, env, js
}

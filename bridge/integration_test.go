package bridge

// Integration tests against the real Apache Kafka, Kafka Connect + Debezium and MariaDB that
// testenv/run.sh starts (skipped outside CI when they are missing, failed in CI).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/jetsuite/jetsuite/services/cdc"
	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/testenv"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// uniq makes names unique per run: the real Kafka is shared by every test of the run.
func uniq(prefix string) string { return fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1e10) }

func createTopic(t testing.TB, brokers []string, topic string, partitions int32) {
	t.Helper()
	adm := kadm.NewClient(kafkaClient(t, brokers))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// 100,000 records over 3 partitions arrive in JetStream exactly once, although the bridge
// process is SIGKILLed twice mid-run and restarted.
func TestIntegrationRealKafkaExactlyOnceAcrossKills(t *testing.T) {
	brokers := strings.Split(testenv.Require(t, testenv.KafkaBrokers), ",")
	topic, stream := uniq("it-orders-"), uniq("ITORDERS")
	createTopic(t, brokers, topic, 3)
	env := natstest.Start(t)
	_, js := env.Connect(t)
	if err := topology.EnsureStream(context.Background(), js, topology.Stream{Name: stream, Subjects: []string{stream}}, topology.Options{}); err != nil {
		t.Fatal(err)
	}
	const total = 100_000
	produceN(t, kafkaClient(t, brokers), topic, 0, total)
	procEnv := []string{
		"JETSUITE_NATS_URL=" + env.Server.ClientURL(), "JETSUITE_BRIDGE_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"JETSUITE_BRIDGE_GROUP=" + uniq("it-group-"), "JETSUITE_BRIDGE_FROM_KAFKA=" + topic + "=" + stream, "JETSUITE_BRIDGE_TO_KAFKA=",
		"JETSUITE_BRIDGE_BATCH=1000", "JETSUITE_BRIDGE_SESSION_TIMEOUT=6s",
	}
	bridgeBinary(t)
	killTwiceThenFinish(t, js, stream, procEnv, total, 10_000, 60*time.Second, 2*time.Minute)
	assertExactlyOnce(t, js, stream, expected(t, brokers, topic))
}

// Records produced by kcat (librdkafka, a non-Go client) arrive with key, headers, timestamp
// and tombstones intact.
func TestIntegrationKcatToJetStream(t *testing.T) {
	brokers := strings.Split(testenv.Require(t, testenv.KafkaBrokers), ",")
	topic, stream := uniq("it-kcat-"), uniq("ITKCAT")
	createTopic(t, brokers, topic, 1)
	cmd := exec.Command("kcat", "-P", "-b", brokers[0], "-t", topic, "-K", ":", "-Z",
		"-H", "traceId=abc-123", "-H", "multi=1", "-H", "multi=2")
	cmd.Stdin = strings.NewReader("k1:{\"v\":1}\nk2:{\"v\":2}\nk3:\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}
	// What Kafka has, as kcat reads it back: offset, key, timestamp.
	out, err := exec.Command("kcat", "-C", "-b", brokers[0], "-t", topic, "-o", "beginning", "-e", "-q",
		"-f", "%o\t%k\t%T\n").Output()
	if err != nil {
		t.Fatalf("kcat consume: %v", err)
	}
	kafkaTS := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("kcat line %q", line)
		}
		kafkaTS[f[1]] = f[2]
	}
	if len(kafkaTS) != 3 {
		t.Fatalf("kcat read %d records: %q", len(kafkaTS), out)
	}

	env := natstest.Start(t)
	_, js := env.Connect(t)
	if err := topology.EnsureStream(context.Background(), js, topology.Stream{Name: stream, Subjects: []string{stream}}, topology.Options{}); err != nil {
		t.Fatal(err)
	}
	b := startBridge(t, env, fromKafka(brokers, uniq("it-kcat-group-"), topic+"="+stream))
	if err := waitFor(30*time.Second, func() error {
		if n := streamMsgs(t, js, stream); n != 3 {
			return fmt.Errorf("%d of 3", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b.stop(t)
	for i, m := range readStream(t, js, stream) {
		h := m.Headers()
		key := h.Get(events.HeaderKey)
		if want := "k" + strconv.Itoa(i+1); key != want {
			t.Errorf("message %d: key %q, want %q", i, key, want)
		}
		if h.Get(events.HeaderEventTime) != kafkaTS[key] {
			t.Errorf("%s: Event-Time %q, Kafka timestamp %q", key, h.Get(events.HeaderEventTime), kafkaTS[key])
		}
		if h.Get("traceId") != "abc-123" || strings.Join(h.Values("multi"), ",") != "1,2" {
			t.Errorf("%s: headers %v", key, h)
		}
		if h.Get(events.HeaderMsgID) != MsgID(topic, 0, int64(i)) {
			t.Errorf("%s: msg id %q", key, h.Get(events.HeaderMsgID))
		}
		tomb := h.Get(events.HeaderTombstone) == "true"
		if wantTomb := key == "k3"; tomb != wantTomb || (tomb && len(m.Data()) != 0) {
			t.Errorf("%s: tombstone %v, body %q", key, tomb, m.Data())
		}
		if key == "k1" && string(m.Data()) != `{"v":1}` {
			t.Errorf("k1: body %q", m.Data())
		}
	}
}

// JetStream -> Kafka, read back with kcat: key from the JSON field, timestamp from Event-Time,
// headers, a tombstone as a NULL value.
func TestIntegrationJetStreamToKcat(t *testing.T) {
	brokers := strings.Split(testenv.Require(t, testenv.KafkaBrokers), ",")
	topic, stream := uniq("it-out-"), uniq("ITOUT")
	env := natstest.Start(t)
	_, js := env.Connect(t)
	ctx := context.Background()
	if err := topology.EnsureStream(ctx, js, topology.Stream{Name: stream, Subjects: []string{stream}}, topology.Options{}); err != nil {
		t.Fatal(err)
	}
	for i, body := range []string{`{"FULL_NAME":"Rica Blaisdell","STARS":1}`, `{"FULL_NAME":"Hashim Rumke","STARS":2}`, ``} {
		m := nats.NewMsg(stream)
		m.Data = []byte(body)
		m.Header[events.HeaderEventTime] = []string{strconv.Itoa(1_700_000_000_000 + i)}
		m.Header["traceId"] = []string{"t" + strconv.Itoa(i)}
		if body == "" {
			m.Header[events.HeaderTombstone] = []string{"true"}
			m.Header[events.HeaderKey] = []string{"Gone Person"}
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	c := DefaultConfig()
	c.Brokers, c.FromKafka, c.ToKafka = brokers, nil, []string{stream + "=" + topic}
	c.KeyFields = []string{stream + "=FULL_NAME"}
	b := startBridge(t, env, c)
	var lines []string
	if err := waitFor(30*time.Second, func() error {
		out, err := exec.Command("kcat", "-C", "-b", brokers[0], "-t", topic, "-o", "beginning", "-e", "-q", "-Z",
			"-f", "%k|%T|%h|%S|%s\n").Output()
		if err != nil {
			return err
		}
		lines = strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 3 {
			return fmt.Errorf("%d of 3 records: %q", len(lines), out)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b.stop(t)
	v0, v1 := `{"FULL_NAME":"Rica Blaisdell","STARS":1}`, `{"FULL_NAME":"Hashim Rumke","STARS":2}`
	want := []string{
		fmt.Sprintf("Rica Blaisdell|1700000000000|traceId=t0,jetsuite-source=%s:1|%d|%s", stream, len(v0), v0),
		fmt.Sprintf("Hashim Rumke|1700000000001|traceId=t1,jetsuite-source=%s:2|%d|%s", stream, len(v1), v1),
		fmt.Sprintf("Gone Person|1700000000002|traceId=t2,jetsuite-source=%s:3|-1|NULL", stream),
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("record %d:\n got %s\nwant %s", i, lines[i], want[i])
		}
	}
}

// INSERT, UPDATE and DELETE in MariaDB reach JetStream through Debezium -> Kafka -> bridge as
// Debezium change events, and the CDC reader turns them into the CUSTOMERS bucket.
func TestIntegrationDebeziumEndToEnd(t *testing.T) {
	brokers := strings.Split(testenv.Require(t, testenv.KafkaBrokers), ",")
	testenv.Require(t, testenv.KafkaConnect)
	sock := testenv.Require(t, testenv.MariaDBSocket)
	env := natstest.Start(t)
	nc, js := env.Connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := startBridge(t, env, fromKafka(brokers, uniq("it-cdc-group-"), topology.SubjectCustomersCDC))
	reader := cdc.New(runner.Deps{NC: nc, JS: js, Log: testLogger(t)}, cdc.Config{})
	readerDone := make(chan error, 1)
	go func() { readerDone <- reader.Run(ctx) }()
	kv, err := js.KeyValue(ctx, topology.TableCustomers)
	if err != nil {
		t.Fatal(err)
	}
	// The snapshot arrived (customer 1 of the seed data).
	waitKV(t, kv, "1", func(v string) bool { return strings.Contains(v, "Blaisdell") })

	id := 1000 + time.Now().UnixNano()%1_000_000
	sql := func(q string) {
		t.Helper()
		if out, err := exec.Command("mariadb", "--no-defaults", "-S", sock, "-uroot", "demo", "-e", q).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", q, err, out)
		}
	}
	sql(fmt.Sprintf("INSERT INTO CUSTOMERS (ID,FIRST_NAME,LAST_NAME) VALUES (%d,'Rick','Astley')", id))
	waitKV(t, kv, strconv.FormatInt(id, 10), func(v string) bool { return strings.Contains(v, "Astley") })
	sql(fmt.Sprintf("UPDATE CUSTOMERS SET EMAIL='rick@example.com' WHERE ID=%d", id))
	waitKV(t, kv, strconv.FormatInt(id, 10), func(v string) bool { return strings.Contains(v, "rick@example.com") })
	sql(fmt.Sprintf("DELETE FROM CUSTOMERS WHERE ID=%d", id))
	if err := waitFor(30*time.Second, func() error {
		if _, err := kv.Get(ctx, strconv.FormatInt(id, 10)); err == nil {
			return fmt.Errorf("customer %d still in CUSTOMERS", id)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// The raw change events on asgard.demo.CUSTOMERS: c, u, d and the delete's tombstone.
	var ops []string
	for _, m := range readStream(t, js, topology.StreamDebezium) {
		h := m.Headers()
		if h.Get(events.HeaderKey) != fmt.Sprintf(`{"id":%d}`, id) {
			continue
		}
		if h.Get(events.HeaderTombstone) == "true" {
			ops = append(ops, "tombstone")
			continue
		}
		var env struct {
			Op    string          `json:"op"`
			After json.RawMessage `json:"after"`
		}
		if err := json.Unmarshal(m.Data(), &env); err != nil {
			t.Fatalf("change event %q: %v", m.Data(), err)
		}
		ops = append(ops, env.Op)
		if !strings.HasPrefix(h.Get(events.HeaderMsgID), "kafka:"+topology.SubjectCustomersCDC+":") {
			t.Errorf("msg id %q", h.Get(events.HeaderMsgID))
		}
	}
	if strings.Join(ops, ",") != "c,u,d,tombstone" {
		t.Errorf("change events for customer %d: %v, want c,u,d,tombstone", id, ops)
	}
	b.stop(t)
	cancel()
	if err := <-readerDone; err != nil {
		t.Errorf("cdc reader: %v", err)
	}
}

func waitKV(t testing.TB, kv jetstream.KeyValue, key string, ok func(string) bool) {
	t.Helper()
	var last string
	if err := waitFor(60*time.Second, func() error {
		e, err := kv.Get(context.Background(), key)
		if err != nil {
			return err
		}
		last = string(e.Value())
		if !ok(last) {
			return fmt.Errorf("value %s", last)
		}
		return nil
	}); err != nil {
		t.Fatalf("CUSTOMERS[%s]: %v (last %s)", key, err, last)
	}
}

// BenchmarkKafkaToJetStream measures the bridge (Kafka -> JetStream, acked and committed)
// beside a plain franz-go group consume of the same records in the same run. It uses the real
// Kafka when testenv/run.sh started one, else kfake.
func BenchmarkKafkaToJetStream(b *testing.B) {
	const n = 200_000
	brokersEnv := os.Getenv(testenv.KafkaBrokers)
	var brokers []string
	where := "kfake"
	topic := uniq("bench-")
	if brokersEnv != "" {
		brokers, where = strings.Split(brokersEnv, ","), "kafka"
		createTopic(b, brokers, topic, 3)
	} else {
		brokers = startKfake(b, 3, topic)
	}
	value := []byte(strings.Repeat("x", 100))
	cl := kafkaClient(b, brokers)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: value}
	}
	produce(b, cl, recs...)
	b.Logf("%d records of 100 bytes in 3 partitions of %s", n, where)

	b.Run("plain-franz-go", func(b *testing.B) {
		for range b.N {
			c := kafkaClient(b, brokers, kgo.ConsumerGroup(uniq("bench-plain-")), kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
			start := time.Now()
			got := 0
			var last []*kgo.Record
			for got < n {
				fs := c.PollRecords(context.Background(), 5000)
				last = fs.Records()
				got += len(last)
			}
			if err := c.CommitRecords(context.Background(), last...); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "records/s")
			c.Close()
		}
	})
	b.Run("bridge", func(b *testing.B) {
		for range b.N {
			env := natstest.Start(b)
			_, js := env.Connect(b)
			if err := topology.EnsureStream(context.Background(), js, topology.Stream{Name: "BENCH", Subjects: []string{"bench"}}, topology.Options{}); err != nil {
				b.Fatal(err)
			}
			c := fromKafka(brokers, uniq("bench-bridge-"), topic+"=bench")
			start := time.Now()
			r := startBridge(b, env, c)
			if err := waitFor(5*time.Minute, func() error {
				if m := streamMsgs(b, js, "BENCH"); m < n {
					return fmt.Errorf("%d of %d", m, n)
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "records/s")
			r.stop(b)
		}
	})
}

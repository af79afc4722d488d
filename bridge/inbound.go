package bridge

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/pipe"
)

// Headers the bridge adds beyond the shared ones (package events).
const (
	// HeaderKeyEncoding is "base64" when a Kafka key could not travel as a header value as is
	// (it held CR, LF or NUL); Jetsuite-Key then holds its base64 form.
	HeaderKeyEncoding = "Jetsuite-Key-Encoding"
	// HeaderSource names the JetStream message a record produced into Kafka came from
	// ("<stream>:<seq>"), so a consumer can spot the rare duplicate after a redelivery.
	HeaderSource = "jetsuite-source"
)

// MsgID is the Nats-Msg-Id of a Kafka record published into JetStream.
func MsgID(topic string, partition int32, offset int64) string {
	return "kafka:" + topic + ":" + strconv.FormatInt(int64(partition), 10) + ":" + strconv.FormatInt(offset, 10)
}

// inbound copies Kafka topics into JetStream subjects.
type inbound struct {
	s        *Service
	cl       *kgo.Client
	subjects map[string]string
	// maxPayload is the NATS server's limit; bigger records are dead-lettered (without body)
	// instead of blocking their partition forever.
	maxPayload int
}

func newInbound(s *Service, brokers []string) (*inbound, error) {
	in := &inbound{s: s, subjects: map[string]string{}, maxPayload: s.maxPayload}
	topics := make([]string, 0, len(s.from))
	for _, r := range s.from {
		topics = append(topics, r.from)
		in.subjects[r.from] = r.to
	}
	reset := kgo.NewOffset().AtStart()
	if s.cfg.Start == "latest" {
		reset = kgo.NewOffset().AtEnd()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("jetsuite-bridge"),
		kgo.WithLogger(kgoLogger{s.log.With("direction", "from_kafka")}),
		kgo.ConsumerGroup(s.cfg.Group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(reset),
		kgo.SessionTimeout(s.cfg.SessionTimeout),
		// Commit by hand, exactly what JetStream acknowledged.
		kgo.DisableAutoCommit(),
		// No rebalance between a poll and its commit: revocation waits for the batch in
		// flight, so a partition never moves with records published but not committed.
		kgo.BlockRebalanceOnPoll(),
		// Skip records of aborted transactions, like a Kafka Streams/ksqlDB consumer would.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Fetching stops while a fetch's worth is buffered and unpolled: backpressure.
		kgo.FetchMaxBytes(int32(s.cfg.FetchMaxBytes)),
	)
	if err != nil {
		return nil, fmt.Errorf("bridge: kafka consumer: %w", err)
	}
	in.cl = cl
	return in, nil
}

func (in *inbound) run(ctx context.Context, started chan<- struct{}) error {
	defer in.cl.Close()
	log := in.s.log.With("direction", "from_kafka")
	started <- struct{}{}
	// The batch in flight finishes after ctx ends (drain); AckTimeout bounds that.
	work := context.WithoutCancel(ctx)
	for {
		fs := in.cl.PollRecords(ctx, in.s.cfg.Batch)
		failed := false
		fs.EachError(func(topic string, p int32, err error) {
			if ctx.Err() == nil {
				failed = true
				log.Warn("kafka fetch", "topic", topic, "partition", p, "err", err)
			}
		})
		recs := fs.Records()
		if len(recs) > 0 {
			in.forward(work, recs)
		}
		in.cl.AllowRebalance()
		if failed && len(recs) == 0 {
			// A persistent error (authorization, unknown topic) would otherwise spin the loop.
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		if ctx.Err() != nil {
			log.Info("stopped; every forwarded batch is committed")
			return nil
		}
	}
}

// forward publishes a polled batch, waits for JetStream, then commits exactly those records. If
// JetStream does not acknowledge everything in time, the batch's partitions are rewound to the
// batch's first offsets and nothing is committed: the next poll replays them, and Nats-Msg-Id
// makes the records that did land duplicates.
func (in *inbound) forward(ctx context.Context, recs []*kgo.Record) {
	begin := time.Now()
	pub := pipe.NewPublisher(in.s.js, "bridge")
	first := map[string]map[int32]kgo.EpochOffset{}
	last := map[topicPartition]*kgo.Record{}
	count := map[string]int{}
	var err error
	for _, r := range recs {
		tp := topicPartition{r.Topic, r.Partition}
		count[r.Topic]++
		if _, ok := last[tp]; !ok {
			if first[r.Topic] == nil {
				first[r.Topic] = map[int32]kgo.EpochOffset{}
			}
			first[r.Topic][r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset}
		}
		last[tp] = r
		if err = pub.Publish(in.message(r)); err != nil {
			break
		}
	}
	if err == nil {
		wait, cancel := context.WithTimeout(ctx, in.s.cfg.AckTimeout)
		err = pub.Wait(wait)
		cancel()
	}
	if err != nil {
		pub.Discard()
		in.cl.SetOffsets(first)
		in.s.log.Warn("JetStream did not acknowledge a batch in time; rewound to replay it",
			"records", len(recs), "err", err)
		time.Sleep(time.Second)
		return
	}
	commit := make([]*kgo.Record, 0, len(last))
	for _, r := range last {
		commit = append(commit, r)
	}
	cctx, cancel := context.WithTimeout(ctx, in.s.cfg.AckTimeout)
	defer cancel()
	if err := in.cl.CommitRecords(cctx, commit...); err != nil {
		// The group moved on (we were fenced, or the coordinator is away): whoever owns the
		// partitions now replays from the last commit, and JetStream drops the duplicates.
		in.s.log.Warn("kafka offset commit failed; the batch will be replayed and de-duplicated", "err", err)
		return
	}
	for topic, n := range count {
		obs.Processed.WithLabelValues("bridge", "kafka:"+topic).Add(float64(n))
		obs.BatchLatency.WithLabelValues("bridge", "kafka:"+topic).Observe(time.Since(begin).Seconds())
	}
}

type topicPartition struct {
	topic     string
	partition int32
}

// message turns a record into the JetStream message for it.
func (in *inbound) message(r *kgo.Record) *nats.Msg {
	subject := in.subjects[r.Topic]
	if subject == "" {
		subject = r.Topic
	}
	m := &nats.Msg{Subject: subject, Header: nats.Header{}, Data: r.Value}
	for _, h := range r.Headers {
		if !headerSafe(h.Key, h.Value) {
			obs.Dropped.WithLabelValues("kafka:"+r.Topic, "header_not_representable").Inc()
			in.s.log.Warn("kafka header cannot travel as a NATS header; dropped",
				"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "header", strconv.Quote(h.Key))
			continue
		}
		// Assigned directly (not Header.Add) so the key keeps its case, as Kafka has it.
		m.Header[h.Key] = append(m.Header[h.Key], string(h.Value))
	}
	if r.Key != nil {
		if strings.ContainsAny(string(r.Key), "\r\n\x00") {
			m.Header[events.HeaderKey] = []string{base64.StdEncoding.EncodeToString(r.Key)}
			m.Header[HeaderKeyEncoding] = []string{"base64"}
		} else {
			m.Header[events.HeaderKey] = []string{string(r.Key)}
		}
	}
	m.Header[events.HeaderEventTime] = []string{strconv.FormatInt(r.Timestamp.UnixMilli(), 10)}
	m.Header[events.HeaderMsgID] = []string{MsgID(r.Topic, r.Partition, r.Offset)}
	if r.Value == nil {
		m.Header[events.HeaderTombstone] = []string{"true"}
	}
	if in.maxPayload > 0 && len(m.Data)+headerSize(m.Header) > in.maxPayload {
		return in.tooLarge(r, m)
	}
	return m
}

// tooLarge turns a record over the NATS payload limit into a dead-letter notice (headers only,
// the body cannot fit), so that its partition moves on and the loss is counted and traceable.
// It is pipe's dead letter of a non-JetStream source: stream "kafka.<topic>" (subject
// dlq.kafka.<topic>), sequence "<partition>:<offset>", Nats-Msg-Id "dlq:bridge:<record's id>".
// Of the record's headers it keeps only the small ones that identify it (Event-Time, a key under
// 1 KiB and its encoding): the others may be what made it too large.
func (in *inbound) tooLarge(r *kgo.Record, m *nats.Msg) *nats.Msg {
	keep := nats.Header{}
	keep[events.HeaderEventTime] = m.Header[events.HeaderEventTime]
	if k := m.Header[events.HeaderKey]; len(k) > 0 && len(k[0]) < 1024 {
		keep[events.HeaderKey] = k
		if enc := m.Header[HeaderKeyEncoding]; len(enc) > 0 {
			keep[HeaderKeyEncoding] = enc
		}
	}
	pos := strconv.FormatInt(int64(r.Partition), 10) + ":" + strconv.FormatInt(r.Offset, 10)
	src := pipe.Source{
		Stream:  "kafka." + r.Topic,
		Subject: m.Subject,
		Seq:     uint64(max(r.Offset, 0)),
		ID:      MsgID(r.Topic, r.Partition, r.Offset),
		Headers: keep,
	}
	// A Kafka position needs the partition too: Extra comes last, so it replaces the plain
	// offset pipe writes.
	rej := pipe.Rejection{Reason: pipe.ReasonTooLarge,
		Error: fmt.Sprintf("kafka record of %d bytes is over the NATS max payload %d", len(m.Data), in.maxPayload),
		Extra: nats.Header{pipe.HeaderDLQSourceSeq: []string{pos}}}
	return pipe.DeadLetterOf("bridge", src, rej, in.s.log.With("direction", "from_kafka", "partition", r.Partition))
}

// headerSafe says whether a Kafka header can be written as a NATS header unchanged: the NATS
// header block is text lines "Key: value".
func headerSafe(key string, value []byte) bool {
	if key == "" || strings.ContainsAny(key, ": \t\r\n\x00") {
		return false
	}
	// Nats-* headers steer JetStream (expected sequence, TTL, rollup...): never from Kafka.
	if len(key) >= 5 && strings.EqualFold(key[:5], "nats-") {
		return false
	}
	return !strings.ContainsAny(string(value), "\r\n\x00")
}

func headerSize(h nats.Header) int {
	n := 12
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

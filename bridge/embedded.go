package bridge

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/jetsuite/jetsuite/shared/topology"
)

// startEmbedded starts the in-process Kafka of the demo: one kfake broker with the bridged
// topics (one partition each, like the original demo's), kept in dir across restarts.
func startEmbedded(c Config, log *slog.Logger) (*kfake.Cluster, error) {
	var topics []string
	for _, it := range c.FromKafka {
		r, err := parseRoutes([]string{it})
		if err != nil {
			return nil, err
		}
		topics = append(topics, r[0].from)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(1),
		kfake.SeedTopics(1, topics...),
	}
	if c.EmbeddedPort > 0 {
		opts = append(opts, kfake.Ports(c.EmbeddedPort))
	}
	if c.EmbeddedDir != "" {
		opts = append(opts, kfake.DataDir(c.EmbeddedDir))
	}
	cl, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("bridge: embedded kafka: %w", err)
	}
	log.Info("embedded kafka (kfake) started", "brokers", cl.ListenAddrs(), "dir", c.EmbeddedDir)
	return cl, nil
}

// produceRatings writes ratings into the ratings topic at the configured rate, as the original
// demo's web app did: value JSON like datagen's ratings, key rating_id, timestamp now. It
// continues counting after a restart (rating_id = records already in the topic + 1).
func produceRatings(ctx context.Context, brokers []string, c Config, log *slog.Logger) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("jetsuite-ratings-webapp"),
		kgo.DefaultProduceTopic(topology.SubjectRatings), kgo.AllowAutoTopicCreation(),
		kgo.WithLogger(kgoLogger{log.With("component", "ratings-webapp")}))
	if err != nil {
		return fmt.Errorf("bridge: ratings producer: %w", err)
	}
	defer cl.Close()
	n, err := topicEnd(ctx, cl, topology.SubjectRatings)
	if err != nil {
		return fmt.Errorf("bridge: ratings producer: %w", err)
	}
	log.Info("embedded ratings producer writing", "topic", topology.SubjectRatings, "per_second", c.RatingsPerSecond, "next", n)
	tick := time.NewTicker(time.Duration(float64(time.Second) / c.RatingsPerSecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		rating := demoRating(c.RatingsSeed, uint64(n))
		value, err := json.Marshal(rating.value)
		if err != nil {
			return err
		}
		rec := &kgo.Record{Key: []byte(strconv.FormatInt(rating.id, 10)), Value: value, Timestamp: time.Now()}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("embedded ratings producer", "err", err)
			continue
		}
		n++
	}
}

// topicEnd returns the sum of the topic's partition end offsets (how many records it has had).
func topicEnd(ctx context.Context, cl *kgo.Client, topic string) (int64, error) {
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	req := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	for _, t := range mresp.Topics {
		for _, p := range t.Partitions {
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Partition = p.Partition
			lp.Timestamp = -1 // latest
			lt.Partitions = append(lt.Partitions, lp)
		}
	}
	if len(lt.Partitions) == 0 {
		return 0, nil
	}
	req.Topics = append(req.Topics, lt)
	// Sharded to each partition's leader by kgo.
	shards := cl.RequestSharded(ctx, req)
	var total int64
	for _, sh := range shards {
		if sh.Err != nil {
			return 0, sh.Err
		}
		for _, t := range sh.Resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, p := range t.Partitions {
				total += p.Offset
			}
		}
	}
	return total, nil
}

// kgoLogger sends franz-go's log lines to slog (warnings and errors only: its info level is chatty).
type kgoLogger struct{ log *slog.Logger }

func (l kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	switch level {
	case kgo.LogLevelError:
		l.log.Error(msg, keyvals...)
	case kgo.LogLevelWarn:
		l.log.Warn(msg, keyvals...)
	default:
		l.log.Debug(msg, keyvals...)
	}
}

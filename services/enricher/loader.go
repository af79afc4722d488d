package enricher

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/kvx"
	"github.com/jetsuite/jetsuite/shared/pipe"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// loader materialises a source stream into a KV bucket (a ksqlDB TABLE): every row becomes a
// put of its JSON (upper-case columns) under its primary key, published asynchronously to the
// bucket's subject with a Nats-Msg-Id derived from the input, so a redelivery writes nothing new.
// A Kafka tombstone carried by the bridge (empty body, Jetsuite-Tombstone header, key in
// Jetsuite-Key) deletes the row, as it does in ksqlDB.
type loader struct {
	*stage
	bucket string
	// row decodes an input into its key and the KV value appended to dst.
	row func(dst, data []byte) (key string, value []byte, err error)
	max int

	// caught up (logged once): every message in the source stream when the loader started
	// has been applied. Joins wait for it by the loader's checkpoint (transform.WaitLoader).
	startSeq uint64
	once     sync.Once
}

func newLoader(st *stage, bucket string, max int, row func(dst, data []byte) (string, []byte, error)) *loader {
	l := &loader{stage: st, bucket: bucket, row: row, max: max}
	st.one = l.one
	st.started = func(_ context.Context, checkpoint uint64) { l.checkCaughtUp(checkpoint) }
	st.acked = func(_ context.Context, seq uint64) { l.checkCaughtUp(seq) }
	return l
}

func (l *loader) run(ctx context.Context) error {
	info, err := l.js.Stream(ctx, l.stream)
	if err != nil {
		return err
	}
	si, err := info.Info(ctx)
	if err != nil {
		return err
	}
	l.startSeq = si.State.LastSeq
	if si.State.Msgs == 0 {
		l.markCaughtUp()
	}
	return l.stage.run(ctx)
}

func (l *loader) markCaughtUp() {
	l.once.Do(func() {
		l.log.Info("source loaded into table", "table", l.bucket, "up_to_seq", l.startSeq)
	})
}

// checkCaughtUp marks the loader caught up once the inputs up to seq are durable and seq
// reaches what the source held at start (the loader is its consumer's only owner, so its
// own checkpoint says where it stands).
func (l *loader) checkCaughtUp(seq uint64) {
	if seq >= l.startSeq {
		l.markCaughtUp()
	}
}

func (l *loader) one(msg jetstream.Msg) error {
	data := msg.Data()
	src := sourceOf(msg)
	h := msg.Headers()
	if len(data) == 0 && h.Get(events.HeaderTombstone) != "" {
		key := h.Get(events.HeaderKey)
		if !kvx.ValidKey(key) {
			return l.deadLetter(msg, fmt.Errorf("%w: tombstone key %q is not a valid table key", events.ErrMissingField, key))
		}
		m := l.out(topology.KVSubject(l.bucket, key))
		setHeader(m.Header, events.HeaderMsgID, l.bucket+":"+src.id)
		setHeader(m.Header, events.HeaderEventTime, src.eventTime)
		setHeader(m.Header, pipe.HeaderKVOperation, pipe.KVOperationDelete)
		return l.publish(m)
	}
	if len(data) > l.max {
		return l.deadLetter(msg, tooLarge(len(data), l.max))
	}
	start := len(l.arena)
	key, arena, err := l.row(l.arena, data)
	if err != nil {
		return l.deadLetter(msg, err)
	}
	l.arena = arena
	m := l.out(topology.KVSubject(l.bucket, key))
	m.Data = l.arena[start:len(l.arena):len(l.arena)]
	setHeader(m.Header, events.HeaderMsgID, l.bucket+":"+src.id)
	setHeader(m.Header, events.HeaderEventTime, src.eventTime)
	return l.publish(m)
}

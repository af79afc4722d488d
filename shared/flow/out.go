package flow

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/pipe"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// Out collects what one batch causes. Everything added to it is published at once
// (asynchronously) and is durable before the batch's inputs are acked.
type Out struct {
	p    *processor
	sl   *slot
	hold bool
	// msgs are output messages reused once JetStream confirmed them (no allocation per
	// output in the steady state); nmsg of them are in use by the current batch.
	msgs []*nats.Msg
	nmsg int
	// the current input of Emit (its metadata parsed once) and the subjects it has emitted to,
	// for inputs with several outputs to one subject.
	lastIn  jetstream.Msg
	lastSeq uint64
	seen    []string
	arena   []byte
}

func (o *Out) reset() {
	o.hold = false
	o.nmsg = 0
	o.lastIn, o.lastSeq = nil, 0
	o.seen = o.seen[:0]
	o.arena = o.arena[:0]
}

// Arena returns the batch's scratch bytes (empty at the start of a batch). Handlers append
// output bodies to it and hand it back with SetArena: its bytes stay untouched until the
// batch's outputs are confirmed, so bodies may be slices of it (also after it grew).
func (o *Out) Arena() []byte { return o.arena }

// SetArena keeps b as the batch's scratch bytes (see Arena).
func (o *Out) SetArena(b []byte) { o.arena = b }

// recycle makes the batch's messages reusable (JetStream confirmed them all).
func (o *Out) recycle() { o.nmsg = 0 }

// Msg returns a message for an output on subject, with empty headers and no body. It is
// reused for a later batch once this one's outputs are confirmed: set its fields, publish it
// with Publish, and keep no reference.
func (o *Out) Msg(subject string) *nats.Msg {
	if o.nmsg == len(o.msgs) {
		o.msgs = append(o.msgs, &nats.Msg{Header: make(nats.Header, 4)})
	}
	m := o.msgs[o.nmsg]
	o.nmsg++
	m.Subject, m.Reply, m.Data = subject, "", nil
	for k, v := range m.Header {
		m.Header[k] = v[:0]
	}
	return m
}

// Emit publishes a derived-stream message caused by input in: its Nats-Msg-Id is
// "<subject>:<input stream>:<input seq>", its Event-Time the input's, its Jetsuite-Key key
// (none when empty). When subject belongs to an Ordered stream, the output is chained (it
// lands after the one before it, or not at all) and is skipped when the stream already holds
// it (see the package doc). body must stay untouched until the batch is confirmed.
func (o *Out) Emit(subject string, body []byte, key string, in jetstream.Msg) error {
	if in != o.lastIn {
		o.lastIn, o.lastSeq = in, Seq(in)
		if o.lastSeq == 0 {
			return fmt.Errorf("flow: input without a stream sequence (subject %s)", in.Subject())
		}
		o.seen = o.seen[:0]
	}
	pos := position{seq: o.lastSeq}
	for _, s := range o.seen {
		if s == subject {
			pos.n++
		}
	}
	o.seen = append(o.seen, subject)
	c := o.p.chains[subject]
	if c != nil && pos.atOrBefore(c.resumeAfter) {
		// The stream has it from before the restart: counted like a duplicate JetStream drops.
		obs.DedupHits.WithLabelValues(o.p.o.Service, c.stream).Inc()
		return nil
	}
	m := o.Msg(subject)
	m.Data = body
	setHeader(m.Header, events.HeaderMsgID, outputID(subject, o.p.o.Stream, pos))
	h := in.Headers()
	if _, ok := events.HeaderMillis(h); ok {
		setHeader(m.Header, events.HeaderEventTime, h.Get(events.HeaderEventTime))
	} else {
		setHeader(m.Header, events.HeaderEventTime, strconv.FormatInt(events.EventTimeMillis(in), 10))
	}
	if key != "" {
		setHeader(m.Header, events.HeaderKey, key)
	} else {
		delete(m.Header, events.HeaderKey)
	}
	return o.sl.pub.publish(m, c, pos)
}

// Publish publishes m as it is; give it a Nats-Msg-Id derived from its input. m is not
// chained; use Emit for derived streams.
func (o *Out) Publish(m *nats.Msg) error { return o.sl.pub.publish(m, nil, position{}) }

// Put writes value under key in a KV bucket (asynchronously, like every output), with a
// Nats-Msg-Id id (none when empty).
func (o *Out) Put(bucket, key string, value []byte, id string) error {
	m := o.Msg(topology.KVSubject(bucket, key))
	m.Data = value
	if id != "" {
		setHeader(m.Header, events.HeaderMsgID, id)
	} else {
		delete(m.Header, events.HeaderMsgID)
	}
	return o.Publish(m)
}

// Delete removes key from a KV bucket (a KV delete marker).
func (o *Out) Delete(bucket, key string, id string) error {
	m := o.Msg(topology.KVSubject(bucket, key))
	setHeader(m.Header, pipe.HeaderKVOperation, pipe.KVOperationDelete)
	if id != "" {
		setHeader(m.Header, events.HeaderMsgID, id)
	} else {
		delete(m.Header, events.HeaderMsgID)
	}
	return o.Publish(m)
}

// DeadLetter sends poison input in to the dead-letter stream with the reason its error
// carries (see pipe.ReasonFor), counts and logs it. It is an output like any other.
func (o *Out) DeadLetter(in jetstream.Msg, cause error) error {
	return o.Reject(in, pipe.RejectionFor(cause))
}

// Reject dead-letters in with an explicit rejection.
func (o *Out) Reject(in jetstream.Msg, r pipe.Rejection) error {
	return o.Publish(pipe.DeadLetterMsg(o.p.o.Service, in, r, o.p.o.Log))
}

// Hold says that this batch's inputs live in the handler's memory, not yet in its outputs:
// they are not checkpointed or acked now, but with the first later batch that does not hold
// (a stateful handler holds until it flushes its state).
func (o *Out) Hold() { o.hold = true }

// Sync waits until everything added so far is durable (a stateful handler's flush writes its
// rows, syncs, then writes the state that says they are written).
//
// With InFlight > 1, the outputs of earlier batches may still be awaiting their acks: Sync
// waits for those batches too, and fails with ErrUnconfirmed if any of them failed, so that
// what a handler writes after Sync never claims an output that is not stored.
func (o *Out) Sync(ctx context.Context) error {
	for _, sl := range o.p.slots {
		if sl == o.sl {
			continue
		}
		select {
		case <-sl.free:
			sl.free <- struct{}{}
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for earlier batches: %w", ErrUnconfirmed, ctx.Err())
		}
	}
	if o.p.ackFailed.Load() {
		return fmt.Errorf("%w: an earlier batch's outputs", ErrUnconfirmed)
	}
	return o.sl.pub.wait(ctx)
}

// Pending is the number of outputs added and not yet confirmed.
func (o *Out) Pending() int { return o.sl.pub.pendingCount() }

// setHeader sets a single-valued header, reusing the value slice.
func setHeader(h nats.Header, key, value string) {
	if v := h[key]; cap(v) > 0 {
		h[key] = append(v[:0], value)
		return
	}
	h[key] = []string{value}
}

package flow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/obs"
)

// HeaderExpectedLastMsgID is JetStream's optimistic-concurrency header: the server stores the
// message only if the stream's newest message carries this Nats-Msg-Id.
const HeaderExpectedLastMsgID = "Nats-Expected-Last-Msg-Id"

// HeaderExpectedLastSeq is JetStream's other optimistic-concurrency header: the server stores
// the message only if the stream's newest message has this sequence.
const HeaderExpectedLastSeq = "Nats-Expected-Last-Sequence"

// JetStream API error codes of a refused expected-last-msg-id and expected-last-sequence.
const (
	errCodeWrongLastMsgID    jetstream.ErrorCode = 10070
	errCodeWrongLastSequence jetstream.ErrorCode = 10071
)

// chain is one Ordered output stream: what the next output expects the stream's newest
// message to be, and the source position of the stream's newest message when the session
// started (outputs at or before it are already there).
//
// On a single-replica stream an output names its predecessor's Nats-Msg-Id
// (Nats-Expected-Last-Msg-Id). On a replicated stream it names its predecessor's sequence
// instead (bySeq), because nats-server (2.15.2 and 2.15.3) checks an expected msg id only when
// each replica applies the message, and a mismatch there is a write error that stops the
// stream on that replica ("stream write error: last msgid mismatch"): the first output
// refused after a publish lost in a leader change, the case the chain exists for, stops the
// stream on every replica; and a replica that caught up after a restart does not know the
// newest id, so it stops at the next chained output. An expected sequence is checked by the
// stream leader before it proposes the message, and a mismatch is a plain refusal, as on a
// single node. (TestClusterNodeLoss, services/jetsuite, found both.)
//
// By sequence, the chain predicts the sequences: the processor alone writes the stream, so its
// outputs take the sequences after the one the session started from, one each, in order. A
// lost output makes the ones after it refused until it is republished, which keeps the
// prediction; a copy of a stored output is refused or acked as a duplicate. What shifts the
// sequences is a message the processor did not write: rechain numbers the refused outputs
// anew after it, and the processor reads the streams' newest sequences again before its next
// batch (see processor.handle). Unlike an id, a sequence does not tell such a message from the
// predecessor, so an output published before the shift may be stored after it, out of order:
// on a replicated stream the order holds only while nothing but the processor writes it.
type chain struct {
	stream string
	bySeq  bool
	// last is the Nats-Msg-Id of the newest output published ("" before the session's first):
	// what the next output expects, unless bySeq.
	last string
	// next is the sequence the stream's newest message must have when the next output is
	// stored: the stream's last sequence when the session started (a session's first output
	// expects it, so that even the first cannot be stored twice), plus the outputs since.
	next uint64
	// resumeAfter: outputs caused by inputs of the processor's own stream up to this position
	// are in the stream already.
	resumeAfter position
}

// position orders the outputs of one input stream: the input's sequence, then the output's
// index among that input's outputs to the same subject.
type position struct {
	seq uint64
	n   int
}

func (a position) atOrBefore(b position) bool {
	return a.seq < b.seq || (a.seq == b.seq && a.n <= b.n)
}

// outputID is an output's Nats-Msg-Id: "<subject>:<input stream>:<input seq>", with ":<n>" for
// the second and later output of one input to one subject.
func outputID(subject, stream string, pos position) string {
	id := subject + ":" + stream + ":" + strconv.FormatUint(pos.seq, 10)
	if pos.n > 0 {
		id += ":" + strconv.Itoa(pos.n)
	}
	return id
}

// parseOutputID is outputID's inverse for outputs of input stream `stream`.
func parseOutputID(id, stream string) (position, bool) {
	i := strings.LastIndex(id, ":"+stream+":")
	if i < 0 {
		return position{}, false
	}
	rest := id[i+len(stream)+2:]
	seqText, nText, hasN := strings.Cut(rest, ":")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil {
		return position{}, false
	}
	pos := position{seq: seq}
	if hasN {
		if pos.n, err = strconv.Atoi(nText); err != nil {
			return position{}, false
		}
	}
	return pos, true
}

// pending is one published output awaiting its ack. A chained output published without an
// ack (noAck) is confirmed by the ack of a later output of its chain (see publisher).
type pending struct {
	msg   *nats.Msg
	fut   jetstream.PubAckFuture
	chain *chain
	pos   position
	err   error
	noAck bool
}

// publisher publishes a batch's outputs asynchronously and waits until JetStream has them all,
// republishing what failed (in order, so chained outputs stay in order). Not safe for
// concurrent use: each in-flight batch owns one.
//
// Chained outputs ask for one ack per chain and batch, not one per message. Each of them names
// its predecessor (see chain), so the server stores it only right after that predecessor: when
// the batch's last output of a chain is stored, every output before it in the chain is too.
// The publisher therefore holds back the newest output of each chain, sends
// the one it replaces as a plain NATS publish (no reply: no ack to build, route and parse),
// and sends the held ones with an ack when the batch ends (flushHeld). A lost or refused
// output makes every later one of its chain refused, the last one included, and the usual
// repair (rechain) finds what the stream holds and republishes the rest.
type publisher struct {
	js      jetstream.JetStream
	service string
	stream  string // the processor's input stream (ids of chained outputs name it)
	timeout time.Duration
	log     *slog.Logger
	items   []pending
	// held: the newest output of each chain, not sent yet (see the type's doc).
	held    []pending
	results []error // collect's scratch
	// rechained, when set, is set whenever a refused chain is repaired.
	rechained *atomic.Bool
}

// publish starts publishing m. With a chain, m is chained after the chain's newest output.
func (p *publisher) publish(m *nats.Msg, c *chain, pos position) error {
	if c != nil {
		if c.last != "" && !c.bySeq {
			setHeader(m.Header, HeaderExpectedLastMsgID, c.last)
			delete(m.Header, HeaderExpectedLastSeq)
		} else {
			delete(m.Header, HeaderExpectedLastMsgID)
			setHeader(m.Header, HeaderExpectedLastSeq, strconv.FormatUint(c.next, 10))
		}
		c.last = m.Header.Get(events.HeaderMsgID)
		c.next++
		for i := range p.held {
			if p.held[i].chain != c {
				continue
			}
			prev := p.held[i]
			if err := p.js.Conn().PublishMsg(prev.msg); err != nil {
				return fmt.Errorf("publish %s: %w", prev.msg.Subject, err)
			}
			prev.noAck = true
			p.items = append(p.items, prev)
			p.held[i] = pending{msg: m, chain: c, pos: pos}
			return nil
		}
		p.held = append(p.held, pending{msg: m, chain: c, pos: pos})
		return nil
	}
	f, err := p.send(m)
	if err != nil {
		return err
	}
	p.items = append(p.items, pending{msg: m, fut: f, chain: c, pos: pos})
	return nil
}

// send publishes asynchronously, waiting briefly when too many publishes are outstanding.
func (p *publisher) send(m *nats.Msg) (jetstream.PubAckFuture, error) {
	for attempt := 0; ; attempt++ {
		f, err := p.js.PublishMsgAsync(m)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) || attempt >= 100 {
			return nil, fmt.Errorf("publish %s: %w", m.Subject, err)
		}
		select {
		case <-p.js.PublishAsyncComplete():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// flushHeld sends the held outputs, each the last of its chain in the batch, with an ack.
// It runs in the handler's goroutine when a batch ends, before the next batch publishes.
func (p *publisher) flushHeld() error {
	for _, h := range p.held {
		f, err := p.send(h.msg)
		if err != nil {
			p.held = p.held[:0]
			return fmt.Errorf("%w: %w", ErrUnconfirmed, err)
		}
		h.fut = f
		p.items = append(p.items, h)
	}
	p.held = p.held[:0]
	return nil
}

// pendingCount is the number of outputs not yet confirmed.
func (p *publisher) pendingCount() int { return len(p.items) + len(p.held) }

// ErrUnconfirmed reports outputs that JetStream did not confirm (NATS away, a stream that
// refuses them): transient, Run resumes from the checkpoint. Out.Sync returns it too, so a
// handler that syncs passes it on unchanged.
var ErrUnconfirmed = errors.New("flow: outputs not confirmed")

// maxRounds bounds how often wait republishes before it gives up (the processor then resumes
// from its checkpoint and tries again, so nothing is lost; the log shows why).
const maxRounds = 8

// wait returns once every output is confirmed (stored, or a duplicate of a stored one).
func (p *publisher) wait(ctx context.Context) error {
	if err := p.flushHeld(); err != nil {
		p.items = nil
		return err
	}
	backoff := 50 * time.Millisecond
	for round := 0; ; round++ {
		failed, err := p.collect(ctx)
		if err != nil {
			p.items = nil
			return err
		}
		if len(failed) == 0 {
			return nil
		}
		if round+1 >= maxRounds {
			p.items = nil
			return fmt.Errorf("%w: %d after %d rounds: %w", ErrUnconfirmed, len(failed), maxRounds, failed[0].err)
		}
		select {
		case <-ctx.Done():
			p.items = nil
			return fmt.Errorf("%w: %d: %w", ErrUnconfirmed, len(failed), ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
		for i := range failed {
			// A copy: nats.go may still hold the first one (its own retry after a timeout).
			failed[i].msg = cloneMsg(failed[i].msg)
		}
		failed, err = p.rechain(ctx, failed)
		if err != nil {
			p.items = nil
			return err
		}
		for _, it := range failed {
			f, err := p.send(it.msg)
			if err != nil {
				p.items = nil
				return err
			}
			it.fut, it.err = f, nil
			p.items = append(p.items, it)
		}
	}
}

// collect waits for the current round and returns the outputs that failed, in publish order.
func (p *publisher) collect(ctx context.Context) ([]pending, error) {
	items := p.items
	p.items = nil
	var failed []pending
	timeout := time.NewTimer(p.timeout)
	defer timeout.Stop()
	// Once the round's time is up, what has not answered yet counts as failed without waiting;
	// an answer already there always counts first.
	var expired <-chan time.Time = timeout.C
	results := p.results[:0]
	for _, it := range items {
		var err error
		if it.noAck {
			results = append(results, nil) // decided below, by its chain's next ack
			continue
		}
		select {
		case ack := <-it.fut.Ok():
			p.count(ack)
		case err = <-it.fut.Err():
		default:
			select {
			case ack := <-it.fut.Ok():
				p.count(ack)
			case err = <-it.fut.Err():
			case <-expired:
				expired = closedTime
				err = errors.New("no publish ack in time")
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: waiting for publish acks: %w", ErrUnconfirmed, ctx.Err())
			}
		}
		results = append(results, err)
	}
	p.results = results[:0]
	// An output sent without an ack shares the outcome of the next acked output of its chain
	// (the chain makes the server store that one only after it).
	var next []chainOutcome
	for i := len(items) - 1; i >= 0; i-- {
		it := items[i]
		if it.chain == nil {
			continue
		}
		o := outcomeOf(&next, it.chain)
		switch {
		case !it.noAck:
			o.err, o.found = results[i], true
		case !o.found:
			results[i] = errors.New("no acked output after it in its chain")
		case o.err != nil:
			results[i] = o.err
		default:
			o.confirmed++
		}
	}
	for _, o := range next {
		if o.confirmed > 0 {
			obs.Published.WithLabelValues(p.service, o.chain.stream).Add(float64(o.confirmed))
		}
	}
	for i, it := range items {
		if results[i] != nil {
			it.err, it.noAck = results[i], false
			failed = append(failed, it)
		}
	}
	return failed, nil
}

// chainOutcome is, while collect walks a batch backwards, the outcome of the next acked
// output of one chain, and how many outputs sent without an ack it confirmed.
type chainOutcome struct {
	chain     *chain
	err       error
	found     bool
	confirmed int
}

func outcomeOf(next *[]chainOutcome, c *chain) *chainOutcome {
	for i := range *next {
		if (*next)[i].chain == c {
			return &(*next)[i]
		}
	}
	*next = append(*next, chainOutcome{chain: c})
	return &(*next)[len(*next)-1]
}

// closedTime is a channel that is always ready (a round whose time is up).
var closedTime = func() <-chan time.Time {
	c := make(chan time.Time)
	close(c)
	return c
}()

func (p *publisher) count(ack *jetstream.PubAck) {
	if ack.Duplicate {
		obs.DedupHits.WithLabelValues(p.service, ack.Stream).Inc()
	} else {
		obs.Published.WithLabelValues(p.service, ack.Stream).Inc()
	}
}

// rechain repairs chains whose first failed output was refused because the stream's newest
// message is not the one it expected. Outputs of the chain that the stream already holds
// (an earlier copy landed) are dropped; the first remaining one is chained after the stream's
// real newest message, and by sequence (bySeq) the ones after it too, in order. A refusal
// caused by an earlier failure of our own needs nothing: the earlier output is republished
// first and the chain holds again.
//
// The repaired output names the newest message by its stream sequence
// (Nats-Expected-Last-Sequence), not by its Nats-Msg-Id: a server that restarted recovers the
// newest message's id only if that message is younger than the stream's de-duplication window
// (it rebuilds its id memory from the window alone); otherwise it takes the newest id to be
// "" and would refuse every output chained by id, in every round and every session: the
// processor stalled for good. The sequence is always known. Once the repaired output is
// stored, the server knows its id again and the rest of the chain holds.
func (p *publisher) rechain(ctx context.Context, failed []pending) ([]pending, error) {
	firstOf := map[*chain]int{}
	for i, it := range failed {
		if it.chain == nil {
			continue
		}
		if _, seen := firstOf[it.chain]; !seen {
			firstOf[it.chain] = i
		}
	}
	drop := map[int]bool{}
	for c, i := range firstOf {
		if !isWrongLast(failed[i].err) {
			continue
		}
		last, lastSeq, err := lastMsgID(ctx, p.js, c.stream)
		if err != nil {
			return nil, err
		}
		lastPos, ours := parseOutputID(last, p.stream)
		next := lastSeq
		for j := i; j < len(failed); j++ {
			it := failed[j]
			if it.chain != c {
				continue
			}
			if ours && it.pos.atOrBefore(lastPos) {
				drop[j] = true // the stream has it already
				continue
			}
			if next == lastSeq || c.bySeq {
				it.msg.Header.Del(HeaderExpectedLastMsgID)
				it.msg.Header.Set(HeaderExpectedLastSeq, strconv.FormatUint(next, 10))
			}
			next++
		}
		if next > lastSeq && p.rechained != nil {
			p.rechained.Store(true)
		}
		if !ours && last != "" {
			p.log.Warn("ordered stream's newest message was not written by this processor; chaining after it",
				"stream", c.stream, "last_msg_id", last)
		}
	}
	if len(drop) == 0 {
		return failed, nil
	}
	kept := failed[:0]
	for i, it := range failed {
		if !drop[i] {
			kept = append(kept, it)
		}
	}
	return kept, nil
}

func isWrongLast(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == errCodeWrongLastMsgID || apiErr.ErrorCode == errCodeWrongLastSequence)
}

// lastMsgID returns the Nats-Msg-Id of a stream's newest message ("" when it is empty or has
// none) and its sequence (0: empty).
func lastMsgID(ctx context.Context, js jetstream.JetStream, stream string) (string, uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return "", 0, fmt.Errorf("ordered output stream %s: %w", stream, err)
	}
	seq := s.CachedInfo().State.LastSeq
	if seq == 0 {
		return "", 0, nil
	}
	m, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return "", seq, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("ordered output stream %s: newest message: %w", stream, err)
	}
	return m.Header.Get(events.HeaderMsgID), seq, nil
}

func cloneMsg(m *nats.Msg) *nats.Msg {
	c := &nats.Msg{Subject: m.Subject, Data: m.Data, Header: make(nats.Header, len(m.Header))}
	for k, v := range m.Header {
		c.Header[k] = append([]string(nil), v...)
	}
	return c
}

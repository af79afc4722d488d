package flow

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetsuite/jetsuite/shared/lease"
	"github.com/jetsuite/jetsuite/shared/natsx"
	"github.com/jetsuite/jetsuite/shared/pipe"
)

type processor struct {
	js jetstream.JetStream
	o  Options
	h  Handler

	processed prometheus.Counter
	latency   prometheus.Observer
	lag       prometheus.Gauge

	chains   map[string]*chain // by subject
	slots    []*slot
	next     int
	lastSeq  uint64        // newest input handed to the handler in this session
	lastMsg  jetstream.Msg // and its message (acking it acks everything before)
	heldFrom uint64        // first input held in handler state, not yet committed (0: none)
	cpFut    jetstream.PubAckFuture
	// rechained is set (by the acker) when a batch's chained outputs were refused and
	// repaired; the next batch waits until the batches in flight are complete (see handle).
	rechained atomic.Bool
	// ackFailed is set (by the acker) when a batch's outputs could not be confirmed: the
	// batches after it are not confirmed either (Out.Sync reports it).
	ackFailed atomic.Bool
}

// slot is one batch in flight: its outputs and inputs.
type slot struct {
	pub      *publisher
	out      Out
	last     jetstream.Msg // newest input this batch commits (nil: nothing to commit)
	lastSeq  uint64
	n        int // inputs of the batch
	started  time.Time
	free     chan struct{}
	finished bool // the handler returned ErrStop after this batch
}

// session resumes from the checkpoint and consumes until ctx ends or something fails.
func (p *processor) session(ctx context.Context) error {
	o := p.o
	var cp uint64
	var err error
	if o.Resume != nil {
		if cp, err = o.Resume(ctx); err != nil {
			return handlerFailed(fmt.Errorf("%s: resume: %w", o.Durable, err))
		}
	} else if cp, err = Checkpoint(ctx, p.js, o.CheckpointKey, o.Stream); err != nil {
		return err
	}
	if cp == 0 && o.Resume == nil {
		if cp, err = ackFloor(ctx, p.js, o.Stream, o.Durable); err != nil {
			return err
		}
	}
	if err := p.openChains(ctx); err != nil {
		return err
	}
	if s, ok := p.h.(Starter); ok {
		if err := s.Start(ctx, cp); err != nil {
			return handlerFailed(fmt.Errorf("%s: start: %w", o.Durable, err))
		}
	}
	cons, err := pipe.ResumeConsumer(ctx, p.js, o.Stream, o.Durable, cp, o.Filters...)
	if err != nil {
		return err
	}
	p.lastSeq, p.lastMsg, p.heldFrom = cp, nil, 0
	p.rechained.Store(false)
	p.ackFailed.Store(false)
	p.slots = p.slots[:0]
	for range o.InFlight {
		sl := &slot{pub: &publisher{js: p.js, service: o.Service, stream: o.Stream, timeout: o.PublishTimeout, log: o.Log, rechained: &p.rechained},
			free: make(chan struct{}, 1)}
		sl.out = Out{p: p, sl: sl}
		sl.free <- struct{}{}
		p.slots = append(p.slots, sl)
	}
	p.next = 0
	o.Log.Info("consuming", "stream", o.Stream, "from_seq", cp+1)

	acks := make(chan *slot, o.InFlight)
	ackErr := make(chan error, 1)
	ackerDone := make(chan struct{})
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopDrain := context.AfterFunc(ctx, func() {
		if abandoned(ctx) {
			cancelWork() // fenced: not one more publish, checkpoint or ack
			return
		}
		time.AfterFunc(o.Drain, cancelWork)
	})
	defer stopDrain()
	go func() {
		defer close(ackerDone)
		for sl := range acks {
			if !p.ackFailed.Load() {
				if err := p.complete(work, sl); err != nil {
					p.ackFailed.Store(true)
					ackErr <- err
				}
			}
			sl.free <- struct{}{}
		}
	}()
	var stopErr error
	handle := func(hctx context.Context, batch []jetstream.Msg) error {
		select {
		case err := <-ackErr:
			return err
		default:
		}
		return p.handle(hctx, batch, acks, &stopErr, p.h.Handle)
	}
	err = pipe.Batches(ctx, cons, pipe.BatchOptions{MaxMessages: o.Batch, Tick: o.Tick, Linger: o.Linger, Log: o.Log, Ordered: true, Drain: o.Drain}, handle)
	if f, ok := p.h.(Flusher); ok && err == nil && ctx.Err() != nil && !abandoned(ctx) {
		// A graceful stop: the handler makes what it holds durable, committed with it.
		err = p.handle(work, nil, acks, &stopErr, func(c context.Context, _ []jetstream.Msg, out *Out) error {
			return f.Flush(c, out)
		})
	}
	close(acks)
	<-ackerDone
	select {
	case aerr := <-ackErr:
		if err == nil || errors.Is(err, errSlotStop) {
			err = aerr
		}
	default:
	}
	p.finishCheckpoint(work)
	if errors.Is(err, errSlotStop) {
		err = stopErr
	}
	return err
}

// handlerFailed is how a failed Resume or Start ends the session: fatal, unless NATS could not
// answer for a moment (natsx.Transient: a request timed out, a cluster node went away), which
// the next session tries again after a backoff, like any transient trouble. A windower that
// restores its state from a 3-node cluster while a node stops must wait, not stop.
func handlerFailed(err error) error {
	if natsx.Transient(err) {
		return err
	}
	return fatal{err}
}

// abandoned reports a context cancelled because the processor's lease was lost (shared/lease):
// another instance may own the input by now, so the processor stops at once, with no drain
// and no final flush. The next owner resumes from the checkpoint.
func abandoned(ctx context.Context) bool { return errors.Is(context.Cause(ctx), lease.ErrLost) }

// errSlotStop ends Batches after the handler asked to stop (the real cause is in stopErr).
var errSlotStop = errors.New("flow: handler stopped")

// handle runs the handler on one batch and hands the batch's outputs to the acker.
func (p *processor) handle(ctx context.Context, batch []jetstream.Msg, acks chan<- *slot, stopErr *error,
	call func(context.Context, []jetstream.Msg, *Out) error) error {
	// A single owner reads in stream order; anything at or before what it already handed on is
	// a redelivery (an ack wait ran out) and was handled.
	in := batch[:0:0]
	for i, m := range batch {
		if Seq(m) > p.lastSeq {
			in = batch[i:]
			break
		}
	}
	if len(batch) > 0 && len(in) == 0 {
		return nil
	}
	// A chain was refused and repaired. The batches published while the refused one waited
	// for its repair were chained after outputs not stored yet and are refused in turn; if
	// this batch were published now, it would be too, and so on: with InFlight > 1 every
	// later batch was refused and republished once (twice the publishes, a backoff per
	// batch, for good). Waiting until the batches in flight are complete ends the cascade:
	// the chain's newest output is then stored.
	if p.rechained.Swap(false) {
		for _, sl := range p.slots {
			select {
			case <-sl.free:
				sl.free <- struct{}{}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		// The repair may have shifted the chains' sequences (see chain): the next outputs
		// chained by sequence follow the streams' newest messages as they are now.
		if err := p.resyncChains(ctx); err != nil {
			return err
		}
	}
	sl := p.slots[p.next]
	p.next = (p.next + 1) % len(p.slots)
	select {
	case <-sl.free:
	case <-ctx.Done():
		return ctx.Err()
	}
	sl.started = time.Now()
	sl.out.reset()
	sl.n = len(in)
	if len(in) > 0 {
		p.lastMsg, p.lastSeq = in[len(in)-1], Seq(in[len(in)-1])
		if p.heldFrom == 0 {
			p.heldFrom = Seq(in[0])
		}
	}
	err := call(ctx, in, &sl.out)
	// The batch's last output of each chain goes out now, before the next batch chains after it.
	if ferr := sl.pub.flushHeld(); ferr != nil && err == nil {
		err = ferr
	}
	var retry *RetryError
	switch {
	case err == nil:
	case errors.As(err, &retry):
		// Keep what the handler finished; the rest is delivered again from the checkpoint.
		// A batch that holds commits nothing, Done or not: its inputs (and the held ones
		// before it) live in the handler's memory only.
		if retry.Done > 0 && retry.Done <= len(in) && !sl.out.hold {
			sl.last, sl.lastSeq = in[retry.Done-1], Seq(in[retry.Done-1])
			sl.n = retry.Done
			p.heldFrom = 0
			acks <- sl
		} else if sl.pub.pendingCount() > 0 {
			sl.last, sl.lastSeq = nil, 0 // confirm the outputs, commit nothing
			acks <- sl
		} else {
			sl.free <- struct{}{}
		}
		*stopErr = err
		return errSlotStop
	case errors.Is(err, ErrStop):
		sl.finished = true
		*stopErr = ErrStop
	case errors.Is(err, ErrUnconfirmed):
		// A handler's Sync failed: transient, resume from the checkpoint.
		sl.free <- struct{}{}
		*stopErr = err
		return errSlotStop
	default:
		sl.free <- struct{}{}
		*stopErr = fatal{fmt.Errorf("%s: %w", p.o.Durable, err)}
		return errSlotStop
	}
	sl.last, sl.lastSeq = nil, 0
	if !sl.out.hold && p.heldFrom != 0 {
		sl.last, sl.lastSeq = p.lastMsg, p.lastSeq
		p.heldFrom = 0
	}
	if sl.last == nil && sl.pub.pendingCount() == 0 && len(in) == 0 {
		sl.free <- struct{}{} // an idle tick that produced nothing
	} else {
		acks <- sl
	}
	if sl.finished {
		return errSlotStop
	}
	return nil
}

// complete waits until a batch's outputs are durable, then records the checkpoint and acks
// the inputs the batch commits.
func (p *processor) complete(ctx context.Context, sl *slot) error {
	if err := sl.pub.wait(ctx); err != nil {
		return err
	}
	sl.out.recycle()
	if sl.n > 0 {
		p.processed.Add(float64(sl.n))
		p.latency.Observe(time.Since(sl.started).Seconds())
	}
	if sl.last == nil {
		return nil
	}
	p.writeCheckpoint(sl.lastSeq)
	// Cumulative: acks every input up to this one. A lost ack costs nothing: the next start
	// resumes from the checkpoint.
	_ = sl.last.Ack()
	if md, err := sl.last.Metadata(); err == nil {
		p.lag.Set(float64(md.NumPending))
	}
	if c, ok := p.h.(Committer); ok {
		c.Committed(ctx, sl.lastSeq)
	}
	return nil
}

// writeCheckpoint records seq without waiting: a checkpoint that does not land only makes the
// next start replay a little more, which the outputs' ids make harmless.
func (p *processor) writeCheckpoint(seq uint64) {
	f, err := p.js.PublishMsgAsync(checkpointMsg(p.o.CheckpointKey, checkpoint{Stream: p.o.Stream, Seq: seq}))
	if err != nil {
		p.o.Log.Warn("checkpoint not written", "seq", seq, "err", err)
		return
	}
	p.cpFut = f
}

// finishCheckpoint waits briefly for the newest checkpoint at the end of a session, so that a
// graceful stop leaves an exact one.
func (p *processor) finishCheckpoint(ctx context.Context) {
	if p.cpFut == nil {
		return
	}
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case <-p.cpFut.Ok():
	case err := <-p.cpFut.Err():
		p.o.Log.Warn("checkpoint not written", "err", err)
	case <-t.C:
	case <-ctx.Done():
	}
	p.cpFut = nil
}

// openChains reads, for every Ordered output stream, its newest message: the chain's head and
// the position up to which this processor's outputs are already there.
func (p *processor) openChains(ctx context.Context) error {
	p.chains = map[string]*chain{}
	for _, name := range p.o.Ordered {
		s, err := p.js.Stream(ctx, name)
		if err != nil {
			return fmt.Errorf("ordered output stream %s: %w", name, err)
		}
		last, lastSeq, err := lastMsgID(ctx, p.js, name)
		if err != nil {
			return err
		}
		c := &chain{stream: name, bySeq: s.CachedInfo().Config.Replicas > 1, last: last, next: lastSeq}
		if pos, ok := parseOutputID(last, p.o.Stream); ok {
			c.resumeAfter = pos
		}
		for _, subj := range s.CachedInfo().Config.Subjects {
			p.chains[subj] = c
		}
	}
	return nil
}

// resyncChains sets the next expected sequence of every chain by sequence to its stream's last
// sequence (all outputs published so far are confirmed when it is called).
func (p *processor) resyncChains(ctx context.Context) error {
	for _, c := range p.chains {
		if !c.bySeq {
			continue
		}
		s, err := p.js.Stream(ctx, c.stream)
		if err != nil {
			return fmt.Errorf("ordered output stream %s: %w", c.stream, err)
		}
		c.next = s.CachedInfo().State.LastSeq
	}
	return nil
}

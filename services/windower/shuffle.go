package windower

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/flow"
	"github.com/jetsuite/jetsuite/shared/sqlrt"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// The repartition step (Config.Repartition): ksqlDB's repartition topics, batched.
//
// Without it, every windower instance reads the whole source and each partition folds in only
// its groups' rows: exact, and nothing extra written, but every instance decodes everything.
// With it, a task's reading is split in two kinds of units of work:
//
//   - the router (unit "<task>.shuffle", one per source) reads the source once, in order. It
//     decodes each input, runs the fused statements (publishing their streams and the dead
//     letters, as partition 0 does without it), evaluates every table's WHERE and GROUP BY,
//     and keeps every table's stream time. It publishes one message per batch of inputs to the
//     source's shuffle stream (topology.ShuffleStream): for each input that some table
//     aggregates, the input (or the fused statement's output row) with the partitions whose
//     groups it reaches and every table's stream time right after it, and at the end every
//     table's stream time after the batch.
//   - each partition's owner reads the shuffle stream and decodes, aggregates and saves only the
//     rows of its own partitions. It takes the stream times from the router instead of
//     computing them from what it sees, so a partition decides lateness and closes windows
//     exactly as one instance reading everything would.
//
// One message per batch, not one per input and partition: what costs here is a stored and
// delivered message (10-25 µs), not its bytes, and the demo's seven tables group by five keys.
// A message covers a contiguous range of source inputs and its Nats-Msg-Id names the last of
// them, so the runtime's resume of an ordered output (shared/flow) keeps the ranges contiguous
// across a router crash: a replayed range may overlap the stored one, never leave a gap, and a
// partition skips rows of inputs it has applied (by source sequence, as without the step).

// shuffleMagic starts every shuffle message (its format's version).
const shuffleMagic = "JSH1"

// maxShuffleBytes bounds a shuffle message: a batch whose records would exceed it is split
// into several (each a contiguous range of inputs). NATS refuses payloads over 1 MiB by default.
const maxShuffleBytes = 256 << 10

// shuffleBatch is the largest pull of a partition owner: at most 4 MiB of shuffle messages.
const shuffleBatch = 16

// stVal is one table's stream time in a shuffle message.
type stVal struct {
	st  int64
	has bool
	// active (end of message only): an input reached the table in the message's range, so
	// its idle time starts over.
	active bool
}

// router is a task's state when it is a router (mode route): the message being built.
type router struct {
	buf     []byte // the records of the message being built
	nrec    int
	rec     []byte // the current input's record
	entries []shuffleEntry
	parts   []int // the current input's partitions (union over entries)
	active  []bool
	first   jetstream.Msg // the current message's first input (nil: none yet)
}

// shuffleEntry is one row an input gives its tables: the source row (obj 0) or a fused
// statement's output row (obj i+1 for k.steps[i]), and the partitions whose groups it reaches.
type shuffleEntry struct {
	obj   int
	body  []byte
	parts []int
}

// addPart adds p to a sorted set.
func addPart(set []int, p int) []int {
	for i, q := range set {
		if q == p {
			return set
		}
		if q > p {
			set = append(set, 0)
			copy(set[i+1:], set[i:])
			set[i] = p
			return set
		}
	}
	return append(set, p)
}

// routeTo records that table t (the router's one state of it) aggregates row r, the current
// input's object obj with body: it advances t's stream time and adds the group's partition to
// the input's record. It is applyParts' counterpart in a router, which folds nothing.
func (k *task) routeTo(t *tableState, r sqlrt.Row, obj int, body []byte, ts int64) {
	if !t.selects(r) {
		return
	}
	k.arrived(t, ts)
	t.keyBuf = appendGroupKey(t.keyBuf[:0], t.vals)
	p := partitionOf(t.keyBuf, t.parts)
	rt := k.rt
	rt.active[t.ord] = true
	var e *shuffleEntry
	for i := range rt.entries {
		// One entry per row: the source row once, a fused output once per emission.
		if x := &rt.entries[i]; x.obj == obj && (obj == 0 || sameBytes(x.body, body)) {
			e = x
			break
		}
	}
	if e == nil {
		rt.entries = append(rt.entries, shuffleEntry{obj: obj, body: body})
		e = &rt.entries[len(rt.entries)-1]
	}
	e.parts = addPart(e.parts, p)
	rt.parts = addPart(rt.parts, p)
}

// sameBytes reports whether a and b are the same slice (one fused output, not equal bytes).
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// endInput finishes the current input's record (if any of its rows reached a table) and, when
// the message has grown past maxShuffleBytes, publishes it with m as its last input.
func (k *task) endInput(m jetstream.Msg, seq uint64, ts int64) error {
	rt := k.rt
	if rt.first == nil {
		rt.first = m
	}
	if len(rt.entries) > 0 {
		rec := rt.rec[:0]
		rec = appendInts(rec, rt.parts)
		rec = binary.AppendUvarint(rec, seq)
		rec = binary.AppendVarint(rec, ts)
		rec = appendString(rec, m.Subject())
		h := m.Headers()
		rec = binary.AppendUvarint(rec, uint64(len(h)))
		for key, vals := range h {
			rec = appendString(rec, key)
			rec = binary.AppendUvarint(rec, uint64(len(vals)))
			for _, v := range vals {
				rec = appendString(rec, v)
			}
		}
		for _, t := range k.tables {
			rec = appendST(rec, stVal{st: t.st, has: t.hasST})
		}
		rec = binary.AppendUvarint(rec, uint64(len(rt.entries)))
		for _, e := range rt.entries {
			rec = binary.AppendUvarint(rec, uint64(e.obj))
			rec = appendInts(rec, e.parts)
			rec = appendBytes(rec, e.body)
		}
		rt.buf = appendBytes(rt.buf, rec)
		rt.rec = rec
		rt.nrec++
	}
	rt.entries, rt.parts = rt.entries[:0], rt.parts[:0]
	if len(rt.buf) >= maxShuffleBytes {
		return k.publishShuffle(m)
	}
	return nil
}

// publishShuffle publishes the message built so far, named after its last input.
func (k *task) publishShuffle(last jetstream.Msg) error {
	rt := k.rt
	if rt.first == nil {
		return nil
	}
	start := len(k.arena)
	b := append(k.arena, shuffleMagic...)
	b = binary.AppendUvarint(b, flow.Seq(last))
	b = binary.AppendUvarint(b, uint64(len(k.tables)))
	for i, t := range k.tables {
		b = appendString(b, t.spec.Name)
		b = appendST(b, stVal{st: t.st, has: t.hasST, active: rt.active[i]})
	}
	b = binary.AppendUvarint(b, uint64(rt.nrec))
	b = append(b, rt.buf...)
	k.arena = b
	body := b[start:len(b):len(b)]
	rt.buf, rt.nrec, rt.first = rt.buf[:0], 0, nil
	clear(rt.active)
	return k.out.Emit(topology.ShuffleSubject(k.source), body, "", last)
}

func appendST(b []byte, v stVal) []byte {
	var flags byte
	if v.has {
		flags |= 1
	}
	if v.active {
		flags |= 2
	}
	return append(binary.AppendVarint(b, v.st), flags)
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendBytes(b, s []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendInts(b []byte, xs []int) []byte {
	b = binary.AppendUvarint(b, uint64(len(xs)))
	for _, x := range xs {
		b = binary.AppendUvarint(b, uint64(x))
	}
	return b
}

// errShuffle: a shuffle message that does not parse.
var errShuffle = errors.New("malformed shuffle message")

// reader reads a shuffle message's fields; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShuffle
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errShuffle
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = errShuffle
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) st() stVal {
	v := stVal{st: r.varint()}
	if r.err != nil || len(r.b) == 0 {
		r.err = errShuffle
		return v
	}
	v.has, v.active = r.b[0]&1 != 0, r.b[0]&2 != 0
	r.b = r.b[1:]
	return v
}

// shuffleHeader is what a shuffle message says before its records: the last source input of
// its range, and every table's name and stream time after the range.
type shuffleHeader struct {
	rangeEnd uint64
	names    []string
	end      []stVal
}

// readHeader reads a shuffle message's header; r is left at its records.
func readHeader(data []byte) (shuffleHeader, *reader, error) {
	var h shuffleHeader
	if len(data) < len(shuffleMagic) || string(data[:len(shuffleMagic)]) != shuffleMagic {
		return h, nil, fmt.Errorf("%w: no %q header", errShuffle, shuffleMagic)
	}
	r := &reader{b: data[len(shuffleMagic):]}
	h.rangeEnd = r.uvarint()
	n := r.count()
	for range n {
		h.names = append(h.names, string(r.bytes()))
		h.end = append(h.end, r.st())
	}
	if r.err != nil {
		return h, nil, fmt.Errorf("%w: %v", errShuffle, r.err)
	}
	return h, r, nil
}

// count reads a count that must not exceed what the rest could hold (one byte each at least).
func (r *reader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = errShuffle
		return 0
	}
	return int(n)
}

// anyOwned reads a partition list and reports whether the task runs one of them.
func (k *task) anyOwned(r *reader) bool {
	owned := false
	for range r.count() {
		p := r.uvarint()
		if p < uint64(len(k.inSet)) && k.inSet[p] {
			owned = true
		}
	}
	return owned
}

// applyShuffle applies one shuffle message (a partition owner, mode work): the rows of its
// partitions, with the router's stream times, then the stream times after the message's range.
// A message that does not parse is dead-lettered.
func (k *task) applyShuffle(m jetstream.Msg) error {
	h, r, err := readHeader(m.Data())
	if err != nil {
		return k.out.DeadLetter(m, err)
	}
	rangeEnd, end := h.rangeEnd, h.end
	// The range's end is also in the router's Nats-Msg-Id (shared/flow's output id): a
	// message that is not the router's must not move the partitions' progress.
	id := topology.ShuffleSubject(k.source) + ":" + k.source + ":" + strconv.FormatUint(rangeEnd, 10)
	if got := m.Headers().Get(events.HeaderMsgID); got != id && !strings.HasPrefix(got, id+":") {
		return k.out.DeadLetter(m, fmt.Errorf("%w: message id %q is not the router's for a range ending at %d", errShuffle, got, rangeEnd))
	}
	if cap(k.vec) < len(end) {
		k.vec = make([]stVal, len(end))
	}
	k.vec = k.vec[:len(end)]
	for _, t := range k.tables {
		t.ord = slices.Index(h.names, t.spec.Name)
	}
	nrec := r.count()
	for range nrec {
		rec := &reader{b: r.bytes()}
		if r.err != nil {
			break
		}
		if !k.anyOwned(rec) {
			continue
		}
		if err := k.applyRecord(rec); err != nil {
			return err
		}
		if rec.err != nil {
			r.err = rec.err
		}
	}
	if r.err != nil {
		return k.out.DeadLetter(m, fmt.Errorf("%w: %v", errShuffle, r.err))
	}
	// Every input of the range that reaches the task's partitions is applied: the partitions'
	// progress is the range's end, as if they had read the source.
	if rangeEnd > k.lastSeq {
		k.lastSeq = rangeEnd
		k.pending++ // to be saved, even when none of the range's rows were the task's
	}
	for _, t := range k.tables {
		if t.ord < 0 {
			continue
		}
		v := end[t.ord]
		if v.has && (!t.hasST || v.st > t.st) {
			t.st, t.hasST = v.st, true
		}
		if v.active {
			t.lastArrival, t.lastAdvance = k.batchNow, time.Time{}
		}
	}
	return nil
}

// applyRecord applies one input of a shuffle message (its partition list read): the rows the
// task's partitions aggregate. An input applied before (a range the router published again
// after a restart) is skipped, as a redelivered input is without the step.
func (k *task) applyRecord(r *reader) error {
	seq := r.uvarint()
	ts := r.varint()
	in := &shuffledMsg{stream: k.source, seq: seq, ts: ts, subject: string(r.bytes()), header: nats.Header{}}
	for range r.count() {
		key := string(r.bytes())
		for range r.count() {
			in.header[key] = append(in.header[key], string(r.bytes()))
		}
	}
	for i := range k.vec {
		k.vec[i] = r.st()
	}
	if r.err != nil || seq <= k.lastSeq {
		return nil
	}
	k.lastSeq = seq
	k.pending++
	for range r.count() {
		obj := int(r.uvarint())
		owned := k.anyOwned(r)
		body := r.bytes()
		if r.err != nil {
			return nil
		}
		if !owned {
			continue
		}
		if obj == 0 {
			in.data = body
			if err := k.dec.Decode(body, k.row); err != nil {
				return k.out.DeadLetter(in, err)
			}
			k.row[k.rowTime] = sqlrt.BigIntValue(ts)
			for _, ps := range k.direct {
				if err := k.applyParts(ps, k.row, in, nil, ts, seq); err != nil {
					return err
				}
			}
			continue
		}
		if obj > len(k.steps) {
			r.err = errShuffle
			return nil
		}
		f := k.fused[k.steps[obj-1]]
		if len(f.tables) == 0 {
			continue
		}
		for i := range f.row {
			f.row[i] = sqlrt.Value{}
		}
		if err := f.dec.Decode(body, f.row); err != nil {
			return k.out.DeadLetter(in, err)
		}
		f.row[len(f.row)-1] = sqlrt.BigIntValue(ts)
		for _, ps := range f.tables {
			if err := k.applyParts(ps, f.row, in, body, ts, seq); err != nil {
				return err
			}
		}
	}
	return nil
}

// restoreRouter gives a router the stream times it had: those after the newest message of the
// shuffle stream (it resumes after that message's range), or, before its first message, the
// largest each table's partitions saved (a windower that ran without the step).
func (k *task) restoreRouter(ctx context.Context) error {
	name := topology.ShuffleStream(k.source)
	s, err := k.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("shuffle stream %s: %w (it is declared with the topology when the pipeline repartitions: every service needs --repartition)", name, err)
	}
	if err != nil {
		return fmt.Errorf("shuffle stream %s: %w", name, err)
	}
	if last := s.CachedInfo().State.LastSeq; last > 0 {
		m, err := s.GetMsg(ctx, last)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return fmt.Errorf("shuffle stream %s: newest message: %w", name, err)
		default:
			if h, _, err := readHeader(m.Data); err == nil {
				for _, t := range k.tables {
					if i := slices.Index(h.names, t.spec.Name); i >= 0 {
						t.st, t.hasST = h.end[i].st, h.end[i].has
					}
				}
				k.restoredST()
				return nil
			}
		}
	}
	cps, err := k.partitionProgress(ctx)
	if err != nil {
		return err
	}
	for _, cp := range cps {
		for _, t := range k.tables {
			if tp, ok := cp.Tables[t.spec.Name]; ok && tp.Has && (!t.hasST || tp.StreamTime > t.st) {
				t.st, t.hasST = tp.StreamTime, true
			}
		}
	}
	k.restoredST()
	return nil
}

// routerResume is a router's flow.Options.Resume: its checkpoint, or before its first one (the
// reading was not split until now) the oldest progress of the partitions, whose saved state
// holds every input before it: the router does not route the whole retained source again.
func (k *task) routerResume(ctx context.Context) (uint64, error) {
	if err := k.Start(ctx, 0); err != nil {
		return 0, err
	}
	cp, err := flow.Checkpoint(ctx, k.js, k.durable(), k.source)
	if err != nil || cp > 0 {
		return cp, err
	}
	cps, err := k.partitionProgress(ctx)
	if err != nil || len(cps) < max(k.parts, 1) {
		return 0, err // a partition without state: from the start
	}
	least := cps[0].Seq
	for _, cp := range cps {
		least = min(least, cp.Seq)
	}
	return least, nil
}

// partitionProgress reads the progress records of the task's partitions (those that have one).
func (k *task) partitionProgress(ctx context.Context) ([]progress, error) {
	var out []progress
	for p := range max(k.parts, 1) {
		e, err := k.state.Get(ctx, k.progressKeyOf(p))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("progress of %s: %w", k.unit(p), err)
		}
		cp, err := decodeProgress(e.Value())
		if err != nil {
			return nil, err
		}
		out = append(out, cp)
	}
	return out, nil
}

// restoredST starts the idle time of every table with a stream time from now.
func (k *task) restoredST() {
	for _, t := range k.tables {
		if t.hasST {
			t.lastArrival = k.now()
		}
	}
}

// shuffledMsg is a source input as a shuffle message carries it: what the aggregation reads
// of a jetstream.Msg (its stream, sequence, subject, headers, body and event time). It is
// never acked: the shuffle message is.
type shuffledMsg struct {
	stream, subject string
	seq             uint64
	ts              int64
	header          nats.Header
	data            []byte
}

func (m *shuffledMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Stream: m.stream, Sequence: jetstream.SequencePair{Stream: m.seq},
		Timestamp: time.UnixMilli(m.ts)}, nil
}
func (m *shuffledMsg) Data() []byte                     { return m.data }
func (m *shuffledMsg) Headers() nats.Header             { return m.header }
func (m *shuffledMsg) Subject() string                  { return m.subject }
func (m *shuffledMsg) Reply() string                    { return "" }
func (m *shuffledMsg) Ack() error                       { return errNotAckable }
func (m *shuffledMsg) DoubleAck(context.Context) error  { return errNotAckable }
func (m *shuffledMsg) Nak() error                       { return errNotAckable }
func (m *shuffledMsg) NakWithDelay(time.Duration) error { return errNotAckable }
func (m *shuffledMsg) InProgress() error                { return errNotAckable }
func (m *shuffledMsg) Term() error                      { return errNotAckable }
func (m *shuffledMsg) TermWithReason(string) error      { return errNotAckable }

var errNotAckable = errors.New("windower: a shuffled input is acked with its shuffle message")

package windower

import "github.com/jetsuite/jetsuite/shared/sqlrt"

// group is the state of one group key of one table: its open windows and the last input
// sequence applied to it. It is persisted as one KV entry, so that a session merge (several
// windows changing at once) is saved atomically, and a replay skips exactly the inputs the
// saved state already holds.
type group struct {
	Key  string        `json:"-"`
	Cols []Column      `json:"c"`
	vals []sqlrt.Value // Cols as values (the result row's GROUP BY columns)
	Wins []*win        `json:"w"`
	Seq  uint64        `json:"q"`
	// Closed and ClosedEnd remember the latest end among the group's sessions that have closed
	// (their final row is out, they left Wins): an event within gap of it would have to merge
	// into a closed session, so it is late (see applySession). Only the latest end is needed:
	// closed sessions all lie before the open ones and before any event that could still count.
	Closed    bool  `json:"x,omitempty"`
	ClosedEnd int64 `json:"xe,omitempty"`
	// dirty: the state entry must be rewritten at the next flush.
	dirty bool
}

// noteClosed records that a session of the group ending at end has closed.
func (g *group) noteClosed(end int64) {
	if !g.Closed || end > g.ClosedEnd {
		g.Closed, g.ClosedEnd = true, end
	}
}

// empty: nothing of the group is left to keep in memory.
func (g *group) empty() bool { return len(g.Wins) == 0 && !g.Closed }

func (g *group) find(start int64) *win {
	for _, w := range g.Wins {
		if w.Start == start {
			return w
		}
	}
	return nil
}

func (g *group) remove(w *win) {
	for i, x := range g.Wins {
		if x == w {
			g.Wins = append(g.Wins[:i], g.Wins[i+1:]...)
			return
		}
	}
}

// timeWindowStarts appends the starts of the epoch-aligned windows of size and advance that
// contain ts (one for tumbling windows, size/advance for hopping ones), oldest first.
func timeWindowStarts(dst []int64, ts, size, advance int64) []int64 {
	if advance <= 0 {
		advance = size
	}
	last := floorDiv(ts, advance) * advance // the latest window that starts at or before ts
	first := last - size + advance
	for s := first; s <= last; s += advance {
		if ts >= s && ts < s+size {
			dst = append(dst, s)
		}
	}
	return dst
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

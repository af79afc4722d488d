// Package reference computes windowed aggregations the plainest way possible, for tests: loops
// over an event log, written apart from the windower so that the two can be checked against
// each other. It follows the semantics jetsuite documents (those of ksqlDB / Kafka Streams):
// stream time is the largest event time a table has seen; an event is late for a time window
// when window end + grace <= stream time. Sessions follow Kafka Streams with closeTime = stream
// time - gap - grace: a session is closed once its end < closeTime, and closed sessions never
// change again; an event is late for a session table when the session it would form with the
// open sessions within gap of it ends before closeTime, or when it lies within gap of a closed
// session. Late events change nothing.
package reference

import "fmt"

// Event is one input that reached a table (after its WHERE clause): its event time, its group
// key (Null for a NULL key) and the value COLLECT_LIST collects.
type Event struct {
	TS    int64
	Key   string
	Null  bool
	Stars int32
}

// Spec is a window definition, in milliseconds.
type Spec struct {
	Kind                      string // "tumbling", "hopping", "session"
	Size, Advance, Gap, Grace int64
	HavingAbove               int64 // -1: no HAVING
}

// Row is one row of the resulting table.
type Row struct {
	Key        string
	Start, End int64
	Count      int64
	List       []int32
}

// ID identifies a row by key and window start.
func ID(key string, start int64) string { return fmt.Sprintf("%s@%d", key, start) }

// Result is a computed table and how many events were late for it.
type Result struct {
	Rows map[string]Row
	Late int
	Null int
}

// Compute runs the events, in order, through the window.
func Compute(s Spec, evs []Event) Result {
	res := Result{Rows: map[string]Row{}}
	var streamTime int64
	seen := false
	type sess struct {
		start, end, count int64
		list              []int32
	}
	sessions := map[string][]sess{}
	counts := map[string]Row{}
	for _, e := range evs {
		if e.Null {
			res.Null++
			continue
		}
		if !seen || e.TS > streamTime {
			streamTime, seen = e.TS, true
		}
		switch s.Kind {
		case "tumbling", "hopping":
			adv := s.Advance
			if s.Kind == "tumbling" {
				adv = s.Size
			}
			late := false
			// Every window [start, start+size) with start a multiple of adv that holds e.TS.
			for start := (e.TS / adv) * adv; start > e.TS-s.Size; start -= adv {
				if start+s.Size+s.Grace <= streamTime {
					late = true
					continue
				}
				r := counts[ID(e.Key, start)]
				r.Key, r.Start, r.End = e.Key, start, start+s.Size
				r.Count++
				r.List = append(r.List, e.Stars)
				counts[ID(e.Key, start)] = r
			}
			if late {
				res.Late++
			}
		case "session":
			closeTime := streamTime - s.Gap - s.Grace
			var keep []sess
			merged := sess{start: e.TS, end: e.TS, count: 1, list: []int32{e.Stars}}
			touchesClosed := false
			for _, x := range sessions[e.Key] {
				near := e.TS >= x.start-s.Gap && e.TS <= x.end+s.Gap
				switch {
				case x.end < closeTime:
					// Closed: its row is final; an event that would join it is late.
					touchesClosed = touchesClosed || near
					keep = append(keep, x)
				case near:
					merged.start = min(merged.start, x.start)
					merged.end = max(merged.end, x.end)
					merged.count += x.count
					merged.list = append(merged.list, x.list...)
				default:
					keep = append(keep, x)
				}
			}
			if merged.end < closeTime || touchesClosed {
				res.Late++
				continue
			}
			sessions[e.Key] = append(keep, merged)
		}
	}
	for id, r := range counts {
		if r.Count > s.HavingAbove {
			res.Rows[id] = r
		}
	}
	for key, list := range sessions {
		for _, x := range list {
			if x.count > s.HavingAbove {
				res.Rows[ID(key, x.start)] = Row{Key: key, Start: x.start, End: x.end, Count: x.count, List: x.list}
			}
		}
	}
	return res
}

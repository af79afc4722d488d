package console

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/jetsuite/jetsuite/services/indexer"
)

// A panel's data is computed here, in Go, from the rows the console follows, the way
// OpenSearch answers the panel's query (indexer.Panel.Query) over the indexed documents: the
// documents whose time field is in the range, split by the panel's buckets (terms: the top
// Size values by document count or by value, descending; date_histogram: epoch-aligned fixed
// intervals), and the metric of each bucket. The browser only draws.

// row is one document: a table's current row, or a stream's message.
type row struct {
	ts int64          // the panel's time field, epoch ms
	f  map[string]any // the fields panels read, as decoded from JSON
}

// PanelData is what the browser draws for one panel.
type PanelData struct {
	ID string `json:"id"`
	// Series: timeseries, bars and area panels; one per value of the terms bucket (or one).
	Series []Series `json:"series,omitempty"`
	// Rows: table panels (bucket values, then the metric) and search panels (the columns).
	Rows [][]any `json:"rows,omitempty"`
	// Stats: stat panels; one per value of the terms bucket (or one, the total).
	Stats []Stat `json:"stats,omitempty"`
	// Docs is how many documents were in the range.
	Docs int `json:"docs"`
	// Error says why there is no data (the pipeline has no such table or stream).
	Error string `json:"error,omitempty"`
}

// Series is one line (or stack) of a chart: [epoch ms, value] points, oldest first.
type Series struct {
	Name   string       `json:"name"`
	Points [][2]float64 `json:"points"`
}

// Stat is one big number.
type Stat struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// searchRows is how many documents a search panel shows (the original's saved searches show
// the newest 50 on a page).
const searchRows = 100

// aggregate computes a panel's data over the rows whose time is in [from, to].
func aggregate(p indexer.Panel, rows []*row, from, to int64) PanelData {
	var in []*row
	for _, r := range rows {
		if r.ts >= from && r.ts <= to {
			in = append(in, r)
		}
	}
	d := PanelData{Docs: len(in)}
	if p.Kind == "search" {
		slices.SortStableFunc(in, func(a, b *row) int { return cmp.Compare(b.ts, a.ts) })
		for _, r := range in[:min(len(in), searchRows)] {
			out := []any{r.ts}
			for _, c := range p.Columns {
				out = append(out, r.f[c])
			}
			d.Rows = append(d.Rows, out)
		}
		return d
	}
	leaves := split(p, p.Buckets, in, from, to, nil, -1)
	switch p.Kind {
	case "table":
		for _, l := range leaves {
			if l.value == nil {
				continue
			}
			out := make([]any, 0, len(l.keys)+1)
			for _, k := range l.keys {
				out = append(out, k)
			}
			d.Rows = append(d.Rows, append(out, *l.value))
		}
	case "stat":
		// Grafana reduces the series to their sum ("Ratings per Person": each person's count).
		var names []string
		sums := map[string]float64{}
		for _, l := range leaves {
			name := join(l.keys)
			if _, ok := sums[name]; !ok {
				names = append(names, name)
			}
			if l.value != nil {
				sums[name] += *l.value
			}
		}
		if len(names) == 0 && !hasTerms(p) {
			names, sums[""] = []string{""}, 0
		}
		for _, n := range names {
			d.Stats = append(d.Stats, Stat{Name: n, Value: sums[n]})
		}
	default: // timeseries, bars, area
		byName := map[string]int{}
		for _, l := range leaves {
			if l.value == nil || l.t < 0 {
				continue
			}
			name := join(l.keys)
			i, ok := byName[name]
			if !ok {
				i = len(d.Series)
				byName[name] = i
				d.Series = append(d.Series, Series{Name: name, Points: [][2]float64{}})
			}
			d.Series[i].Points = append(d.Series[i].Points, [2]float64{float64(l.t), *l.value})
		}
	}
	return d
}

func hasTerms(p indexer.Panel) bool {
	for _, b := range p.Buckets {
		if b.Type == "terms" {
			return true
		}
	}
	return false
}

func join(keys []string) string {
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += " / "
		}
		s += k
	}
	return s
}

// leaf is one innermost bucket: the terms values on its path, its histogram bucket's start
// (-1: none) and the metric (nil: no value, e.g. max of no numbers).
type leaf struct {
	keys  []string
	t     int64
	value *float64
}

// split applies the buckets from the outermost in, then the metric.
func split(p indexer.Panel, buckets []indexer.Bucket, rows []*row, from, to int64, keys []string, t int64) []leaf {
	if len(buckets) == 0 {
		return []leaf{{keys: keys, t: t, value: metric(p.Metric, rows)}}
	}
	b := buckets[0]
	var out []leaf
	switch b.Type {
	case "terms":
		type group struct {
			key  any
			text string
			rows []*row
		}
		index := map[string]int{}
		var groups []group
		for _, r := range rows {
			v, ok := r.f[b.Field]
			if !ok || v == nil {
				continue // OpenSearch's terms aggregation leaves documents without the field out
			}
			text := termText(v)
			i, ok := index[text]
			if !ok {
				i = len(groups)
				index[text] = i
				groups = append(groups, group{key: v, text: text})
			}
			groups[i].rows = append(groups[i].rows, r)
		}
		slices.SortStableFunc(groups, func(x, y group) int {
			if b.OrderBy == "_count" {
				if c := cmp.Compare(len(y.rows), len(x.rows)); c != 0 {
					return c
				}
				return compareTerms(x.key, y.key) // OpenSearch breaks ties by the term, ascending
			}
			return compareTerms(y.key, x.key)
		})
		if b.Size > 0 && len(groups) > b.Size {
			groups = groups[:b.Size]
		}
		for _, g := range groups {
			out = append(out, split(p, buckets[1:], g.rows, from, to, append(slices.Clip(keys), g.text), t)...)
		}
	case "date_histogram":
		step := histogramStep(b.Interval, to-from)
		byStart := map[int64][]*row{}
		var starts []int64
		for _, r := range rows {
			s := floorDiv(r.ts, step) * step
			if _, ok := byStart[s]; !ok {
				starts = append(starts, s)
			}
			byStart[s] = append(byStart[s], r)
		}
		slices.Sort(starts)
		for _, s := range starts {
			out = append(out, split(p, buckets[1:], byStart[s], from, to, keys, s)...)
		}
	}
	return out
}

// histogramStep is a date histogram's interval in ms: the panel's ("10s"), or about a
// hundredth of the range in whole seconds (Grafana's auto interval, as the indexer's query
// computes it).
func histogramStep(interval string, rangeMs int64) int64 {
	if d, err := time.ParseDuration(interval); err == nil && d > 0 {
		return d.Milliseconds()
	}
	return max(rangeMs/100/1000, 1) * 1000
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// metric computes count, max, avg or median (OpenSearch's percentiles at 50, exactly).
func metric(m indexer.Metric, rows []*row) *float64 {
	if m.Type == "count" || m.Type == "" {
		v := float64(len(rows))
		return &v
	}
	var vals []float64
	for _, r := range rows {
		if v, ok := number(r.f[m.Field]); ok {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return nil
	}
	var v float64
	switch m.Type {
	case "max":
		v = slices.Max(vals)
	case "avg":
		for _, x := range vals {
			v += x
		}
		v /= float64(len(vals))
	case "median":
		slices.Sort(vals)
		n := len(vals)
		if n%2 == 1 {
			v = vals[n/2]
		} else {
			v = (vals[n/2-1] + vals[n/2]) / 2
		}
	default:
		return nil
	}
	return &v
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, !math.IsNaN(x)
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

// termText is a term as shown: numbers without exponent or trailing zeros.
func termText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// compareTerms orders numbers numerically and everything else as text.
func compareTerms(a, b any) int {
	x, xok := a.(float64)
	y, yok := b.(float64)
	if xok && yok {
		return cmp.Compare(x, y)
	}
	return cmp.Compare(termText(a), termText(b))
}

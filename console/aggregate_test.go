package console

import (
	"reflect"
	"testing"

	"github.com/jetsuite/jetsuite/services/indexer"
)

// panel returns the panel of that title (the stat, where a search has the same title).
func panel(t *testing.T, title string) indexer.Panel {
	t.Helper()
	for _, p := range indexer.Panels() {
		if p.Title == title && (p.Kind != "search" || title == "Ratings detail") {
			return p
		}
	}
	t.Fatalf("no panel %q", title)
	return indexer.Panel{}
}

func r(ts int64, kv ...any) *row {
	f := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		f[kv[i].(string)] = kv[i+1]
	}
	return &row{ts: ts, f: f}
}

// TestAggregate computes panels as OpenSearch answers their queries (indexer.Panel.Query):
// documents in the range only, terms buckets ordered and cut to their size, epoch-aligned
// histogram buckets, and the metric per bucket.
func TestAggregate(t *testing.T) {
	const s = 1000
	t.Run("max per status per auto interval, statuses by term descending", func(t *testing.T) {
		p := panel(t, "400 error status alert HAVING count(*) > 5")
		rows := []*row{
			r(100*s, "STATUS", 404.0, "ERRORS", 6.0),
			r(103*s, "STATUS", 404.0, "ERRORS", 9.0), // same 9 s bucket as the one before: max 9
			r(120*s, "STATUS", 404.0, "ERRORS", 7.0),
			r(100*s, "STATUS", 407.0, "ERRORS", 8.0),
			r(10*s, "STATUS", 405.0, "ERRORS", 99.0), // before the range
			r(101*s, "ERRORS", 50.0),                 // no STATUS: no terms bucket
		}
		d := aggregate(p, rows, 99*s, 999*s) // 900 s: auto interval 9 s
		want := []Series{
			{Name: "407", Points: [][2]float64{{99 * s, 8}}},
			{Name: "404", Points: [][2]float64{{99 * s, 9}, {117 * s, 7}}},
		}
		if !reflect.DeepEqual(d.Series, want) || d.Docs != 5 {
			t.Errorf("got %+v (docs %d), want %+v", d.Series, d.Docs, want)
		}
	})
	t.Run("avg per 10 s", func(t *testing.T) {
		p := panel(t, "Page Views using LIKE filtering")
		d := aggregate(p, []*row{r(10*s, "PAGES", 1.0), r(19*s, "PAGES", 4.0), r(20*s, "PAGES", 2.0), r(25*s, "PAGES", "x")}, 0, 100*s)
		want := []Series{{Name: "", Points: [][2]float64{{10 * s, 2.5}, {20 * s, 2}}}}
		if !reflect.DeepEqual(d.Series, want) {
			t.Errorf("got %+v, want %+v", d.Series, want)
		}
	})
	t.Run("nested terms by count, top size each, ties by term", func(t *testing.T) {
		p := panel(t, "Stream-Table JOIN on Clickstream and Web_Users")
		var rows []*row
		for i := 0; i < 12; i++ { // twelve IPs with one document, one with three
			rows = append(rows, r(50*s, "IP", string(rune('a'+i)), "USERNAME", "u", "CITY", "c"))
		}
		rows = append(rows, r(50*s, "IP", "z", "USERNAME", "v", "CITY", "c"), r(51*s, "IP", "z", "USERNAME", "v", "CITY", "d"), r(52*s, "IP", "z", "USERNAME", "w", "CITY", "c"))
		d := aggregate(p, rows, 0, 100*s)
		want := [][]any{{"z", "v", "c", 1.0}, {"z", "v", "d", 1.0}, {"z", "w", "c", 1.0}}
		if !reflect.DeepEqual(d.Rows[:3], want) {
			t.Errorf("first rows %v, want %v", d.Rows[:3], want)
		}
		// z and then the nine smallest of the one-document IPs (a..i): 3 + 9 rows.
		if len(d.Rows) != 12 || d.Rows[3][0] != "a" || d.Rows[11][0] != "i" {
			t.Errorf("rows %v", d.Rows)
		}
	})
	t.Run("median per club status", func(t *testing.T) {
		p := panel(t, "Median Rating, by Club Status")
		d := aggregate(p, []*row{r(1*s, "CLUB_STATUS", "gold", "STARS", 1.0), r(2*s, "CLUB_STATUS", "gold", "STARS", 4.0),
			r(3*s, "CLUB_STATUS", "gold", "STARS", 2.0), r(4*s, "CLUB_STATUS", "silver", "STARS", 3.0), r(5*s, "CLUB_STATUS", "silver", "STARS", 5.0)}, 0, 900*s)
		want := []Series{{Name: "gold", Points: [][2]float64{{0, 2}}}, {Name: "silver", Points: [][2]float64{{0, 4}}}}
		if !reflect.DeepEqual(d.Series, want) {
			t.Errorf("got %+v, want %+v", d.Series, want)
		}
	})
	t.Run("stats: total, and per person", func(t *testing.T) {
		p := panel(t, "Ratings per Person")
		d := aggregate(p, []*row{r(1*s, "FULL_NAME", "A"), r(200*s, "FULL_NAME", "A"), r(3*s, "FULL_NAME", "B")}, 0, 900*s)
		if want := []Stat{{"A", 2}, {"B", 1}}; !reflect.DeepEqual(d.Stats, want) {
			t.Errorf("got %+v, want %+v", d.Stats, want)
		}
		p = panel(t, "Unhappy Platinum Customers")
		if d := aggregate(p, nil, 0, 900*s); !reflect.DeepEqual(d.Stats, []Stat{{"", 0}}) {
			t.Errorf("no documents: got %+v, want one stat of 0", d.Stats)
		}
	})
	t.Run("search: newest first, the columns", func(t *testing.T) {
		p := panel(t, "Ratings detail")
		d := aggregate(p, []*row{r(1*s, "FULL_NAME", "A", "STARS", 1.0), r(2*s, "FULL_NAME", "B")}, 0, 900*s)
		want := [][]any{{int64(2 * s), "B", nil, nil, nil, nil, nil}, {int64(1 * s), "A", nil, nil, 1.0, nil, nil}}
		if !reflect.DeepEqual(d.Rows, want) {
			t.Errorf("got %v, want %v", d.Rows, want)
		}
	})
}

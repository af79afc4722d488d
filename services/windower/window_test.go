package windower

import (
	"github.com/jetsuite/jetsuite/shared/sqlrt"

	"reflect"
	"testing"
)

func TestTimeWindowStarts(t *testing.T) {
	cases := []struct {
		ts, size, adv int64
		want          []int64
	}{
		{ts: 0, size: 60000, adv: 0, want: []int64{0}},
		{ts: 59999, size: 60000, adv: 0, want: []int64{0}},
		{ts: 60000, size: 60000, adv: 0, want: []int64{60000}},
		{ts: 61000, size: 60000, adv: 20000, want: []int64{20000, 40000, 60000}},
		{ts: 60000, size: 60000, adv: 20000, want: []int64{20000, 40000, 60000}},
		{ts: 59999, size: 60000, adv: 20000, want: []int64{0, 20000, 40000}},
		{ts: -1, size: 60000, adv: 0, want: []int64{-60000}},
	}
	for _, c := range cases {
		got := timeWindowStarts(nil, c.ts, c.size, c.adv)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("starts(%d, %d, %d) = %v, want %v", c.ts, c.size, c.adv, got, c.want)
		}
	}
	if n := len(timeWindowStarts(nil, 123456, 60000, 5000)); n != 12 {
		t.Errorf("hopping 60/5 gives %d windows per event, want 12", n)
	}
}

func TestEscapeKey(t *testing.T) {
	for in, want := range map[string]string{
		"akatz1022":     "akatz1022",
		"-1":            "-1",
		"San Francisco": "San=20Francisco",
		"1.2.3.4":       "1=2E2=2E3=2E4",
		"a/b=c":         "a=2Fb=3Dc",
		"":              "=",
	} {
		if got := escapeKey(in); got != want {
			t.Errorf("escapeKey(%q) = %q, want %q", in, got, want)
		}
	}
	if got := groupKey([]sqlrt.Value{sqlrt.IntValue(404), sqlrt.StringValue("Page not found")}); got != "404/Page=20not=20found" {
		t.Errorf("groupKey = %q", got)
	}
}

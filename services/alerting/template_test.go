package alerting

import (
	"strings"
	"testing"

	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/sqlrt"
)

func TestTemplate(t *testing.T) {
	cols := []sqlrt.Column{{Name: "NAME", Type: sqlrt.Type{Kind: sqlrt.String}}, {Name: "STARS", Type: sqlrt.Type{Kind: sqlrt.Integer}}, {Name: "NOTE", Type: sqlrt.Type{Kind: sqlrt.String}}}
	row := sqlrt.Row{sqlrt.StringValue("Ann <b> & co"), sqlrt.IntValue(2), {}}
	cases := map[string]string{
		"{NAME} gave {STARS} stars":    "Ann &lt;b&gt; &amp; co gave 2 stars",
		"{{literal}} {name}; [{NOTE}]": "{literal} Ann &lt;b&gt; &amp; co; []",
		"no columns":                   "no columns",
	}
	for src, want := range cases {
		tm, err := parseTemplate(src)
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if got := tm.render(cols, row); got != want {
			t.Errorf("%q renders %q, want %q", src, got, want)
		}
	}
	for _, bad := range []string{"{NAME", "NAME}", "a } b"} {
		if _, err := parseTemplate(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// A Slack sink of the user's own: its stream, its channel and its template; a template that
// names a column the stream lacks is refused at start with the columns it has.
func TestSinkFromPlan(t *testing.T) {
	src := `CREATE STREAM ORDERS (ID BIGINT, CUSTOMER VARCHAR, TOTAL DOUBLE) WITH (KAFKA_TOPIC='orders');
CREATE STREAM BIG_ORDERS AS SELECT ID, CUSTOMER, TOTAL FROM ORDERS WHERE TOTAL > 1000;
CREATE SINK CONNECTOR BIG WITH ('connector.class'='slack', 'topics'='BIG_ORDERS', 'channel'='sales', 'message'='{CUSTOMER} ordered {TOTAL}');`
	p, err := plan.Compile(plan.File{Name: "orders.sql", SQL: src})
	if err != nil {
		t.Fatal(err)
	}
	s := New(runner.Deps{Plan: p}, Config{Channel: "alerts"})
	srcs, err := s.sources()
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 1 || srcs[0].stream != "BIG_ORDERS" || srcs[0].channel != "sales" || srcs[0].durable != "alerting-slack" {
		t.Fatalf("sources %+v", srcs)
	}
	bad, err := plan.Compile(plan.File{Name: "orders.sql", SQL: strings.Replace(src, "{TOTAL}", "{AMOUNT}", 1)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(runner.Deps{Plan: bad}, Config{}).sources()
	if err == nil || !strings.Contains(err.Error(), "the message names {AMOUNT}, which is no column of BIG_ORDERS; columns are ID, CUSTOMER, TOTAL") {
		t.Fatalf("err = %v", err)
	}
}

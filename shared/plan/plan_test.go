package plan

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jetsuite/jetsuite/shared/ksql"
	"github.com/jetsuite/jetsuite/shared/sqlrt"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// The original statements.sql is embedded byte for byte.
func TestClickstreamDemoIsTheOriginal(t *testing.T) {
	orig, err := os.ReadFile("../ksql/testdata/clickstream.sql")
	if err != nil {
		t.Fatal(err)
	}
	if DemoFiles()[0].SQL != string(orig) {
		t.Fatal("demos/clickstream.sql differs from the original statements.sql")
	}
}

func TestDemoPlan(t *testing.T) {
	p := Demo()
	// every object the two demos name, with who writes it
	want := map[string]string{
		"CLICKSTREAM": "", "CLICKSTREAM_CODES": ServiceEnricher, "WEB_USERS": ServiceEnricher,
		"USER_CLICKSTREAM": ServiceEnricher, "ENRICHED_ERROR_CODES": ServiceEnricher,
		"EVENTS_PER_MIN": ServiceWindower, "PAGES_PER_MIN": ServiceWindower, "CLICK_USER_SESSIONS": ServiceWindower,
		"ERRORS_PER_MIN_ALERT": ServiceWindower, "ERRORS_PER_MIN": ServiceWindower,
		"ENRICHED_ERROR_CODES_COUNT": ServiceWindower, "USER_IP_ACTIVITY": ServiceWindower,
		"RATINGS": "", "RATINGS_LIVE": ServiceEnricher, "RATINGS_TEST": ServiceEnricher,
		"CUSTOMERS": ServiceCDC, "CUSTOMERS_STREAM": "", "RATINGS_WITH_CUSTOMER_DATA": ServiceEnricher,
		"UNHAPPY_PLATINUM_CUSTOMERS": ServiceEnricher, "RATINGS_PER_CUSTOMER_PER_15MINUTE": ServiceWindower,
		"PAGEVIEWS": "", "IMPLY_NEWS": "", "IMPLY_NEWS_CLICKS": ServiceEnricher, "IMPLY_NEWS_SESSIONS": ServiceEnricher,
	}
	if len(p.Objects) != len(want) {
		var names []string
		for _, o := range p.Objects {
			names = append(names, o.Name)
		}
		t.Errorf("objects %v, want %d", names, len(want))
	}
	for name, svc := range want {
		o := p.Object(name)
		if o == nil {
			t.Errorf("no object %s", name)
			continue
		}
		got := ""
		if o.Producer != nil {
			got = o.Producer.Service
		}
		if got != svc {
			t.Errorf("%s written by %q, want %q", name, got, svc)
		}
	}

	// keys, windows and columns as ksqlDB would derive them
	epm := p.Object("EVENTS_PER_MIN")
	if !slices.Equal(epm.Key, []string{"K1"}) || epm.Window.Kind != ksql.Tumbling || epm.Window.Size != time.Minute {
		t.Errorf("EVENTS_PER_MIN key %v window %+v", epm.Key, epm.Window)
	}
	if got := colNames(epm.Columns); !slices.Equal(got, []string{"K1", "USERID", "EVENT_TS", "EVENTS"}) {
		t.Errorf("EVENTS_PER_MIN columns %v", got)
	}
	if st := epm.Producer; len(st.Aggregates) != 1 || st.Aggregates[0].Name != "COUNT" || st.Having != nil {
		t.Errorf("EVENTS_PER_MIN aggregates %+v", st.Aggregates)
	}
	alert := p.Object("ERRORS_PER_MIN_ALERT").Producer
	if alert.Window.Advance != 20*time.Second || alert.Having == nil || len(alert.Aggregates) != 1 || alert.Where == nil {
		t.Errorf("ERRORS_PER_MIN_ALERT: %+v", alert.Window)
	}
	sess := p.Object("CLICK_USER_SESSIONS")
	if sess.Window.Kind != ksql.Session || sess.Window.Size != 30*time.Second || sess.Producer.Input.Name != "USER_CLICKSTREAM" {
		t.Errorf("CLICK_USER_SESSIONS %+v", sess.Window)
	}
	eec := p.Object("ENRICHED_ERROR_CODES_COUNT")
	if !slices.Equal(eec.Key, []string{"K1", "K2"}) {
		t.Errorf("ENRICHED_ERROR_CODES_COUNT key %v", eec.Key)
	}
	uc := p.Object("USER_CLICKSTREAM")
	if got := colNames(uc.Columns); !slices.Equal(got, []string{"USERID", "USERNAME", "IP", "CITY", "REQUEST", "STATUS", "BYTES"}) {
		t.Errorf("USER_CLICKSTREAM columns %v", got)
	}
	if j := uc.Producer.Join; j == nil || j.Table.Name != "WEB_USERS" || j.Type != ksql.LeftJoin || j.On.Text != "C.USERID" {
		t.Errorf("USER_CLICKSTREAM join %+v", j)
	}
	rwc := p.Object("RATINGS_WITH_CUSTOMER_DATA")
	if rwc.Subject != "RATINGS_WITH_CUSTOMER_DATA" || rwc.Stream != "RATINGS_WITH_CUSTOMER_DATA" {
		t.Errorf("RATINGS_WITH_CUSTOMER_DATA subject %q stream %q", rwc.Subject, rwc.Stream)
	}
	if got := colNames(rwc.Columns); !slices.Equal(got, []string{"RATING_ID", "MESSAGE", "STARS", "CHANNEL", "CUSTOMER_ID", "FULL_NAME", "CLUB_STATUS", "EMAIL"}) {
		t.Errorf("RATINGS_WITH_CUSTOMER_DATA columns %v", got)
	}
	if rwc.Columns[5].Type.Kind != sqlrt.String || rwc.Columns[0].Type.Kind != sqlrt.BigInt {
		t.Errorf("RATINGS_WITH_CUSTOMER_DATA types %v", rwc.Columns)
	}
	upc := p.Object("UNHAPPY_PLATINUM_CUSTOMERS")
	if !slices.Equal(upc.Key, []string{"FULL_NAME"}) || upc.Producer.Key == nil {
		t.Errorf("UNHAPPY_PLATINUM_CUSTOMERS key %v", upc.Key)
	}
	cust := p.Object("CUSTOMERS")
	if cust.Stream != DebeziumStream || cust.Bucket != "CUSTOMERS" || cust.Format != FormatDebeziumJSON {
		t.Errorf("CUSTOMERS %+v", cust)
	}
	codes := p.Object("CLICKSTREAM_CODES")
	if codes.Stream != "CLICKSTREAM_CODES_SRC" || codes.Subject != "clickstream_codes" {
		t.Errorf("CLICKSTREAM_CODES stream %s subject %s", codes.Stream, codes.Subject)
	}
	r := p.Object("RATINGS_PER_CUSTOMER_PER_15MINUTE").Producer
	if len(r.Aggregates) != 2 || r.Aggregates[1].Name != "COLLECT_LIST" || r.Window.Size != 15*time.Minute {
		t.Errorf("RATINGS_PER_CUSTOMER_PER_15MINUTE %+v", r.Aggregates)
	}

	// sinks
	var classes []string
	for _, s := range p.Sinks {
		classes = append(classes, s.Name+"="+s.Class)
	}
	if want := []string{"SINK_ES_RATINGS=opensearch", "SINK_ELASTIC_01=opensearch", "SLACK_UNHAPPY_PLATINUM=slack", "KAFKA_RATINGS=kafka", "SINK_ES_CLICKSTREAM=opensearch", "SINK_ES_RATINGS_TABLES=opensearch"}; !slices.Equal(classes, want) {
		t.Errorf("sinks %v, want %v", classes, want)
	}
	if len(p.External) != 1 || len(p.Queries) != 1 || len(p.Settings) != 1 {
		t.Errorf("external %d queries %d settings %d", len(p.External), len(p.Queries), len(p.Settings))
	}
}

func colNames(cols []sqlrt.Column) []string {
	var out []string
	for _, c := range cols {
		out = append(out, c.Name)
	}
	return out
}

// The catalog derived from the plan declares the streams and buckets jetsuite has always had
// (their names are the topology constants other packages use).
func TestCatalogNames(t *testing.T) {
	c := Demo().Catalog()
	streams := map[string][]string{}
	for _, s := range c.Streams {
		streams[s.Name] = s.Subjects
	}
	want := map[string][]string{
		topology.StreamClickstream:              {topology.SubjectClickstream},
		topology.StreamClickstreamCodes:         {topology.SubjectClickstreamCodes},
		topology.StreamClickstreamUsers:         {topology.SubjectClickstreamUsers},
		topology.StreamPageviews:                {topology.SubjectPageviews},
		topology.StreamImplyNews:                {topology.SubjectImplyNews},
		topology.StreamImplyNewsClicks:          {topology.SubjectImplyNewsClicks},
		topology.StreamImplyNewsSessions:        {topology.SubjectImplyNewsSession},
		topology.StreamUserClickstream:          {topology.StreamUserClickstream},
		topology.StreamEnrichedErrorCodes:       {topology.StreamEnrichedErrorCodes},
		topology.StreamRatings:                  {topology.SubjectRatings},
		topology.StreamDebezium:                 {"asgard", "asgard.>"},
		topology.StreamRatingsLive:              {topology.StreamRatingsLive},
		topology.StreamRatingsTest:              {topology.StreamRatingsTest},
		topology.StreamRatingsWithCustomerData:  {topology.StreamRatingsWithCustomerData},
		topology.StreamUnhappyPlatinumCustomers: {topology.StreamUnhappyPlatinumCustomers},
		topology.StreamDeadLetter:               {topology.DeadLetterPrefix + ">"},
		topology.StreamLateEvents:               {topology.LatePrefix + ">"},
		topology.StreamWindowsFinal:             {topology.FinalPrefix + ">"},
	}
	for name, subj := range want {
		if got, ok := streams[name]; !ok || !slices.Equal(got, subj) {
			t.Errorf("stream %s subjects %v, want %v", name, got, subj)
		}
	}
	if len(streams) != len(want) {
		t.Errorf("%d streams, want %d: %v", len(streams), len(want), streams)
	}
	var buckets []string
	for _, b := range c.Buckets {
		buckets = append(buckets, b.Name)
		if b.Windowed != (b.TTL == DefaultWindowRetention) {
			t.Errorf("bucket %s windowed %v TTL %v", b.Name, b.Windowed, b.TTL)
		}
	}
	for _, b := range []string{topology.TableWebUsers, topology.TableClickstreamCodes, topology.TableEventsPerMin, topology.TablePagesPerMin,
		topology.TableErrorsPerMin, topology.TableErrorsPerMinAlert, topology.TableClickUserSessions, topology.TableEnrichedErrorCodesCount,
		topology.TableUserIPActivity, topology.TableCustomers, topology.TableRatingsPerCustomerPer15Minute,
		topology.BucketWindowerState, topology.BucketCheckpoints} {
		if !slices.Contains(buckets, b) {
			t.Errorf("no bucket %s in %v", b, buckets)
		}
	}
}

func TestExplain(t *testing.T) {
	var b bytes.Buffer
	if err := Demo().Explain(&b, topology.Options{}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"windower  AGGREGATE EVENTS_PER_MIN  [clickstream.sql:74:1]",
		"      window TUMBLING 1m0s, the windower's default grace",
		"      join  LEFT JOIN table WEB_USERS ON C.USERID = USER_ID (in-memory view of bucket WEB_USERS)",
		"      having COUNT(*) > 5 AND COUNT(*) IS NOT NULL",
		"cdc       LOAD CUSTOMERS",
		"indexer   SINK_ELASTIC_01 (opensearch) <- RATINGS_WITH_CUSTOMER_DATA, UNHAPPY_PLATINUM_CUSTOMERS",
		"  'auto.offset.reset' = 'earliest'  [ratings.sql:",
		"Not run (transient queries; use jetsuite query)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
}

// Semantic errors name the file, line and column, the offending identifier and what is there.
func TestCompileErrors(t *testing.T) {
	const clicks = "CREATE STREAM clickstream (userid INT, ip VARCHAR, status INT, bytes BIGINT) WITH (kafka_topic='clickstream', value_format='json');\n"
	const users = "CREATE TABLE users (user_id INT PRIMARY KEY, username VARCHAR) WITH (kafka_topic='users');\n"
	cases := []struct {
		name      string
		src       string
		line, col int
		want      string // substring of Error()
	}{
		{"unknown column", clicks + "CREATE STREAM s AS SELECT username FROM clickstream;", 2, 27,
			"p.sql:2:27: unknown column USERNAME in CLICKSTREAM; columns are USERID, IP, STATUS, BYTES"},
		{"unknown column in WHERE", clicks + "CREATE STREAM s AS SELECT ip\n  FROM clickstream WHERE stat > 1;", 3, 26, "unknown column STAT in CLICKSTREAM"},
		{"unknown source", clicks + "CREATE STREAM s AS SELECT ip FROM clicks;", 2, 35, "unknown stream or table CLICKS; declared so far: CLICKSTREAM"},
		{"unknown qualifier", clicks + "CREATE STREAM s AS SELECT x.ip FROM clickstream c;", 2, 27, "unknown source X in X.IP"},
		{"ambiguous column", clicks + "CREATE TABLE t (userid INT PRIMARY KEY, ip VARCHAR) WITH (kafka_topic='t');\nCREATE STREAM s AS SELECT ip FROM clickstream c JOIN t ON c.userid = t.userid;", 3, 27, "column IP is ambiguous"},
		{"duplicate object", clicks + clicks, 2, 1, "stream CLICKSTREAM already exists (declared at p.sql:1:1)"},
		{"no topic", "CREATE STREAM s (a INT);", 1, 1, "stream S needs WITH (KAFKA_TOPIC='subject')"},
		{"no columns", "CREATE TABLE t (k INT PRIMARY KEY) WITH (kafka_topic='t', value_format='avro');", 1, 1, "VALUE_FORMAT 'AVRO' is not supported"},
		{"table without key", "CREATE TABLE t (a INT) WITH (kafka_topic='t');", 1, 1, "table T has no PRIMARY KEY column"},
		{"unknown property", "CREATE STREAM s (a INT) WITH (kafka_topic='t', colour='red');", 1, 1, "unknown property COLOUR in WITH of stream"},
		{"timestamp property", "CREATE STREAM s (a INT) WITH (kafka_topic='t', timestamp='a');", 1, 1, "WITH (TIMESTAMP=...) is not supported"},
		{"group by in stream", clicks + "CREATE STREAM s AS SELECT ip, COUNT(*) FROM clickstream GROUP BY ip;", 2, 1, "a GROUP BY query makes a table"},
		{"column not grouped", clicks + "CREATE TABLE t AS SELECT ip, status, COUNT(*) FROM clickstream GROUP BY ip;", 2, 30,
			"column STATUS is neither in GROUP BY (IP) nor inside an aggregate function"},
		{"aggregate without group by", clicks + "CREATE STREAM s AS SELECT COUNT(*) FROM clickstream;", 2, 27, "aggregate function COUNT needs GROUP BY"},
		{"window without group by", clicks + "CREATE TABLE t AS SELECT ip FROM clickstream WINDOW TUMBLING (SIZE 1 MINUTE);", 2, 1, "WINDOW without GROUP BY"},
		{"having without group by", clicks + "CREATE STREAM s AS SELECT ip FROM clickstream HAVING ip = 'x';", 2, 54, "HAVING without GROUP BY"},
		{"stream-stream join", clicks + "CREATE STREAM s AS SELECT * FROM clickstream a JOIN clickstream b WITHIN 1 MINUTE ON a.ip = b.ip;", 2, 53, "stream–stream joins (WITHIN) is not supported"},
		{"join a stream", clicks + "CREATE STREAM c2 (ip VARCHAR) WITH (kafka_topic='c2');\nCREATE STREAM s AS SELECT * FROM clickstream a JOIN c2 b ON a.ip = b.ip;", 3, 53, "stream–stream joins is not supported"},
		{"join on non-key", clicks + users + "CREATE STREAM s AS SELECT ip FROM clickstream c JOIN users u ON c.ip = u.username;", 3, 65, "joining USERS on anything but its key USER_ID is not supported"},
		{"full join", clicks + users + "CREATE STREAM s AS SELECT ip FROM clickstream c FULL JOIN users u ON c.userid = u.user_id;", 3, 59, "FULL OUTER JOIN is not supported"},
		{"two joins", clicks + users + "CREATE STREAM s AS SELECT ip FROM clickstream c JOIN users u ON c.userid = u.user_id JOIN users v ON c.userid = v.user_id;", 3, 91, "more than one JOIN in a statement is not supported"},
		{"unknown connector", clicks + "CREATE SINK CONNECTOR x WITH ('connector.class'='io.confluent.connect.jdbc.JdbcSinkConnector', 'topics'='clickstream');", 2, 1,
			"connector class 'io.confluent.connect.jdbc.JdbcSinkConnector' is not supported (hint: jetsuite's sinks are 'opensearch'"},
		{"sink unknown topic", clicks + "CREATE SINK CONNECTOR x WITH ('connector.class'='opensearch', 'topics'='nope');", 2, 1, "sink X: no stream or table reads or writes topic nope"},
		{"insert", clicks + "INSERT INTO clickstream SELECT * FROM clickstream;", 2, 1, "INSERT INTO in a pipeline file is not supported"},
		{"duplicate select column", clicks + "CREATE STREAM s AS SELECT ip, status AS ip FROM clickstream;", 2, 31, "column IP appears twice in the select list of S"},
		{"windowstart in stream", clicks + "CREATE STREAM s AS SELECT WINDOWSTART AS w FROM clickstream;", 2, 27, "WINDOWSTART is only known in the select list and HAVING of a windowed aggregation"},
		{"bad hopping", clicks + "CREATE TABLE t AS SELECT ip, COUNT(*) AS n FROM clickstream WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 20 SECONDS) GROUP BY ip;", 2, 1, "ADVANCE BY must be positive and at most the window size"},
		{"emit final without window", clicks + "CREATE TABLE t AS SELECT ip, COUNT(*) AS n FROM clickstream GROUP BY ip EMIT FINAL;", 2, 1, "EMIT FINAL needs a WINDOW"},
		{"where not boolean", clicks + "CREATE STREAM s AS SELECT ip FROM clickstream WHERE status;", 2, 53, "WHERE must be a BOOLEAN condition"},
		{"syntax error passes through", "CREATE STREAM s (a INT;", 1, 23, "p.sql:1:23: expected ')' after column list, found ';'"},
		{"subject taken", clicks + "CREATE STREAM s WITH (kafka_topic='clickstream') AS SELECT ip FROM clickstream;", 2, 1, "subject clickstream is already CLICKSTREAM's"},
	}
	for _, c := range cases {
		_, err := Compile(File{Name: "p.sql", SQL: c.src})
		if err == nil {
			t.Errorf("%s: compiled", c.name)
			continue
		}
		var se *ksql.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%s: %T %v is not a *ksql.SyntaxError", c.name, err, err)
			continue
		}
		if se.File != "p.sql" || se.Line != c.line || se.Col != c.col {
			t.Errorf("%s: at %s:%d:%d, want p.sql:%d:%d (%v)", c.name, se.File, se.Line, se.Col, c.line, c.col, err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %s", c.name, err, c.want)
		}
	}
}

// The historical events_per_min_max_avg of the clickstream demo (min/max/avg of a windowed
// table's counts) compiles: an aggregation over a table, whose MIN and MAX undo (ksqlDB's
// cannot, and refuses them over tables).
func TestHistoricalTableAggregation(t *testing.T) {
	files := append(DemoFiles(), File{Name: "history.sql", SQL: `
CREATE TABLE events_per_min_max_avg AS
  SELECT userid, MIN(events) AS min, MAX(events) AS max, AVG(events) AS avg
  FROM events_per_min WINDOW TUMBLING (SIZE 10 SECOND) GROUP BY userid;`})
	p, err := Compile(files...)
	if err != nil {
		t.Fatal(err)
	}
	st := p.Object("EVENTS_PER_MIN_MAX_AVG").Producer
	if !st.TableInput || st.Input.Name != "EVENTS_PER_MIN" || len(st.Aggregates) != 3 {
		t.Fatalf("step %+v", st)
	}
	for _, a := range st.Aggregates {
		if !a.CanUndo {
			t.Errorf("%s over a table cannot undo", a.Text)
		}
	}
	// COUNT_DISTINCT cannot undo: refused over a table, with the way out.
	_, err = Compile(append(DemoFiles(), File{Name: "h.sql", SQL: "CREATE TABLE t AS SELECT userid, COUNT_DISTINCT(events) AS d FROM events_per_min WINDOW TUMBLING (SIZE 10 SECOND) GROUP BY userid;"})...)
	if err == nil || !strings.Contains(err.Error(), "COUNT_DISTINCT over table EVENTS_PER_MIN is not supported") {
		t.Errorf("COUNT_DISTINCT over a table: %v", err)
	}
}

// A pipeline of the user's own compiles with every clause the README shows.
func TestUserPipeline(t *testing.T) {
	src := `
CREATE STREAM clickstream (userid INT, ip VARCHAR, status INT, bytes BIGINT) WITH (kafka_topic='clickstream', value_format='json');
CREATE TABLE web_users (user_id INT PRIMARY KEY, username VARCHAR, city VARCHAR) WITH (kafka_topic='clickstream_users');
CREATE TABLE BYTES_PER_IP AS
  SELECT ip, SUM(bytes) AS total, MAX(bytes) AS biggest, COUNT(*) AS n, WINDOWSTART AS ws
  FROM clickstream WINDOW HOPPING (SIZE 30 SECONDS, ADVANCE BY 10 SECONDS, GRACE PERIOD 5 SECONDS)
  GROUP BY ip HAVING SUM(bytes) > 1000;
CREATE STREAM KNOWN_CLICKS AS
  SELECT c.userid AS userid, u.username, c.bytes FROM clickstream c INNER JOIN web_users u ON c.userid = u.user_id
  WHERE c.status < 400;
CREATE TABLE USER_SESSIONS AS
  SELECT username, COUNT(*) AS clicks, SUM(bytes) AS bytes, WINDOWEND AS last
  FROM KNOWN_CLICKS WINDOW SESSION (60 SECONDS) GROUP BY username;
CREATE TABLE TOTAL_PER_USER AS SELECT username, COUNT(*) AS clicks FROM KNOWN_CLICKS GROUP BY username;
`
	p, err := Compile(File{Name: "mine.sql", SQL: src})
	if err != nil {
		t.Fatal(err)
	}
	b := p.Object("BYTES_PER_IP").Producer
	if len(b.Aggregates) != 3 || b.Window.Grace != 5*time.Second || !b.Window.HasGrace || b.Window.Advance != 10*time.Second {
		t.Errorf("BYTES_PER_IP %+v %+v", b.Aggregates, b.Window)
	}
	if got := colNames(b.Result); !slices.Equal(got, []string{"$G0", "$A0", "$A1", "$A2", "WINDOWSTART", "WINDOWEND"}) {
		t.Errorf("result layout %v", got)
	}
	k := p.Object("KNOWN_CLICKS").Producer
	if k.Join.Type != ksql.InnerJoin || !slices.Equal(p.Object("KNOWN_CLICKS").Key, []string{"USERID"}) {
		t.Errorf("KNOWN_CLICKS join %+v key %v", k.Join, p.Object("KNOWN_CLICKS").Key)
	}
	if s := p.Object("USER_SESSIONS"); s.Window.Kind != ksql.Session || s.Producer.Input.Name != "KNOWN_CLICKS" {
		t.Errorf("USER_SESSIONS %+v", s.Window)
	}
	if tp := p.Object("TOTAL_PER_USER"); tp.Windowed() || tp.Bucket != "TOTAL_PER_USER" {
		t.Errorf("TOTAL_PER_USER %+v", tp)
	}
	// fingerprints follow the definition and everything upstream
	changed := strings.Replace(src, "WHERE c.status < 400", "WHERE c.status < 500", 1)
	p2, err := Compile(File{Name: "mine.sql", SQL: changed})
	if err != nil {
		t.Fatal(err)
	}
	for name, same := range map[string]bool{"CLICKSTREAM": true, "BYTES_PER_IP": true, "KNOWN_CLICKS": false, "USER_SESSIONS": false, "TOTAL_PER_USER": false} {
		if (p.Object(name).Fingerprint == p2.Object(name).Fingerprint) != same {
			t.Errorf("%s: fingerprint unchanged = %v, want %v", name, !same, same)
		}
	}
}

// TestRepartitionCatalog: the shuffle streams of the windower's repartition step are declared
// only when the plan repartitions, one per source of partitioned aggregations (in the plan's
// arrangement), a day at most and with their source's byte limit; explain names them.
func TestRepartitionCatalog(t *testing.T) {
	shuffles := func(p *Plan) map[string]topology.Stream {
		out := map[string]topology.Stream{}
		for _, s := range p.Catalog().Streams {
			if strings.HasPrefix(s.Name, "SHUFFLE_") {
				out[s.Name] = s
			}
		}
		return out
	}
	p := Demo()
	p.Fuse()
	p.DefaultPartitions = 4
	if got := shuffles(p); len(got) != 0 {
		t.Errorf("shuffle streams without repartition: %v", got)
	}
	p.Repartition = true
	got := shuffles(p)
	for _, src := range []string{topology.StreamClickstream, topology.StreamRatings} {
		s, ok := got[topology.ShuffleStream(src)]
		if !ok {
			t.Errorf("no shuffle stream for %s: %v", src, got)
			continue
		}
		if !slices.Equal(s.Subjects, []string{"shuffle." + src}) || !s.Derived || s.MaxAge != 24*time.Hour {
			t.Errorf("shuffle stream of %s: %+v", src, s)
		}
	}
	if len(got) != 2 {
		t.Errorf("%d shuffle streams, want CLICKSTREAM's and RATINGS': %v", len(got), got)
	}
	var b strings.Builder
	if err := p.Explain(&b, topology.Options{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "routed by the repartition step through stream SHUFFLE_CLICKSTREAM") {
		t.Errorf("explain does not name the shuffle stream:\n%s", b.String())
	}

	unfused := Demo()
	unfused.DefaultPartitions, unfused.Repartition = 4, true
	if got := shuffles(unfused); len(got) != 4 || got[topology.ShuffleStream(topology.StreamUserClickstream)].Name == "" {
		t.Errorf("unfused: shuffle streams %v, want those of CLICKSTREAM, USER_CLICKSTREAM, ENRICHED_ERROR_CODES and RATINGS_WITH_CUSTOMER_DATA", got)
	}
	unfused.DefaultPartitions = 1
	if got := shuffles(unfused); len(got) != 0 {
		t.Errorf("one partition: shuffle streams %v", got)
	}
}

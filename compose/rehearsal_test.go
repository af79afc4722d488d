package compose

// TestRehearsal: `task up` without Docker. The compose file's stack, read from
// docker-compose.yml, runs natively on loopback: the three NATS nodes with their own
// configuration files, every jetsuite service as its own process with the container's command
// and environment, MariaDB initialised from the init scripts, Debezium Server with its
// application.properties and NATS JetStream sink, Kafka and OpenSearch of the test environment.
// Host names become loopback addresses by a rewrite table the log prints; start order and
// readiness follow depends_on and the healthchecks. Then it checks the stack end to end, stops
// one NATS node, checks the flow goes on, and starts the node again. Run it with
// `go tool task test:compose`; `go tool task test` runs it too.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/slack-go/slack/slacktest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/jetsuite/jetsuite/services/indexer"
	"github.com/jetsuite/jetsuite/shared/natsx"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/testenv"
	"github.com/jetsuite/jetsuite/shared/topology"
)

func TestRehearsal(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the rehearsal runs the whole compose stack (go tool task test:compose)")
	}
	brokers := testenv.Require(t, testenv.KafkaBrokers)
	osURL := strings.TrimRight(testenv.Require(t, testenv.OpenSearchURL), "/")
	dist := testenv.Require(t, testenv.DebeziumServer)
	javaHome := testenv.Require(t, testenv.DebeziumServerJavaHome)
	for _, tool := range []string{"mariadbd", "mariadb-install-db", "mariadb", "mariadb-admin"} {
		if _, err := exec.LookPath(tool); err != nil {
			if testenv.InCI() {
				t.Fatalf("%s is not installed (testenv/run.sh installs mariadb-server): %v", tool, err)
			}
			t.Skipf("%s is not installed: run through `go tool task test:compose` (testenv/run.sh installs mariadb-server)", tool)
		}
	}
	started := time.Now()
	s := loadStack(t)
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	if keep := os.Getenv("JETSUITE_REHEARSAL_DIR"); keep != "" {
		// Keep the processes' folders and logs after the test (JETSUITE_REHEARSAL_DIR=folder).
		if err := os.MkdirAll(keep, 0o755); err != nil {
			t.Fatal(err)
		}
		d, err := os.MkdirTemp(keep, "rehearsal-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
	}
	r := &rehearsal{t: t, t0: time.Now(), dir: dir, ctx: ctx, comps: map[string]*component{}, rw: newRewriter()}
	if logs := os.Getenv(testenv.Logs); logs != "" {
		// A copy of the log for after the run: `go tool task test` prints it (go test shows a
		// passing test's log only with -v).
		f, err := os.Create(filepath.Join(logs, "rehearsal.log"))
		if err != nil {
			t.Fatal(err)
		}
		r.logFile = f
		t.Cleanup(func() {
			r.logMu.Lock()
			defer r.logMu.Unlock()
			_ = f.Close()
			r.logFile = nil
		})
	}
	t.Cleanup(func() {
		for _, c := range r.comps {
			if c.proc != nil {
				c.proc.stop(2 * time.Second)
			}
		}
		cancel()
		r.wg.Wait()
		if t.Failed() && os.Getenv("JETSUITE_REHEARSAL_DIR") == "" {
			t.Logf("the processes' logs go with the test's temporary folder; JETSUITE_REHEARSAL_DIR=folder keeps them")
		}
	})

	// What compose/.env or the shell would give the stack: the alerting service posts to Slack
	// (a local server speaking Slack's Web API stands in for it).
	slack := newSlackStandIn(t)
	vars := map[string]string{"JETSUITE_ALERTING_SLACK_BOT_TOKEN": "xoxb-rehearsal-" + strconv.FormatInt(time.Now().UnixNano(), 36)}

	imageEnv, workdir, err := dockerfileEnv("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}

	// Leftovers of an earlier rehearsal against the same test environment would make the checks
	// below pass on old data: the stack's Kafka topics and (unprefixed) indices go first.
	streams, tables := indexer.Sources(plan.Demo())
	resetKafkaAndOpenSearch(t, r, brokers, osURL, append(append([]string(nil), streams...), tables...))

	r.logf("compose up: %s, %d services", absRepo(composeFile), len(s.Services))
	cl := natstest.StartCluster(t)

	names := make([]string, 0, len(s.Services))
	for n := range s.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	skipped := map[string]string{}
	for _, name := range names {
		svc := s.Services[name]
		var c *component
		var err error
		image := svc.Image
		switch {
		case len(svc.Profiles) > 0:
			skipped[name] = fmt.Sprintf("profile %v: `compose up` starts it only with --profile", svc.Profiles)
			continue
		case svc.Build != nil:
			var extra []string
			if strings.Contains(strings.Join(svc.Command, " "), "alerting") {
				extra = append(extra, "JETSUITE_ALERTING_SLACK_API_URL="+slack.srv.GetAPIURL())
			}
			c, err = r.jetsuiteComponent(name, svc, imageEnv, workdir, vars, extra)
		case strings.HasPrefix(image, "nats:"):
			if got, want := majorMinor(server.VERSION), majorMinor(strings.TrimPrefix(image, "nats:")); got != want {
				t.Errorf("%s: image %s, but the rehearsal runs nats-server %s (go.mod): align them", name, image, server.VERSION)
			}
			i := slices.Index([]string{"nats-1", "nats-2", "nats-3"}, name)
			if i < 0 {
				t.Fatalf("NATS service %s is not one of natstest.Cluster's nodes nats-1..3", name)
			}
			c, err = r.natsComponent(name, svc, cl, i)
		case strings.HasPrefix(image, "apache/kafka:"):
			c = r.kafkaComponent(name, svc, brokers)
		case strings.HasPrefix(image, "opensearchproject/opensearch:"):
			c, err = r.openSearchComponent(name, svc, osURL)
		case strings.HasPrefix(image, "mariadb:"):
			v, verr := mariadbdVersion()
			if verr != nil {
				t.Fatal(verr)
			}
			if majorMinor(v) != majorMinor(strings.TrimPrefix(image, "mariadb:")) {
				t.Errorf("%s: image %s, but the rehearsal runs MariaDB %s (Debian's)", name, image, v)
			}
			c, err = r.mariadbComponent(name, svc)
		case strings.HasPrefix(image, "quay.io/debezium/server:"):
			c, err = r.debeziumComponent(name, svc, dist, javaHome)
		case strings.HasPrefix(image, "grafana/grafana:"):
			skipped[name] = "no Grafana here (image only); its provisioning is checked by TestStackWiring"
			continue
		default:
			t.Fatalf("the rehearsal does not know how to run service %s (image %q): teach it (compose/rehearsal_components_test.go)", name, image)
		}
		if err != nil {
			t.Fatal(err)
		}
		r.comps[name] = c
		r.order = append(r.order, name)
	}
	r.rw.print(r)
	for _, n := range slices.Sorted(mapKeys(skipped)) {
		r.logf("%s: not run: %s", n, skipped[n])
	}

	if err := r.up(5 * time.Minute); err != nil {
		r.logf("components:\n%s", r.summary(skipped))
		for _, c := range r.comps {
			if c.proc != nil {
				r.logf("%s log tail:\n%s", c.name, tailFile(c.proc.logPath, 15))
			}
		}
		t.Fatalf("compose up failed: %v", err)
	}
	r.logf("compose up: every service started, those with a healthcheck healthy\n%s", r.summary(skipped))

	nc, err := natsx.Connect(ctx, cl.URL(), "rehearsal", slog.New(slog.NewTextHandler(logWriter{r}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := natsx.JetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	k := &checks{r: r, t: t, js: js, cl: cl, slack: slack, brokers: brokers, osURL: osURL, streams: streams, tables: tables}
	k.db = r.comps["mariadb"]
	if k.db == nil {
		t.Fatal("no mariadb service")
	}
	dbEnv := s.Services["mariadb"].Environment
	k.dbUser, k.dbPass, k.dbName = dbEnv["MARIADB_USER"], dbEnv["MARIADB_PASSWORD"], dbEnv["MARIADB_DATABASE"]
	k.dbAddr, _ = r.rw.lookup("mariadb:3306")
	k.debezium = r.comps["debezium"]

	// --- the stack, end to end ---
	k.customersFromMariaDB()
	k.everyTableFilled()
	k.unhappyPlatinumToSlack()
	k.everySourceIndexed()
	k.unhappyInKafka()
	k.everyServiceReady("steady state")
	k.debeziumHealth()
	if t.Failed() {
		t.FailNow()
	}

	// --- one NATS node away, and back ---
	k.nodeLoss()

	// --- at the end: one Slack message per unhappy rating, nobody died, compose down ---
	k.slackExactlyOnce()
	for _, name := range r.order {
		c := r.comps[name]
		if c.proc == nil || c.svc.Build == nil {
			continue
		}
		if exits := c.proc.unexpectedExits(); len(exits) > 0 {
			t.Errorf("%s exited on its own %d times: %v", name, len(exits), exits)
		}
	}
	r.logf("components:\n%s", r.summary(skipped))
	k.down()

	// What the processes said: warnings and errors per log (where a rehearsal's findings start),
	// and no secret of the stack in any of them.
	secrets := []string{vars["JETSUITE_ALERTING_SLACK_BOT_TOKEN"], k.dbPass}
	for _, name := range r.order {
		c := r.comps[name]
		if c.proc == nil {
			continue
		}
		w, e, distinct := logFindings(c.proc.logPath, 10)
		r.logf("%s's log: %d WARN and %d ERROR lines%s", name, w, e, bullets(distinct))
		b, err := os.ReadFile(c.proc.logPath)
		if err != nil {
			t.Error(err)
			continue
		}
		for _, secret := range secrets {
			if secret != "" && strings.Contains(string(b), secret) {
				t.Errorf("%s's log holds a secret of the stack (the Slack token or a database password)", name)
			}
		}
	}
	r.logf("rehearsal done in %s", time.Since(started).Truncate(time.Second))
}

func bullets(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return "; distinct:\n      - " + strings.Join(lines, "\n      - ")
}

// logWriter turns the test's own NATS client's log lines into lines of the rehearsal's log.
type logWriter struct{ r *rehearsal }

func (w logWriter) Write(p []byte) (int, error) {
	w.r.logf("the test's NATS client: %s", strings.TrimSpace(string(p)))
	return len(p), nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// resetKafkaAndOpenSearch deletes the stack's Kafka topics and indices in the shared test
// dependencies (the stack runs without prefixes; other tests use their own names).
func resetKafkaAndOpenSearch(t *testing.T, r *rehearsal, brokers, osURL string, objects []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics := []string{topology.StreamUnhappyPlatinumCustomers, topology.StreamRatingsWithCustomerData}
	if existing, err := adm.ListTopics(ctx, topics...); err == nil {
		var del []string
		for _, tp := range topics {
			if existing.Has(tp) {
				del = append(del, tp)
			}
		}
		if len(del) > 0 {
			if _, err := adm.DeleteTopics(ctx, del...); err != nil {
				t.Fatalf("delete old Kafka topics %v: %v", del, err)
			}
			r.logf("deleted Kafka topics of an earlier run: %v", del)
		}
	}
	for _, o := range objects {
		req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, osURL+"/"+strings.ToLower(o), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("OpenSearch: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			r.logf("deleted OpenSearch index of an earlier run: %s", strings.ToLower(o))
		}
	}
}

// --- Slack ---------------------------------------------------------------------------------

// slackStandIn is slack-go's slacktest server answering chat.postMessage as Slack does and
// recording each post (text and the alert ids of its metadata).
type slackStandIn struct {
	srv   *slacktest.Server
	mu    sync.Mutex
	posts []slackPost
}

type slackPost struct {
	channel, text string
	ids           []string
	at            time.Time
}

func newSlackStandIn(t *testing.T) *slackStandIn {
	s := &slackStandIn{}
	s.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
			if err := r.ParseForm(); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			var md struct {
				EventPayload struct {
					IDs []string `json:"alert_ids"`
				} `json:"event_payload"`
			}
			_ = json.Unmarshal([]byte(r.Form.Get("metadata")), &md)
			s.mu.Lock()
			p := slackPost{channel: r.Form.Get("channel"), text: r.Form.Get("text") + " " + r.Form.Get("blocks"), ids: md.EventPayload.IDs, at: time.Now()}
			s.posts = append(s.posts, p)
			ts := fmt.Sprintf("%d.%06d", time.Now().Unix(), len(s.posts))
			s.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": "C0UNHAPPY01", "ts": ts,
				"message": map[string]any{"type": "message", "text": r.Form.Get("text"), "ts": ts}})
		})
	})
	s.srv.Start()
	t.Cleanup(s.srv.Stop)
	return s
}

func (s *slackStandIn) snapshot() []slackPost {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]slackPost(nil), s.posts...)
}

// --- the checks ------------------------------------------------------------------------------

type checks struct {
	r       *rehearsal
	t       *testing.T
	js      jetstream.JetStream
	cl      *natstest.Cluster
	slack   *slackStandIn
	brokers string
	osURL   string
	streams []string
	tables  []string

	db                     *component
	dbAddr                 string
	dbUser, dbPass, dbName string
	debezium               *component
}

// waitFor polls cond every half second until it holds or within passes; it returns the last
// detail cond gave.
func (k *checks) waitFor(within time.Duration, cond func() (bool, string)) (bool, string) {
	deadline := time.Now().Add(within)
	for {
		ok, detail := cond()
		if ok {
			return true, detail
		}
		if time.Now().After(deadline) || k.r.ctx.Err() != nil {
			return false, detail
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// sql runs statements as the stack's MariaDB user (MARIADB_USER, on MARIADB_DATABASE), over TCP
// as another container would; the password travels in the environment, not on a command line.
func (k *checks) sql(q string) error {
	host, port, _ := strings.Cut(k.dbAddr, ":")
	cmd := exec.Command("mariadb", "--no-defaults", "-h", host, "-P", port, "-u", k.dbUser, k.dbName, "-e", q)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "MYSQL_PWD=" + k.dbPass}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", q, err, out)
	}
	return nil
}

func (k *checks) customer(id string) map[string]any {
	kv, err := k.js.KeyValue(k.r.ctx, topology.TableCustomers)
	if err != nil {
		return nil
	}
	e, err := kv.Get(k.r.ctx, id)
	if err != nil {
		return nil
	}
	var row map[string]any
	_ = json.Unmarshal(e.Value(), &row)
	return row
}

// change runs a statement and waits until CUSTOMERS[id] shows col = want.
func (k *checks) change(q, id, col, want string, within time.Duration) {
	k.t.Helper()
	t0 := time.Now()
	if err := k.sql(q); err != nil {
		k.t.Error(err)
		return
	}
	ok, _ := k.waitFor(within, func() (bool, string) {
		return fmt.Sprint(k.customer(id)[col]) == want, ""
	})
	if !ok {
		k.t.Errorf("%q did not reach CUSTOMERS[%s] within %s: %v\ndebezium log:\n%s", q, id, within, k.customer(id), tailFile(k.debezium.proc.logPath, 15))
		return
	}
	k.r.logf("SQL %q reached CUSTOMERS[%s] in %.1fs", q, id, time.Since(t0).Seconds())
}

// customersFromMariaDB: Debezium Server's snapshot of demo.CUSTOMERS fills the table, and the
// demo's changes (Rick Astley; Rica Blaisdell made platinum) follow through the binlog.
func (k *checks) customersFromMariaDB() {
	ok, detail := k.waitFor(3*time.Minute, func() (bool, string) {
		n := k.kvCount(topology.TableCustomers)
		return n >= 20, fmt.Sprintf("%d rows", n)
	})
	if !ok {
		k.t.Fatalf("CUSTOMERS has %s, want the 20 rows of demo.CUSTOMERS from Debezium Server's snapshot\ndebezium:\n%s\ncdc:\n%s",
			detail, tailFile(k.debezium.proc.logPath, 20), tailFile(k.r.comps["cdc"].proc.logPath, 10))
	}
	k.r.logf("CUSTOMERS: %s from MariaDB through Debezium Server (snapshot)", detail)
	k.change("INSERT INTO CUSTOMERS (ID,FIRST_NAME,LAST_NAME) VALUES (42,'Rick','Astley')", "42", "LAST_NAME", "Astley", time.Minute)
	k.change("UPDATE CUSTOMERS SET EMAIL='rick@example.com' WHERE ID=42", "42", "EMAIL", "rick@example.com", time.Minute)
	k.change("UPDATE CUSTOMERS SET CLUB_STATUS='bronze' WHERE ID=42", "42", "CLUB_STATUS", "bronze", time.Minute)
	k.change("UPDATE CUSTOMERS SET CLUB_STATUS='platinum' WHERE ID=42", "42", "CLUB_STATUS", "platinum", time.Minute)
	k.change("UPDATE CUSTOMERS SET CLUB_STATUS='platinum' WHERE ID=1", "1", "CLUB_STATUS", "platinum", time.Minute)
}

func (k *checks) kvCount(bucket string) int {
	kv, err := k.js.KeyValue(k.r.ctx, bucket)
	if err != nil {
		return 0
	}
	st, err := kv.Status(k.r.ctx)
	if err != nil {
		return 0
	}
	return int(st.Values())
}

func (k *checks) lastSeq(stream string) uint64 {
	s, err := k.js.Stream(k.r.ctx, stream)
	if err != nil {
		return 0
	}
	info, err := s.Info(k.r.ctx)
	if err != nil {
		return 0
	}
	return info.State.LastSeq
}

// everyTableFilled: the generated clicks and ratings (and the real CUSTOMERS) fill every table.
func (k *checks) everyTableFilled() {
	var all []string
	for _, b := range plan.Demo().Catalog().Buckets {
		if !b.State {
			all = append(all, b.Name)
		}
	}
	t0 := time.Now()
	ok, detail := k.waitFor(3*time.Minute, func() (bool, string) {
		var empty []string
		for _, b := range all {
			if k.kvCount(b) == 0 {
				empty = append(empty, b)
			}
		}
		return len(empty) == 0, fmt.Sprint(empty)
	})
	if !ok {
		k.t.Errorf("tables still empty after 3 minutes: %s", detail)
		return
	}
	k.r.logf("every table has rows (%d tables: %s), %.1fs after the check began", len(all), strings.Join(all, ", "), time.Since(t0).Seconds())
}

// unhappyPlatinumToSlack: an unhappy platinum rating becomes a Slack message: among them those
// of Rica Blaisdell, platinum only since the SQL change above.
func (k *checks) unhappyPlatinumToSlack() {
	t0 := time.Now()
	ok, _ := k.waitFor(4*time.Minute, func() (bool, string) {
		for _, p := range k.slack.snapshot() {
			if strings.Contains(p.text, "Rica Blaisdell") {
				return true, ""
			}
		}
		return false, ""
	})
	if !ok {
		k.t.Errorf("no Slack message about Rica Blaisdell (platinum since the SQL change) within 4 minutes; %d messages in all\nalerting:\n%s",
			len(k.slack.snapshot()), tailFile(k.r.comps["alerting"].proc.logPath, 15))
		return
	}
	k.r.logf("Slack: a message for Rica Blaisdell's unhappy rating (platinum by SQL) after %.1fs; %d messages so far",
		time.Since(t0).Seconds(), len(k.slack.snapshot()))
}

// unhappyRatings returns the RATING_IDs of UNHAPPY_PLATINUM_CUSTOMERS' messages 1..last.
func (k *checks) unhappyRatings(last uint64) ([]string, error) {
	s, err := k.js.Stream(k.r.ctx, topology.StreamUnhappyPlatinumCustomers)
	if err != nil {
		return nil, err
	}
	var ids []string
	for seq := uint64(1); seq <= last; seq++ {
		m, err := s.GetMsg(k.r.ctx, seq)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", seq, err)
		}
		var row struct {
			RatingID json.Number `json:"RATING_ID"`
		}
		if err := json.Unmarshal(m.Data, &row); err != nil {
			return nil, err
		}
		ids = append(ids, "rating."+row.RatingID.String())
	}
	return ids, nil
}

// slackExactlyOnce: every unhappy platinum rating so far is in exactly one Slack message.
func (k *checks) slackExactlyOnce() {
	last := k.lastSeq(topology.StreamUnhappyPlatinumCustomers)
	want, err := k.unhappyRatings(last)
	if err != nil {
		k.t.Errorf("read %s: %v", topology.StreamUnhappyPlatinumCustomers, err)
		return
	}
	count := func() map[string]int {
		n := map[string]int{}
		for _, p := range k.slack.snapshot() {
			for _, id := range p.ids {
				n[id]++
			}
		}
		return n
	}
	ok, detail := k.waitFor(2*time.Minute, func() (bool, string) {
		n := count()
		var missing []string
		for _, id := range want {
			if n[id] == 0 {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0, fmt.Sprint(missing)
	})
	if !ok {
		k.t.Errorf("unhappy platinum ratings without a Slack message: %s", detail)
	}
	n := count()
	var twice []string
	for _, id := range want {
		if n[id] > 1 {
			twice = append(twice, fmt.Sprintf("%s x%d", id, n[id]))
		}
	}
	if len(twice) > 0 {
		k.t.Errorf("unhappy platinum ratings in more than one Slack message: %v", twice)
	}
	k.r.logf("Slack: each of the %d unhappy platinum ratings in exactly one of %d messages (digests group several)", len(want), len(k.slack.snapshot()))
}

func (k *checks) indexCount(object string) int {
	index := strings.ToLower(object)
	if resp, err := http.Post(k.osURL+"/"+index+"/_refresh", "application/json", nil); err == nil {
		resp.Body.Close()
	}
	resp, err := http.Get(k.osURL + "/" + index + "/_count")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var c struct {
		Count int `json:"count"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&c) != nil {
		return 0
	}
	return c.Count
}

// everySourceIndexed: every stream and table the pipeline's opensearch sinks name has documents.
func (k *checks) everySourceIndexed() {
	objects := append(append([]string(nil), k.streams...), k.tables...)
	ok, detail := k.waitFor(2*time.Minute, func() (bool, string) {
		var empty []string
		for _, o := range objects {
			if k.indexCount(o) <= 0 {
				empty = append(empty, strings.ToLower(o))
			}
		}
		return len(empty) == 0, fmt.Sprint(empty)
	})
	if !ok {
		k.t.Errorf("OpenSearch indices without documents: %s\nindexer:\n%s", detail, tailFile(k.r.comps["indexer"].proc.logPath, 15))
		return
	}
	var counts []string
	for _, o := range objects {
		counts = append(counts, fmt.Sprintf("%s %d", strings.ToLower(o), k.indexCount(o)))
	}
	k.r.logf("OpenSearch: every stream and table indexed: %s", strings.Join(counts, ", "))
}

// kafkaRecords reads topic from its start: the value of each record by its jetsuite-source
// header (stream:sequence).
func (k *checks) kafkaRecords(topic string) (map[string][]string, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(k.r.ctx, 20*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	out := map[string][]string{}
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return out, fmt.Errorf("reading %s: %v (still %v)", topic, ctx.Err(), want)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			for _, h := range rec.Headers {
				if h.Key == "jetsuite-source" {
					out[string(h.Value)] = append(out[string(h.Value)], string(rec.Value))
				}
			}
			if rec.Offset+1 >= want[rec.Partition] {
				delete(want, rec.Partition)
			}
		})
	}
	return out, nil
}

// unhappyInKafka: UNHAPPY_PLATINUM_CUSTOMERS reaches Kafka through the bridge, every message so
// far as it is in JetStream, and so do the enriched ratings.
func (k *checks) unhappyInKafka() {
	for _, stream := range []string{topology.StreamUnhappyPlatinumCustomers, topology.StreamRatingsWithCustomerData} {
		last := k.lastSeq(stream)
		if last == 0 {
			k.t.Errorf("%s is empty", stream)
			continue
		}
		last = min(last, 200)
		s, err := k.js.Stream(k.r.ctx, stream)
		if err != nil {
			k.t.Fatal(err)
		}
		ok, detail := k.waitFor(2*time.Minute, func() (bool, string) {
			recs, err := k.kafkaRecords(stream)
			if err != nil {
				return false, err.Error()
			}
			for seq := uint64(1); seq <= last; seq++ {
				m, err := s.GetMsg(k.r.ctx, seq)
				if err != nil {
					return false, err.Error()
				}
				if !slices.Contains(recs[fmt.Sprintf("%s:%d", stream, seq)], string(m.Data)) {
					return false, fmt.Sprintf("message %d of %d not in topic %s (%d records)", seq, last, stream, len(recs))
				}
			}
			return true, fmt.Sprintf("%d records", len(recs))
		})
		if !ok {
			k.t.Errorf("Kafka: %s\nbridge:\n%s", detail, tailFile(k.r.comps["bridge"].proc.logPath, 15))
			continue
		}
		k.r.logf("Kafka: topic %s holds messages 1..%d of stream %s as they are (%s)", stream, last, stream, detail)
	}
}

// jetsuiteComponents are the components running the jetsuite image.
func (k *checks) jetsuiteComponents() []*component {
	var out []*component
	for _, n := range k.r.order {
		if c := k.r.comps[n]; c.svc.Build != nil {
			out = append(out, c)
		}
	}
	return out
}

// everyServiceReady: every jetsuite service's /readyz answers 200 (asked directly, now).
func (k *checks) everyServiceReady(when string) {
	ok, detail := k.waitFor(time.Minute, func() (bool, string) {
		var not []string
		for _, c := range k.jetsuiteComponents() {
			addr, _ := k.r.rw.lookup(c.name + ":8080")
			ctx, cancel := context.WithTimeout(k.r.ctx, 3*time.Second)
			err := httpOK(ctx, "http://"+addr+"/readyz")
			cancel()
			if err != nil {
				not = append(not, fmt.Sprintf("%s: %v", c.name, err))
			}
		}
		return len(not) == 0, strings.Join(not, "; ")
	})
	if !ok {
		k.t.Errorf("%s: /readyz not 200: %s", when, detail)
		return
	}
	var names []string
	for _, c := range k.jetsuiteComponents() {
		names = append(names, c.name)
	}
	k.r.logf("%s: /readyz 200 on every jetsuite service (%s)", when, strings.Join(names, ", "))
}

// debeziumHealth: Debezium Server's MicroProfile health (published by the stack, named in the
// README; no compose healthcheck asks it) is UP.
func (k *checks) debeziumHealth() {
	addr, _ := k.r.rw.lookup("debezium:8080")
	ok, detail := k.waitFor(time.Minute, func() (bool, string) {
		resp, err := http.Get("http://" + addr + "/q/health")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var h struct{ Status string }
		_ = json.NewDecoder(resp.Body).Decode(&h)
		return resp.StatusCode == http.StatusOK && h.Status == "UP", fmt.Sprintf("%s %q", resp.Status, h.Status)
	})
	if !ok {
		k.t.Errorf("Debezium Server's /q/health: %s", detail)
		return
	}
	k.r.logf("Debezium Server: /q/health UP")
}

// debeziumNode is the NATS node Debezium Server's sink is connected to (the Java client), or
// -1.
func (k *checks) debeziumNode() int {
	for i := range natstest.ClusterSize {
		s := k.cl.Server(i)
		if s == nil {
			continue
		}
		cz, err := s.Connz(&server.ConnzOptions{})
		if err != nil {
			continue
		}
		for _, c := range cz.Conns {
			if c.Lang == "java" {
				return i
			}
		}
	}
	return -1
}

// progress is a set of counters that must all grow.
type progress struct {
	name string
	get  func() int64
}

func (k *checks) progressMarks() []progress {
	stream := func(s string) progress {
		return progress{"stream " + s, func() int64 { return int64(k.lastSeq(s)) }}
	}
	return []progress{
		stream(topology.StreamClickstream),
		stream(topology.StreamUserClickstream),
		stream("KV_" + topology.TableEventsPerMin),
		stream(topology.StreamRatingsWithCustomerData),
		stream(topology.StreamUnhappyPlatinumCustomers),
		{"Slack messages", func() int64 { return int64(len(k.slack.snapshot())) }},
		{"OpenSearch " + strings.ToLower(topology.StreamUserClickstream), func() int64 { return int64(k.indexCount(topology.StreamUserClickstream)) }},
		{"Kafka " + topology.StreamUnhappyPlatinumCustomers, func() int64 { return k.kafkaEnd(topology.StreamUnhappyPlatinumCustomers) }},
	}
}

func (k *checks) kafkaEnd(topic string) int64 {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers))
	if err != nil {
		return -1
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(k.r.ctx, 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return -1
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// flowGoesOn waits until every mark has grown past where it is now.
func (k *checks) flowGoesOn(when string) {
	marks := k.progressMarks()
	from := make([]int64, len(marks))
	for i, m := range marks {
		from[i] = m.get()
	}
	t0 := time.Now()
	grown := make([]time.Duration, len(marks))
	ok, detail := k.waitFor(3*time.Minute, func() (bool, string) {
		var still []string
		for i, m := range marks {
			if grown[i] > 0 {
				continue
			}
			if v := m.get(); v > from[i] {
				grown[i] = time.Since(t0)
			} else {
				still = append(still, fmt.Sprintf("%s at %d", m.name, v))
			}
		}
		return len(still) == 0, strings.Join(still, ", ")
	})
	if !ok {
		k.t.Errorf("%s: the flow stopped: %s", when, detail)
		return
	}
	var got []string
	for i, m := range marks {
		got = append(got, fmt.Sprintf("%s %.1fs", m.name, grown[i].Seconds()))
	}
	k.r.logf("%s: the flow goes on; each grew within: %s", when, strings.Join(got, ", "))
}

// nodeLoss stops the NATS node Debezium Server's sink is connected to (its sink does not
// reconnect: the restart policy must bring it back), checks that everything flows on (the
// streams and buckets have 3 replicas), then starts the node again.
func (k *checks) nodeLoss() {
	i := k.debeziumNode()
	why := "Debezium Server's node"
	if i < 0 {
		i, why = k.cl.MetaLeader(), "the meta leader (Debezium Server's connection not found)"
	}
	if i < 0 {
		k.t.Fatal("no node to stop: no meta leader")
	}
	node := k.cl.Name(i)
	c := k.r.comps[node]
	dbzExits := len(k.debezium.proc.unexpectedExits())
	k.r.logf("docker compose stop %s: %s; meta leader %s", node, why, k.cl.Name(max(k.cl.MetaLeader(), 0)))
	c.pause()
	k.cl.StopNode(i)
	k.r.logf("%s stopped", node)

	k.change("UPDATE CUSTOMERS SET EMAIL='rick@example.org' WHERE ID=42", "42", "EMAIL", "rick@example.org", 3*time.Minute)
	k.flowGoesOn(node + " down")
	k.everyServiceReady(node + " down")
	if n := len(k.debezium.proc.unexpectedExits()); n > dbzExits {
		k.r.logf("Debezium Server exited %d time(s) when its NATS node went away and was restarted by its restart policy", n-dbzExits)
	}

	k.r.logf("docker compose start %s", node)
	if err := k.cl.RestartNode(i); err != nil {
		k.t.Fatalf("restart %s: %v", node, err)
	}
	c.resume()
	if err := c.waitState(k.r.ctx, "healthy", 2*time.Minute); err != nil {
		k.t.Errorf("%v (its healthcheck: %s)", err, c.probe.native)
	}
	if err := k.cl.WaitHealthy(2 * time.Minute); err != nil {
		k.t.Errorf("after restarting %s: %v", node, err)
	}
	k.r.logf("%s back and healthy; the cluster is current", node)
	k.change("UPDATE CUSTOMERS SET CLUB_STATUS='gold' WHERE ID=42", "42", "CLUB_STATUS", "gold", 2*time.Minute)
	k.flowGoesOn(node + " back")
	k.everyServiceReady(node + " back")
}

// down stops the stack as `docker compose down` does: SIGTERM in reverse start order, 10 s
// before SIGKILL. Every jetsuite service must end gracefully with status 0.
func (k *checks) down() {
	comps := make([]*component, 0, len(k.r.comps))
	for _, c := range k.r.comps {
		if c.proc != nil {
			comps = append(comps, c)
		}
	}
	sort.Slice(comps, func(i, j int) bool { return comps[i].startedAt.After(comps[j].startedAt) })
	t0 := time.Now()
	for _, c := range comps {
		s0 := time.Now()
		graceful, state := c.proc.stop(10 * time.Second)
		code := -1
		if state != nil {
			code = state.ExitCode()
		}
		k.r.logf("compose down: %s stopped in %.1fs (graceful %v, exit status %d)", c.name, time.Since(s0).Seconds(), graceful, code)
		if c.svc.Build != nil && (!graceful || code != 0) {
			k.t.Errorf("%s did not stop cleanly on SIGTERM within 10 s (graceful %v, exit status %d)\n%s", c.name, graceful, code, tailFile(c.proc.logPath, 15))
		}
	}
	k.r.logf("compose down: done in %.1fs", time.Since(t0).Seconds())
}

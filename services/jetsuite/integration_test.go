package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/services/indexer"
	"github.com/jetsuite/jetsuite/shared/natsx"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/testenv"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// Tests against the real dependencies testenv/run.sh starts (skipped outside CI without them,
// failed in CI).

func connectTo(t *testing.T, addr string) jetstream.JetStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := natsx.Connect(ctx, "nats://"+addr, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := natsx.JetStream(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestRealDebeziumRickAstleyAlert: the demo's script run as SQL against the real MariaDB;
// Debezium (Kafka Connect) -> Kafka -> bridge -> CDC reader -> enricher -> alerter; a bad rating
// from Rick Astley once he is platinum ends in exactly one Slack message at the test server.
func TestRealDebeziumRickAstleyAlert(t *testing.T) {
	brokers := testenv.Require(t, testenv.KafkaBrokers)
	testenv.Require(t, testenv.KafkaConnect)
	sock := testenv.Require(t, testenv.MariaDBSocket)
	slackURL, posts := slackRecorder(t)
	dir, addr := t.TempDir(), testenv.FreeAddr(t)
	stop, logs := startAll(t, dir, addr,
		"--generator-enabled=false", "--bridge-enabled", "--bridge-kafka-brokers", brokers,
		"--bridge-from-kafka", topology.SubjectCustomersCDC, "--bridge-to-kafka=",
		"--bridge-group", fmt.Sprintf("e2e-%d", time.Now().UnixNano()),
		"--alerting-slack-bot-token", "xoxb-test-token", "--alerting-slack-api-url", slackURL, "--alerting-slack-rate", "0")
	defer func() { _ = stop() }()
	js := connectTo(t, addr)
	ctx := context.Background()

	id := 2000 + time.Now().UnixNano()%1_000_000
	key := strconv.FormatInt(id, 10)
	sql := func(q string) {
		t.Helper()
		if out, err := exec.Command("mariadb", "--no-defaults", "-S", sock, "-uroot", "demo", "-e", q).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", q, err, out)
		}
	}
	waitCustomer := func(want string) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			if kv, err := js.KeyValue(ctx, topology.TableCustomers); err == nil {
				if e, err := kv.Get(ctx, key); err == nil && strings.Contains(string(e.Value()), want) {
					time.Sleep(time.Second) // the enricher's view follows through its watcher
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("CUSTOMERS[%s] never showed %q\n%s", key, want, tail(logs.String(), 30))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	rating := 5_000_000 + id
	rate := func(stars int, msg string) {
		t.Helper()
		rating++
		publishJSON(t, js, topology.SubjectRatings, "e2e-rating-"+strconv.FormatInt(rating, 10), time.Now().UnixMilli(),
			fmt.Sprintf(`{"rating_id":%d,"user_id":%d,"stars":%d,"route_id":1,"rating_time":1,"channel":"web","message":%q}`, rating, id, stars, msg))
		waitPublished(t, js)
	}

	sql(fmt.Sprintf("INSERT INTO CUSTOMERS (ID,FIRST_NAME,LAST_NAME) VALUES (%d,'Rick','Astley')", id))
	waitCustomer("Astley")
	sql(fmt.Sprintf("UPDATE CUSTOMERS SET EMAIL='rick@example.com' WHERE ID=%d", id))
	sql(fmt.Sprintf("UPDATE CUSTOMERS SET CLUB_STATUS='bronze' WHERE ID=%d", id))
	waitCustomer("bronze")
	rate(1, "meh")
	sql(fmt.Sprintf("UPDATE CUSTOMERS SET CLUB_STATUS='platinum' WHERE ID=%d", id))
	waitCustomer("platinum")
	rate(1, "worst. flight. ever. #neveragain")

	deadline := time.Now().Add(30 * time.Second)
	for len(posts()) == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	got := posts()
	if len(got) != 1 {
		t.Fatalf("Slack got %d messages, want 1: %v\n%s", len(got), got, tail(logs.String(), 30))
	}
	for _, want := range []string{"rick@example.com", "worst. flight. ever. #neveragain", strconv.FormatInt(rating, 10)} {
		if !strings.Contains(got[0], want) {
			t.Errorf("the Slack message lacks %q: %s", want, got[0])
		}
	}
}

// TestRealOpenSearchPipelineRun: `jetsuite all` with the generator and the indexer against the
// real OpenSearch node. After the generator is paused and everything settles, every followed
// stream message and every table row is exactly one document, and every dashboard panel's query
// returns data.
func TestRealOpenSearchPipelineRun(t *testing.T) {
	osURL := testenv.Require(t, testenv.OpenSearchURL)
	prefix := fmt.Sprintf("e2e%d-", time.Now().UnixNano()%1_000_000_000)
	dir, addr := t.TempDir(), testenv.FreeAddr(t)
	stop, logs := startAll(t, dir, addr, "--indexer-opensearch-url", osURL, "--indexer-index-prefix", prefix,
		"--generator-rate", "100", "--generator-ratings-rate", "20", "--generator-cdc-step", "1s", "--indexer-flush-interval", "200ms")
	defer func() { _ = stop() }()
	js := connectTo(t, addr)
	ctx := context.Background()
	time.Sleep(20 * time.Second)
	nc := js.Conn()
	if _, err := nc.Request("jetsuite.generator.pause", nil, 5*time.Second); err != nil {
		t.Fatalf("pause the generator: %v", err)
	}

	countDocs := func(index string) int {
		resp, err := http.Post(osURL+"/"+index+"/_refresh", "application/json", nil)
		if err == nil {
			resp.Body.Close()
		}
		resp, err = http.Get(osURL + "/" + index + "/_count")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		var c struct {
			Count int `json:"count"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&c)
		return c.Count
	}
	want := func() map[string]int {
		out := map[string]int{}
		for _, s := range []string{topology.StreamUserClickstream, topology.StreamEnrichedErrorCodes, topology.StreamRatingsLive,
			topology.StreamRatingsTest, topology.StreamRatingsWithCustomerData, topology.StreamUnhappyPlatinumCustomers} {
			out[strings.ToLower(s)] = int(lastSeq(t, js, s))
		}
		for _, b := range plan.Demo().Catalog().Buckets {
			if b.State {
				continue
			}
			kv, err := js.KeyValue(ctx, b.Name)
			if err != nil {
				t.Fatal(err)
			}
			keys, err := kv.ListKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for range keys.Keys() {
				n++
			}
			out[strings.ToLower(b.Name)] = n
		}
		return out
	}
	var diffs []string
	deadline := time.Now().Add(90 * time.Second)
	for {
		diffs = diffs[:0]
		for index, n := range want() {
			if n == 0 {
				diffs = append(diffs, index+": nothing to index")
				continue
			}
			if got := countDocs(prefix + index); got != n {
				diffs = append(diffs, fmt.Sprintf("%s: %d documents, %d in NATS", index, got, n))
			}
		}
		if len(diffs) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if len(diffs) > 0 {
		t.Fatalf("OpenSearch does not match NATS: %v\n%s", diffs, tail(logs.String(), 20))
	}

	// Every dashboard panel's query returns data.
	now := time.Now().UnixMilli()
	for _, p := range indexer.Panels() {
		body, _ := json.Marshal(p.Query(now-30*60_000, now+60_000))
		resp, err := http.Post(osURL+"/"+prefix+strings.ToLower(p.Source)+"/_search", "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Hits struct {
				Total struct {
					Value int `json:"value"`
				} `json:"total"`
			} `json:"hits"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if resp.StatusCode != 200 || r.Hits.Total.Value == 0 {
			t.Errorf("panel %q (%s) on %s: status %d, %d hits", p.Title, p.Dashboard, p.Source, resp.StatusCode, r.Hits.Total.Value)
		}
	}
}

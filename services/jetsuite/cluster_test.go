package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// TestClusterNodeLoss: both pipelines on the compose stack's 3-node NATS cluster
// (natstest.Cluster: compose/nats/*.conf in-process), with --replicas 3, survive losing a
// node, three times. `jetsuite cdc` and `jetsuite all` (generator and CDC reader off) run as
// OS processes with NATS_URL listing the three nodes. The test publishes the chaos test's
// inputs (clicks and ratings, out-of-order, late, duplicated and garbage) and, mid-stream,
// stops a node: first the leader of CLICKSTREAM, then the node holding the windower's KV
// watcher of CUSTOMERS, then the JetStream meta leader (whichever node that is at the time;
// the log names each node's roles). Each time it waits until the pipeline turns new clicks
// into USER_CLICKSTREAM messages again (the resume time it logs), keeps the node down for a
// while, restarts it on its store and waits until it has caught up. Then it checks the end
// state with the chaos test's checks (chaosCheck: derived streams hold each input once, in
// input order; tables equal the reference; dead letters; one Slack message per unhappy rating,
// in order; nothing pending), that every stream, bucket and durable consumer jetsuite created
// has 3 replicas on 3 nodes. Last, it stops the node holding the CUSTOMERS watcher once more
// and checks that a change of CUSTOMERS made meanwhile still reaches the ratings join. Both
// ways: every windower partition reading the source, and the reading split (--repartition: the
// routers and the R3 shuffle streams).
func TestClusterNodeLoss(t *testing.T) {
	for _, split := range []bool{false, true} {
		t.Run(fmt.Sprintf("repartition=%v", split), func(t *testing.T) { clusterNodeLoss(t, split) })
	}
}

func clusterNodeLoss(t *testing.T, split bool) {
	// The aggregations in four partitions, as the binary's default gives new tables.
	cfg := chaosConfig{clicks: 8_000, ratings: 1_200, publishFor: 14 * time.Second, seed: 20261202, fuse: true, partitions: 4, repartition: split}
	started := time.Now()
	plan := newChaosPlan(cfg)
	t.Logf("seed %d: %d clicks, %d ratings, %d garbage, %d duplicate publications, %d inputs in all; publishing over %s",
		cfg.seed, cfg.clicks, cfg.ratings, plan.garbage, plan.dups, len(plan.inputs), cfg.publishFor)

	tmp := t.TempDir()
	bin := buildJetsuite(t, tmp)
	cl := natstest.StartCluster(t)
	t.Logf("3-node cluster up after %s: %s", time.Since(started).Truncate(time.Millisecond), cl.URL())
	ctx := context.Background()
	nc, js := natstest.Dial(t, cl.URL(), "cluster-test", 30*time.Second)
	// The test's publisher bounds each async publish: one sent while its stream has no leader
	// gets no ack, and chaosPublisher publishes it again (same Nats-Msg-Id: harmless).
	pubJS, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192), jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}

	const slackChannel = "C0CLUSTER01"
	slack := newChaosSlack(t, slackChannel)
	settings := map[string]string{
		"NATS_URL":                         cl.URL(),
		"JETSUITE_REPLICAS":                "3",
		"JETSUITE_PARTITIONS":              strconv.Itoa(cfg.partitions),
		"JETSUITE_REPARTITION":             strconv.FormatBool(split),
		"JETSUITE_HTTP_LISTEN":             "none",
		"JETSUITE_LOG_LEVEL":               "info",
		"JETSUITE_WINDOWER_FLUSH_INTERVAL": "100ms",
		// Stream time follows event time only (the reference knows no wall clock).
		"JETSUITE_WINDOWER_IDLE_TIMEOUT": "0s",
		"SLACK_BOT_TOKEN":                "xoxb-cluster-test",
		"SLACK_CHANNEL":                  slackChannel,
		"SLACK_API_URL":                  slack.srv.GetAPIURL(),
		"SLACK_RATE":                     "0", // one message per alert
		"SLACK_RETRY_MIN":                "100ms",
		"SLACK_RETRY_MAX":                "1s",
	}
	cdcProc := newProc(t, bin, "cdc", tmp, chaosEnv(settings))
	settings["JETSUITE_GENERATOR_ENABLED"] = "false"
	settings["JETSUITE_CDC_ENABLED"] = "false"
	allProc := newProc(t, bin, "all", tmp, chaosEnv(settings))
	procs := []*proc{cdcProc, allProc}
	defer func() {
		if t.Failed() {
			for _, p := range procs {
				t.Logf("%s: %d WARN, %d ERROR lines; last lines:\n%s", p.name, p.count("level=WARN"), p.count("level=ERROR"), p.tail(15))
			}
			logs := map[string]string{}
			for i := range natstest.ClusterSize {
				t.Logf("%s's log: %s", cl.Name(i), cl.LogPath(i))
				logs[cl.Name(i)+".log"] = cl.LogPath(i)
			}
			for _, p := range procs {
				logs[p.name+".log"] = p.logPath
			}
			keepLogs(t, logs)
		}
	}()

	// The CDC reader declares the catalog (R3); the tables go in before `all` starts, so that
	// its joins see them from the first input on, as in the chaos test.
	cdcProc.start()
	waitCatalog(t, js, cdcProc, split, 60*time.Second)
	pub := &chaosPublisher{t: t, js: pubJS}
	pub.publish(plan.tables)
	waitCustomers(t, js, plan.customers)
	allProc.start()

	// Three nodes stopped in turn, each restarted before the next: the leader of CLICKSTREAM
	// (the input stream and, with the windower's consumer, the hottest path), the node that
	// holds the windower's watcher of CUSTOMERS (a KV watcher is an ephemeral R1 consumer: it
	// dies with its node and must be recreated, or the ratings join stops seeing changes), and
	// the JetStream meta leader (consumers are recreated and streams looked up through it).
	faults := []nodeFault{
		{at: len(plan.inputs) * 20 / 100, what: "the leader of " + topology.StreamClickstream,
			pick: func() int { return cl.StreamLeader(topology.StreamClickstream) }},
		{at: len(plan.inputs) * 45 / 100, what: "the node of the " + topology.TableCustomers + " watcher",
			pick: func() int { return watcherNode(cl, js, topology.TableCustomers) }},
		{at: len(plan.inputs) * 70 / 100, what: "the JetStream meta leader", pick: cl.MetaLeader},
	}
	for i := range faults {
		faults[i].stopped = make(chan struct{})
	}
	var published atomic.Int64
	faultsDone := make(chan struct{})
	faultCtx, stopFaults := context.WithCancel(ctx)
	t.Cleanup(func() { stopFaults(); <-faultsDone }) // also when the test fails early
	go func() {
		defer close(faultsDone)
		for i, f := range faults {
			// The node stays down while a tenth of the inputs goes in, but not past the next
			// fault's point (there the publisher waits for that fault).
			holdUntil := min(len(plan.inputs), f.at+len(plan.inputs)/10)
			if i+1 < len(faults) {
				holdUntil = min(holdUntil, faults[i+1].at)
			}
			if !runNodeFault(faultCtx, t, cl, js, f, &published, holdUntil, len(plan.inputs)) {
				return
			}
		}
	}()

	rng := rand.New(rand.NewPCG(cfg.seed, 99))
	var bursts []int
	for n := 0; n < len(plan.inputs); {
		n = min(len(plan.inputs), n+20+rng.IntN(600))
		bursts = append(bursts, n)
	}
	pubStart, from, next := time.Now(), 0, 0
	for _, to := range bursts {
		at := pubStart.Add(time.Duration(float64(cfg.publishFor) * float64(from) / float64(len(plan.inputs))))
		if d := time.Until(at); d > 0 {
			<-time.After(d)
		}
		if next < len(faults) && to > faults[next].at {
			pub.publish(plan.inputs[from:faults[next].at])
			from = faults[next].at
			published.Store(int64(from))
			select {
			case <-faults[next].stopped:
			case <-faultsDone:
			}
			next++
		}
		pub.publish(plan.inputs[from:to])
		from = to
		published.Store(int64(to))
	}
	end := time.Now()
	t.Logf("all %d inputs published after %s", len(plan.inputs), end.Sub(started).Truncate(time.Millisecond))
	select {
	case <-faultsDone:
	case <-time.After(3 * time.Minute):
		t.Fatal("the node faults did not finish within 3 minutes")
	}

	check := newChaosCheck(t, js, plan, slack, cfg)
	settled, last := waitSettled(ctx, check, nil, faultsDone, time.Now().Add(90*time.Second))
	if !settled {
		t.Fatalf("not settled 90 s after the last input and node restart: %s", strings.Join(last, "; "))
	}
	t.Logf("settled %s after the last input", time.Since(end).Truncate(time.Millisecond))
	for _, p := range procs {
		if !p.running() {
			t.Errorf("%s is not running at the end\n%s", p.name, p.tail(20))
		}
	}
	checkReplicas(t, js, split, check.consumersExpected())
	check.all()
	if t.Failed() {
		return
	}
	probeTableChange(t, cl, js, pub, slack, plan)
	t.Logf("cluster test took %s", time.Since(started).Truncate(time.Millisecond))
}

// watcherNode is the node that holds the (ephemeral, R1) consumer of a KV watcher of table
// (-1: none now).
func watcherNode(cl *natstest.Cluster, js jetstream.JetStream, table string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, topology.BucketStream(table))
	if err != nil {
		return -1
	}
	l := s.ListConsumers(ctx)
	for ci := range l.Info() {
		if ci.Config.Durable != "" || ci.Cluster == nil {
			continue
		}
		for i := range natstest.ClusterSize {
			if cl.Name(i) == ci.Cluster.Leader {
				return i
			}
		}
	}
	return -1
}

// probeTableChange: a change of CUSTOMERS made while the node that holds the windower's
// watcher of CUSTOMERS is down still reaches the ratings join: a new platinum customer's bad
// rating ends in a Slack message. (The view follows the bucket asynchronously: ratings go in
// one after the other until one joins, and the wait is logged.) The node is restarted after.
func probeTableChange(t *testing.T, cl *natstest.Cluster, js jetstream.JetStream, pub *chaosPublisher, slack *chaosSlack, plan *chaosPlan) {
	t.Helper()
	victim := -1
	for deadline := time.Now().Add(30 * time.Second); victim < 0; time.Sleep(20 * time.Millisecond) {
		if victim = watcherNode(cl, js, topology.TableCustomers); victim < 0 && time.Now().After(deadline) {
			t.Fatalf("no watcher of %s after 30 s", topology.TableCustomers)
		}
	}
	cl.StopNode(victim)
	t.Logf("stopped %s, the node of the %s watcher, for a change of the table", cl.Name(victim), topology.TableCustomers)
	defer func() {
		if err := cl.RestartNode(victim); err != nil {
			t.Error(err)
		} else if err := cl.WaitHealthy(90 * time.Second); err != nil {
			t.Error(err)
		}
	}()
	c := chaosCustomer{id: 99, first: "Probe", last: "Customer", email: "probe@example.com", club: "platinum"}
	pub.publish([]chaosInput{{subject: topology.SubjectCustomersCDC, id: "dbz-probe-99", ts: chaosRatingsT0,
		body: debeziumEvent("c", 99_000, nil, c.row())}})
	start := time.Now()
	var ts int64 // the newest rating's event time
	for _, in := range plan.inputs {
		if in.rating != nil {
			ts = max(ts, in.rating.ts)
		}
	}
	sent := map[string]int{}
	for i := 0; ; i++ {
		r := chaosRating{id: 990_000 + int64(i), user: c.id, stars: 1, channel: "web", message: "probe", ts: ts}
		pub.publish([]chaosInput{{subject: topology.SubjectRatings, id: "probe-rating-" + strconv.Itoa(i), ts: ts, body: r.body()}})
		sent["rating."+strconv.FormatInt(r.id, 10)] = i + 1
		for until := time.Now().Add(time.Second); time.Now().Before(until); time.Sleep(20 * time.Millisecond) {
			for _, p := range slack.snapshot() {
				for _, id := range p.ids {
					if n, ok := sent[id]; ok {
						t.Logf("a new platinum customer's bad rating reached Slack %s after the customer's change event, the watcher's node down (probe rating %d of %d)",
							time.Since(start).Truncate(time.Millisecond), n, i+1)
						return
					}
				}
			}
		}
		if time.Since(start) > 60*time.Second {
			t.Errorf("60 s after a new platinum customer's change event, none of its %d bad ratings reached Slack: the ratings join does not see CUSTOMERS change", i+1)
			return
		}
	}
}

// waitCatalog waits until every stream and bucket of the built-in pipelines exists (the
// process p declares them).
func waitCatalog(t *testing.T, js jetstream.JetStream, p *proc, split bool, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		missing := ""
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		for _, name := range catalogStreams(split) {
			if _, err := js.Stream(ctx, name); err != nil {
				missing = name + ": " + err.Error()
				break
			}
		}
		cancel()
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %s\n%s", within, missing, p.tail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// catalogStreams are the streams the built-in pipelines declare (fused, in four partitions, and
// with split the shuffle streams), buckets' streams included.
func catalogStreams(split bool) []string {
	p := plan.Demo()
	p.Fuse()
	p.DefaultPartitions, p.Repartition = 4, split
	c := p.Catalog()
	var out []string
	for _, s := range c.Streams {
		out = append(out, s.Name)
	}
	for _, b := range c.Buckets {
		out = append(out, topology.BucketStream(b.Name))
	}
	return out
}

// nodeFault stops one node once `at` inputs are published.
type nodeFault struct {
	at   int
	what string
	pick func() int // the node to stop (-1: none known now)
	// stopped is closed once the node is stopped: the publisher waits for it at input `at`,
	// so that inputs follow every stop, whatever the timing.
	stopped chan struct{}
}

// runNodeFault stops the node f picks, measures how long until CLICKSTREAM stores inputs
// again and until the pipeline turns one stored after the stop into a USER_CLICKSTREAM message
// (the flow resumed), keeps the node down until input holdUntil is published, then restarts
// it and waits until the cluster is healthy (the node caught up). It reports failures with
// t.Errorf (it runs beside the test's goroutine) and returns false after one, or when ctx ends.
func runNodeFault(ctx context.Context, t *testing.T, cl *natstest.Cluster, js jetstream.JetStream, f nodeFault, published *atomic.Int64, holdUntil, total int) bool {
	for published.Load() < int64(f.at) {
		if ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	victim := -1
	for deadline := time.Now().Add(30 * time.Second); victim < 0; {
		if victim = f.pick(); victim < 0 {
			if time.Now().After(deadline) {
				t.Errorf("no node is %s after 30 s", f.what)
				return false
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	before, err := lastSeqOf(js, topology.StreamClickstream)
	if err != nil {
		t.Errorf("before stopping %s: %v", cl.Name(victim), err)
		return false
	}
	roles := fmt.Sprintf("meta leader %s, %s leader %s", nodeName(cl, cl.MetaLeader()), topology.StreamClickstream,
		nodeName(cl, cl.StreamLeader(topology.StreamClickstream)))
	stopped := time.Now()
	cl.StopNode(victim)
	close(f.stopped)
	t.Logf("stopped %s, %s (%s), after input %d of %d; %s last seq %d", cl.Name(victim), f.what, roles, published.Load(), total,
		topology.StreamClickstream, before)

	ok := true
	var stored, resumed time.Duration
	for deadline := stopped.Add(60 * time.Second); resumed == 0 && ctx.Err() == nil; {
		if time.Now().After(deadline) {
			t.Errorf("60 s after stopping %s: %s stored a new input after %v; no USER_CLICKSTREAM message of one", cl.Name(victim),
				topology.StreamClickstream, stored)
			ok = false
			break
		}
		if stored == 0 {
			if seq, err := lastSeqOf(js, topology.StreamClickstream); err == nil && seq > before {
				stored = time.Since(stopped)
			}
		}
		if src, err := newestSource(js, topology.StreamUserClickstream, topology.StreamClickstream); err == nil && src > before {
			resumed = time.Since(stopped)
			if stored == 0 {
				stored = resumed // seen together
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ok {
		t.Logf("after stopping %s: %s stored new inputs after %s, the flow resumed (USER_CLICKSTREAM has a new input's output) after %s",
			cl.Name(victim), topology.StreamClickstream, stored.Truncate(time.Millisecond), resumed.Truncate(time.Millisecond))
	}

	// Two nodes carry a share of the inputs, then the node comes back.
	for ok && published.Load() < int64(holdUntil) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	down := time.Since(stopped)
	if err := cl.RestartNode(victim); err != nil {
		t.Errorf("restart %s: %v", cl.Name(victim), err)
		return false
	}
	restarted := time.Now()
	if err := cl.WaitHealthy(90 * time.Second); err != nil {
		t.Errorf("after restarting %s: %v", cl.Name(victim), err)
		return false
	}
	t.Logf("restarted %s after %s down; the cluster was healthy (every replica current) %s later", cl.Name(victim),
		down.Truncate(time.Millisecond), time.Since(restarted).Truncate(time.Millisecond))
	return ok
}

func nodeName(cl *natstest.Cluster, i int) string {
	if i < 0 {
		return "none"
	}
	return cl.Name(i)
}

func lastSeqOf(js jetstream.JetStream, stream string) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	return s.CachedInfo().State.LastSeq, nil
}

// newestSource is the source sequence named by the Nats-Msg-Id of a derived stream's newest
// message.
func newestSource(js jetstream.JetStream, stream, source string) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	last := s.CachedInfo().State.LastSeq
	if last == 0 {
		return 0, nil
	}
	m, err := s.GetMsg(ctx, last)
	if err != nil {
		return 0, err
	}
	seq, _ := sourceSeq(m.Header.Get(events.HeaderMsgID), source)
	return seq, nil
}

// checkReplicas: every stream and bucket of the catalog has 3 replicas, placed on 3 nodes and
// current, and so has every durable consumer the services created (they set no replicas of
// their own and inherit the stream's). Other consumers (KV watchers: ordered, ephemeral,
// R1 by design) are logged.
func checkReplicas(t *testing.T, js jetstream.JetStream, split bool, durables map[string][]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ephemeral []string
	durableCount := 0
	for _, name := range catalogStreams(split) {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Errorf("stream %s: %v", name, err)
			continue
		}
		info := s.CachedInfo()
		if err := threeReplicas(info.Config.Replicas, info.Cluster); err != nil {
			t.Errorf("stream %s: %v", name, err)
		}
		l := s.ListConsumers(ctx)
		for ci := range l.Info() {
			if ci.Config.Durable == "" {
				ephemeral = append(ephemeral, fmt.Sprintf("%s/%s R%d", name, ci.Name, replicasOf(ci.Cluster)))
				continue
			}
			durableCount++
			// A consumer's Replicas 0 means "the stream's".
			want := ci.Config.Replicas
			if want == 0 {
				want = info.Config.Replicas
			}
			if err := threeReplicas(want, ci.Cluster); err != nil {
				t.Errorf("consumer %s/%s (replicas set: %d): %v", name, ci.Name, ci.Config.Replicas, err)
			}
		}
		if err := l.Err(); err != nil {
			t.Errorf("consumers of %s: %v", name, err)
		}
	}
	want := 0
	for _, names := range durables {
		want += len(names)
	}
	if durableCount < want {
		t.Errorf("%d durable consumers found, want at least %d", durableCount, want)
	}
	sort.Strings(ephemeral)
	t.Logf("%d streams and buckets, %d durable consumers: 3 replicas each; ephemeral consumers now: %v", len(catalogStreams(split)), durableCount, ephemeral)
}

func replicasOf(ci *jetstream.ClusterInfo) int {
	if ci == nil {
		return 0
	}
	return 1 + len(ci.Replicas)
}

// threeReplicas checks a configured replica count and the placement JetStream reports.
func threeReplicas(configured int, ci *jetstream.ClusterInfo) error {
	if configured != 3 {
		return fmt.Errorf("configured with %d replicas, want 3", configured)
	}
	if ci == nil || ci.Leader == "" {
		return fmt.Errorf("no leader: %+v", ci)
	}
	if len(ci.Replicas) != 2 {
		return fmt.Errorf("leader %s and %d replicas, want 2", ci.Leader, len(ci.Replicas))
	}
	nodes := map[string]bool{ci.Leader: true}
	for _, r := range ci.Replicas {
		nodes[r.Name] = true
		if r.Offline {
			return fmt.Errorf("replica %s offline", r.Name)
		}
	}
	if len(nodes) != 3 {
		return fmt.Errorf("on %d nodes, want 3", len(nodes))
	}
	return nil
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/services/generator"
	"github.com/jetsuite/jetsuite/shared/kvx"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/testenv"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// TestScaleOutThroughput measures (it asserts nothing about speed): clicks/s through enrich +
// the seven windows (fused) with one windower process and no partitions, then 1, 2 and 4
// windower processes sharing four partitions per aggregation, each process's CPU, and the raw
// consume+ack rate of the same stream in the same run; then the time from SIGKILLing one
// windower to all its partitions being served again. The partitioned runs go twice: every
// windower reading the whole source, and the reading split (--repartition).
// Switched on by JETSUITE_SCALE=1 (`go tool task bench:scale`); docs/BENCHMARKS.md has the
// figures. JETSUITE_SCALE_CLICKS sets the clicks per run (default 200,000).
func TestScaleOutThroughput(t *testing.T) {
	if os.Getenv("JETSUITE_SCALE") != "1" {
		t.Skip("a measurement, not a check: JETSUITE_SCALE=1 runs it (go tool task bench:scale)")
	}
	clicks := 200_000
	if s := os.Getenv("JETSUITE_SCALE_CLICKS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		clicks = n
	}
	tmp := t.TempDir()
	bin := buildJetsuite(t, tmp)
	// One windower without partitions first: the figure to compare with.
	for _, split := range []bool{false, true} {
		for _, r := range [][2]int{{1, 1}, {1, 4}, {2, 4}, {4, 4}} {
			if split && r[1] == 1 {
				continue // nothing to split
			}
			t.Run(fmt.Sprintf("windowers=%d,partitions=%d,repartition=%v", r[0], r[1], split), func(t *testing.T) { scaleRun(t, bin, r[0], r[1], split, clicks) })
		}
	}
}

func scaleRun(t *testing.T, bin string, instances, scaleParts int, split bool, clicks int) {
	dir, addr := t.TempDir(), testenv.FreeAddr(t)
	env := natstest.StartAt(t, dir, addr)
	ctx := context.Background()
	for n := range 39 {
		u, _ := json.Marshal(generator.User(42, uint64(n)))
		publishJSON(t, env.JS, topology.SubjectClickstreamUsers, "u"+strconv.Itoa(n), goldenT0, string(u))
	}
	for n := range 6 {
		c, _ := json.Marshal(generator.Code(42, uint64(n)))
		publishJSON(t, env.JS, topology.SubjectClickstreamCodes, "c"+strconv.Itoa(n), goldenT0, string(c))
	}

	procEnv := chaosEnv(map[string]string{
		"NATS_URL":                         "nats://" + addr,
		"JETSUITE_HTTP_LISTEN":             "none",
		"JETSUITE_LOG_LEVEL":               "warn",
		"JETSUITE_PARTITIONS":              strconv.Itoa(scaleParts),
		"JETSUITE_REPARTITION":             strconv.FormatBool(split),
		"JETSUITE_WINDOWER_IDLE_TIMEOUT":   "0s",
		"JETSUITE_WINDOWER_GRACE":          "1h",
		"JETSUITE_ALERTING_SLACK_API_URL":  "http://127.0.0.1:1/",
		"JETSUITE_WINDOWER_FLUSH_INTERVAL": "500ms",
	})
	enr := newProc(t, bin, "enricher", dir, procEnv)
	enr.start()
	var ws []*proc
	for i := range instances {
		p := newProc(t, bin, "windower-"+strconv.Itoa(i+1), dir, procEnv)
		p.start()
		ws = append(ws, p)
	}
	units := 2 * scaleParts // CLICKSTREAM's and RATINGS' partitions
	if split {
		units += 2 // and their routers
	}
	leased := func() (n int, owners map[string]bool) {
		owners = map[string]bool{}
		leases, err := env.JS.KeyValue(ctx, topology.BucketLeases)
		if err != nil {
			return 0, owners
		}
		keys, err := leases.ListKeysFiltered(ctx, "u.windower.>")
		if err != nil {
			return 0, owners
		}
		for k := range keys.Keys() {
			if e, err := leases.Get(ctx, k); err == nil {
				n++
				owners[string(e.Value())] = true
			}
		}
		return n, owners
	}
	floors := func() uint64 {
		if scaleParts <= 1 {
			if c, err := env.JS.Consumer(ctx, topology.StreamClickstream, "windower-"+topology.StreamClickstream); err == nil {
				if info, err := c.Info(ctx); err == nil {
					return info.AckFloor.Stream
				}
			}
			return 0
		}
		least, _ := windowerProgress(env.JS, topology.StreamClickstream, scaleParts)
		return least
	}
	// The clicks go in once the partitions are spread evenly (no hand-over during the run)
	// and the windowers consume; the clock runs from the first publish until every
	// partition has applied the last click.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n, owners := leased()
		if n == units && len(owners) == min(instances, units) && settled(env.JS, instances, split) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d partitions owned by %d instances after 2 minutes", n, units, len(owners))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t0, done0 := time.Now(), uint64(0)
	cpu0 := map[*proc]time.Duration{}
	for _, p := range ws {
		cpu0[p] = procCPU(t, p)
	}
	self0 := selfCPU(t)
	publishPaced(t, env.JS, datagenClicks(0, clicks))
	deadline = time.Now().Add(15 * time.Minute)
	for floors() < uint64(clicks) {
		if time.Now().After(deadline) {
			t.Fatalf("not processed within 15 minutes (least ack floor %d of %d)", floors(), clicks)
		}
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(t0)
	rate := float64(uint64(clicks)-done0) / elapsed.Seconds()
	var cpus []string
	for _, p := range ws {
		cpus = append(cpus, fmt.Sprintf("%.2f", (procCPU(t, p)-cpu0[p]).Seconds()/elapsed.Seconds()))
	}
	selfCores := (selfCPU(t) - self0).Seconds() / elapsed.Seconds()

	rawRate := float64(clicks) / rawConsume(t, env.JS, clicks).Seconds()

	t.Logf("RESULT windowers=%d partitions=%d repartition=%v: %.0f clicks/s (%d clicks in %s); raw consume+ack %.0f/s (ratio %.2f); CPU cores per windower process: %s; test process (NATS server and publisher): %.2f cores",
		instances, scaleParts, split, rate, uint64(clicks)-done0, elapsed.Round(time.Millisecond), rawRate, rate/rawRate,
		strings.Join(cpus, " "), selfCores)

	if instances < 2 {
		return
	}
	// Takeover: SIGKILL the first windower; its leases expire (topology.LeaseTTL) and the others
	// take its partitions: served again once every partition's consumer is newer than the kill.
	dead := ws[0].instance()
	killed := time.Now()
	ws[0].kill()
	// Inputs after the kill: served again once every partition has applied them.
	publishPaced(t, env.JS, datagenClicks(clicks, 1000))
	_ = env.JS.DeleteConsumer(ctx, topology.StreamClickstream, "raw")
	for {
		n, owners := leased()
		if n == units && !owners[kvx.Escape(dead)] {
			if p, ok := windowerProgress(env.JS, topology.StreamClickstream, scaleParts); ok && p >= uint64(clicks+1000) {
				break
			}
		}
		if time.Since(killed) > time.Minute {
			t.Fatalf("partitions not served again a minute after the SIGKILL")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("RESULT takeover: every partition owned again and the 1,000 clicks published after the kill applied by all of them %s after the SIGKILL (lease TTL %s)",
		time.Since(killed).Round(time.Millisecond), topology.LeaseTTL)
}

// publishPaced publishes asynchronously at full speed and waits for the acks.
func publishPaced(t *testing.T, js jetstream.JetStream, msgs []*nats.Msg) {
	publishFullSpeed(t, js, msgs)
	waitPublishes(t, js)
}

// publishFullSpeed publishes asynchronously with as many publishes outstanding as the client
// allows: when that window is full (the server busy with the pipeline), it waits until there
// is room again.
func publishFullSpeed(t *testing.T, js jetstream.JetStream, msgs []*nats.Msg) {
	for _, m := range msgs {
		for {
			_, err := js.PublishMsgAsync(m)
			if err == nil {
				break
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				t.Fatal(err)
			}
		}
	}
}

// waitPublishes waits until every asynchronous publish is acknowledged.
func waitPublishes(t *testing.T, js jetstream.JetStream) {
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		t.Fatal("publishing did not finish within 5 minutes")
	}
}

// settled reports whether the windower consumes CLICKSTREAM with a consumer per instance (one
// per partition set), none of them made in the last second: the hand-overs are done.
func settled(js jetstream.JetStream, instances int, split bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	streams, want := []string{topology.StreamClickstream}, instances
	if split {
		// The router reads CLICKSTREAM, the partitions its shuffle stream.
		streams, want = append(streams, topology.ShuffleStream(topology.StreamClickstream)), instances+1
	}
	n := 0
	for _, name := range streams {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return false
		}
		infos := s.ListConsumers(ctx)
		for info := range infos.Info() {
			if strings.HasPrefix(info.Name, "windower-") {
				if time.Since(info.Created) < time.Second {
					return false
				}
				n++
			}
		}
		if infos.Err() != nil {
			return false
		}
	}
	return n >= want
}

// procCPU is a process's user + system CPU time so far (/proc/<pid>/stat, clock ticks of 10 ms).
func procCPU(t *testing.T, p *proc) time.Duration {
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	return statCPU(t, "/proc/"+strconv.Itoa(pid)+"/stat")
}

func selfCPU(t *testing.T) time.Duration { return statCPU(t, "/proc/self/stat") }

func statCPU(t *testing.T, path string) time.Duration {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command (which is in parentheses and may hold spaces): utime is the
	// 14th field of the line, stime the 15th.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

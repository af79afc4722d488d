package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/services/generator"
	"github.com/jetsuite/jetsuite/shared/natsx"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/testenv"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// The memory measurement of docs/FOOTPRINT.md: `jetsuite all` runs as its own process (so that
// /proc/PID/status holds its memory alone, not the test's), from a fresh data directory, and
// its peak resident memory (VmHWM) must stay within JETSUITE_RSS_LIMIT_MB (500). Two loads:
//
//   - TestPeakRSSClicks: `all --generator=false`; the test publishes JETSUITE_RSS_CLICKS
//     (200,000) datagen clicks at full speed and waits until every consumer has processed
//     everything;
//   - TestPeakRSSRate: `all --rate 20000` (JETSUITE_RSS_RATE) for JETSUITE_RSS_MINUTES (5).
//
// They take minutes, so they run only when JETSUITE_RSS=1 (`go tool task rss`). Other knobs:
// JETSUITE_RSS_BIN runs a given binary instead of building this package (to measure another
// commit), JETSUITE_RSS_ARGS adds flags (space-separated), JETSUITE_RSS_OUT keeps the report,
// the process's log and a heap profile taken at the end in that folder.

func rssEnabled(t *testing.T) {
	if os.Getenv("JETSUITE_RSS") == "" {
		t.Skip("memory measurement: set JETSUITE_RSS=1 (go tool task rss)")
	}
}

func rssEnvInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// rssRun is one `jetsuite all` process under measurement.
type rssRun struct {
	t        *testing.T
	cmd      *exec.Cmd
	done     chan struct{}
	dataDir  string
	httpAddr string
	natsAddr string
	out      string // report folder
	log      *os.File
	report   strings.Builder
	mu       sync.Mutex
}

func startRSSRun(t *testing.T, args ...string) *rssRun {
	t.Helper()
	bin := os.Getenv("JETSUITE_RSS_BIN")
	if bin == "" {
		bin = buildJetsuite(t, t.TempDir())
	}
	r := &rssRun{t: t, dataDir: t.TempDir(), httpAddr: testenv.FreeAddr(t), natsAddr: testenv.FreeAddr(t), out: os.Getenv("JETSUITE_RSS_OUT"), done: make(chan struct{})}
	if r.out == "" {
		r.out = t.TempDir()
	}
	if err := os.MkdirAll(r.out, 0o755); err != nil {
		t.Fatal(err)
	}
	var err error
	if r.log, err = os.Create(filepath.Join(r.out, t.Name()+".log")); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"all", "--data-dir", r.dataDir, "--nats-listen", r.natsAddr, "--http-listen", r.httpAddr}, args...)
	args = append(args, strings.Fields(os.Getenv("JETSUITE_RSS_ARGS"))...)
	r.cmd = exec.Command(bin, args...)
	r.cmd.Env = chaosEnv(nil)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		<-r.done
		_ = r.log.Close()
	})
	r.printf("binary %s, args %s", bin, strings.Join(args, " "))
	return r
}

// printf logs a line and keeps it for the report.
func (r *rssRun) printf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	r.t.Log(line)
	r.mu.Lock()
	r.report.WriteString(line + "\n")
	r.mu.Unlock()
}

// status reads VmRSS and VmHWM (KiB) from /proc/PID/status.
func (r *rssRun) status() (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss, _ = strconv.ParseInt(f[1], 10, 64)
		case "VmHWM:":
			hwm, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return rss, hwm, nil
}

// dataBytes is the size of the data directory (the files' sizes, as du -sb).
func (r *rssRun) dataBytes() int64 {
	var n int64
	_ = filepath.WalkDir(r.dataDir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// connect connects to the process's NATS once it listens.
func (r *rssRun) connect() jetstream.JetStream {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc, err := natsx.Connect(ctx, "nats://"+r.natsAddr, "rss", nil)
	if err != nil {
		r.t.Fatalf("connect: %v", err)
	}
	r.t.Cleanup(nc.Close)
	js, err := natsx.JetStream(nc)
	if err != nil {
		r.t.Fatal(err)
	}
	// The streams exist once the process has declared its topology.
	for {
		if _, err := js.Stream(ctx, topology.StreamClickstream); err == nil {
			return js
		}
		select {
		case <-ctx.Done():
			r.t.Fatalf("stream %s not declared within a minute", topology.StreamClickstream)
		case <-r.done:
			r.t.Fatalf("jetsuite exited early; see %s", r.log.Name())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// sample logs VmRSS, VmHWM, the data directory's size and the clickstream's lag every period
// until stop is closed.
func (r *rssRun) sample(js jetstream.JetStream, period time.Duration, stop <-chan struct{}) {
	start := time.Now()
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-r.done:
			return
		case <-tick.C:
		}
		rss, hwm, err := r.status()
		if err != nil {
			return
		}
		r.printf("t=%3.0fs VmRSS %4d MiB  VmHWM %4d MiB  data %5d MiB  %s", time.Since(start).Seconds(),
			rss>>10, hwm>>10, r.dataBytes()>>20, r.lag(js))
	}
}

// lag is the clickstream's last sequence and the largest backlog of its consumers.
func (r *rssRun) lag(js jetstream.JetStream) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	states, err := consumerStates(ctx, js, []string{topology.StreamClickstream})
	if err != nil || len(states) == 0 {
		return "lag ?"
	}
	var most uint64
	for _, s := range states {
		most = max(most, s.pending+s.ackPending)
	}
	return fmt.Sprintf("clickstream seq %d, largest consumer backlog %d", states[0].end, most)
}

// settled reports whether every consumer of every stream of the plan has processed everything.
func (r *rssRun) settled(js jetstream.JetStream) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var streams []string
	for _, s := range plan.Demo().Catalog().Streams {
		streams = append(streams, s.Name)
	}
	states, err := consumerStates(ctx, js, streams)
	if err != nil {
		return false, err.Error()
	}
	for _, s := range states {
		if s.pending+s.ackPending > 0 {
			return false, s.String()
		}
	}
	return true, ""
}

// sizes reports every stream's (and bucket's) size, largest first.
func (r *rssRun) sizes(js jetstream.JetStream) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var infos []*jetstream.StreamInfo
	l := js.ListStreams(ctx)
	for info := range l.Info() {
		infos = append(infos, info)
	}
	if err := l.Err(); err != nil {
		r.printf("list streams: %v", err)
		return
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].State.Bytes > infos[j].State.Bytes })
	for _, info := range infos {
		if info.State.Bytes < 1<<20 {
			continue
		}
		r.printf("  %-32s %9d msgs %6d MiB (limit %d MiB, dedup window %s, first seq %d)", info.Config.Name, info.State.Msgs,
			info.State.Bytes>>20, info.Config.MaxBytes>>20, info.Config.Duplicates, info.State.FirstSeq)
	}
}

// finish takes a heap profile, stops the process (SIGTERM), writes the report and checks the
// peak against the limit.
func (r *rssRun) finish(js jetstream.JetStream) {
	r.t.Helper()
	r.sizes(js)
	_, hwm, err := r.status()
	if err != nil {
		r.t.Fatalf("read /proc status: %v (did jetsuite exit? see %s)", err, r.log.Name())
	}
	if resp, err := http.Get("http://" + r.httpAddr + "/debug/pprof/heap"); err == nil {
		if f, err := os.Create(filepath.Join(r.out, r.t.Name()+".heap.pprof")); err == nil {
			_, _ = io.Copy(f, resp.Body)
			_ = f.Close()
		}
		_ = resp.Body.Close()
	}
	if resp, err := http.Get("http://" + r.httpAddr + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "go_memstats_heap_inuse_bytes ") || strings.HasPrefix(line, "go_memstats_sys_bytes ") ||
				strings.HasPrefix(line, "go_memstats_next_gc_bytes ") || strings.HasPrefix(line, "go_gc_gomemlimit_bytes ") {
				r.printf("%s", line)
			}
		}
	}
	limit := int64(rssEnvInt(r.t, "JETSUITE_RSS_LIMIT_MB", 500))
	r.printf("peak RSS (VmHWM) %d MiB = %.0f MB (limit %d MB), data directory %d MiB", hwm>>10, float64(hwm)*1024/1e6, limit, r.dataBytes()>>20)
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(time.Minute):
		r.t.Errorf("jetsuite did not stop within a minute of SIGTERM")
	}
	_ = os.WriteFile(filepath.Join(r.out, r.t.Name()+".txt"), []byte(r.report.String()), 0o644)
	if float64(hwm)*1024/1e6 > float64(limit) {
		r.t.Errorf("peak RSS %.0f MB is over %d MB (report in %s)", float64(hwm)*1024/1e6, limit, r.out)
	}
}

// TestPeakRSSClicks: peak RSS of `jetsuite all --generator=false` while 200,000 clicks go
// through at full speed (published as fast as JetStream acks them, then processed to the end).
func TestPeakRSSClicks(t *testing.T) {
	rssEnabled(t)
	clicks := rssEnvInt(t, "JETSUITE_RSS_CLICKS", 200_000)
	r := startRSSRun(t, "--generator=false")
	js := r.connect()
	for n := range 39 {
		u, _ := json.Marshal(generator.User(42, uint64(n)))
		publishJSON(t, js, topology.SubjectClickstreamUsers, "u"+strconv.Itoa(n), goldenT0, string(u))
	}
	for n := range 6 {
		c, _ := json.Marshal(generator.Code(42, uint64(n)))
		publishJSON(t, js, topology.SubjectClickstreamCodes, "c"+strconv.Itoa(n), goldenT0, string(c))
	}
	waitPublished(t, js)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() { defer close(sampled); r.sample(js, 2*time.Second, stop) }()
	start := time.Now()
	const chunk = 10_000
	for from := 0; from < clicks; from += chunk {
		publishFullSpeed(t, js, datagenClicks(from, min(chunk, clicks-from)))
	}
	waitPublishes(t, js)
	published := time.Since(start)
	deadline := time.Now().Add(15 * time.Minute)
	for {
		ok, why := r.settled(js)
		if ok && lastSeq(t, js, topology.StreamClickstream) >= uint64(clicks) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not processed within 15 minutes: %s", why)
		}
		time.Sleep(500 * time.Millisecond)
	}
	close(stop)
	<-sampled
	r.printf("%d clicks published in %s (%.0f/s), processed in %s (%.0f/s)", clicks, published.Round(time.Millisecond),
		float64(clicks)/published.Seconds(), time.Since(start).Round(time.Millisecond), float64(clicks)/time.Since(start).Seconds())
	r.finish(js)
}

// TestPeakRSSRate: peak RSS of `jetsuite all --rate 20000` over 5 minutes, sampled every 10 s.
func TestPeakRSSRate(t *testing.T) {
	rssEnabled(t)
	minutes := rssEnvInt(t, "JETSUITE_RSS_MINUTES", 5)
	rate := rssEnvInt(t, "JETSUITE_RSS_RATE", 20_000)
	r := startRSSRun(t, "--rate", strconv.Itoa(rate))
	js := r.connect()
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() { defer close(sampled); r.sample(js, 10*time.Second, stop) }()
	select {
	case <-time.After(time.Duration(minutes) * time.Minute):
	case <-r.done:
		t.Fatalf("jetsuite exited during the run; see %s", r.log.Name())
	}
	close(stop)
	<-sampled
	r.printf("%d minutes at --rate %d: %s", minutes, rate, r.lag(js))
	r.finish(js)
}

// Package scripts_test runs the load scripts as a user does: real k6 built with the
// extension, against no server, a NATS without jetsuite, and a real `jetsuite all` whose
// windower runs as a process of its own (so that a test can freeze it), and asserts k6's exit
// code and what its log and summary say.
package scripts_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jetsuite/jetsuite/loadtest/jetsuite"
	"github.com/jetsuite/jetsuite/shared/natsx"
)

var bins struct {
	once          sync.Once
	dir           string
	k6, jetsuite  string
	err           error
	buildDuration time.Duration
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		_ = os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

// binaries builds k6 with the extension and jetsuite once for every test of the package.
func binaries(t *testing.T) (k6, js string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: builds k6 and jetsuite and runs them")
	}
	bins.once.Do(func() {
		start := time.Now()
		if bins.dir, bins.err = os.MkdirTemp("", "k6-scripts-test"); bins.err != nil {
			return
		}
		bins.k6, bins.jetsuite = filepath.Join(bins.dir, "k6"), filepath.Join(bins.dir, "jetsuite")
		for _, b := range []struct{ dir, out, pkg string }{
			{"..", bins.k6, "./cmd/k6"},
			{"../..", bins.jetsuite, "./services/jetsuite"},
		} {
			cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
			cmd.Dir = b.dir
			if out, err := cmd.CombinedOutput(); err != nil {
				bins.err = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
		bins.buildDuration = time.Since(start)
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.k6, bins.jetsuite
}

// run is one k6 run: its exit code and its output, stdout and stderr in the order written.
type run struct {
	code int
	out  string
}

// k6 runs a script with env (KEY=value) on top of this process's environment; onLine sees
// each output line as it comes (a test freezes the windower on one).
func k6(t *testing.T, script string, env []string, onLine func(string)) run {
	t.Helper()
	bin, _ := binaries(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--no-color", script)
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			buf.WriteString(sc.Text() + "\n")
			if onLine != nil {
				onLine(sc.Text())
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	start := time.Now()
	err := cmd.Run()
	_ = pw.Close()
	<-done
	r := run{out: buf.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("k6 run %s: %v\n%s", script, err, r.out)
	}
	t.Logf("k6 run %s %v: exit %d in %v", script, env, r.code, time.Since(start).Round(time.Millisecond))
	if os.Getenv("K6_TEST_OUTPUT") != "" {
		t.Logf("output:\n%s", r.out)
	}
	return r
}

// expect fails the test unless the run exited with code and its output matches every pattern;
// the output is logged on failure.
func (r run) expect(t *testing.T, code int, patterns ...string) {
	t.Helper()
	ok := r.code == code
	if !ok {
		t.Errorf("exit code %d, want %d", r.code, code)
	}
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(r.out) {
			t.Errorf("output lacks %q", p)
			ok = false
		}
	}
	if !ok {
		t.Logf("output:\n%s", r.out)
	}
}

// number is the first group of pattern in the output, as a number.
func (r run) number(t *testing.T, pattern string) float64 {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("output lacks %q:\n%s", pattern, r.out)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// summary is the end-of-test summary: what follows the last THRESHOLDS header.
func (r run) summary() string {
	i := strings.LastIndex(r.out, "THRESHOLDS")
	if i < 0 {
		return ""
	}
	return r.out[i:]
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// A run that cannot connect fails at setup, saying why before the summary; the summary
// shows no tick: every threshold fails, 'rate==1' included (k6 passes it over no samples).
func TestNoServer(t *testing.T) {
	r := k6(t, "clickstream.js", []string{"NATS_URL=nats://127.0.0.1:" + freePort(t), "DURATION=5s"}, nil)
	r.expect(t, 107,
		`setup failed, no load will run: cannot connect to NATS at nats://127\.0\.0\.1:\d+ \(is jetsuite running\?`,
		`RUN FAILED: setup did not finish`,
		`✗ 'rate==1' fails=1 passes=0 rate=0`,
		`✗ 'p\(95\)<250' no samples`,
		`✗ 'count>0' count=0`)
	if s := r.summary(); strings.Contains(s, "✓") {
		t.Errorf("a tick in the summary of a run that did nothing:\n%s", s)
	}
	if i, j := strings.Index(r.out, "setup failed"), strings.Index(r.out, "RUN FAILED"); i < 0 || j < i {
		t.Errorf("the reason (at %d) does not come before the summary (at %d)", i, j)
	}
}

// A NATS server that is not jetsuite: nothing would ack, so setup refuses to start the load.
func TestNATSWithoutJetsuite(t *testing.T) {
	binaries(t)
	ns, err := natsx.StartEmbedded(natsx.EmbeddedOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	r := k6(t, "ratings.js", []string{"NATS_URL=" + ns.ClientURL(), "DURATION=5s"}, nil)
	r.expect(t, 107, `setup failed, no load will run: nats://127\.0\.0\.1:\d+ has no stream CLICKSTREAM, .*RATINGS.* of the plan`, `RUN FAILED`)
	if s := r.summary(); strings.Contains(s, "✓") {
		t.Errorf("a tick in the summary of a run that did nothing:\n%s", s)
	}
}

// `go tool task load` hands k6's exit code through with -x and prints it either way; without
// -x go-task exits 201 (the code of every failed task).
func TestTaskExitCode(t *testing.T) {
	binaries(t)
	env := append(os.Environ(), "NATS_URL=nats://127.0.0.1:"+freePort(t))
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"tool", "task", "-x", "load"}, 107},
		{[]string{"tool", "task", "load"}, 201},
	} {
		cmd := exec.CommandContext(t.Context(), "go", c.args...)
		cmd.Dir, cmd.Env = "../..", env
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != c.code {
			t.Errorf("go %s: %v, want exit %d\n%s", strings.Join(c.args, " "), err, c.code, out)
			continue
		}
		if !bytes.Contains(out, []byte("k6 exited with 107 (")) {
			t.Errorf("go %s does not print k6's code:\n%s", strings.Join(c.args, " "), out)
		}
	}
}

// jetsuiteAll is a running `jetsuite all` without its generator, whose windower runs as a
// process of its own.
type jetsuiteAll struct {
	url      string
	windower *exec.Cmd
}

func startJetsuite(t *testing.T) *jetsuiteAll {
	t.Helper()
	_, bin := binaries(t)
	dir := t.TempDir()
	port := freePort(t)
	url := "nats://127.0.0.1:" + port
	logf, err := os.Create(filepath.Join(dir, "jetsuite.log"))
	if err != nil {
		t.Fatal(err)
	}
	start := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, append(args, "--http-listen", "none")...)
		cmd.Env = append(os.Environ(), "NATS_URL=", "JETSUITE_NATS_URL=")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGCONT)
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
		return cmd
	}
	start("all", "--generator-enabled=false", "--windower-enabled=false", "--data-dir", filepath.Join(dir, "data"), "--nats-listen", "127.0.0.1:"+port)
	j := &jetsuiteAll{url: url}
	// Once NATS answers, the windower joins it as `jetsuite windower` does in the compose stack.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c, err := jetsuite.Dial(jetsuite.Options{URL: url, Timeout: 5 * time.Second})
		if err == nil {
			if j.windower == nil {
				j.windower = start("windower", "--nats-url", url)
			}
			_, err = c.CheckPipeline(t.Context())
			c.Close()
			if err == nil {
				return j
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("jetsuite not running after 2 minutes: %v\n%s", err, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// signal signals the windower (from k6's output reader too: no t.Fatal).
func (j *jetsuiteAll) signal(t *testing.T, s syscall.Signal) {
	t.Helper()
	if err := j.windower.Process.Signal(s); err != nil {
		t.Errorf("windower: %v: %v", s, err)
	}
}

// The runs against a real jetsuite, in order: one pipeline serves them all, the freezing
// of its windower comes last.
func TestAgainstJetsuite(t *testing.T) {
	j := startJetsuite(t)
	url := "NATS_URL=" + j.url

	// RATE is events per second: 2,000 clicks/s for 5 s are 10,000 clicks (not 2,000 batches
	// of 50); the load-phase rate says 2,000/s, where k6's counter rate, over the whole run,
	// says less. Total lag, catch-up time and marker latency are in the summary.
	t.Run("clickstream", func(t *testing.T) {
		// Latency thresholds far above what the run shows (ms), so that a busy machine does
		// not fail a test that is about rates.
		r := k6(t, "clickstream.js", []string{url, "RATE=2000", "BATCH=50", "DURATION=5s", "ACK_P95=2000", "E2E_P95=10000", "VUS=20"}, nil)
		r.expect(t, 0,
			`clicks: 2000 events/s \(RATE\) for 5s, in batches of 50 \(BATCH\): 40\.00 iterations/s`,
			`caught up: pipeline lag 0 on every consumer [0-9.]+ s after the load`,
			`✓ 'value>=1900' value=\d+`,
			`✓ 'count<=0' count=0`,
			`✓ 'rate==1' rate=100\.00%`,
			`jetsuite_e2e_latency\.+: avg=\S+ .* count=\d+`,
			`jetsuite_catchup\.+: avg=`,
			`jetsuite_pipeline_lag\.+: 0 +min=0 +max=\d+`)
		if n := r.number(t, `jetsuite_events_published\.+: (\d+)`); n < 9500 || n > 10100 {
			t.Errorf("published %v clicks, want 10,000 (2,000/s for 5 s)", n)
		}
		load := r.number(t, `jetsuite_load_events_per_s\.+: (\d+)`)
		whole := r.number(t, `jetsuite_events_published\.+: \d+ +([0-9.]+)/s`)
		if load < 1900 || load > 2100 || whole >= load {
			t.Errorf("load-phase rate %v/s (want 2,000), whole-run rate %v/s (want less)", load, whole)
		}
		if strings.Contains(r.summary(), "✗") {
			t.Errorf("a failed threshold:\n%s", r.summary())
		}
	})

	t.Run("ratings", func(t *testing.T) {
		r := k6(t, "ratings.js", []string{url, "RATE=100", "DURATION=3s"}, nil)
		r.expect(t, 0, `ratings: 100 events/s \(RATE\) for 3s, in batches of 20`, `caught up: pipeline lag 0`,
			`✓ 'count>0' count=3\d\d`)
	})

	// A rate k6 cannot keep with one VU publishing one click at a time: dropped iterations and
	// a load-phase rate far below RATE fail the run.
	t.Run("impossible rate", func(t *testing.T) {
		r := k6(t, "clickstream.js", []string{url, "RATE=1000000", "BATCH=1", "VUS=1", "MAX_VUS=1", "DURATION=2s"}, nil)
		r.expect(t, 99,
			`dropped_iterations\s+✗ 'count<=0' count=\d+`,
			`jetsuite_load_events_per_s\s+✗ 'value>=950000' value=\d+`,
			`thresholds on metrics '.*dropped_iterations.*' have been crossed`)
	})

	// The ramp finds the highest plateau the pipeline sustains: the windower is frozen once
	// 1,000 clicks/s is judged sustained, so 2,000 clicks/s falls behind.
	t.Run("ramp", func(t *testing.T) {
		var once sync.Once
		r := k6(t, "ramp.js", []string{url, "RAMP_LEVELS=500,1000,2000", "RAMP_PLATEAU=10", "RAMP_WINDOW=6", "LAG_GROWTH_S=3", "BATCH=20"},
			func(line string) {
				if strings.Contains(line, "ramp: sustained 1000 clicks/s") {
					once.Do(func() { j.signal(t, syscall.SIGSTOP) })
				}
				if strings.Contains(line, "ramp: stopped") {
					j.signal(t, syscall.SIGCONT)
				}
			})
		j.signal(t, syscall.SIGCONT)
		r.expect(t, 0,
			`ramp: sustained 500 clicks/s: published \d+/s, pipeline lag \d+ -> \d+, at most \d+ over the last 6 s \(bound 2500\)`,
			`ramp: highest sustained rate: 1000 clicks/s .*next: 2000 clicks/s: pipeline lag (\d+ > 10000|grew from)`,
			`jetsuite_sustained_events_per_s\s+✓ 'value>0' value=1000`)
	})

	// The windower frozen right after setup: the pipeline cannot catch up, the log says how
	// far behind (the total over the plan's consumers, and where), and the run fails.
	t.Run("cannot catch up", func(t *testing.T) {
		r := k6(t, "clickstream.js", []string{url, "RATE=1000", "DURATION=3s", "CATCHUP_TIMEOUT=3", "MARKER_TIMEOUT=2"},
			func(line string) {
				if strings.Contains(line, "the plan:") {
					j.signal(t, syscall.SIGSTOP)
				}
			})
		j.signal(t, syscall.SIGCONT)
		r.expect(t, 99,
			`NOT caught up within 3 s \(CATCHUP_TIMEOUT\): pipeline lag [1-9]\d*: windower-CLICKSTREAM(-p\d+)? [1-9]\d* on CLICKSTREAM`,
			`jetsuite_caught_up\s+✗ 'rate==1' rate=0\.00%`,
			`✗ pipeline caught up within 3 s`)
		if strings.Contains(r.out, "-1 s") {
			t.Error(`the log says "-1 s"`)
		}
		// The total is the sum of what the consumers lag, and the summary's last reading.
		m := regexp.MustCompile(`pipeline lag (\d+): (.*)" source`).FindStringSubmatch(r.out)
		if m == nil {
			t.Fatal("no lag line")
		}
		sum := 0
		for _, part := range regexp.MustCompile(`\S+ (\d+) on \S+`).FindAllStringSubmatch(m[2], -1) {
			n, _ := strconv.Atoi(part[1])
			sum += n
		}
		if strconv.Itoa(sum) != m[1] {
			t.Errorf("total %s, consumers add up to %d: %s", m[1], sum, m[2])
		}
		if last := r.number(t, `jetsuite_pipeline_lag\.+: (\d+)`); strconv.Itoa(int(last)) != m[1] {
			t.Errorf("summary's jetsuite_pipeline_lag %v, the log's total %s", last, m[1])
		}
	})
}

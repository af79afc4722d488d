package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jetsuite/jetsuite/console"
	"github.com/jetsuite/jetsuite/shared/natsx"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/testenv"
)

// The browser tests need Debian's chromium, node, and the console's npm packages (npm ci in
// console/web): CI installs them (.ci/run) and there a missing one fails the test; elsewhere
// the test says what is missing and skips.
func needBrowserTools(t *testing.T, needChromium bool) {
	t.Helper()
	var missing []string
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node (apt-get install nodejs)")
	}
	if needChromium {
		if _, err := os.Stat(chromium()); err != nil {
			missing = append(missing, chromium()+" (apt-get install chromium)")
		}
	}
	for _, pkg := range []string{"esbuild", "playwright-core", "uplot"} {
		if _, err := os.Stat(filepath.Join("web", "node_modules", pkg, "package.json")); err != nil {
			missing = append(missing, "web/node_modules/"+pkg+" (cd console/web && npm ci)")
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "missing: " + strings.Join(missing, ", ")
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func chromium() string {
	if p := os.Getenv("JETSUITE_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// lockedBuffer collects a process's output from two goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestConsoleInBrowser: a real `jetsuite all` (the binary, on a fresh data directory, with the
// generator at its default rates) and headless Chromium on its console (web/e2e/console.mjs):
// every panel of both dashboards shows data within 60 s of opening the page and is updated
// live; the pipeline graph shows every node of the demo plan with its numbers, and a node
// opened with the keyboard shows its statement and newest rows; a pull query returns rows and
// a push query keeps adding them; a dead letter published while the page is open appears with
// its reason; the page fits a phone's width in the dark theme; times are in the browser's
// zone; the page logs no errors. The screenshots go to JETSUITE_CONSOLE_SCREENSHOTS, else to a
// temporary folder (the README's: go tool task console:screenshots, which also lets jetsuite
// run for JETSUITE_CONSOLE_WARMUP first, so that the charts have minutes of data).
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the browser test runs jetsuite and Chromium for about a minute")
	}
	needBrowserTools(t, true)
	dir := t.TempDir()
	bin := filepath.Join(dir, "jetsuite")
	if out, err := exec.Command("go", "build", "-o", bin, "../services/jetsuite").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	natsAddr, httpAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	logs := &lockedBuffer{}
	js := exec.Command(bin, "all", "--data-dir", filepath.Join(dir, "data"), "--nats-listen", natsAddr, "--http-listen", httpAddr)
	js.Stdout, js.Stderr = logs, logs
	if err := js.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- js.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = js.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("jetsuite all did not stop cleanly: %v\n%s", err, tail(logs.String(), 20))
			}
		case <-time.After(60 * time.Second):
			_ = js.Process.Kill()
			t.Errorf("jetsuite all did not stop within 60 s of SIGTERM")
		}
	}
	defer stop()

	base := "http://" + httpAddr
	waitReady(t, base, 2*time.Minute, exited, logs)
	if w := os.Getenv("JETSUITE_CONSOLE_WARMUP"); w != "" {
		// For the README's pictures: a few minutes of data draw fuller charts.
		d, err := time.ParseDuration(w)
		if err != nil {
			t.Fatalf("JETSUITE_CONSOLE_WARMUP: %v", err)
		}
		t.Logf("warming up for %s", d)
		time.Sleep(d)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	nc, err := natsx.Connect(ctx, "nats://"+natsAddr, "console-test", nil)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	var ids []string
	for _, n := range console.GraphOf(demoPlan()).Nodes {
		ids = append(ids, n.ID)
	}
	nodes, _ := json.Marshal(ids)
	shots := os.Getenv("JETSUITE_CONSOLE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if shots, err = filepath.Abs(shots); err != nil {
		t.Fatal(err)
	}

	cctx, ccancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer ccancel()
	node := exec.CommandContext(cctx, "node", "e2e/console.mjs")
	node.Dir = "web"
	node.Env = append(os.Environ(), "BASE_URL="+base, "NODES="+string(nodes), "SHOTS="+shots, "CHROMIUM="+chromium())
	stdin, err := node.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := node.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuffer{}
	node.Stderr = stderr
	started := time.Now()
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	var out []string
	marker := "console-test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		out = append(out, line)
		t.Log(line)
		if line == "publish-dead-letter" {
			// Not JSON: the pipeline's reader of clickstream dead-letters it as not_json.
			if err := nc.Publish("clickstream", []byte("{not json "+marker)); err != nil {
				t.Error(err)
			}
			if err := nc.Flush(); err != nil {
				t.Error(err)
			}
			if _, err := io.WriteString(stdin, marker+"\n"); err != nil {
				t.Error(err)
			}
		}
	}
	err = node.Wait()
	t.Logf("browser checks took %s", time.Since(started).Truncate(time.Millisecond))
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("the browser checks failed (exit %d):\n%s\nstderr:\n%s\njetsuite log:\n%s", ee.ExitCode(), strings.Join(out, "\n"), tail(stderr.String(), 30), tail(logs.String(), 30))
		}
		t.Fatalf("node: %v", err)
	}
	// Every check printed its line; a script that stopped early cannot pass.
	passed := func(want string) bool {
		for _, line := range out {
			if strings.HasPrefix(line, "ok ") && strings.Contains(line, want) {
				return true
			}
		}
		return false
	}
	for _, want := range []string{"dashboard click-stream-analysis: 6 panels", "dashboard ratings-data: 6 panels", "updated live", "dashboard range: last 5 min",
		"browser's zone", "keyboard", "pipeline graph: all " + strconv.Itoa(len(ids)) + " nodes", "statement and newest rows",
		"generator: pause, resume, rate", "pull query", "push query: rows keep arriving", "dead letter shown with its reason", "phone width, dark", "no errors in the page"} {
		if !passed(want) {
			t.Errorf("no %q in the browser's output", want)
		}
	}
	for _, name := range []string{"click-stream-analysis", "ratings-data", "pipeline", "query", "dead-letters", "phone-dark"} {
		if st, err := os.Stat(filepath.Join(shots, "console-"+name+".png")); err != nil || st.Size() < 10_000 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
	nc.Close()
	stop()
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("jetsuite logged errors:\n%s", tail(logs.String(), 30))
	}
}

func demoPlan() *plan.Plan {
	p := plan.Demo()
	p.Fuse() // as `jetsuite all` runs it by default
	return p
}

// waitReady waits until /readyz answers 200.
func waitReady(t *testing.T, base string, within time.Duration, exited <-chan error, logs *lockedBuffer) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("jetsuite all exited: %v\n%s", err, tail(logs.String(), 30))
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("not ready after %s: %s\n%s", within, last, tail(logs.String(), 30))
}

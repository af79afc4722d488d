package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/slack-go/slack/slacktest"

	"github.com/jetsuite/jetsuite/shared/testenv"
)

// The parts of the chaos test that are not about data: the jetsuite binary run as real OS
// processes (killed with SIGKILL), a Slack Web API server, and readers of streams and consumers.

// buildJetsuite compiles this package's binary once into dir.
func buildJetsuite(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "jetsuite")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// chaosEnv is the environment of every service process: the inherited one without jetsuite's
// own settings (a developer's shell must not change the test), plus the given ones.
func chaosEnv(extra map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "NATS_URL", strings.HasPrefix(name, "JETSUITE_"), strings.HasPrefix(name, "SLACK_"),
			strings.HasPrefix(name, "CDC_"), strings.HasPrefix(name, "ENRICHER_"), strings.HasPrefix(name, "ALERTING_"):
			continue
		}
		env = append(env, kv)
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// proc is one service run as `jetsuite <service>`, restarted after each kill. Its output (every
// incarnation's, each introduced by a line) goes to a file.
type proc struct {
	t       *testing.T
	name    string // the instance: the service's name, with "-<n>" for a second one and on
	service string // what it runs: `jetsuite <service>`
	bin     string
	env     []string
	logPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	logFile *os.File
	starts  int
	kills   int
	since   int64     // offset in the log where the current incarnation's output begins
	started time.Time // when the current incarnation started
	exits   []string  // exits nobody asked for
}

func newProc(t *testing.T, bin, name, dir string, env []string) *proc {
	service, _, _ := strings.Cut(name, "-")
	p := &proc{t: t, name: name, service: service, bin: bin, env: env, logPath: filepath.Join(dir, name+".log")}
	f, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.logFile = f
	t.Cleanup(func() {
		p.kill()
		_ = f.Close()
	})
	return p
}

// start starts a new incarnation.
func (p *proc) start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starts++
	if st, err := p.logFile.Stat(); err == nil {
		p.since = st.Size()
	}
	p.started = time.Now()
	fmt.Fprintf(p.logFile, "=== chaos: start #%d of %s at %s\n", p.starts, p.name, time.Now().Format(time.TimeOnly+".000"))
	cmd := exec.Command(p.bin, p.service)
	// Each incarnation is an instance of its own (shared/lease), named so that a test can
	// tell whose the leases are.
	cmd.Env = append(append([]string(nil), p.env...), "JETSUITE_INSTANCE="+p.instanceLocked())
	dieWithTest(cmd)
	cmd.Stdout, cmd.Stderr = p.logFile, p.logFile
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(done)
	}()
}

// instance is the current incarnation's instance name: "<name>-<start>".
func (p *proc) instance() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.instanceLocked()
}

func (p *proc) instanceLocked() string { return p.name + "-" + strconv.Itoa(p.starts) }

// kill sends SIGKILL to the running incarnation (if any) and waits until it is gone.
func (p *proc) kill() (pid int) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return 0
	}
	_ = cmd.Process.Kill()
	<-done
	p.mu.Lock()
	p.kills++
	fmt.Fprintf(p.logFile, "=== chaos: SIGKILL pid %d at %s\n", cmd.Process.Pid, time.Now().Format(time.TimeOnly+".000"))
	p.mu.Unlock()
	return cmd.Process.Pid
}

// exitedOnItsOwn reports (once) an incarnation that ended without being killed.
func (p *proc) exitedOnItsOwn() (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return "", false
	}
	select {
	case <-p.done:
	default:
		return "", false
	}
	msg := fmt.Sprintf("%s (pid %d) exited on its own: %v", p.name, p.cmd.Process.Pid, p.waitErr)
	p.exits = append(p.exits, msg)
	p.cmd = nil
	return msg, true
}

func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// up reports whether the current incarnation is up: its output since its start contains
// marker (a line the service logs once it consumes), or, should the service log otherwise,
// it has been running for 3 s.
func (p *proc) up(marker string) bool {
	p.mu.Lock()
	since, started, alive := p.since, p.started, p.cmd != nil
	p.mu.Unlock()
	if !alive {
		return false
	}
	if time.Since(started) > 3*time.Second {
		return true
	}
	b, err := os.ReadFile(p.logPath)
	if err != nil || int64(len(b)) < since {
		return false
	}
	return strings.Contains(string(b[since:]), marker)
}

func (p *proc) startedAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	return tail(string(b), n)
}

// count returns how many log lines contain s.
func (p *proc) count(s string) int {
	b, _ := os.ReadFile(p.logPath)
	return strings.Count(string(b), s)
}

// chaosSlack is slack-go's slacktest server answering chat.postMessage (recording each post's
// alert ids from its message metadata and when the request arrived, in arrival order; the
// latency benchmark reads the arrival times) and conversations.history (the alerter
// reads it after a crash to find posts whose "sent" record it did not write), both like Slack.
type chaosSlack struct {
	srv     *slacktest.Server
	channel string

	mu    sync.Mutex
	posts []chaosPost
}

type chaosPost struct {
	ids  []string
	ts   string
	text string
	// at is when the handler was called: the request has arrived, its body is not yet parsed.
	at time.Time
}

func newChaosSlack(t testing.TB, channel string) *chaosSlack {
	s := &chaosSlack{channel: channel}
	s.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", s.postMessage)
		c.Handle("/conversations.history", s.history)
	})
	s.srv.Start()
	t.Cleanup(s.srv.Stop)
	return s
}

func (s *chaosSlack) postMessage(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var md struct {
		EventType    string `json:"event_type"`
		EventPayload struct {
			IDs []string `json:"alert_ids"`
		} `json:"event_payload"`
	}
	_ = json.Unmarshal([]byte(r.Form.Get("metadata")), &md)
	s.mu.Lock()
	p := chaosPost{ids: md.EventPayload.IDs, text: r.Form.Get("text"), at: at, ts: fmt.Sprintf("%d.%06d", time.Now().Unix(), len(s.posts)+1)}
	s.posts = append(s.posts, p)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": s.channel, "ts": p.ts,
		"message": map[string]any{"type": "message", "text": p.text, "ts": p.ts}})
}

func (s *chaosSlack) history(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	w.Header().Set("Content-Type", "application/json")
	if r.Form.Get("channel") != s.channel {
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "channel_not_found"})
		return
	}
	oldest, _ := strconv.ParseFloat(r.Form.Get("oldest"), 64)
	withMeta := r.Form.Get("include_all_metadata") == "1"
	s.mu.Lock()
	var msgs []map[string]any
	for i := len(s.posts) - 1; i >= 0; i-- { // newest first, like Slack
		p := s.posts[i]
		if ts, _ := strconv.ParseFloat(p.ts, 64); ts < oldest {
			continue
		}
		m := map[string]any{"type": "message", "text": p.text, "ts": p.ts}
		if withMeta && len(p.ids) > 0 {
			m["metadata"] = map[string]any{"event_type": "jetsuite_alert", "event_payload": map[string]any{"alert_ids": p.ids}}
		}
		msgs = append(msgs, m)
	}
	s.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "messages": msgs, "has_more": false})
}

func (s *chaosSlack) snapshot() []chaosPost {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]chaosPost(nil), s.posts...)
}

func (s *chaosSlack) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.posts)
}

// readAll reads every message of a stream in order with an ordered consumer. A read that
// fails while ctx lasts is started again (on a cluster just after a node restart, a request
// may find no responder for a moment).
func readAll(ctx context.Context, js jetstream.JetStream, stream string) ([]jetstream.Msg, error) {
	for {
		out, err := readAllOnce(ctx, js, stream)
		if err == nil || ctx.Err() != nil {
			return out, err
		}
		select {
		case <-ctx.Done():
			return out, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func readAllOnce(ctx context.Context, js jetstream.JetStream, stream string) ([]jetstream.Msg, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	last := info.State.LastSeq
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	var out []jetstream.Msg
	for {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return out, err
		}
		for m := range batch.Messages() {
			out = append(out, m)
			if md, err := m.Metadata(); err == nil && md.Sequence.Stream >= last {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil && ctx.Err() == nil {
			return out, fmt.Errorf("read %s: %w", stream, err)
		}
	}
}

// consumerState is one consumer's progress, for the settle condition and its failure message.
type consumerState struct {
	stream, name             string
	ackPending, pending      uint64
	redelivered              int
	ackFloor, delivered, end uint64
}

func (c consumerState) String() string {
	return fmt.Sprintf("%s/%s: ack pending %d, redelivered %d, not yet delivered %d, ack floor %d, delivered %d, stream last seq %d",
		c.stream, c.name, c.ackPending, c.redelivered, c.pending, c.ackFloor, c.delivered, c.end)
}

// consumerStates lists every consumer of the given streams.
func consumerStates(ctx context.Context, js jetstream.JetStream, streams []string) ([]consumerState, error) {
	var out []consumerState
	for _, name := range streams {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return nil, err
		}
		l := s.ListConsumers(ctx)
		for ci := range l.Info() {
			out = append(out, consumerState{stream: name, name: ci.Name, ackPending: uint64(ci.NumAckPending),
				pending: ci.NumPending, redelivered: ci.NumRedelivered, ackFloor: ci.AckFloor.Stream,
				delivered: ci.Delivered.Stream, end: info.State.LastSeq})
		}
		if err := l.Err(); err != nil {
			return nil, fmt.Errorf("consumers of %s: %w", name, err)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].stream+"/"+out[i].name < out[j].stream+"/"+out[j].name })
	return out, nil
}

// sourceSeq parses the Nats-Msg-Id of a derived message, "<output>:<source stream>:<seq>".
func sourceSeq(id, source string) (uint64, bool) {
	parts := strings.Split(id, ":")
	if len(parts) < 2 || parts[len(parts)-2] != source {
		return 0, false
	}
	seq, err := strconv.ParseUint(parts[len(parts)-1], 10, 64)
	return seq, err == nil
}

// compareSequence checks that got (what an output holds, in its order) is exactly want (each
// item once, same order) and describes the differences: counts, missing, duplicated and
// unexpected items, and the first place where an item comes after a later one.
func compareSequence(what string, got, want []uint64, label func(uint64) string) []string {
	if label == nil {
		label = func(v uint64) string { return strconv.FormatUint(v, 10) }
	}
	wantPos := make(map[uint64]int, len(want))
	for i, v := range want {
		wantPos[v] = i
	}
	seen := make(map[uint64]int, len(got))
	var dups, extra []string
	for _, v := range got {
		seen[v]++
		if _, ok := wantPos[v]; !ok {
			extra = append(extra, label(v))
		} else if seen[v] == 2 {
			dups = append(dups, label(v))
		}
	}
	var missing []string
	for _, v := range want {
		if seen[v] == 0 {
			missing = append(missing, label(v))
		}
	}
	var problems []string
	if len(got) != len(want) || len(missing) > 0 || len(dups) > 0 || len(extra) > 0 {
		problems = append(problems, fmt.Sprintf("%s holds %d items, want %d: %d missing %v, %d duplicated %v, %d unexpected %v",
			what, len(got), len(want), len(missing), head(missing, 5), len(dups), head(dups, 5), len(extra), head(extra, 5)))
	}
	// Order: the positions (in want) of the items, in output order, must only increase.
	inversions, first := 0, ""
	maxPos, maxAt := -1, -1
	for i, v := range got {
		p, ok := wantPos[v]
		if !ok {
			continue
		}
		if p < maxPos {
			inversions++
			if first == "" {
				first = fmt.Sprintf("output #%d is %s (input #%d) but output #%d already was %s (input #%d)",
					i+1, label(v), p+1, maxAt+1, label(want[maxPos]), maxPos+1)
			}
			continue
		}
		maxPos, maxAt = p, i
	}
	if inversions > 0 {
		problems = append(problems, fmt.Sprintf("%s is out of input order: %d items come after a later input; first: %s", what, inversions, first))
	}
	return problems
}

func head(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "...")
	}
	return s
}

// keepLogs copies a failed test's logs (name in the copy -> file) into testenv's log folder
// (JETSUITE_TEST_LOGS/<test>/), so that a failure in CI or in a loop of runs can be read after
// the test's temporary folder is gone. Nothing happens when the test passed or no folder is set.
func keepLogs(t *testing.T, files map[string]string) {
	dir := os.Getenv(testenv.Logs)
	if !t.Failed() || dir == "" {
		return
	}
	dir = filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("logs not kept: %v", err)
		return
	}
	for name, src := range files {
		data, err := os.ReadFile(src)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), data, 0o644)
		}
		if err != nil {
			t.Logf("log %s not kept: %v", name, err)
		}
	}
	t.Logf("logs kept in %s", dir)
}

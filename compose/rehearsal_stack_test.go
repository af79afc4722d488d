package compose

// The machinery of the rehearsal (rehearsal_test.go): the compose file's services as native
// processes on loopback, started in depends_on order, watched by their healthchecks, restarted
// by their restart policy, stopped as `docker compose down` stops them.

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// healthcheck is a compose healthcheck as written.
type healthcheck struct {
	Test        strList `yaml:"test"`
	Interval    string  `yaml:"interval"`
	Timeout     string  `yaml:"timeout"`
	Retries     int     `yaml:"retries"`
	StartPeriod string  `yaml:"start_period"`
}

// durationOr parses a compose duration ("10s", "1m30s"), or returns def when it is empty.
func durationOr(s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return def
	}
	return d
}

// --- the log -------------------------------------------------------------------------------

// rehearsal is one run of the stack: its clock, its log, its components.
type rehearsal struct {
	t   *testing.T
	t0  time.Time
	dir string
	ctx context.Context
	wg  sync.WaitGroup

	comps map[string]*component
	order []string // names in the compose file's order (sorted)
	rw    *rewriter

	logMu   sync.Mutex
	logFile *os.File // a copy of the log (testenv's JETSUITE_TEST_LOGS/rehearsal.log), or nil
}

func (r *rehearsal) since() string { return fmt.Sprintf("+%.1fs", time.Since(r.t0).Seconds()) }

// logf writes one line of the rehearsal's log, stamped with the time since `compose up`.
func (r *rehearsal) logf(format string, args ...any) {
	if r.ctx.Err() != nil {
		return // the test is over: testing.T must not be used any more
	}
	line := fmt.Sprintf("[rehearsal %7s] %s", r.since(), fmt.Sprintf(format, args...))
	r.t.Log(line)
	r.logMu.Lock()
	defer r.logMu.Unlock()
	if r.logFile != nil {
		fmt.Fprintln(r.logFile, line)
	}
}

// --- the rewrite table -----------------------------------------------------------------------

// rule replaces a container address (host:port, as other containers reach it, or as a
// container reaches itself) or a container path with its native counterpart.
type rule struct {
	from, to, why string
	path          bool // a path prefix rather than a host:port token
}

// rewriter holds the rewrite table: rules every service uses (other services' addresses) and
// rules local to one service (its own listen addresses and volumes).
type rewriter struct {
	mu     sync.Mutex
	global []rule
	local  map[string][]rule
}

func newRewriter() *rewriter { return &rewriter{local: map[string][]rule{}} }

func (rw *rewriter) addGlobal(from, to, why string) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	rw.global = append(rw.global, rule{from: from, to: to, why: why})
}

func (rw *rewriter) addLocal(service, from, to, why string) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	rw.local[service] = append(rw.local[service], rule{from: from, to: to, why: why})
}

func (rw *rewriter) addPath(service, from, to, why string) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	rw.local[service] = append(rw.local[service], rule{from: from, to: to, why: why, path: true})
}

// lookup returns the native address of a compose address (service:port).
func (rw *rewriter) lookup(addr string) (string, bool) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	for _, r := range rw.global {
		if r.from == addr {
			return r.to, true
		}
	}
	return "", false
}

// apply rewrites s as seen from inside service: its own rules first, then the global ones.
func (rw *rewriter) apply(service, s string) string {
	rw.mu.Lock()
	rules := append(append([]rule(nil), rw.local[service]...), rw.global...)
	rw.mu.Unlock()
	for _, r := range rules {
		if r.path {
			if s == r.from || strings.HasPrefix(s, r.from+"/") {
				s = r.to + s[len(r.from):]
			}
			continue
		}
		s = replaceAddr(s, r.from, r.to)
	}
	return s
}

// replaceAddr replaces every occurrence of the host:port token from in s: not inside a longer
// host name before it, nor followed by another digit of a longer port.
func replaceAddr(s, from, to string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, from)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(from)
		before := i == 0 || !isHostByte(s[i-1])
		after := end == len(s) || s[end] < '0' || s[end] > '9'
		if before && after {
			b.WriteString(s[:i])
			b.WriteString(to)
		} else {
			b.WriteString(s[:end])
		}
		s = s[end:]
	}
}

func isHostByte(c byte) bool {
	return c == '-' || c == '.' || c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// print logs the table: the addresses every service uses, then each service's own (its
// listen addresses as it binds them and as its healthcheck reaches them) and its volumes.
func (rw *rewriter) print(r *rehearsal) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	var b strings.Builder
	b.WriteString("rewrite table (container address or path -> native):\n")
	for _, x := range rw.global {
		fmt.Fprintf(&b, "    %-22s -> %-22s %s\n", x.from, x.to, x.why)
	}
	services := make([]string, 0, len(rw.local))
	for s := range rw.local {
		services = append(services, s)
	}
	sort.Strings(services)
	for _, s := range services {
		var froms []string
		var to string
		flush := func() {
			if len(froms) > 0 {
				fmt.Fprintf(&b, "    inside %s: %s -> %s\n", s, strings.Join(froms, ", "), to)
			}
			froms = nil
		}
		for _, x := range rw.local[s] {
			if x.path {
				flush()
				fmt.Fprintf(&b, "    inside %s: %s -> %s (%s)\n", s, x.from, x.to, x.why)
				continue
			}
			if x.to != to {
				flush()
				to = x.to
			}
			froms = append(froms, x.from)
		}
		flush()
	}
	r.logf("%s", strings.TrimRight(b.String(), "\n"))
}

// --- interpolation -------------------------------------------------------------------------

// interpolate resolves ${VAR}, ${VAR:-default}, ${VAR-default}, $VAR and $$ as compose does,
// with vars as the shell's environment or compose/.env.
func interpolate(v string, vars map[string]string) string {
	return interpolation.ReplaceAllStringFunc(v, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := interpolation.FindStringSubmatch(m)
		name := sub[1]
		if name == "" {
			name = sub[4]
		}
		val, set := vars[name]
		switch sub[2] {
		case ":-":
			if val == "" {
				return sub[3]
			}
		case "-":
			if !set {
				return sub[3]
			}
		}
		return val
	})
}

// secretName reports whether an environment variable holds a secret (never logged).
func secretName(name string) bool {
	for _, w := range []string{"TOKEN", "PASSWORD", "SECRET", "PASSWD"} {
		if strings.Contains(strings.ToUpper(name), w) {
			return true
		}
	}
	return false
}

// showEnv renders an environment for the log, secrets hidden.
func showEnv(env []string) string {
	var out []string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if k == "PATH" {
			continue
		}
		if secretName(k) && v != "" {
			v = "(set, hidden)"
		}
		out = append(out, k+"="+v)
	}
	return strings.Join(out, " ")
}

// --- processes and the restart policy --------------------------------------------------------

// process is a component's native process, restarted on exit as `restart: unless-stopped`
// restarts a container (Docker: 100 ms, doubling to at most a minute, back to 100 ms after
// 10 s of running).
type process struct {
	r       *rehearsal
	name    string
	path    string
	args    []string
	env     []string
	dir     string
	logPath string
	restart bool

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current incarnation has exited
	stopping bool
	starts   int
	exits    []string // exits that nobody asked for: "exit status 1 after 3.2s"
	lastExit *os.ProcessState
}

func (p *process) launch() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.launchLocked()
}

func (p *process) launchLocked() error {
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.starts++
	fmt.Fprintf(f, "=== rehearsal: start #%d of %s at %s\n", p.starts, p.name, time.Now().Format(time.TimeOnly+".000"))
	cmd := exec.Command(p.path, p.args...)
	cmd.Dir, cmd.Env = p.dir, p.env
	cmd.Stdout, cmd.Stderr = f, f
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	started := time.Now()
	p.r.wg.Add(1)
	go func() {
		defer p.r.wg.Done()
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.lastExit = cmd.ProcessState
		close(done)
		if p.stopping || p.r.ctx.Err() != nil {
			p.mu.Unlock()
			return
		}
		ran := time.Since(started)
		what := fmt.Sprintf("%v after %s", err, ran.Truncate(100*time.Millisecond))
		if err == nil {
			what = fmt.Sprintf("exit status 0 after %s", ran.Truncate(100*time.Millisecond))
		}
		p.exits = append(p.exits, what)
		n := len(p.exits)
		p.mu.Unlock()
		p.r.logf("%s exited on its own (%s); last lines of %s:\n%s", p.name, what, p.logPath, tailFile(p.logPath, 40))
		if !p.restart {
			return
		}
		delay := 100 * time.Millisecond
		if ran < 10*time.Second {
			delay = min(100*time.Millisecond<<min(n-1, 10), time.Minute)
		}
		select {
		case <-p.r.ctx.Done():
			return
		case <-time.After(delay):
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.stopping {
			return
		}
		if err := p.launchLocked(); err != nil {
			p.r.logf("%s: restart failed: %v", p.name, err)
			return
		}
		p.r.logf("%s restarted by its restart policy (unless-stopped) after %s", p.name, delay)
	}()
	return nil
}

// stop sends SIGTERM, waits up to grace and then SIGKILLs, as `docker compose stop` does. It
// reports whether the process ended within the grace period, and its exit state.
func (p *process) stop(grace time.Duration) (graceful bool, state *os.ProcessState) {
	p.mu.Lock()
	p.stopping = true
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return true, nil
	}
	select {
	case <-done:
	default:
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(grace):
			_ = cmd.Process.Kill()
			<-done
			p.mu.Lock()
			defer p.mu.Unlock()
			return false, p.lastExit
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return true, p.lastExit
}

// unexpectedExits lists the exits nobody asked for.
func (p *process) unexpectedExits() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.exits...)
}

func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// logFindings summarises a process log: how many warning and error lines, and the distinct
// messages among them (jetsuite's msg= of level=WARN/ERROR lines; Java's WARN/ERROR lines
// without timestamp and thread), at most max of them.
func logFindings(path string, max int) (warn, errs int, distinct []string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, []string{err.Error()}
	}
	seen := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		var level, msg string
		switch {
		case strings.Contains(l, "level=WARN"), strings.Contains(l, "level=ERROR"):
			level = "WARN"
			if strings.Contains(l, "level=ERROR") {
				level = "ERROR"
			}
			msg = l
			if i := strings.Index(l, "msg="); i >= 0 {
				msg = logNoise.ReplaceAllString(l[i+4:], "")
			}
		case javaLevel.MatchString(l):
			m := javaLevel.FindStringSubmatch(l)
			level, msg = m[1], m[2]+" "+m[3]
		default:
			continue
		}
		if level == "WARN" {
			warn++
		} else {
			errs++
		}
		msg = level + " " + msg
		if len(msg) > 220 {
			msg = msg[:220] + "..."
		}
		if !seen[msg] && len(distinct) < max {
			seen[msg] = true
			distinct = append(distinct, msg)
		}
	}
	return warn, errs, distinct
}

// logNoise are the attributes of a jetsuite log line that say who, not what.
var logNoise = regexp.MustCompile(` (service|group|instance)=\S+`)

// javaLevel matches a Quarkus/JBoss log line: "2026-12-02 08:30:32,728 WARN  [category] (thread) message".
var javaLevel = regexp.MustCompile(`^\S+ \S+ (WARN|ERROR)\s+\[([^\]]*)\] \([^)]*\) (.*)$`)

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 400 {
			lines[i] = l[:400] + "..."
		}
		lines[i] = "      | " + lines[i]
	}
	return strings.Join(lines, "\n")
}

// --- components ------------------------------------------------------------------------------

// probe is a healthcheck run natively.
type probe struct {
	compose string // the test as the compose file writes it
	native  string // what the rehearsal runs instead
	run     func(ctx context.Context) error

	interval, timeout, startPeriod time.Duration
	retries                        int
}

// Docker's start interval (engine 25+): probes during the start period come this often.
const startInterval = 5 * time.Second

func newProbe(hc *healthcheck, native string, run func(context.Context) error) *probe {
	retries := hc.Retries
	if retries == 0 {
		retries = 3
	}
	return &probe{
		compose: strings.Join(hc.Test, " "), native: native, run: run,
		interval: durationOr(hc.Interval, 30*time.Second), timeout: durationOr(hc.Timeout, 30*time.Second),
		startPeriod: durationOr(hc.StartPeriod, 0), retries: retries,
	}
}

// component is one service of the compose file as the rehearsal runs it.
type component struct {
	name  string
	svc   service
	how   string       // how it runs natively, for the log
	start func() error // launches it
	probe *probe       // its healthcheck; nil: none
	proc  *process     // its process, if the rehearsal runs one

	mu         sync.Mutex
	startedAt  time.Time
	healthyAt  time.Time
	started    chan struct{}
	healthy    chan struct{} // closed when first healthy
	failed     chan struct{} // closed when it could not start or turned unhealthy before being healthy
	failure    error
	state      string // created, starting, healthy, unhealthy, stopped
	paused     bool   // stopped on purpose: not probed
	probeFails int
}

func newComponent(name string, svc service) *component {
	return &component{name: name, svc: svc, started: make(chan struct{}), healthy: make(chan struct{}), failed: make(chan struct{}), state: "created"}
}

func (c *component) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failure == nil {
		c.failure = err
		close(c.failed)
	}
}

func (c *component) status() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// up starts every component as soon as its depends_on conditions hold, and returns once all
// have started and those with a healthcheck are healthy, or one has failed, or within passed.
func (r *rehearsal) up(within time.Duration) error {
	for _, name := range r.order {
		c := r.comps[name]
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.run(c) }()
	}
	deadline := time.After(within)
	for _, name := range r.order {
		c := r.comps[name]
		ready := c.started
		if c.probe != nil {
			ready = c.healthy
		}
		select {
		case <-ready:
		case <-c.failed:
			return fmt.Errorf("%s: %w", c.name, c.failure)
		case <-deadline:
			return fmt.Errorf("%s is not up after %s (state %s)", name, within, c.status())
		case <-r.ctx.Done():
			return r.ctx.Err()
		}
	}
	return nil
}

func (r *rehearsal) run(c *component) {
	deps := make([]string, 0, len(c.svc.DependsOn))
	for d := range c.svc.DependsOn {
		deps = append(deps, d)
	}
	sort.Strings(deps)
	for _, dep := range deps {
		cond := c.svc.DependsOn[dep]
		d := r.comps[dep]
		if d == nil {
			c.fail(fmt.Errorf("depends on %s, which the rehearsal does not run", dep))
			return
		}
		var wait <-chan struct{}
		switch cond {
		case "service_healthy":
			wait = d.healthy
		case "service_started":
			wait = d.started
		default:
			c.fail(fmt.Errorf("depends_on %s: condition %q is not rehearsed", dep, cond))
			return
		}
		select {
		case <-wait:
		case <-d.failed:
			c.fail(fmt.Errorf("dependency %s failed to start: %v", dep, d.failure))
			r.logf("%s not started: dependency %s failed", c.name, dep)
			return
		case <-r.ctx.Done():
			return
		}
	}
	c.mu.Lock()
	c.startedAt = time.Now()
	c.state = "starting"
	c.mu.Unlock()
	if err := c.start(); err != nil {
		c.fail(err)
		r.logf("%s did not start: %v", c.name, err)
		return
	}
	pid := ""
	if c.proc != nil {
		pid = fmt.Sprintf(" pid %d,", c.proc.pid())
	}
	if len(deps) > 0 {
		var conds []string
		for _, d := range deps {
			conds = append(conds, d+" "+strings.TrimPrefix(c.svc.DependsOn[d], "service_"))
		}
		r.logf("%s started (%s;%s after %s)", c.name, c.how, pid, strings.Join(conds, ", "))
	} else {
		r.logf("%s started (%s;%s no depends_on)", c.name, c.how, pid)
	}
	close(c.started)
	if c.probe == nil {
		c.mu.Lock()
		c.state = "running"
		c.mu.Unlock()
		return
	}
	r.watch(c)
}

// watch runs c's healthcheck as Docker does: every start interval during the start period
// (failures there do not count), every interval after it; healthy on the first success,
// unhealthy after retries consecutive failures.
func (r *rehearsal) watch(c *component) {
	p := c.probe
	first := true
	for {
		c.mu.Lock()
		inStart := time.Since(c.startedAt) < p.startPeriod
		c.mu.Unlock()
		wait := p.interval
		if inStart {
			wait = min(startInterval, p.interval)
		}
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(wait):
		}
		c.mu.Lock()
		paused := c.paused
		c.mu.Unlock()
		if paused {
			continue
		}
		ctx, cancel := context.WithTimeout(r.ctx, p.timeout)
		err := p.run(ctx)
		cancel()
		if r.ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		if c.paused {
			c.mu.Unlock()
			continue
		}
		inStart = time.Since(c.startedAt) < p.startPeriod
		switch {
		case err == nil:
			c.probeFails = 0
			if c.state != "healthy" {
				prev := c.state
				c.state = "healthy"
				if c.healthyAt.IsZero() {
					c.healthyAt = time.Now()
					close(c.healthy)
					c.mu.Unlock()
					r.logf("%s healthy, %.1fs after its start (%s)", c.name, c.healthyAt.Sub(c.startedAt).Seconds(), p.native)
					c.mu.Lock()
				} else {
					c.mu.Unlock()
					r.logf("%s healthy again (was %s)", c.name, prev)
					c.mu.Lock()
				}
			}
		case inStart && c.state != "healthy":
			if first {
				c.mu.Unlock()
				r.logf("%s: healthcheck not passing yet (start period %s): %v", c.name, p.startPeriod, err)
				c.mu.Lock()
			}
		default:
			c.probeFails++
			if c.probeFails >= p.retries && c.state != "unhealthy" {
				c.state = "unhealthy"
				neverHealthy := c.healthyAt.IsZero()
				c.mu.Unlock()
				r.logf("%s UNHEALTHY after %d failed checks: %v", c.name, p.retries, err)
				if neverHealthy {
					c.fail(fmt.Errorf("unhealthy: %v", err))
				}
				c.mu.Lock()
			}
		}
		c.mu.Unlock()
		first = false
	}
}

// pause marks c as stopped on purpose (no probes, state stopped); resume undoes it.
func (c *component) pause() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused, c.state = true, "stopped"
}

func (c *component) resume() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused, c.state, c.probeFails = false, "starting", 0
}

// waitState waits until c's healthcheck says state.
func (c *component) waitState(ctx context.Context, state string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for c.status() != state {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is %s, not %s, after %s", c.name, c.status(), state, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// summary is the table of components for the end of the log.
func (r *rehearsal) summary(skipped map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-14s %-9s %-9s %-10s %-9s %s\n", "component", "started", "healthy", "state", "restarts", "how")
	for _, name := range r.order {
		c := r.comps[name]
		c.mu.Lock()
		started, healthy := "-", "-"
		if !c.startedAt.IsZero() {
			started = fmt.Sprintf("+%.1fs", c.startedAt.Sub(r.t0).Seconds())
		}
		switch {
		case c.probe == nil:
			healthy = "(none)"
		case !c.healthyAt.IsZero():
			healthy = fmt.Sprintf("+%.1fs", c.healthyAt.Sub(r.t0).Seconds())
		}
		state := c.state
		c.mu.Unlock()
		restarts := "-"
		if c.proc != nil {
			restarts = strconv.Itoa(len(c.proc.unexpectedExits()))
		}
		fmt.Fprintf(&b, "%-14s %-9s %-9s %-10s %-9s %s\n", name, started, healthy, state, restarts, c.how)
	}
	names := make([]string, 0, len(skipped))
	for n := range skipped {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "%-14s %-9s %-9s %-10s %-9s %s\n", n, "-", "-", "not run", "-", skipped[n])
	}
	return strings.TrimRight(b.String(), "\n")
}

// --- healthcheck translation -----------------------------------------------------------------

var urlInTest = regexp.MustCompile(`https?://[^\s'"]+`)

// nativeProbe turns service name's healthcheck into something that runs here: an HTTP GET of
// the (rewritten) URL for wget and curl checks (success: a 2xx answer, as `wget -q` and
// `curl -f` judge it), else the command itself through sh with the container's environment
// plus extraEnv. Commands that do not exist here are the caller's to translate.
func (r *rehearsal) nativeProbe(name string, hc *healthcheck, env []string) (*probe, error) {
	if hc == nil || len(hc.Test) == 0 {
		return nil, nil
	}
	kind, args := hc.Test[0], hc.Test[1:]
	var cmdline string
	switch kind {
	case "CMD":
		cmdline = strings.Join(args, " ")
	case "CMD-SHELL":
		cmdline = strings.Join(args, " ")
	case "NONE":
		return nil, nil
	default:
		return nil, fmt.Errorf("healthcheck test %v: unknown form", hc.Test)
	}
	cmdline = interpolate(cmdline, nil) // $$ -> $ (a variable for the container's shell)
	tool := strings.Fields(cmdline)[0]
	if tool == "wget" || tool == "curl" {
		u := urlInTest.FindString(cmdline)
		if u == "" {
			return nil, fmt.Errorf("healthcheck %q: no URL", cmdline)
		}
		native := r.rw.apply(name, u)
		return newProbe(hc, "GET "+native, func(ctx context.Context) error { return httpOK(ctx, native) }), nil
	}
	shell := r.rw.apply(name, cmdline)
	return newProbe(hc, "sh -c "+strconv.Quote(shell), func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, "sh", "-c", shell)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	}), nil
}

func httpOK(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	return nil
}

// --- the image's environment -------------------------------------------------------------------

// dockerfileEnv returns the ENV and WORKDIR of the final stage of a Dockerfile.
func dockerfileEnv(path string) (env []string, workdir string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	var cont string
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasSuffix(l, "\\") {
			cont += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		lines = append(lines, cont+l)
		cont = ""
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			env, workdir = nil, "/"
		case "ENV":
			for _, kv := range f[1:] {
				if !strings.Contains(kv, "=") {
					return nil, "", fmt.Errorf("%s: ENV %q: only the key=value form is read", path, l)
				}
				env = append(env, kv)
			}
		case "WORKDIR":
			workdir = f[1]
		}
	}
	return env, workdir, sc.Err()
}

// mergeEnv returns base with every key of over set to over's value (over wins), in a stable
// order: base's keys, then over's new keys.
func mergeEnv(base []string, over ...string) []string {
	out := append([]string(nil), base...)
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		i := slices.IndexFunc(out, func(e string) bool { return strings.HasPrefix(e, k+"=") })
		if i >= 0 {
			out[i] = kv
		} else {
			out = append(out, kv)
		}
	}
	return out
}

// mkdirs creates dirs (and parents).
func mkdirs(dirs ...string) error {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// absRepo is a path of the repository (relative to compose/) made absolute.
func absRepo(rel string) string {
	p, err := filepath.Abs(rel)
	if err != nil {
		return rel
	}
	return p
}

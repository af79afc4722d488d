package natstest

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is jetsuite's 3-node NATS JetStream cluster of the compose stack, run in-process for
// a test: the nodes are configured by compose/nats/nats-1.conf .. nats-3.conf, read with
// nats-server's own parser (server.ProcessConfigFile), so the test runs what the stack runs
// (server names, cluster name, JetStream limits, routes to every node) and drifts with it.
//
// Only what cannot work in one process on a test machine is rewritten, nothing else:
//   - the ports and their host (client 4222, cluster 6222, monitoring 8222 on 0.0.0.0 in
//     every file): three nodes in one process cannot share them, and a test must not listen
//     beyond loopback nor collide with a NATS already running, so each node gets free
//     127.0.0.1 ports, picked once and kept across a restart (clients and routes find a
//     restarted node where it was);
//   - the routes (nats-route://nats-N:6222, docker's host names): the same three routes,
//     to the rewritten loopback cluster ports;
//   - store_dir (/data/jetstream, the container's volume): a directory of the test's own per
//     node, kept across a restart, so a restarted node recovers its streams as in the stack.
//
// Besides, the servers ignore signals (NoSigs: a process option, not a setting of the
// files; three in-process servers must not each take the test's SIGINT) and log to a file
// per node (LogPath) rather than nowhere.
type Cluster struct {
	t     testing.TB
	files [3]string
	dirs  [3]string
	logs  [3]string
	// ports of each node: client, cluster, http.
	client, route, http [3]int

	mu    sync.Mutex
	nodes [3]*server.Server
}

// ClusterSize is the number of nodes of the compose stack's cluster.
const ClusterSize = 3

// StartCluster starts the three nodes of compose/nats and waits until JetStream has a meta
// leader and every node is current. They are shut down when the test ends.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t}
	ports, err := freePorts(3 * ClusterSize)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ClusterSize {
		c.files[i] = filepath.Join(root, "compose", "nats", fmt.Sprintf("nats-%d.conf", i+1))
		c.dirs[i] = t.TempDir()
		c.logs[i] = filepath.Join(c.dirs[i], "server.log")
		c.client[i], c.route[i], c.http[i] = ports[3*i], ports[3*i+1], ports[3*i+2]
	}
	t.Cleanup(c.Shutdown)
	var wg sync.WaitGroup
	errs := make([]error, ClusterSize)
	for i := range ClusterSize {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.start(i) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitHealthy(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

// options reads node i's file and applies the rewrites the type's doc lists.
func (c *Cluster) options(i int) (*server.Options, error) {
	o, err := server.ProcessConfigFile(c.files[i])
	if err != nil {
		return nil, fmt.Errorf("node %d: %w", i+1, err)
	}
	if !o.JetStream || o.Cluster.Name == "" || len(o.Routes) != ClusterSize {
		return nil, fmt.Errorf("node %d: %s is no JetStream cluster node with %d routes", i+1, c.files[i], ClusterSize)
	}
	o.Host, o.Port = "127.0.0.1", c.client[i]
	o.HTTPHost, o.HTTPPort = "127.0.0.1", c.http[i]
	o.Cluster.Host, o.Cluster.Port = "127.0.0.1", c.route[i]
	o.Routes = nil
	for j := range ClusterSize {
		o.Routes = append(o.Routes, &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.route[j]))})
	}
	o.StoreDir = filepath.Join(c.dirs[i], "jetstream")
	o.NoSigs = true
	return o, nil
}

func (c *Cluster) start(i int) error {
	o, err := c.options(i)
	if err != nil {
		return err
	}
	s, err := server.NewServer(o)
	if err != nil {
		return fmt.Errorf("node %d: %w", i+1, err)
	}
	f, err := os.OpenFile(c.logs[i], os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	s.SetLoggerV2(&fileLogger{f: f, name: o.ServerName}, false, false, false)
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		_ = f.Close()
		return fmt.Errorf("node %d (%s): not ready after 30s; log %s", i+1, o.ServerName, c.logs[i])
	}
	c.mu.Lock()
	c.nodes[i] = s
	c.mu.Unlock()
	go func() { s.WaitForShutdown(); _ = f.Close() }()
	return nil
}

// URLs are the client URLs of the three nodes (running or not).
func (c *Cluster) URLs() []string {
	out := make([]string, ClusterSize)
	for i := range ClusterSize {
		out[i] = fmt.Sprintf("nats://127.0.0.1:%d", c.client[i])
	}
	return out
}

// URL is URLs joined by commas, as NATS_URL takes them.
func (c *Cluster) URL() string { return strings.Join(c.URLs(), ",") }

// Server returns node i (nil while it is stopped).
func (c *Cluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// Name is node i's server name (nats-1 ...).
func (c *Cluster) Name(i int) string { return fmt.Sprintf("nats-%d", i+1) }

// LogPath is the file node i logs to (notices, warnings and errors of every incarnation).
func (c *Cluster) LogPath(i int) string { return c.logs[i] }

// StopNode shuts node i down and waits until it is gone.
func (c *Cluster) StopNode(i int) {
	c.mu.Lock()
	s := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// RestartNode starts node i again with the same store directory and ports, and waits until
// it accepts connections (WaitHealthy waits until it has caught up).
func (c *Cluster) RestartNode(i int) error {
	if c.Server(i) != nil {
		return fmt.Errorf("node %d is running", i+1)
	}
	return c.start(i)
}

// Shutdown stops every node.
func (c *Cluster) Shutdown() {
	for i := range ClusterSize {
		c.StopNode(i)
	}
}

// MetaLeader returns the index of the JetStream meta leader (-1: none now).
func (c *Cluster) MetaLeader() int {
	for i := range ClusterSize {
		if s := c.Server(i); s != nil && s.JetStreamIsLeader() {
			return i
		}
	}
	return -1
}

// StreamLeader returns the index of the node leading stream (global account; -1: none now).
func (c *Cluster) StreamLeader(stream string) int {
	for i := range ClusterSize {
		if s := c.Server(i); s != nil && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// Healthy reports whether JetStream has a meta leader that sees every running node online
// (else it refuses to place a new stream or consumer on it: "no suitable peers for placement,
// peer offline", for a moment after the cluster starts or a node comes back) and every
// running node is healthy (its /healthz: meta group, and every stream and consumer replica it
// holds, current); the error says what is not.
func (c *Cluster) Healthy() error {
	leader := c.MetaLeader()
	if leader < 0 {
		return fmt.Errorf("no JetStream meta leader")
	}
	s := c.Server(leader)
	if s == nil {
		return fmt.Errorf("the meta leader %s stopped", c.Name(leader))
	}
	jsz, err := s.Jsz(nil)
	if err != nil {
		return err
	}
	if jsz.Meta == nil {
		return fmt.Errorf("%s: no meta group information", c.Name(leader))
	}
	online := map[string]bool{c.Name(leader): true}
	for _, p := range jsz.Meta.Replicas {
		if !p.Offline && p.Current {
			online[p.Name] = true
		}
	}
	for i := range ClusterSize {
		if c.Server(i) != nil && !online[c.Name(i)] {
			return fmt.Errorf("the meta leader %s does not see %s online and current yet", c.Name(leader), c.Name(i))
		}
	}
	for i := range ClusterSize {
		s := c.Server(i)
		if s == nil {
			continue
		}
		if h := s.Healthz(&server.HealthzOptions{}); h.Status != "ok" {
			return fmt.Errorf("%s: %s", c.Name(i), h.Error)
		}
	}
	return nil
}

// WaitHealthy waits until Healthy.
func (c *Cluster) WaitHealthy(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := c.Healthy()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not healthy after %s: %w", within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePorts returns n distinct free loopback ports (held open together while picked).
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// repoRoot is the module's root: the nearest directory above the working directory (a test
// runs in its package's) with a go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("natstest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// fileLogger writes a node's notices, warnings and errors to its log file.
type fileLogger struct {
	mu   sync.Mutex
	f    *os.File
	name string
}

func (l *fileLogger) logf(level, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.f, "%s [%s] %s %s\n", time.Now().Format("15:04:05.000"), l.name, level, fmt.Sprintf(format, v...))
}

func (l *fileLogger) Noticef(format string, v ...any) { l.logf("INF", format, v...) }
func (l *fileLogger) Warnf(format string, v ...any)   { l.logf("WRN", format, v...) }
func (l *fileLogger) Fatalf(format string, v ...any)  { l.logf("FTL", format, v...) }
func (l *fileLogger) Errorf(format string, v ...any)  { l.logf("ERR", format, v...) }
func (l *fileLogger) Debugf(format string, v ...any)  {}
func (l *fileLogger) Tracef(format string, v ...any)  {}

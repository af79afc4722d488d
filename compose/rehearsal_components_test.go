package compose

// How each kind of service of the compose file runs natively in the rehearsal.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
	"github.com/jetsuite/jetsuite/shared/testenv"
)

// containerPorts are the container ports a service publishes ("8081:8080" -> 8080).
func containerPorts(svc service) []string {
	var out []string
	for _, p := range svc.Ports {
		parts := strings.Split(p, ":")
		out = append(out, strings.TrimSuffix(parts[len(parts)-1], "/tcp"))
	}
	return out
}

// selfRules make a service's own listen addresses (as it binds them, and as its healthcheck
// reaches them from inside the container) its native address.
func (r *rehearsal) selfRules(name, port, addr string) {
	r.rw.addGlobal(name+":"+port, addr, fmt.Sprintf("%s's port %s", name, port))
	for _, h := range []string{"0.0.0.0", "127.0.0.1", "localhost"} {
		r.rw.addLocal(name, h+":"+port, addr, "its own port "+port)
	}
}

// --- NATS ------------------------------------------------------------------------------------

// natsComponent: node i of natstest.Cluster, which runs compose/nats/nats-<i+1>.conf with only
// ports, routes and store_dir rewritten; its healthcheck asks the rewritten monitoring port.
func (r *rehearsal) natsComponent(name string, svc service, cl *natstest.Cluster, i int) (*component, error) {
	c := newComponent(name, svc)
	s := cl.Server(i)
	if s == nil {
		return nil, fmt.Errorf("%s is not running", name)
	}
	client := strings.TrimPrefix(cl.URLs()[i], "nats://")
	r.selfRules(name, "4222", client)
	r.rw.addGlobal(name+":6222", s.ClusterAddr().String(), "cluster routes (natstest.Cluster rewrites them in the node's options)")
	r.selfRules(name, "8222", s.MonitorAddr().String())
	r.rw.addPath(name, "/data/jetstream", s.StoreDir(), "store_dir on volume "+name+"-data")
	c.how = fmt.Sprintf("nats-server %s in-process (natstest.Cluster), compose/nats/%s.conf", server.VERSION, name)
	c.start = func() error { return nil } // natstest.StartCluster started all three
	p, err := r.nativeProbe(name, svc.Healthcheck, nil)
	c.probe = p
	return c, err
}

// --- Kafka and OpenSearch: the test environment's ----------------------------------------------

func (r *rehearsal) kafkaComponent(name string, svc service, brokers string) *component {
	c := newComponent(name, svc)
	// The broker's listener for containers (PLAINTEXT://kafka:9092); 29092 is for the host.
	r.selfRules(name, "9092", brokers)
	r.rw.addGlobal("localhost:29092", brokers, "kafka's listener for the host")
	c.how = "Apache Kafka 3.9.1 of testenv/run.sh (already running; its own server.properties, not the container's environment)"
	c.start = func() error { return nil }
	if svc.Healthcheck != nil {
		c.probe = newProbe(svc.Healthcheck, "franz-go ping (a metadata request) to "+brokers+" (kafka-broker-api-versions.sh is not here)",
			func(ctx context.Context) error {
				cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
				if err != nil {
					return err
				}
				defer cl.Close()
				return cl.Ping(ctx)
			})
	}
	return c
}

func (r *rehearsal) openSearchComponent(name string, svc service, osURL string) (*component, error) {
	c := newComponent(name, svc)
	r.selfRules(name, "9200", strings.TrimPrefix(strings.TrimPrefix(osURL, "http://"), "https://"))
	c.how = "OpenSearch 2.19.1 of testenv/run.sh (already running; single node, no security plugin, as in the compose file)"
	c.start = func() error { return nil }
	p, err := r.nativeProbe(name, svc.Healthcheck, nil)
	c.probe = p
	return c, err
}

// --- MariaDB -----------------------------------------------------------------------------------

// mariadbComponent runs Debian's mariadbd as the mariadb image's entrypoint does on an empty
// data volume: mariadb-install-db, a temporary server on the socket only, the root password,
// MARIADB_DATABASE and MARIADB_USER, the init scripts mounted under
// /docker-entrypoint-initdb.d in name order; then the real server with the compose file's
// command line. Only what a container decides differently is added: --no-defaults (no host
// my.cnf), --user, --datadir/--socket/--pid-file (the volume's folder), --port/--bind-address
// (the rewritten 3306).
func (r *rehearsal) mariadbComponent(name string, svc service) (*component, error) {
	c := newComponent(name, svc)
	addr := testenv.FreeAddr(r.t)
	_, port, _ := net.SplitHostPort(addr)
	r.selfRules(name, "3306", addr)
	dir := filepath.Join(r.dir, name)
	data := filepath.Join(dir, "data")
	r.rw.addPath(name, "/var/lib/mysql", data, "volume "+name+"-data")

	cenv := map[string]string{}
	for k, v := range svc.Environment {
		cenv[k] = interpolate(v, nil)
	}
	get := func(n string) string { // MARIADB_* wins over MYSQL_*, as in the image
		if v := cenv["MARIADB_"+n]; v != "" {
			return v
		}
		return cenv["MYSQL_"+n]
	}
	type initFile struct{ target, src string }
	var inits []initFile
	for _, v := range svc.Volumes {
		src, dst, err := splitVolume(v)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(dst, "/docker-entrypoint-initdb.d/") {
			if !strings.HasSuffix(dst, ".sql") {
				return nil, fmt.Errorf("%s: init file %s: only .sql files are rehearsed", name, dst)
			}
			inits = append(inits, initFile{dst, absRepo(src)})
		}
	}
	sort.Slice(inits, func(i, j int) bool { return inits[i].target < inits[j].target })

	user := "root"
	if u := os.Getenv("USER"); u != "" {
		user = u
	}
	var args []string
	for _, a := range svc.Command {
		args = append(args, interpolate(a, nil))
	}
	sock := filepath.Join(dir, "mysqld.sock")
	base := []string{"--no-defaults", "--user=" + user, "--datadir=" + data, "--socket=" + sock, "--pid-file=" + filepath.Join(dir, "mysqld.pid")}

	var envList []string
	for k, v := range cenv {
		envList = append(envList, k+"="+v)
	}
	sort.Strings(envList)
	probeEnv := append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "MYSQL_TCP_PORT=" + port}, envList...)

	c.how = "Debian's mariadbd on 127.0.0.1:" + port + ", initialised as the image's entrypoint does"
	c.start = func() error {
		if err := mkdirs(data); err != nil {
			return err
		}
		logPath := filepath.Join(r.dir, name+".log")
		out, err := exec.Command("mariadb-install-db", "--no-defaults", "--user="+user, "--datadir="+data,
			"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput()
		if err != nil {
			return fmt.Errorf("mariadb-install-db: %v\n%s", err, out)
		}
		// The entrypoint's temporary server: the command line too, but no network.
		tmp := &process{r: r, name: name + " (init)", path: "mariadbd", args: append(append(append([]string(nil), base...), args...), "--skip-networking"),
			env: probeEnv, dir: dir, logPath: logPath}
		if err := tmp.launch(); err != nil {
			return err
		}
		defer tmp.stop(30 * time.Second)
		client := func(sql string, pass string, db string) error {
			a := []string{"--no-defaults", "-S", sock, "-uroot"}
			if db != "" {
				a = append(a, "--database="+db)
			}
			cmd := exec.Command("mariadb", a...)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "MYSQL_PWD=" + pass} // the password never on a command line
			cmd.Stdin = strings.NewReader(sql)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		}
		deadline := time.Now().Add(60 * time.Second)
		for client("SELECT 1", "", "") != nil {
			if time.Now().After(deadline) {
				return fmt.Errorf("the temporary server did not answer within 60s:\n%s", tailFile(logPath, 20))
			}
			time.Sleep(200 * time.Millisecond)
		}
		rootPW, db, u, pw := get("ROOT_PASSWORD"), get("DATABASE"), get("USER"), get("PASSWORD")
		if rootPW == "" {
			return fmt.Errorf("%s: no MARIADB_ROOT_PASSWORD (the image refuses to start without one, or an explicit empty/random choice)", name)
		}
		q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
		var setup strings.Builder
		fmt.Fprintf(&setup, "SET PASSWORD FOR 'root'@'localhost' = PASSWORD(%s);\n", q(rootPW))
		fmt.Fprintf(&setup, "CREATE USER 'root'@'%%' IDENTIFIED BY %s;\nGRANT ALL ON *.* TO 'root'@'%%' WITH GRANT OPTION;\n", q(rootPW))
		if db != "" {
			fmt.Fprintf(&setup, "CREATE DATABASE IF NOT EXISTS `%s`;\n", db)
		}
		if u != "" && pw != "" {
			fmt.Fprintf(&setup, "CREATE USER %s@'%%' IDENTIFIED BY %s;\n", q(u), q(pw))
			if db != "" {
				fmt.Fprintf(&setup, "GRANT ALL ON `%s`.* TO %s@'%%';\n", db, q(u))
			}
		}
		if err := client(setup.String(), "", ""); err != nil {
			return fmt.Errorf("the entrypoint's setup (root password, database, user): %v", err)
		}
		for _, f := range inits {
			b, err := os.ReadFile(f.src)
			if err != nil {
				return err
			}
			if err := client(string(b), rootPW, db); err != nil {
				return fmt.Errorf("init script %s (%s): %v", f.target, f.src, err)
			}
			r.logf("%s: ran %s (%s)", name, f.target, f.src)
		}
		if ok, _ := tmp.stop(30 * time.Second); !ok {
			return fmt.Errorf("the temporary server did not stop")
		}
		c.proc = &process{r: r, name: name, path: "mariadbd",
			args: append(append(append([]string(nil), base...), "--port="+port, "--bind-address=127.0.0.1"), args...),
			env:  probeEnv, dir: dir, logPath: logPath, restart: restarts(svc)}
		r.logf("%s: mariadbd %s", name, strings.Join(c.proc.args, " "))
		return c.proc.launch()
	}
	p, err := r.nativeProbe(name, svc.Healthcheck, probeEnv)
	if p != nil {
		p.native += " (MYSQL_TCP_PORT=" + port + ")"
	}
	c.probe = p
	return c, err
}

// restarts reports whether a restart policy restarts a container that exits on its own.
func restarts(svc service) bool {
	switch svc.Restart {
	case "always", "unless-stopped", "on-failure":
		return true
	}
	return strings.HasPrefix(svc.Restart, "on-failure:")
}

// --- Debezium Server ---------------------------------------------------------------------------

// debeziumComponent runs the distribution's run.sh (the image's entrypoint) in a folder laid out
// like the image's /debezium: the distribution's files, config/application.properties from the
// compose file's mount with its addresses rewritten, data/ for the debezium-data volume.
// Added: JAVA_HOME (a JDK >= 21), JAVA_OPTS (-Xmx512m on a shared machine; --add-opens that
// Quarkus' thread pool needs on Java 24+, the image's Java 21 does not), QUARKUS_HTTP_PORT
// (the rewritten 8080).
func (r *rehearsal) debeziumComponent(name string, svc service, dist, javaHome string) (*component, error) {
	c := newComponent(name, svc)
	addr := testenv.FreeAddr(r.t)
	_, port, _ := net.SplitHostPort(addr)
	for _, p := range containerPorts(svc) {
		r.selfRules(name, p, addr)
	}
	dir := filepath.Join(r.dir, name)
	conf := bindSource(r.t, svc, "/debezium/config/application.properties")
	if conf == "" {
		return nil, fmt.Errorf("%s: no application.properties mounted at /debezium/config", name)
	}
	// The image runs the distribution of its tag: the rehearsal must run the same version.
	tag := svc.Image[strings.LastIndex(svc.Image, ":")+1:]
	if _, err := os.Stat(filepath.Join(dist, "debezium-server-dist-"+tag+"-runner.jar")); err != nil {
		return nil, fmt.Errorf("%s: image %s, but %s holds no Debezium Server %s: %v", name, svc.Image, dist, tag, err)
	}
	for _, v := range svc.Volumes {
		src, dst, _ := splitVolume(v)
		if !isBind(src) {
			r.rw.addPath(name, dst, filepath.Join(dir, strings.TrimPrefix(dst, "/debezium/")), "volume "+src)
		}
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "JAVA_HOME=" + javaHome,
		"JAVA_OPTS=-Xmx512m --add-opens=java.base/java.lang=ALL-UNNAMED", "QUARKUS_HTTP_PORT=" + port}
	c.how = "Debezium Server " + tag + " (debezium-server-dist from Maven Central) run.sh, Java " + filepath.Base(javaHome)
	c.start = func() error {
		if err := mkdirs(filepath.Join(dir, "config"), filepath.Join(dir, "data")); err != nil {
			return err
		}
		entries, err := os.ReadDir(dist)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Name() == "config" || e.Name() == "data" || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if err := os.Symlink(filepath.Join(dist, e.Name()), filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
		// config/lib (class path) and the JMX/metrics files of the image; not the examples.
		cfgs, err := os.ReadDir(filepath.Join(dist, "config"))
		if err != nil {
			return err
		}
		for _, e := range cfgs {
			if strings.Contains(e.Name(), "example") || strings.HasPrefix(e.Name(), "application.") {
				continue
			}
			if err := os.Symlink(filepath.Join(dist, "config", e.Name()), filepath.Join(dir, "config", e.Name())); err != nil {
				return err
			}
		}
		props, changed, err := r.rewriteProperties(name, conf)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "config", "application.properties"), []byte(props), 0o644); err != nil {
			return err
		}
		r.logf("%s: %s rewritten: %s", name, conf, strings.Join(changed, "; "))
		r.logf("%s: env %s", name, showEnv(env))
		c.proc = &process{r: r, name: name, path: "bash", args: []string{"run.sh"}, env: env, dir: dir,
			logPath: filepath.Join(r.dir, name+".log"), restart: restarts(svc)}
		return c.proc.launch()
	}
	p, err := r.nativeProbe(name, svc.Healthcheck, env)
	c.probe = p
	return c, err
}

var propLine = regexp.MustCompile(`^\s*([^#!\s][^=:]*?)\s*[=:]\s*(.*)$`)

// rewriteProperties returns a Java properties file with its addresses rewritten as seen from
// service: host:port tokens by the table, and <prefix>.hostname + <prefix>.port pairs naming a
// service of the stack. changed lists what changed (key: old -> new; secrets are not in it).
func (r *rehearsal) rewriteProperties(service, path string) (string, []string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	lines := strings.Split(string(b), "\n")
	values := map[string]string{}
	index := map[string]int{}
	for i, l := range lines {
		if m := propLine.FindStringSubmatch(l); m != nil {
			values[m[1]], index[m[1]] = m[2], i
		}
	}
	var changed []string
	set := func(k, v string) {
		if values[k] == v {
			return
		}
		changed = append(changed, fmt.Sprintf("%s: %s -> %s", k, values[k], v))
		values[k] = v
		lines[index[k]] = k + "=" + v
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if secretName(k) {
			continue
		}
		if prefix, ok := strings.CutSuffix(k, ".hostname"); ok {
			portKey := prefix + ".port"
			if to, ok := r.rw.lookup(values[k] + ":" + values[portKey]); ok {
				host, port, _ := net.SplitHostPort(to)
				set(k, host)
				set(portKey, port)
			}
			continue
		}
		set(k, r.rw.apply(service, values[k]))
	}
	return strings.Join(lines, "\n"), changed, nil
}

// --- jetsuite ----------------------------------------------------------------------------------

// jetsuiteComponent runs the binary the image holds with the container's command, and the
// image's environment (Dockerfile ENV) plus the compose file's, every address and path through
// the rewrite table; extra is what the rehearsal adds (printed).
func (r *rehearsal) jetsuiteComponent(name string, svc service, imageEnv []string, workdir string, vars map[string]string, extra []string) (*component, error) {
	c := newComponent(name, svc)
	dir := filepath.Join(r.dir, name)
	for _, p := range containerPorts(svc) {
		r.selfRules(name, p, testenv.FreeAddr(r.t))
	}
	r.rw.addPath(name, workdir, dir, "the image's WORKDIR")
	c.how = "jetsuite " + strings.Join(svc.Command, " ")
	c.start = func() error {
		if err := mkdirs(dir); err != nil {
			return err
		}
		env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
		for _, kv := range imageEnv {
			k, v, _ := strings.Cut(kv, "=")
			env = mergeEnv(env, k+"="+r.rw.apply(name, v))
		}
		keys := make([]string, 0, len(svc.Environment))
		for k := range svc.Environment {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env = mergeEnv(env, k+"="+r.rw.apply(name, interpolate(svc.Environment[k], vars)))
		}
		env = mergeEnv(env, extra...)
		var args []string
		for _, a := range svc.Command {
			args = append(args, r.rw.apply(name, interpolate(a, vars)))
		}
		c.proc = &process{r: r, name: name, path: binary, args: args, env: env, dir: dir,
			logPath: filepath.Join(r.dir, name+".log"), restart: restarts(svc)}
		r.logf("%s: jetsuite %s; env %s", name, strings.Join(args, " "), showEnv(env))
		return c.proc.launch()
	}
	p, err := r.nativeProbe(name, svc.Healthcheck, nil)
	c.probe = p
	return c, err
}

// majorMinor is "2.15" of "2.15.2", "v2.15.2" or "2.15-alpine".
func majorMinor(v string) string {
	v = strings.TrimPrefix(v, "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	minor := parts[1]
	if i := strings.IndexFunc(minor, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minor = minor[:i]
	}
	return parts[0] + "." + minor
}

// mariadbdVersion is the version `mariadbd --version` prints ("10.11.19").
func mariadbdVersion() (string, error) {
	out, err := exec.Command("mariadbd", "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("mariadbd --version: %v: %s", err, out)
	}
	m := regexp.MustCompile(`Ver (\d+\.\d+\.\d+)`).FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("mariadbd --version: %s", out)
	}
	return string(m[1]), nil
}

// Package compose holds the docker compose stack (`task up`). Docker is not available where
// the tests run, so this test checks what can be checked without it: that every jetsuite
// container runs a command the binary knows with settings it accepts, that mounted files exist,
// that the NATS cluster, Debezium Server, Kafka and Grafana configurations agree with each other
// and with jetsuite's topology.
package compose

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"gopkg.in/yaml.v3"

	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/topology"
)

const composeFile = "docker-compose.yml"

// --- the compose file ------------------------------------------------------------------------

type stack struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

type service struct {
	Image       string       `yaml:"image"`
	Build       *build       `yaml:"build"`
	Command     strList      `yaml:"command"`
	Environment env          `yaml:"environment"`
	Volumes     []string     `yaml:"volumes"`
	Ports       []string     `yaml:"ports"`
	DependsOn   dependsOn    `yaml:"depends_on"`
	Healthcheck *healthcheck `yaml:"healthcheck"`
	Profiles    []string     `yaml:"profiles"`
	Restart     string       `yaml:"restart"`
}

type build struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

// strList is compose's "string or list of strings" (command, healthcheck test).
type strList []string

func (l *strList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = strings.Fields(n.Value)
		return nil
	}
	var s []string
	err := n.Decode(&s)
	*l = s
	return err
}

// env keeps environment values as written (before ${} interpolation); the map and the
// "KEY=value" list forms are both accepted.
type env map[string]string

func (e *env) UnmarshalYAML(n *yaml.Node) error {
	*e = env{}
	switch n.Kind {
	case yaml.MappingNode:
		var m map[string]yaml.Node
		if err := n.Decode(&m); err != nil {
			return err
		}
		for k, v := range m {
			(*e)[k] = v.Value
		}
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, kv := range l {
			k, v, _ := strings.Cut(kv, "=")
			(*e)[k] = v
		}
	}
	return nil
}

// dependsOn is the long form {service: {condition: ...}} or the short list form.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, s := range l {
			(*d)[s] = "service_started"
		}
		return nil
	}
	var m map[string]struct{ Condition string }
	if err := n.Decode(&m); err != nil {
		return err
	}
	for s, c := range m {
		(*d)[s] = c.Condition
	}
	return nil
}

func loadStack(t *testing.T) stack {
	t.Helper()
	b, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var s stack
	if err := yaml.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	if len(s.Services) == 0 {
		t.Fatalf("%s: no services", composeFile)
	}
	return s
}

// interpolated resolves ${VAR}, ${VAR:-default}, ${VAR-default} and $$ as compose does, with
// every variable unset: what the stack gets without a .env file.
func interpolated(v string) string {
	return interpolation.ReplaceAllStringFunc(v, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := interpolation.FindStringSubmatch(m)
		return sub[3] // the default, if any
	})
}

var interpolation = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// jetsuiteServices are the containers running the jetsuite image built from compose/Dockerfile.
func jetsuiteServices(t *testing.T, s stack) map[string]service {
	t.Helper()
	out := map[string]service{}
	for name, svc := range s.Services {
		if svc.Build != nil && path.Base(svc.Build.Dockerfile) == "Dockerfile" {
			out[name] = svc
		}
	}
	if len(out) == 0 {
		t.Fatal("no service is built from compose/Dockerfile")
	}
	return out
}

// --- the binary ------------------------------------------------------------------------------

var binary string // built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jetsuite-compose-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "jetsuite")
	cmd := exec.Command("go", "build", "-o", binary, "../services/jetsuite")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build jetsuite:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runJetsuite runs the binary with an empty environment (so that the host's settings do not
// leak in) and returns its exit error and combined output.
func runJetsuite(args ...string) (string, error) {
	cmd := exec.Command(binary, args...)
	cmd.Env = []string{"HOME=" + os.TempDir()}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// commands lists the service commands of `jetsuite -h` (not all, show, config).
func commands(t *testing.T) []string {
	t.Helper()
	out, err := runJetsuite("-h")
	if err != nil {
		t.Fatalf("jetsuite -h: %v\n%s", err, out)
	}
	_, list, ok := strings.Cut(out, "commands:\n")
	if !ok {
		t.Fatalf("jetsuite -h: no command list:\n%s", out)
	}
	var cmds []string
	for _, line := range strings.Split(list, "\n") {
		if !strings.HasPrefix(line, "  ") {
			break
		}
		if name := strings.Fields(line)[0]; !slices.Contains([]string{"all", "show", "config", "query", "explain"}, name) {
			cmds = append(cmds, name)
		}
	}
	if len(cmds) == 0 {
		t.Fatalf("jetsuite -h lists no service:\n%s", out)
	}
	return cmds
}

// setting is one flag of a command, as `jetsuite <command> -h` prints it; deprecated is the
// new name of an old flag (which still works for one release, but not in this stack).
type setting struct{ flag, env, def, deprecated string }

var (
	flagLine    = regexp.MustCompile(`^  -([A-Za-z0-9][\w.-]*)`)
	envInUsage  = regexp.MustCompile(`\(env ([A-Z][A-Z0-9_]*)`)
	oldInUsage  = regexp.MustCompile(`deprecated: use --([a-z0-9-]+)`)
	defInUsage  = regexp.MustCompile(`^.* \(default (.*)\)$`) // the last "(default" of the line
	knownStates = []string{"service_started", "service_healthy", "service_completed_successfully"}
)

// settingsOf parses `jetsuite <command> -h`: flag name -> setting.
func settingsOf(t *testing.T, command string) map[string]*setting {
	t.Helper()
	out, err := runJetsuite(command, "-h")
	if err != nil {
		t.Fatalf("jetsuite %s -h: %v\n%s", command, err, out)
	}
	flags := map[string]*setting{}
	var cur *setting
	for _, line := range strings.Split(out, "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			cur = &setting{flag: m[1]}
			flags[cur.flag] = cur
			continue
		}
		if cur == nil {
			continue
		}
		if m := envInUsage.FindStringSubmatch(line); m != nil {
			cur.env = m[1]
		}
		if m := oldInUsage.FindStringSubmatch(line); m != nil {
			cur.deprecated = m[1]
		}
		if m := defInUsage.FindStringSubmatch(line); m != nil {
			cur.def = m[1]
		}
	}
	if len(flags) == 0 {
		t.Fatalf("jetsuite %s -h printed no flags:\n%s", command, out)
	}
	return flags
}

// effective is the value a container gets for a flag: the command line, else a non-empty
// environment value, else the default.
func effective(svc service, s *setting) string {
	for i, arg := range svc.Command {
		if i == 0 {
			continue // the command
		}
		for _, prefix := range []string{"--" + s.flag + "=", "-" + s.flag + "="} {
			if v, ok := strings.CutPrefix(arg, prefix); ok {
				return v
			}
		}
	}
	if v := interpolated(svc.Environment[s.env]); v != "" {
		return v
	}
	return s.def
}

// --- tests -----------------------------------------------------------------------------------

// TestJetsuiteContainers: every service of the binary has a container, each runs a command
// the binary knows, every flag and environment variable it sets is one that command documents,
// and the values parse (the binary is run with them, plus -h, so it parses without starting).
func TestJetsuiteContainers(t *testing.T) {
	s := loadStack(t)
	containers := jetsuiteServices(t, s)
	known := commands(t)
	running := map[string]string{}
	for name, svc := range containers {
		if len(svc.Command) == 0 {
			t.Errorf("%s: no command (the image would run `jetsuite all`)", name)
			continue
		}
		cmd := svc.Command[0]
		if !slices.Contains(known, cmd) {
			t.Errorf("%s: command %q is not a jetsuite service (jetsuite -h lists %v)", name, cmd, known)
			continue
		}
		if other, dup := running[cmd]; dup {
			t.Errorf("%s and %s both run %q", name, other, cmd)
		}
		running[cmd] = name
		if svc.Restart == "" || svc.Restart == "no" {
			t.Errorf("%s: no restart policy", name)
		}
		if len(svc.Profiles) > 0 {
			t.Errorf("%s: runs only with profile %v; every jetsuite service belongs in the default stack", name, svc.Profiles)
		}

		settings := settingsOf(t, cmd)
		byEnv := map[string]*setting{}
		for _, st := range settings {
			if st.env != "" {
				byEnv[st.env] = st
			}
		}
		args := []string{cmd}
		for _, arg := range svc.Command[1:] {
			flagName, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
			if !strings.HasPrefix(arg, "-") || settings[flagName] == nil {
				t.Errorf("%s: argument %q is not a flag of `jetsuite %s`", name, arg, cmd)
				continue
			}
			if nw := settings[flagName].deprecated; nw != "" {
				t.Errorf("%s: --%s is a deprecated name; use --%s", name, flagName, nw)
			}
			args = append(args, arg)
		}
		keys := make([]string, 0, len(svc.Environment))
		for k := range svc.Environment {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			raw := svc.Environment[k]
			st := byEnv[k]
			if st == nil {
				// Deprecated names are not listed by -h either: they fail here too.
				t.Errorf("%s: environment %s is not a setting of `jetsuite %s` (by its current name)", name, k, cmd)
				continue
			}
			// jetsuite reads an empty variable as unset (the default applies): a literal empty
			// value that means "off" must be a flag (--name=) instead.
			if raw == "" {
				t.Errorf("%s: %s is set to the empty string, which jetsuite reads as its default %q; use --%s= to set it empty", name, k, st.def, st.flag)
			}
			if v := interpolated(raw); v != "" {
				args = append(args, "--"+st.flag+"="+v)
			}
		}
		args = append(args, "-h")
		if out, err := runJetsuite(args...); err != nil || !strings.Contains(out, "Usage of jetsuite "+cmd) {
			t.Errorf("%s: jetsuite %s does not accept its settings (%v):\n%s", name, strings.Join(args, " "), err, out)
		}
		if listen := effective(svc, settings["http-listen"]); !strings.HasPrefix(listen, "0.0.0.0:") {
			t.Errorf("%s: --http-listen %q is not reachable from other containers or the healthcheck's own address", name, listen)
		}
	}
	for _, cmd := range known {
		if running[cmd] == "" {
			t.Errorf("jetsuite service %q has no container", cmd)
		}
	}
}

// TestNATSCluster: three nodes whose configuration files the real nats-server parser accepts,
// each naming itself and routes to all three, JetStream on a volume; every jetsuite container
// connects to all three.
func TestNATSCluster(t *testing.T) {
	s := loadStack(t)
	nodes := []string{"nats-1", "nats-2", "nats-3"}
	var clusterName string
	for _, node := range nodes {
		svc, ok := s.Services[node]
		if !ok {
			t.Fatalf("no service %s", node)
		}
		i := slices.Index(svc.Command, "--config")
		if i < 0 || i+1 >= len(svc.Command) {
			t.Fatalf("%s: command %v has no --config", node, svc.Command)
		}
		conf := bindSource(t, svc, svc.Command[i+1])
		if conf == "" {
			t.Fatalf("%s: %s is not mounted from the repository", node, svc.Command[i+1])
		}
		opts, err := server.ProcessConfigFile(conf)
		if err != nil {
			t.Fatalf("%s: %v", conf, err)
		}
		if opts.ServerName != node {
			t.Errorf("%s: server_name %q, want %q (unique and stable per node)", conf, opts.ServerName, node)
		}
		if !opts.JetStream || opts.StoreDir == "" {
			t.Errorf("%s: JetStream off or without store_dir", conf)
		} else if !onNamedVolume(s, svc, opts.StoreDir) {
			t.Errorf("%s: store_dir %s is not on a named volume of %s", conf, opts.StoreDir, node)
		}
		if clusterName == "" {
			clusterName = opts.Cluster.Name
		}
		if opts.Cluster.Name == "" || opts.Cluster.Name != clusterName {
			t.Errorf("%s: cluster name %q, want one name for all nodes (%q)", conf, opts.Cluster.Name, clusterName)
		}
		var routed []string
		for _, r := range opts.Routes {
			if r.Port() != fmt.Sprint(opts.Cluster.Port) {
				t.Errorf("%s: route %s is not on the cluster port %d", conf, r, opts.Cluster.Port)
			}
			routed = append(routed, r.Hostname())
		}
		sort.Strings(routed)
		if !slices.Equal(routed, nodes) {
			t.Errorf("%s: routes to %v, want the 3 nodes %v", conf, routed, nodes)
		}
		if opts.Port != 4222 || opts.HTTPPort != 8222 {
			t.Errorf("%s: client port %d, monitoring %d; the stack expects 4222 and 8222", conf, opts.Port, opts.HTTPPort)
		}
		if svc.Healthcheck == nil || !strings.Contains(strings.Join(svc.Healthcheck.Test, " "), ":8222/healthz") {
			t.Errorf("%s: healthcheck should ask the monitoring port's /healthz", node)
		}
	}

	for name, svc := range jetsuiteServices(t, s) {
		var hosts []string
		for _, u := range strings.Split(interpolated(svc.Environment["JETSUITE_NATS_URL"]), ",") {
			p, err := url.Parse(u)
			if err != nil || p.Scheme != "nats" || p.Port() != "4222" {
				t.Errorf("%s: JETSUITE_NATS_URL entry %q is not nats://<node>:4222", name, u)
				continue
			}
			hosts = append(hosts, p.Hostname())
		}
		sort.Strings(hosts)
		if !slices.Equal(hosts, nodes) {
			t.Errorf("%s: JETSUITE_NATS_URL names %v, want all of %v", name, hosts, nodes)
		}
		for _, node := range nodes {
			if !dependsOnTransitively(s, name, node) {
				t.Errorf("%s: does not wait for %s", name, node)
			}
		}
	}
}

// TestDebeziumServer: Debezium Server's configuration publishes demo.CUSTOMERS changes on the
// subject the CDC reader follows, into jetsuite's DebeziumStream, and reads the MariaDB the stack
// runs with the user its init script creates.
func TestDebeziumServer(t *testing.T) {
	s := loadStack(t)
	dbz, ok := s.Services["debezium"]
	if !ok {
		t.Fatal("no service debezium")
	}
	conf := bindSource(t, dbz, "/debezium/config/application.properties")
	if conf == "" {
		t.Fatal("debezium: application.properties is not mounted at /debezium/config/application.properties")
	}
	p := readProperties(t, conf)
	want := map[string]string{
		"debezium.sink.type":                         "nats-jetstream",
		"debezium.sink.nats-jetstream.create-stream": "false",
		"debezium.source.connector.class":            "io.debezium.connector.mariadb.MariaDbConnector",
		"debezium.source.database.hostname":          "mariadb",
		"debezium.format.value":                      "json",
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("%s: %s = %q, want %q", conf, k, p[k], v)
		}
	}
	var hosts []string
	for _, u := range strings.Split(p["debezium.sink.nats-jetstream.url"], ",") {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatalf("%s: sink url %q: %v", conf, u, err)
		}
		hosts = append(hosts, pu.Hostname())
	}
	sort.Strings(hosts)
	if !slices.Equal(hosts, []string{"nats-1", "nats-2", "nats-3"}) {
		t.Errorf("%s: sink connects to %v, want the 3 NATS nodes", conf, hosts)
	}

	subject := p["debezium.source.topic.prefix"] + "." + p["debezium.source.table.include.list"]
	if subject != topology.SubjectCustomersCDC {
		t.Errorf("%s: events go to %q, the CDC reader follows %q", conf, subject, topology.SubjectCustomersCDC)
	}
	stream, err := plan.Demo().Catalog().Stream(topology.StreamDebezium)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(stream.Subjects, func(f string) bool { return subjectMatches(f, subject) }) {
		t.Errorf("stream %s (subjects %v) does not hold %q", stream.Name, stream.Subjects, subject)
	}
	if cdc, ok := s.Services["cdc"]; ok {
		if v := interpolated(cdc.Environment["JETSUITE_CDC_SUBJECTS"]); v != "" && !slices.Contains(strings.Split(v, ","), subject) {
			t.Errorf("cdc: JETSUITE_CDC_SUBJECTS %q lacks %q", v, subject)
		}
	}
	// create-stream=false: the stream must exist before Debezium publishes.
	if dbz.DependsOn["cdc"] != "service_healthy" {
		t.Errorf("debezium: should wait for cdc to be healthy (it declares %s)", topology.StreamDebezium)
	}

	// Offsets and schema history, relative to the working directory /debezium, on a volume.
	for _, k := range []string{"debezium.source.offset.storage.file.filename", "debezium.source.schema.history.internal.file.filename"} {
		if f := path.Join("/debezium", p[k]); !onNamedVolume(s, dbz, f) {
			t.Errorf("debezium: %s %s is not on a named volume", k, f)
		}
	}

	// The user exists in MariaDB with that password, created by an init script.
	user, pass := p["debezium.source.database.user"], p["debezium.source.database.password"]
	db := s.Services[p["debezium.source.database.hostname"]]
	var initSQL strings.Builder
	for _, v := range db.Volumes {
		src, dst, _ := splitVolume(v)
		if strings.HasPrefix(dst, "/docker-entrypoint-initdb.d/") && isBind(src) {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			initSQL.Write(b)
		}
	}
	if !strings.Contains(initSQL.String(), fmt.Sprintf("'%s'@'%%' IDENTIFIED BY '%s'", user, pass)) {
		t.Errorf("%s init scripts do not create user %q with the password Debezium uses", p["debezium.source.database.hostname"], user)
	}
	if !strings.Contains(initSQL.String(), "CREATE TABLE CUSTOMERS") {
		t.Error("the database's init scripts do not create demo.CUSTOMERS")
	}
	if !strings.Contains(strings.Join(db.Command, " "), "--binlog-format=ROW") {
		t.Error("the database: binlog_format ROW is what Debezium needs; say so explicitly")
	}

	// Real CUSTOMERS come from MariaDB: the generator's simulated ones must be off.
	if gen := s.Services["generator"]; interpolated(gen.Environment["JETSUITE_GENERATOR_CUSTOMERS"]) != "false" {
		t.Error("generator: JETSUITE_GENERATOR_CUSTOMERS must be false when Debezium Server supplies asgard.demo.CUSTOMERS")
	}
}

// TestBridge: the bridge reaches Kafka where Kafka advertises itself, and no subject gets a
// second source: nothing comes in from Kafka that the generator or Debezium already publish,
// and nothing goes out to Kafka and back.
func TestBridge(t *testing.T) {
	s := loadStack(t)
	bridge, ok := s.Services["bridge"]
	if !ok {
		t.Fatal("no service bridge")
	}
	settings := settingsOf(t, "bridge")
	kafka := s.Services["kafka"]
	advertised := interpolated(kafka.Environment["KAFKA_ADVERTISED_LISTENERS"])
	for _, b := range strings.Split(effective(bridge, settings["bridge-kafka-brokers"]), ",") {
		if !strings.Contains(advertised, "://"+b) {
			t.Errorf("bridge: broker %q is not an advertised listener of kafka (%s)", b, advertised)
		}
	}
	if id, err := base64.RawURLEncoding.DecodeString(interpolated(kafka.Environment["CLUSTER_ID"])); err != nil || len(id) != 16 {
		t.Errorf("kafka: CLUSTER_ID %q is not a UUID in URL-safe base64 (22 characters)", kafka.Environment["CLUSTER_ID"])
	}

	// Subjects with a source in this stack: the generator's enabled quickstarts, Debezium's.
	generator := s.Services["generator"]
	genSettings := settingsOf(t, "generator")
	quickstarts := map[string]string{ // subject -> the generator's on/off flag
		"clickstream": "generator-clickstream", "clickstream_codes": "generator-codes",
		"clickstream_users": "generator-users", "pageviews": "generator-pageviews",
		"imply-news": "generator-news", "ratings": "generator-ratings",
		topology.SubjectCustomersCDC: "generator-customers",
	}
	sourced := map[string]string{}
	for subject, flagName := range quickstarts {
		st := genSettings[flagName]
		if st == nil {
			t.Fatalf("generator has no flag --%s", flagName)
		}
		if effective(generator, st) != "false" {
			sourced[subject] = "generator"
		}
	}
	if _, ok := s.Services["debezium"]; ok {
		sourced[topology.SubjectCustomersCDC] = "debezium"
	}

	out := map[string]bool{}
	for _, item := range splitList(effective(bridge, settings["bridge-to-kafka"])) {
		stream, topic, ok := strings.Cut(item, "=")
		if !ok {
			topic = stream
		}
		out[topic] = true
	}
	if len(out) == 0 {
		t.Error("bridge: copies nothing into Kafka")
	}
	for _, item := range splitList(effective(bridge, settings["bridge-from-kafka"])) {
		topic, subject, ok := strings.Cut(item, "=")
		if !ok {
			subject = topic
		}
		if who := sourced[subject]; who != "" {
			t.Errorf("bridge: Kafka topic %q into subject %q, which %s already publishes", topic, subject, who)
		}
		if out[topic] {
			t.Errorf("bridge: topic %q is copied both into and out of Kafka", topic)
		}
	}
}

// TestMounts: bind-mounted files exist in the repository (relative to compose/), named
// volumes are declared, the build context holds the Dockerfile and the binary's package.
func TestMounts(t *testing.T) {
	s := loadStack(t)
	for name, svc := range s.Services {
		for _, v := range svc.Volumes {
			src, dst, err := splitVolume(v)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			switch {
			case filepath.IsAbs(src):
				t.Errorf("%s: %s: absolute host paths do not travel; mount from the repository", name, v)
			case isBind(src):
				if _, err := os.Stat(src); err != nil {
					t.Errorf("%s: %s: %v", name, v, err)
				}
			default:
				if _, ok := s.Volumes[src]; !ok {
					t.Errorf("%s: volume %q (at %s) is not declared under volumes:", name, src, dst)
				}
			}
		}
		if svc.Build != nil {
			df := filepath.Join(svc.Build.Context, svc.Build.Dockerfile)
			if _, err := os.Stat(df); err != nil {
				t.Errorf("%s: Dockerfile: %v", name, err)
			}
			if _, err := os.Stat(filepath.Join(svc.Build.Context, "services", "jetsuite", "main.go")); err != nil {
				t.Errorf("%s: build context %s does not hold services/jetsuite: %v", name, svc.Build.Context, err)
			}
		}
	}
}

// TestDockerfile: Go version of go.mod, static, non-root, entrypoint jetsuite, and a runtime
// image with the wget the healthchecks call.
func TestDockerfile(t *testing.T) {
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	argLine := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)`).FindSubmatch(df)
	if goLine == nil || argLine == nil || !strings.HasPrefix(string(argLine[1]), string(goLine[1])) {
		t.Errorf("Dockerfile GO_VERSION %q does not match go.mod's go %q", argLine, goLine)
	}
	text := string(df)
	for _, want := range []string{"CGO_ENABLED=0", "./services/jetsuite", `ENTRYPOINT ["jetsuite"]`, "USER 10001"} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	froms := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(text, -1)
	if len(froms) < 2 || !strings.HasPrefix(froms[len(froms)-1][1], "alpine:") {
		t.Errorf("runtime stage should be alpine (busybox wget for the healthchecks): %v", froms)
	}
}

// TestStackWiring: images pinned, dependencies exist and can be met (service_healthy only on
// services with a healthcheck, no cycles, no dependency on an optional profile), host ports
// unique, URLs point at services of the stack, Grafana's provisioning matches its mounts.
func TestStackWiring(t *testing.T) {
	s := loadStack(t)
	hostPorts := map[string]string{}
	for name, svc := range s.Services {
		if svc.Build == nil {
			if i := strings.LastIndex(svc.Image, ":"); i < 0 || strings.Contains(svc.Image[i:], "/") || strings.HasSuffix(svc.Image, ":latest") {
				t.Errorf("%s: image %q is not pinned to a version", name, svc.Image)
			}
		}
		for dep, cond := range svc.DependsOn {
			target, ok := s.Services[dep]
			switch {
			case !ok:
				t.Errorf("%s depends on unknown service %s", name, dep)
			case !slices.Contains(knownStates, cond):
				t.Errorf("%s: depends_on %s condition %q", name, dep, cond)
			case cond == "service_healthy" && target.Healthcheck == nil:
				t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
			case len(target.Profiles) > 0 && len(svc.Profiles) == 0:
				t.Errorf("%s depends on %s, which only runs with profile %v", name, dep, target.Profiles)
			}
			if dependsOnTransitively(s, dep, name) {
				t.Errorf("dependency cycle between %s and %s", name, dep)
			}
		}
		for _, p := range svc.Ports {
			parts := strings.Split(p, ":")
			if len(parts) < 2 {
				continue // container port only: docker picks a host port
			}
			host := strings.Join(parts[:len(parts)-1], ":")
			if other, dup := hostPorts[host]; dup {
				t.Errorf("host port %s published by %s and %s", host, name, other)
			}
			hostPorts[host] = name
		}
	}

	for name, svc := range jetsuiteServices(t, s) {
		if u := interpolated(svc.Environment["JETSUITE_INDEXER_OPENSEARCH_URL"]); u != "" {
			checkServiceURL(t, s, name+" JETSUITE_INDEXER_OPENSEARCH_URL", u)
			if svc.DependsOn[hostOf(u)] != "service_healthy" {
				t.Errorf("%s: should wait for %s to be healthy", name, hostOf(u))
			}
		}
	}

	// Grafana: the provisioning folders are mounted where Grafana reads them, the file
	// provider's path is where the dashboards are mounted, data sources point at the stack's
	// OpenSearch and their plugin is installed.
	g, ok := s.Services["grafana"]
	if !ok {
		t.Fatal("no service grafana")
	}
	provider := bindSource(t, g, "/etc/grafana/provisioning/dashboards")
	datasources := bindSource(t, g, "/etc/grafana/provisioning/datasources")
	if provider == "" || datasources == "" {
		t.Fatal("grafana: provisioning folders are not mounted under /etc/grafana/provisioning")
	}
	type providers struct {
		Providers []struct{ Options struct{ Path string } }
	}
	var paths []string
	for _, f := range readYAMLDir[providers](t, provider) {
		for _, p := range f.Providers {
			paths = append(paths, p.Options.Path)
		}
	}
	if len(paths) == 0 {
		t.Error("grafana: no dashboard provider")
	}
	for _, path := range paths {
		if src := bindSource(t, g, path); src == "" {
			t.Errorf("grafana: dashboard provider reads %s, which is not mounted", path)
		} else if files, _ := filepath.Glob(filepath.Join(src, "*.json")); len(files) == 0 {
			t.Errorf("grafana: no dashboards in %s", src)
		}
	}
	type datasourceFile struct {
		Datasources []struct{ Name, Type, URL string }
	}
	var sources []struct{ Name, Type, URL string }
	for _, f := range readYAMLDir[datasourceFile](t, datasources) {
		sources = append(sources, f.Datasources...)
	}
	if len(sources) == 0 {
		t.Error("grafana: no data sources provisioned")
	}
	plugins := interpolated(g.Environment["GF_PLUGINS_PREINSTALL_SYNC"] + "," + g.Environment["GF_INSTALL_PLUGINS"])
	for _, d := range sources {
		checkServiceURL(t, s, "grafana data source "+d.Name, d.URL)
		if strings.Contains(d.Type, "-") && !slices.Contains(strings.Split(plugins, ","), d.Type) {
			t.Errorf("grafana: data source %s needs plugin %s, which is not installed", d.Name, d.Type)
		}
	}
}

// --- helpers ---------------------------------------------------------------------------------

func splitVolume(v string) (src, dst string, err error) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return "", "", fmt.Errorf("volume %q is not source:target[:mode]", v)
	}
	return parts[0], parts[1], nil
}

func isBind(src string) bool { return strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") }

// bindSource is the repository path mounted at target (or at a parent of it) in svc, or "".
func bindSource(t *testing.T, svc service, target string) string {
	t.Helper()
	for _, v := range svc.Volumes {
		src, dst, err := splitVolume(v)
		if err != nil || !isBind(src) {
			continue
		}
		if target == dst {
			return src
		}
		if rel, ok := strings.CutPrefix(target, dst+"/"); ok {
			return filepath.Join(src, rel)
		}
	}
	return ""
}

func onNamedVolume(s stack, svc service, p string) bool {
	for _, v := range svc.Volumes {
		src, dst, err := splitVolume(v)
		if err != nil || isBind(src) {
			continue
		}
		if _, declared := s.Volumes[src]; declared && (p == dst || strings.HasPrefix(p, dst+"/")) {
			return true
		}
	}
	return false
}

func dependsOnTransitively(s stack, from, to string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(n string) bool {
		if seen[n] {
			return false
		}
		seen[n] = true
		for dep := range s.Services[n].DependsOn {
			if dep == to || walk(dep) {
				return true
			}
		}
		return false
	}
	return walk(from)
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Hostname()
}

// checkServiceURL: u names a service of the stack, on a port that service listens on (one of
// its published container ports).
func checkServiceURL(t *testing.T, s stack, what, u string) {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	svc, ok := s.Services[p.Hostname()]
	if !ok {
		t.Errorf("%s: %s is not a service of the stack", what, u)
		return
	}
	for _, port := range svc.Ports {
		parts := strings.Split(port, ":")
		if parts[len(parts)-1] == p.Port() {
			return
		}
	}
	t.Errorf("%s: %s: service %s does not publish port %s", what, u, p.Hostname(), p.Port())
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// subjectMatches reports whether NATS subject filter f (with * and > wildcards) matches subject.
func subjectMatches(f, subject string) bool {
	ft, st := strings.Split(f, "."), strings.Split(subject, ".")
	for i, tok := range ft {
		if tok == ">" {
			return i < len(st)
		}
		if i >= len(st) || (tok != "*" && tok != st[i]) {
			return false
		}
	}
	return len(ft) == len(st)
}

// readProperties reads a Java properties file (key=value lines, # comments).
func readProperties(t *testing.T, file string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "!") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s: line %q is not key=value", file, line)
			continue
		}
		p[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return p
}

// readYAMLDir decodes every .yaml/.yml/.json file of dir (Grafana reads them all; JSON is
// read as YAML, of which it is a subset).
func readYAMLDir[T any](t *testing.T, dir string) []T {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for _, e := range entries {
		switch filepath.Ext(e.Name()) {
		case ".yaml", ".yml", ".json":
		default:
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var v T
		if err := yaml.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		out = append(out, v)
	}
	return out
}

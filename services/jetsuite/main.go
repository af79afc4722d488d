// Command jetsuite runs jetsuite's services: all of them in one process (`jetsuite all`, with an
// embedded NATS JetStream server when JETSUITE_NATS_URL is empty), or one of them against an external
// NATS (`jetsuite <service>`).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/console"
	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/natsx"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/topology"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "jetsuite:", err)
		os.Exit(1)
	}
}

// common holds the shared settings (no service part in their names).
type common struct {
	natsURL    string
	dataDir    string
	natsListen string
	httpListen string
	logFormat  string
	logLevel   string
	storage    string
	// topology holds the replicas and dedup window; Storage comes from storage.
	topology topology.Options
	// memoryLimit is the process's soft memory limit in bytes (0: none).
	memoryLimit int64
	// queriesFile is the user's pipeline ("": the built-in demos).
	queriesFile string
	// fuse runs the stateless statements an aggregation depends on in the windower's task
	// (plan.Plan.Fuse).
	fuse bool
	// partitions is the plan's default number of partitions of an aggregation.
	partitions  int
	repartition bool
	// instance names this process among the instances of its services (shared/lease).
	instance string
	// rebuild names derived objects whose changed definition may replace the stored one.
	rebuild []string
}

func bindCommon(b config.Binder, c *common) {
	b.String(&c.natsURL, "nats-url", "", "NATS server URLs, comma-separated; empty: `all` embeds a server, a single service uses nats://127.0.0.1:4222 (NATS_URL, the conventional name, is read too)").
		AlsoEnv("NATS_URL")
	b.String(&c.dataDir, "data-dir", "./data", "where the embedded NATS server keeps JetStream's files")
	b.String(&c.natsListen, "nats-listen", "127.0.0.1:4222", "address the embedded NATS server listens on for other clients (\"none\": in-process only)")
	b.String(&c.httpListen, "http-listen", "127.0.0.1:8080", "address of the web console (/), /healthz, /readyz, /metrics and service endpoints (\"none\": off)")
	b.String(&c.logFormat, "log-format", "text", "log format: text or json").OneOf("text", "json")
	b.String(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error").OneOf("debug", "info", "warn", "error")
	b.Duration(&c.topology.DedupWindow, "dedup-window", topology.DefaultDedupWindow, "how long JetStream remembers Nats-Msg-Ids (longer: safer late retries, more server memory)").
		Positive()
	b.Duration(&c.topology.DerivedDedupWindow, "derived-dedup-window", topology.DefaultDerivedDedupWindow, "Nats-Msg-Id window of derived streams (CREATE STREAM ... AS SELECT: chained outputs, so a copy is refused without it; see docs/FOOTPRINT.md)").
		Positive()
	b.Bytes(&c.topology.StreamMaxBytes, "stream-max-bytes", topology.DefaultStreamMaxBytes, "byte limit of every stream without RETENTION_BYTES: beyond it the oldest messages are dropped, read or not (-1: none)").
		Check(checkLimit)
	b.Bytes(&c.topology.BucketMaxBytes, "bucket-max-bytes", topology.DefaultBucketMaxBytes, "byte limit of every bucket without RETENTION_BYTES: beyond it a windowed table drops its oldest windows, other tables and state refuse new keys and their writer waits (-1: none)").
		Check(checkLimit)
	b.Bytes(&c.memoryLimit, "memory-limit", defaultMemoryLimit, "soft memory limit of the process, embedded NATS server included (Go's GOMEMLIMIT, which wins when set; 0: none)").
		Check(func(n int64) error {
			if n != 0 && n < 64<<20 {
				return errors.New("must be 0 (none) or at least 64MiB")
			}
			return nil
		})
	b.Int(&c.topology.Replicas, "replicas", 1, "replicas of every stream and bucket jetsuite declares (3 on a 3-node NATS cluster)").
		Check(func(n int) error {
			if n < 1 || n > 5 {
				return errors.New("must be 1..5 (JetStream's limit)")
			}
			return nil
		})
	b.String(&c.storage, "storage", "file", "storage of every stream and bucket jetsuite declares: file or memory (memory: lost when NATS restarts)").
		OneOf("file", "memory")
	b.List(&c.rebuild, "rebuild", nil, "derived streams and tables whose statement changed since they were built: empty them and compute them again from the start of their sources (without it a changed statement is refused)")
	b.Bool(&c.fuse, "fuse", true, "the windower evaluates the stateless statements its aggregations read (joins, filters) on the source's messages and publishes their streams itself, instead of re-reading the derived streams (false: every statement reads its input; every service of one pipeline needs the same value)")
	b.Int(&c.partitions, "partitions", 0, "partitions of every aggregation whose statement (or input) has no WITH (PARTITIONS=N): each is a unit of work one windower instance owns, so up to this many windowers share a table's work (every service of one pipeline needs the same value; a windower refuses a changed number until the tables are rebuilt with --rebuild); 0: "+strconv.Itoa(plan.AutoPartitions)+" for new tables, the number a table's saved state was built with for the others").
		Check(func(n int) error {
			if n < 0 || n > plan.MaxPartitions {
				return fmt.Errorf("must be 0 (automatic) or 1..%d", plan.MaxPartitions)
			}
			return nil
		})
	b.Bool(&c.repartition, "repartition", false, "the windower splits the reading of partitioned aggregations: a router reads each source once and sends each partition's owner only its rows, through the source's shuffle stream SHUFFLE_<SOURCE> (false: every windower instance reads the whole source; every service of one pipeline needs the same value)")
	b.String(&c.instance, "instance", "", "this process's name among the instances of its services against one NATS (empty: host, pid and a random suffix); two running processes must not share one")
	b.String(&c.queriesFile, "queries-file", "", "a file of ksqlDB statements to run instead of the built-in demos (ksqlDB's headless-mode name; `jetsuite explain FILE` shows what it does)")
}

// defaultMemoryLimit is the soft memory limit of a jetsuite process: with the embedded server,
// `all` then peaks below 500 MB (docs/FOOTPRINT.md has the measurements).
const defaultMemoryLimit int64 = 400 << 20

// checkLimit validates a byte limit: -1 (none), or room for a few of the largest messages.
func checkLimit(n int64) error {
	if n != topology.NoLimit && n < plan.MinRetentionBytes {
		return errors.New("must be -1 (no limit) or at least 1MiB")
	}
	return nil
}

// pipeline compiles the user's file, or the built-in demos. A file with any error runs nothing.
func (c common) pipeline() (*plan.Plan, error) {
	p := plan.Demo()
	if c.queriesFile != "" {
		var err error
		if p, err = compileFiles(c.queriesFile); err != nil {
			return nil, err
		}
	}
	if c.fuse {
		p.Fuse()
	}
	c.setPartitions(p)
	p.Repartition = c.repartition
	return p, nil
}

// setPartitions applies --partitions to the plan (0: plan.AutoPartitions for new tables, the
// saved number for tables that have state).
func (c common) setPartitions(p *plan.Plan) {
	p.DefaultPartitions, p.KeepSavedPartitions = c.partitions, c.partitions == 0
	if c.partitions == 0 {
		p.DefaultPartitions = plan.AutoPartitions
	}
}

// compileFiles reads and compiles pipeline files.
func compileFiles(paths ...string) (*plan.Plan, error) {
	var files []plan.File
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("queries file: %w", err)
		}
		files = append(files, plan.File{Name: p, SQL: string(b)})
	}
	return plan.Compile(files...)
}

// clientURL is where the client commands (show, query) connect: the NATS URL, else the
// address a running `jetsuite all` listens on.
func (c common) clientURL() string {
	if c.natsURL == "" {
		return "nats://127.0.0.1:4222"
	}
	return c.natsURL
}

// topologyOptions are the shared settings Ensure needs.
func (c common) topologyOptions() topology.Options {
	o := c.topology
	o.Storage = jetstream.FileStorage
	if c.storage == "memory" {
		o.Storage = jetstream.MemoryStorage
	}
	return o
}

// selected is a service a command runs: its constructor, and whether it is on.
type selected struct {
	spec    runner.Spec
	build   func(runner.Deps) (runner.Service, error)
	enabled *bool
}

// declare declares the settings of a command (config and all: every service's) and returns
// the services it runs; none for an unknown command.
func declare(reg *config.Registry, cmd string, c *common) []selected {
	bindCommon(reg.Shared(), c)
	var chosen []selected
	for _, s := range specs() {
		switch {
		case cmd == "config" || cmd == "all":
			sel := selected{spec: s, build: s.Bind(reg.Service(s.Name)), enabled: new(bool)}
			enableSetting(reg, s, sel.enabled)
			chosen = append(chosen, sel)
		case s.Name == cmd:
			on := true
			chosen = append(chosen, selected{spec: s, build: s.Bind(reg.Service(s.Name)), enabled: &on})
		}
	}
	return chosen
}

// enableSetting declares, for `all`, whether a service runs.
func enableSetting(reg *config.Registry, s runner.Spec, on *bool) {
	reg.Service(s.Name).Bool(on, "enabled", s.InAll, "`all`: run the "+s.Name).
		Was("JETSUITE_"+strings.ToUpper(s.Name), s.Name)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: jetsuite all|<service>|config [flags]")
	fmt.Fprintln(w, "\ncommands:")
	fmt.Fprintln(w, "  all        every service in one process (embedded NATS JetStream when JETSUITE_NATS_URL is empty)")
	for _, s := range specs() {
		fmt.Fprintf(w, "  %-10s %s\n", s.Name, s.Summary)
	}
	fmt.Fprintln(w, "  query      run a pull or push query against a running jetsuite: `query \"SELECT ... FROM NAME ...\"` (also POST /query)")
	fmt.Fprintln(w, "  explain    print the plan of the built-in pipelines, or of `explain FILE...`")
	fmt.Fprintln(w, "  show       list tables and streams; `show NAME` prints a table's rows or a stream's newest messages")
	fmt.Fprintln(w, "  config     print every setting as a Markdown table")
	fmt.Fprintln(w, "\nrun `jetsuite <command> -h` for the flags of a command")
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return errors.New("no command")
		}
		return nil
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "show":
		return show(ctx, args, stdout, stderr)
	case "explain":
		return explain(args, stdout, stderr)
	case "query":
		return queryCommand(ctx, args, stdout, stderr)
	}
	fs := flag.NewFlagSet("jetsuite "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	reg := config.NewRegistry(fs, os.Getenv)
	var c common
	chosen := declare(reg, cmd, &c)
	if len(chosen) == 0 {
		usage(stderr)
		return fmt.Errorf("unknown command %q", cmd)
	}
	if err := reg.Err(); err != nil {
		return err
	}
	if cmd == "config" {
		reg.WriteMarkdown(stdout)
		return nil
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := reg.Resolve(); err != nil {
		return err
	}
	pipeline, err := c.pipeline()
	if err != nil {
		return err
	}
	for _, sel := range chosen {
		if *sel.enabled && sel.spec.CheckPlan != nil {
			if err := sel.spec.CheckPlan(pipeline); err != nil {
				return err
			}
		}
	}
	if cmd == "all" {
		if err := embeddedKafkaDemo(reg, c.dataDir); err != nil {
			return err
		}
	}
	// The console shows a node's last error from the process's recent warnings and errors.
	errs := console.NewRecorder(obs.NewLogger(stderr, c.logFormat, c.logLevel).Handler())
	log := slog.New(errs)
	slog.SetDefault(log)
	reg.LogDeprecations(log)
	setMemoryLimit(c.memoryLimit, os.Getenv("GOMEMLIMIT"), os.Getenv("GOGC"), log)

	ctx, stop := runner.SignalContext(ctx, log)
	defer stop()

	deps := runner.Deps{Log: log, Health: obs.NewHealth(), Plan: pipeline, Instance: c.instance}
	if c.queriesFile != "" {
		log.Info("running the statements of the queries file", "file", c.queriesFile, "objects", len(pipeline.Objects), "steps", len(pipeline.Steps), "sinks", len(pipeline.Sinks))
	}
	deps.HTTP = obs.NewServer(deps.Health)

	startCtx, cancelStart := context.WithTimeout(ctx, 60*time.Second)
	defer cancelStart()
	switch {
	case c.natsURL == "" && cmd == "all":
		maxStore, maxMemory := embeddedLimits(pipeline.Catalog(), c.topologyOptions())
		ns, err := natsx.StartEmbedded(natsx.EmbeddedOptions{DataDir: c.dataDir, Listen: c.natsListen, Logger: log.With("component", "nats-server"),
			MaxStore: maxStore, MaxMemory: maxMemory})
		if err != nil {
			return err
		}
		defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
		where := "in-process only"
		if c.natsListen != "none" && c.natsListen != "" {
			where = "nats://" + ns.Addr().String()
		}
		log.Info("embedded NATS JetStream server started", "data_dir", c.dataDir, "clients", where,
			"max_store", config.FormatBytes(maxStore), "max_memory", config.FormatBytes(maxMemory))
		deps.NC, err = natsx.ConnectInProcess(startCtx, ns, "jetsuite", log)
		if err != nil {
			return err
		}
	default:
		url := c.natsURL
		if url == "" {
			url = "nats://127.0.0.1:4222"
		}
		deps.NC, err = natsx.Connect(startCtx, url, "jetsuite-"+cmd, log)
		if err != nil {
			return err
		}
		log.Info("connected to NATS", "url", deps.NC.ConnectedUrlRedacted())
	}
	defer deps.NC.Close()
	if deps.JS, err = natsx.JetStream(deps.NC); err != nil {
		return err
	}
	// Each request gets its own timeout (natsx.PerRequest): one left unanswered by a cluster
	// node that stopped is retried, instead of waiting out the whole start-up deadline.
	reqCtx, cancelReq := natsx.PerRequest(startCtx)
	defer cancelReq()
	if err := retryTransient(startCtx, log, "declare topology", func() error {
		return pipeline.Catalog().Ensure(reqCtx, deps.JS, c.topologyOptions())
	}); err != nil {
		return fmt.Errorf("declare topology: %w", err)
	}
	var rebuilt []string
	if err := retryTransient(startCtx, log, "check definitions", func() (err error) {
		rebuilt, err = checkDefinitions(reqCtx, deps.JS, pipeline, c.rebuild, c.topologyOptions())
		return err
	}); err != nil {
		return err
	}
	if len(rebuilt) > 0 {
		log.Warn("rebuilding from the start of their sources", "objects", strings.Join(rebuilt, ","))
	}

	var services []runner.Service
	for _, sel := range chosen {
		if !*sel.enabled {
			log.Info("service off", "service", sel.spec.Name)
			continue
		}
		svc, err := sel.build(deps)
		if err != nil {
			return fmt.Errorf("%s: %w", sel.spec.Name, err)
		}
		services = append(services, svc)
	}
	deps.HTTP.Mux.Handle("POST /query", queryHandler(pipeline, deps.JS))
	console.Register(ctx, deps.HTTP.Mux, console.Options{Plan: pipeline, JS: deps.JS, Log: log, Command: cmd, Errors: errs})
	if c.httpListen != "none" && c.httpListen != "" {
		log.Info("web console", "url", "http://"+c.httpListen+"/")
	}
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		// The endpoints are for operators; without them the services still run, so a busy port
		// is reported, not fatal.
		if err := deps.HTTP.ListenAndServe(httpCtx, c.httpListen, log); err != nil {
			log.Error("HTTP endpoints unavailable (--http-listen picks another address)", "err", err)
		}
	}()
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		// One process watches the limits: `all` (single services would each report the same).
		if cmd == "all" {
			newLimitWatch(deps.JS, pipeline.Catalog(), log).run(watchCtx)
		}
	}()
	err = runner.RunAll(ctx, log, services...)
	stopWatch()
	<-watchDone
	stopHTTP()
	<-httpDone
	if drainErr := deps.NC.Drain(); drainErr != nil && err == nil && !errors.Is(drainErr, context.Canceled) {
		log.Warn("drain NATS connection", "err", drainErr)
	}
	return err
}

// setMemoryLimit sets the process's soft memory limit (runtime/debug.SetMemoryLimit: the
// garbage collector works harder as the process nears it, instead of letting the heap double
// between collections). GOMEMLIMIT, which the Go runtime has applied already, wins.
//
// Under a limit the collector may also wait longer between collections (GOGC 400 instead of
// 100, unless GOGC is set): the limit, not the heap's doubling, then bounds the memory, and
// the pipeline spends less CPU collecting (BenchmarkPipeline: about +10 to +30 %).
func setMemoryLimit(n int64, gomemlimit, gogc string, log *slog.Logger) {
	switch {
	case gomemlimit != "":
		log.Info("memory limit from GOMEMLIMIT", "limit", gomemlimit)
	case n > 0:
		debug.SetMemoryLimit(n)
		log.Debug("memory limit", "limit", config.FormatBytes(n))
	default:
		return
	}
	if gogc == "" {
		debug.SetGCPercent(limitedGCPercent)
	}
}

// limitedGCPercent is GOGC under a memory limit (see setMemoryLimit).
const limitedGCPercent = 400

// Headroom of the embedded server's store beyond the catalog's byte limits: consumers' state,
// other clients' streams (a k6 run's), and the bridge's embedded Kafka files when they share
// the disk.
const (
	storeHeadroom  int64 = 1 << 30
	memoryHeadroom int64 = 64 << 20
	// unboundedStore is the store limit when something has no byte limit (then the
	// catalog's sum bounds nothing): the embedded server's default before limits.
	unboundedStore int64 = 10 << 30
)

// embeddedLimits are the embedded server's JetStream limits: room for every byte limit of
// the catalog (JetStream reserves their sum when the streams are created and refuses a
// stream that does not fit) and little more, so that the data directory stays within what
// `jetsuite explain` reports. Nothing of jetsuite's is in memory storage unless --storage
// memory asks for it, so the memory store is only headroom otherwise.
func embeddedLimits(c topology.Catalog, o topology.Options) (maxStore, maxMemory int64) {
	reserved, unbounded := c.Reserved(o)
	need := reserved + storeHeadroom
	if unbounded {
		need = max(need, unboundedStore)
	}
	if o.Storage == jetstream.MemoryStorage {
		return storeHeadroom, need - storeHeadroom + memoryHeadroom
	}
	return need, memoryHeadroom
}

// embeddedKafkaDemo: `all --bridge-kafka-embedded` puts the Kafka bridge into the embedded
// demo: the bridge runs an in-process Kafka (kfake, under the data directory), the ratings are
// produced to its `ratings` topic as the original's web app did, and the bridge carries them
// into JetStream, so the generator's own ratings are off. Settings given explicitly (flag or
// environment) win.
func embeddedKafkaDemo(reg *config.Registry, dataDir string) error {
	on := reg.Lookup("bridge-kafka-embedded")
	if on == nil || on.Value() != "true" {
		return nil
	}
	for name, value := range map[string]string{
		"bridge-enabled":            "true",
		"generator-ratings":         "false",
		"bridge-kafka-embedded-dir": filepath.Join(dataDir, "kafka-embedded"),
	} {
		if err := reg.Default(name, value); err != nil {
			return fmt.Errorf("--bridge-kafka-embedded: %w", err)
		}
	}
	return nil
}

// retryTransient runs f until it succeeds, fails for good, or ctx ends. On a NATS cluster that
// is forming, or that just lost or got back a node, JetStream refuses requests for a moment:
// no meta leader yet (no responders, "JetStream system temporarily unavailable"), or a peer
// not yet seen online ("no suitable peers for placement, peer offline") although the
// placement will fit once it is. Those (natsx.Transient) are retried; anything else is
// returned at once.
func retryTransient(ctx context.Context, log *slog.Logger, what string, f func() error) error {
	backoff := 100 * time.Millisecond
	for {
		err := f()
		if err == nil || !natsx.Transient(err) || ctx.Err() != nil {
			return err
		}
		log.Warn("NATS JetStream not ready; trying again", "what", what, "after", backoff, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

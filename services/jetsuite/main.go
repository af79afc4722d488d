// Command jetsuite runs jetsuite's services: all of them in one process (`jetsuite all`, with an
// embedded NATS JetStream server when NATS_URL is empty), or one of them against an external
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
	"strings"
	"time"

	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/natsx"
	"github.com/jetsuite/jetsuite/shared/obs"
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

// common holds the process-wide settings.
type common struct {
	natsURL    string
	dataDir    string
	natsListen string
	httpListen string
	logFormat  string
	logLevel   string
	replicas   int
	dedup      time.Duration
}

func bindCommon(b config.Binder, c *common) {
	b.String(&c.natsURL, "nats-url", "NATS_URL", "", "NATS server URLs, comma-separated; empty: `all` embeds a server, a single service uses nats://127.0.0.1:4222")
	b.String(&c.dataDir, "data-dir", "JETSUITE_DATA_DIR", "./data", "where the embedded NATS server keeps JetStream's files")
	b.String(&c.natsListen, "nats-listen", "JETSUITE_NATS_LISTEN", "127.0.0.1:4222", "address the embedded NATS server listens on for other clients (\"none\": in-process only)")
	b.String(&c.httpListen, "http-listen", "JETSUITE_HTTP_LISTEN", "127.0.0.1:8080", "address of /healthz, /readyz, /metrics and service endpoints (\"none\": off)")
	b.String(&c.logFormat, "log-format", "JETSUITE_LOG_FORMAT", "text", "log format: text or json")
	b.String(&c.logLevel, "log-level", "JETSUITE_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	b.Duration(&c.dedup, "dedup-window", "JETSUITE_DEDUP_WINDOW", topology.DefaultDedupWindow, "how long JetStream remembers Nats-Msg-Ids (longer: safer late retries, more server memory)")
	b.Int(&c.replicas, "replicas", "JETSUITE_REPLICAS", 1, "replicas of every stream and bucket jetsuite declares (3 on a 3-node NATS cluster)")
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: jetsuite all|<service>|config [flags]")
	fmt.Fprintln(w, "\ncommands:")
	fmt.Fprintln(w, "  all        every service in one process (embedded NATS JetStream when NATS_URL is empty)")
	for _, s := range specs() {
		fmt.Fprintf(w, "  %-10s %s\n", s.Name, s.Summary)
	}
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
	if cmd == "show" {
		return show(ctx, args, stdout, stderr)
	}
	fs := flag.NewFlagSet("jetsuite "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	bindCommon(config.Binder{FS: fs, Owner: "jetsuite"}, &c)

	type selected struct {
		spec    runner.Spec
		build   func(runner.Deps) (runner.Service, error)
		enabled *bool
	}
	var chosen []selected
	switch cmd {
	case "config":
		for _, s := range specs() {
			s.Bind(config.Binder{FS: fs, Owner: s.Name})
			var on bool
			config.Binder{FS: fs, Owner: "all"}.Bool(&on, s.Name, "JETSUITE_"+strings.ToUpper(s.Name), s.InAll, "`all`: run the "+s.Name)
		}
		config.WriteMarkdown(stdout)
		return nil
	case "all":
		for _, s := range specs() {
			sel := selected{spec: s, build: s.Bind(config.Binder{FS: fs, Owner: s.Name}), enabled: new(bool)}
			config.Binder{FS: fs, Owner: "all"}.Bool(sel.enabled, s.Name, "JETSUITE_"+strings.ToUpper(s.Name), s.InAll, "`all`: run the "+s.Name)
			chosen = append(chosen, sel)
		}
	default:
		for _, s := range specs() {
			if s.Name == cmd {
				on := true
				chosen = append(chosen, selected{spec: s, build: s.Bind(config.Binder{FS: fs, Owner: s.Name}), enabled: &on})
			}
		}
		if len(chosen) == 0 {
			usage(stderr)
			return fmt.Errorf("unknown command %q", cmd)
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := config.Validate(fs); err != nil {
		return err
	}
	if cmd == "all" {
		if err := embeddedKafkaDemo(fs, c.dataDir); err != nil {
			return err
		}
	}
	log := obs.NewLogger(stderr, c.logFormat, c.logLevel)
	slog.SetDefault(log)

	ctx, stop := runner.SignalContext(ctx, log)
	defer stop()

	deps := runner.Deps{Log: log, Health: obs.NewHealth()}
	deps.HTTP = obs.NewServer(deps.Health)

	startCtx, cancelStart := context.WithTimeout(ctx, 60*time.Second)
	defer cancelStart()
	switch {
	case c.natsURL == "" && cmd == "all":
		ns, err := natsx.StartEmbedded(natsx.EmbeddedOptions{DataDir: c.dataDir, Listen: c.natsListen, Logger: log.With("component", "nats-server")})
		if err != nil {
			return err
		}
		defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
		where := "in-process only"
		if c.natsListen != "none" && c.natsListen != "" {
			where = "nats://" + ns.Addr().String()
		}
		log.Info("embedded NATS JetStream server started", "data_dir", c.dataDir, "clients", where)
		deps.NC, err = natsx.ConnectInProcess(startCtx, ns, "jetsuite", log)
		if err != nil {
			return err
		}
	default:
		url := c.natsURL
		if url == "" {
			url = "nats://127.0.0.1:4222"
		}
		var err error
		deps.NC, err = natsx.Connect(startCtx, url, "jetsuite-"+cmd, log)
		if err != nil {
			return err
		}
		log.Info("connected to NATS", "url", deps.NC.ConnectedUrlRedacted())
	}
	defer deps.NC.Close()
	var err error
	if deps.JS, err = natsx.JetStream(deps.NC); err != nil {
		return err
	}
	topo := topology.Options{Replicas: c.replicas, DedupWindow: c.dedup}
	if err := topology.Default().Ensure(startCtx, deps.JS, topo); err != nil {
		return fmt.Errorf("declare topology: %w", err)
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
	err = runner.RunAll(ctx, log, services...)
	stopHTTP()
	<-httpDone
	if drainErr := deps.NC.Drain(); drainErr != nil && err == nil && !errors.Is(drainErr, context.Canceled) {
		log.Warn("drain NATS connection", "err", drainErr)
	}
	return err
}

// embeddedKafkaDemo: `all --kafka-embedded` puts the Kafka bridge into the embedded demo: the
// bridge runs an in-process Kafka (kfake, under the data directory), the ratings are produced
// to its `ratings` topic as the original's web app did, and the bridge carries them into
// JetStream, so the generator's own ratings are off. Flags given explicitly win.
func embeddedKafkaDemo(fs *flag.FlagSet, dataDir string) error {
	on := fs.Lookup("kafka-embedded")
	if on == nil || on.Value.String() != "true" {
		return nil
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	defaults := map[string]string{
		"bridge":             "true",
		"generator-ratings":  "false",
		"kafka-embedded-dir": filepath.Join(dataDir, "kafka-embedded"),
	}
	for name, value := range defaults {
		if set[name] || fs.Lookup(name) == nil {
			continue
		}
		if err := fs.Set(name, value); err != nil {
			return fmt.Errorf("--kafka-embedded: %s: %w", name, err)
		}
	}
	return nil
}

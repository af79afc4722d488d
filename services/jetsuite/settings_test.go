package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/testenv"
)

// declareAll declares every setting the binary has (what `jetsuite config` prints) on a fresh
// registry reading env.
func declareAll(t *testing.T, cmd string, env map[string]string) (*config.Registry, *flag.FlagSet, *common, []selected) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	reg := config.NewRegistry(fs, func(k string) string { return env[k] })
	var c common
	chosen := declare(reg, cmd, &c)
	if err := reg.Err(); err != nil {
		t.Fatalf("declarations: %v", err)
	}
	return reg, fs, &c, chosen
}

// TestSettingsScheme walks every declaration: JETSUITE_<SERVICE>_<NAME> and --<service>-<name>
// for a service's settings, JETSUITE_<NAME> and --<name> for shared ones; each name used once
// (new and old names together), every one of them a flag of the binary.
func TestSettingsScheme(t *testing.T) {
	reg, fs, _, _ := declareAll(t, "config", nil)
	var services []string
	for _, s := range specs() {
		services = append(services, s.Name)
	}
	word := regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)
	envOf := func(flagName string) string {
		return "JETSUITE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
	}
	used := map[string]string{} // every env and flag name -> the setting it belongs to
	use := func(name, owner string) {
		if other, dup := used[name]; dup {
			t.Errorf("%s is a name of both %s and %s", name, other, owner)
		}
		used[name] = owner
	}
	settings := reg.Settings()
	if len(settings) < 50 {
		t.Fatalf("only %d settings declared", len(settings))
	}
	for _, s := range settings {
		if !word.MatchString(s.Name) {
			t.Errorf("setting %q: names are lower-case words joined by '-'", s.Name)
		}
		wantFlag := s.Name
		if s.Service != "" {
			if !slices.Contains(services, s.Service) {
				t.Errorf("setting %s belongs to %q, which is not a service", s.Name, s.Service)
			}
			wantFlag = s.Service + "-" + s.Name
		} else {
			for _, svc := range services {
				if strings.HasPrefix(s.Name, svc+"-") {
					t.Errorf("shared setting %s reads like a setting of the %s", s.Name, svc)
				}
			}
		}
		if s.Flag() != wantFlag || s.Env() != envOf(wantFlag) {
			t.Errorf("setting %s of %q: --%s / %s, want --%s / %s", s.Name, s.Service, s.Flag(), s.Env(), wantFlag, envOf(wantFlag))
		}
		if strings.TrimSpace(s.Usage) == "" {
			t.Errorf("%s has no description", s.Env())
		}
		use(s.Env(), s.Env())
		use("--"+s.Flag(), s.Env())
		if fs.Lookup(s.Flag()) == nil {
			t.Errorf("--%s is not a flag", s.Flag())
		}
		for _, a := range s.Aliases {
			if a.Env != "" {
				use(a.Env, s.Env())
			}
			if a.Flag != "" {
				use("--"+a.Flag, s.Env())
				if f := fs.Lookup(a.Flag); f == nil || !strings.Contains(f.Usage, "deprecated: use --"+s.Flag()) {
					t.Errorf("old flag --%s does not point to --%s", a.Flag, s.Flag())
				}
			}
		}
	}
	// NATS_URL is the one conventional name outside the scheme.
	if s := reg.Lookup("nats-url"); s == nil || !slices.Contains(s.Aliases, config.Alias{Env: "NATS_URL", Conventional: true}) {
		t.Error("NATS_URL is not read for JETSUITE_NATS_URL")
	}
}

// TestBadSettingStopsTheStart: a bad value is an error naming the setting and the value before
// anything starts (no NATS is running here).
func TestBadSettingStopsTheStart(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		env     map[string]string
		setting string
		value   string
	}{
		{[]string{"enricher", "--enricher-batch=-1"}, nil, "JETSUITE_ENRICHER_BATCH", "-1"},
		{[]string{"windower"}, map[string]string{"JETSUITE_WINDOWER_TABLES": "EVENTS_PER_MIN,NOPE"}, "JETSUITE_WINDOWER_TABLES", "EVENTS_PER_MIN,NOPE"},
		{[]string{"windower", "--windower-grace-per-table=NOPE=1s"}, nil, "JETSUITE_WINDOWER_GRACE_PER_TABLE", "NOPE=1s"},
		{[]string{"all", "--storage=disk"}, nil, "JETSUITE_STORAGE", "disk"},
		{[]string{"all"}, map[string]string{"JETSUITE_REPLICAS": "0"}, "JETSUITE_REPLICAS", "0"},
		{[]string{"bridge", "--bridge-start=middle"}, nil, "JETSUITE_BRIDGE_START", "middle"},
		{[]string{"alerting"}, map[string]string{"SLACK_DIGEST_MAX": "100"}, "JETSUITE_ALERTING_SLACK_DIGEST_MAX", "100"},
		{[]string{"indexer", "--indexer-ack-wait=10ms"}, nil, "JETSUITE_INDEXER_ACK_WAIT", "10ms"},
		{[]string{"generator", "--generator-rate=fast"}, nil, "JETSUITE_GENERATOR_RATE", "fast"},
		{[]string{"cdc"}, map[string]string{"JETSUITE_CDC_BATCH": "0"}, "JETSUITE_CDC_BATCH", "0"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			err := run(context.Background(), append(tc.args, "--http-listen=none", "--data-dir="+t.TempDir()), io.Discard, io.Discard)
			var se *config.SettingError
			if !errors.As(err, &se) || se.Setting != tc.setting || se.Value != tc.value {
				t.Fatalf("error %v, want a *config.SettingError for %s = %q", err, tc.setting, tc.value)
			}
		})
	}
}

// TestOldSwitchesStillWork: `all --windower=false` (the old name) still switches the windower
// off, and says it is deprecated.
func TestOldSwitchesStillWork(t *testing.T) {
	reg, fs, _, chosen := declareAll(t, "all", map[string]string{"JETSUITE_CDC": "false"})
	if err := fs.Parse([]string{"--windower=false"}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Resolve(); err != nil {
		t.Fatal(err)
	}
	for _, sel := range chosen {
		off := sel.spec.Name == "windower" || sel.spec.Name == "cdc"
		if *sel.enabled != (sel.spec.InAll && !off) {
			t.Errorf("%s enabled: %v", sel.spec.Name, *sel.enabled)
		}
	}
	got := reg.Deprecations()
	for _, want := range []config.Deprecation{{Old: "--windower", New: "--windower-enabled"}, {Old: "JETSUITE_CDC", New: "JETSUITE_CDC_ENABLED"}} {
		if !slices.Contains(got, want) {
			t.Errorf("deprecations %v lack %v", got, want)
		}
	}
}

// TestEmbeddedKafkaDemo: --bridge-kafka-embedded switches the bridge on and the generator's
// ratings off, and puts the embedded Kafka under the data directory, unless told otherwise.
func TestEmbeddedKafkaDemo(t *testing.T) {
	dir := t.TempDir()
	reg, fs, c, _ := declareAll(t, "all", map[string]string{"JETSUITE_GENERATOR_RATINGS": "true"})
	if err := fs.Parse([]string{"--bridge-kafka-embedded", "--data-dir=" + dir}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Resolve(); err != nil {
		t.Fatal(err)
	}
	if err := embeddedKafkaDemo(reg, c.dataDir); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"bridge-enabled":            "true",
		"generator-ratings":         "true", // given in the environment: kept
		"bridge-kafka-embedded-dir": filepath.Join(dir, "kafka-embedded"),
	} {
		if got := reg.Lookup(name).Value(); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
}

// TestDeprecatedNamesAreLogged: a service started with old names logs a warning per old name,
// naming the new one. (Nothing listens at the NATS address, so the service is stopped while it
// waits to connect, once the warnings are out.)
func TestDeprecatedNamesAreLogged(t *testing.T) {
	t.Setenv("JETSUITE_MAX_EVENT_BYTES", "1000")
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	args := []string{"windower", "--grace=1s", "--nats-url=nats://" + testenv.FreeAddr(t), "--http-listen=none"}
	go func() { done <- run(ctx, args, logs, logs) }()
	want := []string{
		`level=WARN msg="deprecated setting name`, "old=--grace new=--windower-grace",
		"old=JETSUITE_MAX_EVENT_BYTES new=JETSUITE_WINDOWER_MAX_BYTES",
	}
	deadline := time.After(30 * time.Second)
	for !containsAll(logs.String(), want) {
		select {
		case err := <-done:
			t.Fatalf("run ended (%v) without the warnings:\n%s", err, logs)
		case <-deadline:
			t.Fatalf("no deprecation warnings:\n%s", logs)
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	<-done
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

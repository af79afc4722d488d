package config

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

// testConfig is a small service configuration declared the way services declare theirs.
type testConfig struct {
	Batch   int
	Timeout time.Duration
	Rate    float64
	Mode    string
	Tables  []string
	Token   string
	On      bool
}

func (c *testConfig) bind(b Binder) {
	b.Int(&c.Batch, "batch", 100, "largest batch").Positive().Was("SVC_BATCH", "svc-batch-size")
	b.Duration(&c.Timeout, "timeout", time.Second, "timeout").NonNegative()
	b.Float(&c.Rate, "rate", 2.5, "rate").NonNegative().Was("", "rate")
	b.String(&c.Mode, "mode", "fast", "mode").OneOf("fast", "slow")
	b.List(&c.Tables, "tables", []string{"A", "B"}, "tables").Check(func(v []string) error {
		for _, t := range v {
			if t != "A" && t != "B" {
				return errors.New("unknown table " + t)
			}
		}
		return nil
	})
	b.Secret(&c.Token, "token", "secret token")
	b.Bool(&c.On, "on", false, "switch")
}

// setup declares testConfig for service "svc" with the given environment.
func setup(t *testing.T, env map[string]string) (*Registry, *flag.FlagSet, *testConfig) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	reg := NewRegistry(fs, func(k string) string { return env[k] })
	var c testConfig
	c.bind(reg.Service("svc"))
	if err := reg.Err(); err != nil {
		t.Fatal(err)
	}
	return reg, fs, &c
}

func resolve(t *testing.T, env map[string]string, args ...string) (*Registry, *testConfig, error) {
	t.Helper()
	reg, fs, c := setup(t, env)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return reg, c, reg.Resolve()
}

func TestNames(t *testing.T) {
	reg, _, _ := setup(t, nil)
	s := reg.Lookup("svc-batch")
	if s == nil || s.Env() != "JETSUITE_SVC_BATCH" || s.Flag() != "svc-batch" {
		t.Fatalf("service setting: %+v", s)
	}
	var url string
	reg.Shared().String(&url, "nats-url", "", "NATS")
	if s := reg.Lookup("nats-url"); s == nil || s.Env() != "JETSUITE_NATS_URL" {
		t.Fatalf("shared setting: %+v", s)
	}
}

func TestDefaultsWithoutFlagsOrEnvironment(t *testing.T) {
	var c testConfig
	c.bind(Defaults("svc"))
	want := testConfig{Batch: 100, Timeout: time.Second, Rate: 2.5, Mode: "fast", Tables: []string{"A", "B"}}
	if c.Batch != want.Batch || c.Timeout != want.Timeout || c.Rate != want.Rate || c.Mode != want.Mode ||
		!slices.Equal(c.Tables, want.Tables) || c.Token != "" || c.On {
		t.Fatalf("defaults %+v, want %+v", c, want)
	}
}

func TestFlagOverridesEnvironment(t *testing.T) {
	env := map[string]string{"JETSUITE_SVC_BATCH": "7", "JETSUITE_SVC_MODE": "slow", "JETSUITE_SVC_ON": "true"}
	reg, c, err := resolve(t, env, "--svc-batch=9", "--svc-tables=A")
	if err != nil {
		t.Fatal(err)
	}
	if c.Batch != 9 || c.Mode != "slow" || !c.On || !slices.Equal(c.Tables, []string{"A"}) || c.Rate != 2.5 {
		t.Fatalf("config %+v", c)
	}
	if !reg.Lookup("svc-batch").Explicit() || reg.Lookup("svc-rate").Explicit() {
		t.Error("Explicit: batch was given, rate was not")
	}
	// An empty variable counts as unset; "--name=" sets a list empty.
	_, c, err = resolve(t, map[string]string{"JETSUITE_SVC_BATCH": ""}, "--svc-tables=")
	if err != nil {
		t.Fatal(err)
	}
	if c.Batch != 100 || len(c.Tables) != 0 {
		t.Fatalf("config %+v", c)
	}
}

func TestBadValuesAreErrorsNamingSettingAndValue(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		setting string
		source  string
		value   string
	}{
		{"unparsable env", map[string]string{"JETSUITE_SVC_BATCH": "ten"}, nil, "JETSUITE_SVC_BATCH", "environment JETSUITE_SVC_BATCH", "ten"},
		{"not positive", nil, []string{"--svc-batch=0"}, "JETSUITE_SVC_BATCH", "flag --svc-batch", "0"},
		{"negative duration", map[string]string{"JETSUITE_SVC_TIMEOUT": "-1s"}, nil, "JETSUITE_SVC_TIMEOUT", "environment JETSUITE_SVC_TIMEOUT", "-1s"},
		{"bad duration", nil, []string{"--svc-timeout=soon"}, "JETSUITE_SVC_TIMEOUT", "flag --svc-timeout", "soon"},
		{"negative float", nil, []string{"--svc-rate=-2"}, "JETSUITE_SVC_RATE", "flag --svc-rate", "-2"},
		{"not a choice", map[string]string{"JETSUITE_SVC_MODE": "medium"}, nil, "JETSUITE_SVC_MODE", "environment JETSUITE_SVC_MODE", "medium"},
		{"unknown table", nil, []string{"--svc-tables=A,C"}, "JETSUITE_SVC_TABLES", "flag --svc-tables", "A,C"},
		{"bad bool", map[string]string{"JETSUITE_SVC_ON": "maybe"}, nil, "JETSUITE_SVC_ON", "environment JETSUITE_SVC_ON", "maybe"},
		{"old name, bad value", map[string]string{"SVC_BATCH": "-3"}, nil, "JETSUITE_SVC_BATCH", "environment SVC_BATCH", "-3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c, err := resolve(t, tc.env, tc.args...)
			var se *SettingError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want a *SettingError; config %+v", err, err, c)
			}
			if se.Setting != tc.setting || se.Source != tc.source || se.Value != tc.value {
				t.Errorf("error %+v, want setting %s, source %q, value %q", se, tc.setting, tc.source, tc.value)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.setting) || !strings.Contains(msg, `"`+tc.value+`"`) {
				t.Errorf("message %q does not name the setting and the value", msg)
			}
		})
	}
}

func TestEveryBadValueIsReported(t *testing.T) {
	_, _, err := resolve(t, map[string]string{"JETSUITE_SVC_MODE": "x"}, "--svc-batch=-1")
	for _, want := range []string{"JETSUITE_SVC_MODE", "JETSUITE_SVC_BATCH"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not report %s", err, want)
		}
	}
}

func TestSecretValueNeverInErrors(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	reg := NewRegistry(fs, func(k string) string { return map[string]string{"JETSUITE_SVC_TOKEN": "xoxb-secret"}[k] })
	var token string
	reg.Service("svc").Secret(&token, "token", "token").Check(func(v string) error { return errors.New("rejected") })
	err := reg.Resolve()
	if err == nil || strings.Contains(err.Error(), "xoxb-secret") || !strings.Contains(err.Error(), "JETSUITE_SVC_TOKEN") {
		t.Fatalf("error %v: want the setting named and the value hidden", err)
	}
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	fs.PrintDefaults()
	if strings.Contains(buf.String(), "xoxb-secret") {
		t.Fatal("-h shows the secret")
	}
}

func TestDeprecatedNamesWorkAndWarn(t *testing.T) {
	// Old environment name.
	reg, c, err := resolve(t, map[string]string{"SVC_BATCH": "42"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Batch != 42 {
		t.Fatalf("batch %d from the old environment name, want 42", c.Batch)
	}
	var logs bytes.Buffer
	reg.LogDeprecations(slog.New(slog.NewTextHandler(&logs, nil)))
	if got := logs.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "old=SVC_BATCH") ||
		!strings.Contains(got, "new=JETSUITE_SVC_BATCH") {
		t.Fatalf("warning %q does not name the old and the new name", got)
	}

	// Old flag names, and the new environment name winning over the old one.
	reg, c, err = resolve(t, map[string]string{"JETSUITE_SVC_BATCH": "5", "SVC_BATCH": "6"}, "--rate=4")
	if err != nil {
		t.Fatal(err)
	}
	if c.Rate != 4 || c.Batch != 5 {
		t.Fatalf("config %+v", c)
	}
	if got := reg.Deprecations(); !slices.Equal(got, []Deprecation{{Old: "--rate", New: "--svc-rate"}}) {
		t.Fatalf("deprecations %v", got)
	}

	// New names: no warning.
	reg, _, err = resolve(t, map[string]string{"JETSUITE_SVC_BATCH": "5"}, "--svc-rate=1")
	if err != nil {
		t.Fatal(err)
	}
	if got := reg.Deprecations(); len(got) != 0 {
		t.Fatalf("deprecations %v for new names", got)
	}
}

func TestConventionalNameWithoutWarning(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	reg := NewRegistry(fs, func(k string) string { return map[string]string{"NATS_URL": "nats://a:4222"}[k] })
	var url string
	reg.Shared().String(&url, "nats-url", "", "NATS").AlsoEnv("NATS_URL")
	if err := reg.Resolve(); err != nil {
		t.Fatal(err)
	}
	if url != "nats://a:4222" || len(reg.Deprecations()) != 0 {
		t.Fatalf("url %q, deprecations %v", url, reg.Deprecations())
	}
	if u := fs.Lookup("nats-url").Usage; !strings.Contains(u, "(env JETSUITE_NATS_URL or NATS_URL)") {
		t.Errorf("usage %q does not name both variables", u)
	}
}

func TestDeclarationErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		declare func(r *Registry)
	}{
		{"same name, other type", func(r *Registry) {
			var a int
			var b string
			r.Service("x").Int(&a, "batch", 1, "a")
			r.Service("x").String(&b, "batch", "1", "b")
		}},
		{"same name, other default", func(r *Registry) {
			var a, b int
			r.Service("x").Int(&a, "batch", 1, "a")
			r.Service("x").Int(&b, "batch", 2, "b")
		}},
		{"old name taken by a setting", func(r *Registry) {
			var a, b int
			r.Service("x").Int(&a, "batch", 1, "a")
			r.Service("y").Int(&b, "size", 1, "b").Was("", "x-batch")
		}},
		{"old name twice", func(r *Registry) {
			var a, b int
			r.Service("x").Int(&a, "batch", 1, "a").Was("BATCH", "")
			r.Service("y").Int(&b, "batch", 1, "b").Was("BATCH", "")
		}},
		{"bad name", func(r *Registry) {
			var a int
			r.Service("x").Int(&a, "Batch_Size", 1, "a")
		}},
		{"check of another type", func(r *Registry) {
			var a int
			r.Service("x").Int(&a, "batch", 1, "a").Check(func(string) error { return nil })
		}},
		{"positive on a string", func(r *Registry) {
			var a string
			r.Service("x").String(&a, "name", "n", "a").Positive()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			r := NewRegistry(fs, nil)
			tc.declare(r) // must not panic
			var de *DeclarationError
			if err := r.Err(); !errors.As(err, &de) {
				t.Fatalf("Err() = %v, want a *DeclarationError", err)
			}
			if err := r.Resolve(); !errors.As(err, &de) {
				t.Fatalf("Resolve() = %v, want the declaration error", err)
			}
		})
	}
}

func TestSharedDeclaration(t *testing.T) {
	// Two parts of a program may declare the same setting alike: both get its value.
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	r := NewRegistry(fs, nil)
	var a, b string
	r.Shared().String(&a, "nats-url", "nats://x", "one").AlsoEnv("NATS_URL")
	r.Shared().String(&b, "nats-url", "nats://x", "two").AlsoEnv("NATS_URL")
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse([]string{"--nats-url=nats://y"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Resolve(); err != nil {
		t.Fatal(err)
	}
	if a != "nats://y" || b != "nats://y" || len(r.Settings()) != 1 {
		t.Fatalf("a %q b %q settings %d", a, b, len(r.Settings()))
	}
}

func TestDefaultChangesOnlyUnsetSettings(t *testing.T) {
	reg, c, err := resolve(t, map[string]string{"JETSUITE_SVC_MODE": "fast"})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Default("svc-mode", "slow"); err != nil {
		t.Fatal(err)
	}
	if err := reg.Default("svc-batch", "3"); err != nil {
		t.Fatal(err)
	}
	if c.Mode != "fast" || c.Batch != 3 {
		t.Fatalf("config %+v: mode was set in the environment, batch was not", c)
	}
	var se *SettingError
	if err := reg.Default("svc-rate", "-1"); !errors.As(err, &se) {
		t.Fatalf("a bad default is an error too, got %v", err)
	}
}

func TestMarkdownListsDeprecatedNames(t *testing.T) {
	reg, _, _ := setup(t, nil)
	var buf bytes.Buffer
	reg.WriteMarkdown(&buf)
	want := "| `JETSUITE_SVC_BATCH` | `--svc-batch` | `100` | largest batch | `SVC_BATCH` `--svc-batch-size` |\n"
	if !strings.Contains(buf.String(), want) {
		t.Fatalf("table lacks %q:\n%s", want, buf.String())
	}
}

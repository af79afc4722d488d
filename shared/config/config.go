// Package config binds service settings to command-line flags whose defaults come from
// environment variables, and remembers every setting so that the whole table can be printed
// (`jetsuite config`) and documented in one place.
//
// Precedence: a flag given on the command line wins over the environment variable, which wins
// over the built-in default. Settings marked secret are never printed with their value.
package config

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Setting describes one configuration knob.
type Setting struct {
	Flag    string // command-line flag, without dashes
	Env     string // environment variable
	Default string // built-in default, as text
	Usage   string
	Secret  bool // never print the value
	Owner   string
}

var (
	mu       sync.Mutex
	settings = map[string]Setting{}
)

func remember(s Setting) {
	mu.Lock()
	defer mu.Unlock()
	settings[s.Flag] = s
}

// Settings returns every setting that has been bound so far, sorted by environment variable.
func Settings() []Setting {
	mu.Lock()
	defer mu.Unlock()
	out := make([]Setting, 0, len(settings))
	for _, s := range settings {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Env < out[j].Env })
	return out
}

// WriteMarkdown prints the settings as a Markdown table (the README's config table is made with it).
func WriteMarkdown(w io.Writer) {
	fmt.Fprintln(w, "| environment | flag | default | what |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, s := range Settings() {
		def := s.Default
		if def == "" {
			def = "(empty)"
		}
		fmt.Fprintf(w, "| `%s` | `--%s` | `%s` | %s |\n", s.Env, s.Flag, def, s.Usage)
	}
}

// Binder binds settings on one FlagSet on behalf of one owner (a service name).
// Binding the same flag twice on the same FlagSet is allowed and returns the first binding's
// value, so that services sharing a setting (NATS_URL, say) can each declare it.
type Binder struct {
	FS    *flag.FlagSet
	Owner string
	// Getenv reads the environment; nil means os.Getenv (tests replace it).
	Getenv func(string) string
}

func (b Binder) env(name string) (string, bool) {
	get := b.Getenv
	if get == nil {
		get = os.Getenv
	}
	v := get(name)
	return v, v != ""
}

func (b Binder) exists(name string) bool { return b.FS.Lookup(name) != nil }

// String binds a string setting.
func (b Binder) String(p *string, name, env, def, usage string) {
	b.bind(Setting{Flag: name, Env: env, Default: def, Usage: usage, Owner: b.Owner})
	if b.exists(name) {
		*p = b.FS.Lookup(name).Value.String()
		b.FS.Lookup(name).Value.(*shared).ptrs = append(b.FS.Lookup(name).Value.(*shared).ptrs, p)
		return
	}
	if v, ok := b.env(env); ok {
		def = v
	}
	*p = def
	b.FS.Var(&shared{ptrs: []*string{p}}, name, usage+" (env "+env+")")
}

// Secret binds a string setting whose value must never be printed.
func (b Binder) Secret(p *string, name, env, usage string) {
	b.bind(Setting{Flag: name, Env: env, Usage: usage, Secret: true, Owner: b.Owner})
	if v, ok := b.env(env); ok {
		*p = v
	}
	if !b.exists(name) {
		b.FS.Var(&secretValue{p: p}, name, usage+" (env "+env+"; prefer the environment: flags show up in ps)")
	}
}

// Int binds an integer setting.
func (b Binder) Int(p *int, name, env string, def int, usage string) {
	b.parsed(name, env, strconv.Itoa(def), usage, func(s string) error {
		v, err := strconv.Atoi(s)
		if err == nil {
			*p = v
		}
		return err
	})
}

// Float binds a floating-point setting.
func (b Binder) Float(p *float64, name, env string, def float64, usage string) {
	b.parsed(name, env, strconv.FormatFloat(def, 'g', -1, 64), usage, func(s string) error {
		v, err := strconv.ParseFloat(s, 64)
		if err == nil {
			*p = v
		}
		return err
	})
}

// Bool binds a boolean setting.
func (b Binder) Bool(p *bool, name, env string, def bool, usage string) {
	b.parsed(name, env, strconv.FormatBool(def), usage, func(s string) error {
		v, err := strconv.ParseBool(s)
		if err == nil {
			*p = v
		}
		return err
	})
	b.FS.Lookup(name).Value.(*typed).isBool = true
}

// Duration binds a duration setting ("30s", "5m").
func (b Binder) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	b.parsed(name, env, def.String(), usage, func(s string) error {
		v, err := time.ParseDuration(s)
		if err == nil {
			*p = v
		}
		return err
	})
}

// List binds a comma-separated list setting.
func (b Binder) List(p *[]string, name, env string, def []string, usage string) {
	b.parsed(name, env, strings.Join(def, ","), usage, func(s string) error {
		*p = SplitList(s)
		return nil
	})
}

// SplitList splits a comma-separated list, trimming blanks and dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func (b Binder) bind(s Setting) { remember(s) }

// parsed binds a typed setting through a parse function. An unparsable environment value is
// reported when flags are parsed (by Validate), not silently replaced by the default.
func (b Binder) parsed(name, env, def, usage string, set func(string) error) {
	b.bind(Setting{Flag: name, Env: env, Default: def, Usage: usage, Owner: b.Owner})
	if b.exists(name) {
		v := b.FS.Lookup(name).Value.(*typed)
		v.sets = append(v.sets, set)
		_ = set(v.text)
		return
	}
	v := &typed{text: def, sets: []func(string) error{set}}
	_ = set(def)
	if e, ok := b.env(env); ok {
		if err := v.Set(e); err != nil {
			v.envErr = fmt.Errorf("environment %s=%q: %w", env, e, err)
		}
	}
	b.FS.Var(v, name, usage+" (env "+env+")")
}

// Validate reports environment values that could not be parsed.
func Validate(fs *flag.FlagSet) error {
	var errs []string
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := f.Value.(*typed); ok && v.envErr != nil {
			errs = append(errs, v.envErr.Error())
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("bad configuration: %s", strings.Join(errs, "; "))
	}
	return nil
}

type shared struct{ ptrs []*string }

func (s *shared) String() string {
	if s == nil || len(s.ptrs) == 0 {
		return ""
	}
	return *s.ptrs[0]
}

func (s *shared) Set(v string) error {
	for _, p := range s.ptrs {
		*p = v
	}
	return nil
}

type typed struct {
	isBool bool
	text   string
	sets   []func(string) error
	envErr error
}

func (t *typed) String() string {
	if t == nil {
		return ""
	}
	return t.text
}

func (t *typed) Set(s string) error {
	for _, set := range t.sets {
		if err := set(s); err != nil {
			return err
		}
	}
	t.text = s
	t.envErr = nil
	return nil
}

// IsBoolFlag lets "--flag" mean "--flag=true" for boolean settings.
func (t *typed) IsBoolFlag() bool { return t.isBool }

type secretValue struct{ p *string }

func (s *secretValue) String() string {
	if s == nil || s.p == nil || *s.p == "" {
		return ""
	}
	return "(set)"
}

func (s *secretValue) Set(v string) error { *s.p = v; return nil }

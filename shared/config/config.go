// Package config declares jetsuite's settings once each — name, default, description,
// validation — and reads them from flags and the environment.
//
// Naming: a service's setting NAME is JETSUITE_<SERVICE>_<NAME> in the environment and
// --<service>-<name> on the command line; a shared setting (NATS URL, data directory,
// replicas...) drops the service part: JETSUITE_<NAME>, --<name>. Names are derived from the
// declaration, so they cannot drift from the rule. Settings renamed to this scheme keep their
// old names for one release (Setting.Was): reading one is recorded as a Deprecation, which
// the binary logs with the new name.
//
// Precedence: a flag given on the command line wins over the environment variable (an empty
// variable counts as unset), which wins over the declared default. Every value, default
// included, is parsed and validated by Registry.Resolve; a bad one is a *SettingError naming
// the setting, where the value came from and (unless the setting is secret) the value.
//
// Values go into the caller's config structs through pointers: a declaration is
// b.Int(&c.Batch, "batch", 1000, "largest batch").Positive().
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kinds of setting values, as shown in errors.
const (
	KindString   = "string"
	KindInt      = "int"
	KindUint     = "uint"
	KindFloat    = "float"
	KindBool     = "bool"
	KindDuration = "duration"
	KindList     = "list"
)

// Setting is one declared setting.
type Setting struct {
	Service string // owning service; "" for a shared setting
	Name    string // lower-case words joined by '-'
	Kind    string
	Default string // as text
	Usage   string
	Secret  bool // the value is never printed
	// Aliases are other names read for this setting: deprecated old names, or a conventional
	// name (NATS_URL) that is read without a warning.
	Aliases []Alias

	reg    *Registry
	parse  func(string) (any, error)
	assign []func(any)
	checks []func(any) error

	flagText *string // the value given on the command line, if any
	flagName string  // the name it was given under
	text     string  // the resolved value, as text
	source   string  // where text came from ("" for the default)
}

// Alias is another name of a setting.
type Alias struct {
	Env  string // "" if none
	Flag string // "" if none
	// Conventional aliases (NATS_URL) are accepted without a warning; the others are deprecated.
	Conventional bool
}

// Env is the setting's environment variable.
func (s *Setting) Env() string {
	return "JETSUITE_" + strings.ToUpper(strings.ReplaceAll(s.Flag(), "-", "_"))
}

// Flag is the setting's command-line flag, without dashes.
func (s *Setting) Flag() string {
	if s.Service == "" {
		return s.Name
	}
	return s.Service + "-" + s.Name
}

// Value is the resolved value as text (after Resolve).
func (s *Setting) Value() string { return s.text }

// Explicit reports whether the value came from a flag or the environment.
func (s *Setting) Explicit() bool { return s.source != "" }

// Deprecation records that a setting was read under its old name.
type Deprecation struct{ Old, New string }

// SettingError is a value that could not be parsed or failed validation.
type SettingError struct {
	Setting string // the setting's environment name
	Source  string // "flag --x", "environment X" or "default"
	Value   string // "(secret)" for secret settings
	Err     error
}

func (e *SettingError) Error() string {
	return fmt.Sprintf("setting %s: %s %q: %v", e.Setting, e.Source, e.Value, e.Err)
}

func (e *SettingError) Unwrap() error { return e.Err }

// DeclarationError is a programming error in the declarations: a bad name, the same name
// declared twice incompatibly, a check that does not fit the setting's kind.
type DeclarationError struct {
	Name   string // the flag name concerned
	Reason string
}

func (e *DeclarationError) Error() string {
	return fmt.Sprintf("setting declaration --%s: %s", e.Name, e.Reason)
}

// Registry holds the settings of one run (or one test).
type Registry struct {
	fs           *flag.FlagSet // nil: defaults only, no flags
	getenv       func(string) string
	settings     []*Setting
	byFlag       map[string]*Setting // every flag name, old ones included
	byEnv        map[string]*Setting // every environment name, old ones included
	errs         []error
	deprecations []Deprecation
}

// NewRegistry returns a registry declaring flags on fs and reading the environment through
// getenv (os.Getenv; tests pass a map's lookup). fs may be nil: declarations then only
// assign defaults (see Defaults).
func NewRegistry(fs *flag.FlagSet, getenv func(string) string) *Registry {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	return &Registry{fs: fs, getenv: getenv, byFlag: map[string]*Setting{}, byEnv: map[string]*Setting{}}
}

// Defaults returns a binder for service whose declarations only assign their defaults: a
// service's DefaultConfig is its declarations applied to a zero Config, so that every default
// is written once, in the declaration.
func Defaults(service string) Binder { return NewRegistry(nil, nil).Service(service) }

// Service returns the binder for a service's settings.
func (r *Registry) Service(name string) Binder { return Binder{r: r, service: name} }

// Shared returns the binder for settings without a service part.
func (r *Registry) Shared() Binder { return Binder{r: r} }

// Settings returns every declared setting, sorted by environment name.
func (r *Registry) Settings() []*Setting {
	out := slices.Clone(r.settings)
	sort.Slice(out, func(i, j int) bool { return out[i].Env() < out[j].Env() })
	return out
}

// Lookup returns the setting with the flag name (new or old), or nil.
func (r *Registry) Lookup(flagName string) *Setting { return r.byFlag[flagName] }

// Err reports the declaration errors (nil if none).
func (r *Registry) Err() error { return errors.Join(r.errs...) }

// Deprecations lists the old names read by Resolve.
func (r *Registry) Deprecations() []Deprecation { return slices.Clone(r.deprecations) }

// LogDeprecations warns once per old name read.
func (r *Registry) LogDeprecations(log *slog.Logger) {
	for _, d := range r.deprecations {
		log.Warn("deprecated setting name: use the new one; the old name goes away in the next release", "old", d.Old, "new", d.New)
	}
}

var nameRule = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// NameOK reports whether a service or setting name follows the naming rule.
func NameOK(name string) bool { return nameRule.MatchString(name) }

func (r *Registry) fail(name, format string, args ...any) {
	r.errs = append(r.errs, &DeclarationError{Name: name, Reason: fmt.Sprintf(format, args...)})
}

// declare adds a setting, or joins an identical earlier declaration of the same name (two
// services may share a setting only if kind and default agree).
func (r *Registry) declare(s *Setting, assign func(any)) *Setting {
	s.reg = r
	if !NameOK(s.Name) || (s.Service != "" && !NameOK(s.Service)) {
		r.fail(s.Flag(), "names are lower-case words joined by '-'")
		return s
	}
	if prev := r.byFlag[s.Flag()]; prev != nil {
		if prev.Flag() != s.Flag() {
			r.fail(s.Flag(), "already the old name of --%s", prev.Flag())
			return s
		}
		if prev.Kind != s.Kind || prev.Default != s.Default {
			r.fail(s.Flag(), "declared twice: %s %q and %s %q", prev.Kind, prev.Default, s.Kind, s.Default)
			return s
		}
		prev.assign = append(prev.assign, assign)
		if v, err := prev.parse(prev.text); err == nil {
			assign(v)
		}
		s.reg = nil // chained calls on this duplicate are ignored: the first declaration rules
		return prev
	}
	v, err := s.parse(s.Default)
	if err != nil {
		r.fail(s.Flag(), "default %q: %v", s.Default, err)
		return s
	}
	s.assign = []func(any){assign}
	assign(v)
	s.text = s.Default
	r.settings = append(r.settings, s)
	r.byFlag[s.Flag()] = s
	r.byEnv[s.Env()] = s
	r.addFlag(s, s.Flag(), s.Usage+" (env "+s.Env()+")")
	return s
}

func (r *Registry) addFlag(s *Setting, name, usage string) {
	if r.fs == nil {
		return
	}
	if s.Secret {
		usage += " (prefer the environment: flags show up in ps)"
	}
	r.fs.Var(&flagValue{s: s, name: name}, name, usage)
}

// Was declares the setting's old names (either may be ""): they are still read, with a
// deprecation warning. An old name equal to the new one is ignored.
func (s *Setting) Was(env, flagName string) *Setting {
	return s.alias(Alias{Env: env, Flag: flagName})
}

// AlsoEnv declares a conventional environment name read without a warning (NATS_URL).
func (s *Setting) AlsoEnv(env string) *Setting {
	return s.alias(Alias{Env: env, Conventional: true})
}

func (s *Setting) alias(a Alias) *Setting {
	r := s.reg
	if r == nil {
		return s
	}
	if a.Env == s.Env() {
		a.Env = ""
	}
	if a.Flag == s.Flag() {
		a.Flag = ""
	}
	if other := r.byEnv[a.Env]; other == s {
		a.Env = "" // declared again by a service sharing the setting
	}
	if other := r.byFlag[a.Flag]; other == s {
		a.Flag = ""
	}
	if a.Env != "" {
		if other := r.byEnv[a.Env]; other != nil {
			r.fail(s.Flag(), "old name %s is already taken by --%s", a.Env, other.Flag())
			return s
		}
		r.byEnv[a.Env] = s
		if a.Conventional && r.fs != nil {
			f := r.fs.Lookup(s.Flag())
			f.Usage = strings.Replace(f.Usage, "(env "+s.Env(), "(env "+s.Env()+" or "+a.Env, 1)
		}
	}
	if a.Flag != "" {
		if other := r.byFlag[a.Flag]; other != nil {
			r.fail(s.Flag(), "old name --%s is already taken by --%s", a.Flag, other.Flag())
			return s
		}
		r.byFlag[a.Flag] = s
		r.addFlag(s, a.Flag, "deprecated: use --"+s.Flag())
	}
	if a.Env != "" || a.Flag != "" {
		s.Aliases = append(s.Aliases, a)
	}
	return s
}

// Check adds a validation: f is a func(T) error where T is the setting's Go type (string,
// int, uint64, float64, bool, time.Duration, []string; int64 for a size).
func (s *Setting) Check(f any) *Setting {
	if s.reg == nil {
		return s
	}
	var kind string
	var check func(any) error
	switch f := f.(type) {
	case func(string) error:
		kind, check = KindString, func(v any) error { return f(v.(string)) }
	case func(int) error:
		kind, check = KindInt, func(v any) error { return f(v.(int)) }
	case func(uint64) error:
		kind, check = KindUint, func(v any) error { return f(v.(uint64)) }
	case func(float64) error:
		kind, check = KindFloat, func(v any) error { return f(v.(float64)) }
	case func(bool) error:
		kind, check = KindBool, func(v any) error { return f(v.(bool)) }
	case func(time.Duration) error:
		kind, check = KindDuration, func(v any) error { return f(v.(time.Duration)) }
	case func(int64) error:
		kind, check = KindBytes, func(v any) error { return f(v.(int64)) }
	case func([]string) error:
		kind, check = KindList, func(v any) error { return f(v.([]string)) }
	default:
		s.reg.fail(s.Flag(), "check %T is not a func(T) error", f)
		return s
	}
	if kind != s.Kind {
		s.reg.fail(s.Flag(), "check of a %s on a %s setting", kind, s.Kind)
		return s
	}
	s.checks = append(s.checks, check)
	return s
}

// ErrNotPositive and friends are the errors of the predefined checks.
var (
	ErrNotPositive = errors.New("must be positive")
	ErrNegative    = errors.New("must not be negative")
	ErrEmpty       = errors.New("must not be empty")
)

// Positive requires a number or duration > 0.
func (s *Setting) Positive() *Setting {
	return s.sign(func(c int) bool { return c > 0 }, ErrNotPositive)
}

// NonNegative requires a number or duration >= 0.
func (s *Setting) NonNegative() *Setting {
	return s.sign(func(c int) bool { return c >= 0 }, ErrNegative)
}

func (s *Setting) sign(ok func(int) bool, err error) *Setting {
	switch s.Kind {
	case KindInt:
		return s.Check(func(v int) error { return okOr(ok(cmpZero(v)), err) })
	case KindFloat:
		return s.Check(func(v float64) error { return okOr(ok(cmpZero(v)), err) })
	case KindDuration:
		return s.Check(func(v time.Duration) error { return okOr(ok(cmpZero(v)), err) })
	}
	if s.reg != nil {
		s.reg.fail(s.Flag(), "%v: not a number", err)
	}
	return s
}

func cmpZero[T int | float64 | time.Duration](v T) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

func okOr(ok bool, err error) error {
	if ok {
		return nil
	}
	return err
}

// OneOf requires a string among the choices.
func (s *Setting) OneOf(choices ...string) *Setting {
	return s.Check(func(v string) error {
		if slices.Contains(choices, v) {
			return nil
		}
		return fmt.Errorf("must be one of %s", strings.Join(choices, ", "))
	})
}

// NotEmpty requires a non-empty string or list.
func (s *Setting) NotEmpty() *Setting {
	if s.Kind == KindList {
		return s.Check(func(v []string) error { return okOr(len(v) > 0, ErrEmpty) })
	}
	return s.Check(func(v string) error { return okOr(v != "", ErrEmpty) })
}

// Binder declares settings for one service (or the shared ones).
type Binder struct {
	r       *Registry
	service string
}

// Service is the service the binder declares for ("" for shared settings).
func (b Binder) Service() string { return b.service }

func (b Binder) setting(name, kind, def, usage string, parse func(string) (any, error), assign func(any)) *Setting {
	return b.r.declare(&Setting{Service: b.service, Name: name, Kind: kind, Default: def, Usage: usage, parse: parse}, assign)
}

// String declares a string setting.
func (b Binder) String(p *string, name, def, usage string) *Setting {
	return b.setting(name, KindString, def, usage,
		func(s string) (any, error) { return s, nil }, func(v any) { *p = v.(string) })
}

// Secret declares a string setting whose value is never printed (default empty).
func (b Binder) Secret(p *string, name, usage string) *Setting {
	s := &Setting{Service: b.service, Name: name, Kind: KindString, Usage: usage, Secret: true,
		parse: func(s string) (any, error) { return s, nil }}
	return b.r.declare(s, func(v any) { *p = v.(string) })
}

// Int declares an integer setting.
func (b Binder) Int(p *int, name string, def int, usage string) *Setting {
	return b.setting(name, KindInt, strconv.Itoa(def), usage,
		func(s string) (any, error) { return strconv.Atoi(s) }, func(v any) { *p = v.(int) })
}

// Uint64 declares an unsigned integer setting.
func (b Binder) Uint64(p *uint64, name string, def uint64, usage string) *Setting {
	return b.setting(name, KindUint, strconv.FormatUint(def, 10), usage,
		func(s string) (any, error) { return strconv.ParseUint(s, 10, 64) }, func(v any) { *p = v.(uint64) })
}

// Float declares a floating-point setting.
func (b Binder) Float(p *float64, name string, def float64, usage string) *Setting {
	return b.setting(name, KindFloat, strconv.FormatFloat(def, 'g', -1, 64), usage,
		func(s string) (any, error) { return strconv.ParseFloat(s, 64) }, func(v any) { *p = v.(float64) })
}

// Bool declares a boolean setting ("--name" alone means true).
func (b Binder) Bool(p *bool, name string, def bool, usage string) *Setting {
	return b.setting(name, KindBool, strconv.FormatBool(def), usage,
		func(s string) (any, error) { return strconv.ParseBool(s) }, func(v any) { *p = v.(bool) })
}

// Duration declares a duration setting ("30s", "5m").
func (b Binder) Duration(p *time.Duration, name string, def time.Duration, usage string) *Setting {
	return b.setting(name, KindDuration, def.String(), usage,
		func(s string) (any, error) { return time.ParseDuration(s) }, func(v any) { *p = v.(time.Duration) })
}

// List declares a comma-separated list setting. A flag given as "--name=" sets it empty.
func (b Binder) List(p *[]string, name string, def []string, usage string) *Setting {
	return b.setting(name, KindList, strings.Join(def, ","), usage,
		func(s string) (any, error) { return SplitList(s), nil }, func(v any) { *p = slices.Clone(v.([]string)) })
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

// Resolve gives every setting its value: the flag if one was given (after fs.Parse), else the
// first non-empty environment variable (the new name, then old ones), else the default. It
// returns the declaration errors, or every bad value as a *SettingError.
func (r *Registry) Resolve() error {
	if err := r.Err(); err != nil {
		return err
	}
	var errs []error
	for _, s := range r.settings {
		text, source, old := s.Default, "", ""
		for _, env := range s.envNames() {
			if v := r.getenv(env.name); v != "" {
				text, source = v, "environment "+env.name
				if env.deprecated {
					old = env.name
				}
				break
			}
		}
		if s.flagText != nil {
			text, source, old = *s.flagText, "flag --"+s.flagName, ""
			if s.flagName != s.Flag() {
				old = "--" + s.flagName
			}
		}
		if old != "" {
			nw := s.Env()
			if strings.HasPrefix(old, "--") {
				nw = "--" + s.Flag()
			}
			r.deprecations = append(r.deprecations, Deprecation{Old: old, New: nw})
		}
		if err := s.set(text, source); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type envName struct {
	name       string
	deprecated bool
}

func (s *Setting) envNames() []envName {
	out := []envName{{name: s.Env()}}
	for _, a := range s.Aliases {
		if a.Env != "" {
			out = append(out, envName{name: a.Env, deprecated: !a.Conventional})
		}
	}
	return out
}

// set parses, validates and assigns text.
// Invalid reports the setting's resolved value as invalid for a reason found after Resolve
// (e.g. a table name the pipeline, compiled later, does not have).
func (s *Setting) Invalid(err error) *SettingError { return s.errorFor(s.text, s.source, err) }

func (s *Setting) errorFor(text, source string, err error) *SettingError {
	where, shown := source, text
	if where == "" {
		where = "default"
	}
	if s.Secret {
		shown = "(secret)"
	}
	return &SettingError{Setting: s.Env(), Source: where, Value: shown, Err: err}
}

func (s *Setting) set(text, source string) error {
	bad := func(err error) error { return s.errorFor(text, source, err) }
	v, err := s.parse(text)
	if err != nil {
		var num *strconv.NumError
		if errors.As(err, &num) {
			err = fmt.Errorf("not a valid %s", s.Kind)
		}
		return bad(err)
	}
	for _, check := range s.checks {
		if err := check(v); err != nil {
			return bad(err)
		}
	}
	for _, assign := range s.assign {
		assign(v)
	}
	s.text, s.source = text, source
	return nil
}

// Default changes the value of a setting that was not given by flag or environment (`all
// --bridge-kafka-embedded` switches the bridge on unless told otherwise). Call after Resolve.
func (r *Registry) Default(flagName, text string) error {
	s := r.byFlag[flagName]
	if s == nil {
		return &DeclarationError{Name: flagName, Reason: "no such setting"}
	}
	if s.Explicit() {
		return nil
	}
	return s.set(text, "")
}

// WriteMarkdown prints the settings as a Markdown table (the README's config table is made
// with it).
func (r *Registry) WriteMarkdown(w io.Writer) {
	fmt.Fprintln(w, "| environment | flag | default | what | deprecated names |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, s := range r.Settings() {
		def := s.Default
		if def == "" {
			def = "(empty)"
		}
		var old []string
		for _, a := range s.Aliases {
			if a.Conventional {
				continue
			}
			if a.Env != "" {
				old = append(old, "`"+a.Env+"`")
			}
			if a.Flag != "" {
				old = append(old, "`--"+a.Flag+"`")
			}
		}
		fmt.Fprintf(w, "| `%s` | `--%s` | `%s` | %s | %s |\n", s.Env(), s.Flag(), def, s.Usage, strings.Join(old, " "))
	}
}

// flagValue is a setting's flag: it only records the text; Resolve parses and validates it,
// so a bad flag is reported like a bad environment value.
type flagValue struct {
	s    *Setting
	name string
}

func (f *flagValue) String() string {
	if f == nil || f.s == nil || f.s.Secret {
		return ""
	}
	return f.s.Default
}

func (f *flagValue) Set(v string) error {
	f.s.flagText, f.s.flagName = &v, f.name
	return nil
}

// IsBoolFlag lets "--flag" mean "--flag=true" for boolean settings.
func (f *flagValue) IsBoolFlag() bool { return f != nil && f.s != nil && f.s.Kind == KindBool }

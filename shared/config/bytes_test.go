package config

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1048576": 1 << 20, "-1": -1, "512MiB": 512 << 20, "512mib": 512 << 20, "2 GiB": 2 << 30,
		"1KiB": 1024, "3TiB": 3 << 40, "2GB": 2_000_000_000, "5MB": 5_000_000, "7KB": 7000, "1TB": 1e12, "100B": 100,
	} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "1.5GiB", "-2MiB", "12 apples", "1XB", "99999999999TiB", "GiB1"} {
		if n, err := ParseBytes(in); !errors.Is(err, ErrBadSize) {
			t.Errorf("ParseBytes(%q) = %d, %v; want ErrBadSize", in, n, err)
		}
	}
}

func TestFormatBytesRoundTrips(t *testing.T) {
	for n, want := range map[int64]string{256 << 20: "256MiB", 1 << 30: "1GiB", 1536 << 20: "1536MiB", 1000: "1000", 0: "0", -1: "-1", 3 << 10: "3KiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
		if back, err := ParseBytes(FormatBytes(n)); err != nil || back != n {
			t.Errorf("ParseBytes(FormatBytes(%d)) = %d, %v", n, back, err)
		}
	}
}

// TestBytesSetting: a size setting reads units from the environment and flags, shows its
// default with a unit, runs its checks on the value in bytes, and reports a bad size with the
// setting's name.
func TestBytesSetting(t *testing.T) {
	declare := func(env map[string]string, args ...string) (int64, *Registry, error) {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		reg := NewRegistry(fs, func(k string) string { return env[k] })
		var n int64
		reg.Shared().Bytes(&n, "stream-max-bytes", 256<<20, "limit").Check(func(v int64) error {
			if v < 1<<20 {
				return errors.New("must be at least 1MiB")
			}
			return nil
		})
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return n, reg, reg.Resolve()
	}
	if n, reg, err := declare(nil); err != nil || n != 256<<20 || reg.Settings()[0].Default != "256MiB" {
		t.Errorf("default: %d, %v", n, err)
	}
	if n, _, err := declare(map[string]string{"JETSUITE_STREAM_MAX_BYTES": "1GB"}); err != nil || n != 1e9 {
		t.Errorf("environment 1GB: %d, %v", n, err)
	}
	if n, _, err := declare(map[string]string{"JETSUITE_STREAM_MAX_BYTES": "1GB"}, "--stream-max-bytes", "64MiB"); err != nil || n != 64<<20 {
		t.Errorf("flag 64MiB: %d, %v", n, err)
	}
	_, _, err := declare(nil, "--stream-max-bytes", "lots")
	var se *SettingError
	if !errors.As(err, &se) || se.Setting != "JETSUITE_STREAM_MAX_BYTES" || !errors.Is(err, ErrBadSize) {
		t.Errorf("bad size: %v", err)
	}
	if _, _, err := declare(nil, "--stream-max-bytes", "1KiB"); err == nil || !strings.Contains(err.Error(), "at least 1MiB") {
		t.Errorf("check not run on the size: %v", err)
	}
}

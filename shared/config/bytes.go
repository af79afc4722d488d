package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// KindBytes is a size in bytes: a whole number with an optional unit (see ParseBytes).
const KindBytes = "size"

// byteUnits are the units ParseBytes accepts: the SI ones in powers of 1000 and the IEC ones in
// powers of 1024, so that "1GB" and "1GiB" each mean what they say. Checked case-insensitively.
var byteUnits = []struct {
	suffix string
	scale  int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"B", 1},
}

// ErrBadSize is the error of a size ParseBytes cannot read.
var ErrBadSize = errors.New("not a size: a whole number of bytes, optionally with a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), or -1")

// ParseBytes reads a size: "536870912", "512MiB", "2GB" (2,000,000,000), "-1" (a plain
// negative number is returned as is: callers give -1 a meaning, such as no limit).
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	num, scale := s, int64(1)
	for _, u := range byteUnits {
		if len(s) > len(u.suffix) && strings.EqualFold(s[len(s)-len(u.suffix):], u.suffix) {
			num, scale = strings.TrimSpace(s[:len(s)-len(u.suffix)]), u.scale
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || (scale > 1 && n < 0) {
		return 0, ErrBadSize
	}
	if scale > 1 && n > (1<<63-1)/scale {
		return 0, fmt.Errorf("%w (%s is too large)", ErrBadSize, s)
	}
	return n * scale, nil
}

// FormatBytes writes n in the largest binary unit that divides it ("256MiB"), else in bytes.
func FormatBytes(n int64) string {
	for _, u := range []struct {
		suffix string
		scale  int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.scale == 0 {
			return strconv.FormatInt(n/u.scale, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// Bytes declares a size setting ("512MiB", "2GB", a number of bytes; see ParseBytes).
func (b Binder) Bytes(p *int64, name string, def int64, usage string) *Setting {
	return b.setting(name, KindBytes, FormatBytes(def), usage,
		func(s string) (any, error) { return ParseBytes(s) }, func(v any) { *p = v.(int64) })
}

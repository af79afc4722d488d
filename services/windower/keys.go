package windower

import (
	"strconv"
	"strings"
)

// KV keys may only hold [-/_=.a-zA-Z0-9]. Group keys are escaped so that any value fits and the
// key stays readable: letters, digits, '-' and '_' stay, every other byte becomes =XX. Key
// columns are joined with '/', and a row's key is "<group key>.<window start ms>".
func escapeKey(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if !plain(s[i]) {
			clean = false
			break
		}
	}
	if clean && s != "" {
		return s
	}
	var b strings.Builder
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	if b.Len() == 0 {
		return "=" // the empty string
	}
	return b.String()
}

func plain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// groupKey builds the escaped group key from key columns.
func groupKey(cols []Column) string {
	if len(cols) == 1 {
		return escapeKey(unquote(cols[0].JSON))
	}
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = escapeKey(unquote(c.JSON))
	}
	return strings.Join(parts, "/")
}

func unquote(j string) string {
	if len(j) > 0 && j[0] == '"' {
		if s, err := strconv.Unquote(j); err == nil {
			return s
		}
	}
	return j
}

// RowKey is the KV key of a windowed row.
func RowKey(group string, windowStart int64) string {
	return group + "." + strconv.FormatInt(windowStart, 10)
}

package windower

import (
	"strconv"
	"strings"

	"github.com/jetsuite/jetsuite/shared/kvx"
)

// Group keys are escaped with kvx.Escape so that any value fits a KV key and stays readable. Key
// columns are joined with '/', and a row's key is "<group key>.<window start ms>".
var escapeKey = kvx.Escape

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

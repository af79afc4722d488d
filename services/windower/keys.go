package windower

import (
	"strconv"
	"strings"

	"github.com/jetsuite/jetsuite/shared/kvx"
	"github.com/jetsuite/jetsuite/shared/sqlrt"
)

// Group keys are escaped with kvx.Escape so that any value fits a KV key and stays readable. Key
// columns are joined with '/', and a row's key is "<group key>.<window start ms>".
var escapeKey = kvx.Escape

// groupKey builds the escaped group key from the GROUP BY values.
func groupKey(vals []sqlrt.Value) string {
	if len(vals) == 1 {
		return escapeKey(sqlrt.KeyText(vals[0]))
	}
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = escapeKey(sqlrt.KeyText(v))
	}
	return strings.Join(parts, "/")
}

// RowKey is the KV key of a windowed row.
func RowKey(group string, windowStart int64) string {
	return group + "." + strconv.FormatInt(windowStart, 10)
}

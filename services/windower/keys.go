package windower

import (
	"strconv"

	"github.com/jetsuite/jetsuite/shared/kvx"
	"github.com/jetsuite/jetsuite/shared/sqlrt"
)

// Group keys are escaped with kvx.Escape so that any value fits a KV key and stays readable. Key
// columns are joined with '/', and a row's key is "<group key>.<window start ms>".
var escapeKey = kvx.Escape

// groupKey builds the escaped group key from the GROUP BY values.
func groupKey(vals []sqlrt.Value) string { return string(appendGroupKey(nil, vals)) }

// appendGroupKey appends the escaped group key to dst: the hot path's form, which allocates
// nothing for integer and string keys.
func appendGroupKey(dst []byte, vals []sqlrt.Value) []byte {
	for i, v := range vals {
		if i > 0 {
			dst = append(dst, '/')
		}
		switch v.Kind {
		case sqlrt.Integer, sqlrt.BigInt:
			dst = strconv.AppendInt(dst, v.I, 10) // digits and '-' need no escaping
		default:
			dst = kvx.AppendEscape(dst, sqlrt.KeyText(v))
		}
	}
	return dst
}

// RowKey is the KV key of a windowed row.
func RowKey(group string, windowStart int64) string {
	return group + "." + strconv.FormatInt(windowStart, 10)
}

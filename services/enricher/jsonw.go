package enricher

import (
	"strconv"
	"unicode/utf8"

	"github.com/jetsuite/jetsuite/shared/events"
)

// Output rows are written by appending to a byte slice instead of going through encoding/json:
// the column set is fixed, and this is the enricher's hot path (no reflection, no allocation).

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string (escaping like encoding/json, invalid UTF-8 as U+FFFD).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				// Control characters, and <, >, & as encoding/json does (safe to embed in HTML).
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendNullString(b []byte, s events.String) []byte {
	if !s.Valid {
		return append(b, "null"...)
	}
	return appendString(b, s.V)
}

func appendInt(b []byte, i events.Int) []byte {
	if !i.Valid {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, int64(i.V), 10)
}

func appendBigInt(b []byte, i events.BigInt) []byte {
	if !i.Valid {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, i.V, 10)
}

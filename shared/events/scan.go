package events

import (
	"encoding/json"
	"fmt"
)

// The decoders of high-rate inputs (clicks) use scanObject instead of encoding/json: one pass
// over a flat JSON object, no reflection, no allocation for keys. It checks the syntax as it
// goes (anything nested is checked with json.Valid) and hands each member's raw value to a
// callback, so that the ksqlDB coercion rules of Int/BigInt/String apply unchanged.

var errSyntax = ErrNotJSON

// scanObject calls member for each key (raw bytes, without quotes; keys with escapes are
// unescaped) and raw value of the top-level object in data.
func scanObject(data []byte, member func(key, value []byte) error) error {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return ErrNotObject
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return trailing(data, i+1)
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return syntaxAt(i)
		}
		end, escaped, err := stringEnd(data, i)
		if err != nil {
			return err
		}
		key := data[i+1 : end-1]
		if escaped {
			s, err := unquote(data[i:end])
			if err != nil {
				return fmt.Errorf("%w: %v", errSyntax, err)
			}
			key = []byte(s)
		}
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return syntaxAt(i)
		}
		i = skipSpace(data, i+1)
		vend, err := valueEnd(data, i)
		if err != nil {
			return err
		}
		if err := member(key, data[i:vend]); err != nil {
			return err
		}
		i = skipSpace(data, vend)
		if i >= len(data) {
			return syntaxAt(i)
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return trailing(data, i+1)
		default:
			return syntaxAt(i)
		}
	}
}

func trailing(data []byte, i int) error {
	if skipSpace(data, i) != len(data) {
		return syntaxAt(i)
	}
	return nil
}

func syntaxAt(i int) error { return fmt.Errorf("%w: invalid character at offset %d", errSyntax, i) }

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\n' || data[i] == '\t' || data[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the closing quote of the string starting at i.
func stringEnd(data []byte, i int) (int, bool, error) {
	escaped := false
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '\\':
			escaped = true
			j++
		case c == '"':
			return j + 1, escaped, nil
		case c < 0x20:
			return 0, false, syntaxAt(j)
		}
	}
	return 0, false, fmt.Errorf("%w: unterminated string", errSyntax)
}

// valueEnd returns the index after the JSON value starting at i, checking its syntax.
func valueEnd(data []byte, i int) (int, error) {
	if i >= len(data) {
		return 0, syntaxAt(i)
	}
	switch c := data[i]; {
	case c == '"':
		end, _, err := stringEnd(data, i)
		return end, err
	case c == '{' || c == '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				end, _, err := stringEnd(data, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					if !json.Valid(data[i : j+1]) {
						return 0, syntaxAt(i)
					}
					return j + 1, nil
				}
			}
		}
		return 0, syntaxAt(len(data))
	case c == 't':
		return literal(data, i, "true")
	case c == 'f':
		return literal(data, i, "false")
	case c == 'n':
		return literal(data, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		j := i + 1
		for j < len(data) && (data[j] >= '0' && data[j] <= '9' || data[j] == '.' || data[j] == 'e' || data[j] == 'E' || data[j] == '+' || data[j] == '-') {
			j++
		}
		if !json.Valid(data[i:j]) {
			return 0, syntaxAt(i)
		}
		return j, nil
	}
	return 0, syntaxAt(i)
}

func literal(data []byte, i int, lit string) (int, error) {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return 0, syntaxAt(i)
	}
	return i + len(lit), nil
}

// keyIs compares a JSON key with a field name, ignoring ASCII case (as encoding/json matches).
func keyIs(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i := range key {
		a, b := key[i], name[i]
		if a >= 'A' && a <= 'Z' {
			a += 'a' - 'A'
		}
		if b >= 'A' && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// Exported forms of the scanner and of the ksqlDB coercion helpers, for shared/sqlrt's JSON
// decoder (which decodes rows of any declared shape with the same rules and the same speed).

// ScanObject calls member for each key (without quotes, unescaped) and raw value of the
// top-level JSON object in data, checking the syntax as it goes. Errors wrap ErrNotObject or
// ErrNotJSON, or are member's own, returned unchanged.
func ScanObject(data []byte, member func(key, value []byte) error) error {
	return scanObject(data, member)
}

// SkipSpace returns the index of the first non-whitespace byte of data at or after i.
func SkipSpace(data []byte, i int) int { return skipSpace(data, i) }

// ValueEnd returns the index after the JSON value starting at data[i], checking its syntax
// (errors wrap ErrNotJSON).
func ValueEnd(data []byte, i int) (int, error) { return valueEnd(data, i) }

// KeyIs compares a JSON key with a name, ignoring ASCII case.
func KeyIs(key []byte, name string) bool { return keyIs(key, name) }

// ParseInteger applies ksqlDB's INT/BIGINT coercion to a raw JSON value: a number (a fraction
// truncates) or a string holding an integer, within [lo, hi]; ok is false for null. Errors
// wrap ErrCoercion and name typ.
func ParseInteger(b []byte, lo, hi int64, typ string) (v int64, ok bool, err error) {
	return parseInteger(b, lo, hi, typ)
}

// Unquote decodes a JSON string literal.
func Unquote(b []byte) (string, error) { return unquote(b) }

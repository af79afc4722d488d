package sqlrt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jetsuite/jetsuite/shared/events"
)

// The JSON format of ksqlDB's VALUE_FORMAT='JSON': a row is a JSON object whose members are
// matched to columns by name ignoring ASCII case, and each value is coerced to its column's type
// the way ksqlDB's JSON deserializer does (see shared/events/ksql.go for the scalar rules):
//
//   - JSON null, or a missing member, is SQL NULL (for every type).
//   - BOOLEAN: true/false, or the strings "true"/"false" (any case).
//   - INTEGER/BIGINT: a number (a fraction truncates: 3.9 -> 3) or a string holding an integer
//     ("302" -> 302), within the type's range.
//   - DOUBLE: a number, or a string holding one.
//   - DECIMAL(p, s): as DOUBLE (held as float64), rounded half-up to s digits when s > 0.
//   - STRING: a string as it is; a number or boolean as its JSON text (302 -> "302").
//   - ARRAY<T>: an array, each element coerced to T.
//   - MAP<STRING, T>: an object, each value coerced to T; keys as they are.
//   - STRUCT<...>: an object; members matched to the fields ignoring case; missing fields NULL.
//
// Anything else (true for an INTEGER, an object for a STRING, "abc" for a DOUBLE) is an error
// that wraps events.ErrCoercion. A target type of kind Null (unknown) takes the JSON value as it
// is: boolean -> BOOLEAN, integral number -> BIGINT, other number -> DOUBLE, string -> STRING,
// array -> ARRAY, object -> MAP.
//
// Writing is the reverse: AppendJSON / AppendObject produce compact JSON with strings escaped
// exactly as encoding/json escapes them.

// Decoder decodes JSON objects into rows of a fixed column set. It is safe for concurrent use.
type Decoder struct {
	cols  []Column
	names []string // column names, ASCII lower-cased
	first []int    // for each column, the first column whose name equals its name ignoring case
}

// NewDecoder returns a decoder for rows of cols.
func NewDecoder(cols []Column) *Decoder {
	d := &Decoder{cols: cols, names: make([]string, len(cols)), first: make([]int, len(cols))}
	for i, c := range cols {
		d.names[i] = asciiLower(c.Name)
		d.first[i] = i
		for j := range i {
			if d.names[j] == d.names[i] {
				d.first[i] = d.first[j]
				break
			}
		}
	}
	return d
}

// Decode decodes the JSON object data into row (len(row) >= the decoder's column count): every
// column is set, to NULL when the object has no member of that name. Members that match no
// column are ignored; when a name occurs twice the last member wins.
//
// Errors wrap events.ErrNotObject (valid JSON that is not an object), events.ErrNotJSON (bad
// JSON) or events.ErrWrongType (then the message names the column, and the error also wraps
// events.ErrCoercion). On error the row's contents are unspecified.
func (d *Decoder) Decode(data []byte, row Row) error {
	row = row[:len(d.cols)]
	for i := range row {
		row[i] = Value{}
	}
	hint := 0 // members usually come in column order: try the next column first
	err := events.ScanObject(data, func(key, raw []byte) error {
		c := d.lookup(key, hint)
		if c < 0 {
			// The scanner checks escapes only in what is decoded: check an ignored string's.
			if raw[0] == '"' && bytes.IndexByte(raw, '\\') >= 0 && !json.Valid(raw) {
				return fmt.Errorf("%w: invalid escape in the value of %q", events.ErrNotJSON, key)
			}
			return nil
		}
		hint = c + 1
		v, err := coerce(raw, &d.cols[c].Type)
		if err != nil {
			if errors.Is(err, events.ErrNotJSON) {
				return err
			}
			return fmt.Errorf("%w: %s: %w", events.ErrWrongType, d.cols[c].Name, err)
		}
		row[c] = v
		return nil
	})
	if err != nil && errors.Is(err, events.ErrNotObject) && !json.Valid(data) {
		return fmt.Errorf("%w: invalid JSON", events.ErrNotJSON)
	}
	return err
}

// lookup returns the column a key names, or -1.
func (d *Decoder) lookup(key []byte, hint int) int {
	if hint < len(d.names) && foldEqual(key, d.names[hint]) {
		return d.first[hint]
	}
	for i, n := range d.names {
		if len(n) == len(key) && foldEqual(key, n) {
			return d.first[i]
		}
	}
	return -1
}

// foldEqual compares key with lower, an ASCII-lower-cased name, ignoring ASCII case.
func foldEqual(key []byte, lower string) bool {
	if len(key) != len(lower) {
		return false
	}
	for i, c := range key {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// FromText is the value of type t whose text is s: the inverse of KeyText (a KV key's text, a
// Jetsuite-Key header), coerced as JSON coerces a string ("302" is the INT 302).
func FromText(s string, t Type) (Value, error) { return FromJSON([]byte(strconv.Quote(s)), t) }

// FromJSON coerces one JSON value (surrounding whitespace allowed) to t. Errors wrap
// events.ErrNotJSON or events.ErrCoercion.
func FromJSON(data []byte, t Type) (Value, error) {
	i := events.SkipSpace(data, 0)
	end, err := events.ValueEnd(data, i)
	if err != nil {
		return Value{}, err
	}
	if events.SkipSpace(data, end) != len(data) {
		return Value{}, fmt.Errorf("%w: invalid character at offset %d", events.ErrNotJSON, end)
	}
	return coerce(data[i:end], &t)
}

// coerce converts raw, one syntactically valid JSON value without surrounding space, to t.
func coerce(raw []byte, t *Type) (Value, error) {
	switch raw[0] {
	case 'n':
		return Value{}, nil
	case '"': // the scanner does not check escapes
		if bytes.IndexByte(raw, '\\') >= 0 && !json.Valid(raw) {
			return Value{}, fmt.Errorf("%w: invalid escape in %s", events.ErrNotJSON, raw)
		}
	}
	switch t.Kind {
	case Null:
		return infer(raw)
	case Boolean:
		switch raw[0] {
		case 't':
			return Value{Kind: Boolean, I: 1}, nil
		case 'f':
			return Value{Kind: Boolean}, nil
		case '"':
			s := raw[1 : len(raw)-1]
			if bytes.IndexByte(s, '\\') >= 0 {
				u, err := events.Unquote(raw)
				if err != nil {
					return Value{}, notJSON(err)
				}
				s = []byte(u)
			}
			switch {
			case foldEqual(s, "true"):
				return Value{Kind: Boolean, I: 1}, nil
			case foldEqual(s, "false"):
				return Value{Kind: Boolean}, nil
			}
		}
		return Value{}, cannot(raw, t)
	case Integer, BigInt:
		lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
		if t.Kind == Integer {
			lo, hi = math.MinInt32, math.MaxInt32
		}
		if v, ok := parseIntFast(raw); ok && v >= lo && v <= hi {
			return Value{Kind: t.Kind, I: v}, nil
		}
		v, _, err := events.ParseInteger(raw, lo, hi, t.String())
		if err != nil {
			return Value{}, err
		}
		if v == math.MinInt64 && raw[0] != '-' && raw[0] != '"' {
			// 2^63 as a JSON number passes ParseInteger's float range check and wraps around.
			return Value{}, fmt.Errorf("%w %s to %s: out of range", events.ErrCoercion, raw, t)
		}
		return Value{Kind: t.Kind, I: v}, nil
	case Double, Decimal:
		var f float64
		var err error
		switch c := raw[0]; {
		case c == '-' || (c >= '0' && c <= '9'):
			f, err = strconv.ParseFloat(string(raw), 64)
		case c == '"':
			if b := raw[1 : len(raw)-1]; bytes.IndexByte(b, '\\') < 0 {
				f, err = strconv.ParseFloat(string(bytes.TrimSpace(b)), 64)
				break
			}
			var s string
			if s, err = events.Unquote(raw); err != nil {
				return Value{}, notJSON(err)
			}
			f, err = strconv.ParseFloat(strings.TrimSpace(s), 64)
		default:
			return Value{}, cannot(raw, t)
		}
		if err != nil {
			return Value{}, cannot(raw, t)
		}
		if t.Kind == Decimal {
			if t.Scale > 0 {
				f = roundDecimal(f, t.Scale)
			}
			return Value{Kind: Decimal, F: f}, nil
		}
		return Value{Kind: Double, F: f}, nil
	case String:
		switch raw[0] {
		case '"':
			s, err := unquote(raw)
			if err != nil {
				return Value{}, err
			}
			return Value{Kind: String, S: s}, nil
		case '{', '[':
			return Value{}, cannot(raw, t)
		}
		return Value{Kind: String, S: string(raw)}, nil
	case Array:
		if raw[0] != '[' {
			return Value{}, cannot(raw, t)
		}
		elem := elemType(t.Elem)
		var vs []Value
		err := scanArray(raw, func(i int, e []byte) error {
			v, err := coerce(e, elem)
			if err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
			vs = append(vs, v)
			return nil
		})
		if err != nil {
			return Value{}, err
		}
		if vs == nil {
			vs = []Value{}
		}
		return Value{Kind: Array, X: vs}, nil
	case Map:
		if raw[0] != '{' {
			return Value{}, cannot(raw, t)
		}
		vt := elemType(t.Value)
		m := map[string]Value{}
		err := events.ScanObject(raw, func(key, e []byte) error {
			v, err := coerce(e, vt)
			if err != nil {
				return fmt.Errorf("[%q]: %w", key, err)
			}
			m[validUTF8(key)] = v
			return nil
		})
		if err != nil {
			return Value{}, err
		}
		return Value{Kind: Map, X: m}, nil
	case Struct:
		if raw[0] != '{' {
			return Value{}, cannot(raw, t)
		}
		vs := make([]Value, len(t.Fields))
		err := events.ScanObject(raw, func(key, e []byte) error {
			for i := range t.Fields {
				f := &t.Fields[i]
				if events.KeyIs(key, f.Name) {
					v, err := coerce(e, &f.Type)
					if err != nil {
						return fmt.Errorf(".%s: %w", f.Name, err)
					}
					vs[i] = v
					return nil
				}
			}
			return nil
		})
		if err != nil {
			return Value{}, err
		}
		return Value{Kind: Struct, X: vs}, nil
	}
	return Value{}, cannot(raw, t)
}

// parseIntFast parses, without allocating, the common forms events.ParseInteger accepts: an
// integral JSON number, or a string without escapes holding a sign and digits (spaces around
// allowed), of at most 18 digits (so no overflow). ok is false for anything else.
func parseIntFast(raw []byte) (int64, bool) {
	if raw[0] == '"' {
		raw = bytes.TrimSpace(raw[1 : len(raw)-1])
		if len(raw) > 0 && raw[0] == '+' {
			raw = raw[1:]
			if len(raw) > 0 && raw[0] == '-' {
				return 0, false
			}
		}
	}
	neg := len(raw) > 0 && raw[0] == '-'
	if neg {
		raw = raw[1:]
	}
	if len(raw) == 0 || len(raw) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// unknown is the type of a value whose type is not known (kind Null): JSON taken as it is.
func unknown() *Type { return &Type{} }

func elemType(t *Type) *Type {
	if t == nil {
		return unknown()
	}
	return t
}

// infer takes a JSON value as it is (target type unknown).
func infer(raw []byte) (Value, error) {
	switch c := raw[0]; {
	case c == 't':
		return Value{Kind: Boolean, I: 1}, nil
	case c == 'f':
		return Value{Kind: Boolean}, nil
	case c == '"':
		return coerce(raw, &Type{Kind: String})
	case c == '[':
		return coerce(raw, &Type{Kind: Array, Elem: unknown()})
	case c == '{':
		return coerce(raw, &Type{Kind: Map, Value: unknown()})
	}
	if i, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return Value{Kind: BigInt, I: i}, nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return Value{}, cannot(raw, &Type{Kind: Double})
	}
	return Value{Kind: Double, F: f}, nil
}

// scanArray calls elem for each element of the JSON array data (syntax already checked).
func scanArray(data []byte, elem func(i int, v []byte) error) error {
	i := events.SkipSpace(data, 1)
	if i < len(data) && data[i] == ']' {
		return nil
	}
	for n := 0; ; n++ {
		end, err := events.ValueEnd(data, i)
		if err != nil {
			return err
		}
		if err := elem(n, data[i:end]); err != nil {
			return err
		}
		i = events.SkipSpace(data, end)
		if i >= len(data) {
			return fmt.Errorf("%w: unterminated array", events.ErrNotJSON)
		}
		switch data[i] {
		case ',':
			i = events.SkipSpace(data, i+1)
		case ']':
			return nil
		default:
			return fmt.Errorf("%w: invalid character in array at offset %d", events.ErrNotJSON, i)
		}
	}
}

// unquote decodes a JSON string literal as encoding/json does: invalid UTF-8 becomes U+FFFD (so
// that a value reads the same whichever decoder read it, and writes back as it was read).
func unquote(raw []byte) (string, error) {
	if b := raw[1 : len(raw)-1]; bytes.IndexByte(b, '\\') < 0 && utf8.Valid(b) {
		return string(b), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", notJSON(err)
	}
	return s, nil
}

// validUTF8 is an object key (unescaped by the scanner) as a string, invalid UTF-8 replaced as
// encoding/json replaces it.
func validUTF8(key []byte) string {
	if utf8.Valid(key) {
		return string(key)
	}
	var sb strings.Builder
	for len(key) > 0 {
		r, size := utf8.DecodeRune(key) // U+FFFD for each invalid byte
		sb.WriteRune(r)
		key = key[size:]
	}
	return sb.String()
}

func notJSON(err error) error { return fmt.Errorf("%w: %w", events.ErrNotJSON, err) }

// cannot is the error for a JSON value that does not coerce to t.
func cannot(raw []byte, t *Type) error {
	switch raw[0] {
	case '"':
		if len(raw) > 40 {
			return fmt.Errorf("%w string %s... to %s", events.ErrCoercion, raw[:37], t)
		}
		return fmt.Errorf("%w string %s to %s", events.ErrCoercion, raw, t)
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return fmt.Errorf("%w number %s to %s", events.ErrCoercion, raw, t)
	}
	return fmt.Errorf("%w %s to %s", events.ErrCoercion, jsonKind(raw[0]), t)
}

func jsonKind(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case '"':
		return "string"
	case 'n':
		return "null"
	}
	return "number"
}

// roundDecimal rounds f half-up (away from zero, as Java's RoundingMode.HALF_UP) to scale
// decimal digits, on its shortest decimal representation (so 1.005 rounds to 1.01 although the
// float64 is a little below 1.005). -0 becomes 0.
func roundDecimal(f float64, scale int) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return f
	}
	if scale < 0 { // to tens, hundreds, ...
		p := math.Pow10(-scale)
		return roundDecimal(f/p, 0) * p
	}
	var buf [48]byte
	s := strconv.AppendFloat(buf[:0], f, 'f', -1, 64)
	dot := bytes.IndexByte(s, '.')
	if dot < 0 || len(s)-dot-1 <= scale {
		return f
	}
	cut := dot + 1 + scale
	up := s[cut] >= '5'
	s = s[:cut]
	if up {
		i := len(s) - 1
		for ; i >= 0; i-- {
			c := s[i]
			if c == '.' {
				continue
			}
			if c == '-' {
				break
			}
			if c < '9' {
				s[i]++
				break
			}
			s[i] = '0'
		}
		if i < 0 || s[i] == '-' { // carried out of the leading digit: 9.99 -> 10.00
			s = slices.Insert(s, i+1, '1')
		}
	}
	r, err := strconv.ParseFloat(string(s), 64)
	if err != nil || r == 0 {
		return 0 // also turns -0 into 0
	}
	return r
}

// AppendJSON appends v, a value of type t, as compact JSON. NULL is null; DOUBLE is printed as
// ksqlDB prints it (2.0, 1.0E10), except NaN and infinities, which JSON cannot hold, are null;
// DECIMAL has exactly t.Scale fraction digits; MAP keys are sorted; a STRUCT is an object with
// the type's field names. When v's kind does not fit t (a BIGINT value for a DOUBLE column is
// fine, a STRING value for an INTEGER column is not), v is written as its own kind.
func AppendJSON(b []byte, v Value, t Type) []byte { return appendJSON(b, v, &t) }

func appendJSON(b []byte, v Value, t *Type) []byte {
	if v.Kind == Null {
		return append(b, "null"...)
	}
	k := t.Kind
	if !fits(v.Kind, k) {
		k, t = v.Kind, unknown()
	}
	switch k {
	case Null:
		return append(b, "null"...)
	case Boolean:
		if v.I != 0 {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case Integer, BigInt:
		return strconv.AppendInt(b, v.I, 10)
	case Double:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return append(b, "null"...)
		}
		return append(b, formatDouble(f)...)
	case Decimal:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return append(b, "null"...)
		}
		if t.Kind != Decimal { // a DECIMAL value of unknown scale: as many digits as it needs
			return strconv.AppendFloat(b, f, 'f', -1, 64)
		}
		f = roundDecimal(f, t.Scale) // half-up, as the 'f' format would round half-even
		if f == 0 {
			f = 0 // no -0.00
		}
		return strconv.AppendFloat(b, f, 'f', max(t.Scale, 0), 64)
	case String:
		return appendString(b, v.S)
	case Array:
		elem := elemType(t.Elem)
		b = append(b, '[')
		for i, e := range v.Array() {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, e, elem)
		}
		return append(b, ']')
	case Map:
		vt := elemType(t.Value)
		m := v.Map()
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendJSON(b, m[k], vt)
		}
		return append(b, '}')
	case Struct:
		vs := v.Array()
		if t.Kind != Struct { // no field names: the fields in order
			return appendJSON(b, Value{Kind: Array, X: vs}, unknown())
		}
		b = append(b, '{')
		for i := range t.Fields {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, t.Fields[i].Name)
			b = append(b, ':')
			var fv Value
			if i < len(vs) {
				fv = vs[i]
			}
			b = appendJSON(b, fv, &t.Fields[i].Type)
		}
		return append(b, '}')
	}
	return append(b, "null"...)
}

// fits reports whether a value of kind v can be written as type kind t.
func fits(v, t Kind) bool {
	switch {
	case v == Null, v == t:
		return true
	case t == Double || t == Decimal:
		return v.numeric()
	case t == Integer || t == BigInt:
		return v == Integer || v == BigInt
	}
	return false
}

// AppendObject appends row as a JSON object {"NAME":value,...}: the columns in order, compact.
func AppendObject(b []byte, cols []Column, row Row) []byte {
	b = append(b, '{')
	for i := range cols {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, cols[i].Name)
		b = append(b, ':')
		var v Value
		if i < len(row) {
			v = row[i]
		}
		b = appendJSON(b, v, &cols[i].Type)
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping exactly as encoding/json does (<, > and &
// as \u00XX, U+2028/U+2029 escaped, invalid UTF-8 as U+FFFD). Copied from services/enricher.
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

package sqlrt

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// collectLimit caps COLLECT_LIST and COLLECT_SET, as ksqlDB's default
// ksql.functions.collect_list.limit / collect_set.limit do: further values are dropped.
const collectLimit = 1000

// aggregateNames is sorted.
var aggregateNames = []string{
	"AVG", "COLLECT_LIST", "COLLECT_SET", "COUNT", "COUNT_DISTINCT",
	"EARLIEST_BY_OFFSET", "LATEST_BY_OFFSET", "MAX", "MIN", "SUM",
}

// AggregateNames is the sorted list of supported aggregate names.
func AggregateNames() []string { return append([]string(nil), aggregateNames...) }

// NewAccumulatorFunc returns the constructor of the accumulator for aggregate name
// (upper-case) over arguments of types args, the result type, whether Undo works, or an
// error for an unknown name, a wrong number of arguments or wrong argument types.
func NewAccumulatorFunc(name string, args []Type) (newAcc func() Accumulator, result Type, canUndo bool, err error) {
	return newAccumulatorFunc(name, args, false)
}

// NewTableAccumulatorFunc is NewAccumulatorFunc for an aggregation over a TABLE, whose rows
// change and go: MIN and MAX then keep every value with its count (a multiset) so that they
// can undo (ksqlDB's MIN and MAX cannot, so it refuses them over tables).
func NewTableAccumulatorFunc(name string, args []Type) (newAcc func() Accumulator, result Type, canUndo bool, err error) {
	return newAccumulatorFunc(name, args, true)
}

func newAccumulatorFunc(name string, args []Type, overTable bool) (newAcc func() Accumulator, result Type, canUndo bool, err error) {
	name = strings.ToUpper(name)
	one := func(ok func(Kind) bool, what string) error {
		if len(args) != 1 || (ok != nil && !ok(args[0].Kind)) {
			return fmt.Errorf("%s takes one %sargument", name, what)
		}
		return nil
	}
	numeric := func(k Kind) bool { return k.numeric() }
	switch name {
	case "COUNT":
		if len(args) > 1 {
			return nil, Type{}, false, errors.New("COUNT takes one argument, or * (COUNT(*))")
		}
		star := len(args) == 0
		return func() Accumulator { return &countAcc{star: star} }, Type{Kind: BigInt}, true, nil
	case "SUM":
		if err := one(numeric, "numeric "); err != nil {
			return nil, Type{}, false, err
		}
		k := args[0].Kind
		return func() Accumulator { return &sumAcc{kind: k} }, args[0], true, nil
	case "MIN", "MAX":
		if err := one(func(k Kind) bool { return k.numeric() || k == String }, "numeric or STRING "); err != nil {
			return nil, Type{}, false, err
		}
		isMax := name == "MAX"
		if overTable {
			return func() Accumulator { return &tableMinMaxAcc{max: isMax, vals: map[string]*setEntry{}} }, args[0], true, nil
		}
		return func() Accumulator { return &minMaxAcc{max: isMax} }, args[0], false, nil
	case "AVG":
		if err := one(numeric, "numeric "); err != nil {
			return nil, Type{}, false, err
		}
		integral := args[0].Kind == Integer || args[0].Kind == BigInt
		return func() Accumulator { return &avgAcc{integral: integral} }, Type{Kind: Double}, true, nil
	case "COUNT_DISTINCT":
		if err := one(nil, ""); err != nil {
			return nil, Type{}, false, err
		}
		return func() Accumulator { return &countDistinctAcc{set: map[string]struct{}{}} }, Type{Kind: BigInt}, false, nil
	case "COLLECT_LIST", "COLLECT_SET":
		if err := one(nil, ""); err != nil {
			return nil, Type{}, false, err
		}
		elem := args[0]
		res := Type{Kind: Array, Elem: &elem}
		if name == "COLLECT_LIST" {
			return func() Accumulator { return &collectListAcc{} }, res, true, nil
		}
		return func() Accumulator { return &collectSetAcc{index: map[string]int{}} }, res, true, nil
	case "LATEST_BY_OFFSET", "EARLIEST_BY_OFFSET":
		if err := one(nil, ""); err != nil {
			return nil, Type{}, false, err
		}
		latest := name == "LATEST_BY_OFFSET"
		return func() Accumulator { return &offsetAcc{latest: latest} }, args[0], false, nil
	}
	return nil, Type{}, false, fmt.Errorf("unknown aggregate function %s; aggregates are %s", name, strings.Join(aggregateNames, ", "))
}

// mergeMismatch panics: merging accumulators of different functions is a bug of the caller.
func mergeMismatch(recv, other Accumulator) {
	panic(fmt.Sprintf("sqlrt: cannot merge %T into %T", other, recv))
}

// arg0 is the single argument of a one-argument aggregate (NULL when missing).
func arg0(args []Value) Value {
	if len(args) == 0 {
		return Value{}
	}
	return args[0]
}

// ---- COUNT

type countAcc struct {
	star bool
	n    int64
}

func (a *countAcc) counts(args []Value) bool { return a.star || !arg0(args).IsNull() }

func (a *countAcc) Add(args []Value) {
	if a.counts(args) {
		a.n++
	}
}

func (a *countAcc) Undo(args []Value) bool {
	if a.counts(args) {
		a.n--
	}
	return true
}

func (a *countAcc) Merge(other Accumulator) {
	o, ok := other.(*countAcc)
	if !ok {
		mergeMismatch(a, other)
	}
	a.n += o.n
}

func (a *countAcc) Result() Value { return BigIntValue(a.n) }

type countState struct {
	N int64 `json:"n"`
}

func (a *countAcc) MarshalJSON() ([]byte, error) { return json.Marshal(countState{N: a.n}) }

func (a *countAcc) UnmarshalJSON(b []byte) error {
	var s countState
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	a.n = s.N
	return nil
}

// ---- SUM

// sumAcc sums INT and BIGINT in int64 (wrapping like Java; INT is truncated to 32 bits in
// Result, which keeps Undo exact), DOUBLE and DECIMAL in float64.
type sumAcc struct {
	kind Kind
	i    int64
	f    float64
}

func (a *sumAcc) Add(args []Value) {
	v := arg0(args)
	switch {
	case v.IsNull():
	case a.kind == Integer || a.kind == BigInt:
		a.i += v.I
	default:
		a.f += v.Float()
	}
}

func (a *sumAcc) Undo(args []Value) bool {
	v := arg0(args)
	switch {
	case v.IsNull():
	case a.kind == Integer || a.kind == BigInt:
		a.i -= v.I
	default:
		a.f -= v.Float()
	}
	return true
}

func (a *sumAcc) Merge(other Accumulator) {
	o, ok := other.(*sumAcc)
	if !ok {
		mergeMismatch(a, other)
	}
	a.i += o.i
	a.f += o.f
}

func (a *sumAcc) Result() Value {
	switch a.kind {
	case Integer:
		return IntValue(int32(a.i))
	case BigInt:
		return BigIntValue(a.i)
	case Decimal:
		return DecimalValue(a.f)
	}
	return DoubleValue(a.f)
}

type sumState struct {
	I int64  `json:"i,omitempty"`
	F string `json:"f,omitempty"`
}

func (a *sumAcc) MarshalJSON() ([]byte, error) {
	s := sumState{I: a.i}
	if a.kind == Double || a.kind == Decimal {
		s.F = formatFloatState(a.f)
	}
	return json.Marshal(s)
}

func (a *sumAcc) UnmarshalJSON(b []byte) error {
	var s sumState
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	f, err := parseFloatState(s.F)
	if err != nil {
		return err
	}
	a.i, a.f = s.I, f
	return nil
}

// ---- MIN / MAX

type minMaxAcc struct {
	max bool
	v   Value // NULL until a non-NULL value was seen
}

func (a *minMaxAcc) offer(v Value) {
	if v.IsNull() {
		return
	}
	if a.v.IsNull() {
		a.v = v
		return
	}
	if c, ok := Compare(v, a.v); ok && ((a.max && c > 0) || (!a.max && c < 0)) {
		a.v = v
	}
}

func (a *minMaxAcc) Add(args []Value)       { a.offer(arg0(args)) }
func (a *minMaxAcc) Undo(args []Value) bool { return false }

func (a *minMaxAcc) Merge(other Accumulator) {
	o, ok := other.(*minMaxAcc)
	if !ok {
		mergeMismatch(a, other)
	}
	a.offer(o.v)
}

func (a *minMaxAcc) Result() Value { return a.v }

type valueState struct {
	V *valueJSON `json:"v,omitempty"`
}

func (a *minMaxAcc) MarshalJSON() ([]byte, error) { return marshalOptValue(a.v) }

func (a *minMaxAcc) UnmarshalJSON(b []byte) error {
	v, err := unmarshalOptValue(b)
	a.v = v
	return err
}

func marshalOptValue(v Value) ([]byte, error) {
	var s valueState
	if !v.IsNull() {
		j := encodeValue(v)
		s.V = &j
	}
	return json.Marshal(s)
}

func unmarshalOptValue(b []byte) (Value, error) {
	var s valueState
	if err := json.Unmarshal(b, &s); err != nil {
		return Value{}, err
	}
	if s.V == nil {
		return Value{}, nil
	}
	return decodeValue(*s.V)
}

// ---- AVG

// avgAcc keeps the count of non-NULL inputs and their sum: int64 for INT and BIGINT (exact
// Undo), float64 otherwise.
type avgAcc struct {
	integral bool
	n        int64
	i        int64
	f        float64
}

func (a *avgAcc) Add(args []Value) {
	v := arg0(args)
	if v.IsNull() {
		return
	}
	a.n++
	if a.integral {
		a.i += v.I
	} else {
		a.f += v.Float()
	}
}

func (a *avgAcc) Undo(args []Value) bool {
	v := arg0(args)
	if v.IsNull() {
		return true
	}
	a.n--
	if a.integral {
		a.i -= v.I
	} else {
		a.f -= v.Float()
	}
	return true
}

func (a *avgAcc) Merge(other Accumulator) {
	o, ok := other.(*avgAcc)
	if !ok {
		mergeMismatch(a, other)
	}
	a.n += o.n
	a.i += o.i
	a.f += o.f
}

func (a *avgAcc) Result() Value {
	if a.n == 0 {
		return Value{}
	}
	if a.integral {
		return DoubleValue(float64(a.i) / float64(a.n))
	}
	return DoubleValue(a.f / float64(a.n))
}

type avgState struct {
	N int64  `json:"n"`
	I int64  `json:"i,omitempty"`
	F string `json:"f,omitempty"`
}

func (a *avgAcc) MarshalJSON() ([]byte, error) {
	s := avgState{N: a.n, I: a.i}
	if !a.integral {
		s.F = formatFloatState(a.f)
	}
	return json.Marshal(s)
}

func (a *avgAcc) UnmarshalJSON(b []byte) error {
	var s avgState
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	f, err := parseFloatState(s.F)
	if err != nil {
		return err
	}
	a.n, a.i, a.f = s.N, s.I, f
	return nil
}

// ---- COUNT_DISTINCT

// countDistinctAcc counts exactly (ksqlDB estimates with HyperLogLog) by canonical key.
type countDistinctAcc struct {
	set map[string]struct{}
}

func (a *countDistinctAcc) Add(args []Value) {
	if v := arg0(args); !v.IsNull() {
		a.set[canonicalKey(v)] = struct{}{}
	}
}

func (a *countDistinctAcc) Undo(args []Value) bool { return false }

func (a *countDistinctAcc) Merge(other Accumulator) {
	o, ok := other.(*countDistinctAcc)
	if !ok {
		mergeMismatch(a, other)
	}
	for k := range o.set {
		a.set[k] = struct{}{}
	}
}

func (a *countDistinctAcc) Result() Value { return BigIntValue(int64(len(a.set))) }

type countDistinctState struct {
	Keys []string `json:"keys"`
}

func (a *countDistinctAcc) MarshalJSON() ([]byte, error) {
	keys := make([]string, 0, len(a.set))
	for k := range a.set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return json.Marshal(countDistinctState{Keys: keys})
}

func (a *countDistinctAcc) UnmarshalJSON(b []byte) error {
	var s countDistinctState
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	a.set = make(map[string]struct{}, len(s.Keys))
	for _, k := range s.Keys {
		a.set[k] = struct{}{}
	}
	return nil
}

// ---- COLLECT_LIST

type collectListAcc struct {
	xs []Value
}

func (a *collectListAcc) Add(args []Value) {
	if len(a.xs) < collectLimit {
		a.xs = append(a.xs, arg0(args))
	}
}

// Undo removes the last element equal to the value, as ksqlDB does; a value that was
// dropped at the limit is not there, and nothing is removed.
func (a *collectListAcc) Undo(args []Value) bool {
	v := arg0(args)
	for i := len(a.xs) - 1; i >= 0; i-- {
		if Equal(a.xs[i], v) {
			a.xs = append(a.xs[:i], a.xs[i+1:]...)
			break
		}
	}
	return true
}

func (a *collectListAcc) Merge(other Accumulator) {
	o, ok := other.(*collectListAcc)
	if !ok {
		mergeMismatch(a, other)
	}
	n := min(len(o.xs), collectLimit-len(a.xs))
	if n > 0 {
		a.xs = append(a.xs, o.xs[:n]...)
	}
}

func (a *collectListAcc) Result() Value {
	return ArrayValue(append(make([]Value, 0, len(a.xs)), a.xs...))
}

type collectListState struct {
	X []valueJSON `json:"x"`
}

func (a *collectListAcc) MarshalJSON() ([]byte, error) {
	s := collectListState{X: make([]valueJSON, len(a.xs))}
	for i, v := range a.xs {
		s.X[i] = encodeValue(v)
	}
	return json.Marshal(s)
}

func (a *collectListAcc) UnmarshalJSON(b []byte) error {
	var s collectListState
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	xs := make([]Value, len(s.X))
	for i, j := range s.X {
		v, err := decodeValue(j)
		if err != nil {
			return err
		}
		xs[i] = v
	}
	a.xs = xs
	return nil
}

// ---- COLLECT_SET

// collectSetAcc keeps distinct values in first-arrival order with how many times each was
// added, so that Undo removes a value only when its last occurrence goes.
type collectSetAcc struct {
	entries []setEntry
	index   map[string]int // canonical key -> position in entries
}

type setEntry struct {
	v   Value
	key string
	n   int64
}

func (a *collectSetAcc) add(v Value, n int64) {
	k := canonicalKey(v)
	if i, ok := a.index[k]; ok {
		a.entries[i].n += n
		return
	}
	if len(a.entries) >= collectLimit {
		return
	}
	a.index[k] = len(a.entries)
	a.entries = append(a.entries, setEntry{v: v, key: k, n: n})
}

func (a *collectSetAcc) Add(args []Value) { a.add(arg0(args), 1) }

func (a *collectSetAcc) Undo(args []Value) bool {
	k := canonicalKey(arg0(args))
	i, ok := a.index[k]
	if !ok {
		return true
	}
	if a.entries[i].n--; a.entries[i].n > 0 {
		return true
	}
	a.entries = append(a.entries[:i], a.entries[i+1:]...)
	delete(a.index, k)
	for j := i; j < len(a.entries); j++ {
		a.index[a.entries[j].key] = j
	}
	return true
}

func (a *collectSetAcc) Merge(other Accumulator) {
	o, ok := other.(*collectSetAcc)
	if !ok {
		mergeMismatch(a, other)
	}
	for _, e := range o.entries {
		a.add(e.v, e.n)
	}
}

func (a *collectSetAcc) Result() Value {
	xs := make([]Value, len(a.entries))
	for i, e := range a.entries {
		xs[i] = e.v
	}
	return ArrayValue(xs)
}

type collectSetState struct {
	X []valueJSON `json:"x"`
	N []int64     `json:"n"`
}

func (a *collectSetAcc) MarshalJSON() ([]byte, error) {
	s := collectSetState{X: make([]valueJSON, len(a.entries)), N: make([]int64, len(a.entries))}
	for i, e := range a.entries {
		s.X[i], s.N[i] = encodeValue(e.v), e.n
	}
	return json.Marshal(s)
}

func (a *collectSetAcc) UnmarshalJSON(b []byte) error {
	var s collectSetState
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if len(s.N) != len(s.X) {
		return errors.New("sqlrt: COLLECT_SET state: counts and values differ in length")
	}
	a.entries = make([]setEntry, 0, len(s.X))
	a.index = make(map[string]int, len(s.X))
	for i, j := range s.X {
		v, err := decodeValue(j)
		if err != nil {
			return err
		}
		k := canonicalKey(v)
		a.index[k] = len(a.entries)
		a.entries = append(a.entries, setEntry{v: v, key: k, n: s.N[i]})
	}
	return nil
}

// tableMinMaxAcc is MIN or MAX over a TABLE: every non-NULL value with how many rows hold it,
// so that a changed or deleted row can be taken out. Result scans the distinct values.
type tableMinMaxAcc struct {
	max  bool
	vals map[string]*setEntry
}

func (a *tableMinMaxAcc) add(v Value, n int64) {
	if v.IsNull() {
		return
	}
	k := canonicalKey(v)
	e := a.vals[k]
	if e == nil {
		e = &setEntry{v: v, key: k}
		a.vals[k] = e
	}
	if e.n += n; e.n <= 0 {
		delete(a.vals, k)
	}
}

func (a *tableMinMaxAcc) Add(args []Value) { a.add(arg0(args), 1) }

func (a *tableMinMaxAcc) Undo(args []Value) bool {
	if v := arg0(args); !v.IsNull() && a.vals[canonicalKey(v)] != nil {
		a.add(v, -1)
	}
	return true
}

func (a *tableMinMaxAcc) Merge(other Accumulator) {
	o, ok := other.(*tableMinMaxAcc)
	if !ok {
		mergeMismatch(a, other)
	}
	for _, e := range o.vals {
		a.add(e.v, e.n)
	}
}

func (a *tableMinMaxAcc) Result() Value {
	var best Value
	for _, e := range a.vals {
		if best.IsNull() {
			best = e.v
			continue
		}
		if c, ok := Compare(e.v, best); ok && ((a.max && c > 0) || (!a.max && c < 0)) {
			best = e.v
		}
	}
	return best
}

func (a *tableMinMaxAcc) MarshalJSON() ([]byte, error) {
	keys := make([]string, 0, len(a.vals))
	for k := range a.vals {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the same state, the same bytes
	s := collectSetState{X: make([]valueJSON, len(keys)), N: make([]int64, len(keys))}
	for i, k := range keys {
		s.X[i], s.N[i] = encodeValue(a.vals[k].v), a.vals[k].n
	}
	return json.Marshal(s)
}

func (a *tableMinMaxAcc) UnmarshalJSON(b []byte) error {
	var s collectSetState
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if len(s.N) != len(s.X) {
		return errors.New("sqlrt: MIN/MAX state: counts and values differ in length")
	}
	a.vals = make(map[string]*setEntry, len(s.X))
	for i, j := range s.X {
		v, err := decodeValue(j)
		if err != nil {
			return err
		}
		a.add(v, s.N[i])
	}
	return nil
}

// ---- LATEST_BY_OFFSET / EARLIEST_BY_OFFSET

// offsetAcc keeps the last (latest) or first (earliest) non-NULL value.
type offsetAcc struct {
	latest bool
	v      Value // NULL until a non-NULL value was seen
}

func (a *offsetAcc) offer(v Value) {
	if !v.IsNull() && (a.latest || a.v.IsNull()) {
		a.v = v
	}
}

func (a *offsetAcc) Add(args []Value)       { a.offer(arg0(args)) }
func (a *offsetAcc) Undo(args []Value) bool { return false }

// Merge treats other as the later of the two.
func (a *offsetAcc) Merge(other Accumulator) {
	o, ok := other.(*offsetAcc)
	if !ok {
		mergeMismatch(a, other)
	}
	a.offer(o.v)
}

func (a *offsetAcc) Result() Value                { return a.v }
func (a *offsetAcc) MarshalJSON() ([]byte, error) { return marshalOptValue(a.v) }
func (a *offsetAcc) UnmarshalJSON(b []byte) error {
	v, err := unmarshalOptValue(b)
	a.v = v
	return err
}

// ---- Value state encoding

// valueJSON is the self-describing state encoding of a Value: k the kind (omitted for NULL),
// i for BOOLEAN / INTEGER / BIGINT, f for DOUBLE / DECIMAL (strconv 'g' text, so that every
// float64 incl. -0, NaN and ±Inf round-trips), s for STRING, x for ARRAY / STRUCT elements and
// m for MAP entries.
type valueJSON struct {
	K Kind                 `json:"k,omitempty"`
	I int64                `json:"i,omitempty"`
	F string               `json:"f,omitempty"`
	S string               `json:"s,omitempty"`
	X []valueJSON          `json:"x,omitempty"`
	M map[string]valueJSON `json:"m,omitempty"`
}

func encodeValue(v Value) valueJSON {
	j := valueJSON{K: v.Kind}
	switch v.Kind {
	case Boolean, Integer, BigInt:
		j.I = v.I
	case Double, Decimal:
		j.F = formatFloatState(v.F)
	case String:
		j.S = v.S
	case Array, Struct:
		if xs := v.Array(); len(xs) > 0 {
			j.X = make([]valueJSON, len(xs))
			for i, x := range xs {
				j.X[i] = encodeValue(x)
			}
		}
	case Map:
		if m := v.Map(); len(m) > 0 {
			j.M = make(map[string]valueJSON, len(m))
			for k, x := range m {
				j.M[k] = encodeValue(x)
			}
		}
	}
	return j
}

func decodeValue(j valueJSON) (Value, error) {
	v := Value{Kind: j.K}
	switch j.K {
	case Null:
	case Boolean, Integer, BigInt:
		v.I = j.I
	case Double, Decimal:
		f, err := parseFloatState(j.F)
		if err != nil {
			return Value{}, err
		}
		v.F = f
	case String:
		v.S = j.S
	case Array, Struct:
		xs := make([]Value, len(j.X))
		for i, x := range j.X {
			e, err := decodeValue(x)
			if err != nil {
				return Value{}, err
			}
			xs[i] = e
		}
		v.X = xs
	case Map:
		m := make(map[string]Value, len(j.M))
		for k, x := range j.M {
			e, err := decodeValue(x)
			if err != nil {
				return Value{}, err
			}
			m[k] = e
		}
		v.X = m
	default:
		return Value{}, fmt.Errorf("sqlrt: aggregate state: unknown value kind %d", j.K)
	}
	return v, nil
}

func formatFloatState(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func parseFloatState(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("sqlrt: aggregate state: bad number %q", s)
	}
	return f, nil
}

// canonicalKey identifies a value for COUNT_DISTINCT and COLLECT_SET: its kind and content,
// map entries in key order. Doubles compare by their exact value (-0 and 0 differ, NaN equals
// NaN), as Java's Double.equals does.
func canonicalKey(v Value) string {
	var b strings.Builder
	writeKey(&b, v)
	return b.String()
}

func writeKey(b *strings.Builder, v Value) {
	b.WriteByte('0' + byte(v.Kind))
	switch v.Kind {
	case Boolean, Integer, BigInt:
		b.WriteString(strconv.FormatInt(v.I, 10))
	case Double, Decimal:
		if math.IsNaN(v.F) {
			b.WriteString("NaN")
		} else {
			b.WriteString(strconv.FormatFloat(v.F, 'g', -1, 64))
		}
	case String:
		b.WriteString(strconv.Quote(v.S))
	case Array, Struct:
		b.WriteByte('[')
		for i, x := range v.Array() {
			if i > 0 {
				b.WriteByte(',')
			}
			writeKey(b, x)
		}
		b.WriteByte(']')
	case Map:
		m := v.Map()
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(k))
			b.WriteByte(':')
			writeKey(b, m[k])
		}
		b.WriteByte('}')
	}
}

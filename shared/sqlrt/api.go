// Package sqlrt is the runtime of jetsuite's SQL: typed values, rows, the JSON format of
// ksqlDB's VALUE_FORMAT='JSON', compiled expressions (operators, scalar functions, CAST, CASE)
// and aggregate functions with persistable, mergeable state. The plan (shared/plan) compiles
// ksqlDB statements into these; the executors (enricher, windower, CDC reader, alerting,
// indexer, query) run them.
//
// Values are a small struct, not an interface, so that decoding a row and evaluating a filter
// allocate nothing for numbers and booleans.
package sqlrt

import "github.com/jetsuite/jetsuite/shared/ksql"

// Kind is a SQL type's kind. The zero Kind is NULL: the kind of a NULL value, and of an
// expression whose type is unknown (the NULL literal).
type Kind uint8

// Kinds, as ksqlDB names them.
const (
	Null    Kind = iota
	Boolean      // BOOLEAN
	Integer      // INT / INTEGER (32 bit)
	BigInt       // BIGINT (64 bit)
	Double       // DOUBLE
	Decimal      // DECIMAL(p, s): held as float64, printed with scale s (see doc.go)
	String       // VARCHAR / STRING
	Array        // ARRAY<Elem>
	Map          // MAP<STRING, Value>
	Struct       // STRUCT<name T, ...>
)

// Type is a SQL type.
type Type struct {
	Kind             Kind
	Elem             *Type   // Array
	Value            *Type   // Map (keys are STRING)
	Fields           []Field // Struct, in declaration order; names upper-cased
	Precision, Scale int     // Decimal
}

// Field is a STRUCT field.
type Field struct {
	Name string
	Type Type
}

// Value is one SQL value. Kind Null is SQL NULL (whatever the column's type).
//   - Boolean: I is 0 or 1
//   - Integer, BigInt: I
//   - Double, Decimal: F
//   - String: S
//   - Array: X is []Value
//   - Map: X is map[string]Value
//   - Struct: X is []Value, one per field of the struct type, in the type's order
type Value struct {
	Kind Kind
	I    int64
	F    float64
	S    string
	X    any
}

// Row is one record: values by column position (the position a Scope resolved).
type Row []Value

// Column is a named, typed column.
type Column struct {
	Name string // upper-cased unless it was quoted with backticks
	Type Type
}

// Scope resolves column references while an expression is compiled.
type Scope interface {
	// Resolve returns the row position and type of the referenced column, or an error that
	// names the column and lists what is there (unknown column X in S; columns are ...).
	// Pseudo-columns (ROWTIME, WINDOWSTART, WINDOWEND) are the scope's business.
	Resolve(ref *ksql.ColumnRef) (int, Type, error)
}

// Expr is a compiled expression.
type Expr struct {
	Eval func(Row) Value
	Type Type
	Text string // the expression as SQL (ksql.Expr.String)
}

// Accumulator is the state of one aggregate function for one group (and window).
//
// State is persisted (MarshalJSON / UnmarshalJSON round trip exactly) and merged when two
// session windows merge (ksqlDB's UDAF merge).
type Accumulator interface {
	// Add folds in one input row's argument values (len = the aggregate's arity; COUNT(*)
	// gets none). NULL arguments follow ksqlDB: COUNT(col) / SUM / MIN / MAX / AVG skip them.
	Add(args []Value)
	// Undo removes a row Add folded in earlier (aggregations over a TABLE, when a row changes
	// or is deleted). It reports false when the function cannot undo (ksqlDB's non-table
	// UDAFs); the planner refuses those on table sources, so executors never see false.
	Undo(args []Value) bool
	// Merge folds other (same function, same arguments) into the receiver.
	Merge(other Accumulator)
	// Result is the aggregate's current value.
	Result() Value
	MarshalJSON() ([]byte, error)
	UnmarshalJSON([]byte) error
}

// Aggregate is a compiled aggregate call such as COUNT(*), SUM(BYTES), COLLECT_LIST(STARS).
type Aggregate struct {
	Name    string // upper-cased function name
	Args    []Expr // evaluated on each input row, passed to Add/Undo
	Type    Type   // of Result
	Text    string // the call as SQL
	CanUndo bool   // Undo works (allowed over TABLE sources)
	New     func() Accumulator
}

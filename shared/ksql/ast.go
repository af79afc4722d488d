package ksql

import (
	"strconv"
	"time"
)

// Pos is a 1-based source position.
type Pos struct{ Line, Col int }

// Statement is one ksqlDB statement. Concrete types: *SetStmt,
// *CreateSource, *CreateAsSelect, *InsertInto, *DropStmt,
// *CreateConnector and *QueryStmt.
type Statement interface {
	// Position is where the statement's first token is.
	Position() Pos
	// String prints the statement as canonical SQL without the ';'.
	String() string
	stmt()
}

// SourceKind tells a STREAM from a TABLE.
type SourceKind string

// Source kinds.
const (
	Stream SourceKind = "STREAM"
	Table  SourceKind = "TABLE"
)

// ConnectorKind tells a SINK from a SOURCE connector.
type ConnectorKind string

// Connector kinds.
const (
	Sink   ConnectorKind = "SINK"
	Source ConnectorKind = "SOURCE"
)

// Property is one WITH (key = value) entry. Key is upper-cased for
// CREATE STREAM/TABLE (an identifier) and kept as written for connectors
// (a string literal). Value is a *StringLit, *NumberLit or *BoolLit.
type Property struct {
	Key   string
	Value Expr
}

// SetStmt is SET 'key' = 'value'.
type SetStmt struct {
	Pos        Pos
	Key, Value string
}

// ColumnDef is one column of CREATE STREAM/TABLE (...): name TYPE [KEY | PRIMARY KEY].
type ColumnDef struct {
	Name       string
	Type       *Type
	Key        bool // KEY (streams)
	PrimaryKey bool // PRIMARY KEY (tables)
}

// CreateSource is CREATE [OR REPLACE] STREAM|TABLE [IF NOT EXISTS] name
// (columns) [WITH (...)]: a source declared over an existing topic.
type CreateSource struct {
	Pos         Pos
	Kind        SourceKind
	OrReplace   bool
	IfNotExists bool
	Name        string
	Columns     []ColumnDef
	With        []Property
}

// CreateAsSelect is CREATE [OR REPLACE] STREAM|TABLE [IF NOT EXISTS] name
// [WITH (...)] AS SELECT ...: a persistent query.
type CreateAsSelect struct {
	Pos         Pos
	Kind        SourceKind
	OrReplace   bool
	IfNotExists bool
	Name        string
	With        []Property
	Query       *Select
}

// InsertInto is INSERT INTO name SELECT ...
type InsertInto struct {
	Pos    Pos
	Target string
	Query  *Select
}

// DropStmt is DROP STREAM|TABLE [IF EXISTS] name [DELETE TOPIC].
type DropStmt struct {
	Pos         Pos
	Kind        SourceKind
	IfExists    bool
	Name        string
	DeleteTopic bool
}

// CreateConnector is CREATE SINK|SOURCE CONNECTOR [IF NOT EXISTS] name WITH ('k' = 'v', ...).
type CreateConnector struct {
	Pos         Pos
	Kind        ConnectorKind
	IfNotExists bool
	Name        string
	With        []Property
}

// QueryStmt is a bare SELECT: a pull query, or a push query when
// Query.Emit is set.
type QueryStmt struct {
	Pos   Pos
	Query *Select
}

func (s *SetStmt) Position() Pos         { return s.Pos }
func (s *CreateSource) Position() Pos    { return s.Pos }
func (s *CreateAsSelect) Position() Pos  { return s.Pos }
func (s *InsertInto) Position() Pos      { return s.Pos }
func (s *DropStmt) Position() Pos        { return s.Pos }
func (s *CreateConnector) Position() Pos { return s.Pos }
func (s *QueryStmt) Position() Pos       { return s.Pos }

func (*SetStmt) stmt()         {}
func (*CreateSource) stmt()    {}
func (*CreateAsSelect) stmt()  {}
func (*InsertInto) stmt()      {}
func (*DropStmt) stmt()        {}
func (*CreateConnector) stmt() {}
func (*QueryStmt) stmt()       {}

// Select is a SELECT query. Clauses appear in ksqlDB order:
// SELECT items FROM from [JOIN ...] [WINDOW w] [WHERE] [GROUP BY]
// [PARTITION BY] [HAVING] [EMIT CHANGES|FINAL] [LIMIT n].
type Select struct {
	Items       []SelectItem
	From        Relation
	Joins       []Join
	Window      *Window
	Where       Expr
	GroupBy     []Expr
	PartitionBy []Expr
	Having      Expr
	Emit        string // "", "CHANGES" or "FINAL"
	Limit       *int64
}

// SelectItem is one select-list entry: *, t.*, or expr [AS alias].
type SelectItem struct {
	Star      bool   // * or Qualifier.*
	Qualifier string // for t.*
	Expr      Expr   // nil when Star
	Alias     string // "" when none
}

// Relation is a named source with an optional alias.
type Relation struct {
	Name  string
	Alias string
	Pos   Pos // where the name is (zero when built by hand)
}

// JoinType is INNER, LEFT, RIGHT or FULL (OUTER is implied for the last three).
type JoinType string

// Join types.
const (
	InnerJoin JoinType = "INNER"
	LeftJoin  JoinType = "LEFT"
	RightJoin JoinType = "RIGHT"
	FullJoin  JoinType = "FULL"
)

// Join is [INNER|LEFT [OUTER]|RIGHT [OUTER]|FULL [OUTER]] JOIN right
// [WITHIN ...] ON expr.
type Join struct {
	Type  JoinType
	Right Relation
	// Within is the stream-stream join window: one duration (Within),
	// or before/after (Within, WithinAfter). Nil when absent.
	Within      *Duration
	WithinAfter *Duration
	On          Expr
}

// WindowKind is TUMBLING, HOPPING or SESSION.
type WindowKind string

// Window kinds.
const (
	Tumbling WindowKind = "TUMBLING"
	Hopping  WindowKind = "HOPPING"
	Session  WindowKind = "SESSION"
)

// Window is a WINDOW clause. Size is the SIZE (tumbling, hopping) or the
// inactivity gap (session); Advance is set only for hopping windows.
type Window struct {
	Kind      WindowKind
	Size      Duration
	Advance   *Duration
	Retention *Duration
	Grace     *Duration
}

// Duration is a number and a ksqlDB time unit as written (upper-cased),
// e.g. {60, "SECOND"} or {15, "MINUTES"}.
type Duration struct {
	N    int64
	Unit string
}

var unitDurations = map[string]time.Duration{
	"MILLISECOND": time.Millisecond, "MILLISECONDS": time.Millisecond,
	"SECOND": time.Second, "SECONDS": time.Second,
	"MINUTE": time.Minute, "MINUTES": time.Minute,
	"HOUR": time.Hour, "HOURS": time.Hour,
	"DAY": 24 * time.Hour, "DAYS": 24 * time.Hour,
}

// Duration converts d to a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d.N) * unitDurations[d.Unit] }

func (d Duration) String() string { return strconv.FormatInt(d.N, 10) + " " + d.Unit }

// Type is a SQL type. Name is the upper-cased base name (INT, INTEGER,
// BIGINT, DOUBLE, DECIMAL, BOOLEAN, VARCHAR, STRING, BYTES, TIMESTAMP,
// DATE, TIME, ARRAY, MAP, STRUCT, or a custom type name).
type Type struct {
	Name   string
	Params []int      // DECIMAL(p, s)
	Elem   *Type      // ARRAY<Elem>
	Key    *Type      // MAP<Key, Value>
	Value  *Type      // MAP<Key, Value>
	Fields []FieldDef // STRUCT<name T, ...>
}

// FieldDef is one STRUCT field.
type FieldDef struct {
	Name string
	Type *Type
}

// Expr is an expression node. Concrete types: *ColumnRef, *StringLit,
// *NumberLit, *BoolLit, *NullLit, *BinaryExpr, *UnaryExpr, *LikeExpr,
// *InExpr, *BetweenExpr, *IsNullExpr, *FuncCall, *CastExpr, *CaseExpr,
// *Dereference and *Subscript.
type Expr interface {
	// String prints the expression with the fewest parentheses needed.
	String() string
	expr()
}

// ColumnRef is a column (or pseudo-column like ROWTIME, WINDOWSTART),
// optionally qualified: Qualifier.Name.
type ColumnRef struct {
	Qualifier string
	Name      string
	Pos       Pos // where the reference starts (zero when built by hand)
}

// StringLit is a '...' literal; Value is unescaped.
type StringLit struct{ Value string }

// NumberLit is a numeric literal as written; Kind is Integer, Decimal or Double.
type NumberLit struct {
	Text string
	Kind TokenKind
}

// BoolLit is TRUE or FALSE.
type BoolLit struct{ Value bool }

// NullLit is NULL.
type NullLit struct{}

// BinaryExpr is Left Op Right; Op is one of OR AND = <> != < <= > >= + - * / %.
type BinaryExpr struct {
	Op          string
	Left, Right Expr
}

// UnaryExpr is NOT X, -X or +X.
type UnaryExpr struct {
	Op string
	X  Expr
}

// LikeExpr is X [NOT] LIKE Pattern.
type LikeExpr struct {
	X, Pattern Expr
	Not        bool
}

// InExpr is X [NOT] IN (List...).
type InExpr struct {
	X    Expr
	List []Expr
	Not  bool
}

// BetweenExpr is X [NOT] BETWEEN Lo AND Hi.
type BetweenExpr struct {
	X, Lo, Hi Expr
	Not       bool
}

// IsNullExpr is X IS [NOT] NULL.
type IsNullExpr struct {
	X   Expr
	Not bool
}

// FuncCall is Name(Args...) or Name(*) (Star).
type FuncCall struct {
	Name string
	Args []Expr
	Star bool
	Pos  Pos // where the function name is (zero when built by hand)
}

// CastExpr is CAST(X AS Type).
type CastExpr struct {
	X    Expr
	Type *Type
}

// CaseExpr is CASE [Operand] WHEN .. THEN .. ... [ELSE Else] END.
type CaseExpr struct {
	Operand Expr // nil for a searched CASE
	Whens   []When
	Else    Expr // nil when absent
}

// When is one WHEN Cond THEN Result arm.
type When struct{ Cond, Result Expr }

// Dereference is X->Field (struct field access).
type Dereference struct {
	X     Expr
	Field string
}

// Subscript is X[Index] (array or map access).
type Subscript struct{ X, Index Expr }

func (*ColumnRef) expr()   {}
func (*StringLit) expr()   {}
func (*NumberLit) expr()   {}
func (*BoolLit) expr()     {}
func (*NullLit) expr()     {}
func (*BinaryExpr) expr()  {}
func (*UnaryExpr) expr()   {}
func (*LikeExpr) expr()    {}
func (*InExpr) expr()      {}
func (*BetweenExpr) expr() {}
func (*IsNullExpr) expr()  {}
func (*FuncCall) expr()    {}
func (*CastExpr) expr()    {}
func (*CaseExpr) expr()    {}
func (*Dereference) expr() {}
func (*Subscript) expr()   {}

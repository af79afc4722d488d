// Package plan compiles a pipeline written as ksqlDB statements into one declared dataflow
// graph: the objects (streams and tables), the steps that derive them and the sinks that leave
// the system, each with its input, output, key, schema and the service that runs it. It is the
// single source of truth of a running jetsuite: the JetStream streams and KV buckets are created
// from it (Catalog), `jetsuite explain` prints it, and the services execute its steps.
//
// # Names
//
// A ksqlDB STREAM is a JetStream stream of the same name; its subject is its KAFKA_TOPIC (or
// SUBJECT), else its name. A TABLE is a KV bucket of the same name; a table declared over a
// topic (CREATE TABLE t (...) WITH (KAFKA_TOPIC=...)) also has the stream its topic's messages
// arrive on. Objects that read the same subject share that stream.
//
// # Who runs what
//
//   - enricher: stateless steps (filters, projections, PARTITION BY, stream–table joins) and the
//     loading of tables declared over JSON topics;
//   - windower: every aggregation (GROUP BY), windowed or not;
//   - cdc: tables declared over Debezium change events (VALUE_FORMAT='DEBEZIUM_JSON');
//   - indexer, alerting, bridge: sink connectors (opensearch, slack, kafka).
package plan

import (
	"strings"
	"time"

	"github.com/jetsuite/jetsuite/shared/ksql"
	"github.com/jetsuite/jetsuite/shared/sqlrt"
)

// Services that execute steps and sinks.
const (
	ServiceEnricher = "enricher"
	ServiceWindower = "windower"
	ServiceCDC      = "cdc"
	ServiceIndexer  = "indexer"
	ServiceAlerting = "alerting"
	ServiceBridge   = "bridge"
)

// Value formats.
const (
	FormatJSON         = "JSON"
	FormatDebeziumJSON = "DEBEZIUM_JSON"
)

// Plan is a compiled pipeline.
type Plan struct {
	// Objects are every stream and table, in the order the statements declare them.
	Objects []*Object
	// Steps derive objects: one per CREATE ... AS SELECT, and one per table declared over a
	// topic (its loading).
	Steps []*Step
	// Sinks are the CREATE SINK CONNECTOR statements.
	Sinks []*Sink
	// Settings are the SET statements, in order (later ones win).
	Settings []Setting
	// Queries are bare SELECT statements found in the files: not run by the pipeline.
	Queries []Query
	// External are source connectors that run outside jetsuite (Debezium), kept for explain.
	External []Sink
	// Files are the files the plan was compiled from.
	Files []string
	// Fused: Fuse ran (the windower runs the stateless statements its aggregations depend on).
	Fused bool
	// DefaultPartitions is the number of partitions of an aggregation whose statement and
	// input give none (0 means 1); every instance of every service must agree on it.
	DefaultPartitions int
	// KeepSavedPartitions: DefaultPartitions was not chosen by the user, so an aggregation
	// without PARTITIONS whose state exists keeps the number it was built with (the windower
	// reads it) instead of being refused for a different one.
	KeepSavedPartitions bool
	// Repartition: the windower splits the reading of every partitioned aggregation of a
	// stream (the repartition step): a router reads the source once and sends each
	// partition's owner only its rows, through the source's shuffle stream
	// (topology.ShuffleStream). Every instance of the windower must agree on it.
	Repartition bool
}

// AggregationSource is the stream an aggregation's task reads: its input's, or for a fused
// one the source it is computed from ("" for an aggregation of a table's changes).
func AggregationSource(st *Step) string {
	switch {
	case st.TableInput:
		return ""
	case st.FusedFrom != nil:
		return st.FusedFrom.Stream
	}
	return st.Input.Stream
}

// AutoPartitions is the binary's default number of partitions for new aggregations (when
// --partitions is not given): enough for a few windowers to share the work, cheap for one
// (one instance reads the input once for all the partitions it owns).
const AutoPartitions = 4

// PartitionsGiven reports whether an aggregation's number of partitions was chosen: by
// PARTITIONS in its statement or its input's, or by a default the user set.
func (p *Plan) PartitionsGiven(st *Step) bool {
	for _, o := range []*Object{st.Output, st.FusedFrom, st.Input} {
		if o != nil && o.Partitions > 0 {
			return true
		}
	}
	return !p.KeepSavedPartitions
}

// PartitionsOf is how many partitions an aggregation's groups are spread over: its own
// PARTITIONS, else its input's (the source stream's, for a fused one), else the plan's
// default. Each partition is a unit of work one windower instance owns (shared/lease).
func (p *Plan) PartitionsOf(st *Step) int {
	for _, o := range []*Object{st.Output, st.FusedFrom, st.Input} {
		if o != nil && o.Partitions > 0 {
			return o.Partitions
		}
	}
	return max(p.DefaultPartitions, 1)
}

// Setting is one SET 'key' = 'value'.
type Setting struct {
	Key, Value string
	Pos        Position
}

// Position is where a statement starts: file, line and column.
type Position struct {
	File string
	ksql.Pos
}

func (p Position) String() string {
	return p.File + ":" + itoa(p.Line) + ":" + itoa(p.Col)
}

// Object is a stream or a table.
type Object struct {
	Name string // upper-cased ksqlDB name
	Kind ksql.SourceKind
	// Subject is the subject its messages are published on: KAFKA_TOPIC (or SUBJECT), else the
	// name. For a table that is a query's result (rows live in the bucket), Subject is empty.
	Subject string
	// Stream is the JetStream stream that holds Subject ("" for derived tables).
	Stream string
	// Bucket is the KV bucket of a table ("" for streams).
	Bucket string
	// Format is FormatJSON or FormatDebeziumJSON.
	Format string
	// Columns are the object's columns: for streams and tables read from a topic, as declared;
	// for query results, the select list in order (key columns included).
	Columns []sqlrt.Column
	// Key names the key columns (PRIMARY KEY / KEY, GROUP BY, PARTITION BY or the join key).
	Key []string
	// Window is set for windowed tables.
	Window *Window
	// Retention is RETENTION_MS: how long the messages of the object's stream are kept (0:
	// the default, a week; NoRetentionLimit: no age limit). A table's rows do not expire by
	// it (a windowed table's rows expire by its WINDOW ... RETENTION).
	Retention time.Duration
	// RetentionBytes is RETENTION_BYTES: the byte limit of the object's stream and of its
	// bucket, each (0: the global default; -1: none).
	RetentionBytes int64
	// Partitions is PARTITIONS (0: not given; see Plan.PartitionsOf).
	Partitions int
	// Source: declared over a subject something outside the plan writes (no step derives it,
	// except the loading of a source table).
	Source bool
	// Producer is the step that writes the object (nil for source streams).
	Producer *Step
	// Pos is where its statement starts; SQL is the statement as canonical SQL.
	Pos Position
	SQL string
	// Fingerprint identifies the definition: a hash of the canonical SQL of the object's
	// statement and of everything upstream of it. State stored under another fingerprint
	// belongs to another definition.
	Fingerprint string
}

// Column returns the position of the named column, or -1.
func (o *Object) Column(name string) int {
	for i, c := range o.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// Windowed reports whether o is a windowed table.
func (o *Object) Windowed() bool { return o.Window != nil }

// WindowKind is TUMBLING, HOPPING or SESSION.
type WindowKind = ksql.WindowKind

// Window is a WINDOW clause.
type Window struct {
	Kind    WindowKind
	Size    time.Duration // tumbling and hopping size; the inactivity gap of session windows
	Advance time.Duration // hopping; equals Size for tumbling windows
	// Grace is the GRACE PERIOD when the statement gives one (HasGrace); otherwise the
	// windower's configured default applies.
	Grace    time.Duration
	HasGrace bool
	// Retention is WINDOW ... RETENTION when given (else 0: the default, 24 h).
	Retention time.Duration
}

// StepKind says what a step does.
type StepKind int

// Step kinds.
const (
	// Load materialises a table declared over a topic: each message is a row (upsert by key;
	// a null body or a Debezium delete removes it).
	Load StepKind = iota
	// Transform is a stateless query: WHERE, select list, PARTITION BY, and at most one
	// stream–table join. Output: a stream.
	Transform
	// Aggregate is a GROUP BY query, windowed or not, over a stream or a table. Output: a
	// table.
	Aggregate
)

func (k StepKind) String() string { return [...]string{"LOAD", "TRANSFORM", "AGGREGATE"}[k] }

// Step is one unit of work a service runs: it reads one object and writes one object.
type Step struct {
	Name    string // the output object's name
	Kind    StepKind
	Service string
	Input   *Object
	Output  *Object

	// Row is the layout of the row every expression of the step reads: the input's columns,
	// then ROWTIME (event time, epoch ms) at RowTime, then, for a join, the table's columns
	// from TableAt on.
	Row     []sqlrt.Column
	RowTime int
	// Join is the stream–table join, if any.
	Join *Join
	// Where filters input rows (nil: every row).
	Where *sqlrt.Expr

	// Transform: Project computes the output columns (Output.Columns, same order) from the
	// row; Key, when set, computes the output's key (PARTITION BY or the join key); nil keeps
	// the input's key.
	Project []sqlrt.Expr
	Key     *sqlrt.Expr

	// Aggregate: GroupBy computes the group key from the row (rows with a NULL in any of them
	// are dropped, as ksqlDB does); Aggregates are folded per group (and window); Result is
	// the layout the select list and HAVING read: the GroupBy values, then one column per
	// aggregate, then WINDOWSTART and WINDOWEND (windowed). Having filters result rows;
	// Columns computes Output.Columns from the result row. TableInput: the input is a table,
	// so a changed or deleted row is first undone.
	GroupBy    []sqlrt.Expr
	Aggregates []sqlrt.Aggregate
	Result     []sqlrt.Column
	Having     *sqlrt.Expr
	Columns    []sqlrt.Expr
	Window     *Window
	TableInput bool
	// KeyColumns are the positions in Output.Columns of the key (select items that are
	// exactly a GROUP BY expression), in GROUP BY order; -1 where the select list lacks one.
	KeyColumns []int
	// EmitFinal: EMIT FINAL (a row only when its window closes).
	EmitFinal bool

	// Load: KeyColumn is the position (in Row) of the primary key column.
	KeyColumn int

	// FusedFrom, set by Fuse, is the source stream whose windower task runs the step: a
	// Transform fused into that task, or an Aggregate over a stream a fused Transform derives
	// (nil: the step reads its input itself).
	FusedFrom *Object

	Pos Position
	SQL string
}

// Join is a stream–table join: for each input row, the table row whose key equals On(row).
type Join struct {
	Type  ksql.JoinType // InnerJoin or LeftJoin
	Table *Object
	// On computes the lookup key from the stream side of the row; compare with the table's key
	// as text (sqlrt.KeyText).
	On sqlrt.Expr
	// TableAt is where the table's columns start in Step.Row.
	TableAt int
}

// Sink is a CREATE SINK CONNECTOR.
type Sink struct {
	Name    string
	Class   string // "opensearch", "slack" or "kafka"
	Service string
	// Objects are the streams and tables its 'topics' name, resolved.
	Objects []*Object
	// KafkaTopics: a 'kafka' sink's 'topics' may write an object to a Kafka topic of another
	// name (NAME=topic); the others go to the topic named as their subject.
	KafkaTopics map[string]string
	// Config is every property as written (keys as written).
	Config map[string]string
	Pos    Position
	SQL    string
}

// Object returns the named object (case-insensitive), or nil.
func (p *Plan) Object(name string) *Object {
	for _, o := range p.Objects {
		if o.Name == name {
			return o
		}
	}
	n := upper(name)
	for _, o := range p.Objects {
		if upper(o.Name) == n {
			return o
		}
	}
	return nil
}

// Durable is the consumer (and checkpoint) name under which a service reads the input of the
// statement that creates object name: the service and the name in lower case with dashes
// (enricher-web-users).
func Durable(service, name string) string {
	return service + "-" + strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// StepsOf returns the steps the named service runs.
func (p *Plan) StepsOf(service string) []*Step {
	var out []*Step
	for _, s := range p.Steps {
		if s.Service == service {
			out = append(out, s)
		}
	}
	return out
}

// SinksOf returns the sinks of one class.
func (p *Plan) SinksOf(class string) []*Sink {
	var out []*Sink
	for _, s := range p.Sinks {
		if s.Class == class {
			out = append(out, s)
		}
	}
	return out
}

// Readers returns the steps that read o.
func (p *Plan) Readers(o *Object) []*Step {
	var out []*Step
	for _, s := range p.Steps {
		if s.Input == o || (s.Join != nil && s.Join.Table == o) {
			out = append(out, s)
		}
	}
	return out
}

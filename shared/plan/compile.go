package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/ksql"
	"github.com/jetsuite/jetsuite/shared/sqlrt"
)

// File is one pipeline file: its name (for error messages) and its statements.
type File struct {
	Name string
	SQL  string
}

// Compile parses the files and compiles every statement, in order, into one plan. The first
// error stops it: a *ksql.SyntaxError that names the file, line and column, the offending token
// or identifier and what was expected. Nothing is created from a plan that does not compile.
//
// Bare SELECT statements (transient queries) are not part of a pipeline: they are kept in
// Plan.Queries for `jetsuite explain` and can be run with `jetsuite query`.
func Compile(files ...File) (*Plan, error) {
	c := &compiler{plan: &Plan{}}
	for _, f := range files {
		stmts, err := ksql.Parse(f.Name, f.SQL)
		if err != nil {
			return nil, err
		}
		c.file = f.Name
		c.plan.Files = append(c.plan.Files, f.Name)
		for _, s := range stmts {
			if err := c.statement(s); err != nil {
				var se *ksql.SyntaxError
				if errors.As(err, &se) && se.File == "" {
					se.File = f.Name
				}
				return nil, err
			}
		}
	}
	c.fingerprints()
	return c.plan, nil
}

type compiler struct {
	plan *Plan
	file string
}

func (c *compiler) pos(p ksql.Pos) Position { return Position{File: c.file, Pos: p} }

// errAt is a compile error at p.
func errAt(p ksql.Pos, token, msg, hint string) *ksql.SyntaxError {
	return &ksql.SyntaxError{Line: p.Line, Col: p.Col, Token: token, Msg: msg, Hint: hint}
}

func unsupportedAt(p ksql.Pos, token, what, hint string) *ksql.SyntaxError {
	e := errAt(p, token, what+" is not supported", hint)
	e.Unsupported = true
	return e
}

func (c *compiler) statement(s ksql.Statement) error {
	switch s := s.(type) {
	case *ksql.SetStmt:
		c.plan.Settings = append(c.plan.Settings, Setting{Key: s.Key, Value: s.Value, Pos: c.pos(s.Pos)})
		return nil
	case *ksql.CreateSource:
		return c.createSource(s)
	case *ksql.CreateAsSelect:
		return c.createAsSelect(s)
	case *ksql.CreateConnector:
		return c.connector(s)
	case *ksql.QueryStmt:
		c.plan.Queries = append(c.plan.Queries, Query{SQL: s.String(), Pos: c.pos(s.Pos)})
		return nil
	case *ksql.InsertInto:
		return unsupportedAt(s.Pos, "INSERT", "INSERT INTO in a pipeline file", "select from several streams with one CREATE STREAM ... AS SELECT each")
	case *ksql.DropStmt:
		return unsupportedAt(s.Pos, "DROP", "DROP in a pipeline file", "remove the statement from the file; pass --rebuild NAME to rebuild a changed object")
	}
	return fmt.Errorf("plan: unexpected statement %T", s)
}

// props turns WITH (...) into upper-cased keys and string values.
func props(with []ksql.Property) map[string]string {
	m := map[string]string{}
	for _, p := range with {
		m[strings.ToUpper(p.Key)] = literalText(p.Value)
	}
	return m
}

func literalText(e ksql.Expr) string {
	switch v := e.(type) {
	case *ksql.StringLit:
		return v.Value
	case *ksql.NumberLit:
		return v.Text
	case *ksql.BoolLit:
		return strconv.FormatBool(v.Value)
	}
	return e.String()
}

// knownProps are the WITH properties a stream or table accepts; the value says how each is
// treated.
var knownProps = map[string]string{
	"KAFKA_TOPIC": "subject", "SUBJECT": "subject", "VALUE_FORMAT": "format", "FORMAT": "format",
	"KEY_FORMAT": "ignored", "PARTITIONS": "partitions", "REPLICAS": "ignored",
	"VALUE_DELIMITER": "ignored", "WRAP_SINGLE_VALUE": "ignored", "RETENTION_MS": "retention",
	"RETENTION_BYTES": "retention-bytes",
}

// storage is what a statement's WITH says about where its messages go and how long they stay.
type storage struct {
	subject, format string
	// retention is RETENTION_MS (0: not given; NoRetentionLimit: -1, keep without an age limit).
	retention time.Duration
	// retentionBytes is RETENTION_BYTES (0: not given; topology.NoLimit: -1, no byte limit).
	retentionBytes int64
	// partitions is PARTITIONS (0: not given).
	partitions int
}

// NoRetentionLimit is RETENTION_MS=-1 (Kafka's retention.ms=-1): no age limit.
const NoRetentionLimit time.Duration = -1

func (c *compiler) with(pos ksql.Pos, with []ksql.Property, kind string) (st storage, err error) {
	m := props(with)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch knownProps[k] {
		case "":
			if k == "TIMESTAMP" || k == "TIMESTAMP_FORMAT" {
				return st, unsupportedAt(pos, k, "WITH ("+k+"=...)", "jetsuite's event time is the Jetsuite-Event-Time header (else the publish time); set it when publishing")
			}
			return st, errAt(pos, k, "unknown property "+k+" in WITH of "+kind,
				"properties are KAFKA_TOPIC (or SUBJECT), VALUE_FORMAT, KEY_FORMAT, PARTITIONS, REPLICAS, RETENTION_MS, RETENTION_BYTES")
		case "retention":
			// ksqlDB's RETENTION_MS (the backing topic's retention.ms): the age limit of
			// the object's stream; -1 keeps messages without one, as in Kafka.
			ms, perr := strconv.ParseInt(m[k], 10, 64)
			if perr != nil || ms == 0 || ms < -1 {
				return st, errAt(pos, m[k], "RETENTION_MS must be a positive number of milliseconds, or -1 (no age limit)", "")
			}
			st.retention = time.Duration(ms) * time.Millisecond
			if ms == -1 {
				st.retention = NoRetentionLimit
			}
		case "partitions":
			n, perr := strconv.Atoi(m[k])
			if perr != nil || n < 1 || n > MaxPartitions {
				return st, errAt(pos, m[k], fmt.Sprintf("PARTITIONS must be a whole number from 1 to %d", MaxPartitions), "")
			}
			st.partitions = n
		case "retention-bytes":
			// jetsuite's RETENTION_BYTES, after Kafka's retention.bytes: the byte limit of the
			// object's stream and of its bucket; -1 lifts it.
			n, perr := config.ParseBytes(m[k])
			if perr != nil || n < -1 || (n >= 0 && n < MinRetentionBytes) {
				return st, errAt(pos, m[k], "RETENTION_BYTES must be a size of at least 1MiB (a number of bytes, or '512MiB', '2GB'), or -1 (no byte limit)", "")
			}
			st.retentionBytes = n
		}
	}
	st.subject = m["KAFKA_TOPIC"]
	if s := m["SUBJECT"]; s != "" {
		st.subject = s
	}
	st.format = strings.ToUpper(m["VALUE_FORMAT"])
	if f := m["FORMAT"]; f != "" {
		st.format = strings.ToUpper(f)
	}
	switch st.format {
	case "", FormatJSON:
		st.format = FormatJSON
	case FormatDebeziumJSON:
	case "AVRO", "PROTOBUF", "JSON_SR", "PROTOBUF_NOSR", "DELIMITED", "KAFKA":
		return st, unsupportedAt(pos, st.format, "VALUE_FORMAT '"+st.format+"'",
			"use VALUE_FORMAT='JSON' with the columns declared, or 'DEBEZIUM_JSON' for Debezium change events")
	default:
		return st, errAt(pos, st.format, "unknown VALUE_FORMAT '"+st.format+"'", "use 'JSON' or 'DEBEZIUM_JSON'")
	}
	return st, nil
}

// MaxPartitions bounds PARTITIONS: each partition is a lease, a consumer and a task.
const MaxPartitions = 256

// MinRetentionBytes is the smallest RETENTION_BYTES: a stream must hold a few of the largest
// messages (the embedded server accepts up to 8 MiB, for dead letters of oversized input).
const MinRetentionBytes = 1 << 20

func (c *compiler) declare(o *Object, pos ksql.Pos) error {
	if prev := c.plan.Object(o.Name); prev != nil {
		return errAt(pos, o.Name, fmt.Sprintf("%s %s already exists (declared at %s)", strings.ToLower(string(prev.Kind)), o.Name, prev.Pos),
			"give it another name; a changed definition replaces the old one when you pass --rebuild "+o.Name)
	}
	c.plan.Objects = append(c.plan.Objects, o)
	return nil
}

// streamFor names the JetStream stream that holds subject: the stream of an object that
// already reads it, else want.
func (c *compiler) streamFor(subject, want string) string {
	for _, o := range c.plan.Objects {
		if o.Subject == subject && o.Stream != "" {
			return o.Stream
		}
	}
	return want
}

var nonName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// DebeziumStream is the stream Debezium change events arrive on: Debezium Server's default
// stream name, so that a Debezium Server with create-stream=false publishes into it unchanged.
const DebeziumStream = "DebeziumStream"

func (c *compiler) createSource(s *ksql.CreateSource) error {
	kind := strings.ToLower(string(s.Kind))
	st, err := c.with(s.Pos, s.With, kind)
	if err != nil {
		return err
	}
	subject, format := st.subject, st.format
	if subject == "" {
		return errAt(s.Pos, s.Name, kind+" "+s.Name+" needs WITH (KAFKA_TOPIC='subject')", "name the subject its messages arrive on")
	}
	o := &Object{Name: s.Name, Kind: s.Kind, Subject: subject, Format: format, Source: true,
		Retention: st.retention, RetentionBytes: st.retentionBytes, Partitions: st.partitions, Pos: c.pos(s.Pos), SQL: s.String()}
	seen := map[string]bool{}
	for _, col := range s.Columns {
		if seen[col.Name] {
			return errAt(s.Pos, col.Name, "column "+col.Name+" is declared twice in "+s.Name, "")
		}
		seen[col.Name] = true
		t, err := sqlrt.TypeOf(col.Type)
		if err != nil {
			return located(err, s.Pos)
		}
		o.Columns = append(o.Columns, sqlrt.Column{Name: col.Name, Type: t})
		if col.Key || col.PrimaryKey {
			if s.Kind == ksql.Table && col.Key {
				return errAt(s.Pos, col.Name, "a table's key column is declared PRIMARY KEY", "write "+col.Name+" "+t.String()+" PRIMARY KEY")
			}
			if s.Kind == ksql.Stream && col.PrimaryKey {
				return errAt(s.Pos, col.Name, "a stream's key column is declared KEY, not PRIMARY KEY", "write "+col.Name+" "+t.String()+" KEY")
			}
			o.Key = append(o.Key, col.Name)
		}
	}
	if len(o.Columns) == 0 {
		return errAt(s.Pos, s.Name, kind+" "+s.Name+" declares no columns",
			"JSON carries no schema: declare the columns, e.g. CREATE "+string(s.Kind)+" "+s.Name+" (ID INT, ...)")
	}
	if len(o.Key) > 1 {
		return unsupportedAt(s.Pos, o.Key[1], "more than one key column", "declare one key column")
	}
	switch s.Kind {
	case ksql.Table:
		if len(o.Key) == 0 {
			return errAt(s.Pos, s.Name, "table "+s.Name+" has no PRIMARY KEY column", "mark the key column, e.g. ID INT PRIMARY KEY")
		}
		o.Bucket = s.Name
		want := strings.ToUpper(nonName.ReplaceAllString(subject, "_"))
		if want == s.Name {
			want += "_SRC"
		}
		if format == FormatDebeziumJSON {
			want = DebeziumStream
		}
		o.Stream = c.streamFor(subject, want)
		if err := c.declare(o, s.Pos); err != nil {
			return err
		}
		st := &Step{Name: o.Name, Kind: Load, Service: ServiceEnricher, Input: o, Output: o,
			Pos: o.Pos, SQL: o.SQL, KeyColumn: o.Column(o.Key[0])}
		if format == FormatDebeziumJSON {
			st.Service = ServiceCDC
		}
		st.Row, st.RowTime = rowOf(o.Columns)
		o.Producer = st
		c.plan.Steps = append(c.plan.Steps, st)
		return nil
	default:
		if format == FormatDebeziumJSON {
			want := DebeziumStream
			o.Stream = c.streamFor(subject, want)
		} else {
			o.Stream = c.streamFor(subject, s.Name)
		}
		return c.declare(o, s.Pos)
	}
}

// rowOf is a step's row layout over cols: the columns, then ROWTIME.
func rowOf(cols []sqlrt.Column) ([]sqlrt.Column, int) {
	row := append([]sqlrt.Column(nil), cols...)
	row = append(row, sqlrt.Column{Name: "ROWTIME", Type: sqlrt.Type{Kind: sqlrt.BigInt}})
	return row, len(cols)
}

// located gives an error from sqlrt a position when it has none.
func located(err error, p ksql.Pos) error {
	var se *ksql.SyntaxError
	if errors.As(err, &se) && se.Line == 0 {
		se.Line, se.Col = p.Line, p.Col
	}
	return err
}

// Query is a transient query found in a pipeline file (not run by the pipeline).
type Query struct {
	SQL string
	Pos Position
}

func (c *compiler) connector(s *ksql.CreateConnector) error {
	cfg := map[string]string{}
	for _, p := range s.With {
		cfg[p.Key] = literalText(p.Value)
	}
	class := cfg["connector.class"]
	if s.Kind == ksql.Source {
		// Source connectors (Debezium's MySQL connector in the ratings demo) run outside
		// jetsuite: Debezium Server or Kafka Connect publishes the change events; a TABLE with
		// VALUE_FORMAT='DEBEZIUM_JSON' reads them.
		if !strings.HasPrefix(class, "io.debezium.") {
			return unsupportedAt(s.Pos, class, "source connector class '"+class+"'",
				"publish to a subject (or through the Kafka bridge) and declare a STREAM or TABLE over it")
		}
		c.plan.External = append(c.plan.External, Sink{Name: s.Name, Class: class, Config: cfg, Pos: c.pos(s.Pos), SQL: s.String()})
		return nil
	}
	sink := &Sink{Name: s.Name, Config: cfg, Pos: c.pos(s.Pos), SQL: s.String()}
	lc := strings.ToLower(class)
	switch {
	case lc == "opensearch" || strings.Contains(lc, "elasticsearch") || strings.Contains(lc, "opensearch"):
		sink.Class, sink.Service = "opensearch", ServiceIndexer
	case lc == "slack" || strings.Contains(lc, "slack"):
		sink.Class, sink.Service = "slack", ServiceAlerting
	case lc == "kafka":
		sink.Class, sink.Service = "kafka", ServiceBridge
	case class == "":
		return errAt(s.Pos, s.Name, "sink connector "+s.Name+" has no 'connector.class'", "use 'opensearch', 'slack' or 'kafka'")
	default:
		return unsupportedAt(s.Pos, class, "connector class '"+class+"'",
			"jetsuite's sinks are 'opensearch' (Elasticsearch connector settings translate), 'slack' and 'kafka'")
	}
	topics := cfg["topics"]
	if topics == "" {
		return errAt(s.Pos, s.Name, "sink connector "+s.Name+" has no 'topics'", "list the streams or tables it reads: 'topics' = 'A,B'")
	}
	for _, t := range strings.Split(topics, ",") {
		t = strings.TrimSpace(t)
		t, kafkaTopic, renamed := strings.Cut(t, "=")
		if renamed && class != "kafka" {
			return errAt(s.Pos, t, "sink "+s.Name+": NAME=topic in 'topics' is only for the 'kafka' sink", "list the streams and tables by name or subject")
		}
		o := c.bySubjectOrName(t)
		if o == nil {
			return errAt(s.Pos, t, "sink "+s.Name+": no stream or table reads or writes topic "+t,
				"topics are the subjects (KAFKA_TOPIC) or names of streams and tables declared above: "+strings.Join(c.names(), ", "))
		}
		sink.Objects = append(sink.Objects, o)
		if renamed {
			if sink.KafkaTopics == nil {
				sink.KafkaTopics = map[string]string{}
			}
			sink.KafkaTopics[o.Name] = strings.TrimSpace(kafkaTopic)
		}
	}
	for _, x := range c.plan.Sinks {
		if x.Name == s.Name {
			return errAt(s.Pos, s.Name, "connector "+s.Name+" already exists", "")
		}
	}
	c.plan.Sinks = append(c.plan.Sinks, sink)
	return nil
}

func (c *compiler) bySubjectOrName(t string) *Object {
	for _, o := range c.plan.Objects {
		if o.Subject == t {
			return o
		}
	}
	return c.plan.Object(t)
}

func (c *compiler) names() []string {
	var out []string
	for _, o := range c.plan.Objects {
		out = append(out, o.Name)
	}
	return out
}

func (c *compiler) source(r ksql.Relation) (*Object, error) {
	o := c.plan.Object(r.Name)
	if o == nil {
		return nil, errAt(r.Pos, r.Name, "unknown stream or table "+r.Name+"; declared so far: "+strings.Join(c.names(), ", "), "")
	}
	return o, nil
}

// fingerprints computes each object's fingerprint from its statement and its inputs'.
func (c *compiler) fingerprints() {
	for _, o := range c.plan.Objects {
		h := sha256.New()
		h.Write([]byte(o.SQL))
		if st := o.Producer; st != nil && st.Input != nil && st.Input != o {
			h.Write([]byte(st.Input.Fingerprint))
			if st.Join != nil {
				h.Write([]byte(st.Join.Table.Fingerprint))
			}
		}
		o.Fingerprint = hex.EncodeToString(h.Sum(nil))[:16]
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func upper(s string) string { return strings.ToUpper(s) }

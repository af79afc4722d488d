package plan

import (
	"embed"
	"fmt"
	"strings"
	"time"

	"github.com/jetsuite/jetsuite/shared/ksql"
	"github.com/jetsuite/jetsuite/shared/topology"
)

//go:embed demos/*.sql
var demos embed.FS

// DemoFiles are the built-in pipelines, in the order they compile: the clickstream demo's
// statements.sql (byte for byte the original), the ratings demo's statements (JSON in place of
// Avro, see the file's header) and jetsuite's additions (other generator sources, sinks).
func DemoFiles() []File {
	var out []File
	for _, name := range []string{"clickstream.sql", "ratings.sql", "extras.sql"} {
		b, err := demos.ReadFile("demos/" + name)
		if err != nil {
			panic("plan: embedded demo " + name + ": " + err.Error()) // a build defect
		}
		out = append(out, File{Name: name, SQL: string(b)})
	}
	return out
}

// Demo compiles the built-in pipelines. They are compiled by the tests, so an error here is a
// build defect.
func Demo() *Plan {
	p, err := Compile(DemoFiles()...)
	if err != nil {
		panic("plan: built-in pipelines: " + err.Error())
	}
	return p
}

const week = 7 * 24 * time.Hour

// DefaultWindowRetention is how long windowed rows stay in their bucket unless WINDOW ...
// RETENTION says otherwise: ksqlDB's default retention.
const DefaultWindowRetention = 24 * time.Hour

// Catalog is every stream and bucket the plan needs: the streams its objects are read from and
// written to, the tables' buckets, and the operational streams and state buckets.
//
// Limits: a stream keeps its messages for RETENTION_MS (default a week) and up to
// RETENTION_BYTES (default: topology.Options' global limit); a bucket holds up to its table's
// RETENTION_BYTES. Objects that share a stream (declared over one subject) combine theirs: a
// given value wins over none, the larger of two given ones wins (-1, no limit, above all).
// A stream that only a CREATE STREAM ... AS SELECT writes is Derived (a short de-duplication
// window, see topology.Stream).
func (p *Plan) Catalog() topology.Catalog {
	var c topology.Catalog
	index := map[string]int{}
	ages := map[string]time.Duration{} // RETENTION_MS given per stream
	for _, o := range p.Objects {
		if o.Stream != "" {
			subjects := []string{o.Subject}
			if o.Format == FormatDebeziumJSON {
				// Debezium publishes <prefix>.<database>.<table> (and schema changes on
				// <prefix>): bind the prefix, not Debezium's default "*.*.*", which would
				// overlap the KV buckets' subjects.
				prefix, _, _ := strings.Cut(o.Subject, ".")
				subjects = []string{prefix, prefix + ".>"}
			}
			derived := o.Producer != nil && o.Producer.Kind == Transform && !o.Source
			i, ok := index[o.Stream]
			if !ok {
				i = len(c.Streams)
				index[o.Stream] = i
				c.Streams = append(c.Streams, topology.Stream{Name: o.Stream, Derived: derived, Description: describe(o)})
			}
			s := &c.Streams[i]
			for _, subj := range subjects {
				if !contains(s.Subjects, subj) {
					s.Subjects = append(s.Subjects, subj)
				}
			}
			// Written by something besides its one processor (a source declared over the
			// same subject): it needs the full window.
			s.Derived = s.Derived && derived
			s.MaxBytes = larger(s.MaxBytes, o.RetentionBytes, topology.NoLimit)
			ages[o.Stream] = larger(ages[o.Stream], o.Retention, NoRetentionLimit)
		}
		if o.Bucket != "" {
			b := topology.Bucket{Name: o.Bucket, Windowed: o.Windowed(), MaxBytes: o.RetentionBytes, Description: describe(o)}
			if o.Windowed() {
				b.TTL = DefaultWindowRetention
				if o.Window.Retention > 0 {
					b.TTL = o.Window.Retention
				}
			}
			c.Buckets = append(c.Buckets, b)
		}
	}
	for i := range c.Streams {
		switch age := ages[c.Streams[i].Name]; age {
		case 0:
			c.Streams[i].MaxAge = week // ksqlDB's default retention of a new topic
		case NoRetentionLimit:
			c.Streams[i].MaxAge = 0
		default:
			c.Streams[i].MaxAge = age
		}
	}
	// The windower's repartition step: a shuffle stream per stream a partitioned aggregation
	// reads. It holds what its source holds (a multiple of it, bounded alike), for a day at
	// most: its readers apply it within seconds.
	for _, st := range p.Steps {
		src := ""
		if p.Repartition && st.Kind == Aggregate && p.PartitionsOf(st) > 1 {
			src = AggregationSource(st)
		}
		name := topology.ShuffleStream(src)
		if _, ok := index[name]; ok || src == "" {
			continue
		}
		s := topology.Stream{Name: name, Subjects: []string{topology.ShuffleSubject(src)}, Derived: true, MaxAge: topology.ShuffleMaxAge,
			Description: "windower repartition step: " + src + " routed to its aggregations' partitions"}
		if i, ok := index[src]; ok {
			s.MaxBytes = c.Streams[i].MaxBytes
			if age := c.Streams[i].MaxAge; age > 0 {
				s.MaxAge = min(age, s.MaxAge)
			}
		}
		index[name] = len(c.Streams)
		c.Streams = append(c.Streams, s)
	}
	ops := topology.Operations()
	c.Streams = append(c.Streams, ops.Streams...)
	c.Buckets = append(c.Buckets, ops.Buckets...)
	return c
}

// larger combines two limits of which 0 means "not given" and none means "no limit": a given
// one wins over 0, none over everything, else the larger.
func larger[T int64 | time.Duration](a, b, none T) T {
	switch {
	case a == none || b == none:
		return none
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return max(a, b)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// describe is a one-line description of an object for stream and bucket descriptions.
func describe(o *Object) string {
	st := o.Producer
	switch {
	case o.Source && o.Kind == ksql.Stream:
		return fmt.Sprintf("STREAM %s, subject %s (%s)", o.Name, o.Subject, strings.ToLower(o.Format))
	case o.Source:
		return fmt.Sprintf("TABLE %s from subject %s (%s), key %s", o.Name, o.Subject, strings.ToLower(o.Format), strings.Join(o.Key, ", "))
	case st != nil && st.Kind == Aggregate:
		s := fmt.Sprintf("TABLE %s: GROUP BY %s over %s", o.Name, strings.Join(o.Key, ", "), st.Input.Name)
		if w := st.Window; w != nil {
			s += ", " + w.String()
		}
		return s
	case st != nil:
		s := fmt.Sprintf("STREAM %s from %s", o.Name, st.Input.Name)
		if st.Join != nil {
			s += fmt.Sprintf(" %s JOIN %s", st.Join.Type, st.Join.Table.Name)
		}
		if st.Where != nil {
			s += " WHERE " + st.Where.Text
		}
		return s
	}
	return o.Name
}

// String renders the window as ksqlDB writes it.
func (w *Window) String() string {
	switch w.Kind {
	case ksql.Hopping:
		return fmt.Sprintf("HOPPING %s / %s", w.Size, w.Advance)
	case ksql.Session:
		return fmt.Sprintf("SESSION %s", w.Size)
	}
	return fmt.Sprintf("TUMBLING %s", w.Size)
}

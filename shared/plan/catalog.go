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
func (p *Plan) Catalog() topology.Catalog {
	var c topology.Catalog
	index := map[string]int{}
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
			if i, ok := index[o.Stream]; ok {
				for _, s := range subjects {
					if !contains(c.Streams[i].Subjects, s) {
						c.Streams[i].Subjects = append(c.Streams[i].Subjects, s)
					}
				}
				continue
			}
			maxAge := week
			if o.Retention > 0 && o.Kind == ksql.Stream {
				maxAge = o.Retention
			}
			index[o.Stream] = len(c.Streams)
			c.Streams = append(c.Streams, topology.Stream{Name: o.Stream, Subjects: subjects, MaxAge: maxAge, Description: describe(o)})
		}
		if o.Bucket != "" {
			b := topology.Bucket{Name: o.Bucket, Windowed: o.Windowed(), Description: describe(o)}
			if o.Windowed() {
				b.TTL = DefaultWindowRetention
				if o.Window.Retention > 0 {
					b.TTL = o.Window.Retention
				}
			}
			c.Buckets = append(c.Buckets, b)
		}
	}
	ops := topology.Operations()
	c.Streams = append(c.Streams, ops.Streams...)
	c.Buckets = append(c.Buckets, ops.Buckets...)
	return c
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

package plan

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/sqlrt"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// Explain writes the plan the way ksqlDB's EXPLAIN describes a query: every object with its
// columns, key, stream, subject and bucket, and their limits as o resolves them; every step
// with the service that runs it, its input, join, filter, projection or aggregation and its
// output; every sink; the operational streams and state buckets, and the most disk it all
// may take.
func (p *Plan) Explain(w io.Writer, o topology.Options) error {
	ew := &errWriter{w: w}
	cat := p.Catalog()
	opts := o
	ew.printf("Pipeline: %s\n\n", strings.Join(p.Files, ", "))
	ew.printf("Objects\n")
	for _, o := range p.Objects {
		ew.printf("  %s %s", o.Kind, o.Name)
		if o.Windowed() {
			ew.printf(" (windowed: %s)", o.Window)
		}
		ew.printf("  [%s]\n", o.Pos)
		if o.Stream != "" {
			ew.printf("      stream %s, subject %s, format %s\n", o.Stream, o.Subject, o.Format)
			if s, err := cat.Stream(o.Stream); err == nil {
				ew.printf("      keeps %s\n", streamLimits(s, opts))
			}
		}
		if o.Bucket != "" {
			ew.printf("      bucket %s", o.Bucket)
			if b, err := cat.Bucket(o.Bucket); err == nil {
				ew.printf(", %s", bucketLimits(b, opts))
			}
			ew.printf("\n")
		}
		ew.printf("      key %s\n", orNone(strings.Join(o.Key, ", ")))
		ew.printf("      columns %s\n", columns(o.Columns))
		ew.printf("      fingerprint %s\n", o.Fingerprint)
	}
	if len(p.Settings) > 0 {
		ew.printf("\nSettings (SET: recorded, not applied; jetsuite reads every source from its start, as auto.offset.reset=earliest)\n")
		for _, st := range p.Settings {
			ew.printf("  '%s' = '%s'  [%s]\n", st.Key, st.Value, st.Pos)
		}
	}
	ew.printf("\nSteps\n")
	for _, s := range p.Steps {
		ew.printf("  %-9s %s %s  [%s]\n", s.Service, s.Kind, s.Name, s.Pos)
		switch s.Kind {
		case Load:
			ew.printf("      read  stream %s (subject %s), %s rows keyed by %s\n", s.Input.Stream, s.Input.Subject, strings.ToLower(s.Input.Format), s.Input.Key[0])
			ew.printf("      write bucket %s (upsert; a delete removes the row)\n", s.Output.Bucket)
		case Transform:
			ew.printf("      read  stream %s\n", s.Input.Stream)
			if s.FusedFrom != nil {
				ew.printf("      fused into the windower's task on stream %s (evaluated on its messages; the output is published, not read back)\n", s.FusedFrom.Stream)
			}
			if s.Join != nil {
				ew.printf("      join  %s JOIN table %s ON %s = %s (in-memory view of bucket %s)\n", s.Join.Type, s.Join.Table.Name, s.Join.On.Text, s.Join.Table.Key[0], s.Join.Table.Bucket)
			}
			if s.Where != nil {
				ew.printf("      where %s\n", s.Where.Text)
			}
			ew.printf("      select %s\n", exprs(s.Project, s.Output.Columns))
			if s.Key != nil {
				ew.printf("      key   %s\n", s.Key.Text)
			} else {
				ew.printf("      key   the input's key\n")
			}
			ew.printf("      write stream %s, subject %s\n", s.Output.Stream, s.Output.Subject)
		case Aggregate:
			src := "stream " + s.Input.Stream
			if s.TableInput {
				src = "table " + s.Input.Name + " (changes undo the old row)"
			}
			ew.printf("      read  %s\n", src)
			if s.FusedFrom != nil {
				ew.printf("      fused: rows computed from stream %s's messages in the same task\n", s.FusedFrom.Stream)
			}
			if s.Where != nil {
				ew.printf("      where %s\n", s.Where.Text)
			}
			var g []string
			for _, e := range s.GroupBy {
				g = append(g, e.Text)
			}
			ew.printf("      group by %s\n", strings.Join(g, ", "))
			if n := p.PartitionsOf(s); n > 1 && p.Repartition && !s.TableInput {
				ew.printf("      partitions %d (by group key hash; one windower instance owns each and reads only its rows, routed by the repartition step through stream %s)\n", n, topology.ShuffleStream(AggregationSource(s)))
			} else if n > 1 {
				ew.printf("      partitions %d (by group key hash; each reads the whole input, one windower instance owns each)\n", n)
			}
			if s.Window != nil {
				grace := "the windower's default grace"
				if s.Window.HasGrace {
					grace = "grace " + s.Window.Grace.String()
				}
				ew.printf("      window %s, %s\n", s.Window, grace)
			}
			var a []string
			for _, x := range s.Aggregates {
				a = append(a, x.Text)
			}
			ew.printf("      aggregate %s\n", orNone(strings.Join(a, ", ")))
			if s.Having != nil {
				ew.printf("      having %s\n", s.Having.Text)
			}
			ew.printf("      select %s\n", columns(s.Output.Columns))
			emit := "EMIT CHANGES (every update)"
			if s.EmitFinal {
				emit = "EMIT FINAL (when the window closes)"
			}
			ew.printf("      write bucket %s, %s\n", s.Output.Bucket, emit)
		}
	}
	if len(p.Sinks) > 0 {
		ew.printf("\nSinks\n")
		for _, s := range p.Sinks {
			var names []string
			for _, o := range s.Objects {
				names = append(names, o.Name)
			}
			ew.printf("  %-9s %s (%s) <- %s  [%s]\n", s.Service, s.Name, s.Class, strings.Join(names, ", "), s.Pos)
		}
	}
	if len(p.External) > 0 {
		ew.printf("\nRun outside jetsuite\n")
		for _, s := range p.External {
			ew.printf("  SOURCE CONNECTOR %s (%s): Debezium Server or Kafka Connect publishes its change events  [%s]\n", s.Name, s.Class, s.Pos)
		}
	}
	if len(p.Queries) > 0 {
		ew.printf("\nNot run (transient queries; use jetsuite query)\n")
		for _, q := range p.Queries {
			ew.printf("  [%s] %s\n", q.Pos, q.SQL)
		}
	}
	ops := topology.Operations()
	ew.printf("\nOperational streams and state buckets\n")
	for _, s := range ops.Streams {
		ew.printf("  stream %s (%s): keeps %s\n", s.Name, strings.Join(s.Subjects, ", "), streamLimits(s, opts))
	}
	for _, b := range ops.Buckets {
		ew.printf("  bucket %s: %s\n", b.Name, bucketLimits(b, opts))
	}
	reserved, unbounded := cat.Reserved(opts)
	ew.printf("\nStorage: %d streams and %d buckets take at most %s per replica", len(cat.Streams), len(cat.Buckets), config.FormatBytes(reserved))
	if unbounded {
		ew.printf(", plus those without a byte limit")
	}
	ew.printf("\n")
	return ew.err
}

// streamLimits says how long and how much a stream keeps, and its de-duplication window.
func streamLimits(s topology.Stream, o topology.Options) string {
	cfg := o.StreamConfig(s)
	size := "no byte limit"
	if cfg.MaxBytes > 0 {
		size = "up to " + config.FormatBytes(cfg.MaxBytes) + " (then the oldest messages are dropped)"
	}
	window := "Nats-Msg-Id window " + age(cfg.Duplicates)
	if s.Derived {
		window += " (derived: chained outputs)"
	}
	return age(cfg.MaxAge) + ", " + size + ", " + window
}

// bucketLimits says how much a bucket holds, what happens when it is full, and when rows expire.
func bucketLimits(b topology.Bucket, o topology.Options) string {
	n := o.BucketLimit(b)
	out := "no byte limit"
	switch {
	case n > 0 && b.Windowed:
		out = "up to " + config.FormatBytes(n) + " (then the oldest windows are dropped)"
	case n > 0:
		out = "up to " + config.FormatBytes(n) + " (then new keys are refused: its writer stalls)"
	}
	if b.TTL > 0 {
		out += ", rows expire after " + age(b.TTL)
	}
	return out
}

// age writes a duration in days when it is whole days ("7d"), else as Go does; 0 (no age
// limit) is "forever".
func age(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == 0:
		return "forever"
	case d%day == 0:
		return fmt.Sprintf("%dd", d/day)
	}
	return d.String()
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func columns(cols []sqlrt.Column) string {
	var out []string
	for _, c := range cols {
		out = append(out, c.Name+" "+c.Type.String())
	}
	return strings.Join(out, ", ")
}

func exprs(es []sqlrt.Expr, cols []sqlrt.Column) string {
	var out []string
	for i, e := range es {
		s := e.Text
		if s != cols[i].Name {
			s += " AS " + cols[i].Name
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

// WriteNames writes the plan's streams and tables as the two Markdown tables of the README's
// "Names" section (`jetsuite explain --names`), so that the README cannot drift from the
// statements.
func (p *Plan) WriteNames(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.printf("**Streams** (JetStream streams; a subject per stream):\n\n")
	ew.printf("| stream | subject | written by | from | columns |\n|---|---|---|---|---|\n")
	for _, o := range p.Objects {
		if o.Stream == "" || o.Kind != "STREAM" {
			continue
		}
		by, from := "outside (source)", "–"
		if st := o.Producer; st != nil {
			by = st.Service
			from = describe(o)
		}
		ew.printf("| `%s` | `%s` | %s | %s | %s |\n", o.Stream, o.Subject, by, md(from), md(names(o.Columns)))
	}
	ew.printf("\n**Tables** (KV buckets):\n\n")
	ew.printf("| table | key | window | written by | from | columns |\n|---|---|---|---|---|---|\n")
	for _, o := range p.Objects {
		if o.Bucket == "" {
			continue
		}
		win := "–"
		if o.Window != nil {
			win = o.Window.String()
		}
		from := "subject `" + o.Subject + "` (stream `" + o.Stream + "`)"
		st := o.Producer
		if st.Kind == Aggregate {
			from = describe(o)
		}
		ew.printf("| `%s` | %s | %s | %s | %s | %s |\n", o.Bucket, md(strings.Join(o.Key, ", ")), win, st.Service, md(from), md(names(o.Columns)))
	}
	return ew.err
}

func names(cols []sqlrt.Column) string {
	var out []string
	for _, c := range cols {
		out = append(out, c.Name)
	}
	return strings.Join(out, ", ")
}

// md escapes what would break a Markdown table cell.
func md(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

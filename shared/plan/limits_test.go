package plan

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jetsuite/jetsuite/shared/ksql"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// TestRetentionProperties: RETENTION_MS (ksqlDB's) is the age limit of the statement's stream
// and RETENTION_BYTES (jetsuite's, after Kafka's retention.bytes) the byte limit of its stream
// and of its bucket; -1 lifts either; without them the defaults apply (a week; the global byte
// limits, 0 here). Objects over one subject share the stream and the larger limits.
func TestRetentionProperties(t *testing.T) {
	p, err := Compile(File{Name: "p.sql", SQL: `
CREATE STREAM clicks (ip VARCHAR, status INT) WITH (kafka_topic='clicks', retention_ms=3600000, retention_bytes='512MiB');
CREATE STREAM clicks_again (ip VARCHAR) WITH (kafka_topic='clicks', retention_ms=7200000, retention_bytes=2097152);
CREATE STREAM forever (ip VARCHAR) WITH (kafka_topic='forever', retention_ms=-1, retention_bytes=-1);
CREATE STREAM plain (ip VARCHAR) WITH (kafka_topic='plain');
CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR) WITH (kafka_topic='users', retention_ms=60000, retention_bytes='3MiB');
CREATE STREAM errors WITH (retention_bytes='1GB') AS SELECT ip FROM clicks WHERE status >= 400;
CREATE STREAM oks AS SELECT ip FROM clicks WHERE status < 400;
CREATE TABLE per_ip WITH (retention_bytes='2MiB') AS SELECT ip, COUNT(*) AS n FROM clicks WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY ip;
CREATE TABLE totals AS SELECT ip, COUNT(*) AS n FROM clicks GROUP BY ip;
`})
	if err != nil {
		t.Fatal(err)
	}
	c := p.Catalog()
	for name, want := range map[string]topology.Stream{
		"CLICKS":    {MaxAge: 2 * time.Hour, MaxBytes: 512 << 20},
		"FOREVER":   {MaxAge: 0, MaxBytes: topology.NoLimit},
		"PLAIN":     {MaxAge: week, MaxBytes: 0},
		"USERS_SRC": {MaxAge: time.Minute, MaxBytes: 3 << 20},
		"ERRORS":    {MaxAge: week, MaxBytes: 1e9, Derived: true},
		"OKS":       {MaxAge: week, MaxBytes: 0, Derived: true},
	} {
		s, err := c.Stream(name)
		if err != nil {
			t.Fatal(err)
		}
		if s.MaxAge != want.MaxAge || s.MaxBytes != want.MaxBytes || s.Derived != want.Derived {
			t.Errorf("stream %s: age %s, bytes %d, derived %v; want %s, %d, %v", name, s.MaxAge, s.MaxBytes, s.Derived, want.MaxAge, want.MaxBytes, want.Derived)
		}
	}
	for name, want := range map[string]topology.Bucket{
		"USERS":  {MaxBytes: 3 << 20},
		"PER_IP": {MaxBytes: 2 << 20, Windowed: true, TTL: DefaultWindowRetention},
		"TOTALS": {MaxBytes: 0},
	} {
		b, err := c.Bucket(name)
		if err != nil {
			t.Fatal(err)
		}
		if b.MaxBytes != want.MaxBytes || b.Windowed != want.Windowed || b.TTL != want.TTL {
			t.Errorf("bucket %s: bytes %d, windowed %v, TTL %s; want %d, %v, %s", name, b.MaxBytes, b.Windowed, b.TTL, want.MaxBytes, want.Windowed, want.TTL)
		}
	}
}

// TestDerivedStreams: in the built-in pipelines exactly the CREATE STREAM ... AS SELECT outputs
// are Derived (a short de-duplication window); sources and operational streams are not. A
// source declared over a derived stream's subject makes it a source too (another writer may
// come with it).
func TestDerivedStreams(t *testing.T) {
	c := Demo().Catalog()
	derived := map[string]bool{}
	for _, s := range c.Streams {
		if s.Derived {
			derived[s.Name] = true
		}
	}
	for _, o := range Demo().Objects {
		want := o.Stream != "" && o.Producer != nil && o.Producer.Kind == Transform
		if o.Stream != "" && derived[o.Stream] != want {
			t.Errorf("stream %s of %s: derived %v, want %v", o.Stream, o.Name, derived[o.Stream], want)
		}
	}
	if len(derived) != 8 {
		t.Errorf("derived streams %v, want the 8 CREATE STREAM AS SELECT outputs", derived)
	}
	p, err := Compile(File{Name: "p.sql", SQL: `
CREATE STREAM clicks (ip VARCHAR) WITH (kafka_topic='clicks');
CREATE STREAM copy AS SELECT ip FROM clicks;
CREATE STREAM copy_read (ip VARCHAR) WITH (kafka_topic='COPY');
`})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := p.Catalog().Stream("COPY"); err != nil || s.Derived {
		t.Errorf("COPY, also declared as a source: %+v, %v; want not derived", s, err)
	}
}

func TestRetentionPropertyErrors(t *testing.T) {
	for _, c := range []struct{ with, want string }{
		{"retention_bytes='lots'", "RETENTION_BYTES must be a size of at least 1MiB"},
		{"retention_bytes=1000", "RETENTION_BYTES must be a size of at least 1MiB"},
		{"retention_bytes=-2", "RETENTION_BYTES must be a size of at least 1MiB"},
		{"retention_ms=0", "RETENTION_MS must be a positive number of milliseconds, or -1"},
		{"retention_ms=-5", "RETENTION_MS must be a positive number of milliseconds, or -1"},
		{"retention_ms='1h'", "RETENTION_MS must be a positive number of milliseconds, or -1"},
	} {
		_, err := Compile(File{Name: "p.sql", SQL: "CREATE STREAM s (a INT) WITH (kafka_topic='t', " + c.with + ");"})
		var se *ksql.SyntaxError
		if !errors.As(err, &se) || se.Line != 1 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %q at line 1", c.with, err, c.want)
		}
	}
}

// TestExplainShowsLimits: explain prints each object's limits as the options resolve them,
// and the total the catalog may take.
func TestExplainShowsLimits(t *testing.T) {
	var b bytes.Buffer
	o := topology.Options{StreamMaxBytes: 256 << 20, BucketMaxBytes: 32 << 20, DedupWindow: 45 * time.Second, DerivedDedupWindow: 5 * time.Second}
	if err := Demo().Explain(&b, o); err != nil {
		t.Fatal(err)
	}
	reserved, _ := Demo().Catalog().Reserved(o)
	for _, want := range []string{
		"      stream CLICKSTREAM, subject clickstream, format JSON\n      keeps 7d, up to 256MiB (then the oldest messages are dropped), Nats-Msg-Id window 45s\n",
		"keeps 7d, up to 256MiB (then the oldest messages are dropped), Nats-Msg-Id window 5s (derived: chained outputs)",
		"      bucket EVENTS_PER_MIN, up to 32MiB (then the oldest windows are dropped), rows expire after 1d\n",
		"      bucket WEB_USERS, up to 32MiB (then new keys are refused: its writer stalls)\n",
		"  stream DEAD_LETTER (dlq.>): keeps 30d, up to 256MiB",
		"  bucket JETSUITE_CHECKPOINTS: up to 32MiB (then new keys are refused: its writer stalls)\n",
		"Storage: 18 streams and 18 buckets take at most 5153MiB per replica\n", // JETSUITE_LEASES: 1MiB
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("explain lacks %q:\n%s", want, b.String())
		}
	}
	if reserved != 18*256<<20+17*32<<20+1<<20 {
		t.Errorf("Reserved = %d", reserved)
	}
}

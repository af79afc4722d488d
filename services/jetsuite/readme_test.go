package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jetsuite/jetsuite/shared/plan"
)

// TestReadmeConfigTable: the README's configuration table is what `jetsuite config` prints, so
// a setting cannot be added without being documented.
func TestReadmeConfigTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"config"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, out.Bytes()) {
		t.Errorf("README.md's config table differs from `go run ./services/jetsuite config`; paste its output between the config table markers")
	}
}

// TestReadmeNamesTables: the README's tables of streams and tables are what `jetsuite explain
// --names` derives from the built-in pipelines.
func TestReadmeNamesTables(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"explain", "--names"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- names tables: go run ./services/jetsuite explain --names -->\n", "<!-- end names tables -->"
	i, j := bytes.Index(readme, []byte(begin)), bytes.Index(readme, []byte(end))
	if i < 0 || j < i {
		t.Fatal("README.md lacks the names tables markers")
	}
	if got := string(readme[i+len(begin) : j]); got != out.String() {
		t.Errorf("README.md's names tables differ from `go run ./services/jetsuite explain --names`; paste its output between the markers")
	}
}

// TestReadmeNames: every stream and table of the topology is named in the README.
func TestReadmeNames(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	cat := plan.Demo().Catalog()
	for _, s := range cat.Streams {
		if !strings.Contains(string(readme), "`"+s.Name+"`") {
			t.Errorf("stream %s is not in README.md", s.Name)
		}
	}
	for _, b := range cat.Buckets {
		if !strings.Contains(string(readme), "`"+b.Name+"`") {
			t.Errorf("bucket %s is not in README.md", b.Name)
		}
	}
}

package console_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// TestBundleUpToDate: the committed bundle (dist/, what the binary embeds) is what esbuild
// builds from web/src now, so that nobody ships sources the binary does not run. After a
// change under web/src: go tool task console:build (or cd console/web && npm ci && npm run
// build), and commit dist/.
func TestBundleUpToDate(t *testing.T) {
	needBrowserTools(t, false)
	out := t.TempDir()
	cmd := exec.Command("node", "build.mjs", "--outdir", out)
	cmd.Dir = "web"
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	t.Logf("bundle:\n%s", sizes(t, out))
	built, committed := files(t, out), files(t, "dist")
	if !slices.Equal(built, committed) {
		t.Fatalf("the build makes %v, dist/ holds %v: run go tool task console:build and commit dist/", built, committed)
	}
	for _, name := range built {
		a, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join("dist", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("dist/%s differs from a build of web/src (%d bytes built, %d committed): run go tool task console:build and commit dist/", name, len(a), len(b))
		}
	}
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

func sizes(t *testing.T, dir string) string {
	var b bytes.Buffer
	for _, name := range files(t, dir) {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("  " + name + " " + strconv.FormatInt(st.Size(), 10) + " bytes\n")
	}
	return b.String()
}

package main

import (
	"flag"
	"io"
)

// explain prints the plan of pipeline files (`jetsuite explain FILE...`), or of the built-in
// demos: what ksqlDB's EXPLAIN shows, for the whole pipeline. A file with an error prints the
// error (file, line, column) and fails.
func explain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("jetsuite explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		io.WriteString(stderr, "usage: jetsuite explain [FILE...]\n\nprints the plan the statements compile to (default: the built-in demos)\n")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	var c common
	if fs.NArg() == 0 {
		p, err := c.pipeline()
		if err != nil {
			return err
		}
		return p.Explain(stdout)
	}
	p, err := compileFiles(fs.Args()...)
	if err != nil {
		return err
	}
	return p.Explain(stdout)
}

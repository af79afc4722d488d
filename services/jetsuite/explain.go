package main

import (
	"flag"
	"io"
	"os"

	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/plan"
)

// explain prints the plan of pipeline files (`jetsuite explain FILE...`), or of the built-in
// demos: what ksqlDB's EXPLAIN shows, for the whole pipeline, with the limits of every stream
// and bucket as the shared settings (--stream-max-bytes, ...) make them. A file with an error
// prints the error (file, line, column) and fails.
func explain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("jetsuite explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reg := config.NewRegistry(fs, os.Getenv)
	var c common
	bindCommon(reg.Shared(), &c)
	fs.Usage = func() {
		io.WriteString(stderr, "usage: jetsuite explain [--names] [--fuse=false] [--partitions N] [FILE...]\n\nprints the plan the statements compile to (default: the built-in demos)\n")
	}
	names := fs.Bool("names", false, "print the streams and tables as the README's Markdown tables")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := reg.Resolve(); err != nil {
		return err
	}
	p := plan.Demo()
	if fs.NArg() > 0 {
		var err error
		if p, err = compileFiles(fs.Args()...); err != nil {
			return err
		}
	}
	if c.fuse {
		p.Fuse() // as the services run it (--fuse, shared)
	}
	c.setPartitions(p)
	if *names {
		return p.WriteNames(stdout)
	}
	return p.Explain(stdout, c.topologyOptions())
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/natsx"
)

// show prints a table's rows (a KV bucket) or a stream's newest messages, so that a user can
// look at results without a NATS client: `jetsuite show EVENTS_PER_MIN`,
// `jetsuite show UNHAPPY_PLATINUM_CUSTOMERS --last 5`, `jetsuite show` lists every name.
func show(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("jetsuite show", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// The NATS URL is the shared setting (same names, same environment); --last and --limit are
	// arguments of this command, not settings.
	reg := config.NewRegistry(fs, os.Getenv)
	var c common
	bindCommon(reg.Shared(), &c)
	last := fs.Int("last", 10, "streams: how many of the newest messages")
	limit := fs.Int("limit", 50, "tables: at most this many rows (newest windows first)")
	name := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := reg.Resolve(); err != nil {
		return err
	}
	p, err := c.pipeline()
	if err != nil {
		return err
	}
	cat := p.Catalog()
	if name == "" {
		fmt.Fprintln(stdout, "tables (KV buckets):")
		for _, b := range cat.Buckets {
			fmt.Fprintf(stdout, "  %-34s %s\n", b.Name, b.Description)
		}
		fmt.Fprintln(stdout, "streams (subjects):")
		for _, s := range cat.Streams {
			fmt.Fprintf(stdout, "  %-34s %-34s %s\n", s.Name, strings.Join(s.Subjects, ","), s.Description)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	nc, err := natsx.Connect(ctx, c.clientURL(), "jetsuite-show", nil)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := natsx.JetStream(nc)
	if err != nil {
		return err
	}
	if _, err := cat.Bucket(name); err == nil {
		return showTable(ctx, js, name, *limit, stdout)
	}
	if _, err := cat.Stream(name); err == nil {
		return showStream(ctx, js, name, *last, stdout)
	}
	return fmt.Errorf("no table or stream %q (run `jetsuite show` for the list)", name)
}

func showTable(ctx context.Context, js jetstream.JetStream, name string, limit int, w io.Writer) error {
	kv, err := js.KeyValue(ctx, name)
	if err != nil {
		return err
	}
	watch, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer watch.Stop()
	type row struct {
		key   string
		start float64
		value []byte
	}
	var rows []row
	for e := range watch.Updates() {
		if e == nil {
			break
		}
		var v map[string]any
		_ = json.Unmarshal(e.Value(), &v)
		start, _ := v["WINDOW_START"].(float64)
		rows = append(rows, row{e.Key(), start, e.Value()})
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].start != rows[j].start {
			return rows[i].start > rows[j].start
		}
		return rows[i].key < rows[j].key
	})
	fmt.Fprintf(w, "%s: %d rows\n", name, len(rows))
	for i, r := range rows {
		if i == limit {
			fmt.Fprintf(w, "... (%d more; --limit)\n", len(rows)-limit)
			break
		}
		fmt.Fprintf(w, "%-40s %s\n", r.key, r.value)
	}
	return nil
}

func showStream(ctx context.Context, js jetstream.JetStream, name string, last int, w io.Writer) error {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: %d messages (seq %d..%d)\n", name, info.State.Msgs, info.State.FirstSeq, info.State.LastSeq)
	if info.State.Msgs == 0 {
		return nil
	}
	from := info.State.FirstSeq
	if info.State.LastSeq >= uint64(last) && info.State.LastSeq-uint64(last)+1 > from {
		from = info.State.LastSeq - uint64(last) + 1
	}
	c, err := js.OrderedConsumer(ctx, name, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from})
	if err != nil {
		return err
	}
	for n := 0; n < last; {
		b, err := c.Fetch(last-n, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return err
		}
		got := 0
		for m := range b.Messages() {
			md, _ := m.Metadata()
			hdr := ""
			for _, h := range []string{"Event-Time", "Jetsuite-Key", "Jetsuite-Dlq-Reason", "Jetsuite-Dlq-Error", "Jetsuite-Late-Reason"} {
				if v := m.Headers().Get(h); v != "" {
					hdr += " " + h + "=" + v
				}
			}
			fmt.Fprintf(w, "#%d %s%s\n  %s\n", md.Sequence.Stream, m.Subject(), hdr, truncate(m.Data(), 400))
			got++
		}
		if got == 0 || errors.Is(b.Error(), context.DeadlineExceeded) {
			break
		}
		n += got
	}
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + fmt.Sprintf("... (%d bytes)", len(b))
	}
	return string(b)
}

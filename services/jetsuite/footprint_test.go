package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/testenv"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// TestAllAppliesLimits: `jetsuite all` gives every stream and bucket the byte limits of its
// settings (a windowed table's bucket dropping its oldest rows, others refusing), derived
// streams the short de-duplication window, the embedded server a store that fits them, and
// the process its memory limit.
func TestAllAppliesLimits(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	t.Setenv("GOMEMLIMIT", "")
	dir, addr := t.TempDir(), testenv.FreeAddr(t)
	stop, logs := startAll(t, dir, addr, "--generator-enabled=false", "--stream-max-bytes=3MiB", "--bucket-max-bytes=2MiB",
		"--derived-dedup-window=3s", "--dedup-window=40s", "--memory-limit=300MiB", "--log-level=debug")
	defer func() { _ = stop() }()
	js := connectAll(t, addr, logs)
	ctx := context.Background()
	want := map[string]jetstream.StreamConfig{
		topology.StreamClickstream:         {MaxBytes: 3 << 20, Duplicates: 40 * time.Second, Discard: jetstream.DiscardOld},
		topology.StreamUserClickstream:     {MaxBytes: 3 << 20, Duplicates: 3 * time.Second, Discard: jetstream.DiscardOld},
		topology.StreamDeadLetter:          {MaxBytes: 3 << 20, Duplicates: 40 * time.Second, Discard: jetstream.DiscardOld},
		"KV_" + topology.TableEventsPerMin: {MaxBytes: 2 << 20, Discard: jetstream.DiscardOld},
		"KV_" + topology.TableWebUsers:     {MaxBytes: 2 << 20, Discard: jetstream.DiscardNew},
		"KV_" + topology.BucketCheckpoints: {MaxBytes: 2 << 20, Discard: jetstream.DiscardNew},
	}
	deadline := time.Now().Add(time.Minute)
	for name, w := range want {
		var cfg jetstream.StreamConfig
		for {
			// The buckets are declared after the streams: wait for the last of them.
			s, err := js.Stream(ctx, name)
			if err == nil {
				cfg = s.CachedInfo().Config
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stream %s: %v\n%s", name, err, tail(logs.String(), 20))
			}
			time.Sleep(100 * time.Millisecond)
		}
		if cfg.MaxBytes != w.MaxBytes || cfg.Discard != w.Discard || (w.Duplicates != 0 && cfg.Duplicates != w.Duplicates) {
			t.Errorf("%s: MaxBytes %d, Discard %v, Duplicates %s; want %d, %v, %s", name, cfg.MaxBytes, cfg.Discard, cfg.Duplicates, w.MaxBytes, w.Discard, w.Duplicates)
		}
	}
	o := topology.Options{StreamMaxBytes: 3 << 20, BucketMaxBytes: 2 << 20}
	store, _ := embeddedLimits(plan.Demo().Catalog(), o)
	if line := "max_store=" + config.FormatBytes(store) + " "; !strings.Contains(logs.String(), line) {
		t.Errorf("log lacks %q:\n%s", line, grep(logs.String(), "embedded NATS"))
	}
	if got := debug.SetMemoryLimit(-1); got != 300<<20 {
		t.Errorf("memory limit %d, want 300MiB", got)
	}
}

// TestEmbeddedLimits: the embedded server's store holds every byte limit of the catalog (the
// sum JetStream reserves) and 1 GiB more; with something unbounded, at least 10 GiB; memory
// storage moves the reservation to the memory store.
func TestEmbeddedLimits(t *testing.T) {
	c := plan.Demo().Catalog()
	all := int64(18*topology.DefaultStreamMaxBytes + 17*topology.DefaultBucketMaxBytes + 1<<20) // + JETSUITE_LEASES
	if store, mem := embeddedLimits(c, topology.Options{}); store != all+storeHeadroom || mem != memoryHeadroom {
		t.Errorf("file storage: store %d, memory %d; want %d, %d", store, mem, all+storeHeadroom, memoryHeadroom)
	}
	if store, mem := embeddedLimits(c, topology.Options{Storage: jetstream.MemoryStorage}); store != storeHeadroom || mem != all+memoryHeadroom {
		t.Errorf("memory storage: store %d, memory %d; want %d, %d", store, mem, storeHeadroom, all+memoryHeadroom)
	}
	if store, _ := embeddedLimits(c, topology.Options{StreamMaxBytes: topology.NoLimit}); store != unboundedStore {
		t.Errorf("unbounded streams: store %d, want %d", store, unboundedStore)
	}
}

// TestMemoryLimit: --memory-limit sets the process's soft limit unless GOMEMLIMIT is set (the Go
// runtime applied that one already); 0 leaves it alone.
func TestMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	prevGC := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetMemoryLimit(prev); debug.SetGCPercent(prevGC) })
	var log strings.Builder
	l := slog.New(slog.NewTextHandler(&log, nil))
	setMemoryLimit(123<<20, "", "", l)
	if got := debug.SetMemoryLimit(-1); got != 123<<20 {
		t.Errorf("limit %d after --memory-limit=123MiB", got)
	}
	if got := debug.SetGCPercent(100); got != limitedGCPercent {
		t.Errorf("GOGC %d under a memory limit, want %d", got, limitedGCPercent)
	}
	setMemoryLimit(123<<20, "", "150", l)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set: the collector's percent changed to %d", got)
	}
	setMemoryLimit(456<<20, "1GiB", "", l)
	if got := debug.SetMemoryLimit(-1); got != 123<<20 || !strings.Contains(log.String(), "memory limit from GOMEMLIMIT") {
		t.Errorf("GOMEMLIMIT set: limit %d, log %q; want it untouched and said", got, log.String())
	}
	setMemoryLimit(0, "", "", l)
	if got := debug.SetMemoryLimit(-1); got != 123<<20 {
		t.Errorf("--memory-limit=0 changed the limit to %d", got)
	}
}

// TestBadFootprintSettings: the limits are checked before anything starts.
func TestBadFootprintSettings(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		env            map[string]string
		setting, value string
	}{
		{[]string{"all", "--stream-max-bytes=1KiB"}, nil, "JETSUITE_STREAM_MAX_BYTES", "1KiB"},
		{[]string{"all", "--stream-max-bytes=0"}, nil, "JETSUITE_STREAM_MAX_BYTES", "0"},
		{[]string{"all"}, map[string]string{"JETSUITE_BUCKET_MAX_BYTES": "lots"}, "JETSUITE_BUCKET_MAX_BYTES", "lots"},
		{[]string{"windower", "--memory-limit=1MiB"}, nil, "JETSUITE_MEMORY_LIMIT", "1MiB"},
		{[]string{"all", "--derived-dedup-window=0s"}, nil, "JETSUITE_DERIVED_DEDUP_WINDOW", "0s"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			err := run(context.Background(), append(tc.args, "--http-listen=none", "--data-dir="+t.TempDir()), io.Discard, io.Discard)
			var se *config.SettingError
			if !errors.As(err, &se) || se.Setting != tc.setting || se.Value != tc.value {
				t.Fatalf("error %v, want a *config.SettingError for %s = %q", err, tc.setting, tc.value)
			}
		})
	}
}

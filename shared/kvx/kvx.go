// Package kvx holds what every service needs around JetStream KV buckets: loading a bucket
// until caught up, and turning arbitrary text into valid keys.
package kvx

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Load calls f for every live entry of bucket whose key matches filter (a KV key pattern such
// as "prefix.>"; empty: every key), then returns once it has seen what the bucket held when
// Load started (the watcher's end-of-initial-values marker). Deleted keys are skipped. An
// error from f stops the load with that error.
func Load(ctx context.Context, js jetstream.JetStream, bucket, filter string, f func(jetstream.KeyValueEntry) error) error {
	if filter == "" {
		return LoadKeys(ctx, js, bucket, nil, f)
	}
	return LoadKeys(ctx, js, bucket, []string{filter}, f)
}

// LoadKeys is Load for the keys matching any of filters (none: every key), read by one watcher.
//
// What one watcher delivers comes from one replica's copy of the bucket, at one point of its
// history: entries written one after the other are seen together or the later one is missing,
// never the later one without the earlier. Reading related keys with separate watchers (or a
// Get next to a watcher) gives no such promise on a cluster: each watcher's consumer is
// placed on any replica, and a replica that restarted a moment ago can be behind the others.
// So that the point is also recent, LoadKeys first waits (at most ReplicaWait) until the
// stream's leader reports every online replica caught up; on a single server it does not wait.
func LoadKeys(ctx context.Context, js jetstream.JetStream, bucket string, filters []string, f func(jetstream.KeyValueEntry) error) error {
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", bucket, err)
	}
	if err := awaitReplicas(ctx, js, "KV_"+bucket); err != nil {
		return fmt.Errorf("bucket %s: %w", bucket, err)
	}
	var w jetstream.KeyWatcher
	if len(filters) == 0 {
		w, err = kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	} else {
		w, err = kv.WatchFiltered(ctx, filters, jetstream.IgnoreDeletes())
	}
	if err != nil {
		return fmt.Errorf("watch %s: %w", bucket, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("watch %s: closed", bucket)
			}
			if e == nil {
				return nil
			}
			if err := f(e); err != nil {
				return fmt.Errorf("%s %s: %w", bucket, e.Key(), err)
			}
		}
	}
}

// ReplicaWait bounds how long LoadKeys waits for a replicated bucket's replicas to catch up
// with its leader. A replica still behind after that is read as it is (a watcher may land on
// it): waiting longer would stop a service on a replica that does not catch up.
const ReplicaWait = 10 * time.Second

// awaitReplicas returns once the leader of stream reports every online replica current (or
// after ReplicaWait). A replica that is offline holds no consumers, so it does not count.
func awaitReplicas(ctx context.Context, js jetstream.JetStream, stream string) error {
	deadline := time.Now().Add(ReplicaWait)
	for {
		s, err := js.Stream(ctx, stream) // STREAM.INFO: answered by the stream's leader
		if err != nil {
			return err
		}
		if replicasCurrent(s.CachedInfo().Cluster) || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func replicasCurrent(ci *jetstream.ClusterInfo) bool {
	if ci == nil {
		return true
	}
	for _, r := range ci.Replicas {
		if !r.Offline && !r.Current {
			return false
		}
	}
	return true
}

// AppendEscape appends Escape(s) to dst.
func AppendEscape(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, '=')
	}
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plain(c) {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '=', hex[c>>4], hex[c&15])
	}
	return dst
}

// Escape maps any text onto KV key characters reversibly and readably: letters, digits, '-'
// and '_' stay, every other byte becomes =XX (hex), the empty string becomes "=". Escaped
// parts can be joined with '.' or '/' (which Escape never produces on its own).
func Escape(s string) string {
	clean := s != ""
	for i := 0; i < len(s) && clean; i++ {
		clean = plain(s[i])
	}
	if clean {
		return s // the common case, without a copy
	}
	return string(AppendEscape(make([]byte, 0, len(s)+8), s))
}

// Unescape inverts Escape.
func Unescape(s string) (string, error) {
	if s == "=" {
		return "", nil
	}
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("kvx: bad escape at %d in %q", i, s)
		}
		hi, lo := unhex(s[i+1]), unhex(s[i+2])
		if hi < 0 || lo < 0 {
			return "", fmt.Errorf("kvx: bad escape at %d in %q", i, s)
		}
		b.WriteByte(byte(hi<<4 | lo))
		i += 2
	}
	return b.String(), nil
}

// SafeKey returns s when it is a valid key already (so existing keys stay as they are), else
// Escape(s).
func SafeKey(s string) string {
	if ValidKey(s) {
		return s
	}
	return Escape(s)
}

// ValidKey reports whether key is a valid KV key as nats.go checks it
// (^[-/_=.a-zA-Z0-9]+$, no leading or trailing dot, no empty token).
func ValidKey(key string) bool {
	if key == "" || key[0] == '.' || key[len(key)-1] == '.' {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case plain(c), c == '/', c == '=':
		case c == '.':
			if key[i-1] == '.' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func plain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

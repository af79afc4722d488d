package kvx_test

import (
	"context"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/kvx"
	"github.com/jetsuite/jetsuite/shared/natsx/natstest"
)

// nats.go's own key rule, written out independently of ValidKey.
var keyRE = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

func TestEscapeRoundTripsAndIsValid(t *testing.T) {
	for _, s := range []string{"", "plain_Key-1", "a.b", "a b", "München", "=", "x=41", "..", "/", "12.34.56.78", "\x00\xff"} {
		e := kvx.Escape(s)
		if !keyRE.MatchString(e) || !kvx.ValidKey(e) {
			t.Errorf("Escape(%q) = %q is not a valid key", s, e)
		}
		back, err := kvx.Unescape(e)
		if err != nil || back != s {
			t.Errorf("Unescape(Escape(%q)) = %q, %v", s, back, err)
		}
	}
	if got := kvx.Escape("a b"); got != "a=20b" {
		t.Errorf("Escape(%q) = %q, want a=20b", "a b", got)
	}
}

func TestSafeKeyKeepsValidKeys(t *testing.T) {
	for s, want := range map[string]string{"404.1700000000000": "404.1700000000000", "channel.unhappy-customers": "channel.unhappy-customers", "#x y": "=23x=20y"} {
		if got := kvx.SafeKey(s); got != want {
			t.Errorf("SafeKey(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestValidKey(t *testing.T) {
	for key, want := range map[string]bool{"a": true, "a.b": true, "a/b=c": true, "": false, ".a": false, "a.": false, "a..b": false, "a b": false, "ä": false} {
		if got := kvx.ValidKey(key); got != want {
			t.Errorf("ValidKey(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestLoadReturnsWhatTheBucketHeld(t *testing.T) {
	env := natstest.Start(t)
	_, js := env.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "T"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a.1", "a.2", "b.1", "gone"} {
		if _, err := kv.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	load := func(filter string) []string {
		var got []string
		if err := kvx.Load(ctx, js, "T", filter, func(e jetstream.KeyValueEntry) error {
			got = append(got, e.Key())
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		sort.Strings(got)
		return got
	}
	if got := load(""); len(got) != 3 || got[0] != "a.1" || got[2] != "b.1" {
		t.Errorf("Load all = %v, want [a.1 a.2 b.1]", got)
	}
	if got := load("a.>"); len(got) != 2 || got[0] != "a.1" || got[1] != "a.2" {
		t.Errorf("Load a.> = %v, want [a.1 a.2]", got)
	}
	// Several filters, one watcher: the keys matching any of them.
	var got []string
	if err := kvx.LoadKeys(ctx, js, "T", []string{"a.2", "b.>", "gone"}, func(e jetstream.KeyValueEntry) error {
		got = append(got, e.Key())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	if len(got) != 2 || got[0] != "a.2" || got[1] != "b.1" {
		t.Errorf("LoadKeys [a.2 b.> gone] = %v, want [a.2 b.1]", got)
	}
	// An empty bucket loads at once.
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "EMPTY"}); err != nil {
		t.Fatal(err)
	}
	if err := kvx.Load(ctx, js, "EMPTY", "", func(jetstream.KeyValueEntry) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

// TestAppendEscape: the appending form escapes exactly as Escape does.
func TestAppendEscape(t *testing.T) {
	for _, s := range []string{"", "plain-Key_09", "a b", "x/y.z", "é", "=", "-12", "Page not found"} {
		if got, want := string(kvx.AppendEscape([]byte("pre"), s)), "pre"+kvx.Escape(s); got != want {
			t.Errorf("AppendEscape(%q) = %q, want %q", s, got, want)
		}
	}
}

package alerting

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"
)

// fakeSlack is slack-go's slacktest server with two routes replaced: chat.postMessage (to
// record blocks and metadata, and to fail on demand with 429 or 500, which slacktest cannot)
// and conversations.history (which slacktest does not have), both answering like Slack.
type fakeSlack struct {
	srv *slacktest.Server

	mu    sync.Mutex
	posts []posted
	calls []call
	seq   int
	// failUntil: every call answers 500 until then (chat.postMessage and conversations.history).
	failUntil time.Time
	// rateLimit: the next n postMessage calls answer 429 with Retry-After.
	rateLimit  int
	retryAfter string
	// beforeAnswer runs after a post was accepted and recorded, before the answer is written;
	// returning true drops the connection instead of answering.
	beforeAnswer func(p posted) (drop bool)
	historyCalls int
}

type posted struct {
	Channel, Text, Username, Icon string
	Blocks                        []map[string]any
	IDs                           []string
	TS                            string
	At                            time.Time
}

type call struct {
	At     time.Time
	Status int
}

const fakeChannelID = "C0UNHAPPY01"

func newFakeSlack(t testing.TB) *fakeSlack {
	f := &fakeSlack{retryAfter: "1"}
	f.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", f.postMessage)
		c.Handle("/conversations.history", f.history)
	})
	f.srv.Start()
	t.Cleanup(f.srv.Stop)
	return f
}

func (f *fakeSlack) URL() string { return f.srv.GetAPIURL() }

func (f *fakeSlack) postMessage(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	switch {
	case now.Before(f.failUntil):
		f.calls = append(f.calls, call{now, 500})
		f.mu.Unlock()
		http.Error(w, "<html>internal error</html>", http.StatusInternalServerError)
		return
	case f.rateLimit > 0:
		f.rateLimit--
		f.calls = append(f.calls, call{now, 429})
		f.mu.Unlock()
		w.Header().Set("Retry-After", f.retryAfter)
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	f.seq++
	p := posted{Channel: r.Form.Get("channel"), Text: r.Form.Get("text"), Username: r.Form.Get("username"),
		Icon: r.Form.Get("icon_emoji"), At: now, TS: fmt.Sprintf("%d.%06d", now.Unix(), f.seq)}
	_ = json.Unmarshal([]byte(r.Form.Get("blocks")), &p.Blocks)
	var md struct {
		EventType    string `json:"event_type"`
		EventPayload struct {
			IDs []string `json:"alert_ids"`
		} `json:"event_payload"`
	}
	_ = json.Unmarshal([]byte(r.Form.Get("metadata")), &md)
	if md.EventType == metadataEventType {
		p.IDs = md.EventPayload.IDs
	}
	f.posts = append(f.posts, p)
	f.calls = append(f.calls, call{now, 200})
	hook := f.beforeAnswer
	f.mu.Unlock()
	if hook != nil && hook(p) {
		if hj, ok := w.(http.Hijacker); ok {
			conn, _, err := hj.Hijack()
			if err == nil {
				_ = conn.Close()
				return
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": fakeChannelID, "ts": p.TS,
		"message": map[string]any{"type": "message", "text": p.Text, "ts": p.TS}})
}

func (f *fakeSlack) history(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.historyCalls++
	if time.Now().Before(f.failUntil) {
		http.Error(w, "<html>internal error</html>", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.Form.Get("channel") != fakeChannelID {
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "channel_not_found"})
		return
	}
	oldest, _ := strconv.ParseFloat(r.Form.Get("oldest"), 64)
	withMeta := r.Form.Get("include_all_metadata") == "1"
	var msgs []map[string]any
	for i := len(f.posts) - 1; i >= 0; i-- { // newest first, like Slack
		p := f.posts[i]
		ts, _ := strconv.ParseFloat(p.TS, 64)
		if ts < oldest {
			continue
		}
		m := map[string]any{"type": "message", "text": p.Text, "ts": p.TS}
		if withMeta && len(p.IDs) > 0 {
			m["metadata"] = map[string]any{"event_type": metadataEventType, "event_payload": map[string]any{"alert_ids": p.IDs}}
		}
		msgs = append(msgs, m)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "messages": msgs, "has_more": false})
}

// snapshot returns the accepted posts.
func (f *fakeSlack) snapshot() []posted {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]posted(nil), f.posts...)
}

// counts returns how many accepted messages carried each alert id.
func (f *fakeSlack) counts() map[string]int {
	c := map[string]int{}
	for _, p := range f.snapshot() {
		for _, id := range p.IDs {
			c[id]++
		}
	}
	return c
}

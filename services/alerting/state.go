package alerting

import (
	"context"
	"encoding/json"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/flow"
	"github.com/jetsuite/jetsuite/shared/kvx"
	"github.com/jetsuite/jetsuite/shared/topology"
)

// Record states in ALERTING_STATE.
const (
	// stateIntent is written (and acknowledged) before the alert is posted: "about to send".
	stateIntent = "intent"
	// stateSent is written after Slack accepted the message (or it was found in the history).
	stateSent = "sent"
)

// record is the value of ALERTING_STATE key <alert id> (e.g. rating.1234).
type record struct {
	State string `json:"state"`
	// At is when the record was written (epoch ms); for intents it bounds the history lookup.
	At      int64  `json:"at"`
	Channel string `json:"channel,omitempty"`
	TS      string `json:"ts,omitempty"`
	Digest  int    `json:"digest,omitempty"` // alerts in the message that carried this one
	DryRun  bool   `json:"dry_run,omitempty"`
	// Found says the alert was found in the channel history after a crash, not posted again.
	Found bool `json:"found,omitempty"`
}

// store is the in-memory view of ALERTING_STATE (this process is its only writer): loaded once
// by a watcher at start, then kept current by the notifiers' own writes.
type store struct {
	mu      sync.Mutex
	recs    map[string]record
	channel map[string]string // channel.<name> -> channel id learned from Slack's answers
}

func loadStore(ctx context.Context, js jetstream.JetStream) (*store, error) {
	s := &store{recs: map[string]record{}, channel: map[string]string{}}
	err := kvx.Load(ctx, js, topology.BucketAlertingState, "", func(e jetstream.KeyValueEntry) error {
		k := e.Key()
		switch {
		case strings.HasPrefix(k, "checkpoint."):
			// The hand-written loop's checkpoints; the runtime keeps its own now.
		case strings.HasPrefix(k, "channel."):
			s.channel[strings.TrimPrefix(k, "channel.")] = string(e.Value())
		default:
			var r record
			if json.Unmarshal(e.Value(), &r) == nil {
				s.recs[k] = r
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (s *store) get(id string) (record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[id]
	return r, ok
}

func (s *store) channelID(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.channel[kvx.SafeKey(name)]
}

// set remembers r and adds its write to the batch's outputs.
func (s *store) set(out *flow.Out, id string, r record) error {
	s.mu.Lock()
	s.recs[id] = r
	s.mu.Unlock()
	b, _ := json.Marshal(r)
	return out.Put(topology.BucketAlertingState, id, b, "")
}

// forget drops records whose writes were not confirmed.
func (s *store) forget(ids []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		delete(s.recs, id)
	}
}

func (s *store) setChannelID(out *flow.Out, name, id string) error {
	k := kvx.SafeKey(name)
	s.mu.Lock()
	old := s.channel[k]
	s.channel[k] = id
	s.mu.Unlock()
	if old == id || id == "" {
		return nil
	}
	return out.Put(topology.BucketAlertingState, "channel."+k, []byte(id), "")
}

// intents returns the alerts with an intent but no sent record.
func (s *store) intents() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]bool{}
	for id, r := range s.recs {
		if r.State == stateIntent {
			out[id] = true
		}
	}
	return out
}

package alerting

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/jetsuite/jetsuite/shared/flow"
	"github.com/jetsuite/jetsuite/shared/obs"
)

var (
	// Alerts counts alerts by outcome: sent (in a single message or a digest), duplicate (already
	// sent: redelivery or replay), found (an uncertain alert found in the channel history).
	Alerts = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "jetsuite_alerts_total", Help: "Alerts by source and outcome (sent, duplicate, found_in_history).",
	}, []string{"source", "outcome"})
	// Messages counts Slack messages posted, by kind (single, digest, dry_run).
	Messages = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "jetsuite_slack_messages_total", Help: "Slack messages posted, by kind (single, digest; dry_run when no token).",
	}, []string{"source", "kind"})
	// SlackErrors counts failed Slack calls by kind (rate_limited, unavailable, ambiguous).
	SlackErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "jetsuite_slack_errors_total", Help: "Failed Slack calls (rate_limited, failed, ambiguous).",
	}, []string{"source", "kind"})
)

// source is an input the notifier turns into Slack messages.
type source struct {
	name    string // metric and log name: unhappy, errors
	stream  string
	filter  string
	durable string // the processor's durable name: its consumer and its checkpoint key
	channel string
	decode  func(m jetstream.Msg) (*alert, error)
}

// notifier sends one Slack message per alert of one source, exactly once as far as Slack's
// history can tell (see the package doc), in stream order. It is a shared/flow handler: the
// runtime reads the source in order from the checkpoint, makes the records the notifier writes
// durable, then checkpoints and acks; a Slack failure is a flow.Retry, so the unsent alerts stay
// in JetStream and come again, in order, after the backoff.
type notifier struct {
	src       source
	js        jetstream.JetStream
	log       *slog.Logger
	st        *store
	slack     poster
	lim       limiter
	dry       bool
	maxDigest int
	batch     int
	retryMin  time.Duration
	retryMax  time.Duration
	maxWait   time.Duration // longest Retry-After waited for inside a batch
	// run is the service's context: Slack calls and waits end with it (the batch handler's own
	// context outlives it so that outputs can drain).
	run context.Context
	// attempted holds alerts whose post failed ambiguously in this process.
	attempted map[string]bool
	// hook, for tests, runs after each successful post.
	hook func(m message)

	// backoff is the next wait after a Slack failure; progressed says a batch was finished since
	// the last resume (the backoff then starts over).
	backoff    time.Duration
	progressed bool
	// handled is the newest input handed to Handle in this process. After a resume, inputs in
	// (rewriteAfter, rewriteUpTo] come again although their sent records may be in memory only
	// (their batch's outputs were not confirmed, so nothing was acked): such a duplicate has its
	// record written again, so that it is durable before the input is acked.
	handled                   uint64
	rewriteAfter, rewriteUpTo uint64
}

// runLoop runs the notifier's processor until ctx ends.
func (n *notifier) runLoop(ctx context.Context) error {
	n.run = ctx
	// Intents left by an earlier run may have reached Slack: check the history before sending.
	n.attempted = n.st.intents()
	n.backoff = n.retryMin
	return flow.Run(ctx, n.js, flow.Options{
		Service: service,
		Stream:  n.src.stream,
		Filters: []string{n.src.filter},
		// Unchanged from the hand-written loop, so that the first start after the upgrade
		// resumes from that consumer's ack floor (the runtime's fallback before its first
		// checkpoint); the old ALERTING_STATE checkpoint.<source> key is no longer read.
		Durable: n.src.durable,
		Batch:   n.batch,
		Log:     n.log.With("source", n.src.name),
	}, n)
}

// Start implements flow.Starter.
func (n *notifier) Start(_ context.Context, checkpoint uint64) error {
	n.progressed = false
	n.rewriteAfter, n.rewriteUpTo = checkpoint, n.handled
	return nil
}

// Handle implements flow.Handler: it posts the batch's alerts and adds their records (and the
// dead letters of bad input) to out.
func (n *notifier) Handle(ctx context.Context, in []jetstream.Msg, out *flow.Out) error {
	if len(in) == 0 {
		return nil
	}
	n.handled = max(n.handled, seqOf(in[len(in)-1]))
	var todo []*alert
	seen := map[string]bool{}
	for i, m := range in {
		a, err := n.src.decode(m)
		if err != nil {
			if err := out.DeadLetter(m, err); err != nil {
				return err
			}
			continue
		}
		a.idx = i
		if r, ok := n.st.get(a.id); (ok && r.State == stateSent) || seen[a.id] {
			if seq := seqOf(m); ok && r.State == stateSent && seq > n.rewriteAfter && seq <= n.rewriteUpTo {
				if err := n.st.set(out, a.id, r); err != nil {
					return err
				}
			}
			Alerts.WithLabelValues(n.src.name, "duplicate").Inc()
			continue
		}
		seen[a.id] = true
		todo = append(todo, a)
	}
	// 1. Intents, durable before anything is posted: after a crash they say which alerts may
	// have reached Slack without their "sent" record.
	now := time.Now().UnixMilli()
	var fresh []string
	for _, a := range todo {
		if _, ok := n.st.get(a.id); !ok && !n.dry {
			if err := n.st.set(out, a.id, record{State: stateIntent, At: now, Channel: n.src.channel}); err != nil {
				return err
			}
			fresh = append(fresh, a.id)
		}
	}
	if err := out.Sync(ctx); err != nil {
		// Not known to be durable: forget them, so that the next attempt writes them again
		// before it posts.
		n.st.forget(fresh)
		return n.retry(0, err)
	}
	// 2. Alerts that may already be in Slack (intent from an earlier run, or an ambiguous
	// failure in this one): look them up in the channel history instead of sending again.
	todo, err := n.resolveUncertain(todo, out)
	if err != nil {
		return n.retry(0, err)
	}
	// 3. Send, in order: single messages while Slack's pace allows, digests when a backlog
	// builds up (more alerts waiting than messages we may send now).
	var pending uint64
	if md, err := in[len(in)-1].Metadata(); err == nil {
		pending = md.NumPending
	}
	for i := 0; i < len(todo); {
		k := 1
		if backlog := float64(len(todo)-i) + float64(pending); backlog > n.lim.available() && len(todo)-i > 1 {
			k = min(len(todo)-i, n.maxDigest)
		}
		group := todo[i : i+k]
		m := group[0].single()
		kind := "single"
		if k > 1 {
			m, kind = digest(group), "digest"
		}
		if n.dry {
			kind = "dry_run"
		}
		chID, ts, err := n.send(m)
		if err != nil {
			var se *sendError
			if errors.As(err, &se) && se.kind == failRateLimited && se.retryAfter <= n.maxWait {
				// Nothing was posted; wait as told, then re-plan (the rest now goes as digests).
				SlackErrors.WithLabelValues(n.src.name, "rate_limited").Inc()
				n.log.Info("Slack rate limit: waiting", "retry_after", se.retryAfter, "source", n.src.name)
				n.lim.drain()
				select {
				case <-n.run.Done():
					return flow.Retry(group[0].idx, 0, n.run.Err())
				case <-time.After(se.retryAfter):
				}
				continue
			}
			if errors.As(err, &se) && se.ambiguous {
				SlackErrors.WithLabelValues(n.src.name, "ambiguous").Inc()
				for _, a := range group {
					n.attempted[a.id] = true
				}
			} else {
				SlackErrors.WithLabelValues(n.src.name, "failed").Inc()
			}
			return n.retry(group[0].idx, err)
		}
		Messages.WithLabelValues(n.src.name, kind).Inc()
		if n.hook != nil {
			n.hook(m)
		}
		if err := n.st.setChannelID(out, n.src.channel, chID); err != nil {
			return err
		}
		at := time.Now().UnixMilli()
		for _, a := range group {
			r := record{State: stateSent, At: at, Channel: chID, TS: ts, DryRun: n.dry}
			if k > 1 {
				r.Digest = k
			}
			if err := n.st.set(out, a.id, r); err != nil {
				return err
			}
			delete(n.attempted, a.id)
			Alerts.WithLabelValues(n.src.name, "sent").Inc()
			if a.eventMs > 0 {
				obs.EventLatency.WithLabelValues(service).Observe(float64(at-a.eventMs) / 1000)
			}
		}
		i += k
	}
	n.progressed = true
	return nil
}

// retry ends the batch after a failure: the runtime keeps the first done inputs (their records
// durable, then checkpointed and acked) and delivers the rest again, in order, from the
// checkpoint once the backoff (or Slack's Retry-After, if longer) has passed.
func (n *notifier) retry(done int, cause error) error {
	if n.progressed {
		n.backoff = n.retryMin
	}
	wait := n.backoff
	var se *sendError
	if errors.As(cause, &se) && se.kind == failRateLimited && se.retryAfter > wait {
		wait = se.retryAfter
	}
	n.backoff = min(2*n.backoff, n.retryMax)
	// The runtime logs the retry (with the source, the wait and the cause).
	return flow.Retry(done, wait, cause)
}

// seqOf is an input's stream sequence (0 without metadata).
func seqOf(m jetstream.Msg) uint64 {
	md, err := m.Metadata()
	if err != nil {
		return 0
	}
	return md.Sequence.Stream
}

// send posts m at Slack's pace.
func (n *notifier) send(m message) (string, string, error) {
	if err := n.lim.wait(n.run); err != nil {
		return "", "", &sendError{kind: failRetryLater, err: err}
	}
	return n.slack.post(n.run, n.src.channel, m)
}

// resolveUncertain looks up alerts that may already be in Slack and drops those it finds.
func (n *notifier) resolveUncertain(todo []*alert, out *flow.Out) ([]*alert, error) {
	ids := map[string]bool{}
	oldest := time.Now()
	for _, a := range todo {
		r, ok := n.st.get(a.id)
		if n.attempted[a.id] {
			ids[a.id] = true
			if t := time.UnixMilli(r.At); ok && t.Before(oldest) {
				oldest = t
			}
		}
	}
	if len(ids) == 0 {
		return todo, nil
	}
	chID := n.st.channelID(n.src.channel)
	if looksLikeChannelID(n.src.channel) {
		chID = n.src.channel
	}
	found, err := n.slack.find(n.run, chID, oldest.Add(-time.Minute), ids)
	switch {
	case errors.Is(err, errNoHistory):
		n.log.Warn("cannot check Slack history for alerts that may have been sent before a crash; sending them (possible duplicates)",
			"source", n.src.name, "alerts", len(ids), "err", err)
		found = nil
	case err != nil:
		return todo, err
	}
	n.log.Info("checked Slack history for alerts interrupted by a crash or failure", "source", n.src.name,
		"uncertain", len(ids), "found", len(found))
	rest := todo[:0]
	at := time.Now().UnixMilli()
	for _, a := range todo {
		delete(n.attempted, a.id)
		if ts, ok := found[a.id]; ok {
			if err := n.st.set(out, a.id, record{State: stateSent, At: at, Channel: chID, TS: ts, Found: true}); err != nil {
				return todo, err
			}
			Alerts.WithLabelValues(n.src.name, "found_in_history").Inc()
			continue
		}
		rest = append(rest, a)
	}
	return rest, nil
}

func looksLikeChannelID(s string) bool {
	if len(s) < 9 || (s[0] != 'C' && s[0] != 'G' && s[0] != 'D') {
		return false
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

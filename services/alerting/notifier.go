package alerting

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/pipe"
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

// errRestart ends a consumer pass after a Slack failure: the unsent alerts stay unacked in
// JetStream and are read again, in order, from the checkpoint after a backoff.
var errRestart = errors.New("slack unavailable: resume from checkpoint after backoff")

// source is an input the notifier turns into Slack messages.
type source struct {
	name    string // checkpoint and metric name: unhappy, errors
	stream  string
	filter  string
	durable string
	channel string
	decode  func(m jetstream.Msg) (*alert, error)
}

// notifier sends one Slack message per alert of one source, exactly once as far as Slack's
// history can tell (see the package doc), in stream order.
type notifier struct {
	src       source
	js        jetstream.JetStream
	log       *slog.Logger
	st        *store
	out       poster
	lim       limiter
	dry       bool
	maxDigest int
	batch     int
	retryMin  time.Duration
	retryMax  time.Duration
	maxWait   time.Duration // longest Retry-After waited for inside a batch
	pub       *pipe.Publisher
	dlq       pipe.DeadLetter
	// run is the service's context: Slack calls and waits end with it (the batch handler's own
	// context outlives it so that publishes can drain).
	run context.Context
	// attempted holds alerts whose post failed ambiguously in this process.
	attempted map[string]bool
	// hook, for tests, runs after each successful post.
	hook func(m message)
}

// runLoop consumes the source until ctx ends, restarting from the checkpoint after Slack
// failures with a growing backoff.
func (n *notifier) runLoop(ctx context.Context) error {
	n.run = ctx
	n.pub = pipe.NewPublisher(n.js, service)
	n.dlq = pipe.DeadLetter{Pub: n.pub, Service: service, Log: n.log}
	// Intents left by an earlier run may have reached Slack: check the history before sending.
	n.attempted = n.st.intents()
	backoff := n.retryMin
	for ctx.Err() == nil {
		cp := n.st.checkpoint(n.src.name)
		cons, err := pipe.ResumeConsumer(ctx, n.js, n.src.stream, n.src.durable, cp, n.src.filter)
		if err != nil {
			return err
		}
		progressed := false
		err = pipe.Batches(ctx, cons, pipe.BatchOptions{MaxMessages: n.batch, Log: n.log, Ordered: true}, func(bctx context.Context, batch []jetstream.Msg) error {
			err := n.handle(bctx, batch)
			if err == nil && len(batch) > 0 {
				progressed = true
			}
			return err
		})
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, pipe.ErrGap):
			// Deliveries were lost in transit: resume from the checkpoint at once.
			continue
		case errors.Is(err, errRestart):
			if progressed {
				backoff = n.retryMin
			}
			n.log.Warn("Slack failed; alerts stay in JetStream, retrying from the checkpoint", "source", n.src.name,
				"after", backoff, "checkpoint", n.st.checkpoint(n.src.name), "err", errors.Unwrap(err))
			wait := backoff
			var re restartErr
			if errors.As(err, &re) && re.wait > wait {
				wait = re.wait
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			backoff = min(2*backoff, n.retryMax)
		case err != nil:
			return err
		}
	}
	return nil
}

// restartErr carries the cause and the least time to wait before trying again.
type restartErr struct {
	cause error
	wait  time.Duration
}

func (e restartErr) Error() string { return errRestart.Error() + ": " + e.cause.Error() }
func (e restartErr) Unwrap() error { return e.cause }
func (e restartErr) Is(t error) bool {
	return t == errRestart
}

func (n *notifier) handle(ctx context.Context, batch []jetstream.Msg) error {
	if len(batch) == 0 {
		return nil
	}
	start := time.Now()
	var todo []*alert
	seen := map[string]bool{}
	for i, m := range batch {
		a, err := n.src.decode(m)
		if err != nil {
			if err := n.dlq.Send(m, err); err != nil {
				return err
			}
			continue
		}
		a.idx = i
		if r, ok := n.st.get(a.id); (ok && r.State == stateSent) || seen[a.id] {
			Alerts.WithLabelValues(n.src.name, "duplicate").Inc()
			continue
		}
		seen[a.id] = true
		todo = append(todo, a)
	}
	// 1. Intents, durable before anything is posted: after a crash they say which alerts may
	// have reached Slack without their "sent" record.
	now := time.Now().UnixMilli()
	for _, a := range todo {
		if _, ok := n.st.get(a.id); !ok && !n.dry {
			if err := n.st.set(n.pub, a.id, record{State: stateIntent, At: now, Channel: n.src.channel}); err != nil {
				return err
			}
		}
	}
	if err := n.pub.Wait(ctx); err != nil {
		return err
	}
	// 2. Alerts that may already be in Slack (intent from an earlier run, or an ambiguous
	// failure in this one): look them up in the channel history instead of sending again.
	todo, err := n.resolveUncertain(todo)
	if err != nil {
		return n.finish(ctx, batch, 0, err)
	}
	// 3. Send, in order: single messages while Slack's pace allows, digests when a backlog
	// builds up (more alerts waiting than messages we may send now).
	var pending uint64
	if md, err := batch[len(batch)-1].Metadata(); err == nil {
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
					return n.finish(ctx, batch, group[0].idx, n.run.Err())
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
			return n.finish(ctx, batch, group[0].idx, err)
		}
		Messages.WithLabelValues(n.src.name, kind).Inc()
		if n.hook != nil {
			n.hook(m)
		}
		if err := n.st.setChannelID(n.pub, n.src.channel, chID); err != nil {
			return err
		}
		at := time.Now().UnixMilli()
		for _, a := range group {
			r := record{State: stateSent, At: at, Channel: chID, TS: ts, DryRun: n.dry}
			if k > 1 {
				r.Digest = k
			}
			if err := n.st.set(n.pub, a.id, r); err != nil {
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
	if err := n.finish(ctx, batch, len(batch), nil); err != nil {
		return err
	}
	obs.Processed.WithLabelValues(service, n.src.stream).Add(float64(len(batch)))
	obs.BatchLatency.WithLabelValues(service, n.src.stream).Observe(time.Since(start).Seconds())
	return nil
}

// send posts m at Slack's pace.
func (n *notifier) send(m message) (string, string, error) {
	if err := n.lim.wait(n.run); err != nil {
		return "", "", &sendError{kind: failRetryLater, err: err}
	}
	return n.out.post(n.run, n.src.channel, m)
}

// finish makes every record written so far durable, then checkpoints and acks the inputs before
// index done (all of them when done == len(batch)). A non-nil cause turns into errRestart.
func (n *notifier) finish(ctx context.Context, batch []jetstream.Msg, done int, cause error) error {
	if done > 0 {
		if md, err := batch[done-1].Metadata(); err == nil {
			if err := n.st.setCheckpoint(n.pub, n.src.name, md.Sequence.Stream); err != nil {
				return err
			}
		}
	}
	if err := n.pub.Wait(ctx); err != nil {
		return err
	}
	if done > 0 {
		pipe.AckAll(batch[:done], true)
	}
	if cause != nil {
		re := restartErr{cause: cause}
		var se *sendError
		if errors.As(cause, &se) && se.kind == failRateLimited {
			re.wait = se.retryAfter
		}
		return re
	}
	return nil
}

// resolveUncertain looks up alerts that may already be in Slack and drops those it finds.
func (n *notifier) resolveUncertain(todo []*alert) ([]*alert, error) {
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
	found, err := n.out.find(n.run, chID, oldest.Add(-time.Minute), ids)
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
	out := todo[:0]
	at := time.Now().UnixMilli()
	for _, a := range todo {
		delete(n.attempted, a.id)
		if ts, ok := found[a.id]; ok {
			if err := n.st.set(n.pub, a.id, record{State: stateSent, At: at, Channel: chID, TS: ts, Found: true}); err != nil {
				return todo, err
			}
			Alerts.WithLabelValues(n.src.name, "found_in_history").Inc()
			continue
		}
		out = append(out, a)
	}
	return out, nil
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

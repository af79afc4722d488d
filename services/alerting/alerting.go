// Package alerting executes the pipeline's Slack sinks (CREATE SINK CONNECTOR ... WITH
// ('connector.class'='slack', 'topics'='UNHAPPY_PLATINUM_CUSTOMERS', 'message'='...')): one
// Slack message per row of the streams they read (and, when switched on, per
// ERRORS_PER_MIN_ALERT window), the way the ratings demo's python_kafka_notify.py did, with
// exactly one message per row. The rows come from the enricher, which runs the statement that
// derives them (UNHAPPY_PLATINUM_CUSTOMERS in the demo).
//
// # How "exactly one message" is kept
//
// The notifier is a shared/flow handler: the runtime is the single owner of its consumer, reads
// in stream order from the processor's checkpoint (JETSUITE_CHECKPOINTS, key = durable name),
// and acks inputs only after the records the notifier wrote for them are durable. For each batch
// the notifier first writes an "intent" record per new alert to ALERTING_STATE and waits until
// JetStream has them (flow.Out.Sync), then posts, then writes a "sent" record per alert; the
// runtime waits for those, checkpoints, and only then acks the inputs. When Slack fails, the
// notifier returns flow.Retry with the number of inputs it finished: those are acked, the rest
// stays in JetStream and is delivered again, in order, after the backoff. Sent records are loaded
// into memory at start, so a redelivered or replayed alert is recognised without a KV round trip.
//
// The one window that records cannot close is between Slack accepting a message and its "sent"
// record becoming durable (a crash there, or a post whose answer never arrived). Every message
// carries its alert ids in Slack message metadata; alerts in that window still have their intent
// record (after a crash) or are marked ambiguous (after a failed call), and before any of them is
// sent again the notifier reads the channel history (conversations.history with
// include_all_metadata) and marks the ones it finds as sent. What remains: a duplicate is
// possible only if Slack accepted a message but the history does not show it when the notifier
// looks (history not readable: no channels:history scope, channel given by name and never posted
// to successfully, the message deleted in between, or Slack's history lagging behind the post).
// An alert is never lost: it is acked only after Slack accepted it or the history showed it.
package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetsuite/jetsuite/shared/config"
	"github.com/jetsuite/jetsuite/shared/events"
	"github.com/jetsuite/jetsuite/shared/kvx"
	"github.com/jetsuite/jetsuite/shared/lease"
	"github.com/jetsuite/jetsuite/shared/obs"
	"github.com/jetsuite/jetsuite/shared/plan"
	"github.com/jetsuite/jetsuite/shared/runner"
	"github.com/jetsuite/jetsuite/shared/sqlrt"
	"github.com/jetsuite/jetsuite/shared/topology"
)

const service = "alerting"

// Config is the alerting service's configuration.
type Config struct {
	// SlackToken is the bot token (xoxb-...); empty means dry run. Never logged.
	SlackToken string
	// Channel is where alerts go (name or id; an id lets the history check work from the start).
	Channel string
	// APIURL points slack-go at another server (tests); empty is Slack's.
	APIURL   string
	Username string
	Icon     string
	// Rate is Slack messages per second per channel (0: no pacing), Burst the bucket size.
	Rate  float64
	Burst int
	// MaxDigest caps how many alerts one digest lists (at most 45: Slack's 50-block limit).
	MaxDigest int
	// RetryMin and RetryMax bound the backoff while Slack fails.
	RetryMin, RetryMax time.Duration
	// MaxRetryAfter is the longest Retry-After waited for inside a batch; longer waits release
	// the batch (unacked) and resume from the checkpoint.
	MaxRetryAfter time.Duration
	Timeout       time.Duration
	// Errors turns on Slack messages for ERRORS_PER_MIN_ALERT final rows.
	Errors        bool
	ErrorsChannel string
	Batch         int
}

// DefaultConfig is the configuration without flags or environment: the declared defaults.
func DefaultConfig() Config {
	var c Config
	c.Bind(config.Defaults(service))
	return c
}

// Bind declares the settings on b.
func (c *Config) Bind(b runner.Binder) {
	b.Secret(&c.SlackToken, "slack-bot-token", "Slack bot token (xoxb-...; chat:write, channels:history for the crash check); empty: dry run").
		Was("SLACK_BOT_TOKEN", "slack-bot-token")
	b.String(&c.Channel, "slack-channel", "unhappy-customers", "Slack channel for alerts (name, or id to enable the history check before the first post)").
		NotEmpty().Was("SLACK_CHANNEL", "slack-channel")
	b.String(&c.APIURL, "slack-api-url", "", "Slack Web API base URL (tests: a local server); empty: https://slack.com/api/").
		Was("SLACK_API_URL", "slack-api-url")
	b.String(&c.Username, "slack-username", "KSQL Notifications", "display name of the messages (needs chat:write.customize; empty: the bot's)").
		Was("SLACK_USERNAME", "slack-username")
	b.String(&c.Icon, "slack-icon-emoji", ":rocket:", "icon emoji of the messages (empty: the bot's)").
		Was("SLACK_ICON_EMOJI", "slack-icon-emoji")
	b.Float(&c.Rate, "slack-rate", 1, "Slack messages per second per channel (0: unpaced); more alerts than this are grouped into digests").
		NonNegative().Was("SLACK_RATE", "slack-rate")
	b.Int(&c.Burst, "slack-burst", 3, "Slack messages that may go out back to back").
		Positive().Was("SLACK_BURST", "slack-burst")
	b.Int(&c.MaxDigest, "slack-digest-max", 20, "most alerts listed in one digest message (2..45: Slack's 50-block limit)").
		Check(func(n int) error {
			if n < 2 || n > 45 {
				return errors.New("must be between 2 and 45")
			}
			return nil
		}).Was("SLACK_DIGEST_MAX", "slack-digest-max")
	b.Duration(&c.RetryMin, "slack-retry-min", time.Second, "first backoff while Slack fails (doubles up to the max)").
		Positive().Was("SLACK_RETRY_MIN", "slack-retry-min")
	b.Duration(&c.RetryMax, "slack-retry-max", time.Minute, "longest backoff while Slack fails").
		Positive().Was("SLACK_RETRY_MAX", "slack-retry-max")
	b.Duration(&c.MaxRetryAfter, "slack-max-retry-after", time.Minute, "longest 429 Retry-After waited for while holding a batch").
		Positive().Was("SLACK_MAX_RETRY_AFTER", "slack-max-retry-after")
	b.Duration(&c.Timeout, "slack-timeout", 10*time.Second, "timeout of one Slack API call").
		Positive().Was("SLACK_TIMEOUT", "slack-timeout")
	b.Bool(&c.Errors, "errors-to-slack", false, "also send ERRORS_PER_MIN_ALERT windows (final rows) to Slack").
		Was("ALERTING_ERRORS_TO_SLACK", "alert-errors")
	b.String(&c.ErrorsChannel, "slack-errors-channel", "", "channel for ERRORS_PER_MIN_ALERT (empty: the alerts' channel)").
		Was("SLACK_ERRORS_CHANNEL", "slack-errors-channel")
	b.Int(&c.Batch, "batch", 500, "largest input batch").Positive().Was("ALERTING_BATCH", "")
}

// Spec describes the service to the jetsuite binary.
func Spec() runner.Spec {
	return runner.Spec{
		Name:    service,
		Summary: "the pipeline's Slack sinks (one message per row, digests under load)",
		InAll:   true,
		Bind: func(b runner.Binder) func(runner.Deps) (runner.Service, error) {
			var c Config
			c.Bind(b)
			return func(d runner.Deps) (runner.Service, error) { return New(d, c), nil }
		},
	}
}

// Service is the alerting service.
type Service struct {
	cfg   Config
	js    jetstream.JetStream
	log   *slog.Logger
	ready *obs.ReadyFlag
	sinks []*plan.Sink
	deps  runner.Deps
	// hook, for tests: runs after each successful post.
	hook func(m message)
}

// New returns the service.
func New(d runner.Deps, c Config) *Service {
	// A Config built in code may leave settings zero: they get the declared defaults (values
	// from flags and environment were validated at start).
	def := DefaultConfig()
	if c.Channel == "" {
		c.Channel = def.Channel
	}
	if c.ErrorsChannel == "" {
		c.ErrorsChannel = c.Channel
	}
	if c.MaxDigest <= 1 || c.MaxDigest > 45 {
		c.MaxDigest = min(max(c.MaxDigest, 2), 45)
	}
	if c.Batch <= 0 {
		c.Batch = def.Batch
	}
	if c.RetryMin <= 0 {
		c.RetryMin = def.RetryMin
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = def.MaxRetryAfter
	}
	if c.Timeout <= 0 {
		c.Timeout = def.Timeout
	}
	s := &Service{cfg: c, js: d.JS, deps: d, log: d.Logger(service), ready: obs.NewReadyFlag("loading ALERTING_STATE"),
		sinks: d.Pipeline().SinksOf("slack")}
	if d.Health != nil {
		d.Health.Register(service, s.ready.Check)
	}
	return s
}

// Name implements runner.Service.
func (s *Service) Name() string { return service }

// Run runs the notifiers until ctx ends: one per stream a Slack sink reads (and one for
// ERRORS_PER_MIN_ALERT when switched on).
func (s *Service) Run(ctx context.Context) error {
	var out poster
	dry := s.cfg.SlackToken == ""
	if dry {
		out = dryRun{log: s.log}
		s.log.Info("no JETSUITE_ALERTING_SLACK_BOT_TOKEN: dry run, alerts are logged instead of sent to Slack", "channel", s.cfg.Channel)
	} else {
		out = newSlackPoster(s.cfg.SlackToken, s.cfg.APIURL, s.cfg.Username, s.cfg.Icon, s.cfg.Timeout)
		s.log.Info("sending alerts to Slack", "channel", s.cfg.Channel, "api", apiName(s.cfg.APIURL),
			"rate_per_s", s.cfg.Rate, "errors_per_min_alert", s.cfg.Errors)
	}
	lims := map[string]limiter{}
	lim := func(ch string) limiter {
		if l, ok := lims[ch]; ok {
			return l
		}
		lims[ch] = newLimiter(s.cfg.Rate, s.cfg.Burst)
		return lims[ch]
	}
	srcs, err := s.sources()
	if err != nil {
		return err
	}
	// Each notifier is a unit of work shared with the other alerting instances (shared/lease):
	// one instance at a time sends a source's alerts. It loads what was sent when it starts,
	// since another instance may have sent alerts since this one last ran it.
	var units []lease.Unit
	for _, src := range srcs {
		l := lim(src.channel)
		units = append(units, lease.Unit{Name: src.durable, Run: func(ctx context.Context) error {
			st, err := loadStore(ctx, s.js)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			n := &notifier{src: src, js: s.js, log: s.log, st: st, slack: out, lim: l, dry: dry,
				maxDigest: s.cfg.MaxDigest, batch: s.cfg.Batch, retryMin: s.cfg.RetryMin, retryMax: s.cfg.RetryMax,
				maxWait: s.cfg.MaxRetryAfter, hook: s.hook}
			return n.runLoop(ctx)
		}})
	}
	s.ready.Set()
	return s.deps.Share(ctx, service, units...)
}

// sources lists what the notifiers read: every stream of every Slack sink, then the
// ERRORS_PER_MIN_ALERT final rows when switched on. The first stream's consumer keeps the
// name it always had (alerting-slack); the others are alerting-slack-<stream>.
func (s *Service) sources() ([]source, error) {
	var srcs []source
	for _, sink := range s.sinks {
		tmpl, err := parseTemplate(sink.Config["message"])
		if err != nil {
			return nil, fmt.Errorf("alerting: sink %s: 'message': %w", sink.Name, err)
		}
		channel := s.cfg.Channel
		if ch := sink.Config["channel"]; ch != "" {
			channel = ch
		}
		for _, o := range sink.Objects {
			if o.Stream == "" {
				return nil, fmt.Errorf("alerting: sink %s reads table %s; a Slack sink reads streams", sink.Name, o.Name)
			}
			for _, c := range tmpl.columns() {
				if o.Column(c) < 0 {
					var names []string
					for _, col := range o.Columns {
						names = append(names, col.Name)
					}
					return nil, fmt.Errorf("alerting: sink %s: the message names {%s}, which is no column of %s; columns are %s",
						sink.Name, c, o.Name, strings.Join(names, ", "))
				}
			}
			durable := "alerting-slack"
			if len(srcs) > 0 {
				durable += "-" + strings.ReplaceAll(strings.ToLower(o.Name), "_", "-")
			}
			srcs = append(srcs, source{name: strings.ToLower(o.Name), stream: o.Stream, filter: o.Subject,
				durable: durable, channel: channel, decode: rowDecoder(o, tmpl)})
		}
	}
	if s.cfg.Errors {
		srcs = append(srcs, source{name: "errors", stream: topology.StreamWindowsFinal,
			filter: topology.FinalPrefix + topology.TableErrorsPerMinAlert, durable: "alerting-slack-errors",
			channel: s.cfg.ErrorsChannel, decode: decodeErrors})
	}
	return srcs, nil
}

func apiName(u string) string {
	if u == "" {
		return "https://slack.com/api/"
	}
	return u
}

// unhappyOf reads the columns the message blocks show (those of UNHAPPY_PLATINUM_CUSTOMERS)
// from a row of o; a column o lacks, or of another kind, is NULL.
func unhappyOf(o *plan.Object, row sqlrt.Row) events.UnhappyPlatinumCustomer {
	col := func(name string) sqlrt.Value {
		if i := o.Column(name); i >= 0 {
			return row[i]
		}
		return sqlrt.Value{}
	}
	str := func(name string) events.String {
		if v := col(name); v.Kind == sqlrt.String {
			return events.NewString(v.S)
		}
		return events.String{}
	}
	var u events.UnhappyPlatinumCustomer
	if v := col("RATING_ID"); v.Kind == sqlrt.Integer || v.Kind == sqlrt.BigInt {
		u.RatingID = events.NewBigInt(v.I)
	}
	if v := col("STARS"); v.Kind == sqlrt.Integer || v.Kind == sqlrt.BigInt {
		u.Stars = events.NewInt(int32(v.I))
	}
	u.FullName, u.ClubStatus, u.Email, u.Message = str("FULL_NAME"), str("CLUB_STATUS"), str("EMAIL"), str("MESSAGE")
	return u
}

// rowDecoder turns a row of o into an alert: its columns fill the sink's template (the
// fallback text); rows shaped like UNHAPPY_PLATINUM_CUSTOMERS get its blocks.
func rowDecoder(o *plan.Object, tmpl template) func(m jetstream.Msg) (*alert, error) {
	dec := sqlrt.NewDecoder(o.Columns)
	return func(m jetstream.Msg) (*alert, error) {
		row := make(sqlrt.Row, len(o.Columns))
		if err := dec.Decode(m.Data(), row); err != nil {
			return nil, err
		}
		u := unhappyOf(o, row)
		a := unhappyAlert(u, events.EventTimeMillis(m))
		if tmpl != nil {
			a.text = tmpl.render(o.Columns, row)
		}
		if !u.RatingID.Valid {
			// A row without RATING_ID (the original's UNHAPPY_PLATINUM_CUSTOMERS has none): the
			// alert's id is the row's message id, which the enricher derives from the input it
			// came from (stable across replays and restarts), else its place in the stream.
			id := m.Headers().Get(jetstream.MsgIDHeader)
			if id == "" {
				md, err := m.Metadata()
				if err != nil {
					return nil, fmt.Errorf("%w: RATING_ID (and no message id)", events.ErrMissingField)
				}
				id = md.Stream + ":" + strconv.FormatUint(md.Sequence.Stream, 10)
			}
			a.id = "msg." + kvx.SafeKey(id)
		}
		return a, nil
	}
}

func decodeErrors(m jetstream.Msg) (*alert, error) {
	var r errorsRow
	if err := events.Decode(m.Data(), &r); err != nil {
		return nil, err
	}
	if !r.Status.Valid || !r.WindowStart.Valid {
		return nil, fmt.Errorf("%w: STATUS, WINDOW_START", events.ErrMissingField)
	}
	key := m.Headers().Get(events.HeaderWindowKey)
	if key == "" {
		key = fmt.Sprintf("%d.%d", r.Status.V, r.WindowStart.V)
	}
	return errorsAlert(kvx.SafeKey(key), r, events.EventTimeMillis(m)), nil
}

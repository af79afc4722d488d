package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"
)

// outcome classifies a failed Slack call.
type outcome int

const (
	// failRetryLater: Slack did not take the message (5xx, network, an error answer); try again
	// after a backoff, keeping the alerts in JetStream.
	failRetryLater outcome = iota
	// failRateLimited: 429; wait Retry-After, then go on (with digests).
	failRateLimited
)

// sendError is a failed post.
type sendError struct {
	kind outcome
	// ambiguous says Slack may have posted the message although the call failed (the request
	// was sent and no answer came, or a 5xx): the alerts must be looked up in the channel
	// history before they are sent again.
	ambiguous  bool
	retryAfter time.Duration
	err        error
}

func (e *sendError) Error() string { return e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// poster talks to Slack (or, in dry run, to the log).
type poster interface {
	// post sends m and returns the channel id Slack answered with and the message's ts.
	post(ctx context.Context, channel string, m message) (channelID, ts string, err error)
	// find looks up which of ids appear in the metadata of the channel's messages since oldest
	// (conversations.history with include_all_metadata) and returns their message ts.
	find(ctx context.Context, channelID string, oldest time.Time, ids map[string]bool) (map[string]string, error)
}

// errNoHistory says the history cannot be read (dry run, unknown channel id, missing scope).
var errNoHistory = errors.New("channel history not available")

type slackPoster struct {
	api      *slack.Client
	username string
	icon     string
	// defaultRetry is the wait after a 429 without Retry-After.
	defaultRetry time.Duration
}

func newSlackPoster(token, apiURL, username, icon string, timeout time.Duration) *slackPoster {
	opts := []slack.Option{slack.OptionHTTPClient(&http.Client{Timeout: timeout})}
	if apiURL != "" {
		opts = append(opts, slack.OptionAPIURL(apiURL))
	}
	return &slackPoster{api: slack.New(token, opts...), username: username, icon: icon, defaultRetry: 5 * time.Second}
}

func (p *slackPoster) post(ctx context.Context, channel string, m message) (string, string, error) {
	opts := []slack.MsgOption{slack.MsgOptionText(m.text, false), slack.MsgOptionMetadata(m.metadata())}
	if len(m.blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(m.blocks...))
	}
	if p.username != "" {
		opts = append(opts, slack.MsgOptionUsername(p.username))
	}
	if p.icon != "" {
		opts = append(opts, slack.MsgOptionIconEmoji(p.icon))
	}
	ch, ts, err := p.api.PostMessageContext(ctx, channel, opts...)
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && messageSpecific[se.Err] && len(m.blocks) > 0 {
		// Slack refused this message's blocks or size: one more try as plain text (it still
		// carries the metadata), rather than holding every later alert back behind it.
		m.blocks, m.text = nil, truncate(m.text, 3000)
		return p.post(ctx, channel, m)
	}
	if err != nil {
		return "", "", p.classify(err)
	}
	return ch, ts, nil
}

// messageSpecific lists chat.postMessage errors caused by the message itself, not by Slack or
// the configuration.
var messageSpecific = map[string]bool{"invalid_blocks": true, "invalid_blocks_format": true, "msg_too_long": true,
	"msg_blocks_too_long": true, "too_many_attachments": true}

// classify maps slack-go's errors. Only a 429 or an answer with ok=false says for sure that
// Slack did not post; anything else (5xx, timeouts, connection errors) may have posted.
func (p *slackPoster) classify(err error) *sendError {
	var rl *slack.RateLimitedError
	var sc slack.StatusCodeError
	var se slack.SlackErrorResponse
	switch {
	case errors.As(err, &rl):
		return &sendError{kind: failRateLimited, retryAfter: rl.RetryAfter, err: err}
	case errors.As(err, &sc) && sc.Code == http.StatusTooManyRequests:
		return &sendError{kind: failRateLimited, retryAfter: p.defaultRetry, err: err}
	case errors.As(err, &sc) && sc.Code < 500:
		return &sendError{kind: failRetryLater, err: err}
	case errors.As(err, &se):
		return &sendError{kind: failRetryLater, err: err}
	}
	return &sendError{kind: failRetryLater, ambiguous: true, err: err}
}

func (p *slackPoster) find(ctx context.Context, channelID string, oldest time.Time, ids map[string]bool) (map[string]string, error) {
	if channelID == "" {
		return nil, fmt.Errorf("%w: channel id unknown (set JETSUITE_ALERTING_SLACK_CHANNEL to the channel id)", errNoHistory)
	}
	found := map[string]string{}
	params := &slack.GetConversationHistoryParameters{
		ChannelID: channelID, Limit: 200, IncludeAllMetadata: true,
		Oldest: strconv.FormatFloat(float64(oldest.UnixMicro())/1e6, 'f', 6, 64),
	}
	for page := 0; page < 50; page++ {
		resp, err := p.api.GetConversationHistoryContext(ctx, params)
		if err != nil {
			var se slack.SlackErrorResponse
			if errors.As(err, &se) {
				// missing_scope, not_in_channel, channel_not_found: looking again will not help.
				return nil, fmt.Errorf("%w: %s", errNoHistory, se.Err)
			}
			return nil, p.classify(err)
		}
		for _, msg := range resp.Messages {
			if msg.Metadata.EventType != metadataEventType {
				continue
			}
			list, _ := msg.Metadata.EventPayload["alert_ids"].([]any)
			for _, v := range list {
				if s, ok := v.(string); ok && ids[s] {
					found[s] = msg.Timestamp
				}
			}
		}
		if len(found) == len(ids) || !resp.HasMore || resp.ResponseMetaData.NextCursor == "" {
			break
		}
		params.Cursor = resp.ResponseMetaData.NextCursor
	}
	return found, nil
}

// dryRun logs what it would send.
type dryRun struct{ log *slog.Logger }

func (d dryRun) post(_ context.Context, channel string, m message) (string, string, error) {
	d.log.Info("dry run: would send Slack message", "channel", channel, "alerts", m.ids, "text", m.text)
	return channel, strconv.FormatInt(time.Now().UnixMicro(), 10), nil
}

func (d dryRun) find(context.Context, string, time.Time, map[string]bool) (map[string]string, error) {
	return nil, errNoHistory
}

// limiter paces posts per channel (Slack: about one message per second per channel, short
// bursts allowed). A nil limiter means no pacing.
type limiter struct{ l *rate.Limiter }

func newLimiter(perSecond float64, burst int) limiter {
	if perSecond <= 0 {
		return limiter{}
	}
	return limiter{rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))}
}

// available is how many messages may go out now without waiting.
func (l limiter) available() float64 {
	if l.l == nil {
		return 1e18
	}
	return l.l.Tokens()
}

func (l limiter) wait(ctx context.Context) error {
	if l.l == nil {
		return nil
	}
	return l.l.Wait(ctx)
}

// drain empties the bucket after a 429, so that what follows is grouped into digests.
func (l limiter) drain() {
	if l.l == nil {
		return
	}
	if n := int(l.l.Tokens()); n > 0 {
		l.l.ReserveN(time.Now(), n)
	}
}

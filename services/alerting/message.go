package alerting

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/jetsuite/jetsuite/shared/events"
)

// metadataEventType marks jetsuite's messages in Slack's message metadata; the payload lists the
// alert ids a message covers, so that the channel history tells which alerts Slack has.
const metadataEventType = "jetsuite_alert"

// message is one Slack message: fallback text, Block Kit blocks and the alert ids it covers.
type message struct {
	text   string
	blocks []slack.Block
	ids    []string
}

func (m message) metadata() slack.SlackMetadata {
	return slack.SlackMetadata{EventType: metadataEventType, EventPayload: map[string]any{"alert_ids": m.ids}}
}

// alert is one thing to tell Slack about: an unhappy platinum rating or an error-rate window.
type alert struct {
	// id is the alert's key in ALERTING_STATE: "rating.<RATING_ID>" or "window.<window key>".
	id string
	// idx is the input message's index in its batch.
	idx int
	// eventMs is the event time (epoch ms).
	eventMs int64
	// text is the single message's fallback text, blocks its blocks.
	text   string
	blocks func() []slack.Block
	// line is the alert's entry in a digest (mrkdwn).
	line string
	// kind names the alert type in digest headers.
	kind string
}

func (a *alert) single() message {
	return message{text: a.text, blocks: a.blocks(), ids: []string{a.id}}
}

// escape escapes the three characters Slack's mrkdwn gives meaning to.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	for len(string(r)) > n-1 {
		r = r[:len(r)-1]
	}
	return string(r) + "…"
}

// slackDate renders an epoch-ms time with Slack's date formatting (the reader's time zone),
// falling back to UTC text.
func slackDate(ms int64) string {
	t := time.UnixMilli(ms).UTC()
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time_secs}|%s>", t.Unix(), t.Format("2006-01-02 15:04:05 UTC"))
}

func stars(n int32) string {
	if n < 0 {
		n = 0
	}
	if n > 5 {
		n = 5
	}
	return strings.Repeat("★", int(n)) + strings.Repeat("☆", 5-int(n)) + " (" + strconv.Itoa(int(n)) + ")"
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, truncate(s, 150), true, false)
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, truncate(s, 2900), false, false)
}

// unhappyAlert turns an UNHAPPY_PLATINUM_CUSTOMERS row into an alert. The fallback text is
// the original notifier's (python_kafka_notify.py), word for word.
func unhappyAlert(u events.UnhappyPlatinumCustomer, eventMs int64) *alert {
	email, msg := escape(u.Email.V), escape(u.Message.V)
	a := &alert{
		id:      "rating." + strconv.FormatInt(u.RatingID.V, 10),
		eventMs: eventMs,
		kind:    "unhappy platinum customers",
		text: fmt.Sprintf("`%s` just left a bad review :disappointed:\n> %s\n\n_Please contact them immediately and see if we can fix the issue *right here, right now*_",
			email, msg),
		line: fmt.Sprintf("*%s* (`%s`, %s) %s%s\n> %s",
			escape(u.FullName.Or("?")), email, escape(u.ClubStatus.V), stars(u.Stars.V), ratingRef(u.RatingID), truncate(msg, 300)),
	}
	a.blocks = func() []slack.Block {
		return []slack.Block{
			slack.NewHeaderBlock(plain(":disappointed: Unhappy platinum customer")),
			slack.NewSectionBlock(nil, []*slack.TextBlockObject{
				mrkdwn("*Customer*\n" + escape(u.FullName.Or("?"))),
				mrkdwn("*Club status*\n" + escape(u.ClubStatus.V)),
				mrkdwn("*Stars*\n" + stars(u.Stars.V)),
				mrkdwn("*Email*\n`" + email + "`"),
			}, nil),
			slack.NewSectionBlock(mrkdwn("> "+msg), nil, nil),
			slack.NewSectionBlock(mrkdwn("_Please contact them immediately and see if we can fix the issue *right here, right now*_"), nil, nil),
			slack.NewContextBlock("", mrkdwn(strings.TrimPrefix(ratingRef(u.RatingID), " — ")+dot(u.RatingID.Valid)+slackDate(eventMs))),
		}
	}
	return a
}

// ratingRef is " — rating N" when the row carries its rating id (jetsuite's older rows did; the
// original's UNHAPPY_PLATINUM_CUSTOMERS does not).
func ratingRef(id events.BigInt) string {
	if !id.Valid {
		return ""
	}
	return " — rating " + strconv.FormatInt(id.V, 10)
}

func dot(b bool) string {
	if b {
		return " · "
	}
	return ""
}

// errorsRow is a final row of ERRORS_PER_MIN_ALERT.
type errorsRow struct {
	Status      events.Int    `json:"STATUS"`
	Errors      events.BigInt `json:"ERRORS"`
	EventTS     events.BigInt `json:"EVENT_TS"`
	WindowStart events.BigInt `json:"WINDOW_START"`
	WindowEnd   events.BigInt `json:"WINDOW_END"`
}

func errorsAlert(key string, r errorsRow, eventMs int64) *alert {
	win := fmt.Sprintf("%s – %s", slackDate(r.WindowStart.V), slackDate(r.WindowEnd.V))
	a := &alert{
		id:      "window." + key,
		eventMs: eventMs,
		kind:    "error-rate alerts",
		text: fmt.Sprintf(":rotating_light: %d responses with HTTP status %d between %s and %s (ERRORS_PER_MIN_ALERT)",
			r.Errors.V, r.Status.V, time.UnixMilli(r.WindowStart.V).UTC().Format(time.RFC3339), time.UnixMilli(r.WindowEnd.V).UTC().Format(time.RFC3339)),
		line: fmt.Sprintf("*HTTP %d*: %d errors, %s", r.Status.V, r.Errors.V, win),
	}
	a.blocks = func() []slack.Block {
		return []slack.Block{
			slack.NewHeaderBlock(plain(fmt.Sprintf(":rotating_light: HTTP %d errors: %d in one minute", r.Status.V, r.Errors.V))),
			slack.NewSectionBlock(nil, []*slack.TextBlockObject{
				mrkdwn("*Status*\n" + strconv.Itoa(int(r.Status.V))),
				mrkdwn("*Errors*\n" + strconv.FormatInt(r.Errors.V, 10)),
			}, nil),
			slack.NewContextBlock("", mrkdwn("window "+win+" · ERRORS_PER_MIN_ALERT (status > 400, more than 5 per hopping minute)")),
		}
	}
	return a
}

// digest puts several alerts into one message: a header, one section per alert, and the
// alerts' fallback texts one after the other. Slack allows 50 blocks; digests hold at most
// maxDigest (≤ 45) alerts.
func digest(as []*alert) message {
	m := message{ids: make([]string, len(as))}
	var text strings.Builder
	fmt.Fprintf(&text, "%d %s (digest: alerts came faster than Slack accepts messages)\n", len(as), as[0].kind)
	m.blocks = append(m.blocks, slack.NewHeaderBlock(plain(fmt.Sprintf(":bell: %d %s", len(as), as[0].kind))))
	for i, a := range as {
		m.ids[i] = a.id
		m.blocks = append(m.blocks, slack.NewSectionBlock(mrkdwn(a.line), nil, nil))
		text.WriteString("\n" + truncate(a.text, 600) + "\n")
	}
	first, last := as[0].eventMs, as[len(as)-1].eventMs
	m.blocks = append(m.blocks, slack.NewContextBlock("", mrkdwn(fmt.Sprintf("%d alerts · %s – %s · grouped because of Slack's rate limit",
		len(as), slackDate(first), slackDate(last)))))
	m.text = truncate(text.String(), 35000)
	return m
}

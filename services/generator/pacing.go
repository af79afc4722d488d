package generator

import "time"

// pacer holds one quickstart to its rate without a timer per event: it counts how many events
// should have been sent since a baseline and how many were, and the loop sends the difference.
type pacer struct {
	base time.Time
	sent int64
}

// due is how many events should be sent now. When the loop fell behind (a slow JetStream, a
// long GC), at most one second's worth is made up, so a stall never turns into a flood.
func (p *pacer) due(rate float64, now time.Time) int64 {
	if rate <= 0 {
		return 0
	}
	if p.base.IsZero() {
		p.base = now
	}
	want := int64(rate * now.Sub(p.base).Seconds())
	d := want - p.sent
	if limit := int64(rate) + 1; d > limit {
		p.sent = want - limit
		d = limit
	}
	return max(d, 0)
}

// took records that k events were sent.
func (p *pacer) took(k int64) { p.sent += k }

// next is when the next event is due.
func (p *pacer) next(rate float64, now time.Time) time.Time {
	if rate <= 0 {
		return now.Add(time.Hour)
	}
	if p.base.IsZero() {
		return now
	}
	return p.base.Add(time.Duration(float64(p.sent+1) / rate * float64(time.Second)))
}

// reset starts a new baseline (after a pause, so that the pause is not made up for).
func (p *pacer) reset() { *p = pacer{} }

// The schedule of sessionize-data.sh: after a 90 s warm-up, pause the clickstream connector
// for 35 s, resume it for 90 s, and so on. A 35 s silence is longer than CLICK_USER_SESSIONS's
// 30 s inactivity gap, so every cycle closes every user's session.
const (
	SessionizeWarmup = 90 * time.Second
	SessionizePause  = 35 * time.Second
	SessionizeRun    = 90 * time.Second
)

// SessionizePaused says whether clicks are paused at elapsed time since the generator started,
// and how long until that changes. (The script stops after 100 cycles; this goes on.)
func SessionizePaused(elapsed time.Duration) (paused bool, untilChange time.Duration) {
	if elapsed < SessionizeWarmup {
		return false, SessionizeWarmup - elapsed
	}
	t := (elapsed - SessionizeWarmup) % (SessionizePause + SessionizeRun)
	if t < SessionizePause {
		return true, SessionizePause - t
	}
	return false, SessionizePause + SessionizeRun - t
}

package windower

import "time"

// SetCrash makes the service stop at its next batch without a final flush, as a crash would.
func (s *Service) SetCrash(crashed func() bool) { s.crashed = crashed }

// SetCrashMidFlush makes the service stop in the middle of a flush: after the groups were saved
// and before the checkpoint was, the worst moment for counting twice.
func (s *Service) SetCrashMidFlush(crashed func() bool) { s.crashMid = crashed }

// SetClock replaces the wall clock of every task (idle advance, flush timing).
func (s *Service) SetClock(now func() time.Time) {
	for _, k := range s.tasks {
		k.now = now
	}
}

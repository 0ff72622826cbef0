package redistest

import (
	"testing"
	"time"
)

// pollInterval is the pause between two checks of a condition.
const pollInterval = 25 * time.Millisecond

// waitFor checks cond until it reports done, and calls t.Fatalf after
// timeout with what and the last state cond described.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (done bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, state := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: %s: not done after %v; last state: %s", what, timeout, state)
		}
		time.Sleep(pollInterval)
	}
}

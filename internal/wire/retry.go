package wire

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Transient reports whether err, returned by a call made with ctx, may pass if the call is
// repeated: the connection failed, or Redis answered with a state that ends on its own
// (loading, busy, failing over). A context error is transient unless it is ctx's own: the
// client also reports a dial or handshake that timed out as a deadline exceeded.
func Transient(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil || errors.Is(err, rueidis.ErrClosing) || errors.Is(err, ErrMalformed) {
		return false
	}
	var re *rueidis.RedisError
	if errors.As(err, &re) {
		msg := re.Error()
		for _, p := range []string{"LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "READONLY", "CLUSTERDOWN", "NOREPLICAS"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	return true
}

// SleepBackoff waits before retry number attempt (0-based): 5 ms doubling up to 1 s. It
// reports false when ctx ended first.
func SleepBackoff(ctx context.Context, attempt int) bool {
	return Sleep(ctx, min(5*time.Millisecond<<min(attempt, 8), time.Second))
}

// Sleep waits d, reporting false when ctx ends first (or has ended, for d <= 0).
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// AsKindError turns a script's "WRONGKIND <kind>" error into a *KindError for name; other
// errors are returned as they are. want is the kind the caller expected; empty, it is the other
// kind than the one the name holds (an appending script names only what it found).
func AsKindError(err error, name string, want Kind) error {
	var re *rueidis.RedisError
	if !errors.As(err, &re) {
		return err
	}
	is, ok := strings.CutPrefix(re.Error(), "WRONGKIND ")
	if !ok {
		return err
	}
	is, _, _ = strings.Cut(is, " ") // Redis may add the script's location
	if want == "" {
		want = KindMap
		if Kind(is) == KindMap {
			want = KindChannel
		}
	}
	return &KindError{Name: name, Kind: Kind(is), Want: want}
}

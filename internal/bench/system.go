package bench

import (
	"context"
	"sync/atomic"
	"time"
)

// A system is what a measurement publishes through: redisync channels (redisyncSystem) or raw
// Redis pub/sub, the baseline (rawSystem). Both open their clients the same way (redisconn.Open,
// so with the same rueidis options), give each subscriber a client of its own, and publish
// from one client shared by every publishing goroutine.
type system interface {
	// name is "redisync" or "raw".
	name() string
	// open starts a publisher and one subscriber per tally on the channel called name. Each
	// subscriber hands every message it receives to its tally, from one goroutine.
	open(ctx context.Context, r *Runner, name string, tallies []*tally) (session, error)
	// settle is how long a measurement waits for more deliveries while subscribers are short
	// of messages and nothing arrives, before it counts what is missing as lost.
	settle(r *Runner) time.Duration
}

// A session is an open publisher and its subscribers.
type session interface {
	// publish makes one call that publishes msgs: a single message, or a batch in one round
	// trip. It returns once Redis has accepted them.
	publish(ctx context.Context, msgs [][]byte) error
	// pubsubChannel is the Redis pub/sub channel the subscribers listen on.
	pubsubChannel() string
	// stats returns the system's own counters so far (script calls, catch-ups…).
	stats() map[string]uint64
	// close stops the subscribers, waits until they no longer touch their tallies, and closes
	// every client. It reports a subscriber that ended before.
	close() error
}

// tally counts what one subscriber received. deliver runs on the subscriber's goroutine only;
// the atomics are read by the measurement meanwhile, the other fields once the session is
// closed.
type tally struct {
	base    time.Time // the Runner's clock origin
	latency bool      // keep a latency sample per measured message

	warm      atomic.Int64 // warm-up messages received
	measured  atomic.Int64 // measured messages received
	lastNanos atomic.Int64 // when the last measured message arrived, since base

	lastSeq    uint64  // seq of the last redisync event, to check that none is skipped
	outOfOrder int64   // redisync events whose seq did not follow the previous one
	resets     int64   // redisync reset events
	junk       int64   // messages the bench did not publish
	samples    []int64 // latencies in nanoseconds, publish call to delivery
}

// deliver records a message. seq is the message's redisync seq, or 0 for raw pub/sub.
func deliver[T string | []byte](t *tally, data T, seq uint64) {
	now := int64(time.Since(t.base))
	if seq != 0 {
		if seq != t.lastSeq+1 {
			t.outOfOrder++
		}
		t.lastSeq = seq
	}
	kind, _, sent, ok := header(data)
	switch {
	case !ok:
		t.junk++
	case kind == kindWarmUp:
		t.warm.Add(1)
	default:
		if t.latency {
			t.samples = append(t.samples, now-sent)
		}
		t.lastNanos.Store(now)
		t.measured.Add(1)
	}
}

// reset records a redisync reset event, after which the subscription continues after seq.
func (t *tally) reset(seq uint64) {
	t.resets++
	t.lastSeq = seq
}

package bench

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redisync/redisync/internal/wire"
)

// Bounds of a measurement's preparation.
const (
	warmUpTimeout  = 10 * time.Second // for the subscribers to subscribe and receive the warm-up
	warmUpMessages = 100              // published in a burst once every subscriber receives
	pollInterval   = time.Millisecond // between two looks at the subscribers' counts
)

// load is what one side of a measurement publishes.
type load struct {
	name        string        // the measurement: names its channels, profiles and progress lines
	publishers  int           // goroutines publishing at once, each one call at a time
	batch       int           // messages per publish call
	size        int           // bytes per message; 0: Config.Size
	rate        int           // messages/s handed to the publishers at a steady pace; 0: as fast as they can
	duration    time.Duration // how long to publish…
	messages    int           // …or exactly this many messages, when above 0
	latency     bool          // record the latency of every delivery
	subscribers int           // subscribers, each a client of its own; 0: Config.Subscribers
	onStart     func()        // called as the measured part begins (a Go benchmark resets its timer)
	onEnd       func()        // called as it ends
}

// total is the number of messages a paced load publishes.
func (ld load) total() int {
	if ld.messages > 0 {
		return ld.messages
	}
	return int(math.Round(float64(ld.rate) * ld.duration.Seconds()))
}

// measure runs ld through sys on a fresh channel: it opens the subscribers, waits until they
// receive, publishes, waits until every subscriber has everything (or, for raw pub/sub, until
// nothing more arrives), and reports what happened.
func (r *Runner) measure(ctx context.Context, sys system, ld load) (side Side, err error) {
	if ld.size == 0 {
		ld.size = r.cfg.Size
	}
	name := ld.name + "-" + sys.name()
	if ld.rate > 0 {
		name += "-" + strconv.Itoa(ld.rate)
	}
	what := fmt.Sprintf("%v", ld.duration)
	if ld.messages > 0 {
		what = fmt.Sprintf("%d messages", ld.messages)
	}
	r.progress("%s: %s, %s…", ld.name, sysLabel(sys.name(), ld.rate), what)
	defer func() {
		if derr := r.deleteChannel(context.WithoutCancel(ctx), name); err == nil {
			err = derr
		}
	}()

	tallies := make([]*tally, cmp.Or(ld.subscribers, r.cfg.Subscribers))
	for i := range tallies {
		tallies[i] = &tally{base: r.base, latency: ld.latency}
		if ld.latency {
			tallies[i].samples = make([]int64, 0, ld.total())
		}
	}
	sess, err := sys.open(ctx, r, name, tallies)
	if err != nil {
		return Side{}, fmt.Errorf("%s: open: %w", sys.name(), err)
	}
	closed := false
	defer func() {
		if !closed {
			sess.close()
		}
	}()
	if err := r.warmUp(ctx, sess, tallies, ld.size); err != nil {
		return Side{}, fmt.Errorf("%s: %w", sys.name(), err)
	}

	statsBefore := sess.stats()
	before, err := r.usage(ctx)
	if err != nil {
		return Side{}, fmt.Errorf("INFO: %w", err)
	}
	stopProfile, err := r.startProfile(name)
	if err != nil {
		return Side{}, err
	}
	if ld.onStart != nil {
		ld.onStart()
	}
	sched := readSched()
	start := r.now()
	published, pubEnd, acks, err := r.publish(ctx, sess, ld, start)
	if err == nil {
		err = r.drain(ctx, tallies, published, sys.settle(r))
	}
	schedAfter := readSched()
	if ld.onEnd != nil {
		ld.onEnd()
	}
	if perr := stopProfile(); err == nil {
		err = perr
	}
	if err != nil {
		return Side{}, fmt.Errorf("%s: %w", sys.name(), err)
	}
	after, err := r.usage(ctx)
	if err != nil {
		return Side{}, fmt.Errorf("INFO: %w", err)
	}
	stats := statsSince(sess.stats(), statsBefore)
	err = sess.close()
	closed = true
	if err != nil {
		return Side{}, fmt.Errorf("%s: a subscriber ended: %w", sys.name(), err)
	}
	side = newSide(sys.name(), published, start, pubEnd, tallies, after, before, stats)
	side.Rate = ld.rate
	side.Ack = latencyOf(acks)
	if ld.subscribers > 0 {
		side.Sched = schedAfter.since(sched)
	}
	return side, nil
}

// warmUp returns once every subscriber is subscribed and has received a burst of warm-up
// messages of size bytes, so that the measurement starts with every connection established and
// used.
func (r *Runner) warmUp(ctx context.Context, sess session, tallies []*tally, size int) error {
	deadline := time.Now().Add(warmUpTimeout)
	for {
		n, err := r.numsub(ctx, sess.pubsubChannel())
		if err != nil {
			return fmt.Errorf("PUBSUB NUMSUB: %w", err)
		}
		if n >= int64(len(tallies)) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("warm-up: %d of %d subscribers subscribed within %v", n, len(tallies), warmUpTimeout)
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
	buf := [][]byte{newPayload(size)}
	stamp(buf[0], kindWarmUp, 0, 0)
	sent := int64(0)
	send := func() error {
		if err := sess.publish(ctx, buf); err != nil {
			return fmt.Errorf("warm-up: publish: %w", err)
		}
		sent++
		return nil
	}
	// One message, again every 100 ms, until every subscriber receives; then a burst.
	for i := 0; leastWarm(tallies) == 0; i++ {
		if i%20 == 0 {
			if err := send(); err != nil {
				return err
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("warm-up: a subscriber received none of %d messages within %v", sent, warmUpTimeout)
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
	for range warmUpMessages {
		if err := send(); err != nil {
			return err
		}
	}
	for least := leastWarm(tallies); least < sent; least = leastWarm(tallies) {
		if time.Now().After(deadline) {
			return fmt.Errorf("warm-up: a subscriber received %d of %d messages within %v", least, sent, warmUpTimeout)
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
	return nil
}

func leastWarm(tallies []*tally) int64 {
	least := int64(math.MaxInt64)
	for _, t := range tallies {
		least = min(least, t.warm.Load())
	}
	return least
}

// publish publishes ld and returns how many messages Redis accepted, when the last reply came
// (since the Runner's base), and how long each call took.
func (r *Runner) publish(ctx context.Context, sess session, ld load, start int64) (published, end int64, acks []int64, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next, done atomic.Int64
		stop       atomic.Bool
		once       sync.Once
		wg         sync.WaitGroup
		mu         sync.Mutex // guards acks
	)
	fail := func(e error) {
		once.Do(func() {
			err = e
			stop.Store(true)
			cancel()
		})
	}
	var jobs chan int64 // indexes due, when paced
	switch {
	case ld.rate > 0:
		jobs = make(chan int64, 1<<16)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(jobs)
			r.pace(ctx, jobs, ld.total(), ld.rate, start)
		}()
	case ld.messages == 0:
		t := time.AfterFunc(ld.duration, func() { stop.Store(true) })
		defer t.Stop()
	}
	for range ld.publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bufs := make([][]byte, ld.batch)
			for i := range bufs {
				bufs[i] = newPayload(ld.size)
			}
			var mine []int64 // call durations
			defer func() {
				mu.Lock()
				acks = append(acks, mine...)
				mu.Unlock()
			}()
			for {
				var first, n int64
				if jobs != nil {
					i, ok := <-jobs
					if !ok || stop.Load() {
						return
					}
					first, n = i, 1
				} else {
					if stop.Load() {
						return
					}
					n = int64(ld.batch)
					first = next.Add(n) - n
					if ld.messages > 0 {
						if first >= int64(ld.messages) {
							return
						}
						n = min(n, int64(ld.messages)-first)
					}
				}
				sent := r.now()
				for j := range n {
					stamp(bufs[j], kindMeasured, uint64(first+j), sent)
				}
				if err := sess.publish(ctx, bufs[:n]); err != nil {
					fail(fmt.Errorf("publish: %w", err))
					return
				}
				mine = append(mine, r.now()-sent)
				done.Add(n)
			}
		}()
	}
	wg.Wait()
	return done.Load(), r.now(), acks, err
}

// pace sends the indexes 0..n-1 to jobs at rate per second from start. The clock's resolution
// (about a millisecond for sleeps) makes the pace come in small bursts of what is due.
func (r *Runner) pace(ctx context.Context, jobs chan<- int64, n, rate int, start int64) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for i := range n {
		due := start + int64(float64(i)*1e9/float64(rate))
		if d := due - r.now(); d > 0 {
			t.Reset(time.Duration(d))
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
		select {
		case jobs <- int64(i):
		case <-ctx.Done():
			return
		}
	}
}

// drain waits until every subscriber has received published measured messages, or until
// nothing arrived for settle.
func (r *Runner) drain(ctx context.Context, tallies []*tally, published int64, settle time.Duration) error {
	last, changed := int64(-1), time.Now()
	for {
		total, complete := int64(0), true
		for _, t := range tallies {
			m := t.measured.Load()
			total += m
			complete = complete && m >= published
		}
		if complete {
			return nil
		}
		if total != last {
			last, changed = total, time.Now()
		} else if time.Since(changed) > settle {
			return nil
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
}

// now is the time since the Runner's base, the clock of the timestamps in messages.
func (r *Runner) now() int64 { return int64(time.Since(r.base)) }

// sleep waits d, returning ctx's error when it ends first.
func sleep(ctx context.Context, d time.Duration) error {
	if !wire.Sleep(ctx, d) {
		return ctx.Err()
	}
	return nil
}

// newSide computes what one side of a measurement achieved.
func newSide(system string, published, start, pubEnd int64, tallies []*tally, after, before usage, stats map[string]uint64) Side {
	s := Side{System: system, Published: published, Stats: stats}
	last := start
	least := int64(math.MaxInt64)
	var samples []int64
	for _, t := range tallies {
		m := t.measured.Load()
		s.Delivered = append(s.Delivered, m)
		s.Lost += max(0, published-m)
		s.OutOfOrder += t.outOfOrder
		s.Resets += t.resets
		s.Junk += t.junk
		last = max(last, t.lastNanos.Load())
		least = min(least, m)
		samples = append(samples, t.samples...)
	}
	s.Seconds = time.Duration(last - start).Seconds()
	s.PublishSeconds = time.Duration(pubEnd - start).Seconds()
	if s.Seconds > 0 {
		s.Throughput = float64(least) / s.Seconds
	}
	if s.PublishSeconds > 0 {
		s.PublishRate = float64(published) / s.PublishSeconds
	}
	s.Latency = latencyOf(samples)
	client, redis, commands := after.since(before)
	s.ClientCPUSeconds, s.RedisCPUSeconds, s.Commands = client.Seconds(), redis.Seconds(), commands
	return s
}

// statsSince returns the counters of now that grew since before.
func statsSince(now, before map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range now {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// latencyOf summarizes latency samples in nanoseconds; nil when there are none.
func latencyOf(samples []int64) *Latency {
	n := len(samples)
	if n == 0 {
		return nil
	}
	slices.Sort(samples)
	q := func(p float64) float64 {
		i := min(max(int(math.Ceil(p*float64(n)))-1, 0), n-1)
		return float64(samples[i]) / 1e3
	}
	return &Latency{Samples: n, P50: q(0.50), P90: q(0.90), P99: q(0.99), P999: q(0.999), Max: float64(samples[n-1]) / 1e3}
}

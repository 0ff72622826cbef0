package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/channel"
)

// stormSample is how often the storm scenario reads Redis's CPU time and command counters to
// find its busiest interval.
const stormSample = 100 * time.Millisecond

// stormPatience is how much longer than other redisync measurements the storm waits for
// deliveries once none arrive: on a loaded machine, 200 clients catching up at once have
// been seen to all stall for more than the usual 4 s (their reads timing out and backing
// off), and a stall is not a loss.
const stormPatience = 10 * time.Second

// runStorm subscribes Config.Clients clients (each a channel.Client and a Redis client of its
// own) to one channel and warms them up, then cuts every one of them off pub/sub at once with
// CLIENT KILL TYPE pubsub, publishes Config.StormMessages in batches while their taps hold back
// new pub/sub connections, and lets them all reconnect at once: each must then catch up on
// every message from the log. It times them from the reconnect to the last delivery on the
// last client, and samples Redis meanwhile for its busiest interval. Raw pub/sub has no
// counterpart: what it publishes while its subscribers are away is gone.
//
// CLIENT KILL TYPE pubsub kills every pub/sub connection of the Redis; the bench uses it only
// when the Redis had none before the clients subscribed (always so with the redis-server the
// bench starts), and otherwise kills the connections that appeared meanwhile one by one, in
// one pipeline.
func runStorm(ctx context.Context, r *Runner, res *Result) (err error) {
	n, msgs := r.cfg.Clients, r.cfg.StormMessages
	res.Params = Params{Size: r.cfg.Size, Subscribers: n, Messages: msgs}
	name := res.Scenario + "-redisync"
	defer func() {
		if derr := r.deleteChannel(context.WithoutCancel(ctx), name); err == nil {
			err = derr
		}
	}()
	others, err := r.pubsubClients(ctx)
	if err != nil {
		return err
	}
	r.progress("%s: %d clients subscribing…", res.Scenario, n)
	tallies := make([]*tally, n)
	for i := range tallies {
		tallies[i] = &tally{base: r.base}
	}
	sys := redisyncSystem{tapped: true}
	opened, err := sys.open(ctx, r, name, tallies)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	sess := opened.(*redisyncSession)
	closed := false
	defer func() {
		if !closed {
			sess.close()
		}
	}()
	if err := r.warmUp(ctx, sess, tallies, r.cfg.Size); err != nil {
		return err
	}

	r.progress("%s: cutting %d clients off pub/sub, publishing %d messages, letting them back…", res.Scenario, n, msgs)
	for _, tp := range sess.taps {
		tp.hold()
	}
	if err := r.killPubsub(ctx, others); err != nil {
		return err
	}
	if left, err := r.numsub(ctx, sess.pubsubChannel()); err != nil || left != 0 {
		return fmt.Errorf("after CLIENT KILL: %d subscribers left (%v)", left, err)
	}
	killed := r.now()
	batch := max(1, min(channel.DefaultMaxBatchMessages, channel.DefaultMaxBatchBytes/r.cfg.Size))
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = newPayload(r.cfg.Size)
	}
	for sent := 0; sent < msgs; {
		k := min(batch, msgs-sent)
		now := r.now()
		for j := range k {
			stamp(bufs[j], kindMeasured, uint64(sent+j), now)
		}
		if _, err := sess.pub.PublishBatch(ctx, name, bufs[:k]); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		sent += k
	}
	published := r.now()

	statsBefore := sess.stats()
	before, err := r.usage(ctx)
	if err != nil {
		return fmt.Errorf("INFO: %w", err)
	}
	stopProfile, err := r.startProfile(name)
	if err != nil {
		return err
	}
	peaks := r.watchPeaks(ctx, stormSample)
	start := r.now()
	for _, tp := range sess.taps {
		tp.release()
	}
	err = r.drain(ctx, tallies, int64(msgs), redisyncSystem{}.settle(r)+stormPatience)
	peakCPU, peakCommands := peaks()
	if perr := stopProfile(); err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	after, err := r.usage(ctx)
	if err != nil {
		return fmt.Errorf("INFO: %w", err)
	}
	stats := statsSince(sess.stats(), statsBefore)
	err = sess.close()
	closed = true
	if err != nil {
		return fmt.Errorf("a subscriber ended: %w", err)
	}
	side := newSide("redisync", int64(msgs), start, start, tallies, after, before, stats)
	side.PublishSeconds = time.Duration(published - killed).Seconds()
	side.PublishRate = float64(msgs) / side.PublishSeconds
	side.PeakRedisCPU, side.PeakCommandsPerSecond = peakCPU, peakCommands
	res.Sides = []Side{side}
	res.Rows = []Row{
		{Metric: "time until every client is current", Unit: "s", Redisync: side.Seconds},
		{Metric: "deliveries, all clients", Unit: "msgs/s", Redisync: float64(msgs) * float64(n) / side.Seconds},
		{Metric: "Redis CPU at its busiest", Unit: "%", Redisync: 100 * peakCPU},
		{Metric: "Redis commands at their busiest", Unit: "cmds/s", Redisync: peakCommands},
		{Metric: "Redis CPU, whole catch-up", Unit: "%", Redisync: 100 * side.RedisCPUSeconds / side.Seconds},
	}
	return nil
}

// pubsubClients returns the ids of the pub/sub connections of the Redis.
func (r *Runner) pubsubClients(ctx context.Context) (map[int64]bool, error) {
	s, err := r.admin.Do(ctx, r.admin.B().ClientList().TypePubsub().Build()).ToString()
	if err != nil {
		return nil, fmt.Errorf("CLIENT LIST TYPE pubsub: %w", err)
	}
	ids := map[int64]bool{}
	for line := range strings.Lines(s) {
		for field := range strings.FieldsSeq(line) {
			if v, ok := strings.CutPrefix(field, "id="); ok {
				if id, err := strconv.ParseInt(v, 10, 64); err == nil {
					ids[id] = true
				}
			}
		}
	}
	return ids, nil
}

// killPubsub kills the pub/sub connections of the Redis but others: with CLIENT KILL TYPE
// pubsub when others is empty, else one CLIENT KILL ID each, in one pipeline.
func (r *Runner) killPubsub(ctx context.Context, others map[int64]bool) error {
	if len(others) == 0 {
		if err := r.admin.Do(ctx, r.admin.B().ClientKill().TypePubsub().Build()).Error(); err != nil {
			return fmt.Errorf("CLIENT KILL TYPE pubsub: %w", err)
		}
		return nil
	}
	ids, err := r.pubsubClients(ctx)
	if err != nil {
		return err
	}
	var cmds rueidis.Commands
	for id := range ids {
		if !others[id] {
			cmds = append(cmds, r.admin.B().ClientKill().Id(id).Build())
		}
	}
	for _, res := range r.admin.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			return fmt.Errorf("CLIENT KILL ID: %w", err)
		}
	}
	return nil
}

// watchPeaks reads Redis's CPU time and command counters every interval until the returned
// function is called, which returns the highest CPU (in cores) and commands per second
// between two readings (the bench's INFO aside).
func (r *Runner) watchPeaks(ctx context.Context, interval time.Duration) func() (cpu, commands float64) {
	ctx, cancel := context.WithCancel(ctx)
	var (
		wg             sync.WaitGroup
		peakCPU, peakC float64
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		prev, err := r.usageClocked(ctx)
		for err == nil {
			last := false
			select {
			case <-ctx.Done():
				last = true // the last, partial interval counts too
			case <-t.C:
			}
			var u usage
			if u, err = r.usageClocked(context.WithoutCancel(ctx)); err != nil {
				return
			}
			secs := (u.clock - prev.clock).Seconds()
			if secs < interval.Seconds()/2 { // too short to say anything: a tick that waited for a slow INFO
				if last {
					return
				}
				continue
			}
			_, redis, commands := u.since(prev)
			var calls int64
			for name, c := range commands {
				if name != benchOwn {
					calls += c.Calls
				}
			}
			peakCPU = max(peakCPU, redis.Seconds()/secs)
			peakC = max(peakC, float64(calls)/secs)
			prev = u
			if last {
				return
			}
		}
	}()
	return func() (float64, float64) {
		cancel()
		wg.Wait()
		return peakCPU, peakC
	}
}

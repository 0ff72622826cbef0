package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/channel"
)

// keepAlive and benchOwn are the commands an idle side's figures leave out of what its
// clients sent: rueidis's keep-alive PING on every idle connection (raw pub/sub's clients send
// it alike) and the bench's own INFO.
const (
	keepAlive = "ping"
	benchOwn  = "info"
)

// runIdle holds Config.IdleSubscriptions idle subscriptions, each on a channel of its own that
// holds one message, spread evenly over Config.IdleClients clients, and counts what Redis runs
// over Config.IdleWindow (INFO commandstats before and after): redisync with
// channel.Config.IdleCheck set to Config.IdleCheck, then raw pub/sub (SUBSCRIBE of the same
// number of channels on as many clients). Its baseline is computed, not measured: the design
// before one check per client, which read the head of each quiet subscription's channel with a
// command of its own every IdleCheck. The target is at most one command per client per
// IdleCheck.
//
// Commands counted as sent by redisync's clients are those whose names the clients' taps saw
// go out (the idle check's script call), with the number of calls INFO commandstats gives; the
// commands the script runs inside Redis (an HMGET per channel) are in the total only, and so
// are the keep-alive PINGs.
func runIdle(ctx context.Context, r *Runner, res *Result) error {
	n, subs, check := r.cfg.IdleClients, r.cfg.IdleSubscriptions, r.cfg.IdleCheck
	res.Params = Params{Subscribers: subs, Clients: n, DurationSeconds: r.cfg.IdleWindow.Seconds(), IdleCheckSeconds: check.Seconds()}
	rs, err := r.idleRedisync(ctx, res.Scenario+"-redisync")
	var raw Side
	if err == nil {
		raw, err = r.idleRaw(ctx, res.Scenario+"-raw")
	}
	res.Sides = sides(rs, raw)
	if err != nil {
		return err
	}
	perCheck := func(perSecond float64) float64 { return perSecond * check.Seconds() / float64(n) }
	oldPerSecond := float64(subs) / check.Seconds() // one command per subscription per IdleCheck
	limit := float64(n) / check.Seconds()           // one command per client per IdleCheck
	sent := compareRow("idle-check commands", 0, "cmds/s", rs.SentPerSecond, oldPerSecond)
	sent.Baseline = baselineOldIdle
	sent = sent.below(limit, true, fmt.Sprintf("≤ %s/s (1 per client per IdleCheck)", thousands(limit)), rs)
	per := compareRow("commands per client per IdleCheck", 0, "cmds", perCheck(rs.SentPerSecond), perCheck(oldPerSecond))
	per.Baseline = baselineOldIdle
	per = per.below(1, true, "≤ 1", rs)
	res.Rows = []Row{sent, per,
		compareRow("Redis commands, all", 0, "cmds/s", rs.CommandsPerSecond, raw.CommandsPerSecond),
		compareRow("Redis CPU", 0, "%", 100*rs.RedisCPUSeconds/rs.Seconds, 100*raw.RedisCPUSeconds/raw.Seconds),
	}
	return nil
}

// baselineOldIdle names the computed baseline of the idle scenario.
const baselineOldIdle = "old design, computed"

// idleChannel is the name of idle subscription i's channel.
func idleChannel(name string, i int) string { return fmt.Sprintf("%s-%d", name, i) }

// idleRedisync measures redisync's idle subscriptions.
func (r *Runner) idleRedisync(ctx context.Context, name string) (side Side, err error) {
	n, subs := r.cfg.IdleClients, r.cfg.IdleSubscriptions
	r.progress("%s: redisync, %d subscriptions on %d clients, %v…", name, subs, n, r.cfg.IdleWindow)
	defer func() {
		if derr := r.deleteKeys(context.WithoutCancel(ctx), r.prefix+":{"+name+"-*"); err == nil {
			err = derr
		}
	}()
	var (
		rcs     []rueidis.Client
		clients []*channel.Client
		taps    []*tap
		running []*channel.Subscription
	)
	defer func() {
		for _, s := range running {
			s.Close()
		}
		for _, cl := range clients {
			cl.Close()
		}
		for _, rc := range rcs {
			rc.Close()
		}
	}()
	// One message on every channel, so that each subscription delivers one and a head read
	// finds a head, as for a channel in use.
	pub, err := r.openChannel(ctx, &rcs)
	if err != nil {
		return side, err
	}
	clients = append(clients, pub)
	if err := publishEach(subs, func(i int) error {
		msg := newPayload(r.cfg.Size)
		stamp(msg, kindWarmUp, uint64(i), 0)
		_, err := pub.Publish(ctx, idleChannel(name, i), msg)
		return err
	}); err != nil {
		return side, fmt.Errorf("redisync: publish: %w", err)
	}
	cfg := r.cfg.Channel
	cfg.IdleCheck = r.cfg.IdleCheck
	tallies := make([]*tally, subs)
	for c := range n {
		cl, tp, err := r.openTapped(ctx, &rcs, cfg)
		if err != nil {
			return side, err
		}
		clients, taps = append(clients, cl), append(taps, tp)
		for i := c; i < subs; i += n {
			t := &tally{base: r.base}
			tallies[i] = t
			sub, err := cl.Subscribe(ctx, idleChannel(name, i), channel.After(channel.Position{}), func(_ context.Context, ev channel.Event) error {
				if ev.Reset != nil {
					t.reset(ev.Seq)
				} else {
					deliver(t, ev.Data, ev.Seq)
				}
				return nil
			})
			if err != nil {
				return side, err
			}
			running = append(running, sub)
		}
	}
	if err := waitWarm(ctx, tallies, nil); err != nil {
		return side, fmt.Errorf("redisync: %w", err)
	}
	// Every subscription is quiet from here on: two idle checks settle the clients into their
	// steady rhythm.
	if err := sleep(ctx, 2*r.cfg.IdleCheck); err != nil {
		return side, err
	}
	sentBefore := int64(0)
	for _, tp := range taps {
		sentBefore += tp.sentCount()
	}
	side, err = r.idleWindow(ctx, "redisync", subs, func() map[string]struct{} {
		names := map[string]struct{}{}
		for _, tp := range taps {
			for k := range tp.sentNames() {
				names[k] = struct{}{}
			}
		}
		return names
	})
	if err != nil {
		return side, err
	}
	sentAfter := int64(0)
	for _, tp := range taps {
		sentAfter += tp.sentCount()
	}
	side.Stats = map[string]uint64{"sent_counted_by_clients": uint64(sentAfter - sentBefore)}
	channelStats(side.Stats, clients[1:])
	for _, sub := range running {
		select {
		case <-sub.Done():
			return side, fmt.Errorf("redisync: a subscription ended: %w", sub.Err())
		default:
		}
	}
	for _, t := range tallies {
		side.Resets += t.resets
		side.OutOfOrder += t.outOfOrder
		side.Junk += t.junk
	}
	return side, nil
}

// idleRaw measures raw pub/sub's idle subscriptions: the same number of channels, SUBSCRIBEd
// by as many clients, each channel on one of them.
func (r *Runner) idleRaw(ctx context.Context, name string) (Side, error) {
	n, subs := r.cfg.IdleClients, r.cfg.IdleSubscriptions
	r.progress("%s: raw pub/sub, %d subscriptions on %d clients, %v…", name, subs, n, r.cfg.IdleWindow)
	sctx, cancel := context.WithCancel(context.Background())
	var (
		rcs []rueidis.Client
		wg  sync.WaitGroup
	)
	defer func() {
		cancel()
		wg.Wait()
		for _, rc := range rcs {
			rc.Close()
		}
	}()
	pub, err := r.openRedis(ctx)
	if err != nil {
		return Side{}, err
	}
	rcs = append(rcs, pub)
	tallies := make([]*tally, subs)
	for c := range n {
		rc, err := r.openRedis(ctx)
		if err != nil {
			return Side{}, err
		}
		rcs = append(rcs, rc)
		byChannel := map[string]*tally{} // this client's channels
		var names []string
		for i := c; i < subs; i += n {
			tallies[i] = &tally{base: r.base}
			names = append(names, r.rawName(idleChannel(name, i)))
			byChannel[names[len(names)-1]] = tallies[i]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sctx.Err() == nil {
				_ = rc.Receive(sctx, rc.B().Subscribe().Channel(names...).Build(), func(m rueidis.PubSubMessage) {
					if t := byChannel[m.Channel]; t != nil {
						deliver(t, m.Message, 0)
					}
				})
			}
		}()
	}
	// A message on every channel, again every 100 ms to those that missed it, until each
	// subscriber has one.
	msg := newPayload(r.cfg.Size)
	stamp(msg, kindWarmUp, 0, 0)
	err = waitWarm(ctx, tallies, func(missing []int) error {
		return publishEach(len(missing), func(j int) error {
			ch := r.rawName(idleChannel(name, missing[j]))
			return pub.Do(ctx, pub.B().Publish().Channel(ch).Message(string(msg)).Build()).Error()
		})
	})
	if err != nil {
		return Side{}, fmt.Errorf("raw: %w", err)
	}
	if err := sleep(ctx, 2*r.cfg.IdleCheck); err != nil {
		return Side{}, err
	}
	return r.idleWindow(ctx, "raw", subs, func() map[string]struct{} { return nil })
}

// idleWindow reads Redis's usage, waits Config.IdleWindow and reads it again; sent names the
// commands the side's clients sent themselves.
func (r *Runner) idleWindow(ctx context.Context, system string, subs int, sent func() map[string]struct{}) (Side, error) {
	before, err := r.usage(ctx)
	if err != nil {
		return Side{}, fmt.Errorf("INFO: %w", err)
	}
	start := time.Now()
	if err := sleep(ctx, r.cfg.IdleWindow); err != nil {
		return Side{}, err
	}
	after, err := r.usage(ctx)
	if err != nil {
		return Side{}, fmt.Errorf("INFO: %w", err)
	}
	secs := time.Since(start).Seconds()
	client, redis, commands := after.since(before)
	s := Side{System: system, Subscriptions: subs, Seconds: secs,
		ClientCPUSeconds: client.Seconds(), RedisCPUSeconds: redis.Seconds(), Commands: commands}
	names := sent()
	var all, mine int64
	for name, c := range commands {
		if name == benchOwn {
			continue
		}
		all += c.Calls
		if _, ok := names[name]; ok && name != keepAlive {
			mine += c.Calls
		}
	}
	s.CommandsPerSecond = float64(all) / secs
	s.SentPerSecond = float64(mine) / secs
	s.KeepAlivePerSecond = float64(commands[keepAlive].Calls) / secs
	return s, nil
}

// waitWarm waits until every tally has received a warm-up message; every 100 ms meanwhile,
// resend (when not nil) is called with the indexes of those that have not.
func waitWarm(ctx context.Context, tallies []*tally, resend func(missing []int) error) error {
	deadline := time.Now().Add(warmUpTimeout)
	for i := 0; ; i++ {
		var missing []int
		for j, t := range tallies {
			if t.warm.Load() == 0 {
				missing = append(missing, j)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("warm-up: %d of %d subscribers received nothing within %v", len(missing), len(tallies), warmUpTimeout)
		}
		if resend != nil && i%20 == 0 {
			if err := resend(missing); err != nil {
				return fmt.Errorf("warm-up: publish: %w", err)
			}
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
}

// publishEach calls publish(i) for i in 0..n-1 from 16 goroutines, and returns the first
// error.
func publishEach(n int, publish func(i int) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex // guards next and err
		next int
		err  error
	)
	for range min(n, 16) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := i >= n || err != nil
				mu.Unlock()
				if stop {
					return
				}
				if e := publish(i); e != nil {
					mu.Lock()
					if err == nil {
						err = e
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return err
}

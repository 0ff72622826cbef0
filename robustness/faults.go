package robustness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Fault kinds.
const (
	FaultKillPubSub     = "kill-pubsub"     // CLIENT KILL TYPE pubsub
	FaultKillNormal     = "kill-normal"     // CLIENT KILL TYPE normal
	FaultRestartAOF     = "restart-aof"     // SIGKILL Redis, restart it with its append-only file
	FaultRestartWipe    = "restart-wipe"    // SIGKILL Redis, restart it empty (no persistence)
	FaultPartition      = "partition"       // one node's proxy refuses and cuts everything
	FaultStall          = "stall"           // one node's proxy holds every byte: a silent connection
	FaultLatency        = "latency"         // one node's proxy delays every chunk
	FaultSlowConsumer   = "slow-consumer"   // one node's pub/sub stalls during a burst; Redis kicks it
	FaultDebugSleep     = "debug-sleep"     // DEBUG SLEEP: Redis stops answering anyone
	FaultCrash          = "crash"           // SIGKILL a node process, restart it
	FaultReplicaRestart = "replica-restart" // close an in-process node's Map and load a new one over a slow link
)

// defaultPubSubLimit is Redis's default client-output-buffer-limit for pub/sub clients.
const defaultPubSubLimit = "pubsub 32mb 8mb 60"

// faultKinds returns the faults of a scenario.
func faultKinds(scenario string) []string {
	if isFailoverScenario(scenario) {
		return failoverKinds(scenario)
	}
	kinds := []string{FaultKillPubSub, FaultKillNormal, FaultPartition, FaultStall, FaultLatency,
		FaultSlowConsumer, FaultDebugSleep, FaultCrash, FaultReplicaRestart}
	if scenario == ScenarioWipe {
		return append(kinds, FaultRestartWipe)
	}
	return append(kinds, FaultRestartAOF)
}

// runFaults injects faults from the seeded schedule until the fault period is over (or
// RunConfig.Rounds rounds are done): every kind once in a shuffled order, then again, each
// healed before the next begins.
func (c *cluster) runFaults() {
	until := c.start.Add(c.cfg.Faults)
	var bag []string
	rounds := 0
	for {
		gap := 200*time.Millisecond + time.Duration(c.rnd.Int64N(int64(1300*time.Millisecond)))
		if time.Now().Add(gap).After(until) || (len(bag) == 0 && c.cfg.Rounds > 0 && rounds == c.cfg.Rounds) {
			return
		}
		time.Sleep(gap)
		if len(bag) == 0 {
			rounds++
			bag = faultKinds(c.cfg.Scenario)
			c.rnd.Shuffle(len(bag), func(i, j int) { bag[i], bag[j] = bag[j], bag[i] })
		}
		kind := bag[0]
		bag = bag[1:]
		c.inject(kind)
	}
}

// span returns a duration between lo and hi drawn from the schedule.
func (c *cluster) span(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(c.rnd.Int64N(int64(hi-lo)+1))
}

// inject applies one fault and heals it, recording it.
func (c *cluster) inject(kind string) {
	t := c.t
	names, proxies := c.targets()
	ti := c.rnd.IntN(len(names))
	if isFailoverKind(kind) {
		c.settle() // before the fault's time starts
	}
	rec := faultRecord{Kind: kind, Start: c.since(time.Now())}
	switch kind {
	case FaultKillPubSub:
		rec.Detail = fmt.Sprintf("%d connections", c.clientKill("pubsub"))
	case FaultKillNormal:
		rec.Detail = fmt.Sprintf("%d connections", c.clientKill("normal"))
	case FaultSentinelFailover, FaultSentinelKill, FaultClusterFailover, FaultClusterKill, FaultMigrateSlot:
		c.watch.injecting(true, kind != FaultClusterFailover && kind != FaultMigrateSlot)
		c.injectFailover(kind, &rec)
		c.watch.injecting(false, false)
	case FaultRestartAOF:
		held := c.holdSSE()
		c.srv.Restart()
		c.releaseSSE(held)
	case FaultRestartWipe:
		held := c.holdSSE()
		w := wipeWindow{KillStart: time.Now().UnixNano()}
		c.srv.Restart()
		w.RestartDone = time.Now().UnixNano()
		c.wipes = append(c.wipes, w)
		c.releaseSSE(held)
		rec.Detail = fmt.Sprintf("%d SSE clients resume across it", len(held))
	case FaultPartition:
		d := c.span(time.Second, 3*time.Second)
		rec.Target, rec.Detail = names[ti], d.String()
		proxies[ti].SetBlocked(true)
		time.Sleep(d)
		proxies[ti].SetBlocked(false)
	case FaultStall:
		d := c.span(time.Second, 3*time.Second)
		rec.Target, rec.Detail = names[ti], d.String()
		proxies[ti].SetStalled(true)
		time.Sleep(d)
		proxies[ti].SetStalled(false)
	case FaultLatency:
		// Half of the time a slow link, half of the time slower than the clients' timeout
		// (1 s): requests then arrive after their caller gave up and retried.
		l, d := c.span(20*time.Millisecond, 80*time.Millisecond), c.span(time.Second, 3*time.Second)
		if c.rnd.IntN(2) == 0 {
			l = c.span(1100*time.Millisecond, 1600*time.Millisecond)
		}
		rec.Target, rec.Detail = names[ti], fmt.Sprintf("%v for %v", l, d)
		proxies[ti].SetLatency(l)
		time.Sleep(d)
		proxies[ti].SetLatency(0)
	case FaultDebugSleep:
		d := c.span(500*time.Millisecond, 2*time.Second)
		rec.Detail = d.String()
		if _, err := c.srv.Do("DEBUG", "SLEEP", fmt.Sprintf("%.3f", d.Seconds())); err != nil {
			rec.Detail += " (" + err.Error() + ")"
		}
	case FaultSlowConsumer:
		rec.Target, rec.Detail = names[ti], c.slowConsumer(proxies[ti].SetStalled)
	case FaultCrash:
		p := c.procs[c.rnd.IntN(len(c.procs))]
		d := c.span(0, time.Second)
		rec.Target, rec.Detail = p.name, fmt.Sprintf("incarnation %d killed, down %v", p.inc, d)
		p.kill()
		time.Sleep(d)
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
	case FaultReplicaRestart:
		n := c.in[c.rnd.IntN(len(c.in))]
		l := c.span(20*time.Millisecond, 50*time.Millisecond)
		rec.Target = n.name
		if n.proxy == nil {
			l = 0 // a failover deployment: no proxy to slow the link with
		} else {
			n.proxy.SetLatency(l)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := n.n.reopenMap(ctx)
		cancel()
		if n.proxy != nil {
			n.proxy.SetLatency(0)
		}
		rec.Detail = fmt.Sprintf("reloaded over a %v link", l)
		if err != nil {
			rec.Detail += fmt.Sprintf(" (not ready: %v)", err)
		}
	default:
		t.Fatalf("unknown fault %q", kind)
	}
	rec.End = c.since(time.Now())
	c.faults = append(c.faults, rec)
}

// holdSSE disconnects some SSE clients (drawn from the schedule, at least one) and keeps them
// disconnected, so that they resume across the restart that follows from an id of the
// history before it.
func (c *cluster) holdSSE() []*sseClient {
	var held []*sseClient
	for i, s := range c.sse {
		if c.rnd.IntN(2) == 0 || (i == len(c.sse)-1 && len(held) == 0) {
			held = append(held, s)
		}
	}
	for _, s := range held {
		s.hold()
	}
	return held
}

// releaseSSE lets held clients resume, after a pause (drawn from the schedule) during which
// the new history may grow past the seq they resume after.
func (c *cluster) releaseSSE(held []*sseClient) {
	d := c.span(0, time.Second)
	time.AfterFunc(d, func() {
		for _, s := range held {
			s.release()
		}
	})
}

// slowConsumer lowers the pub/sub output-buffer limit to 32 kB, stalls one node's link and
// publishes 16 kB envelopes until Redis disconnects the stalled subscriber for overcoming the
// limit (or 12 MB went by), then heals.
func (c *cluster) slowConsumer(stall func(bool)) string {
	logPath := filepath.Join(c.srv.Dir(), "redis.log")
	offset := fileSize(logPath)
	if _, err := c.srv.Do("CONFIG", "SET", "client-output-buffer-limit", "pubsub 32kb 0 0"); err != nil {
		return "CONFIG SET failed: " + err.Error()
	}
	stall(true)
	sent, kicked := 0, false
	for sent < 12<<20 && !kicked {
		if err := c.injectorPublish(4000, 4); err != nil {
			break
		}
		sent += 16000
		if sent%(256<<10) < 16000 {
			kicked = logSince(logPath, offset, "overcoming of output buffer limits")
		}
	}
	kicked = kicked || logSince(logPath, offset, "overcoming of output buffer limits")
	stall(false)
	_, _ = c.srv.Do("CONFIG", "SET", "client-output-buffer-limit", defaultPubSubLimit)
	return fmt.Sprintf("%d kB published, kicked by Redis: %v", sent>>10, kicked)
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logSince reports whether the file at path holds s after offset.
func logSince(path string, offset int64, s string) bool {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return false
	}
	return strings.Contains(string(b[offset:]), s)
}

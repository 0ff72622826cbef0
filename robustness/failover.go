package robustness

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/internal/redistest"
)

// The failover deployments: the run's Redis is a Sentinel set (redistest.StartSentinel: one
// master, two replicas, three sentinels) or a Redis Cluster (redistest.StartCluster: three
// masters, one replica each), as production runs it, and the faults are the failovers that
// production sees. The nodes reach Redis as applications do, through the deployment's URL
// (the sentinels, or the cluster's seeds), not through a proxy of their own: a client
// follows the master the sentinels name, or each slot's master, wherever it moves. On a
// cluster the channel clients use sharded pub/sub (channel.Config.Sharded).
//
// Redis replicates asynchronously, so some failovers lose writes Redis acknowledged: the
// new master never received them, and it hands out the same seqs again, under the same
// epoch, to other writes. The library must tell every subscriber that delivered them, with
// a rewound reset that covers exactly them (PROTOCOL.md, section 5, "Rewind"); the checkers
// (check_failover.go) hold it to that and count what was lost.

// Scenarios of the failover deployments (RunConfig.Scenario).
const (
	// ScenarioSentinel runs on a Sentinel set without persistence.
	ScenarioSentinel = "sentinel"
	// ScenarioCluster runs on a three-master Redis Cluster without persistence.
	ScenarioCluster = "cluster"
)

// Deployments, as EnvDeploy lists them.
const (
	DeploySingle   = "single" // one redis-server, scenario aof or wipe by seed
	DeploySentinel = ScenarioSentinel
	DeployCluster  = ScenarioCluster
)

// isFailoverScenario reports whether scenario runs on a deployment with failovers.
func isFailoverScenario(scenario string) bool {
	return scenario == ScenarioSentinel || scenario == ScenarioCluster
}

// deployOf returns the deployment of a scenario.
func deployOf(scenario string) string {
	if isFailoverScenario(scenario) {
		return scenario
	}
	return DeploySingle
}

// Failover fault kinds.
const (
	// FaultSentinelFailover is SENTINEL FAILOVER (redistest.Sentinel.Failover): a replica is
	// promoted while the old master is alive, which keeps serving the clients that have not
	// moved yet until it is made a replica of the new one: what it acknowledged meanwhile is
	// lost.
	FaultSentinelFailover = "sentinel-failover"
	// FaultSentinelKill stalls the replicas (redistest.Sentinel.StallReplicas) while the master
	// goes on acknowledging writes, kills the master, resumes the replicas and lets the
	// sentinels promote one (WaitFailover): every write acknowledged after the stall is lost.
	// The old master is then restarted (without persistence: empty, or with the RDB file it
	// received when it last synchronized as a replica) and made a replica of the new one.
	FaultSentinelKill = "sentinel-kill-lagging"
	// FaultClusterFailover is CLUSTER FAILOVER on the replica of the master that serves the
	// map's or the channel's slot: a manual failover, in which the replica catches up first;
	// nothing is lost.
	FaultClusterFailover = "cluster-failover"
	// FaultClusterKill pauses the replica of the master that serves the map's or the channel's
	// slot and cuts its replication link, lets the master acknowledge writes, kills it and
	// resumes the replica, which the cluster promotes: every write acknowledged after the cut
	// is lost. The old master is then restarted (as above) and rejoins as a replica.
	FaultClusterKill = "cluster-kill-lagging"
	// FaultMigrateSlot moves the map's or the channel's slot to another master
	// (redistest.Cluster.MigrateSlot: IMPORTING, MIGRATING, MIGRATE of every key, SETSLOT
	// NODE): scripts see TRYAGAIN and ASK, sharded subscribers are unsubscribed by Redis.
	FaultMigrateSlot = "migrate-slot"
)

// restartDelay is how long a killed master stays down after the failover, before it is
// restarted to become a replica of the new master. Restarted at once, it would answer on its
// old address as a master of no history (or of the stale one of the RDB file it received as a
// replica, the last time it synchronized) for the moment before it is made a replica, and a
// client that has not yet followed the failover (a Sentinel client that has not handled
// +switch-master, a cluster client with the old slot map) would read and write there: a
// restart without persistence that production avoids (no automatic restart of a master
// without persistence), not the failover under test.
const restartDelay = 2 * time.Second

// maxLag bounds how long the replicas lag (paused) before a master is killed: below the
// sentinels' down-after and the cluster's node timeout (1 s), so that the replica stays up
// in their eyes (a paused replica is one that answers no ping; one that lags answers them),
// and the failover promotes it at once instead of taking the new master for down again.
const maxLag = 900 * time.Millisecond

// isFailoverKind reports whether kind is a failover fault.
func isFailoverKind(kind string) bool {
	switch kind {
	case FaultSentinelFailover, FaultSentinelKill, FaultClusterFailover, FaultClusterKill, FaultMigrateSlot:
		return true
	}
	return false
}

// failoverWindow is a failover fault, from its first step to a settled deployment (Unix ns).
// A lossy one may lose acknowledged writes: a write invoked before its End may be gone, and
// a stream may be told so (a rewound reset) from its Start on.
type failoverWindow struct {
	Kind       string
	Start, End int64
	Lossy      bool
}

// redisURL returns the URL the harness and the nodes of a failover deployment dial.
func (c *cluster) redisURL() string {
	switch {
	case c.sen != nil:
		return c.sen.URL()
	case c.rcl != nil:
		return c.rcl.URL()
	}
	return c.srv.URL()
}

// startDeployment starts the run's Redis.
func (c *cluster) startDeployment() {
	switch c.cfg.Scenario {
	case ScenarioSentinel:
		c.sen = redistest.StartSentinel(c.t, redistest.SentinelOptions{})
	case ScenarioCluster:
		c.rcl = redistest.StartCluster(c.t, redistest.ClusterOptions{})
	default:
		c.srv = redistest.Start(c.t, redistest.Options{AppendOnly: c.cfg.Scenario == ScenarioAOF,
			Args: []string{"--enable-debug-command", "local"}})
	}
}

// masters returns the servers that serve writes now: the one server, the master the
// sentinels name, or every master of the cluster.
func (c *cluster) masters() []*redistest.Server {
	switch {
	case c.sen != nil:
		return []*redistest.Server{c.sen.Master()}
	case c.rcl != nil:
		return c.rcl.Masters()
	}
	return []*redistest.Server{c.srv}
}

// clientKill runs CLIENT KILL TYPE typ on every master and returns how many connections
// they closed.
func (c *cluster) clientKill(typ string) int {
	n := 0
	for _, m := range c.masters() {
		n += m.ClientKill(typ)
	}
	return n
}

// failoverKinds returns the faults of a failover scenario: the failovers, and the faults of
// the single server that need no proxy (the proxy faults and DEBUG SLEEP are left out: a
// node dials the deployment itself, and a sleep beyond the sentinels' down-after or the
// cluster's node timeout would be a failover the schedule did not choose).
func failoverKinds(scenario string) []string {
	kinds := []string{FaultKillPubSub, FaultKillNormal, FaultCrash, FaultReplicaRestart}
	if scenario == ScenarioSentinel {
		return append(kinds, FaultSentinelFailover, FaultSentinelKill)
	}
	return append(kinds, FaultClusterFailover, FaultClusterKill, FaultMigrateSlot)
}

// injectFailover applies a failover fault of kind, filling rec's target and detail.
func (c *cluster) injectFailover(kind string, rec *faultRecord) {
	w := failoverWindow{Kind: kind, Start: time.Now().UnixNano()}
	switch kind {
	case FaultSentinelFailover:
		w.Lossy = true
		old := c.sen.Master()
		nm := c.sen.Failover()
		rec.Detail = fmt.Sprintf("master %s → %s", port(old), port(nm))
	case FaultSentinelKill:
		w.Lossy = true
		old := c.sen.Master()
		lag := c.span(300*time.Millisecond, maxLag)
		stalled := c.sen.StallReplicas()
		time.Sleep(lag)
		old.Kill()
		for _, r := range stalled {
			r.Resume()
		}
		nm := c.sen.WaitFailover(old)
		took := time.Since(time.Unix(0, w.Start)).Round(time.Millisecond)
		time.Sleep(restartDelay)
		old.Restart() // without persistence: empty, or the RDB file of its last sync as a replica
		if _, err := old.Do("REPLICAOF", "127.0.0.1", port(nm)); err != nil {
			c.t.Fatalf("REPLICAOF on the restarted %s: %v", old.Addr(), err)
		}
		c.waitInSync(old, nm)
		rec.Detail = fmt.Sprintf("replicas stalled %v, master %s killed, %s promoted after %v; the old one back as a replica",
			lag, port(old), port(nm), took)
	case FaultClusterFailover:
		name, slot := c.drawSlot()
		m := c.rcl.MasterOf(slot)
		nm := c.rcl.Failover(m)
		rec.Target, rec.Detail = name, fmt.Sprintf("slot %d: master %s → %s", slot, port(m), port(nm))
	case FaultClusterKill:
		w.Lossy = true
		name, slot := c.drawSlot()
		m := c.rcl.MasterOf(slot)
		r := c.rcl.ReplicaOf(m)
		lag := c.span(300*time.Millisecond, maxLag)
		r.Pause()
		if n := m.ClientKill("replica"); n != 1 {
			r.Resume()
			c.t.Fatalf("CLIENT KILL TYPE replica on %s closed %d links, want 1", m.Addr(), n)
		}
		time.Sleep(lag)
		m.Kill()
		r.Resume()
		nm := c.rcl.WaitFailover(m)
		took := time.Since(time.Unix(0, w.Start)).Round(time.Millisecond)
		time.Sleep(restartDelay)
		m.Restart() // as above; its nodes.conf makes it rejoin, as a replica of nm
		c.waitInSync(m, nm)
		rec.Target, rec.Detail = name, fmt.Sprintf("slot %d: replica stalled %v, master %s killed, %s promoted after %v; the old one back as a replica",
			slot, lag, port(m), port(nm), took)
	case FaultMigrateSlot:
		name, slot := c.drawSlot()
		from := c.rcl.MasterOf(slot)
		var others []*redistest.Server
		for _, m := range c.rcl.Masters() {
			if m != from {
				others = append(others, m)
			}
		}
		to := others[c.rnd.IntN(len(others))]
		c.rcl.MigrateSlot(slot, to)
		rec.Target, rec.Detail = name, fmt.Sprintf("slot %d: %s → %s", slot, port(from), port(to))
	default:
		c.t.Fatalf("unknown failover fault %q", kind)
	}
	w.End = time.Now().UnixNano()
	c.failovers = append(c.failovers, w)
}

// servers returns every process of the deployment, each with a name for its log.
func (c *cluster) servers() map[string]*redistest.Server {
	out := map[string]*redistest.Server{}
	switch {
	case c.sen != nil:
		for _, s := range c.sen.Servers() {
			out["data-"+port(s)] = s
		}
		for _, s := range c.sen.Sentinels() {
			out["sentinel-"+port(s)] = s
		}
	case c.rcl != nil:
		for _, s := range c.rcl.Nodes() {
			out["node-"+port(s)] = s
		}
	default:
		out["redis-"+port(c.srv)] = c.srv
	}
	return out
}

// keepLogs copies every Redis process's log into the run's directory, for a failed run to be
// studied (the processes' own directories go with the test).
func (c *cluster) keepLogs() {
	for name, s := range c.servers() {
		b, err := os.ReadFile(filepath.Join(s.Dir(), "redis.log"))
		if err == nil {
			_ = os.WriteFile(filepath.Join(c.dir, name+".log"), b, 0o644)
		}
	}
}

// roles describes who replicates whom at the end of a failover run, for the log.
func (c *cluster) roles() string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(c.servers())) {
		if strings.HasPrefix(name, "sentinel-") {
			continue
		}
		info, err := c.servers()[name].Do("INFO", "replication")
		role := "down"
		if err == nil {
			m := map[string]string{}
			for _, l := range strings.Split(info, "\r\n") {
				if k, v, ok := strings.Cut(l, ":"); ok {
					m[k] = v
				}
			}
			role = m["role"] + " offset " + m["master_repl_offset"]
			if m["role"] == "slave" {
				role += " of " + m["master_port"] + " link " + m["master_link_status"]
			}
		}
		out = append(out, name+": "+role)
	}
	return strings.Join(out, "; ")
}

// settle waits, before a failover fault, until the deployment is as the faults expect it:
// on a Sentinel set, the master the sentinels name replicated by both other servers directly,
// links up; on a cluster, every master with a replica online. A failover the sentinels
// started on their own may have left a server replicating a replica: it is pointed at the
// master after 3 s, as the sentinels would do some seconds later.
func (c *cluster) settle() {
	c.t.Helper()
	start := time.Now()
	deadline := start.Add(redistest.FailoverWait)
	for {
		ok, state := c.settled(time.Since(start) > 3*time.Second)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the deployment did not settle within %v: %s", redistest.FailoverWait, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sentinelQuiet is how long after a failover the sentinels are left alone before the next
// failover fault: a sentinel that voted for another's failover starts none of its own before
// twice the failover-timeout, so that a master killed sooner could wait that long for its
// failover, while its replicas' links stay down beyond what the sentinels accept of a
// replica to promote (seen: no failover within 30 s).
const sentinelQuiet = 2*redistest.SentinelFailoverTimeout + 500*time.Millisecond

// settled reports whether the deployment is settled; with fix, it points the Sentinel set's
// stray replicas at the master. On a Sentinel set, every sentinel must name the same master,
// with no failover in progress, sentinelQuiet after the last failover.
func (c *cluster) settled(fix bool) (bool, string) {
	if c.rcl != nil {
		for _, m := range c.rcl.Masters() {
			info, err := m.Do("INFO", "replication")
			if err != nil || !strings.Contains(info, "state=online") {
				return false, fmt.Sprintf("master %s has no replica online (%v)", m.Addr(), err)
			}
		}
		return true, ""
	}
	if since := time.Since(c.lastFailover()); since < sentinelQuiet {
		return false, fmt.Sprintf("the last failover was %v ago", since.Round(time.Millisecond))
	}
	named := ""
	for _, sn := range c.sen.Sentinels() {
		addr, err := sn.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", c.sen.MasterName())
		if err != nil {
			return false, fmt.Sprintf("sentinel %s: %v", sn.Addr(), err)
		}
		if named != "" && addr != named {
			return false, fmt.Sprintf("the sentinels name %s and %s", named, addr)
		}
		named = addr
		st, err := sn.Do("SENTINEL", "MASTER", c.sen.MasterName())
		if err != nil {
			return false, fmt.Sprintf("sentinel %s: %v", sn.Addr(), err)
		}
		if f := strings.Fields(strings.Trim(st, "[]")); !slices.Contains(f, "flags") || f[slices.Index(f, "flags")+1] != "master" {
			return false, fmt.Sprintf("sentinel %s: the master is %s", sn.Addr(), st)
		}
	}
	m := c.sen.Master()
	if info, err := m.Do("INFO", "replication"); err != nil || infoField(info, "role") != "master" {
		return false, fmt.Sprintf("the master the sentinels name, %s, is not one (%v)", m.Addr(), err)
	}
	for _, s := range c.sen.Servers() {
		if s == m {
			continue
		}
		info, err := s.Do("INFO", "replication")
		if err != nil {
			return false, fmt.Sprintf("%s: %v", s.Addr(), err)
		}
		if infoField(info, "master_port") != port(m) {
			if fix {
				_, _ = s.Do("REPLICAOF", "127.0.0.1", port(m))
			}
			return false, fmt.Sprintf("%s replicates %s, the master is %s", s.Addr(), infoField(info, "master_port"), port(m))
		}
		if infoField(info, "master_link_status") != "up" {
			return false, fmt.Sprintf("%s: link to %s down", s.Addr(), port(m))
		}
	}
	return true, ""
}

// drawSlot draws the map or the channel and returns its name and its slot.
func (c *cluster) drawSlot() (string, int) {
	name := mapName
	if c.rnd.IntN(2) == 0 {
		name = chanName
	}
	return name, c.rcl.Slot(c.keys(name).Meta)
}

// waitInSync waits until replica replicates master with its link up and has applied what
// master had written (a restarted server loads everything again first), so that the next
// failover has a replica to promote that holds the history.
func (c *cluster) waitInSync(replica, master *redistest.Server) {
	c.t.Helper()
	deadline := time.Now().Add(redistest.FailoverWait)
	for {
		info := replica.Info("replication")
		if info["role"] == "slave" && info["master_port"] == port(master) && info["master_link_status"] == "up" {
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s does not replicate %s: role %s, master port %s, link %s", replica.Addr(), master.Addr(),
				info["role"], info["master_port"], info["master_link_status"])
		}
		time.Sleep(20 * time.Millisecond)
	}
	master.WaitReplicas(replica)
}

// port returns the port of a server, which names it in the fault details.
func port(s *redistest.Server) string {
	_, p, err := net.SplitHostPort(s.Addr())
	if err != nil {
		return s.Addr()
	}
	return p
}

// parseDeploys reads EnvDeploy: deployments separated by commas.
func parseDeploys(s string) ([]string, error) {
	var out []string
	for _, d := range strings.Split(s, ",") {
		d = strings.TrimSpace(d)
		switch d {
		case DeploySingle, DeploySentinel, DeployCluster:
			out = append(out, d)
		case "":
		default:
			return nil, fmt.Errorf("deployment %q: want %s, %s or %s", d, DeploySingle, DeploySentinel, DeployCluster)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no deployment in %q", s)
	}
	return out, nil
}

// FaultUnscheduled names a failover the schedule did not inject: the sentinels or the cluster
// failed a master over on their own (it answered no ping for the down-after or node timeout,
// 1 s, on a loaded machine). The roleWatcher records it as a failover that may lose writes.
const FaultUnscheduled = "unscheduled-failover"

// Settings of the roleWatcher.
const (
	watchEvery = 100 * time.Millisecond // how often every data server's role is read
	// watchBefore is how far before a promotion an unscheduled failover's window begins: the
	// old master stopped answering for about this long, and the replica may have lagged.
	watchBefore = 2 * time.Second
)

// roleWatcher reads the role of every data server of a failover deployment every watchEvery
// and records the failovers that no fault of the schedule caused: a replica that became a
// master outside a failover fault opens a window (from watchBefore before it), which closes
// once the deployment has its number of masters again and no master serves anymore that was
// a replica before (the old master was made a replica of the new one).
type roleWatcher struct {
	c       *cluster
	servers []*redistest.Server
	clients []rueidis.Client
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once // finish stops it once

	mu        sync.Mutex // guards the fields below
	busy      bool       // a failover fault is under way
	lossy     bool       // and it may lose writes: a promotion after its own is recorded
	own       bool       // the fault's own promotion was seen
	busyEnd   time.Time  // when the last one ended
	lastLossy bool       // and whether it could lose writes
	open      *failoverWindow
	windows   []failoverWindow
	lastSeen  map[int]string // server index -> its last role read ("master" or "slave")
	promoted  time.Time      // when a promotion was last seen
}

// startWatcher starts the roleWatcher of a failover deployment (nil for the single server).
func (c *cluster) startWatcher() *roleWatcher {
	var servers []*redistest.Server
	switch {
	case c.sen != nil:
		servers = c.sen.Servers()
	case c.rcl != nil:
		servers = c.rcl.Nodes()
	default:
		return nil
	}
	w := &roleWatcher{c: c, servers: servers, stop: make(chan struct{}), done: make(chan struct{}), lastSeen: map[int]string{}}
	for _, s := range servers {
		rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{s.Addr()}, DisableCache: true,
			ForceSingleClient: true, ConnWriteTimeout: 300 * time.Millisecond, Dialer: net.Dialer{Timeout: 300 * time.Millisecond}})
		if err != nil {
			c.t.Fatalf("role watcher: client of %s: %v", s.Addr(), err)
		}
		w.clients = append(w.clients, rc)
	}
	go w.run()
	return w
}

// lastFailover returns when the last failover ended: a failover fault, or a promotion the
// watcher saw.
func (c *cluster) lastFailover() time.Time {
	var last int64
	for _, w := range c.failovers {
		last = max(last, w.End)
	}
	if c.watch != nil {
		c.watch.mu.Lock()
		if !c.watch.promoted.IsZero() {
			last = max(last, c.watch.promoted.UnixNano())
		}
		c.watch.mu.Unlock()
	}
	return time.Unix(0, last)
}

// unscheduled records the failovers the watcher saw as faults and failover windows.
func (c *cluster) unscheduled(ws []failoverWindow) {
	for _, w := range ws {
		c.failovers = append(c.failovers, w)
		c.faults = append(c.faults, faultRecord{Kind: w.Kind, Start: c.since(time.Unix(0, w.Start)), End: c.since(time.Unix(0, w.End)),
			Detail: "a master changed without a fault of the schedule (window from 2 s before the promotion was seen)"})
	}
	sort.SliceStable(c.faults, func(i, j int) bool { return c.faults[i].Start < c.faults[j].Start })
}

// injecting marks a failover fault as under way (or over), and whether it may lose writes.
// During one that may, the watcher records the promotions it sees after the fault's own (the
// first): the sentinels may fail the new master over again on their own, and what the one
// they replace acknowledges until it is made a replica is lost. During one that may not, a
// promotion is the fault's.
func (w *roleWatcher) injecting(on, lossy bool) {
	if w == nil {
		return
	}
	w.mu.Lock()
	if on {
		w.lastLossy = lossy
	}
	w.busy, w.lossy, w.own = on, lossy, false
	if !on {
		w.busyEnd = time.Now()
	}
	w.mu.Unlock()
}

func (w *roleWatcher) run() {
	defer close(w.done)
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		roles := make([]string, len(w.clients))
		var wg sync.WaitGroup
		for i, rc := range w.clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				info, err := rc.Do(ctx, rc.B().Info().Section("replication").Build()).ToString()
				if err == nil {
					roles[i] = infoField(info, "role")
				}
			}()
		}
		wg.Wait()
		w.observe(time.Now(), roles)
	}
}

// observe compares the roles read at now with the last ones.
func (w *roleWatcher) observe(now time.Time, roles []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// Quiet: no failover fault under way; after one that cannot lose writes, for a second
	// more (its promotion may be seen late). After one that can, at once: the sentinels may
	// fail its new master over again right away.
	quiet := !w.busy && (w.lastLossy || now.Sub(w.busyEnd) > time.Second)
	masters, promoted := 0, false
	for i, r := range roles {
		if r == "" {
			continue // down or paused: no change seen
		}
		if r == "master" {
			masters++
		}
		if w.lastSeen[i] == "slave" && r == "master" {
			promoted, w.promoted = true, now
		}
		w.lastSeen[i] = r
	}
	want := 1
	if w.c.rcl != nil {
		want = 3
	}
	if promoted && w.busy && w.lossy && !w.own {
		w.own, promoted = true, false // the fault's own
	}
	switch {
	case promoted && (quiet || w.busy && w.lossy) && w.open == nil:
		w.open = &failoverWindow{Kind: FaultUnscheduled, Start: now.Add(-watchBefore - watchEvery).UnixNano(), Lossy: true}
	case w.open != nil && masters == want:
		w.open.End = now.UnixNano()
		w.windows = append(w.windows, *w.open)
		w.open = nil
	}
}

// finish stops the watcher and returns the unscheduled failovers (one still open ends now).
func (w *roleWatcher) finish() []failoverWindow {
	if w == nil {
		return nil
	}
	w.once.Do(func() {
		close(w.stop)
		<-w.done
		for _, rc := range w.clients {
			rc.Close()
		}
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.open != nil {
		w.open.End = time.Now().UnixNano()
		w.windows = append(w.windows, *w.open)
		w.open = nil
	}
	return w.windows
}

// infoField returns a field of an INFO reply.
func infoField(info, name string) string {
	for _, l := range strings.Split(info, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == name {
			return v
		}
	}
	return ""
}

package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

// Settings of the clusters started by StartCluster.
const (
	// DefaultClusterNodeTimeout is the cluster-node-timeout when
	// ClusterOptions.NodeTimeout is zero: a master that answers no ping for
	// that long is failed over by its replica, some 2 to 3 s after it died.
	DefaultClusterNodeTimeout = time.Second
	// ClusterSlots is the number of hash slots of a Redis Cluster.
	ClusterSlots = 16384

	cliBinary = "/usr/bin/redis-cli"

	// manualFailoverRetry is how long Failover waits for CLUSTER FAILOVER to
	// succeed before it asks again; Redis gives up after 5 s.
	manualFailoverRetry = 6 * time.Second
)

// ClusterOptions configures a cluster started by StartCluster. The zero
// value starts nodes without persistence and without a password.
type ClusterOptions struct {
	// AppendOnly is Options.AppendOnly of every node. Default: off.
	AppendOnly bool
	// Args are extra redis-server arguments of every node. Default: none.
	Args []string
	// Password is the requirepass and masterauth of every node. Default:
	// none.
	Password string
	// NodeTimeout is the cluster-node-timeout. Default
	// DefaultClusterNodeTimeout.
	NodeTimeout time.Duration
}

// Cluster is a Redis Cluster owned by a test: three masters and one replica
// of each, six processes on free loopback ports (each with its cluster bus
// on a second free port). Masters change with failovers; MasterOf asks the
// nodes which one serves a slot. Its methods call t.Fatalf and must be
// called from the goroutine running the test.
type Cluster struct {
	tb    testing.TB
	opts  ClusterOptions
	nodes []*Server
	ids   map[*Server]string // node ids, from CLUSTER MYID
	known []string           // the master of each slot when every node last agreed
}

// StartCluster starts six nodes with cluster-enabled yes, joins them with
// "redis-cli --cluster create … --cluster-replicas 1 --cluster-yes", and
// returns once every node says cluster_state:ok, knows the six nodes, and
// every replica is in sync with its master. It calls t.Fatalf on failure;
// t.Cleanup kills every process.
func StartCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	skipShort(t)
	if opts.NodeTimeout <= 0 {
		opts.NodeTimeout = DefaultClusterNodeTimeout
	}
	cli, err := findCLI()
	if err != nil {
		t.Fatalf("%v", err)
	}
	c := &Cluster{tb: t, opts: opts, ids: make(map[*Server]string)}
	args := []string{
		"--cluster-node-timeout", strconv.FormatInt(opts.NodeTimeout.Milliseconds(), 10),
		"--repl-diskless-sync-delay", "0",
	}
	if opts.Password != "" {
		args = append(args, "--masterauth", opts.Password)
	}
	args = append(args, opts.Args...)
	for range 6 {
		s := newServer(t, Options{AppendOnly: opts.AppendOnly, Password: opts.Password, Args: args})
		s.cluster = true
		if err := s.start(); err != nil {
			t.Fatalf("%v", err)
		}
		id, err := s.Do("CLUSTER", "MYID")
		if err != nil {
			t.Fatalf("redistest: CLUSTER MYID on %s: %v", s.addr, err)
		}
		c.nodes = append(c.nodes, s)
		c.ids[s] = id
	}

	ctx, cancel := context.WithTimeout(context.Background(), FailoverWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, append(append([]string{"--cluster", "create"}, c.Addrs()...),
		"--cluster-replicas", "1", "--cluster-yes")...)
	cmd.Env = os.Environ()
	if opts.Password != "" {
		cmd.Env = append(cmd.Env, "REDISCLI_AUTH="+opts.Password)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitSettled("cluster created")
	return c
}

// findCLI returns the path of redis-cli.
func findCLI() (string, error) {
	if _, err := os.Stat(cliBinary); err == nil {
		return cliBinary, nil
	}
	if path, err := exec.LookPath("redis-cli"); err == nil {
		return path, nil
	}
	return "", errors.New(`redis-cli not found: install it with "apt-get install redis-tools" (StartCluster needs it)`)
}

// Addrs returns the addresses of the six nodes.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, s := range c.nodes {
		addrs[i] = s.addr
	}
	return addrs
}

// URL returns the cluster as a seed URL for redisconn.Open and
// rueidis.ParseURL: redis://[:PASSWORD@]NODE1?addr=NODE2&…&addr=NODE6. A
// client given several addresses expects a cluster.
func (c *Cluster) URL() string {
	var b strings.Builder
	b.WriteString("redis://")
	if c.opts.Password != "" {
		b.WriteString(url.UserPassword("", c.opts.Password).String() + "@")
	}
	b.WriteString(c.nodes[0].addr)
	for i, s := range c.nodes[1:] {
		if i == 0 {
			b.WriteString("?")
		} else {
			b.WriteString("&")
		}
		b.WriteString("addr=" + s.addr)
	}
	return b.String()
}

// Client returns a rueidis cluster client of the nodes with client-side
// caching disabled; it is closed by t.Cleanup, before the nodes are killed.
func (c *Cluster) Client(t testing.TB) rueidis.Client {
	t.Helper()
	rc, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:  c.Addrs(),
		Password:     c.opts.Password,
		DisableCache: true,
	})
	if err != nil {
		t.Fatalf("redistest: rueidis client of the cluster %v: %v", c.Addrs(), err)
	}
	t.Cleanup(rc.Close)
	return rc
}

// Nodes returns the six nodes, in the order of Addrs.
func (c *Cluster) Nodes() []*Server { return append([]*Server(nil), c.nodes...) }

// ID returns the cluster node id of s.
func (c *Cluster) ID(s *Server) string { return c.ids[s] }

// Slot returns the hash slot of key, as CLUSTER KEYSLOT computes it.
func (c *Cluster) Slot(key string) int {
	c.tb.Helper()
	s := c.upNode()
	reply, err := s.Do("CLUSTER", "KEYSLOT", key)
	if err != nil {
		c.tb.Fatalf("redistest: CLUSTER KEYSLOT on %s: %v", s.addr, err)
	}
	slot, err := strconv.Atoi(reply)
	if err != nil {
		c.tb.Fatalf("redistest: CLUSTER KEYSLOT on %s: unexpected reply %q", s.addr, reply)
	}
	return slot
}

// MasterOf returns the master that serves slot, as the first running node
// sees it. After StartCluster, Failover, KillMaster, WaitFailover and
// MigrateSlot every node agrees.
func (c *Cluster) MasterOf(slot int) *Server {
	c.tb.Helper()
	s := c.upNode()
	owners, err := c.owners(s)
	if err != nil {
		c.tb.Fatalf("redistest: %v", err)
	}
	m := c.node(owners[slot])
	if m == nil {
		c.tb.Fatalf("redistest: %s says slot %d is served by %q, none of our nodes", s.addr, slot, owners[slot])
	}
	return m
}

// Masters returns the nodes that serve slots, in the order of their first
// slot.
func (c *Cluster) Masters() []*Server {
	c.tb.Helper()
	s := c.upNode()
	owners, err := c.owners(s)
	if err != nil {
		c.tb.Fatalf("redistest: %v", err)
	}
	var ms []*Server
	seen := make(map[string]bool)
	for _, addr := range owners {
		if addr != "" && !seen[addr] {
			seen[addr] = true
			ms = append(ms, c.node(addr))
		}
	}
	return ms
}

// ReplicaOf returns a running node that replicates master.
func (c *Cluster) ReplicaOf(master *Server) *Server {
	c.tb.Helper()
	for _, s := range c.nodes {
		if s == master || !s.up() {
			continue
		}
		if info, err := s.info("replication"); err == nil && info["role"] == "slave" && info["master_port"] == strconv.Itoa(master.port) {
			return s
		}
	}
	c.tb.Fatalf("redistest: no running node replicates %s", master.addr)
	return nil
}

// Failover runs CLUSTER FAILOVER on the replica of master (a manual failover:
// the replica catches up with its master before it takes over, so no
// acknowledged write is lost), again if it has not happened 6 s later, and
// waits until every running node says the replica serves master's slots
// and master replicates it in sync. It returns the new master.
func (c *Cluster) Failover(master *Server) *Server {
	c.tb.Helper()
	replica := c.ReplicaOf(master)
	slots := c.slotsOf(master)
	// A manual failover that does not win its election within 5 s is abandoned for good
	// (CLUSTER_MF_TIMEOUT), as can happen on a loaded machine: ask again then.
	var asked time.Time
	waitFor(c.tb, FailoverWait, "failover of "+master.addr+" to "+replica.addr, func() (bool, string) {
		if time.Since(asked) > manualFailoverRetry {
			if _, err := replica.Do("CLUSTER", "FAILOVER"); err != nil {
				c.tb.Fatalf("redistest: CLUSTER FAILOVER on %s: %v", replica.addr, err)
			}
			asked = time.Now()
		}
		owners, err := c.owners(replica)
		if err != nil {
			return false, err.Error()
		}
		return owners[slots[0]] == replica.addr, fmt.Sprintf("%s says slot %d is served by %q", replica.addr, slots[0], owners[slots[0]])
	})
	c.waitOwner(slots, replica, "failover of "+master.addr+" to "+replica.addr)
	waitFor(c.tb, FailoverWait, "old master "+master.addr+" in sync with "+replica.addr, func() (bool, string) {
		return linkedTo(master, replica)
	})
	return replica
}

// KillMaster kills master with SIGKILL and returns the replica that the
// cluster promotes in its place, once WaitFailover says it took over.
func (c *Cluster) KillMaster(master *Server) *Server {
	c.tb.Helper()
	slots := c.slotsOf(master)
	master.Kill()
	return c.waitFailover(master, slots)
}

// WaitFailover waits until the slots that old served are served by another
// node in the eyes of every running node, and every running node says
// cluster_state:ok. It returns the new master. It may be called after the
// takeover: old's slots are then those it served when the nodes last agreed
// (after StartCluster or a method of c). Use it after pausing old (or
// killing it yourself); with the default NodeTimeout a replica takes over
// some 2 to 3 s after its master stopped answering.
func (c *Cluster) WaitFailover(old *Server) *Server {
	c.tb.Helper()
	slots := c.slotsOf(old)
	if len(slots) == 0 { // taken over already: the slots it had when the nodes last agreed
		for slot, addr := range c.known {
			if addr == old.addr {
				slots = append(slots, slot)
			}
		}
	}
	return c.waitFailover(old, slots)
}

func (c *Cluster) waitFailover(old *Server, slots []int) *Server {
	c.tb.Helper()
	if len(slots) == 0 {
		c.tb.Fatalf("redistest: %s serves no slot", old.addr)
	}
	var nm *Server
	waitFor(c.tb, FailoverWait, "a replica takes over the slots of "+old.addr, func() (bool, string) {
		s := c.upNode()
		owners, err := c.owners(s)
		if err != nil {
			return false, err.Error()
		}
		if nm = c.node(owners[slots[0]]); nm == nil || nm == old {
			return false, fmt.Sprintf("%s says slot %d is served by %q", s.addr, slots[0], owners[slots[0]])
		}
		return true, ""
	})
	c.waitOwner(slots, nm, "failover of "+old.addr+" to "+nm.addr)
	return nm
}

// MigrateSlot moves slot to the master to, as redis-cli --cluster reshard
// does: CLUSTER SETSLOT IMPORTING on to and MIGRATING on the current owner,
// MIGRATE of every key of the slot, then CLUSTER SETSLOT NODE on every
// master. It returns once every running node says to serves slot.
func (c *Cluster) MigrateSlot(slot int, to *Server) {
	c.tb.Helper()
	from := c.MasterOf(slot)
	if from == to {
		return
	}
	sl := strconv.Itoa(slot)
	c.mustDo(to, "CLUSTER", "SETSLOT", sl, "IMPORTING", c.ids[from])
	c.mustDo(from, "CLUSTER", "SETSLOT", sl, "MIGRATING", c.ids[to])
	for {
		v, err := from.doValue(CommandTimeout, "CLUSTER", "GETKEYSINSLOT", sl, "100")
		if err != nil {
			c.tb.Fatalf("redistest: CLUSTER GETKEYSINSLOT on %s: %v", from.addr, err)
		}
		keys, _ := v.([]any)
		if len(keys) == 0 {
			break
		}
		args := []string{"MIGRATE", "127.0.0.1", strconv.Itoa(to.port), "", "0", strconv.Itoa(int(CommandTimeout.Milliseconds()))}
		if c.opts.Password != "" {
			args = append(args, "AUTH", c.opts.Password)
		}
		args = append(args, "KEYS")
		for _, k := range keys {
			args = append(args, k.(string))
		}
		c.mustDo(from, args...)
	}
	// The importing node first, then the old owner, then everyone else.
	c.mustDo(to, "CLUSTER", "SETSLOT", sl, "NODE", c.ids[to])
	c.mustDo(from, "CLUSTER", "SETSLOT", sl, "NODE", c.ids[to])
	for _, m := range c.Masters() {
		if m != to && m != from {
			c.mustDo(m, "CLUSTER", "SETSLOT", sl, "NODE", c.ids[to])
		}
	}
	c.waitOwner([]int{slot}, to, fmt.Sprintf("slot %d moved to %s", slot, to.addr))
}

// mustDo runs args on s and calls t.Fatalf on an error.
func (c *Cluster) mustDo(s *Server, args ...string) {
	c.tb.Helper()
	if _, err := s.Do(args...); err != nil {
		c.tb.Fatalf("redistest: %s on %s: %v", strings.Join(args, " "), s.addr, err)
	}
}

// waitSettled waits until every running node says cluster_state:ok, serves
// or knows a server for every slot, knows every node, and every master has
// a replica in sync.
func (c *Cluster) waitSettled(what string) {
	c.tb.Helper()
	waitFor(c.tb, FailoverWait, what, func() (bool, string) {
		for _, s := range c.nodes {
			if ok, state := c.nodeOK(s); !ok {
				return false, state
			}
		}
		for _, m := range c.Masters() {
			if ok, state := replicasOnline(m, 1); !ok {
				return false, state
			}
		}
		return true, ""
	})
	c.remember()
}

// remember records the slot map, which every node agrees on.
func (c *Cluster) remember() {
	c.tb.Helper()
	owners, err := c.owners(c.upNode())
	if err != nil {
		c.tb.Fatalf("redistest: %v", err)
	}
	c.known = owners
}

// waitOwner waits until every running node says cluster_state:ok and that
// owner serves every slot of slots.
func (c *Cluster) waitOwner(slots []int, owner *Server, what string) {
	c.tb.Helper()
	waitFor(c.tb, FailoverWait, what, func() (bool, string) {
		for _, s := range c.nodes {
			if !s.up() {
				continue
			}
			if ok, state := c.nodeOK(s); !ok {
				return false, state
			}
			owners, err := c.owners(s)
			if err != nil {
				return false, err.Error()
			}
			for _, slot := range slots {
				if owners[slot] != owner.addr {
					return false, fmt.Sprintf("%s says slot %d is served by %q", s.addr, slot, owners[slot])
				}
			}
		}
		return true, ""
	})
	c.remember()
}

// nodeOK reports whether s says cluster_state:ok and knows all the nodes.
func (c *Cluster) nodeOK(s *Server) (bool, string) {
	v, err := s.doValue(pollTimeout, "CLUSTER", "INFO")
	if err != nil {
		return false, fmt.Sprintf("%s: %v", s.addr, err)
	}
	text, _ := v.(string)
	if !strings.Contains(text, "cluster_state:ok") || !strings.Contains(text, "cluster_known_nodes:"+strconv.Itoa(len(c.nodes))) {
		return false, fmt.Sprintf("%s: %q", s.addr, text)
	}
	return true, ""
}

// owners returns, for each slot, the address of the master that s says
// serves it ("" for none).
func (c *Cluster) owners(s *Server) ([]string, error) {
	v, err := s.doValue(pollTimeout, "CLUSTER", "SLOTS")
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SLOTS on %s: %w", s.addr, err)
	}
	owners := make([]string, ClusterSlots)
	ranges, _ := v.([]any)
	for _, r := range ranges {
		f, _ := r.([]any)
		if len(f) < 3 {
			return nil, fmt.Errorf("CLUSTER SLOTS on %s: unexpected range %s", s.addr, format(r))
		}
		lo, err1 := strconv.Atoi(fmt.Sprint(f[0]))
		hi, err2 := strconv.Atoi(fmt.Sprint(f[1]))
		m, _ := f[2].([]any)
		if err1 != nil || err2 != nil || lo < 0 || hi >= ClusterSlots || lo > hi || len(m) < 2 {
			return nil, fmt.Errorf("CLUSTER SLOTS on %s: unexpected range %s", s.addr, format(r))
		}
		addr := net.JoinHostPort(fmt.Sprint(m[0]), fmt.Sprint(m[1]))
		for slot := lo; slot <= hi; slot++ {
			owners[slot] = addr
		}
	}
	return owners, nil
}

// slotsOf returns the slots that master serves, as the first running node
// sees it.
func (c *Cluster) slotsOf(master *Server) []int {
	c.tb.Helper()
	s := c.upNode()
	owners, err := c.owners(s)
	if err != nil {
		c.tb.Fatalf("redistest: %v", err)
	}
	var slots []int
	for slot, addr := range owners {
		if addr == master.addr {
			slots = append(slots, slot)
		}
	}
	return slots
}

// node returns the node listening on addr, or nil.
func (c *Cluster) node(addr string) *Server {
	for _, s := range c.nodes {
		if s.addr == addr {
			return s
		}
	}
	return nil
}

// upNode returns the first node that runs and is not paused.
func (c *Cluster) upNode() *Server {
	c.tb.Helper()
	for _, s := range c.nodes {
		if s.up() {
			return s
		}
	}
	c.tb.Fatalf("redistest: no cluster node runs")
	return nil
}

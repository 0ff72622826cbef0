package redistest

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

func TestCluster(t *testing.T) {
	t.Parallel() // mostly waits on the deployment's timeouts
	start := time.Now()
	c := StartCluster(t, ClusterOptions{})
	t.Logf("StartCluster took %v", time.Since(start).Round(time.Millisecond))
	ctx := context.Background()

	opt, err := rueidis.ParseURL(c.URL())
	if err != nil {
		t.Fatalf("ParseURL(%q): %v", c.URL(), err)
	}
	if got, want := strings.Join(opt.InitAddress, ","), strings.Join(c.Addrs(), ","); got != want {
		t.Fatalf("URL() seeds %s, want %s", got, want)
	}
	rc := c.Client(t)
	if rc.Mode() != rueidis.ClientModeCluster {
		t.Fatalf("Client mode %s, want cluster", rc.Mode())
	}
	masters := c.Masters()
	if len(masters) != 3 {
		t.Fatalf("Masters() = %d nodes, want 3", len(masters))
	}
	for _, m := range masters {
		if r := c.ReplicaOf(m); r == m {
			t.Fatalf("ReplicaOf(%s) is itself", m.Addr())
		}
	}

	set := func(key, value string) {
		t.Helper()
		if err := rc.Do(ctx, rc.B().Set().Key(key).Value(value).Build()).Error(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
	}
	get := func(key string) string {
		t.Helper()
		v, err := rc.Do(ctx, rc.B().Get().Key(key).Build()).ToString()
		if err != nil {
			t.Fatalf("GET %s: %v", key, err)
		}
		return v
	}

	// Sections, not subtests: the Cluster reports failures on the test that started it.
	{ // Failover
		const key = "fo"
		set(key, "1")
		slot := c.Slot(key)
		m := c.MasterOf(slot)
		mustDo(t, m, "1", "GET", key)
		start := time.Now()
		nm := c.Failover(m)
		t.Logf("Failover took %v", time.Since(start).Round(time.Millisecond))
		if nm == m || c.MasterOf(slot) != nm {
			t.Fatalf("after Failover(%s): new master %s, MasterOf(%d) = %s", m.Addr(), nm.Addr(), slot, c.MasterOf(slot).Addr())
		}
		if role := m.Info("replication")["role"]; role != "slave" {
			t.Fatalf("old master's role is %q, want slave", role)
		}
		mustDo(t, nm, "1", "GET", key)
		if got := get(key); got != "1" {
			t.Fatalf("GET %s through the client after the failover = %q", key, got)
		}
		set(key, "2")
		mustDo(t, nm, "2", "GET", key)
	}

	{ // KillMaster
		const key = "kill"
		set(key, "1")
		slot := c.Slot(key)
		m := c.MasterOf(slot)
		m.WaitReplicas(c.ReplicaOf(m))
		start := time.Now()
		nm := c.KillMaster(m)
		t.Logf("the cluster promoted %s %v after the kill", nm.Addr(), time.Since(start).Round(time.Millisecond))
		if nm == m || c.MasterOf(slot) != nm {
			t.Fatalf("after KillMaster(%s): new master %s, MasterOf(%d) = %s", m.Addr(), nm.Addr(), slot, c.MasterOf(slot).Addr())
		}
		mustDo(t, nm, "1", "GET", key)
		err := eventually(5*time.Second, func() error {
			return rc.Do(ctx, rc.B().Set().Key(key).Value("2").Build()).Error()
		})
		if err != nil {
			t.Fatalf("SET %s through the client after the kill: %v", key, err)
		}
		mustDo(t, nm, "2", "GET", key)
	}

	{ // MigrateSlot
		keys := []string{"{mig}a", "{mig}b", "{mig}c"}
		for _, k := range keys {
			set(k, k)
		}
		slot := c.Slot(keys[0])
		from := c.MasterOf(slot)
		var to *Server
		for _, m := range c.Masters() {
			if m != from {
				to = m
			}
		}
		c.MigrateSlot(slot, to)
		if got := c.MasterOf(slot); got != to {
			t.Fatalf("MasterOf(%d) = %s after MigrateSlot, want %s", slot, got.Addr(), to.Addr())
		}
		mustDo(t, to, "3", "CLUSTER", "COUNTKEYSINSLOT", itoa(slot))
		mustDo(t, from, "0", "CLUSTER", "COUNTKEYSINSLOT", itoa(slot))
		for _, k := range keys {
			if got := get(k); got != k {
				t.Fatalf("GET %s through the client after the move = %q", k, got)
			}
		}
	}

	{ // WaitFailover called once the replica has taken over already
		var m *Server
		for _, cand := range c.Masters() {
			if cand.Info("replication")["connected_slaves"] == "1" {
				m = cand
				break
			}
		}
		if m == nil {
			t.Fatal("no master with a replica left")
		}
		slot := c.slotsOf(m)[0]
		m.Kill()
		waitFor(t, FailoverWait, "a replica takes over", func() (bool, string) {
			owners, err := c.owners(c.upNode())
			if err != nil {
				return false, err.Error()
			}
			return owners[slot] != "" && owners[slot] != m.Addr(), owners[slot]
		})
		nm := c.WaitFailover(m)
		if nm == m || c.MasterOf(slot) != nm {
			t.Fatalf("WaitFailover(%s) after the takeover = %s, MasterOf(%d) = %s", m.Addr(), nm.Addr(), slot, c.MasterOf(slot).Addr())
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

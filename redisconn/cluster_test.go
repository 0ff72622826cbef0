package redisconn_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
	"github.com/redisync/redisync/redisconn"
)

func TestOpenCluster(t *testing.T) {
	t.Parallel() // mostly waits on the cluster's start
	c := redistest.StartCluster(t, redistest.ClusterOptions{})
	ctx := context.Background()
	// "app" may do anything but read the slot map; "full" may do anything.
	for _, n := range c.Nodes() {
		for _, args := range [][]string{
			{"ACL", "SETUSER", "app", "on", ">apw", "~*", "&*", "+@all", "-cluster|slots", "-cluster|shards"},
			{"ACL", "SETUSER", "full", "on", ">fpw", "~*", "&*", "+@all"},
		} {
			if _, err := n.Do(args...); err != nil {
				t.Fatalf("%v on %s: %v", args, n.Addr(), err)
			}
		}
	}
	// Keys on every master, so that a client stuck on one node would get MOVED.
	// Subtests do not call c's methods: c reports failures on this test.
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	masterOf := map[string]*redistest.Server{}
	masters := map[*redistest.Server]bool{}
	for _, k := range keys {
		masterOf[k] = c.MasterOf(c.Slot(k))
		masters[masterOf[k]] = true
	}
	if len(masters) != 3 {
		t.Fatalf("keys %v fall on %d masters, want 3", keys, len(masters))
	}

	replica := c.ReplicaOf(c.MasterOf(0))
	for _, tc := range []struct{ name, url string }{
		{"seeds", c.URL()},
		{"one node", c.Nodes()[0].URL()},
		{"a replica", replica.URL()},
		{"ACL user with cluster|slots", "redis://full:fpw@" + c.Nodes()[0].Addr()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := redisconn.Open(ctx, redisconn.Options{URL: tc.url, Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if !redisconn.IsCluster(rc) {
				t.Errorf("IsCluster = false for %s", tc.url)
			}
			for _, k := range keys {
				if err := rc.Do(ctx, rc.B().Set().Key(k).Value(tc.name).Build()).Error(); err != nil {
					t.Fatalf("SET %s: %v", k, err)
				}
				if got, err := masterOf[k].Do("GET", k); err != nil || got != tc.name {
					t.Fatalf("GET %s on its master = %q, %v", k, got, err)
				}
			}
		})
	}

	for _, tc := range []struct{ name, url string }{
		{"ACL user without cluster|slots, one node", "redis://app:apw@" + c.Nodes()[0].Addr()},
		{"ACL user without cluster|slots, seeds", "redis://app:apw@" + c.Nodes()[0].Addr() + "?addr=" + c.Nodes()[1].Addr()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, _ := openErr(t, ctx, redisconn.Options{URL: tc.url, Timeout: 2 * time.Second})
			for _, want := range []string{c.Nodes()[0].Addr(), "+cluster|slots", "NOPERM"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not contain %q", msg, want)
				}
			}
		})
	}
}

func TestIsClusterStandalone(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rc, err := redisconn.Open(context.Background(), redisconn.Options{URL: srv.URL(), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if redisconn.IsCluster(rc) {
		t.Error("IsCluster = true for a standalone server")
	}
}

// A cluster with a node down (here a replica: nothing to fail over) still answers: Open and
// Ping do not fail when the command without a key that checks Redis lands on the dead node,
// which the client keeps among the nodes it knows (the URL names it).
func TestPingClusterWithANodeDown(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t, redistest.ClusterOptions{})
	c.ReplicaOf(c.Masters()[0]).Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 5 {
		rc, err := redisconn.Open(ctx, redisconn.Options{URL: c.URL(), Timeout: 2 * time.Second})
		if err != nil {
			t.Fatalf("Open #%d with a replica down: %v", i+1, err)
		}
		for j := range 20 {
			if err := redisconn.Ping(ctx, rc); err != nil {
				rc.Close()
				t.Fatalf("Open #%d, Ping #%d with a replica down: %v", i+1, j+1, err)
			}
		}
		rc.Close()
	}
}

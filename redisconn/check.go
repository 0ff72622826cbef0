package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/redis/rueidis"
)

// IsCluster reports whether c is a Redis Cluster client: it sends each command to the
// master of the command's hash slot and follows MOVED and failovers. Open returns one for
// the address of a cluster node (or several, ?addr=…). Other packages use it to choose
// sharded pub/sub (SPUBLISH, SSUBSCRIBE), which a cluster routes by slot, over PUBLISH,
// which it broadcasts to every node. It asks nothing of the server.
func IsCluster(c rueidis.Client) bool { return c.Mode() == rueidis.ClientModeCluster }

// checkServer asks the server what it is (HELLO, which every user that can connect may
// run) and refuses what the client cannot use as the URL means it: a sentinel addressed
// as a data server, a cluster node the client could not read the slot map of, and a
// replica unless o.AllowReplica. A server that does not answer HELLO is not checked.
func checkServer(ctx context.Context, c rueidis.Client, o Options) error {
	if c.Mode() == rueidis.ClientModeSentinel {
		return nil // the sentinels name the master; rueidis checks its role
	}
	hello, err := c.Do(ctx, c.B().Hello().Build()).AsMap()
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return nil
	}
	field := func(name string) string {
		m := hello[name]
		v, _ := m.ToString()
		return v
	}
	mode, role, version := field("mode"), field("role"), field("version")
	switch {
	case mode == "sentinel":
		return errors.New("is a Redis Sentinel, not a data server: name the master it monitors with ?master_set=NAME")
	case mode == "cluster" && !IsCluster(c):
		return clusterFallback(ctx, c, version)
	case !IsCluster(c) && role == "replica" && !o.AllowReplica:
		of := ""
		if r, err := c.Do(ctx, c.B().Role().Build()).ToArray(); err == nil && len(r) >= 3 {
			host, _ := r[1].ToString()
			port, _ := r[2].AsInt64()
			of = " of " + net.JoinHostPort(host, strconv.FormatInt(port, 10))
		}
		return fmt.Errorf("is a replica%s, which refuses writes (READONLY): point the URL at the master, "+
			"or at the sentinels with ?master_set=NAME (set AllowReplica to read from a replica on purpose)", of)
	}
	return nil
}

// clusterFallback explains a cluster node that rueidis talks to as a single server: it
// falls back to that when the slot map cannot be read, and every command of a slot
// served elsewhere then fails with MOVED.
func clusterFallback(ctx context.Context, c rueidis.Client, version string) error {
	// rueidis reads the slot map with CLUSTER SLOTS, and with CLUSTER SHARDS from Redis 8.
	perm, cmd := "cluster|slots", c.B().ClusterSlots().Build()
	if major, _, _ := strings.Cut(version, "."); atoi(major) >= 8 {
		perm, cmd = "cluster|shards", c.B().ClusterShards().Build()
	}
	err := c.Do(ctx, cmd).Error()
	if err != nil && strings.HasPrefix(err.Error(), "NOPERM") {
		return fmt.Errorf("is a Redis Cluster node, but this ACL user may not read the cluster's slot map: grant it +%s (%v)", perm, err)
	}
	if err == nil {
		err = errors.New("it answers now")
	}
	return fmt.Errorf("is a Redis Cluster node, but the client could not read the cluster's slot map with %s (%v)", strings.ToUpper(strings.ReplaceAll(perm, "|", " ")), err)
}

// atoi returns the decimal value of s, 0 if it is not one.
func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

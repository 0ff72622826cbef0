package main

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
)

// startEmbedded starts an in-process Redis-compatible server (miniredis) on a free loopback
// port. The caller closes it.
//
// miniredis answers CLUSTER SLOTS as a one-node cluster announcing its own address, so
// rueidis would take it for a cluster and connect to that address, bypassing whatever the
// client was pointed at (the demo's fault proxy). Like a standalone redis-server, this one
// refuses CLUSTER, and rueidis keeps to the address it was given.
func startEmbedded() (*miniredis.Miniredis, error) {
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("start the embedded Redis server: %w", err)
	}
	// Set before anyone knows the address, so no client sees the cluster answer.
	mr.Server().SetPreHook(func(c *server.Peer, cmd string, _ ...string) bool {
		if cmd != "CLUSTER" {
			return false
		}
		c.WriteError("ERR This instance has cluster support disabled")
		return true
	})
	return mr, nil
}

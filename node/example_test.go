package node_test

import (
	"context"
	"log"
	"net"
	"os/signal"
	"syscall"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/node"
	"github.com/redisync/redisync/redisconn"
)

// A node serving the map "users" and relaying the channel "events" on loopback, until
// SIGINT or SIGTERM: what redisync serve does.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rc, err := redisconn.Open(ctx, redisconn.Options{URL: "redis://127.0.0.1:6379"})
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	cl, err := channel.New(rc, channel.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	ln, err := net.Listen("tcp", node.DefaultListen)
	if err != nil {
		log.Fatal(err)
	}
	n, err := node.New(cl, node.Config{Maps: []string{"users"}, Channels: []string{"events"}, Addr: ln.Addr().String()})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close() // after Serve: deregisters, closes the replicas
	if err := n.Serve(ctx, ln); err != nil {
		log.Fatal(err)
	}
}

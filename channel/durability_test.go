package channel

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
)

// With MinReplicas a publish returns once that many replicas have the message; when fewer
// confirm it in time, it returns the position with ErrNotReplicated: the message was appended.
func TestMinReplicasWaitsForReplicas(t *testing.T) {
	primary := startRedis(t, redistest.Options{})
	replica := startRedis(t, redistest.Options{Args: []string{"--replicaof", "127.0.0.1", portOf(t, primary)}})
	waitFor(t, func() bool {
		s, _ := primary.Do("INFO", "replication")
		return contains(s, "connected_slaves:1") && contains(s, "state=online")
	})
	one, _ := newTestClient(t, primary.URL(), Config{MinReplicas: 1, ReplicaTimeout: 2 * time.Second})
	two, _ := newTestClient(t, primary.URL(), Config{Prefix: one.cfg.Prefix, MinReplicas: 2, ReplicaTimeout: 100 * time.Millisecond})
	ctx := context.Background()
	for i := range 20 {
		if _, err := one.Publish(ctx, "c", []byte("x")); err != nil {
			t.Fatalf("publish %d with one replica required: %v", i, err)
		}
		// The replica has it as soon as the publish returns.
		if n := xlen(t, replica, one, "c"); n != i+1 {
			t.Fatalf("after publish %d the replica holds %d entries", i+1, n)
		}
	}
	pos, err := two.Publish(ctx, "c", []byte("y"))
	if !errors.Is(err, ErrNotReplicated) || pos.Seq != 21 {
		t.Fatalf("publish with two replicas required and one present: %v, %v; want seq 21 and ErrNotReplicated", pos, err)
	}
	if h, _ := one.Head(ctx, "c"); h.Seq != 21 {
		t.Fatalf("head %v: the message not confirmed by replicas must still be appended", h)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func portOf(t *testing.T, srv *redistest.Server) string {
	t.Helper()
	_, port, err := net.SplitHostPort(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

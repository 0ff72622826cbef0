package redisconn_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
	"github.com/redisync/redisync/redisconn"
)

func TestOpenReplica(t *testing.T) {
	master := redistest.Start(t, redistest.Options{Args: []string{"--repl-diskless-sync-delay", "0"}})
	port := strings.TrimPrefix(master.Addr(), "127.0.0.1:")
	replica := redistest.Start(t, redistest.Options{Args: []string{"--replicaof", "127.0.0.1", port}})
	ctx := context.Background()

	for _, u := range []string{replica.URL(), replica.URL() + "?protocol=2"} {
		t.Run("refused "+u, func(t *testing.T) {
			// A long Timeout: the refusal must not wait for it.
			o := redisconn.Options{URL: u, Timeout: 10 * time.Second}
			start := time.Now()
			msg, _ := openErr(t, ctx, o)
			if elapsed := time.Since(start); elapsed > time.Second {
				t.Errorf("Open took %v to refuse a replica", elapsed)
			}
			for _, want := range []string{replica.Addr(), "is a replica of " + master.Addr(), "READONLY", "AllowReplica"} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not contain %q", msg, want)
				}
			}
		})
	}

	for _, o := range []redisconn.Options{
		{URL: replica.URL(), AllowReplica: true},
		{URL: replica.URL() + "?allow_replica=true"},
	} {
		t.Run("allowed "+o.URL, func(t *testing.T) {
			if _, err := master.Do("SET", "k", "v"); err != nil {
				t.Fatal(err)
			}
			master.WaitReplicas(replica)
			o.Timeout = 2 * time.Second
			c, err := redisconn.Open(ctx, o)
			if err != nil {
				t.Fatalf("Open(%+v): %v", o, err)
			}
			defer c.Close()
			if got, err := c.Do(ctx, c.B().Get().Key("k").Build()).ToString(); err != nil || got != "v" {
				t.Errorf("GET on the replica = %q, %v", got, err)
			}
			err = c.Do(ctx, c.B().Set().Key("k").Value("w").Build()).Error()
			if err == nil || !strings.HasPrefix(err.Error(), "READONLY") {
				t.Errorf("SET on the replica: err = %v, want READONLY", err)
			}
		})
	}

	t.Run("master", func(t *testing.T) {
		c, err := redisconn.Open(ctx, redisconn.Options{URL: master.URL(), Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
}

package wire

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/internal/redistest"
)

// A script Redis does not know yet (a fresh server, or after SCRIPT FLUSH) runs all the same:
// EVALSHA answers NOSCRIPT and the script is sent whole. Read-only and writing scripts, one
// call or pipelined, and an append that waits for replicas on a connection of its own.
func TestScriptsRunWhenRedisDoesNotKnowThem(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	k, err := KeysFor("t", "c")
	if err != nil {
		t.Fatal(err)
	}
	flush := func() {
		t.Helper()
		if _, err := srv.Do("SCRIPT", "FLUSH"); err != nil {
			t.Fatal(err)
		}
	}
	a := &Appender{RC: rc, Prefix: "t", Producer: "p", Window: time.Minute}
	for i, minReplicas := range []int{0, 1} {
		flush()
		a.MinReplicas, a.ReplicaTimeout = minReplicas, 10*time.Millisecond
		argv := append([]string{k.PubSub, "PUBLISH", "e", "0", "0", "0", "0", "0"}, Pack([]byte("hello"))...)
		_, err := a.exec(ctx, Publish, []string{k.Meta, k.Log, k.Meta + ":idem"}, argv)
		if err != nil && (minReplicas == 0 || !errors.Is(err, ErrNotReplicated)) {
			t.Fatalf("publish %d after SCRIPT FLUSH (MinReplicas %d): %v", i, minReplicas, err)
		}
	}
	flush()
	vs, err := Fetch.Exec(ctx, rc, []string{k.Meta, k.Log}, []string{"1", "10", "1000000", ""}).ToArray()
	if err != nil {
		t.Fatalf("fetch after SCRIPT FLUSH: %v", err)
	}
	if f, err := ParseFetch(vs); err != nil || f.Head != 2 || len(f.Entries) != 2 {
		t.Fatalf("fetch after SCRIPT FLUSH: %+v, %v; want the 2 messages published", f, err)
	}
	flush()
	for i, r := range Heads.ExecMulti(ctx, rc, rueidis.LuaExec{Keys: []string{k.Meta}}, rueidis.LuaExec{Keys: []string{k.Meta}}) {
		if vs, err := r.ToArray(); err != nil {
			t.Fatalf("heads %d after SCRIPT FLUSH: %v", i, err)
		} else if hs, err := ParseHeads(vs); err != nil || len(hs) != 1 || hs[0].Head != 2 {
			t.Fatalf("heads %d after SCRIPT FLUSH: %+v, %v", i, hs, err)
		}
	}
}

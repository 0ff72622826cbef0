package replmap

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/redistest"
	"github.com/redisync/redisync/internal/wire"
)

// A name is a channel or a map for its whole history: each refuses to be used as the other,
// with an error naming what it is, before anything is written.
func TestKindsAreEnforced(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	prefix := newPrefix()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}})
	waitReady(t, n.m)
	if _, err := n.m.Set(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.cl.Publish(ctx, "ch", []byte("plain")); err != nil {
		t.Fatal(err)
	}
	head, _ := n.cl.Head(ctx, "ch")

	wrong := func(what string, err error, is, want channel.Kind, name string) {
		t.Helper()
		var ke *channel.KindError
		if !errors.Is(err, channel.ErrWrongKind) || !errors.As(err, &ke) || ke.Kind != is || ke.Want != want || ke.Name != name {
			t.Fatalf("%s: %v, want a KindError: %q is a %s, not a %s", what, err, name, is, want)
		}
	}
	// A message published on a map's name would reach its replicas as a forged change.
	_, err := n.cl.Publish(ctx, "m", []byte("m1 1 s 0 1 6\nkHACKED"))
	wrong("Publish on a map", err, channel.KindMap, channel.KindChannel, "m")
	_, err = n.cl.Subscribe(ctx, "m", channel.FromNow(), func(context.Context, channel.Event) error { return nil })
	wrong("Subscribe from now to a map", err, channel.KindMap, channel.KindChannel, "m")
	for _, err := range n.cl.Events(ctx, "m", channel.FromStart()) {
		wrong("Events of a map", err, channel.KindMap, channel.KindChannel, "m")
		break
	}
	// And the reverse.
	other := openNode(t, srv.URL(), prefix, "ch", Config[string]{Codec: String{}})
	_, err = other.m.Set(ctx, "k", "v")
	wrong("Set on a channel", err, channel.KindChannel, channel.KindMap, "ch")
	wrong("WaitReady on a channel", other.m.WaitReady(ctx), channel.KindChannel, channel.KindMap, "ch")
	for _, err := range Watch(ctx, n.cl, "ch", channel.FromStart(), String{}) {
		wrong("Watch of a channel", err, channel.KindChannel, channel.KindMap, "ch")
		break
	}
	// Nothing was written by the refused calls.
	if h, _ := n.cl.Head(ctx, "ch"); h != head {
		t.Fatalf("channel head moved from %v to %v", head, h)
	}
	if v, ver, err := n.m.Get("k"); err != nil || v != "v" || ver != 1 {
		t.Fatalf("map after the refused publish: %q@%d %v", v, ver, err)
	}
	verify(t, n.m)

	// A name written before kinds were stored is adopted by its next use.
	if _, err := srv.Do("HDEL", prefix+":{m}:meta", "kind"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.m.Set(ctx, "k2", "v2"); err != nil {
		t.Fatal(err)
	}
	if k, err := n.cl.Kind(ctx, "m"); err != nil || k != channel.KindMap {
		t.Fatalf("kind after adoption: %q, %v", k, err)
	}
}

// A user that may only read can hold a replica (snapshot, catch-up, Verify) and read through
// a near-cache; its writes are refused before anything is written.
func TestReadOnlyUserHoldsAReplica(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	if _, err := srv.Do("ACL", "SETUSER", "reader", "on", ">pw", "~*", "&*", "+@read", "+@connection", "+@pubsub",
		"-publish", "-spublish", "+evalsha_ro", "+eval_ro"); err != nil {
		t.Fatal(err)
	}
	prefix := newPrefix()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}})
	for _, k := range []string{"a", "b", "c"} {
		if _, err := w.m.Set(ctx, k, "v-"+k); err != nil {
			t.Fatal(err)
		}
	}
	r := openNode(t, "redis://reader:pw@"+srv.Addr(), prefix, "m", Config[string]{Codec: String{}})
	waitReady(t, r.m)
	seq, _ := w.m.Set(ctx, "d", "v-d")
	if err := r.m.WaitFor(ctx, seq); err != nil {
		t.Fatal(err)
	}
	if v, _, err := r.m.Get("d"); err != nil || v != "v-d" {
		t.Fatalf("reader's replica: d = %q, %v", v, err)
	}
	verify(t, r.m)
	c, err := OpenCache(ctx, r.cl, "m", CacheConfig[string]{Codec: String{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, _, err := c.Get(ctx, "a"); err != nil || v != "v-a" {
		t.Fatalf("reader's near-cache: a = %q, %v", v, err)
	}
	if _, err := r.m.Set(ctx, "e", "no"); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("a read-only user's write: %v, want NOPERM", err)
	}
	if h, _ := w.cl.Head(ctx, "m"); h.Seq != seq {
		t.Fatalf("a refused write moved the head to %v", h)
	}
}

// A user that may not read the map's state gets the NOPERM from WaitReady, not a wait until
// its context ends.
func TestWaitReadyReportsAPermissionDenied(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	if _, err := srv.Do("ACL", "SETUSER", "blind", "on", ">pw", "~*", "&*", "+@all", "-hscan"); err != nil {
		t.Fatal(err)
	}
	prefix := newPrefix()
	w := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := w.m.Set(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	r := openNode(t, "redis://blind:pw@"+srv.Addr(), prefix, "m", Config[string]{Codec: String{}})
	start := time.Now()
	err := r.m.WaitReady(ctx)
	if err == nil || !strings.Contains(err.Error(), "NOPERM") || time.Since(start) > 5*time.Second {
		t.Fatalf("WaitReady of a user without HSCAN: %v after %v, want NOPERM at once", err, time.Since(start))
	}
}

// The write script refuses a key given twice in one write, whoever sends it, before writing
// anything: the digest would be wrong for good.
func TestWriteScriptRefusesAKeyTwice(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	prefix := newPrefix()
	n := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}})
	waitReady(t, n.m)
	ctx := context.Background()
	if _, err := n.m.Set(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	k := n.m.w.k
	args := []string{k.PubSub, "PUBLISH", "someid0000000000", "0", "0", "1000", "0", "0",
		"s", "k", "1", "", "d", "k", "", ""}
	err := wire.Write.Exec(ctx, n.cl.Redis(), []string{k.Meta, k.Log, k.Idem("x"), k.State}, args).Error()
	if err == nil || !strings.Contains(err.Error(), "appears twice") {
		t.Fatalf("a key twice: %v", err)
	}
	verify(t, n.m)
	if h, _ := n.cl.Head(ctx, "m"); h.Seq != 1 {
		t.Fatalf("head %v after a refused write", h)
	}
}

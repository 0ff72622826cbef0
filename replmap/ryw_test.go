package replmap

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/redistest"
	"github.com/redisync/redisync/internal/wire"
	"github.com/redisync/redisync/redisconn"
)

// rollbackMap makes map name look as it does after a failover to a replica that had received
// only the writes up to seq to, each of which set one key: the later log entries and the keys
// they wrote are gone, the head and the tip are those of seq to. The epoch stays.
func rollbackMap(t *testing.T, srv *redistest.Server, rc rueidis.Client, prefix, name string, to uint64, keys ...string) {
	t.Helper()
	k, err := wire.KeysFor(prefix, name)
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%d-0", to)
	last, err := rc.Do(context.Background(), rc.B().Xrange().Key(k.Log).Start(id).End(id).Build()).AsXRange()
	if err != nil || len(last) != 1 {
		t.Fatalf("XRANGE %s %s: %v, %v", k.Log, id, last, err)
	}
	env, err := wire.DecodeEnvelope(last[0].FieldValues["e"])
	if err != nil {
		t.Fatal(err)
	}
	cmds := [][]string{append([]string{"HDEL", k.State}, keys...)}
	for i := range keys {
		cmds = append(cmds, []string{"XDEL", k.Log, fmt.Sprintf("%d-0", to+1+uint64(i))})
	}
	for _, cmd := range append(cmds, [][]string{
		{"XSETID", k.Log, fmt.Sprintf("%d-0", to)},
		{"HSET", k.Meta, "seq", strconv.FormatUint(to, 10), "tip", env.ID},
	}...) {
		if _, err := srv.Do(cmd...); err != nil {
			t.Fatal(err)
		}
	}
}

// A write returns once its node's replica holds that very write. After a failover that lost
// writes, the replica may stand past the write's seq on the lost history, where the same seq
// holds another write: the write must wait for the replica to find out and reload, so that a
// Get that follows sees the value written, not the lost one at the same version.
func TestReadYourWritesAcrossALostHistory(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	prefix := newPrefix()
	b := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}})
	// Node a hears of the failover only from its own write: no idle check in the test's time.
	rc, err := redisconn.Open(context.Background(), redisconn.Options{URL: srv.URL(), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	cl, err := channel.New(rc, channel.Config{Prefix: prefix, Logger: quiet, IdleCheck: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	a, err := Open(cl, "m", Config[string]{Codec: String{}, Logger: quiet, VerifyEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	waitReady(t, a)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 1; i <= 10; i++ {
		if _, err := b.m.Set(ctx, fmt.Sprintf("k%d", i), fmt.Sprintf("old%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.WaitFor(ctx, 10); err != nil {
		t.Fatal(err)
	}
	rollbackMap(t, srv, rc, prefix, "m", 7, "k8", "k9", "k10")

	seq, err := a.Set(ctx, "k8", "new8")
	if err != nil || seq != 8 {
		t.Fatalf("Set = %d, %v; want seq 8 (the new primary's next)", seq, err)
	}
	v, ver, err := a.Get("k8")
	if err != nil || v != "new8" || ver != 8 {
		t.Fatalf("Get(k8) right after the write = %q, %d, %v; want \"new8\", 8", v, ver, err)
	}
	if _, _, err := a.Get("k9"); err == nil {
		t.Fatal("k9, lost by the failover, is still in the replica after the write returned")
	}
}

// The wait of a write for its replica, step by step: held at once; on the lost history, held
// once the replica has reloaded below the write and applied it; and lost, once the reloaded
// replica holds another write at its seq (it returns ErrWriteLost rather than wait until the
// caller gives up).
func TestAwaitWrite(t *testing.T) {
	pos := channel.Position{Epoch: "e", Seq: 8, Entry: "mine"}
	replica := func(id string) *Map[string] {
		m := bareReplica()
		m.ctx, m.epoch, m.applied = context.Background(), "e", 10
		m.loadStarts.Store(1)
		m.loadStart = 1
		m.rememberLocked(channel.Position{Epoch: "e", Seq: 8, Entry: id})
		return m
	}
	await := func(m *Map[string]) chan error {
		done, replied := make(chan error, 1), m.loadStarts.Load()
		go func() { done <- m.awaitWrite(context.Background(), pos, replied) }()
		return done
	}
	reload := func(m *Map[string]) {
		m.mu.Lock()
		m.loadStarts.Add(1)
		m.recent, m.loadStart, m.applied = nil, m.loadStarts.Load(), 7 // below the write
		m.notifyLocked()
		m.mu.Unlock()
	}
	settled := func(done chan error) (error, bool) {
		select {
		case err := <-done:
			return err, true
		case <-time.After(100 * time.Millisecond):
			return nil, false
		}
	}

	if err, ok := settled(await(replica("mine"))); !ok || err != nil {
		t.Fatalf("replica holding the write: %v, returned %v; want nil at once", err, ok)
	}

	m := replica("lost-history")
	done := await(m)
	if _, ok := settled(done); ok {
		t.Fatal("returned while the replica held another write at the seq, on a history it had not reloaded")
	}
	reload(m) // then the new primary's 8 is the write
	m.mu.Lock()
	m.applied = 10
	m.rememberLocked(pos)
	m.notifyLocked()
	m.mu.Unlock()
	if err, ok := settled(done); !ok || err != nil {
		t.Fatalf("after the reload: %v, returned %v; want nil", err, ok)
	}

	m = replica("lost-history")
	done = await(m)
	reload(m)
	m.mu.Lock()
	m.applied = 10
	m.rememberLocked(channel.Position{Epoch: "e", Seq: 8, Entry: "another"})
	m.notifyLocked()
	m.mu.Unlock()
	if err, ok := settled(done); !ok || !errors.Is(err, ErrWriteLost) {
		t.Fatalf("the reloaded replica holds another write at the seq: %v, returned %v; want ErrWriteLost", err, ok)
	}
}

// A replica that has reloaded past a write's seq has no record of which write it applied
// there; the write's wait asks the log in Redis: held if the log's entry at that seq is the
// write's, lost if it is another write's, or if Redis lost the map's history since.
func TestAwaitWriteAsksTheLog(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	prefix := newPrefix()
	a := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}, VerifyEvery: -1})
	b := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}, VerifyEvery: -1})
	waitReady(t, a.m)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	set := func(n node[string], key, val string) {
		t.Helper()
		if _, err := n.m.Set(ctx, key, val); err != nil {
			t.Fatal(err)
		}
	}
	// sent writes key on a without waiting for the replica, as Write does before its wait.
	sent := func(key string) (channel.Position, uint64) {
		t.Helper()
		pos, err := write(ctx, a.m.w, []Op[string]{{Key: key, Value: "mine"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.m.WaitFor(ctx, pos.Seq); err != nil {
			t.Fatal(err)
		}
		return pos, a.m.loadStarts.Load()
	}
	// reloadPast has a's replica load a snapshot at seq or later, which records no write.
	reloadPast := func(seq uint64) {
		t.Helper()
		if err := a.m.WaitFor(ctx, seq); err != nil {
			t.Fatal(err)
		}
		n := a.m.Stats().Snapshots
		a.m.reload()
		waitLong(t, func() bool { return a.m.Stats().Snapshots > n && a.m.Ready() && a.m.Position().Seq >= seq })
	}
	await := func(pos channel.Position, replied uint64) error {
		t.Helper()
		a.m.mu.RLock()
		v := a.m.verdictLocked(pos, replied)
		a.m.mu.RUnlock()
		if v != writeAsk {
			t.Fatalf("the replica, reloaded past %s, tells %d of it by itself; want it to ask the log", pos, v)
		}
		return a.m.awaitWrite(ctx, pos, replied)
	}

	for i := 1; i <= 7; i++ {
		set(b, fmt.Sprintf("k%d", i), "old")
	}
	mine, replied := sent("k8")
	if mine.Seq != 8 {
		t.Fatalf("the write took seq %d, want 8", mine.Seq)
	}
	rc := b.cl.Redis()
	rollbackMap(t, srv, rc, prefix, "m", 7, "k8")
	set(b, "k8", "other")
	set(b, "k9", "other")
	reloadPast(9)
	if err := await(mine, replied); !errors.Is(err, ErrWriteLost) {
		t.Fatalf("the log holds another write at the write's seq: %v; want ErrWriteLost", err)
	}

	kept, replied := sent("k10")
	reloadPast(kept.Seq)
	if err := await(kept, replied); err != nil {
		t.Fatalf("the log holds the write at its seq: %v; want nil", err)
	}

	if _, err := srv.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	set(b, "k1", "fresh") // a new epoch
	waitLong(t, func() bool { p := a.m.Position(); return a.m.Ready() && p.Epoch != kept.Epoch && p.Epoch != "" })
	if err := a.m.awaitWrite(ctx, kept, replied); !errors.Is(err, ErrWriteLost) {
		t.Fatalf("Redis lost the map's history after the write: %v; want ErrWriteLost", err)
	}
}

package replmap

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/redistest"
)

func TestConcurrentWritersConverge(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	prefix := newPrefix()
	var nodes []node[string]
	for range 3 {
		n := openNode(t, srv.URL(), prefix, "cfg", Config[string]{Codec: String{}})
		waitReady(t, n.m)
		nodes = append(nodes, n)
	}
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 1))
			for j := range 300 {
				key := fmt.Sprintf("k%d", r.IntN(40))
				var err error
				if r.IntN(5) == 0 {
					if _, err = n.m.Delete(context.Background(), key); errors.Is(err, ErrNotFound) {
						err = nil
					}
				} else {
					_, err = n.m.Set(context.Background(), key, fmt.Sprintf("node%d-%d", i, j))
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var want map[string]string
	for i, n := range nodes {
		v := verify(t, n.m)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.m.WaitFor(ctx, v.Position.Seq); err != nil {
			t.Fatal(err)
		}
		cancel()
		got := contents(n.m)
		if i == 0 {
			want = got
		} else if !maps.Equal(got, want) {
			t.Fatalf("node %d differs from node 0:\n%v\n%v", i, got, want)
		}
	}
	// And the replicas equal Redis key by key.
	for k, kv := range want {
		stored, err := srv.Do("HGET", nodes[0].m.state, k)
		if err != nil || stored != strings.Replace(kv, "=", ":", 1) {
			t.Fatalf("key %s: replica %q, Redis %q (%v)", k, kv, stored, err)
		}
	}
	if n, _ := srv.Do("HLEN", nodes[0].m.state); n != fmt.Sprint(len(want)) {
		t.Fatalf("Redis holds %s keys, replicas %d", n, len(want))
	}
}

func TestLateJoinerDuringWriteStorm(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	prefix := newPrefix()
	w := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}, NoWaitOnWrite: true})
	waitReady(t, w.m)
	for i := range 5000 {
		if _, err := w.m.Set(context.Background(), fmt.Sprintf("k%d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var writes atomic.Int64
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			key := fmt.Sprintf("k%d", i%6000)
			if i%7 == 0 {
				w.m.Delete(context.Background(), key)
			} else {
				w.m.Set(context.Background(), key, fmt.Sprint(i))
			}
			writes.Add(1)
		}
	}()
	var progress atomic.Int64
	late := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}, ScanCount: 100,
		Progress: func(loaded, total int) { progress.Store(int64(loaded)) }})
	// While it loads and catches up, versions read from the replica only go up.
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		seen := map[string]uint64{}
		for !late.m.Ready() || len(seen) < 50 {
			for i := range 50 {
				key := fmt.Sprintf("k%d", i)
				if _, ver, err := late.m.Get(key); err == nil || errors.Is(err, ErrNotFound) {
					if ver < seen[key] && err == nil {
						t.Errorf("key %s went back from version %d to %d", key, seen[key], ver)
						return
					}
					seen[key] = max(seen[key], ver)
				}
			}
		}
	}()
	waitReady(t, late.m)
	<-readerDone
	time.Sleep(200 * time.Millisecond)
	close(stop)
	before := writes.Load()
	if before < 100 {
		t.Fatalf("only %d writes during the join: no storm", before)
	}
	if progress.Load() < 4000 {
		t.Fatalf("progress reported %d keys loaded", progress.Load())
	}
	verify(t, late.m)
	verify(t, w.m)
}

func TestOnlyOneConcurrentCompareAndSetWins(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	prefix := newPrefix()
	var nodes []node[string]
	for range 3 {
		n := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}})
		waitReady(t, n.m)
		nodes = append(nodes, n)
	}
	ver, err := nodes[0].m.Set(context.Background(), "lock", "free")
	if err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		var wins, conflicts atomic.Int32
		var won atomic.Uint64
		var wg sync.WaitGroup
		for i := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := nodes[i%3]
				seq, err := n.m.CompareAndSet(context.Background(), "lock", fmt.Sprintf("r%d-owner%d", round, i), ver)
				var ce *ConflictError
				switch {
				case err == nil:
					wins.Add(1)
					won.Store(seq)
				case errors.Is(err, ErrConflict) && errors.As(err, &ce) && ce.Key == "lock" && ce.Expected == ver && ce.Actual > ver:
					conflicts.Add(1)
				default:
					t.Errorf("unexpected error %v", err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != 11 {
			t.Fatalf("round %d: %d wins, %d conflicts; want 1 and 11", round, wins.Load(), conflicts.Load())
		}
		// Another node sees the winner's version once it has applied it.
		if err := nodes[0].m.WaitFor(context.Background(), won.Load()); err != nil {
			t.Fatal(err)
		}
		_, ver, err = nodes[0].m.Get("lock")
		if err != nil || ver != won.Load() {
			t.Fatalf("node 0 has version %d (%v), the winner wrote %d", ver, err, won.Load())
		}
	}
	// Create-only (version 0) and guarded delete.
	if _, err := nodes[1].m.CompareAndSet(context.Background(), "lock", "x", 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("create-only on an existing key: %v", err)
	}
	if _, err := nodes[1].m.CompareAndDelete(context.Background(), "lock", ver-1); !errors.Is(err, ErrConflict) {
		t.Fatalf("guarded delete at a stale version: %v", err)
	}
	if _, err := nodes[1].m.CompareAndDelete(context.Background(), "lock", ver); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[2].m.CompareAndSet(context.Background(), "lock", "again", 0); err != nil {
		t.Fatalf("create-only on an absent key: %v", err)
	}
}

func TestDeleteAndRecreate(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	prefix := newPrefix()
	a := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}})
	b := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}})
	waitReady(t, a.m)
	waitReady(t, b.m)
	ctx := context.Background()
	v1, _ := a.m.Set(ctx, "k", "one")
	d, err := a.m.Delete(ctx, "k")
	if err != nil || d <= v1 {
		t.Fatalf("delete: seq %d, %v", d, err)
	}
	if _, _, err := a.m.Get("k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete, Get: %v", err)
	}
	v3, _ := a.m.Set(ctx, "k", "two")
	if err := b.m.WaitFor(ctx, v3); err != nil {
		t.Fatal(err)
	}
	if v, ver, err := b.m.Get("k"); err != nil || v != "two" || ver != v3 {
		t.Fatalf("other node: %q %d %v, want two at %d", v, ver, err, v3)
	}
	// Deleting an absent key writes nothing: ErrNotFound, and the head does not move.
	if seq, err := a.m.Delete(ctx, "never"); !errors.Is(err, ErrNotFound) || seq != 0 {
		t.Fatalf("delete of an absent key: seq %d, %v; want ErrNotFound", seq, err)
	}
	if head, err := a.cl.Head(ctx, "m"); err != nil || head.Seq != v3 {
		t.Fatalf("head after deleting an absent key: %v, %v; want seq %d", head, err, v3)
	}
	// In a write with other operations, the delete of an absent key is left out of the change.
	v4, err := a.m.Write(ctx, Op[string]{Key: "never", Delete: true}, Op[string]{Key: "k", Value: "three"})
	if err != nil {
		t.Fatal(err)
	}
	for ch, err := range a.m.Watch(ctx, channel.After(channel.Position{Seq: v4 - 1})) {
		if err != nil || ch.Key != "k" || ch.Version != v4 {
			t.Fatalf("first change of the write: %+v, %v; want only the set of k", ch, err)
		}
		break
	}
	verify(t, a.m)
	verify(t, b.m)
}

func TestReadYourWritesAndWaitFor(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	prefix := newPrefix()
	a := openNode(t, srv.URL(), prefix, "m", Config[int]{})
	b := openNode(t, srv.URL(), prefix, "m", Config[int]{})
	waitReady(t, a.m)
	waitReady(t, b.m)
	ctx := context.Background()
	for i := range 200 {
		seq, err := a.m.Set(ctx, "counter", i)
		if err != nil {
			t.Fatal(err)
		}
		if v, ver, err := a.m.Get("counter"); err != nil || v != i || ver != seq {
			t.Fatalf("right after writing %d at %d, Get says %d at %d (%v)", i, seq, v, ver, err)
		}
		if i%50 == 0 {
			if err := b.m.WaitFor(ctx, seq); err != nil {
				t.Fatal(err)
			}
			if v, _, _ := b.m.Get("counter"); v < i {
				t.Fatalf("after WaitFor(%d) the other node has %d", seq, v)
			}
		}
	}
}

func TestAtomicMultiKeyWrite(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	prefix := newPrefix()
	a := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}})
	waitReady(t, a.m)
	ctx := context.Background()
	v0, _ := a.m.Set(ctx, "gone", "x")
	seq, err := a.m.Write(ctx,
		Op[string]{Key: "a", Value: "1"},
		Op[string]{Key: "b", Value: "2"},
		Op[string]{Key: "gone", Delete: true, Guard: true, IfVersion: v0})
	if err != nil {
		t.Fatal(err)
	}
	var got []Change[string]
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for ch, err := range a.m.Watch(wctx, channel.After(channel.Position{Seq: seq - 1})) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ch)
		if len(got) == 3 {
			break
		}
	}
	for _, ch := range got {
		if ch.Seq != seq {
			t.Fatalf("change %+v has seq %d, want every op at %d", ch, ch.Seq, seq)
		}
	}
	if got[2].Key != "gone" || !got[2].Deleted || got[2].OldVersion != v0 {
		t.Fatalf("third op = %+v", got[2])
	}
	// A failed guard applies nothing.
	_, err = a.m.Write(ctx,
		Op[string]{Key: "a", Value: "changed"},
		Op[string]{Key: "b", Value: "changed", Guard: true, IfVersion: 1})
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Key != "b" || ce.Actual != seq {
		t.Fatalf("guarded batch: %v", err)
	}
	if v, _, _ := a.m.Get("a"); v != "1" {
		t.Fatalf("a = %q after a failed batch", v)
	}
	verify(t, a.m)
}

func TestWatchResumesFromASeq(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	a := openNode(t, srv.URL(), newPrefix(), "m", Config[string]{Codec: String{}})
	waitReady(t, a.m)
	ctx := context.Background()
	var seqs []uint64
	for i := range 20 {
		s, err := a.m.Set(ctx, fmt.Sprintf("k%d", i%5), fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var got []Change[string]
	for ch, err := range a.m.Watch(wctx, channel.After(channel.Position{Seq: seqs[9]})) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ch)
		if len(got) == 10 {
			break
		}
	}
	for i, ch := range got {
		if ch.Seq != seqs[10+i] || ch.Value != fmt.Sprint(10+i) || ch.Key != fmt.Sprintf("k%d", (10+i)%5) || ch.OldVersion != seqs[5+i] {
			t.Fatalf("change %d = %+v", i, ch)
		}
	}
}

func TestRestartWithoutPersistenceReloads(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	prefix := newPrefix()
	var changes []Change[string]
	var mu sync.Mutex
	a := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}, OnChange: func(c Change[string]) {
		mu.Lock()
		changes = append(changes, c)
		mu.Unlock()
	}})
	waitReady(t, a.m)
	ctx := context.Background()
	for i := range 10 {
		a.m.Set(ctx, fmt.Sprintf("k%d", i), "old")
	}
	srv.Restart()
	w := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}})
	waitReady(t, w.m)
	if _, err := w.m.Set(ctx, "fresh", "new"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for a.m.Len() != 1 || a.m.Stats().Resnapshots == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("replica holds %d keys after Redis lost them; stats %+v", a.m.Len(), a.m.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v, _, err := a.m.Get("fresh"); v != "new" || err != nil {
		t.Fatalf("fresh = %q, %v", v, err)
	}
	verify(t, a.m)
	mu.Lock()
	defer mu.Unlock()
	var resets int
	for _, c := range changes {
		if r := c.Reset; r != nil {
			resets++
			if r.Reason != channel.ResetReloaded || r.From != 1 || !r.Open || c.Position.Epoch != r.NewEpoch || r.OldEpoch == r.NewEpoch {
				t.Errorf("the reload is reported as %+v at %v, want a reloaded reset open from 1 into the new epoch", *r, c.Position)
			}
		}
	}
	if resets == 0 {
		t.Fatal("OnChange was not told about the reload")
	}
}

func TestVerifyDetectsATamperedReplica(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	a := openNode(t, srv.URL(), newPrefix(), "m", Config[string]{Codec: String{}})
	waitReady(t, a.m)
	ctx := context.Background()
	for i := range 50 {
		a.m.Set(ctx, fmt.Sprintf("k%d", i), "v")
	}
	verify(t, a.m)
	for _, tamper := range []func(){
		func() {
			e := a.m.entries["k7"]
			e.ver++
			a.m.entries["k7"] = e
			a.m.digest.Remove("k7", e.ver-1)
			a.m.digest.Add("k7", e.ver)
		},
		func() { delete(a.m.entries, "k8") }, // the digest still counts it: the key count differs
		func() { a.m.digest.X++ },
	} {
		a.m.mu.Lock()
		tamper()
		a.m.mu.Unlock()
		vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := a.m.Verify(vctx)
		cancel()
		if err != nil || v.Match {
			t.Fatalf("tampered replica passed Verify: %+v, %v", v, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			v, err := a.m.Verify(vctx)
			cancel()
			if err == nil && v.Match {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica did not repair itself: %+v %v", v, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if a.m.Stats().Resnapshots < 3 {
		t.Fatalf("stats %+v", a.m.Stats())
	}
}

func TestBadInput(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	prefix := newPrefix()
	a := openNode(t, srv.URL(), prefix, "m", Config[map[string]int]{MaxKeyBytes: 8, MaxValueBytes: 32})
	waitReady(t, a.m)
	ctx := context.Background()
	for name, ops := range map[string][]Op[map[string]int]{
		"empty key":     {{Key: ""}},
		"long key":      {{Key: "123456789"}},
		"large value":   {{Key: "k", Value: map[string]int{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": 1}}},
		"duplicate key": {{Key: "k"}, {Key: "k", Delete: true}},
		"no ops":        nil,
	} {
		if _, err := a.m.Write(ctx, ops...); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := a.m.Set(ctx, "good", map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	// Another client writes a value our codec cannot decode, through the same script.
	raw := openNode(t, srv.URL(), prefix, "m", Config[[]byte]{Codec: Bytes{}})
	waitReady(t, raw.m)
	seq, err := raw.m.Set(ctx, "junk", []byte("{not json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.m.WaitFor(ctx, seq); err != nil {
		t.Fatal(err)
	}
	var de *DecodeError
	if _, ver, err := a.m.Get("junk"); !errors.As(err, &de) || ver != seq || de.Key != "junk" {
		t.Fatalf("Get(junk) = %d, %v; want a DecodeError at %d", ver, err, seq)
	}
	if v, _, err := a.m.Get("good"); err != nil || v["a"] != 1 {
		t.Fatalf("good = %v, %v", v, err)
	}
	verify(t, a.m) // the undecodable key still counts: the replica agrees with Redis
	// A late joiner meets the same value in its snapshot.
	b := openNode(t, srv.URL(), prefix, "m", Config[map[string]int]{})
	waitReady(t, b.m)
	if _, _, err := b.m.Get("junk"); !errors.As(err, &de) {
		t.Fatalf("snapshot Get(junk): %v", err)
	}
	verify(t, b.m)
	// The map's channel refuses plain messages; junk appended by another client is skipped.
	if _, err := a.cl.Publish(ctx, "m", []byte("not a change")); !errors.Is(err, channel.ErrWrongKind) {
		t.Fatalf("Publish on a map's channel: %v, want ErrWrongKind", err)
	}
	appendRaw(t, a, prefix, "m", "not a change")
	seq, _ = a.m.Set(ctx, "after", map[string]int{"b": 2})
	if _, _, err := a.m.Get("after"); err != nil {
		t.Fatal(err)
	}
	if a.m.Stats().BadRecords != 1 {
		t.Fatalf("stats %+v", a.m.Stats())
	}
	verify(t, a.m)
}

func TestStalenessWhileRedisIsDown(t *testing.T) {
	srv := startRedis(t, redistest.Options{AppendOnly: true})
	prefix := newPrefix()
	a := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}})
	strict := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}, MaxStaleness: 500 * time.Millisecond})
	waitReady(t, a.m)
	waitReady(t, strict.m)
	seq, _ := a.m.Set(context.Background(), "k", "v")
	strict.m.WaitFor(context.Background(), seq)
	if s := a.m.Staleness(); s > 2*time.Second {
		t.Fatalf("staleness %v while connected", s)
	}
	srv.Kill()
	time.Sleep(1500 * time.Millisecond)
	if v, _, err := a.m.Get("k"); err != nil || v != "v" {
		t.Fatalf("Get while Redis is down: %q %v", v, err)
	}
	if s := a.m.Staleness(); s < time.Second {
		t.Fatalf("staleness %v after 1.5 s without Redis", s)
	}
	if _, _, err := strict.m.Get("k"); !errors.Is(err, ErrStale) {
		t.Fatalf("strict Get: %v, want ErrStale", err)
	}
	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, _, err := strict.m.Get("k"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("strict replica never became fresh again")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCloseLeavesNoGoroutine(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	ignore := goleak.IgnoreCurrent()
	a := openNode(t, srv.URL(), newPrefix(), "m", Config[string]{Codec: String{}})
	waitReady(t, a.m)
	a.m.Set(context.Background(), "k", "v")
	a.m.Close()
	a.m.Close()
	if _, err := a.m.Set(context.Background(), "k", "v"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Set after Close: %v", err)
	}
	a.cl.Close()
	a.cl.Redis().Close()
	goleak.VerifyNone(t, ignore)
}

// A replica that differs from Redis heals by itself, without anyone calling Verify: the
// periodic check finds it, marks it not ready, and it reloads.
func TestDivergedReplicaHealsByItself(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	a := openNode(t, srv.URL(), newPrefix(), "m", Config[string]{Codec: String{}, VerifyEvery: 100 * time.Millisecond})
	waitReady(t, a.m)
	ctx := context.Background()
	var last uint64
	for i := range 20 {
		last, _ = a.m.Set(ctx, fmt.Sprintf("k%d", i), "v")
	}
	a.m.mu.Lock()
	e := a.m.entries["k7"]
	a.m.entries["k7"] = entry[string]{val: "forged", ver: e.ver}
	a.m.digest.X++ // as a forged change applied at the same seq would leave it
	a.m.mu.Unlock()
	waitUntil(t, func() bool { return a.m.Stats().Divergences >= 1 && a.m.Ready() })
	if v, ver, err := a.m.Get("k7"); err != nil || v != "v" || ver != e.ver {
		t.Fatalf("after healing k7 = %q@%d %v, want v@%d", v, ver, err, e.ver)
	}
	if a.m.Position().Seq != last || a.m.Stats().Resnapshots < 1 {
		t.Fatalf("position %v, stats %+v", a.m.Position(), a.m.Stats())
	}
	verify(t, a.m)

	// A replica found different is not ready from that moment until it has reloaded.
	a.m.mu.Lock()
	a.m.digest.Y++
	a.m.mu.Unlock()
	vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	before := a.m.Stats()
	v, err := a.m.Verify(vctx)
	if err != nil || v.Match {
		t.Fatalf("Verify of a diverged replica: %+v, %v; want a mismatch", v, err)
	}
	if a.m.Ready() && a.m.Stats().Snapshots == before.Snapshots { // ready again only once reloaded
		t.Fatal("the diverged replica stayed ready without reloading")
	}
	waitReady(t, a.m)
	verify(t, a.m)
}

// A MustExist guard is checked by the write script: a set or delete of an absent key with it
// is a conflict, and the write applies nothing.
func TestMustExistGuard(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	a := openNode(t, srv.URL(), newPrefix(), "m", Config[string]{Codec: String{}})
	waitReady(t, a.m)
	ctx := context.Background()
	_, err := a.m.Write(ctx, Op[string]{Key: "k", Value: "v", MustExist: true})
	var ce *ConflictError
	if !errors.As(err, &ce) || !ce.ExpectedExists || ce.Actual != 0 {
		t.Fatalf("set of an absent key that must exist: %v", err)
	}
	v1, _ := a.m.Set(ctx, "k", "one")
	v2, err := a.m.Write(ctx, Op[string]{Key: "k", Value: "two", MustExist: true}, Op[string]{Key: "other", Value: "x"})
	if err != nil || v2 <= v1 {
		t.Fatalf("set of an existing key that must exist: %d, %v", v2, err)
	}
	if _, err := a.m.Write(ctx, Op[string]{Key: "gone", Delete: true, MustExist: true}, Op[string]{Key: "k", Value: "three"}); !errors.As(err, &ce) {
		t.Fatalf("a write with a failing MustExist: %v", err)
	}
	if v, _, _ := a.m.Get("k"); v != "two" {
		t.Fatalf("k = %q after a refused write, want two", v)
	}
	if _, err := a.m.Write(ctx, Op[string]{Key: "k", Guard: true, MustExist: true}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Guard and MustExist together: %v", err)
	}
	verify(t, a.m)
}

package replmap

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
)

func openCache(t *testing.T, n node[string], name string, size int) *Cache[string] {
	t.Helper()
	c, err := OpenCache(context.Background(), n.cl, name, CacheConfig[string]{Codec: String{}, Size: size, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// eventually retries check until it returns nil or 5 s pass.
func eventually(t *testing.T, check func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCacheReadsThroughAndFollowsChanges(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	prefix := newPrefix()
	w := openNode(t, srv.URL(), prefix, "big", Config[string]{Codec: String{}})
	waitReady(t, w.m)
	ctx := context.Background()
	for i := range 100 {
		w.m.Set(ctx, fmt.Sprintf("k%d", i), fmt.Sprint(i))
	}
	reader := openNode(t, srv.URL(), prefix, "other", Config[string]{Codec: String{}})
	c := openCache(t, reader, "big", 10)

	if v, _, err := c.Get(ctx, "k5"); err != nil || v != "5" {
		t.Fatalf("k5 = %q, %v", v, err)
	}
	c.Get(ctx, "k5")
	if _, _, err := c.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("absent key: %v", err)
	}
	if st := c.Stats(); st.Hits != 1 || st.Misses != 2 {
		t.Fatalf("stats %+v", st)
	}
	// Changes reach cached keys, absent ones included.
	seq, _ := w.m.Set(ctx, "k5", "five")
	w.m.Set(ctx, "nope", "now here")
	eventually(t, func() error {
		v, ver, err := c.Get(ctx, "k5")
		v2, _, err2 := c.Get(ctx, "nope")
		if v != "five" || ver != seq || err != nil || v2 != "now here" || err2 != nil {
			return fmt.Errorf("k5 = %q@%d (%v), nope = %q (%v)", v, ver, err, v2, err2)
		}
		return nil
	})
	if st := c.Stats(); st.Misses != 2 {
		t.Fatalf("changes caused reads from Redis: %+v", st)
	}
	// The size bound holds.
	for i := range 30 {
		c.Get(ctx, fmt.Sprintf("k%d", i))
	}
	if c.Len() != 10 || c.Stats().Evictions == 0 {
		t.Fatalf("len %d, stats %+v", c.Len(), c.Stats())
	}
	// Writes through the cache are read back at once.
	if _, err := c.Set(ctx, "k29", "mine"); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := c.Get(ctx, "k29"); v != "mine" {
		t.Fatalf("k29 = %q after writing it", v)
	}
}

func TestCacheNeverKeepsTheOlderValueOfARacingRead(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	prefix := newPrefix()
	w := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}})
	waitReady(t, w.m)
	ctx := context.Background()
	w.m.Set(ctx, "k", "old")
	w.m.Set(ctx, "gone", "old")
	reader := openNode(t, srv.URL(), prefix, "x", Config[string]{Codec: String{}})
	c := openCache(t, reader, "m", 10)

	// raceWith makes the next read from Redis race with change: between the read and its
	// insertion, change is written and the cache applies it.
	raceWith := func(change func() (uint64, error)) {
		c.beforeInsert = func(string) {
			c.beforeInsert = nil
			seq, err := change()
			if err != nil {
				t.Error(err)
			}
			eventually(t, func() error {
				if got := c.sub.Status().Position.Seq; got < seq {
					return fmt.Errorf("cache applied %d, want %d", got, seq)
				}
				return nil
			})
		}
	}

	var newSeq uint64
	raceWith(func() (uint64, error) { s, err := w.m.Set(ctx, "k", "new"); newSeq = s; return s, err })
	c.Get(ctx, "k") // this read may answer "old": it began before the change
	if v, ver, err := c.Get(ctx, "k"); v != "new" || ver != newSeq || err != nil {
		t.Fatalf("cached k = %q@%d (%v), want new@%d", v, ver, err, newSeq)
	}
	raceWith(func() (uint64, error) { return w.m.Delete(ctx, "gone") })
	c.Get(ctx, "gone")
	if v, _, err := c.Get(ctx, "gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a deleted key stayed cached: %q, %v", v, err)
	}
}

func TestCacheVersionsOnlyGoUpUnderAStorm(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	prefix := newPrefix()
	w := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}, NoWaitOnWrite: true})
	waitReady(t, w.m)
	reader := openNode(t, srv.URL(), prefix, "x", Config[string]{Codec: String{}})
	c := openCache(t, reader, "m", 5)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(1, 2))
		for ctx.Err() == nil {
			key := fmt.Sprintf("k%d", r.IntN(20))
			if r.IntN(4) == 0 {
				w.m.Delete(ctx, key)
			} else {
				w.m.Set(ctx, key, "v")
			}
		}
	}()
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 3))
			seen := map[string]uint64{}
			for ctx.Err() == nil {
				key := fmt.Sprintf("k%d", r.IntN(20))
				_, ver, err := c.Get(ctx, key)
				if err != nil && !errors.Is(err, ErrNotFound) {
					if ctx.Err() == nil {
						t.Error(err)
					}
					return
				}
				if err == nil {
					if ver < seen[key] {
						t.Errorf("key %s went back from version %d to %d", key, seen[key], ver)
						return
					}
					seen[key] = ver
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	cancel()
	wg.Wait()
	// Quiet now: every cached key agrees with Redis once the cache has caught up.
	head, _ := w.cl.Head(context.Background(), "m")
	eventually(t, func() error {
		if got := c.sub.Status().Position.Seq; got < head.Seq {
			return fmt.Errorf("cache at %d, head %d", got, head.Seq)
		}
		return nil
	})
	for i := range 20 {
		key := fmt.Sprintf("k%d", i)
		_, cver, cerr := c.Get(context.Background(), key)
		stored, err := srv.Do("HGET", w.m.state, key)
		var rver uint64
		if err == nil {
			fmt.Sscanf(stored, "%d:", &rver)
		}
		if (errors.Is(cerr, ErrNotFound) != (rver == 0)) || (rver != 0 && cver != rver) {
			t.Fatalf("%s: cache %d (%v), Redis %d", key, cver, cerr, rver)
		}
	}
	if st := c.Stats(); st.Evictions == 0 || st.Updates == 0 {
		t.Fatalf("the storm did not exercise the cache: %+v", st)
	}
}

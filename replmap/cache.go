package replmap

import (
	"container/list"
	"context"
	_ "embed"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/wire"
)

// DefaultCacheSize is the default of CacheConfig.Size.
const DefaultCacheSize = 10000

// Cache is a near-cache of a replicated map, for maps too large to hold on every node: it
// holds at most CacheConfig.Size keys (absent ones included), evicting the least recently used,
// reads a key it does not hold from Redis, and keeps what it holds current from the map's
// channel, so it is never staler than the channel's propagation delay.
//
// A read from Redis that races with a change of the same key never leaves the older value
// cached: the read returns the key's version with the channel's head, the change carries its
// own version, and the newer of the two wins whatever order they arrive in.
type Cache[V any] struct {
	name  string
	cl    *channel.Client
	cfg   CacheConfig[V]
	meta  string
	state string
	w     writer[V]

	ctx    context.Context
	cancel context.CancelFunc
	sub    *channel.Subscription

	mu      sync.Mutex // guards the fields below
	epoch   string
	items   map[string]*list.Element // values are *cacheItem[V]
	lru     *list.List               // front: most recently used
	pending map[string]*fetch[V]     // reads from Redis in flight, by key

	beforeInsert func(key string) // test hook: runs after a read from Redis, before it is cached

	hits, misses, evictions, updates, resets atomic.Uint64
}

type cacheItem[V any] struct {
	key    string
	val    V
	ver    uint64 // the key's version; for an absent key, the head the absence was read at
	absent bool
	err    error // a *DecodeError
}

type fetch[V any] struct {
	done    chan struct{}
	newer   *cacheItem[V] // the newest change of the key seen while the read was in flight
	invalid bool          // a reset happened meanwhile: do not cache the result
}

// OpenCache opens a near-cache of the map called name on cl. It follows the map's channel from
// its head at the time of the call; it loads nothing up front.
func OpenCache[V any](ctx context.Context, cl *channel.Client, name string, cfg CacheConfig[V]) (*Cache[V], error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	k, err := mapKeys(cl, name)
	if err != nil {
		return nil, err
	}
	meta, state := k.Meta, k.State
	head, err := cl.Head(ctx, name)
	if err != nil {
		return nil, err
	}
	life, cancel := context.WithCancel(context.Background())
	c := &Cache[V]{
		name: name, cl: cl, cfg: cfg, meta: meta, state: state, ctx: life, cancel: cancel,
		w:       newWriter(life, cl, k, cfg.Codec, cfg.MaxKeyBytes, cfg.MaxValueBytes),
		epoch:   head.Epoch,
		items:   make(map[string]*list.Element),
		lru:     list.New(),
		pending: make(map[string]*fetch[V]),
	}
	c.sub, err = cl.Subscribe(c.ctx, name, channel.After(head).Of(channel.KindMap), c.apply)
	if err != nil {
		c.cancel()
		return nil, err
	}
	return c, nil
}

// Close stops following the channel. It is idempotent.
func (c *Cache[V]) Close() error {
	c.cancel()
	c.sub.Close()
	c.w.group.close()
	return nil
}

// Get returns the value of key and its version, from the cache or else from Redis.
// Errors: ErrNotFound, a *DecodeError, or the error of the read from Redis.
func (c *Cache[V]) Get(ctx context.Context, key string) (V, uint64, error) {
	var zero V
	for {
		if c.ctx.Err() != nil {
			return zero, 0, ErrClosed
		}
		c.mu.Lock()
		if el, ok := c.items[key]; ok {
			c.lru.MoveToFront(el)
			it := el.Value.(*cacheItem[V])
			c.mu.Unlock()
			c.hits.Add(1)
			return it.result()
		}
		if f, ok := c.pending[key]; ok { // someone is reading it already: wait for them
			c.mu.Unlock()
			select {
			case <-f.done:
				continue
			case <-ctx.Done():
				return zero, 0, ctx.Err()
			}
		}
		f := &fetch[V]{done: make(chan struct{})}
		c.pending[key] = f
		c.mu.Unlock()
		c.misses.Add(1)
		it, epoch, err := c.read(ctx, key)
		if err == nil && c.beforeInsert != nil {
			c.beforeInsert(key)
		}
		c.mu.Lock()
		delete(c.pending, key)
		if err == nil {
			if f.newer != nil && f.newer.ver > it.ver {
				it = f.newer
			}
			if !f.invalid && epoch == c.epoch {
				c.insertLocked(it)
			}
		}
		c.mu.Unlock()
		close(f.done)
		if err != nil {
			return zero, 0, err
		}
		return it.result()
	}
}

func (it *cacheItem[V]) result() (V, uint64, error) {
	var zero V
	switch {
	case it.absent:
		return zero, 0, ErrNotFound
	case it.err != nil:
		return zero, it.ver, it.err
	}
	return it.val, it.ver, nil
}

// read reads key from Redis with the epoch and head it was read at.
func (c *Cache[V]) read(ctx context.Context, key string) (*cacheItem[V], string, error) {
	vs, err := wire.Get.Exec(ctx, c.cl.Redis(), []string{c.meta, c.state}, []string{key}).ToArray()
	if err != nil {
		return nil, "", err
	}
	g, err := wire.ParseGet(vs)
	if err != nil {
		return nil, "", fmt.Errorf("replmap: key %q of map %q: %w", key, c.name, err)
	}
	it := &cacheItem[V]{key: key}
	if g.Key.Absent {
		it.absent, it.ver = true, g.Head
		return it, g.Epoch, nil
	}
	it.ver = g.Key.Version
	it.val, it.err = c.decode(key, it.ver, g.Key.Value)
	return it, g.Epoch, nil
}

func (c *Cache[V]) decode(key string, ver uint64, raw string) (V, error) {
	v, err := c.cfg.Codec.Decode([]byte(raw))
	if err != nil {
		return v, &DecodeError{Key: key, Version: ver, Err: err}
	}
	return v, nil
}

// insertLocked caches it unless the cache already holds something newer, evicting the least
// recently used keys beyond the size.
func (c *Cache[V]) insertLocked(it *cacheItem[V]) {
	if el, ok := c.items[it.key]; ok {
		if el.Value.(*cacheItem[V]).ver < it.ver {
			el.Value = it
		}
		c.lru.MoveToFront(el)
		return
	}
	c.items[it.key] = c.lru.PushFront(it)
	for c.lru.Len() > c.cfg.Size {
		old := c.lru.Remove(c.lru.Back()).(*cacheItem[V])
		delete(c.items, old.key)
		c.evictions.Add(1)
	}
}

// updateLocked applies a change to a cached key, or remembers it for a read in flight.
func (c *Cache[V]) updateLocked(it *cacheItem[V]) {
	if f, ok := c.pending[it.key]; ok && (f.newer == nil || f.newer.ver < it.ver) {
		f.newer = it
	}
	if el, ok := c.items[it.key]; ok && el.Value.(*cacheItem[V]).ver < it.ver {
		el.Value = it
		c.updates.Add(1)
	}
}

// apply applies one change of the map's channel to the keys the cache holds.
func (c *Cache[V]) apply(_ context.Context, ev channel.Event) error {
	if ev.Reset != nil {
		// History was lost: nothing cached can be trusted any more.
		c.mu.Lock()
		c.items = make(map[string]*list.Element)
		c.lru.Init()
		for _, f := range c.pending {
			f.invalid = true
		}
		c.epoch = ev.Epoch
		c.mu.Unlock()
		c.resets.Add(1)
		c.cfg.Logger.Warn("redisync: map channel reset; near-cache emptied", "map", c.name, "reason", ev.Reset.Reason)
		return nil
	}
	ops, err := wire.DecodeRecord(ev.Data)
	if err != nil {
		return nil // not a change record: nothing to apply
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch = ev.Epoch
	for _, o := range ops {
		c.updateLocked(c.changeItem(o, ev.Seq))
	}
	return nil
}

func (c *Cache[V]) changeItem(o wire.Op, seq uint64) *cacheItem[V] {
	it := &cacheItem[V]{key: strings.Clone(o.Key), ver: seq, absent: o.Del}
	if !o.Del {
		it.val, it.err = c.decode(it.key, seq, o.Value)
	}
	return it
}

// Write applies ops atomically, as Map.Write does. Keys the cache holds are updated at once,
// so a Get on this Cache that follows sees the write or something newer.
func (c *Cache[V]) Write(ctx context.Context, ops ...Op[V]) (uint64, error) {
	if c.ctx.Err() != nil {
		return 0, ErrClosed
	}
	pos, err := write(ctx, c.w, ops)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	if pos.Epoch == c.epoch {
		for _, o := range ops {
			it := &cacheItem[V]{key: o.Key, ver: pos.Seq, absent: o.Delete, val: o.Value}
			c.updateLocked(it)
		}
	}
	c.mu.Unlock()
	return pos.Seq, nil
}

// CompareAndSet sets key to v only if key is at version ver, as Map.CompareAndSet does.
func (c *Cache[V]) CompareAndSet(ctx context.Context, key string, v V, ver uint64) (uint64, error) {
	return c.Write(ctx, Op[V]{Key: key, Value: v, Guard: true, IfVersion: ver})
}

// CompareAndDelete deletes key only if it is at version ver, as Map.CompareAndDelete does.
func (c *Cache[V]) CompareAndDelete(ctx context.Context, key string, ver uint64) (uint64, error) {
	return c.Write(ctx, Op[V]{Key: key, Delete: true, Guard: true, IfVersion: ver})
}

// Name returns the map's name.
func (c *Cache[V]) Name() string { return c.name }

// Set sets key to v, as Map.Set does.
func (c *Cache[V]) Set(ctx context.Context, key string, v V) (uint64, error) {
	return c.Write(ctx, Op[V]{Key: key, Value: v})
}

// Delete deletes key, as Map.Delete does.
func (c *Cache[V]) Delete(ctx context.Context, key string) (uint64, error) {
	return c.Write(ctx, Op[V]{Key: key, Delete: true})
}

// Len returns the number of keys the cache holds, absent ones included.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Staleness returns how long ago the cache last confirmed it was current (see Map.Staleness).
func (c *Cache[V]) Staleness() time.Duration {
	if t := c.sub.Confirmed(); !t.IsZero() {
		return time.Since(t)
	}
	return time.Duration(1<<63 - 1)
}

// CacheStats are counters since OpenCache. They only grow.
type CacheStats struct {
	Hits, Misses, Evictions uint64
	Updates                 uint64 // changes applied to cached keys
	Resets                  uint64 // times the cache was emptied because history was lost
}

// Stats returns a snapshot of the counters.
func (c *Cache[V]) Stats() CacheStats {
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(),
		Updates: c.updates.Load(), Resets: c.resets.Load()}
}

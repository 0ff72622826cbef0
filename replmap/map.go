package replmap

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/wire"
)

// Map is a local replica of a replicated map, kept current from the map's channel, and the
// way to write to it. Reads are served from memory. A Map is safe for concurrent use.
type Map[V any] struct {
	name  string
	cl    *channel.Client
	cfg   Config[V]
	meta  string // the channel's hash, which also holds the map's digest and key count
	state string // hash: key -> "<version>:<value>"
	w     writer[V]

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned
	resnap chan struct{} // asks run for a new snapshot
	sub    atomic.Pointer[channel.Subscription]
	opened time.Time

	mu        sync.RWMutex // guards the fields below
	entries   map[string]entry[V]
	bad       map[string]error // keys whose value did not decode
	digest    Digest
	epoch     string
	applied   uint64    // seq of the last change applied (or of the snapshot)
	appliedID string    // id of the log entry holding applied, when known
	recent    []applied // the changes applied most recently, since the snapshot (write.go)
	loadStart uint64    // which snapshot read the replica holds: loadStarts when it began
	readyAt   uint64    // the replica is current once applied reaches it
	ready     bool
	fault     error                // why the replica cannot load: the name is not a map's; nil otherwise
	changed   chan struct{}        // closed and replaced whenever applied moves
	wants     map[uint64][]capture // digests asked for by Verify, by seq

	loadStarts atomic.Uint64 // snapshot reads begun

	stats stats
}

type entry[V any] struct {
	val V
	ver uint64
	bad bool
}

// Entry is a value with its version, as iterated by All.
type Entry[V any] struct {
	Value   V
	Version uint64
	// Err is a *DecodeError when the value in Redis did not decode.
	Err error
}

// Open opens the map called name on the channel client cl (a map lives on the channel of the
// same name) and starts loading its replica in the background: Get answers ErrNotReady until
// it has loaded; WaitReady waits for that.
func Open[V any](cl *channel.Client, name string, cfg Config[V]) (*Map[V], error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	k, err := mapKeys(cl, name)
	if err != nil {
		return nil, err
	}
	meta, state := k.Meta, k.State
	ctx, cancel := context.WithCancel(context.Background())
	m := &Map[V]{
		name: name, cl: cl, cfg: cfg, meta: meta, state: state,
		ctx: ctx, cancel: cancel, done: make(chan struct{}), resnap: make(chan struct{}, 1),
		w:       newWriter(ctx, cl, k, cfg.Codec, cfg.MaxKeyBytes, cfg.MaxValueBytes),
		opened:  time.Now(),
		entries: make(map[string]entry[V]),
		bad:     make(map[string]error),
		changed: make(chan struct{}),
		wants:   make(map[uint64][]capture),
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		m.run()
	}()
	go func() {
		defer wg.Done()
		m.verifyLoop()
	}()
	go func() {
		wg.Wait()
		close(m.done)
	}()
	return m, nil
}

// mapKeys returns the Redis names of map name on cl, or an error naming a bad map name.
func mapKeys(cl *channel.Client, name string) (wire.Keys, error) {
	k, err := wire.KeysFor(cl.Config().Prefix, name)
	if err != nil {
		return wire.Keys{}, fmt.Errorf("replmap: invalid map name %q: %w", name, err)
	}
	return k, nil
}

// Name returns the map's name.
func (m *Map[V]) Name() string { return m.name }

// Close stops the replica and waits for its goroutines. It is idempotent. The channel client
// stays open.
func (m *Map[V]) Close() error {
	m.cancel()
	<-m.done
	m.w.group.close()
	return nil
}

// Ready reports whether the replica has loaded its first
// snapshot and caught up with the head seen after it.
func (m *Map[V]) Ready() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.ready
}

// WaitReady waits until the replica is ready, ctx ends, or the Map is closed. When the name
// holds a channel, not a map, it returns an error matching channel.ErrWrongKind; when Redis
// refuses this user a command the replica needs, that NOPERM error (the replica keeps trying,
// and loads once it can).
func (m *Map[V]) WaitReady(ctx context.Context) error {
	return m.waitUntil(ctx, func() bool { return m.ready })
}

// WaitFor waits until the replica has applied seq of its current epoch (written on another
// node, say), ctx ends, or the Map is closed.
func (m *Map[V]) WaitFor(ctx context.Context, seq uint64) error {
	return m.waitUntil(ctx, func() bool { return m.ready && m.applied >= seq })
}

// waitUntil waits until cond, evaluated under m.mu, holds.
func (m *Map[V]) waitUntil(ctx context.Context, cond func() bool) error {
	for {
		m.mu.RLock()
		ok, ch, fault := cond(), m.changed, m.fault
		m.mu.RUnlock()
		if ok {
			return nil
		}
		if fault != nil {
			return fault
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-m.ctx.Done():
			return ErrClosed
		}
	}
}

// Get returns the value of key and its version (the seq of the write that produced it) from
// local memory. Errors: ErrNotFound, ErrNotReady, ErrStale (when Config.MaxStaleness is
// set), or a *DecodeError.
func (m *Map[V]) Get(key string) (V, uint64, error) {
	var zero V
	if m.cfg.MaxStaleness > 0 && m.Staleness() > m.cfg.MaxStaleness {
		return zero, 0, ErrStale
	}
	m.mu.RLock()
	e, ok := m.entries[key]
	ready := m.ready
	var derr error
	if ok && e.bad {
		derr = m.bad[key]
	}
	m.mu.RUnlock()
	switch {
	case !ready:
		return zero, 0, ErrNotReady
	case !ok:
		return zero, 0, ErrNotFound
	case e.bad:
		return zero, e.ver, &DecodeError{Key: key, Version: e.ver, Err: derr}
	}
	return e.val, e.ver, nil
}

// Len returns the number of keys in the replica.
func (m *Map[V]) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.entries)
}

// All iterates over the replica's entries as they are when it starts, in no particular order.
func (m *Map[V]) All() iter.Seq2[string, Entry[V]] {
	return func(yield func(string, Entry[V]) bool) {
		type kv struct {
			k string
			e Entry[V]
		}
		m.mu.RLock()
		all := make([]kv, 0, len(m.entries))
		for k, e := range m.entries {
			item := kv{k, Entry[V]{Value: e.val, Version: e.ver}}
			if e.bad {
				item.e.Err = &DecodeError{Key: k, Version: e.ver, Err: m.bad[k]}
			}
			all = append(all, item)
		}
		m.mu.RUnlock()
		for _, item := range all {
			if !yield(item.k, item.e) {
				return
			}
		}
	}
}

// Position returns the position of the last change the replica applied.
func (m *Map[V]) Position() channel.Position {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return channel.Position{Epoch: m.epoch, Seq: m.applied, Entry: m.appliedID}
}

// Digest returns the replica's digest and its position.
func (m *Map[V]) Digest() (Digest, channel.Position) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.digest, channel.Position{Epoch: m.epoch, Seq: m.applied}
}

// Staleness returns how long ago the replica last confirmed it was current: a change arrived
// in order, or a read of the head showed nothing missing. While Redis is unreachable it grows;
// reads keep serving the last known state unless Config.MaxStaleness is set.
func (m *Map[V]) Staleness() time.Duration {
	if sub := m.sub.Load(); sub != nil {
		if c := sub.Confirmed(); !c.IsZero() {
			return time.Since(c)
		}
	}
	return time.Since(m.opened)
}

// Stats are counters since Open. They only grow.
type Stats struct {
	Changes      uint64 // changes applied to the replica
	Snapshots    uint64 // snapshots loaded (the first one included)
	Resnapshots  uint64 // snapshots loaded again after a reset or a digest mismatch
	BadRecords   uint64 // channel messages that were not change records, skipped
	DecodeErrors uint64 // values that did not decode
	Divergences  uint64 // times the replica was found to differ from Redis at the same seq (it then reloads)
}

type stats struct {
	changes, snapshots, resnapshots, badRecords, decodeErrors, divergences atomic.Uint64
}

// Stats returns a snapshot of the counters.
func (m *Map[V]) Stats() Stats {
	s := &m.stats
	return Stats{Changes: s.changes.Load(), Snapshots: s.snapshots.Load(), Resnapshots: s.resnapshots.Load(),
		BadRecords: s.badRecords.Load(), DecodeErrors: s.decodeErrors.Load(), Divergences: s.divergences.Load()}
}

// errResnapshot ends the replica's subscription when a new snapshot is needed.
var errResnapshot = errors.New("replmap: new snapshot needed")

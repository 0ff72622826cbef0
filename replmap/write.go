package replmap

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/wire"
)

// Op is one operation of an atomic Write: set Key to Value, or delete Key when Delete is set.
// Guards make the whole write apply only if Key is as expected, checked by the write script
// in Redis: with Guard, only if Key is at version IfVersion (0: only if absent); with
// MustExist, only if Key exists, whatever its version. Otherwise the write is a
// *ConflictError and nothing of it applies.
type Op[V any] struct {
	Key       string
	Value     V
	Delete    bool
	Guard     bool
	IfVersion uint64
	MustExist bool
}

// Set sets key to v and returns the new version: the seq of the write.
func (m *Map[V]) Set(ctx context.Context, key string, v V) (uint64, error) {
	return m.Write(ctx, Op[V]{Key: key, Value: v})
}

// Delete deletes key and returns the seq of the write. Deleting an absent key writes nothing
// and returns an error matching ErrNotFound.
func (m *Map[V]) Delete(ctx context.Context, key string) (uint64, error) {
	return m.Write(ctx, Op[V]{Key: key, Delete: true})
}

// CompareAndSet sets key to v only if key is at version ver (0: only if absent). A conflict
// is a *ConflictError, which matches ErrConflict.
func (m *Map[V]) CompareAndSet(ctx context.Context, key string, v V, ver uint64) (uint64, error) {
	return m.Write(ctx, Op[V]{Key: key, Value: v, Guard: true, IfVersion: ver})
}

// CompareAndDelete deletes key only if it is at version ver.
func (m *Map[V]) CompareAndDelete(ctx context.Context, key string, ver uint64) (uint64, error) {
	return m.Write(ctx, Op[V]{Key: key, Delete: true, Guard: true, IfVersion: ver})
}

// Write applies ops atomically as one change with one seq: every replica and every watcher
// sees all of it or none of it. When any guarded op's key is not at its IfVersion, nothing is
// applied and the error is a *ConflictError. A key may appear once per write. A delete of an
// absent key changes nothing and is left out of the change; a write that would change nothing
// at all (only such deletes) appends nothing and returns an error matching ErrNotFound.
//
// Write returns once Redis has applied the change and, unless Config.NoWaitOnWrite, once this
// replica has applied it too, so that a Get that follows sees it (or something newer).
// Transient failures are retried as channel.Client.Publish does, never applying a write twice.
// Writes made while this Map's previous script call is in flight go together in its next call
// (group commit), each applied on its own with its own guards, seq and outcome.
// With the channel client's Config.MinReplicas, a write that fewer replicas confirmed in time
// returns its seq with an error matching channel.ErrNotReplicated: it was applied on the
// primary, and may or may not survive a failover. A write that Redis acknowledged and then
// lost returns its seq with an error matching ErrWriteLost, once the new history shows it: the
// log holds another write at that seq, or stands below it, or Redis lost the map's history
// (a new epoch).
func (m *Map[V]) Write(ctx context.Context, ops ...Op[V]) (uint64, error) {
	if err := m.ctx.Err(); err != nil {
		return 0, ErrClosed
	}
	pos, err := write(ctx, m.w, ops)
	if err != nil || m.cfg.NoWaitOnWrite {
		return pos.Seq, err // with channel.ErrNotReplicated, the write's seq too
	}
	replied := m.loadStarts.Load() // snapshot reads begun later are of the history after the reply
	return pos.Seq, m.awaitWrite(ctx, pos, replied)
}

// What the replica tells of a write it waits for (awaitWrite).
type writeVerdict int

const (
	writePending writeVerdict = iota // not yet: the replica is behind, or may stand on a lost history
	writeHeld                        // the replica applied this very write
	writeLost                        // the history after the reply does not hold it
	writeAsk                         // the replica stands past it without a record of it: ask the log
)

// awaitWrite waits until the replica holds the write at pos (read-your-writes), or finds that
// the current history does not hold it: ErrWriteLost. replied is the count of snapshot reads
// begun when the write's reply came; a snapshot begun later reads the history after the reply.
//
// A replica at or past pos.Seq holds the write only if it applied this very entry there:
// after a failover that lost writes, it may stand on the lost history, under the same seqs,
// until it finds out and reloads. The write is lost once the replica applies another entry at
// pos.Seq over a snapshot read after the reply, or holds such a snapshot of another epoch
// (Redis lost its data). A replica that stands past pos.Seq without a record of what it
// applied there (it reloaded past it, or applied more than it remembers since) cannot tell:
// the log in Redis is asked which entry holds pos.Seq.
func (m *Map[V]) awaitWrite(ctx context.Context, pos channel.Position, replied uint64) error {
	for attempt := 0; ; attempt++ {
		var v writeVerdict
		if err := m.waitUntil(ctx, func() bool {
			v = m.verdictLocked(pos, replied)
			return v != writePending
		}); err != nil {
			return err
		}
		if v == writeAsk {
			var err error
			if v, err = m.askLog(ctx, pos); err != nil {
				if !wire.Transient(ctx, err) {
					return fmt.Errorf("replmap: write at %s applied; reading the log to confirm it failed: %w", pos, err)
				}
				if !wire.SleepBackoff(ctx, attempt) {
					return ctx.Err()
				}
				continue
			}
		}
		if v == writeLost {
			return fmt.Errorf("%w: %s", ErrWriteLost, pos)
		}
		return nil
	}
}

// verdictLocked is what the replica, as it stands, tells of the write at pos (awaitWrite).
func (m *Map[V]) verdictLocked(pos channel.Position, replied uint64) writeVerdict {
	switch {
	case !m.ready:
		return writePending
	case m.epoch != pos.Epoch:
		if m.loadStart > replied {
			return writeLost
		}
		return writePending
	case m.applied < pos.Seq:
		return writePending
	case pos.Entry == "":
		return writeHeld // nothing to check it by
	}
	i := sort.Search(len(m.recent), func(i int) bool { return m.recent[i].seq >= pos.Seq })
	if i == len(m.recent) || m.recent[i].seq != pos.Seq {
		return writeAsk
	}
	switch a := m.recent[i]; {
	case a.id == pos.Entry:
		return writeHeld
	case a.snap > replied:
		return writeLost
	}
	return writePending
}

// askLog reads which entry of the map's log holds pos.Seq, after the write's reply: the write
// is lost if the log is of another epoch, stands below pos.Seq (it was rewound), or holds
// another entry there, and held otherwise. A log that no longer holds pos.Seq (trimmed by
// retention meanwhile) cannot tell; the write then counts as held.
func (m *Map[V]) askLog(ctx context.Context, pos channel.Position) (writeVerdict, error) {
	f, err := wire.ReadLog(ctx, m.cl.Redis(), m.w.k, channel.KindMap, pos.Seq, 1, m.cl.Config().MaxEnvelopeBytes)
	if err != nil {
		return writePending, err
	}
	if f.Epoch != pos.Epoch || f.Head < pos.Seq {
		return writeLost, nil
	}
	if len(f.Entries) == 0 || f.Entries[0].First > pos.Seq {
		return writeHeld, nil
	}
	if e := f.Entries[0]; e.Last() >= pos.Seq && e.ID != "" && e.ID != pos.Entry {
		return writeLost, nil
	}
	return writeHeld, nil
}

// applied is a change the replica applied: its seq, the id of its log entry, and the snapshot
// it was applied over (Map.loadStart).
type applied struct {
	seq  uint64
	id   string
	snap uint64
}

// recentMax is how many applied changes the replica remembers for verdictLocked.
const recentMax = 1024

// rememberLocked records that the replica applied the change at p.
func (m *Map[V]) rememberLocked(p channel.Position) {
	if p.Entry == "" {
		return
	}
	if len(m.recent) >= 2*recentMax {
		m.recent = append(m.recent[:0], m.recent[len(m.recent)-recentMax:]...)
	}
	m.recent = append(m.recent, applied{p.Seq, p.Entry, m.loadStart})
}

// writer is what a write needs to know of its map.
type writer[V any] struct {
	app                      *wire.Appender // this writer's producer
	k                        wire.Keys
	codec                    Codec[V]
	maxKeyBytes, maxValBytes int
	maxBatchBytes            int
	group                    *group // commits the writes, several to a call
}

// newWriter returns the writer of map k; its calls in flight end when life does (Close).
func newWriter[V any](life context.Context, cl *channel.Client, k wire.Keys, codec Codec[V], maxKey, maxVal int) writer[V] {
	cc := cl.Config()
	app := &wire.Appender{
		RC: cl.Redis(), Prefix: cc.Prefix, Producer: wire.RandomID(), Window: cc.IdempotencyWindow,
		MaxLen: max(cc.MaxLen, 0), MaxAge: cc.MaxAge, Sharded: cc.Sharded,
		MinReplicas: cc.MinReplicas, ReplicaTimeout: cc.ReplicaTimeout,
	}
	return writer[V]{
		app: app, k: k, codec: codec, maxKeyBytes: maxKey, maxValBytes: maxVal, maxBatchBytes: cc.MaxBatchBytes,
		group: &group{app: app, k: k, maxBytes: cc.MaxBatchBytes, life: life},
	}
}

// write validates ops, runs the write script, and returns the write's position.
func write[V any](ctx context.Context, w writer[V], ops []Op[V]) (channel.Position, error) {
	if len(ops) == 0 {
		return channel.Position{}, fmt.Errorf("%w: no operations", ErrInvalid)
	}
	args := make([]string, 0, 4*len(ops))
	seen := make(map[string]bool, len(ops))
	size := 0
	for _, o := range ops {
		switch {
		case o.Key == "":
			return channel.Position{}, fmt.Errorf("%w: empty key", ErrInvalid)
		case len(o.Key) > w.maxKeyBytes:
			return channel.Position{}, fmt.Errorf("%w: key of %d bytes, the limit is %d", ErrInvalid, len(o.Key), w.maxKeyBytes)
		case seen[o.Key]:
			return channel.Position{}, fmt.Errorf("%w: key %q appears twice in one write", ErrInvalid, o.Key)
		}
		seen[o.Key] = true
		kind, value := "d", ""
		if !o.Delete {
			b, err := w.codec.Encode(o.Value)
			if err != nil {
				return channel.Position{}, fmt.Errorf("%w: value of key %q does not encode: %v", ErrInvalid, o.Key, err)
			}
			if len(b) > w.maxValBytes {
				return channel.Position{}, fmt.Errorf("%w: value of key %q is %d bytes, the limit is %d", ErrInvalid, o.Key, len(b), w.maxValBytes)
			}
			kind, value = "s", string(b)
		}
		guard := ""
		switch {
		case o.Guard && o.MustExist:
			return channel.Position{}, fmt.Errorf("%w: key %q has both Guard and MustExist", ErrInvalid, o.Key)
		case o.Guard:
			guard = strconv.FormatUint(o.IfVersion, 10)
		case o.MustExist:
			guard = "e"
		}
		size += len(o.Key) + len(value)
		args = append(args, kind, o.Key, value, guard)
	}
	if limit := w.maxBatchBytes; size > limit {
		return channel.Position{}, fmt.Errorf("%w: %d bytes in one write, the limit is %d", ErrInvalid, size, limit)
	}
	r, entry, err := w.group.write(ctx, args, size)
	if err != nil && !errors.Is(err, channel.ErrNotReplicated) {
		return channel.Position{}, err
	}
	switch r.Status {
	case wire.WriteNotFound:
		keys := make([]string, len(ops))
		for i, o := range ops {
			keys[i] = strconv.Quote(o.Key)
		}
		return channel.Position{}, fmt.Errorf("%w: %s (nothing was written)", ErrNotFound, strings.Join(keys, ", "))
	case wire.WriteConflict:
		o := ops[r.Index]
		return channel.Position{}, &ConflictError{Key: o.Key, Expected: o.IfVersion, ExpectedExists: o.MustExist, Actual: r.Actual}
	}
	// With channel.ErrNotReplicated the write was applied: its position, and the error.
	return channel.Position{Epoch: r.Epoch, Seq: r.Seq, Entry: entry}, err
}

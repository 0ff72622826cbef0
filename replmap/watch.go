package replmap

import (
	"context"
	"iter"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/wire"
)

// Change is one operation of a write, as watched or passed to Config.OnChange.
type Change[V any] struct {
	// Position of the write. Every operation of one atomic write has the same position.
	channel.Position
	Key     string
	Deleted bool
	// Value is the new value of a set (zero for a delete); Raw is its encoded form.
	Value V
	Raw   []byte
	// OldVersion is the key's version before the write (0: absent). Version is the write's
	// seq: the key's new version after a set.
	OldVersion, Version uint64
	// Err is a *DecodeError when Raw does not decode.
	Err error
	// Reset, when set, marks a change that stands for lost history instead of an operation:
	// the watch could not continue without a hole (see channel.Reset), or the replica loaded
	// a new snapshot.
	Reset *channel.Reset
}

// Write is one write of a map, as Writes yields it: its position (the seq is the new version
// of every key it sets), when Redis applied it, and its operations in order. With Reset set it
// stands for lost history instead (see channel.Reset), at the position the watch continues
// after.
type Write[V any] struct {
	channel.Position
	Time    time.Time
	Changes []Change[V]
	Reset   *channel.Reset
}

// Writes streams the map's writes after from, in seq order, each exactly once, from the map's
// channel: it needs no replica and can resume from any position the log still holds. It yields
// a non-nil error once, as its last pair, to say why it ended. Messages of the channel that are
// not change records are skipped. With channel.FromNow the start is fixed when Writes returns:
// every write that begins after it is yielded. A name that is a channel, not a map, ends the
// stream with an error matching channel.ErrWrongKind.
func (m *Map[V]) Writes(ctx context.Context, from channel.From) iter.Seq2[Write[V], error] {
	return Writes(ctx, m.cl, m.name, from, m.cfg.Codec)
}

// Writes is Map.Writes without a Map: it streams the writes of the map called name on cl,
// decoding values with codec (JSON[V] when nil), and loads nothing.
func Writes[V any](ctx context.Context, cl *channel.Client, name string, from channel.From, codec Codec[V]) iter.Seq2[Write[V], error] {
	if codec == nil {
		codec = JSON[V]{}
	}
	if _, err := mapKeys(cl, name); err != nil {
		return func(yield func(Write[V], error) bool) { yield(Write[V]{}, err) }
	}
	// Created here, not in the loop: with FromNow the start is fixed when Writes returns.
	events := cl.Events(ctx, name, from.Of(channel.KindMap))
	return func(yield func(Write[V], error) bool) {
		for ev, err := range events {
			if err != nil {
				yield(Write[V]{}, err)
				return
			}
			if ev.Reset != nil {
				if !yield(Write[V]{Position: ev.Position, Reset: ev.Reset}, nil) {
					return
				}
				continue
			}
			changes, err := changesOf(ev, codec)
			if err != nil {
				continue // not a change record
			}
			if !yield(Write[V]{Position: ev.Position, Time: ev.Time, Changes: changes}, nil) {
				return
			}
		}
	}
}

// Watch is Writes one operation at a time: every Change of a write, in order, then the next
// write's (a reset is one Change with Reset set). With the guarantees of Writes.
func (m *Map[V]) Watch(ctx context.Context, from channel.From) iter.Seq2[Change[V], error] {
	return Watch(ctx, m.cl, m.name, from, m.cfg.Codec)
}

// Watch is Map.Watch without a Map: it streams the changes of the map called name on cl,
// decoding values with codec (JSON[V] when nil), and loads nothing.
func Watch[V any](ctx context.Context, cl *channel.Client, name string, from channel.From, codec Codec[V]) iter.Seq2[Change[V], error] {
	writes := Writes(ctx, cl, name, from, codec)
	return func(yield func(Change[V], error) bool) {
		for w, err := range writes {
			if err != nil {
				yield(Change[V]{}, err)
				return
			}
			if w.Reset != nil {
				if !yield(Change[V]{Position: w.Position, Reset: w.Reset}, nil) {
					return
				}
				continue
			}
			for _, ch := range w.Changes {
				if !yield(ch, nil) {
					return
				}
			}
		}
	}
}

// changesOf decodes a message of a map's channel into the changes of its write, in order.
func changesOf[V any](ev channel.Event, codec Codec[V]) ([]Change[V], error) {
	ops, err := wire.DecodeRecord(ev.Data)
	if err != nil {
		return nil, err
	}
	changes := make([]Change[V], len(ops))
	for i, o := range ops {
		ch := Change[V]{Position: ev.Position, Key: o.Key, Deleted: o.Del, OldVersion: o.Old, Version: ev.Seq}
		if !o.Del {
			ch.Raw = []byte(o.Value)
			v, derr := codec.Decode(ch.Raw)
			ch.Value = v
			if derr != nil {
				ch.Err = &DecodeError{Key: o.Key, Version: ev.Seq, Err: derr}
			}
		}
		changes[i] = ch
	}
	return changes, nil
}

package replmap

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/wire"
)

// Status is where a replica stands against Redis, as read by Map.Status.
type Status struct {
	// Ready is Map.Ready at the time of the read.
	Ready bool
	// Applied is the position of the last change the replica had applied; Digest and Keys
	// describe the replica there.
	Applied channel.Position
	Digest  Digest
	Keys    int
	// Head is the position of the newest change in Redis, read after the replica;
	// RedisDigest and RedisKeys describe Redis's state there.
	Head        channel.Position
	RedisDigest Digest
	RedisKeys   int
	// Lag is the number of changes Redis holds that the replica had not applied: Head.Seq -
	// Applied.Seq in one epoch (0 if the replica is ahead: the head was read after it), Head.Seq
	// when the epochs differ.
	Lag uint64
	// LagTime is how long before the read Redis accepted the oldest change the replica had not
	// applied, measured with Redis's clock; zero when Lag is zero.
	LagTime time.Duration
	// Staleness is Map.Staleness at the time of the read.
	Staleness time.Duration
}

// Comparable reports whether the replica and Redis were read at the same position, so that
// their digests can be compared.
func (s Status) Comparable() bool { return s.Ready && s.Applied == s.Head }

// Match reports whether the replica agrees with Redis: Comparable, with equal digests and key
// counts. Unlike Verify it never waits and never starts a new snapshot.
func (s Status) Match() bool {
	return s.Comparable() && s.Digest == s.RedisDigest && s.Keys == s.RedisKeys
}

// Status reads the replica's position and digest, then in one round trip to Redis the map's
// head, Redis's digest and the time of the oldest change the replica has not applied. It is
// read-only: it changes nothing in the replica or in Redis.
func (m *Map[V]) Status(ctx context.Context) (Status, error) {
	var s Status
	m.mu.RLock()
	s.Ready, s.Applied, s.Digest, s.Keys = m.ready, channel.Position{Epoch: m.epoch, Seq: m.applied}, m.digest, len(m.entries)
	m.mu.RUnlock()
	s.Staleness = m.Staleness()

	logKey := m.w.k.Log
	rc := m.cl.Redis()
	next := strconv.FormatUint(s.Applied.Seq+1, 10) + "-0"
	rs := rc.DoMulti(ctx,
		rc.B().Hmget().Key(m.meta).Field(wire.MapMetaFields...).Build(),
		// The log entry holding seq applied+1: the newest one whose id (its first seq) is at
		// most that.
		rc.B().Xrevrange().Key(logKey).End(next).Start("-").Count(1).Build(),
		rc.B().Time().Build(),
	)
	for _, r := range rs {
		if err := r.Error(); err != nil {
			return Status{}, fmt.Errorf("replmap: status of map %q: %w", m.name, err)
		}
	}
	vs, err := rs[0].ToArray()
	if err != nil {
		return Status{}, fmt.Errorf("replmap: status of map %q: %w", m.name, err)
	}
	meta, err := wire.ParseMapMeta(vs)
	if err != nil {
		return Status{}, fmt.Errorf("replmap: status of map %q: %w", m.name, err)
	}
	s.Head = channel.Position{Epoch: meta.Epoch, Seq: meta.Seq}
	s.RedisDigest, s.RedisKeys = meta.Digest, meta.Keys

	switch {
	case s.Head.Epoch != s.Applied.Epoch:
		s.Lag = s.Head.Seq
	case s.Head.Seq > s.Applied.Seq:
		s.Lag = s.Head.Seq - s.Applied.Seq
	}
	if s.Lag > 0 && s.Head.Epoch == s.Applied.Epoch {
		entries, _ := rs[1].AsXRange() // every message of an entry has the entry's time
		now, _ := rs[2].AsStrSlice()
		if len(entries) == 1 && len(now) == 2 {
			t, err1 := strconv.ParseInt(entries[0].FieldValues["t"], 10, 64)
			sec, err2 := strconv.ParseInt(now[0], 10, 64)
			usec, err3 := strconv.ParseInt(now[1], 10, 64)
			if err1 == nil && err2 == nil && err3 == nil {
				s.LagTime = max(time.Unix(sec, usec*1000).Sub(time.UnixMilli(t)), 0)
			}
		}
	}
	return s, nil
}

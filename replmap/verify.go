package replmap

import (
	"context"
	"fmt"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/wire"
)

// Verification is the outcome of Verify: Redis's and the replica's digests at one position.
type Verification struct {
	Position    channel.Position
	Redis       Digest
	Replica     Digest
	RedisKeys   int
	ReplicaKeys int
	Match       bool
}

type capture struct {
	epoch string
	ch    chan capturedDigest // buffered
}

type capturedDigest struct {
	ok     bool // false: the replica could not be caught at that seq; try again
	digest Digest
	keys   int
}

// Verify compares the replica with Redis at the same position: it reads the digest Redis keeps
// with every write and the replica's digest when the replica has applied exactly that seq. On a
// mismatch the replica loads a new snapshot by itself (and logs it); Verify still reports the
// mismatch. It retries while writes outrun it, until ctx ends.
func (m *Map[V]) Verify(ctx context.Context) (Verification, error) {
	rc := m.cl.Redis()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			sleep(ctx, 10*time.Millisecond)
		}
		vs, err := rc.Do(ctx, rc.B().Hmget().Key(m.meta).Field(wire.MapMetaFields...).Build()).ToArray()
		var meta wire.MapMeta
		if err == nil {
			meta, err = wire.ParseMapMeta(vs)
		}
		if err != nil {
			return Verification{}, fmt.Errorf("replmap: verify map %q: %w", m.name, err)
		}
		v := Verification{Position: channel.Position{Epoch: meta.Epoch, Seq: meta.Seq}, Redis: meta.Digest, RedisKeys: meta.Keys}

		got, err := m.digestAt(ctx, v.Position)
		if err != nil {
			return Verification{}, err
		}
		if !got.ok {
			continue // the replica moved past that seq or was reloaded: read Redis again
		}
		v.Replica, v.ReplicaKeys = got.digest, got.keys
		v.Match = v.Replica == v.Redis && v.ReplicaKeys == v.RedisKeys
		if !v.Match {
			m.cfg.Logger.Warn("redisync: map replica disagrees with Redis; not ready until it has loaded a new snapshot", "map", m.name,
				"seq", v.Position.Seq, "redis_digest", v.Redis, "replica_digest", v.Replica,
				"redis_keys", v.RedisKeys, "replica_keys", v.ReplicaKeys)
			m.stats.divergences.Add(1)
			m.reload()
		}
		return v, nil
	}
}

// digestAt returns the replica's digest when it has applied exactly pos.
func (m *Map[V]) digestAt(ctx context.Context, pos channel.Position) (capturedDigest, error) {
	ch := make(chan capturedDigest, 1)
	m.mu.Lock()
	switch {
	case m.ready && m.epoch == pos.Epoch && m.applied == pos.Seq:
		ch <- capturedDigest{ok: true, digest: m.digest, keys: len(m.entries)}
	case m.ready && m.epoch == pos.Epoch && m.applied > pos.Seq:
		ch <- capturedDigest{}
	default:
		m.wants[pos.Seq] = append(m.wants[pos.Seq], capture{epoch: pos.Epoch, ch: ch})
	}
	m.mu.Unlock()
	select {
	case got := <-ch:
		return got, nil
	case <-ctx.Done():
		return capturedDigest{}, ctx.Err()
	case <-m.ctx.Done():
		return capturedDigest{}, ErrClosed
	}
}

// answerWantsLocked answers the digests asked for at seqs the replica has now reached.
func (m *Map[V]) answerWantsLocked() {
	for seq, ws := range m.wants {
		if seq > m.applied {
			continue
		}
		for _, w := range ws {
			if seq == m.applied && m.ready && w.epoch == m.epoch {
				w.ch <- capturedDigest{ok: true, digest: m.digest, keys: len(m.entries)}
			} else {
				w.ch <- capturedDigest{}
			}
		}
		delete(m.wants, seq)
	}
}

// reload marks the replica not ready and asks run for a new snapshot.
func (m *Map[V]) reload() {
	m.mu.Lock()
	m.ready = false
	m.notifyLocked()
	m.mu.Unlock()
	select {
	case m.resnap <- struct{}{}:
	default:
	}
}

// verifyLoop runs Verify every Config.VerifyEvery while the replica is ready, until Close.
func (m *Map[V]) verifyLoop() {
	if m.cfg.VerifyEvery < 0 {
		return
	}
	t := time.NewTicker(m.cfg.VerifyEvery)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		}
		if !m.Ready() {
			continue
		}
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.VerifyEvery)
		if _, err := m.Verify(ctx); err != nil && m.ctx.Err() == nil {
			m.cfg.Logger.Debug("redisync: periodic verify failed", "map", m.name, "err", err)
		}
		cancel()
	}
}

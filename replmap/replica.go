package replmap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/wire"
)

// run keeps the replica current until Close: it loads a snapshot, follows the channel from the
// snapshot's position, and loads a new snapshot whenever the channel reports a reset or Verify
// finds a mismatch.
func (m *Map[V]) run() {
	for attempt := 0; m.ctx.Err() == nil; {
		pos, err := m.bootstrap(m.ctx)
		if errors.Is(err, channel.ErrWrongKind) || isNoPerm(err) {
			m.mu.Lock()
			if m.fault == nil {
				m.cfg.Logger.Error("redisync: cannot load the map", "map", m.name, "err", err)
			}
			m.fault = err
			m.notifyLocked()
			m.mu.Unlock()
		}
		if err != nil {
			if m.ctx.Err() != nil {
				return
			}
			m.cfg.Logger.Warn("redisync: loading the map's snapshot failed; retrying", "map", m.name, "err", err)
			sleep(m.ctx, backoff(attempt))
			attempt++
			continue
		}
		attempt = 0
		sub, err := m.cl.Subscribe(m.ctx, m.name, channel.After(pos).Of(channel.KindMap), m.apply)
		if err != nil {
			return // the channel client is closed
		}
		m.sub.Store(sub)
		select {
		case <-sub.Done():
		case <-m.resnap:
			sub.Close()
		case <-m.ctx.Done():
			sub.Close()
			return
		}
		if err := sub.Err(); m.ctx.Err() == nil && !errors.Is(err, errResnapshot) && !errors.Is(err, channel.ErrClosed) {
			m.cfg.Logger.Warn("redisync: following the map's channel failed; loading a new snapshot", "map", m.name, "err", err)
			sleep(m.ctx, time.Second)
		}
	}
}

// bootstrap loads a snapshot of the map into a new replica state and swaps it in. It returns
// the position to follow the channel from.
//
// The head is read before the scan, and the scan is not atomic: writes that happen during it
// may or may not be seen. Following the channel from that head and applying a change only when
// it is newer than the key's version makes the replica converge all the same (see PROTOCOL.md,
// "Maps"); the replica is ready once it has applied the head read after the scan.
func (m *Map[V]) bootstrap(ctx context.Context) (channel.Position, error) {
	start := time.Now()
	started := m.loadStarts.Add(1)
	kind, err := m.cl.Kind(ctx, m.name)
	if err != nil {
		return channel.Position{}, err
	}
	if kind != "" && kind != channel.KindMap {
		return channel.Position{}, &channel.KindError{Name: m.name, Kind: kind, Want: channel.KindMap}
	}
	first, err := m.cl.Head(ctx, m.name)
	if err != nil {
		return channel.Position{}, err
	}
	entries := make(map[string]entry[V])
	bad := make(map[string]error)
	var digest Digest
	if first.Epoch != "" { // without an epoch the map has no history: any state left is stale
		if entries, bad, digest, err = m.scan(ctx); err != nil {
			return channel.Position{}, err
		}
	}
	last := first // a map without history is ready at once: it follows whatever comes
	if first.Epoch != "" {
		if last, err = m.cl.Head(ctx, m.name); err != nil {
			return channel.Position{}, err
		}
		if last.Epoch != first.Epoch {
			return channel.Position{}, fmt.Errorf("replmap: map %q changed epoch during its snapshot", m.name)
		}
	}

	m.mu.Lock()
	loaded := m.stats.snapshots.Add(1) // counted before the replica can be seen ready
	m.fault = nil
	m.entries, m.bad, m.digest = entries, bad, digest
	oldEpoch := m.epoch
	m.epoch, m.applied, m.appliedID, m.readyAt = first.Epoch, first.Seq, first.Entry, last.Seq
	m.recent, m.loadStart = m.recent[:0], started
	if m.applied >= m.readyAt {
		m.ready = true
	}
	for seq, ws := range m.wants { // the replica was replaced: those digests cannot be taken
		for _, w := range ws {
			w.ch <- capturedDigest{}
		}
		delete(m.wants, seq)
	}
	m.notifyLocked()
	m.mu.Unlock()

	if loaded > 1 {
		m.stats.resnapshots.Add(1)
		m.cfg.Logger.Warn("redisync: map replica reloaded from a new snapshot", "map", m.name, "keys", len(entries), "seq", first.Seq)
		if m.cfg.OnChange != nil {
			m.cfg.OnChange(Change[V]{Position: first, Reset: &channel.Reset{Reason: channel.ResetReloaded, From: 1, Open: true,
				OldEpoch: oldEpoch, NewEpoch: first.Epoch}})
		}
	}
	m.cfg.Logger.Debug("redisync: map snapshot loaded", "map", m.name, "keys", len(entries), "took", time.Since(start))
	return first, nil
}

// scan reads the map's state with HSCAN, fetching the next chunk while it decodes the last,
// and returns it with its digest. HSCAN may return a key twice; the later copy wins, which is
// as good as the first, and the digest is then computed again from the entries.
func (m *Map[V]) scan(ctx context.Context) (map[string]entry[V], map[string]error, Digest, error) {
	rc := m.cl.Redis()
	total, err := rc.Do(ctx, rc.B().Hlen().Key(m.state).Build()).AsInt64()
	if err != nil {
		return nil, nil, Digest{}, err
	}
	type chunk struct {
		elems []string
		err   error
	}
	chunks := make(chan chunk, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(chunks)
		for cursor := uint64(0); ; {
			e, err := rc.Do(ctx, rc.B().Hscan().Key(m.state).Cursor(cursor).Count(int64(m.cfg.ScanCount)).Build()).AsScanEntry()
			select {
			case chunks <- chunk{e.Elements, err}:
			case <-ctx.Done():
				return
			}
			if err != nil || e.Cursor == 0 {
				return
			}
			cursor = e.Cursor
		}
	}()
	defer wg.Wait()
	defer cancel()

	entries := make(map[string]entry[V], total)
	bad := make(map[string]error)
	var digest Digest
	pairs := 0
	for c := range chunks {
		if c.err != nil {
			return nil, nil, Digest{}, c.err
		}
		for i := 0; i+1 < len(c.elems); i += 2 {
			key := c.elems[i]
			st, err := wire.ParseStored(c.elems[i+1])
			if err != nil {
				return nil, nil, Digest{}, fmt.Errorf("replmap: key %q of map %q: %w", key, m.name, err)
			}
			ver, raw := st.Version, st.Value
			v, derr := decodeString(m.cfg.Codec, raw)
			if derr != nil {
				bad[key] = derr
				m.stats.decodeErrors.Add(1)
			} else {
				delete(bad, key)
			}
			entries[key] = entry[V]{val: v, ver: ver, bad: derr != nil}
			digest.Add(key, ver) // while the next HSCAN is in flight
			pairs++
		}
		if m.cfg.Progress != nil {
			m.cfg.Progress(len(entries), int(total))
		}
	}
	if pairs != len(entries) { // a key came twice: count each once
		digest = Digest{}
		for k, e := range entries {
			digest.Add(k, e.ver)
		}
	}
	return entries, bad, digest, nil
}

// apply applies one change of the map's channel. It runs on the replica's subscription.
func (m *Map[V]) apply(_ context.Context, ev channel.Event) error {
	if ev.Reset != nil {
		m.cfg.Logger.Warn("redisync: map channel reset; not ready until it has loaded a new snapshot", "map", m.name,
			"reason", ev.Reset.Reason, "lost", ev.Reset.String())
		m.mu.Lock()
		m.ready = false
		m.notifyLocked()
		m.mu.Unlock()
		return errResnapshot
	}
	ops, err := wire.DecodeRecord(ev.Data)
	if err != nil {
		m.stats.badRecords.Add(1)
		m.cfg.Logger.Warn("redisync: skipped a message of the map's channel that is not a change record", "map", m.name, "seq", ev.Seq)
	}
	var changes []Change[V]
	if m.cfg.OnChange != nil {
		changes = make([]Change[V], 0, len(ops))
	}
	m.mu.Lock()
	m.epoch = ev.Epoch
	for _, o := range ops {
		cur, has := m.entries[o.Key]
		if has && cur.ver >= ev.Seq {
			continue // the snapshot already holds this change or a newer one
		}
		ch := Change[V]{Position: ev.Position, Key: o.Key, Deleted: o.Del, OldVersion: o.Old, Version: ev.Seq}
		key := strings.Clone(o.Key)
		if has {
			m.digest.Remove(key, cur.ver)
		}
		if o.Del {
			if has {
				delete(m.entries, key)
				delete(m.bad, key)
			}
		} else {
			raw := []byte(o.Value)
			v, derr := m.cfg.Codec.Decode(raw)
			m.entries[key] = entry[V]{val: v, ver: ev.Seq, bad: derr != nil}
			if derr != nil {
				m.bad[key] = derr
				m.stats.decodeErrors.Add(1)
				ch.Err = &DecodeError{Key: key, Version: ev.Seq, Err: derr}
			} else {
				delete(m.bad, key)
			}
			m.digest.Add(key, ev.Seq)
			ch.Value, ch.Raw = v, raw
		}
		if changes != nil {
			changes = append(changes, ch)
		}
		m.stats.changes.Add(1)
	}
	m.applied, m.appliedID = ev.Seq, ev.Entry
	m.rememberLocked(ev.Position)
	if !m.ready && m.applied >= m.readyAt {
		m.ready = true
	}
	m.answerWantsLocked()
	m.notifyLocked()
	m.mu.Unlock()
	for _, ch := range changes {
		m.cfg.OnChange(ch)
	}
	return nil
}

// notifyLocked wakes everything waiting in waitUntil.
func (m *Map[V]) notifyLocked() {
	close(m.changed)
	m.changed = make(chan struct{})
}

func backoff(attempt int) time.Duration {
	return min(100*time.Millisecond<<min(attempt, 5), 3*time.Second)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// isNoPerm reports whether Redis refused a command to this user: retrying will not help
// until the ACL changes, so WaitReady reports it.
func isNoPerm(err error) bool {
	var re *rueidis.RedisError
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "NOPERM")
}

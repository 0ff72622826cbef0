package channel

import (
	"context"
	"sort"
	"time"

	"github.com/redisync/redisync/internal/wire"
)

// A log entry names itself with a random id and the id of the entry before it (PROTOCOL.md,
// "The envelope"), so a subscriber can tell that the log still continues the history it
// delivered. Numbers alone cannot: after a failover that lost acknowledged writes, the new
// primary hands out the same seqs again, under the same epoch, to other messages.

// history remembers the log entries a subscription delivered most recently (up to max), so
// that after a failover it can find where the log parted from what it delivered.
type history struct {
	ents []delivered // in seq order
	max  int
}

// delivered is a log entry a subscription delivered (all of it from first, or its tail).
type delivered struct {
	first, last uint64
	id          string
}

// add records an entry delivered after every entry already recorded.
func (h *history) add(first, last uint64, id string) {
	if id == "" {
		return // a version 1 entry: nothing to compare later
	}
	if n := len(h.ents); n > 0 && h.ents[n-1].first == first {
		h.ents[n-1] = delivered{first, last, id} // the rest of an entry delivered in parts
		return
	}
	if len(h.ents) >= 2*h.max {
		h.ents = append(h.ents[:0], h.ents[len(h.ents)-h.max:]...)
	}
	h.ents = append(h.ents, delivered{first, last, id})
}

// clear forgets everything, for a new epoch.
func (h *history) clear() { h.ents = h.ents[:0] }

// lookup returns the recorded entry starting at first. covered reports whether first falls
// within the recorded range at all, so that a missing entry there means another batching.
func (h *history) lookup(first uint64) (d delivered, found, covered bool) {
	i := sort.Search(len(h.ents), func(i int) bool { return h.ents[i].first >= first })
	if i < len(h.ents) && h.ents[i].first == first {
		return h.ents[i], true, true
	}
	return delivered{}, false, len(h.ents) > 0 && first >= h.ents[0].first && first <= h.ents[len(h.ents)-1].last
}

// cut forgets the entries from seq d on and returns the id of the entry that ends at d-1, or
// "" when none recorded does.
func (h *history) cut(d uint64) string {
	i := sort.Search(len(h.ents), func(i int) bool { return h.ents[i].last >= d })
	h.ents = h.ents[:i]
	if i > 0 && h.ents[i-1].last == d-1 {
		return h.ents[i-1].id
	}
	return ""
}

// knows reports whether env, which holds seqs the subscription already delivered, is the entry
// it delivered there (or the entry it started in): false means the log has changed under it.
// Entries it cannot compare (version 1, or older than what it remembers) are taken to be the
// same.
func (s *subscriber) knows(env *wire.Envelope) bool {
	if env.ID == "" {
		return true
	}
	d, found, covered := s.hist.lookup(env.First)
	if found {
		return d.id == env.ID
	}
	if s.anchor.id != "" && env.First <= s.anchor.seq && s.anchor.seq <= env.Last() {
		return env.ID == s.anchor.id
	}
	return !covered
}

// continues reports whether env, which starts at or before s.next and holds it, continues the
// history the subscription delivered.
func (s *subscriber) continues(env *wire.Envelope) bool {
	if env.First < s.next {
		return s.knows(env)
	}
	return s.tip == "" || env.Prev == "" || env.Prev == s.tip
}

// deliveredEntry records that the subscription delivered env's messages up to its last.
func (s *subscriber) deliveredEntry(env *wire.Envelope) {
	s.hist.add(env.First, env.Last(), env.ID)
	s.tip = env.ID
}

// parting finds the first seq at which the log (whose head is head) no longer holds the
// history this subscription delivered, comparing the entries it remembers with the log's. It
// returns s.next when everything it remembers is still there.
func (s *subscriber) parting(ctx context.Context, head uint64) (uint64, error) {
	hs := s.hist.ents
	if len(hs) == 0 {
		return s.below(ctx, head)
	}
	for i := 0; i < len(hs); {
		if hs[i].first > head {
			if i == 0 {
				return s.below(ctx, head) // nothing remembered is left to compare
			}
			return hs[i].first, nil
		}
		f, err := s.fetch(ctx, hs[i].first, s.c.cfg.FetchCount)
		if err != nil {
			return 0, err
		}
		if f.Epoch != s.epoch || len(f.Entries) == 0 {
			return s.next, nil // the catch-up that follows sees what happened
		}
		es := f.Entries
		if i == 0 && es[0].First > hs[0].first {
			// The log no longer reaches back to the oldest entries remembered: trimmed, not
			// parted. Compare from the first one it still holds.
			for i < len(hs) && hs[i].first < es[0].First {
				i++
			}
			continue
		}
		start := i
		for j := 0; i < len(hs) && j < len(es); {
			h, e := hs[i], es[j]
			switch {
			case e.Last() < h.first:
				j++ // an entry delivered without an id, or before the range compared
			case e.First == h.first && e.ID == h.id:
				i++
				j++
			case i == 0:
				// Even the oldest entry remembered differs: the two histories part earlier
				// than memory reaches.
				return s.below(ctx, head)
			default:
				return h.first, nil
			}
		}
		if i == start {
			return s.next, nil // no progress (the log holds only older entries): nothing to compare
		}
	}
	return s.next, nil
}

// below finds where the log parts from this subscription's history when that is below every
// entry it remembers delivering. The entry it started in may still be there: the histories
// then part after it. Otherwise nothing tells where they part, down to the oldest message the
// log holds: every message delivered, and everything from there on, is suspect.
func (s *subscriber) below(ctx context.Context, head uint64) (uint64, error) {
	if a := s.anchor; a.id != "" && a.seq <= head {
		f, err := s.fetch(ctx, a.seq, 1)
		if err != nil {
			return 0, err
		}
		if f.Epoch == s.epoch && len(f.Entries) > 0 && f.Entries[0].First <= a.seq && f.Entries[0].ID == a.id {
			return a.seq + 1, nil
		}
	}
	lo := s.next
	if s.since != 0 {
		lo = min(lo, s.since)
	}
	f, err := s.fetch(ctx, 1, 1)
	if err != nil {
		return 0, err
	}
	if f.Epoch == s.epoch && len(f.Entries) > 0 {
		lo = min(lo, f.Entries[0].First)
	} else {
		lo = 1
	}
	return max(lo, 1), nil
}

// rewind handles a log that no longer holds what the subscription delivered (a failover lost
// acknowledged writes): it announces the delivered messages the log no longer holds as a
// rewound reset, and moves back to where the histories part, so that the log's messages from
// there on are delivered. head is the log's head.
func (s *subscriber) rewind(ctx context.Context, head uint64) error {
	d, err := s.parting(ctx, head)
	if err != nil {
		return err
	}
	d = min(d, head+1)
	if d >= s.next {
		s.tip = "" // nothing delivered was lost; the next entry cannot be checked
		return nil
	}
	s.c.stats.rewinds.Add(1)
	tip := s.hist.cut(d)
	if tip == "" && s.anchor.seq == d-1 {
		tip = s.anchor.id
	}
	if d <= s.anchor.seq {
		s.anchor.seq, s.anchor.id = 0, "" // the log holds another entry there now
	}
	err = s.reset(ctx, Reset{Reason: ResetRewound, From: d, To: s.next - 1, OldEpoch: s.epoch, NewEpoch: s.epoch},
		Position{Epoch: s.epoch, Seq: d - 1, Entry: tip})
	if s.mark != nil {
		s.mark(s.epoch, d)
	}
	s.tip = tip
	s.next = d
	return err
}

// PartedWindow is how long a start after a position without an entry id heeds where a
// subscription last found the channel's history parted (see After): a client that delivered
// messages a failover lost, and resumes by seq alone, does so within it.
const PartedWindow = 15 * time.Minute

// checkBareStart handles a start after p when p has an epoch but no entry id, so that the
// log cannot tell whether the message at p.Seq is the one the caller delivered. If another
// subscription found, within PartedWindow, that this epoch's history parted at a seq D at or
// below p.Seq, the caller may have delivered messages from D on that the log no longer holds:
// they are announced as rewound (D to p.Seq), and the log is delivered from D.
func (s *subscriber) checkBareStart(ctx context.Context, p Position) error {
	if p.Epoch == "" || p.Entry != "" || p.Seq == 0 || s.parted == nil {
		return nil
	}
	epoch, d, at, err := s.parted(ctx)
	if err != nil || epoch != p.Epoch || d == 0 || d > p.Seq || time.Since(at) > PartedWindow {
		return nil // no mark, or one that does not concern p: trust p, as before
	}
	s.c.stats.rewinds.Add(1)
	err = s.reset(ctx, Reset{Reason: ResetRewound, From: d, To: p.Seq, OldEpoch: p.Epoch, NewEpoch: p.Epoch},
		Position{Epoch: p.Epoch, Seq: d - 1})
	s.next, s.tip = d, ""
	return err
}

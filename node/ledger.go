package node

import (
	"sync"

	"github.com/redisync/redisync/channel"
)

// ledger remembers which log entry each position the node's streams sent belonged to, so that
// a client resuming with a bare "EPOCH:SEQ" (EventSource's Last-Event-ID) is checked against the
// log as if it had sent the entry too (channel.After). After a failover that lost acknowledged
// writes, the same EPOCH:SEQ names two messages; a position the node sent under two entries is
// answered with an entry that matches neither, so the subscription rewinds rather than trusts it.
//
// It is bounded: ledgerSeqs positions per name, in slots by seq, and ledgerNames names, any
// one of them dropped when a new one comes. A position it does not know is trusted, as before.
type ledger struct {
	mu    sync.Mutex
	names map[string]*[ledgerSeqs]sent // by kind and name
}

const (
	ledgerSeqs  = 1024
	ledgerNames = 256
	// ledgerTwice is the entry given to a position the node sent under two entries.
	ledgerTwice = "sent-under-two-entries"
)

// sent is a position the node sent, with its entry.
type sent struct {
	epoch string
	seq   uint64
	entry string
	twice bool
}

func ledgerKey(kind channel.Kind, name string) string { return string(kind) + "\x00" + name }

// note records that a stream of the name sent p.
func (l *ledger) note(kind channel.Kind, name string, p channel.Position) {
	if p.Entry == "" || p.Epoch == "" || p.Seq == 0 {
		return
	}
	key := ledgerKey(kind, name)
	l.mu.Lock()
	defer l.mu.Unlock()
	slots := l.names[key]
	if slots == nil {
		if l.names == nil {
			l.names = make(map[string]*[ledgerSeqs]sent)
		}
		if len(l.names) >= ledgerNames {
			for k := range l.names {
				delete(l.names, k)
				break
			}
		}
		slots = new([ledgerSeqs]sent)
		l.names[key] = slots
	}
	s := &slots[p.Seq%ledgerSeqs]
	if s.epoch == p.Epoch && s.seq == p.Seq {
		s.twice = s.twice || s.entry != p.Entry
		return
	}
	*s = sent{epoch: p.Epoch, seq: p.Seq, entry: p.Entry}
}

// complete returns p with the entry the node sent it under, when p has none and the node
// remembers it.
func (l *ledger) complete(kind channel.Kind, name string, p channel.Position) channel.Position {
	if p.Entry != "" || p.Epoch == "" || p.Seq == 0 {
		return p
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	slots := l.names[ledgerKey(kind, name)]
	if slots == nil {
		return p
	}
	if s := slots[p.Seq%ledgerSeqs]; s.epoch == p.Epoch && s.seq == p.Seq {
		p.Entry = s.entry
		if s.twice {
			p.Entry = ledgerTwice
		}
	}
	return p
}

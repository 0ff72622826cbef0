package channel

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/wire"
)

// The subscription's logic (catch-up, live envelopes, idle heads, resets, rewinds) against a
// log in memory, through its one seam to Redis (subscriber.read): no redis-server needed.

// memLog is a channel's log as fetch.lua reads it.
type memLog struct {
	epoch   string
	entries []*wire.Envelope // in seq order; the head is the last one's last seq unless trimmed to nothing
	head    uint64
}

// add appends an entry of n messages "<seq>" named id.
func (l *memLog) add(n int, id string) *wire.Envelope {
	prev := ""
	if len(l.entries) > 0 {
		prev = l.entries[len(l.entries)-1].ID
	}
	e := &wire.Envelope{Epoch: l.epoch, First: l.head + 1, ID: id, Prev: prev}
	for i := range n {
		e.Data = append(e.Data, fmt.Sprint(l.head+1+uint64(i)))
	}
	l.entries = append(l.entries, e)
	l.head += uint64(n)
	return e
}

// rollback drops the entries after seq to, as a failover to a lagging replica does.
func (l *memLog) rollback(to uint64) {
	for len(l.entries) > 0 && l.entries[len(l.entries)-1].First > to {
		l.entries = l.entries[:len(l.entries)-1]
	}
	l.head = to
}

// trim drops the entries wholly below seq from.
func (l *memLog) trim(from uint64) {
	for len(l.entries) > 0 && l.entries[0].Last() < from {
		l.entries = l.entries[1:]
	}
}

func (l *memLog) tip() string {
	if len(l.entries) == 0 || l.entries[len(l.entries)-1].Last() != l.head {
		return ""
	}
	return l.entries[len(l.entries)-1].ID
}

// fetch answers as fetch.lua: the entry holding from (or the newest before it) and on.
func (l *memLog) fetch(_ context.Context, from uint64, count int) (wire.Fetched, error) {
	f := wire.Fetched{Epoch: l.epoch, Head: l.head, Tip: l.tip()}
	if l.epoch == "" || count == 0 {
		return f, nil
	}
	start := 0
	for i, e := range l.entries {
		if e.First <= from {
			start = i
		}
	}
	for _, e := range l.entries[start:] {
		if len(f.Entries) == count {
			break
		}
		f.Entries = append(f.Entries, e)
	}
	return f, nil
}

// machine is a subscriber over a memLog that records what it delivers as "m<seq>" and
// "r<reason>:<from>-<to|on>".
type machine struct {
	s   *subscriber
	log *memLog
	got []string
}

func newMachine(log *memLog, start Position) *machine {
	c := &Client{cfg: Config{FetchCount: 2}.withDefaults()}
	c.hub = newHub(c)
	m := &machine{log: log}
	m.s = c.newSubscriber("c", keys{Name: "c"}, KindChannel, func(_ context.Context, ev Event) error {
		if r := ev.Reset; r != nil {
			to := fmt.Sprint(r.To)
			if r.Open {
				to = "on"
			}
			m.got = append(m.got, fmt.Sprintf("r%s:%d-%s@%s", r.Reason, r.From, to, ev.Position.Token()))
			return nil
		}
		if string(ev.Data) != fmt.Sprint(ev.Seq) {
			m.got = append(m.got, fmt.Sprintf("BAD m%d=%s", ev.Seq, ev.Data))
		}
		m.got = append(m.got, fmt.Sprintf("m%d", ev.Seq))
		return nil
	})
	m.s.read = log.fetch
	m.s.mark, m.s.parted = nil, nil // no Redis: no marks
	m.s.start(start)
	return m
}

func (m *machine) catchUp(t *testing.T) {
	t.Helper()
	if err := m.s.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (m *machine) live(t *testing.T, e *wire.Envelope) {
	t.Helper()
	if err := m.s.onEnvelope(context.Background(), e); err != nil {
		t.Fatal(err)
	}
}

func (m *machine) idle(t *testing.T) {
	t.Helper()
	f, _ := m.log.fetch(context.Background(), 0, 0)
	if err := m.s.onHead(context.Background(), f); err != nil {
		t.Fatal(err)
	}
}

func (m *machine) expect(t *testing.T, want string) {
	t.Helper()
	if got := strings.Join(m.got, " "); got != want {
		t.Fatalf("delivered\n got %s\nwant %s", got, want)
	}
	m.got = nil
}

func TestSubscriberMachine(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, l *memLog) *machine
		want string
	}{
		{"catch-up in pages, then live", func(t *testing.T, l *memLog) *machine {
			l.add(2, "a")
			l.add(1, "b")
			l.add(3, "c")
			m := newMachine(l, Position{Epoch: "E"})
			m.catchUp(t)
			m.live(t, l.add(1, "d"))
			return m
		}, "m1 m2 m3 m4 m5 m6 m7"},
		{"a live duplicate is dropped, a hole is filled from the log", func(t *testing.T, l *memLog) *machine {
			a := l.add(2, "a")
			m := newMachine(l, Position{Epoch: "E"})
			m.catchUp(t)
			m.live(t, a)
			l.add(1, "b")
			m.live(t, l.add(1, "c")) // b's copy was lost
			return m
		}, "m1 m2 m3 m4"},
		{"trimmed before the start", func(t *testing.T, l *memLog) *machine {
			l.add(3, "a")
			l.add(3, "b")
			l.trim(4)
			m := newMachine(l, Position{Epoch: "E", Seq: 1})
			m.catchUp(t)
			return m
		}, "rtrimmed:2-3@E:3 m4 m5 m6"},
		{"start in the middle of an entry", func(t *testing.T, l *memLog) *machine {
			l.add(4, "a")
			m := newMachine(l, Position{Epoch: "E", Seq: 2})
			m.catchUp(t)
			return m
		}, "m3 m4"},
		{"another epoch: an open reset, then the new history", func(t *testing.T, l *memLog) *machine {
			l.add(2, "a")
			m := newMachine(l, Position{Epoch: "OLD", Seq: 5})
			m.catchUp(t)
			return m
		}, "repoch-changed:6-on@E:0 m1 m2"},
		{"a bare seq above the head", func(t *testing.T, l *memLog) *machine {
			l.add(2, "a")
			m := newMachine(l, Position{Seq: 9})
			m.catchUp(t)
			return m
		}, "rrewound:1-9@E:0 m1 m2"},
		{"a bare seq at the head", func(t *testing.T, l *memLog) *machine {
			l.add(2, "a")
			m := newMachine(l, Position{Seq: 2})
			m.catchUp(t)
			m.live(t, l.add(1, "b"))
			return m
		}, "m3"},
		{"rewound with new messages under the same seqs, heard live", func(t *testing.T, l *memLog) *machine {
			for _, id := range []string{"a", "b", "c", "d"} {
				l.add(1, id)
			}
			m := newMachine(l, Position{Epoch: "E"})
			m.catchUp(t)
			l.rollback(2)
			m.live(t, l.add(1, "x")) // seq 3 again: not a duplicate
			l.add(1, "y")
			m.live(t, l.add(1, "z"))
			return m
		}, "m1 m2 m3 m4 rrewound:3-4@E:2:b m3 m4 m5"},
		{"rewound, found by the idle check at the same head", func(t *testing.T, l *memLog) *machine {
			for _, id := range []string{"a", "b", "c"} {
				l.add(1, id)
			}
			m := newMachine(l, Position{Epoch: "E"})
			m.catchUp(t)
			l.rollback(1)
			l.add(1, "x")
			l.add(1, "y") // head 3 again, another tip; no pub/sub copy heard
			m.idle(t)
			return m
		}, "m1 m2 m3 rrewound:2-3@E:1:a m2 m3"},
		{"rewound, and the head passed the subscriber before it caught up", func(t *testing.T, l *memLog) *machine {
			for _, id := range []string{"a", "b", "c", "d"} {
				l.add(1, id)
			}
			m := newMachine(l, Position{Epoch: "E"})
			m.catchUp(t)
			l.rollback(2)
			for _, id := range []string{"x", "y", "z"} {
				l.add(1, id) // seqs 3, 4, 5: the first one past it claims to follow another entry
			}
			m.catchUp(t) // after a reconnect
			return m
		}, "m1 m2 m3 m4 rrewound:3-4@E:2:b m3 m4 m5"},
		{"rewound below the head and nothing followed", func(t *testing.T, l *memLog) *machine {
			for _, id := range []string{"a", "b", "c"} {
				l.add(1, id)
			}
			m := newMachine(l, Position{Epoch: "E"})
			m.catchUp(t)
			l.rollback(1)
			m.idle(t)
			m.live(t, l.add(1, "x"))
			return m
		}, "m1 m2 m3 rrewound:2-3@E:1:a m2"},
		{"a rewind below what was delivered is no reset", func(t *testing.T, l *memLog) *machine {
			for _, id := range []string{"a", "b", "c"} {
				l.add(1, id)
			}
			m := newMachine(l, Position{Epoch: "E", Seq: 3})
			l.rollback(3) // nothing lost that it delivered
			m.catchUp(t)
			m.live(t, l.add(1, "d"))
			return m
		}, "m4"},
		{"from now, on a history a failover then lost below the start", func(t *testing.T, l *memLog) *machine {
			for _, id := range []string{"a", "b", "c", "d", "e"} {
				l.add(1, id)
			}
			m := newMachine(l, Position{Epoch: "E", Seq: 5, Entry: "e"}) // the head and tip, read now
			m.live(t, l.add(1, "f"))
			l.rollback(3) // the new primary had 1..3
			l.add(1, "x")
			m.live(t, l.add(1, "y")) // published after the start: must be delivered
			return m
		}, "m6 rrewound:1-6@E:0 m1 m2 m3 m4 m5"},
		{"from now, nothing delivered, the new head below the start", func(t *testing.T, l *memLog) *machine {
			for _, id := range []string{"a", "b", "c", "d", "e"} {
				l.add(1, id)
			}
			m := newMachine(l, Position{Epoch: "E", Seq: 5, Entry: "e"})
			l.rollback(3)
			l.add(1, "x")
			m.idle(t)
			return m
		}, "rrewound:1-5@E:0 m1 m2 m3 m4"},
		{"a resume from an entry the log lost, the new head past it", func(t *testing.T, l *memLog) *machine {
			for _, id := range []string{"a", "b", "c", "d", "e"} {
				l.add(1, id)
			}
			l.rollback(3)
			for _, id := range []string{"x", "y", "z"} {
				l.add(1, id)
			}
			m := newMachine(l, Position{Epoch: "E", Seq: 5, Entry: "e"}) // delivered before the failover
			m.catchUp(t)
			return m
		}, "rrewound:1-5@E:0 m1 m2 m3 m4 m5 m6"},
		{"a resume inside an entry the log still holds", func(t *testing.T, l *memLog) *machine {
			l.add(4, "a")
			m := newMachine(l, Position{Epoch: "E", Seq: 2, Entry: "a"})
			m.catchUp(t)
			m.live(t, l.add(1, "b"))
			return m
		}, "m3 m4 m5"},
		{"a resume inside an entry the log replaced", func(t *testing.T, l *memLog) *machine {
			l.add(1, "a")
			l.add(4, "b")
			m := newMachine(l, Position{Epoch: "E", Seq: 3, Entry: "lost"})
			m.catchUp(t)
			return m
		}, "rrewound:1-3@E:0 m1 m2 m3 m4 m5"},
		{"a resume from a trimmed log whose entry was lost", func(t *testing.T, l *memLog) *machine {
			for _, id := range []string{"a", "b", "c", "d", "e"} {
				l.add(1, id)
			}
			l.trim(3)
			l.rollback(4)
			l.add(1, "x")
			m := newMachine(l, Position{Epoch: "E", Seq: 5, Entry: "e"})
			m.catchUp(t)
			return m
		}, "rrewound:3-5@E:2 m3 m4 m5"},
		{"the start entry survived, what followed it did not", func(t *testing.T, l *memLog) *machine {
			for _, id := range []string{"a", "b", "c"} {
				l.add(1, id)
			}
			m := newMachine(l, Position{Epoch: "E", Seq: 3, Entry: "c"})
			m.live(t, l.add(1, "d"))
			m.live(t, l.add(1, "e"))
			l.rollback(3)
			l.add(1, "x")
			m.live(t, l.add(1, "y"))
			return m
		}, "m4 m5 rrewound:4-5@E:3:c m4 m5"},
		{"the log lost: an open reset to no history, then a new epoch", func(t *testing.T, l *memLog) *machine {
			l.add(2, "a")
			m := newMachine(l, Position{Epoch: "E"})
			m.catchUp(t)
			*l = memLog{}
			m.idle(t)
			l.epoch = "F"
			l.add(1, "n")
			m.catchUp(t)
			return m
		}, "m1 m2 repoch-changed:3-on@0 m1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.run(t, &memLog{epoch: "E"})
			m.expect(t, tc.want)
		})
	}
}

// FuzzRecordDecoder: a change record that decodes never panics and its operations account for
// every byte of the body.
func FuzzDecodeRecord(f *testing.F) {
	f.Add("m1 2 s 0 1 1 d 7 1 0\na1b")
	f.Add("m1 1 s 0 0 0\n")
	f.Add("m1 99999999999 s 0 1 1\nx")
	f.Fuzz(func(t *testing.T, msg string) {
		ops, err := wire.DecodeRecord([]byte(msg))
		if err != nil {
			return
		}
		n := 0
		for _, o := range ops {
			n += len(o.Key) + len(o.Value)
		}
		_, body, _ := strings.Cut(msg, "\n")
		if n != len(body) {
			t.Fatalf("%q: operations hold %d bytes of a %d-byte body", msg, n, len(body))
		}
	})
}

// FuzzParsePosition: whatever parses prints back to the same position.
func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{"e:5", "5", "0", "a:b:5", ":5", "e:", "e:5:x", "e:5:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePosition(s)
		if err != nil {
			return
		}
		if q, err := ParsePosition(p.Token()); err != nil || q != p {
			t.Fatalf("%q parsed as %v, which reads back as %v, %v", s, p, q, err)
		}
	})
}

// Entries deleted above the start, with older ones still there: a trim, not a spin.
func TestSubscriberMachineHoleAtTheEnd(t *testing.T) {
	l := &memLog{epoch: "E"}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		l.add(1, id)
	}
	l.entries = l.entries[:3] // entries 4 and 5 deleted (XDEL), the head stays at 5
	m := newMachine(l, Position{Epoch: "E", Seq: 3})
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.catchUp(t)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the catch-up did not end")
	}
	m.expect(t, "rtrimmed:4-5@E:5")
}

package channel

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
)

// rollback makes the log of name look as it does after a failover to a replica that had
// received only the messages up to seq to: the later entries are gone, and the head and the
// tip are those of the entry ending at to. The epoch stays.
func rollback(t *testing.T, srv *redistest.Server, c *Client, name string, to uint64) {
	t.Helper()
	k := c.keysMust(t, name)
	f, err := c.fetch(context.Background(), k, "", 1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	tip := ""
	for _, e := range f.Entries {
		switch {
		case e.Last() == to:
			tip = e.ID
		case e.First > to:
			if _, err := srv.Do("XDEL", k.Log, fmt.Sprintf("%d-0", e.First)); err != nil {
				t.Fatal(err)
			}
		case e.Last() > to:
			t.Fatalf("seq %d is inside entry %d..%d: pick an entry boundary", to, e.First, e.Last())
		}
	}
	if tip == "" {
		t.Fatalf("no entry ends at seq %d", to)
	}
	for _, cmd := range [][]string{
		{"XSETID", k.Log, fmt.Sprintf("%d-0", to)},
		{"HSET", k.Meta, "seq", strconv.FormatUint(to, 10), "tip", tip},
	} {
		if _, err := srv.Do(cmd...); err != nil {
			t.Fatal(err)
		}
	}
}

// publishData publishes one message per call with the given data, returning the positions.
func publishData(t *testing.T, c *Client, name string, data ...string) []Position {
	t.Helper()
	var ps []Position
	for _, d := range data {
		p, err := c.Publish(context.Background(), name, []byte(d))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// expectEvents fails unless the events are, in order, exactly want: "m:SEQ:DATA" for a
// message, "r:FROM-TO" for a rewound reset.
func expectEvents(t *testing.T, events []Event, want ...string) {
	t.Helper()
	var got []string
	for _, ev := range events {
		if r := ev.Reset; r != nil {
			got = append(got, fmt.Sprintf("r:%d-%d", r.From, r.To))
			if r.Reason != ResetRewound {
				got[len(got)-1] += ":" + string(r.Reason)
			}
			continue
		}
		got = append(got, fmt.Sprintf("m:%d:%s", ev.Seq, ev.Data))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events\n got %v\nwant %v", got, want)
	}
}

func msgs(from, to int, prefix string) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("m:%d:%s%d", i, prefix, i))
	}
	return out
}

func data(from, to int, prefix string) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// After a failover that lost acknowledged messages 8..10, new messages get seqs 8..10 again in
// the same epoch. A subscriber that delivered the old ones must say so (a rewound reset of
// exactly 8..10) and deliver the new ones, never drop them as duplicates: whether it hears the
// new messages live, only through its idle check, or finds the head already past its position.
func TestRewoundLogIsDetectedByContent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		to       uint64 // the log is rolled back to this seq
		newMsgs  int    // then this many messages are published
		live     bool   // their pub/sub copies reach the subscriber
		want     []string
		reusedAt bool // the publisher sees a seq it was given before
	}{
		{name: "new messages heard live", to: 7, newMsgs: 3, live: true,
			want: append(append(msgs(1, 10, "old"), "r:8-10"), msgs(8, 10, "new")...), reusedAt: true},
		{name: "new messages found by the idle check", to: 7, newMsgs: 3, live: false,
			want: append(append(msgs(1, 10, "old"), "r:8-10"), msgs(8, 10, "new")...), reusedAt: true},
		{name: "the head passed the subscriber before it caught up", to: 8, newMsgs: 3, live: false,
			want: append(append(msgs(1, 10, "old"), "r:9-10"), msgs(9, 11, "new")...), reusedAt: true},
		{name: "the head went back and nothing followed", to: 7, newMsgs: 0, live: false,
			want: append(msgs(1, 10, "old"), "r:8-10")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startRedis(t, redistest.Options{})
			pub, _ := newTestClient(t, srv.URL(), Config{})
			// A sharded publish is not heard by a SUBSCRIBE subscriber: the log is its only path.
			quiet, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix, Sharded: true})
			sub, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix, IdleCheck: 50 * time.Millisecond})
			rec, _ := subscribe(t, sub, "c", FromStart())
			publishData(t, pub, "c", data(1, 10, "old")...)
			rec.waitMsgs(t, 10, 5*time.Second)

			rollback(t, srv, pub, "c", tc.to)
			via := quiet
			if tc.live {
				via = pub
			}
			ps := publishData(t, via, "c", data(int(tc.to)+1, int(tc.to)+tc.newMsgs, "new")...)
			waitFor(t, func() bool { return len(rec.snapshot()) >= len(tc.want) })
			time.Sleep(200 * time.Millisecond) // a few idle checks: nothing more may come
			expectEvents(t, rec.snapshot(), tc.want...)
			for _, p := range ps {
				if p.Epoch != ps[0].Epoch || p.Epoch == "" {
					t.Fatalf("epoch changed: %v", ps)
				}
			}
			if st := sub.Stats(); st.Rewinds != 1 {
				t.Errorf("subscriber Rewinds = %d, want 1", st.Rewinds)
			}
			if got := via.Stats().SeqsReused; tc.reusedAt && via == pub && got == 0 {
				t.Errorf("the publisher was given seq %d again and did not count it", ps[0].Seq)
			}
		})
	}
}

// A subscription that starts from now after a rewind, or one started after the rewind point,
// sees nothing to reset: it did not deliver the lost messages.
func TestRewindBelowTheStartIsNotAReset(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	pub, _ := newTestClient(t, srv.URL(), Config{})
	sub, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix, IdleCheck: 50 * time.Millisecond})
	publishData(t, pub, "c", data(1, 10, "old")...)
	rec, _ := subscribe(t, sub, "c", FromNow())
	publishData(t, pub, "c", "old11")
	rec.waitMsgs(t, 1, 5*time.Second)
	rollback(t, srv, pub, "c", 11) // nothing delivered is lost
	publishData(t, pub, "c", "new12")
	rec.waitMsgs(t, 2, 5*time.Second)
	expectEvents(t, rec.snapshot(), "m:11:old11", "m:12:new12")
}

func TestHistory(t *testing.T) {
	h := history{max: 3}
	for i := uint64(1); i <= 10; i++ {
		h.add(i*10, i*10+4, fmt.Sprint("id", i)) // entries 10..14, 20..24, …
	}
	if len(h.ents) > 6 || h.ents[len(h.ents)-1].first != 100 {
		t.Fatalf("history kept %d entries: %+v", len(h.ents), h.ents)
	}
	for _, tc := range []struct {
		first          uint64
		found, covered bool
		id             string
	}{
		{100, true, true, "id10"},
		{80, true, true, "id8"},
		{81, false, true, ""},
		{10, false, false, ""},
		{105, false, false, ""},
	} {
		d, found, covered := h.lookup(tc.first)
		if found != tc.found || covered != tc.covered || d.id != tc.id {
			t.Errorf("lookup(%d) = %+v %v %v, want %q %v %v", tc.first, d, found, covered, tc.id, tc.found, tc.covered)
		}
	}
	if tip := h.cut(85); tip != "id8" || h.ents[len(h.ents)-1].first != 80 {
		t.Fatalf("cut(85) = %q, %+v", tip, h.ents)
	}
	if tip := h.cut(82); tip != "" {
		t.Fatalf("cut inside an entry = %q, want no tip", tip)
	}
	h.add(1, 1, "") // version 1 entries are not remembered
	if n := len(h.ents); n > 0 && h.ents[n-1].first == 1 {
		t.Fatal("an entry without an id was remembered")
	}
}

// Sharded pub/sub (SSUBSCRIBE) on one Client follows several channels and rides out killed
// connections like plain pub/sub.
func TestShardedSubscriptionsRideOutKills(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	pub, _ := newTestClient(t, srv.URL(), Config{Sharded: true})
	sub, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix, Sharded: true, IdleCheck: 50 * time.Millisecond})
	names := []string{"a", "b", "c"}
	recs := make([]*recorder, len(names))
	for i, n := range names {
		recs[i], _ = subscribe(t, sub, n, FromNow())
	}
	for round := range 4 {
		for _, n := range names {
			publishN(t, pub, n, 50)
		}
		srv.ClientKill("pubsub")
		for i := range names {
			recs[i].waitMsgs(t, 50*(round+1), 10*time.Second)
		}
	}
	for i := range names {
		checkSequence(t, recs[i].snapshot(), 1, 200)
	}
	if sub.Stats().Reconnects == 0 {
		t.Error("no reconnect counted after killing the sharded subscriptions")
	}
}

// A start that the subscription cannot check against what it delivered: from now, on a
// history a failover then lost, or a resume after a position the failover lost. The
// histories may part anywhere below the start, so the subscription announces everything from
// the log's oldest message up to what it delivered as rewound, and delivers the log from
// there: every message published after the start is delivered, and every message delivered
// that the log lost is inside the reset.
func TestStartOnALostHistory(t *testing.T) {
	t.Run("from now, the log rolled back below the start", func(t *testing.T) {
		srv := startRedis(t, redistest.Options{})
		pub, _ := newTestClient(t, srv.URL(), Config{})
		sub, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix, IdleCheck: 50 * time.Millisecond})
		publishData(t, pub, "c", data(1, 10, "old")...)
		rec, s := subscribe(t, sub, "c", FromNow())
		if st := s.Start(); st.Seq != 10 || st.Entry == "" {
			t.Fatalf("Start() = %+v, want seq 10 with its entry", st)
		}
		publishData(t, pub, "c", "old11")
		rec.waitMsgs(t, 1, 5*time.Second)
		rollback(t, srv, pub, "c", 7) // the new primary had 1..7
		publishData(t, pub, "c", data(8, 12, "new")...)
		want := append(append([]string{"m:11:old11", "r:1-11"}, msgs(1, 7, "old")...), msgs(8, 12, "new")...)
		waitFor(t, func() bool { return len(rec.snapshot()) >= len(want) })
		time.Sleep(200 * time.Millisecond) // a few idle checks: nothing more may come
		expectEvents(t, rec.snapshot(), want...)
	})
	t.Run("from now, nothing delivered, the head below the start", func(t *testing.T) {
		srv := startRedis(t, redistest.Options{})
		pub, _ := newTestClient(t, srv.URL(), Config{})
		sub, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix, IdleCheck: 50 * time.Millisecond})
		publishData(t, pub, "c", data(1, 10, "old")...)
		rec, _ := subscribe(t, sub, "c", FromNow())
		rollback(t, srv, pub, "c", 7)
		publishData(t, pub, "c", "new8")
		want := append(append([]string{"r:1-10"}, msgs(1, 7, "old")...), "m:8:new8")
		waitFor(t, func() bool { return len(rec.snapshot()) >= len(want) })
		time.Sleep(200 * time.Millisecond)
		expectEvents(t, rec.snapshot(), want...)
	})
	for _, tc := range []struct {
		name    string
		newMsgs int
		want    []string
	}{
		{"a resume after a lost position, the head already past it", 5,
			append(append([]string{"r:1-10"}, msgs(1, 7, "old")...), msgs(8, 12, "new")...)},
		{"a resume after a lost position, the head below it", 1,
			append(append([]string{"r:1-10"}, msgs(1, 7, "old")...), "m:8:new8")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startRedis(t, redistest.Options{})
			pub, _ := newTestClient(t, srv.URL(), Config{})
			sub, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix, IdleCheck: 50 * time.Millisecond})
			ps := publishData(t, pub, "c", data(1, 10, "old")...)
			rollback(t, srv, pub, "c", 7)
			publishData(t, pub, "c", data(8, 7+tc.newMsgs, "new")...)
			stored, err := ParsePosition(ps[9].Token()) // as a process would have stored it
			if err != nil || stored != ps[9] || stored.Entry == "" {
				t.Fatalf("ParsePosition(%q) = %+v, %v; want %+v", ps[9].Token(), stored, err, ps[9])
			}
			rec, _ := subscribe(t, sub, "c", After(stored))
			waitFor(t, func() bool { return len(rec.snapshot()) >= len(tc.want) })
			time.Sleep(200 * time.Millisecond)
			expectEvents(t, rec.snapshot(), tc.want...)
		})
	}
}

// A client that delivered messages a failover then lost resumes by seq alone (EPOCH:SEQ, as an
// EventSource does with Last-Event-ID), from another process: nothing tells which history its
// seq came from. A subscription that found the rewind left a mark of where the histories part:
// the resume announces from there to its seq as rewound, and delivers the log from there.
func TestBareResumeAfterAMarkedRewind(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	pub, _ := newTestClient(t, srv.URL(), Config{})
	watcher, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix, IdleCheck: 50 * time.Millisecond})
	rec, _ := subscribe(t, watcher, "c", FromStart())
	ps := publishData(t, pub, "c", data(1, 10, "old")...)
	rec.waitMsgs(t, 10, 5*time.Second)
	rollback(t, srv, pub, "c", 7)
	publishData(t, pub, "c", data(8, 12, "new")...)
	waitFor(t, func() bool { return len(rec.snapshot()) >= 16 }) // 10, the reset 8..10, 8..12
	k := pub.keysMust(t, "c")
	waitFor(t, func() bool {
		e, d, _, err := pub.readParted(context.Background(), k)
		return err == nil && e == ps[0].Epoch && d == 8
	})

	other, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix, IdleCheck: 50 * time.Millisecond})
	bare := Position{Epoch: ps[9].Epoch, Seq: 10} // what the client kept of old10
	late, _ := subscribe(t, other, "c", After(bare))
	want := append([]string{"r:8-10"}, msgs(8, 12, "new")...)
	waitFor(t, func() bool { return len(late.snapshot()) >= len(want) })
	time.Sleep(200 * time.Millisecond)
	expectEvents(t, late.snapshot(), want...)

	// A start below where the histories part is not concerned.
	early, _ := subscribe(t, other, "c", After(Position{Epoch: ps[0].Epoch, Seq: 6}))
	want = append(msgs(7, 7, "old"), msgs(8, 12, "new")...)
	waitFor(t, func() bool { return len(early.snapshot()) >= len(want) })
	time.Sleep(200 * time.Millisecond)
	expectEvents(t, early.snapshot(), want...)
}

// The same resume when no subscription ran through the failover: the publisher that is handed
// a seq it was given before finds, from the calls it remembers, where the log parted from
// them, and leaves the mark. Here another publisher wrote first on the new history (8 and 9),
// so the reused seq (10) is above where the histories part (8).
func TestBareResumeAfterARewindOnlyAPublisherSaw(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	pub, _ := newTestClient(t, srv.URL(), Config{})
	ps := publishData(t, pub, "c", data(1, 10, "old")...)
	rollback(t, srv, pub, "c", 7)
	other, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix})
	publishData(t, other, "c", data(8, 9, "new")...)
	if p := publishData(t, pub, "c", "new10"); p[0].Seq != 10 || pub.Stats().SeqsReused != 1 {
		t.Fatalf("the publish after the rewind: %v, SeqsReused %d; want seq 10, counted", p[0], pub.Stats().SeqsReused)
	}
	k := pub.keysMust(t, "c")
	waitFor(t, func() bool {
		e, d, _, err := pub.readParted(context.Background(), k)
		return err == nil && e == ps[0].Epoch && d == 8
	})

	reader, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix, IdleCheck: 50 * time.Millisecond})
	late, _ := subscribe(t, reader, "c", After(Position{Epoch: ps[0].Epoch, Seq: 9})) // what a reader kept of old9
	want := []string{"r:8-9", "m:8:new8", "m:9:new9", "m:10:new10"}
	waitFor(t, func() bool { return len(late.snapshot()) >= len(want) })
	time.Sleep(200 * time.Millisecond)
	expectEvents(t, late.snapshot(), want...)
}

// A failover that loses more calls than a publisher remembers one by one still leaves a mark
// close to where the histories part: older calls are remembered ever more sparsely. The mark is
// never above that seq (a resume between would go unannounced) and not far below it.
func TestPublisherMarkAfterALongLoss(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	pub, _ := newTestClient(t, srv.URL(), Config{})
	ps := publishData(t, pub, "c", data(1, 400, "old")...)
	rollback(t, srv, pub, "c", 100)
	publishData(t, pub, "c", "new101")
	k := pub.keysMust(t, "c")
	var d uint64
	waitFor(t, func() bool {
		e, seq, _, err := pub.readParted(context.Background(), k)
		d = seq
		return err == nil && e == ps[0].Epoch && seq > 0
	})
	if d > 101 || d < 90 {
		t.Fatalf("mark at seq %d after losing 101..400; want at most 101 (where the histories part) and not far below it", d)
	}
}

// A publisher remembers a few hundred calls however many it made, and among them one close
// below any seq where a failover may part the histories: within a sixteenth of its distance
// from the newest call, and every one of the newest 32.
func TestAcknowledgedCallsStayFewAndClose(t *testing.T) {
	st := &pubState{}
	const calls = 1 << 20
	most := 0
	for i := uint64(1); i <= calls; i++ {
		st.rememberLocked(i, i, "e")
		most = max(most, len(st.acks))
	}
	if most > 32+16*17+32 {
		t.Fatalf("%d calls remembered at most, want a few hundred", most)
	}
	for _, p := range []uint64{calls, calls - 31, calls - 100, calls - 5000, calls / 2, 1000, 2} {
		below := uint64(0)
		for _, a := range st.acks {
			if a.last < p {
				below = a.last
			}
		}
		if gap, age := p-1-below, calls-p; (age < 32 && gap != 0) || gap > age/16+1 {
			t.Errorf("parting at %d: the nearest call remembered below it ends at %d, %d seqs away; want within %d", p, below, gap, age/16+1)
		}
	}
}

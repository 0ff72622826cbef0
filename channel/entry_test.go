package channel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
)

// A subscription from now that returns is fixed: messages published right after it, by the
// same client or another, are all delivered. Repeated, since the old lazy head read lost
// them only when the publish won a race.
func TestSubscribeFromNowIsFixedWhenItReturns(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	a, _ := newTestClient(t, srv.URL(), Config{})
	b, _ := newTestClient(t, srv.URL(), Config{Prefix: a.cfg.Prefix})
	publishN(t, a, "c", 5) // some history before
	for round := range 20 {
		for _, pub := range []*Client{a, b} {
			rec, sub := subscribe(t, a, "c", FromNow())
			ps := publishN(t, pub, "c", 3)
			if start, ok := startOf(sub); ok && (ps[0].Seq != start.Seq+1 || ps[0].Epoch != start.Epoch) {
				t.Fatalf("round %d: Start() = %v but the next publish got %v", round, start, ps[0])
			}
			got := rec.waitMsgs(t, 3, 2*time.Second)
			checkSequence(t, got, ps[0].Seq, ps[2].Seq)
			sub.Close()
		}
	}
}

// startOf is sub.Start(), behind an interface so that this test also builds against versions
// of the package that did not report it.
func startOf(sub any) (Position, bool) {
	s, ok := sub.(interface{ Start() Position })
	if !ok {
		return Position{}, false
	}
	return s.Start(), true
}

// Events from now fixes its start when Events returns, not when the loop begins.
func TestEventsFromNowIsFixedWhenEventsReturns(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	c, _ := newTestClient(t, srv.URL(), Config{})
	publishN(t, c, "c", 4)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	events := c.Events(ctx, "c", FromNow())
	publishN(t, c, "c", 3) // before the loop starts
	var got []Event
	for ev, err := range events {
		if err != nil {
			t.Fatal(err)
		}
		if got = append(got, ev); len(got) == 3 {
			break
		}
	}
	checkSequence(t, got, 5, 7)
}

// A start after a seq with no epoch is resolved against the current history so that every seq
// from 1 up is delivered or inside a reset's range, whether the seq is below, at or above the
// head, or the channel has no history at all.
func TestStartAfterASeqWithoutAnEpoch(t *testing.T) {
	for _, tc := range []struct {
		name       string
		history    int    // messages published before the subscription
		start      uint64 // the bare seq to start after
		wantReset  bool   // a rewound reset of 1..start comes first
		firstAfter uint64 // the first message delivered after the reset (if any)
	}{
		{"below the head", 5, 3, false, 4},
		{"at the head", 5, 5, false, 6},
		{"above the head", 5, 50, true, 1},
		{"one above the head", 5, 6, true, 1},
		{"no history", 0, 7, true, 1},
		{"zero on no history", 0, 0, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startRedis(t, redistest.Options{})
			pub, _ := newTestClient(t, srv.URL(), Config{})
			sub, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix, IdleCheck: 50 * time.Millisecond})
			publishN(t, pub, "c", tc.history)
			rec, _ := subscribe(t, sub, "c", After(Position{Seq: tc.start}))
			if tc.wantReset { // the start is resolved against the head before anything more comes
				waitFor(t, func() bool { return len(rec.snapshot()) > 0 })
			}
			publishN(t, pub, "c", 3)
			total := uint64(tc.history + 3)
			wantMsgs := total - tc.firstAfter + 1
			events := rec.waitMsgs(t, int(wantMsgs), 5*time.Second)
			if tc.wantReset {
				r := events[0].Reset
				if r == nil || r.Reason != ResetRewound || r.From != 1 || r.To != tc.start || r.Open || events[0].Seq != 0 {
					t.Fatalf("first event %+v (reset %+v), want a rewound reset of 1..%d continuing after seq 0", events[0], r, tc.start)
				}
				events = events[1:]
			}
			checkSequence(t, events, tc.firstAfter, total)
			covered := make(map[uint64]bool)
			if tc.wantReset {
				for s := uint64(1); s <= tc.start; s++ {
					covered[s] = true
				}
			}
			for s := uint64(1); s <= tc.start && !tc.wantReset; s++ {
				covered[s] = true // at or below the head: already delivered by the caller's account
			}
			for _, ev := range events {
				covered[ev.Seq] = true
			}
			for s := uint64(1); s <= total; s++ {
				if !covered[s] {
					t.Fatalf("seq %d was neither delivered nor inside a reset's range", s)
				}
			}
		})
	}
}

// Pin gives a start the form that stays true when the history changes: now is the head with
// its entry; a bare seq the current history reaches takes the current epoch and the entry
// holding it (none once trimmed); anything else is returned as it is.
func TestPin(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	c, _ := newTestClient(t, srv.URL(), Config{})
	ctx := context.Background()
	pin := func(name string, from From) Position {
		t.Helper()
		p, err := c.Pin(ctx, name, from)
		if err != nil {
			t.Fatalf("Pin(%s, %+v): %v", name, from, err)
		}
		return p
	}
	if p := pin("empty", After(Position{Seq: 3})); p != (Position{Seq: 3}) {
		t.Errorf("a bare seq on a channel with no history: %+v, want it as it is", p)
	}
	if p := pin("empty", FromNow()); p != (Position{}) {
		t.Errorf("now on a channel with no history: %+v, want the zero position", p)
	}
	ps := publishN(t, c, "c", 5)
	e := ps[0].Epoch
	for _, tc := range []struct {
		from From
		want Position
	}{
		{FromNow(), ps[4]},
		{FromStart(), Position{Epoch: e}},
		{After(Position{Seq: 0}), Position{Epoch: e}},
		{After(Position{Seq: 3}), ps[2]},
		{After(Position{Seq: 5}), ps[4]},
		{After(Position{Seq: 6}), Position{Seq: 6}},
		{After(Position{Epoch: "other", Seq: 2}), Position{Epoch: "other", Seq: 2}},
		{After(Position{Epoch: e, Seq: 9}), Position{Epoch: e, Seq: 9}},
	} {
		if p := pin("c", tc.from); p != tc.want {
			t.Errorf("Pin(%+v) = %+v, want %+v", tc.from, p, tc.want)
		}
	}
	if err := c.SetRetention(ctx, "c", Retention{MaxLen: 1}); err != nil {
		t.Fatal(err)
	}
	publishN(t, c, "c", 300) // the retention applies as the head crosses a multiple of 256
	if p := pin("c", After(Position{Seq: 2})); p != (Position{Epoch: e, Seq: 2}) {
		t.Errorf("a bare seq the log no longer holds: %+v, want it in epoch %s with no entry", p, e)
	}
	var kerr *KindError
	if _, err := c.Pin(ctx, "c", After(Position{Seq: 1}).Of(KindMap)); !errors.As(err, &kerr) {
		t.Errorf("Pin of a channel as a map: %v, want a *KindError", err)
	}
}

// A start after a seq no log can reach is refused, rather than counted past (2^64-1 + 1 is 0).
func TestStartBeyondAnyLog(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	c, _ := newTestClient(t, srv.URL(), Config{})
	ctx := context.Background()
	for _, p := range []Position{{Seq: MaxSeq + 1}, {Seq: 1<<64 - 1}, {Epoch: "e", Seq: 1<<64 - 1}} {
		from := After(p)
		if _, err := c.Subscribe(ctx, "c", from, func(context.Context, Event) error { return nil }); !errors.Is(err, ErrInvalidPosition) {
			t.Errorf("Subscribe after %v: %v, want ErrInvalidPosition", p, err)
		}
		for _, err := range c.Events(ctx, "c", from) {
			if !errors.Is(err, ErrInvalidPosition) {
				t.Errorf("Events after %v: %v, want ErrInvalidPosition", p, err)
			}
			break
		}
		if _, err := c.Pin(ctx, "c", from); !errors.Is(err, ErrInvalidPosition) {
			t.Errorf("Pin after %v: %v, want ErrInvalidPosition", p, err)
		}
	}
	if _, err := c.Pin(ctx, "c", After(Position{Seq: MaxSeq})); err != nil {
		t.Errorf("Pin after MaxSeq: %v", err)
	}
}

// After Redis loses the log, the epoch-changed reset is well formed: an open range from the
// first seq not delivered, never "from 11 to 0", whether or not something was published since.
func TestEpochChangedResetHasAnOpenRange(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	pub, _ := newTestClient(t, srv.URL(), Config{})
	sub, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix, IdleCheck: 50 * time.Millisecond})
	rec, _ := subscribe(t, sub, "c", FromNow())
	before := publishN(t, pub, "c", 3)
	rec.waitMsgs(t, 3, 5*time.Second)
	srv.Restart() // no persistence, and nothing published after it
	waitFor(t, func() bool { return len(rec.snapshot()) >= 4 })
	events := rec.snapshot()
	if len(events) != 4 || events[3].Reset == nil {
		t.Fatalf("events %+v, want 3 messages and a reset", events)
	}
	r, at := *events[3].Reset, events[3].Position
	if r.Reason != ResetEpochChanged || !r.Open || r.From != 4 || r.To != 0 || r.OldEpoch != before[0].Epoch || r.NewEpoch != "" {
		t.Fatalf("reset %+v, want epoch-changed, open from 4, old epoch %s, no new epoch", r, before[0].Epoch)
	}
	if at != (Position{}) || at.String() != "0" {
		t.Fatalf("reset continues after %q, want the start of whatever history comes (\"0\")", at)
	}
	want := fmt.Sprintf("epoch-changed: messages from 4 on of epoch %s; the channel has no history now", before[0].Epoch)
	if r.String() != want {
		t.Fatalf("Reset.String() = %q, want %q", r.String(), want)
	}
	after := publishN(t, pub, "c", 2)
	events = rec.waitMsgs(t, 5, 5*time.Second)
	checkSequence(t, events[4:], 1, 2)
	if events[4].Epoch != after[0].Epoch {
		t.Fatalf("new message in epoch %s, want %s", events[4].Epoch, after[0].Epoch)
	}
}

// Retention by age removes exactly the expired entries: never the fresh ones, never the newest.
func TestAgeRetentionKeepsFreshMessages(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	c, _ := newTestClient(t, srv.URL(), Config{})
	ctx := context.Background()
	for range 150 {
		if _, err := c.Publish(ctx, "c", []byte("old")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(600 * time.Millisecond) // the first 150 age past the limit set below
	ps := publishN(t, c, "c", 50)
	if err := c.SetRetention(ctx, "c", Retention{MaxAge: 500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	last := publishN(t, c, "c", 1)[0]
	// One publish removes at most 100 expired entries; the next the remaining 50.
	if n := xlen(t, srv, c, "c"); n != 101 {
		t.Fatalf("log holds %d entries after one trimming publish, want 101 (50 expired left, 51 fresh)", n)
	}
	publishN(t, c, "c", 1)
	if n := xlen(t, srv, c, "c"); n != 52 {
		t.Fatalf("log holds %d entries, want the 52 fresh ones", n)
	}
	// A subscriber from seq 150 gets every fresh message, no reset.
	var got []Event
	ctx2, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for ev, err := range c.Events(ctx2, "c", After(Position{Epoch: last.Epoch, Seq: ps[0].Seq - 1})) {
		if err != nil {
			t.Fatal(err)
		}
		if got = append(got, ev); len(got) == 52 {
			break
		}
	}
	checkSequence(t, got, ps[0].Seq, last.Seq+1)
}

// Retention is stored with the channel: a publisher configured with a small MaxLen does not
// trim a channel another client created, SetRetention changes it for every publisher, and a
// channel without stored retention adopts its next publisher's.
func TestRetentionIsAPropertyOfTheChannel(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	ctx := context.Background()
	owner, _ := newTestClient(t, srv.URL(), Config{MaxLen: 5000})
	small, _ := newTestClient(t, srv.URL(), Config{Prefix: owner.cfg.Prefix, MaxLen: 100})
	if _, ok, err := owner.Retention(ctx, "c"); err != nil || ok {
		t.Fatalf("retention of a new channel: ok %v, %v; want none stored", ok, err)
	}
	publishN(t, owner, "c", 10)
	if r, ok, err := owner.Retention(ctx, "c"); err != nil || !ok || r != (Retention{MaxLen: 5000}) {
		t.Fatalf("retention after the first publish: %+v %v %v, want max-len 5000", r, ok, err)
	}
	publishN(t, small, "c", 600) // crosses two multiples of 256: trimming is checked
	if n := xlen(t, srv, owner, "c"); n != 610 {
		t.Fatalf("log holds %d entries, want all 610: a publisher's own MaxLen must not trim", n)
	}
	if err := small.SetRetention(ctx, "c", Retention{MaxLen: 100}); err != nil {
		t.Fatal(err)
	}
	publishN(t, owner, "c", 300)
	if n := xlen(t, srv, owner, "c"); n < 100 || n > 400 {
		t.Fatalf("log holds %d entries after SetRetention(100), want about 100 (whole stream nodes)", n)
	}
	// A channel created before retention was stored adopts its next publisher's.
	meta := owner.keysMust(t, "d").Meta
	publishN(t, owner, "d", 1)
	if _, err := srv.Do("HDEL", meta, "maxlen", "maxage"); err != nil {
		t.Fatal(err)
	}
	publishN(t, small, "d", 1)
	if r, ok, err := owner.Retention(ctx, "d"); err != nil || !ok || r != (Retention{MaxLen: 100}) {
		t.Fatalf("adopted retention: %+v %v %v, want max-len 100", r, ok, err)
	}
	if err := owner.SetRetention(ctx, "d", Retention{MaxLen: -1}); err == nil {
		t.Fatal("SetRetention with a negative MaxLen: no error")
	}
}

// An outage of Redis is logged with its real cause, never rueidis's misleading RESP2 message
// (which came from sending PING and SUBSCRIBE together on a connection never made).
func TestOutageLogsTheRealCause(t *testing.T) {
	srv := startRedis(t, redistest.Options{AppendOnly: true})
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pub, _ := newTestClient(t, srv.URL(), Config{})
	sub, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix, Logger: log, IdleCheck: 50 * time.Millisecond})
	rec, _ := subscribe(t, sub, "c", FromNow())
	publishN(t, pub, "c", 2)
	rec.waitMsgs(t, 2, 5*time.Second)
	srv.Stop()
	waitFor(t, func() bool { return strings.Count(logs.String(), "pub/sub connection failed") >= 2 })
	srv.Restart()
	publishN(t, pub, "c", 2)
	rec.waitMsgs(t, 4, 10*time.Second)
	out := logs.String()
	if !strings.Contains(out, "pub/sub connection failed") {
		t.Fatalf("no reconnect attempt was logged:\n%s", out)
	}
	if strings.Contains(out, "RESP2") {
		t.Fatalf("the outage was logged as a RESP2 problem:\n%s", out)
	}
}

// waitFor waits up to 10 s for cond.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func xlen(t *testing.T, srv *redistest.Server, c *Client, name string) int {
	t.Helper()
	s, err := srv.Do("XLEN", c.keysMust(t, name).Log)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("XLEN = %q", s)
	}
	return n
}

func TestParsePosition(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Position
		bad  bool
	}{
		{in: "9d1c9a97561c2466:5", want: Position{Epoch: "9d1c9a97561c2466", Seq: 5}},
		{in: "12", want: Position{Seq: 12}},
		{in: "0", want: Position{}},
		{in: "e:0", want: Position{Epoch: "e"}},
		{in: "9d1c9a97561c2466:5:0a1b2c3d4e5f6a7b", want: Position{Epoch: "9d1c9a97561c2466", Seq: 5, Entry: "0a1b2c3d4e5f6a7b"}},
		{in: "e:5:", bad: true},
		{in: "e:5:a:b", bad: true},
		{in: "e:5:a b", bad: true},
		{in: "5:a", bad: true},
		{in: "", bad: true},
		{in: ":5", bad: true},
		{in: "e:", bad: true},
		{in: "e:-1", bad: true},
		{in: "+5", bad: true},
		{in: "e:+5", bad: true},
		{in: "a b:5", bad: true},
		{in: "a:b:5", bad: true},
		{in: "18446744073709551616", bad: true},
		{in: "now", bad: true},
	} {
		got, err := ParsePosition(tc.in)
		if tc.bad {
			if err == nil || !strings.Contains(err.Error(), "invalid position") {
				t.Errorf("ParsePosition(%q) = %v, %v; want ErrInvalidPosition", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePosition(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if back, err := ParsePosition(got.Token()); err != nil || back != got {
			t.Errorf("ParsePosition(%v.String()) = %v, %v", got, back, err)
		}
	}
}

func TestResetString(t *testing.T) {
	for _, tc := range []struct {
		r    Reset
		want string
	}{
		{Reset{Reason: ResetTrimmed, From: 3, To: 7, OldEpoch: "e", NewEpoch: "e"}, "trimmed: messages 3 to 7 of epoch e"},
		{Reset{Reason: ResetTrimmed, From: 3, To: 3, OldEpoch: "e", NewEpoch: "e"}, "trimmed: message 3 of epoch e"},
		{Reset{Reason: ResetRewound, From: 1, To: 50, NewEpoch: "e"}, "rewound: messages 1 to 50"},
		{Reset{Reason: ResetEpochChanged, From: 4, Open: true, OldEpoch: "a", NewEpoch: "b"}, "epoch-changed: messages from 4 on of epoch a; the new epoch is b"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.r, got, tc.want)
		}
	}
}

// A log entry this client cannot read ends the subscription with an error that says so,
// instead of retrying it for ever.
func TestUnreadableLogEntryEndsTheSubscription(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	c, _ := newTestClient(t, srv.URL(), Config{})
	publishN(t, c, "c", 2)
	k := c.keysMust(t, "c")
	if _, err := srv.Do("XADD", k.Log, "3-0", "e", "rs9 a format of the future", "t", "0"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Do("HSET", k.Meta, "seq", "3"); err != nil {
		t.Fatal(err)
	}
	rec, sub := subscribe(t, c, "c", FromStart())
	select {
	case <-sub.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the subscription is still retrying an entry it cannot read")
	}
	if err := sub.Err(); err == nil || !strings.Contains(err.Error(), "not an envelope") {
		t.Fatalf("ended with %v", err)
	}
	checkSequence(t, rec.snapshot(), 1, 2)
}

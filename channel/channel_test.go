package channel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"go.uber.org/goleak"

	"github.com/redisync/redisync/internal/faultproxy"
	"github.com/redisync/redisync/internal/redistest"
	"github.com/redisync/redisync/internal/wire"
	"github.com/redisync/redisync/redisconn"
)

func TestConcurrentPublishersGetContiguousSeqs(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	pub, _ := newTestClient(t, srv.URL(), Config{})
	sub, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix})
	rec, _ := subscribe(t, sub, "orders", FromStart())

	const publishers, each = 8, 500
	var wg sync.WaitGroup
	seqs := make([][]uint64, publishers)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				pos, err := pub.Publish(context.Background(), "orders", []byte(fmt.Sprintf("%d/%d", p, i)))
				if err != nil {
					t.Error(err)
					return
				}
				seqs[p] = append(seqs[p], pos.Seq)
			}
		}()
	}
	wg.Wait()
	const total = publishers * each
	events := rec.waitMsgs(t, total, 20*time.Second)
	checkSequence(t, events, 1, total)

	// Every returned seq is the position of that very message, and each publisher's
	// messages come in the order it published them.
	bySeq := map[uint64]string{}
	for _, ev := range events {
		bySeq[ev.Seq] = string(ev.Data)
	}
	for p, ss := range seqs {
		for i, s := range ss {
			if want := fmt.Sprintf("%d/%d", p, i); bySeq[s] != want {
				t.Fatalf("publisher %d message %d returned seq %d, which holds %q", p, i, s, bySeq[s])
			}
			if i > 0 && s <= ss[i-1] {
				t.Fatalf("publisher %d: seq %d after %d", p, s, ss[i-1])
			}
		}
	}
	if st := pub.Stats(); st.PublishCalls >= total {
		t.Errorf("no group commit: %d script calls for %d messages", st.PublishCalls, total)
	}
}

func TestExactlyOnceAcrossPubSubKills(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	pub, _ := newTestClient(t, srv.URL(), Config{})
	var recs []*recorder
	var subs []*Client
	for range 2 {
		c, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix})
		r, _ := subscribe(t, c, "stream", FromNow())
		recs = append(recs, r)
		subs = append(subs, c)
	}
	time.Sleep(100 * time.Millisecond) // let the subscriptions read the head first

	const total = 20000
	done := make(chan error, 1)
	go func() {
		batch := make([][]byte, 0, 50)
		for i := 1; i <= total; i++ {
			batch = append(batch, []byte(fmt.Sprintf("m%d", i)))
			if len(batch) == cap(batch) {
				if _, err := pub.PublishBatch(context.Background(), "stream", batch); err != nil {
					done <- err
					return
				}
				batch = batch[:0]
				time.Sleep(time.Millisecond)
			}
		}
		done <- nil
	}()
	kills := 0
	for i := 0; i < 5; i++ {
		time.Sleep(60 * time.Millisecond)
		kills += srv.ClientKill("pubsub")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if kills == 0 {
		t.Fatal("no pub/sub connection was killed: the test proved nothing")
	}
	for i, r := range recs {
		events := r.waitMsgs(t, total, 20*time.Second)
		checkSequence(t, events, 1, total)
		for _, ev := range events {
			if want := fmt.Sprintf("m%d", ev.Seq); string(ev.Data) != want {
				t.Fatalf("subscriber %d: seq %d holds %q", i, ev.Seq, ev.Data)
			}
		}
		if st := subs[i].Stats(); st.Reconnects == 0 {
			t.Errorf("subscriber %d never reconnected: %+v", i, st)
		}
	}
}

func TestRestartWithAppendOnlyLosesNothing(t *testing.T) {
	srv := startRedis(t, redistest.Options{AppendOnly: true})
	pub, _ := newTestClient(t, srv.URL(), Config{})
	sub, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix})
	rec, _ := subscribe(t, sub, "c", FromStart())

	const total = 600
	done := make(chan error, 1)
	go func() {
		for i := 1; i <= total; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_, err := pub.Publish(ctx, "c", []byte(fmt.Sprintf("m%d", i)))
			cancel()
			if err != nil {
				done <- err
				return
			}
			time.Sleep(time.Millisecond)
		}
		done <- nil
	}()
	time.Sleep(150 * time.Millisecond)
	srv.Restart()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	events := rec.waitMsgs(t, total, 20*time.Second)
	checkSequence(t, events, 1, total)
	for _, ev := range events {
		if want := fmt.Sprintf("m%d", ev.Seq); string(ev.Data) != want {
			t.Fatalf("seq %d holds %q, want %q: a retried publish was appended twice or out of order", ev.Seq, ev.Data, want)
		}
	}
	if n, _ := srv.Do("XLEN", pub.keysMust(t, "c").Log); n != fmt.Sprint(total) {
		t.Fatalf("log holds %s entries, want %d", n, total)
	}
}

func TestResetWhenRedisLosesTheLog(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	pub, _ := newTestClient(t, srv.URL(), Config{})
	sub, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix, IdleCheck: 50 * time.Millisecond})
	rec, _ := subscribe(t, sub, "c", FromStart())
	before := publishN(t, pub, "c", 10)
	rec.waitMsgs(t, 10, 5*time.Second)

	srv.Restart() // no persistence: the log and its epoch are gone
	time.Sleep(300 * time.Millisecond)
	after := publishN(t, pub, "c", 5)
	if after[0].Seq != 1 || after[0].Epoch == before[0].Epoch {
		t.Fatalf("after the restart the first publish is at %v, want seq 1 of a new epoch (old %s)", after[0], before[0].Epoch)
	}
	rec.waitMsgs(t, 15, 10*time.Second)
	events := rec.snapshot()
	if len(events) != 16 {
		t.Fatalf("got %d events, want 10 messages, 1 reset, 5 messages: %+v", len(events), events)
	}
	checkSequence(t, events[:10], 1, 10)
	r := events[10].Reset
	if r == nil || r.Reason != ResetEpochChanged || r.From != 11 || r.OldEpoch != before[0].Epoch {
		t.Fatalf("event 10 = %+v, want a reset for epoch change from seq 11", events[10])
	}
	checkSequence(t, events[11:], 1, 5)
	for _, ev := range events[11:] {
		if ev.Epoch != after[0].Epoch {
			t.Fatalf("message %d has epoch %s, want %s", ev.Seq, ev.Epoch, after[0].Epoch)
		}
	}
}

func TestResetWhenTheLogWasTrimmed(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	pub, _ := newTestClient(t, srv.URL(), Config{MaxLen: 10})
	sub, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix})
	publishN(t, pub, "c", 500)
	first, err := srv.Do("XRANGE", pub.keysMust(t, "c").Log, "-", "+", "COUNT", "1")
	if err != nil {
		t.Fatal(err)
	}
	var oldest uint64
	fmt.Sscanf(strings.TrimLeft(first, "[ "), "%d-", &oldest)
	if oldest <= 6 {
		t.Fatalf("log not trimmed: oldest entry %q", first)
	}

	rec, _ := subscribe(t, sub, "c", After(Position{Seq: 5}))
	rec.waitMsgs(t, int(500-oldest+1), 10*time.Second)
	events := rec.snapshot()
	r := events[0].Reset
	if r == nil || r.Reason != ResetTrimmed || r.From != 6 || r.To != oldest-1 || events[0].Seq != oldest-1 {
		t.Fatalf("first event = %+v (reset %+v), want a trimmed reset of 6..%d", events[0], r, oldest-1)
	}
	checkSequence(t, events[1:], oldest, 500)
}

func TestResetWhenMessagesAgedOut(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	pub, _ := newTestClient(t, srv.URL(), Config{MaxAge: 100 * time.Millisecond})
	publishN(t, pub, "c", 20)
	time.Sleep(250 * time.Millisecond)
	publishN(t, pub, "c", 1)
	sub, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix})
	rec, _ := subscribe(t, sub, "c", FromStart())
	rec.waitMsgs(t, 1, 5*time.Second)
	events := rec.snapshot()
	if len(events) != 2 || events[0].Reset == nil || events[0].Reset.Reason != ResetTrimmed ||
		events[0].Reset.From != 1 || events[0].Reset.To != 20 || events[1].Seq != 21 {
		t.Fatalf("events = %+v, want a trimmed reset of 1..20 then message 21", events)
	}
}

func TestSlowConsumerKickedByOutputBufferLimit(t *testing.T) {
	srv := startRedis(t, redistest.Options{Args: []string{"--client-output-buffer-limit", "pubsub 64kb 0 0"}})
	pub, _ := newTestClient(t, srv.URL(), Config{})
	sub, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix})
	rec, _ := subscribe(t, sub, "c", FromNow())
	time.Sleep(100 * time.Millisecond)

	// Batches of 20 x 8 KiB: each envelope alone overflows the 64 KiB limit.
	const batches, per = 20, 20
	payload := strings.Repeat("x", 8<<10)
	for b := range batches {
		msgs := make([][]byte, per)
		for i := range msgs {
			msgs[i] = []byte(fmt.Sprintf("%d:%d:%s", b, i, payload))
		}
		if _, err := pub.PublishBatch(context.Background(), "c", msgs); err != nil {
			t.Fatal(err)
		}
	}
	events := rec.waitMsgs(t, batches*per, 20*time.Second)
	checkSequence(t, events, 1, batches*per)
	info, _ := srv.Do("INFO", "stats")
	if st := sub.Stats(); st.Reconnects == 0 {
		t.Fatalf("the subscriber was never disconnected, so the test proved nothing: %+v\n%s", st, info)
	}
}

func TestSlowHandlerCatchesUpFromLog(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	pub, _ := newTestClient(t, srv.URL(), Config{})
	sub, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix, BufferSize: 4})
	rec := &recorder{delay: 200 * time.Microsecond}
	s, err := sub.Subscribe(context.Background(), "c", FromStart(), rec.handle)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	publishN(t, pub, "c", 2000)
	events := rec.waitMsgs(t, 2000, 20*time.Second)
	checkSequence(t, events, 1, 2000)
	if st := sub.Stats(); st.Overflows == 0 || st.FromLog == 0 {
		t.Fatalf("no overflow or no catch-up from the log: %+v", st)
	}
}

func TestLostTailIsDetectedWhileIdle(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	pub, rc := newTestClient(t, srv.URL(), Config{})
	sub, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix, IdleCheck: 100 * time.Millisecond})
	rec, _ := subscribe(t, sub, "c", FromStart())
	publishN(t, pub, "c", 3)
	rec.waitMsgs(t, 3, 5*time.Second)

	// Append message 4 with its pub/sub copy sent to a channel nobody listens to: the copy is lost.
	k := pub.keysMust(t, "c")
	args := []string{"nowhere", "PUBLISH", "epoch", "0", "0", "1000", "0", "0"}
	args = append(args, wire.Pack([]byte("tail"))...)
	if err := wire.Publish.Exec(context.Background(), rc, []string{k.Meta, k.Log, k.Idem("test")}, args).Error(); err != nil {
		t.Fatal(err)
	}
	events := rec.waitMsgs(t, 4, 5*time.Second)
	checkSequence(t, events, 1, 4)
	if string(events[3].Data) != "tail" {
		t.Fatalf("message 4 = %q", events[3].Data)
	}
	if st := sub.Stats(); st.TailLosses == 0 {
		t.Fatalf("tail loss not counted: %+v", st)
	}
}

func TestSilentPubSubIsReplaced(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	pub, _ := newTestClient(t, srv.URL(), Config{})
	sub, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix, IdleCheck: 100 * time.Millisecond})
	rec, s := subscribe(t, sub, "c", FromStart())
	publishN(t, pub, "c", 1)
	rec.waitMsgs(t, 1, 5*time.Second)

	// Unsubscribe the hub's connection behind its back: it stays up but brings nothing. (The
	// message may have come from the log before the connection was up: wait for it.)
	var conn rueidis.DedicatedClient
	waitFor(t, func() bool {
		sub.hub.mu.RLock()
		defer sub.hub.mu.RUnlock()
		conn = sub.hub.conn
		return conn != nil
	})
	if err := conn.Do(context.Background(), conn.B().Unsubscribe().Channel(s.sub.k.PubSub).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		publishN(t, pub, "c", 1)
		time.Sleep(150 * time.Millisecond)
	}
	rec.waitMsgs(t, 6, 5*time.Second)
	if st := sub.Stats(); st.Reconnects == 0 {
		t.Fatalf("the silent connection was not replaced: %+v", st)
	}
	// Live delivery works again: new messages arrive well before an idle check.
	fromLog := sub.Stats().FromLog
	time.Sleep(300 * time.Millisecond)
	publishN(t, pub, "c", 20)
	events := rec.waitMsgs(t, 26, 5*time.Second)
	checkSequence(t, events, 1, 26)
	if got := sub.Stats().FromLog; got > fromLog+1 {
		t.Fatalf("after the reconnect messages still come from the log (%d -> %d)", fromLog, got)
	}
	if st := s.Status(); st.Position.Seq != 26 || time.Since(st.Confirmed) > 2*time.Second {
		t.Fatalf("status = %+v", st)
	}
}

func TestJunkOnThePubSubChannelIsCountedAndIgnored(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	cfg := Config{MaxMessageBytes: 1 << 10, MaxBatchBytes: 16 << 10, MaxEnvelopeBytes: 32 << 10}
	pub, _ := newTestClient(t, srv.URL(), cfg)
	cfg.Prefix = pub.cfg.Prefix
	sub, _ := newTestClient(t, srv.URL(), cfg)
	rec, s := subscribe(t, sub, "c", FromStart())
	publishN(t, pub, "c", 2)
	rec.waitMsgs(t, 2, 5*time.Second)

	junk := []string{
		"hello",
		"rs1 nope",
		"rs1 x 3 0 1 100\nshort",
		"rs1 x 99999999999 0 1 1\nz", // a forged far-future seq: the log, not the envelope, decides
		"rs1 x 3 0 1 " + fmt.Sprint(64<<10) + "\n" + strings.Repeat("y", 64<<10), // over MaxEnvelopeBytes
		strings.Repeat("\x00", 1000),
	}
	for _, j := range junk {
		if _, err := srv.Do("PUBLISH", s.sub.k.PubSub, j); err != nil {
			t.Fatal(err)
		}
	}
	publishN(t, pub, "c", 3)
	events := rec.waitMsgs(t, 5, 5*time.Second)
	time.Sleep(200 * time.Millisecond)
	checkSequence(t, rec.snapshot(), 1, 5)
	if string(events[4].Data) != "m2" {
		t.Fatalf("message 5 = %q", events[4].Data)
	}
	// The far-future envelope decodes but is not believed; the rest are junk.
	if st := sub.Stats(); st.Junk != uint64(len(junk)-1) {
		t.Fatalf("junk counted %d, want %d", st.Junk, len(junk)-1)
	}
}

func TestRetriedPublishIsAppendedOnce(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	c, rc := newTestClient(t, srv.URL(), Config{})
	k := c.keysMust(t, "c")
	run := func(token, data string) []string {
		t.Helper()
		args := []string{k.PubSub, "PUBLISH", "e1", token, "1", "60000", "0", "0"}
		args = append(args, wire.Pack([]byte(data))...)
		vs, err := wire.Publish.Exec(context.Background(), rc, []string{k.Meta, k.Log, k.Idem("test")}, args).AsStrSlice()
		if err != nil {
			t.Fatal(err)
		}
		return vs
	}
	again := run("7", "a") // the retry overtakes its first attempt, held up in the network
	first := run("7", "a") // the first attempt arrives late: it is a repeat all the same
	other := run("8", "b")
	if again[1] != "1" || again[2] != "0" || first[1] != "1" || first[2] != "1" || other[1] != "2" {
		t.Fatalf("retry %v, late first attempt %v, next %v", again, first, other)
	}
	if n, _ := srv.Do("XLEN", k.Log); n != "2" {
		t.Fatalf("log holds %s entries, want 2", n)
	}
	// Tokens below the low-water mark are forgotten (every 16th call): the set stays small.
	args := []string{k.PubSub, "PUBLISH", "e1", "17", "17", "60000", "0", "0"}
	args = append(args, wire.Pack([]byte("c"))...)
	if err := wire.Publish.Exec(context.Background(), rc, []string{k.Meta, k.Log, k.Idem("test")}, args).Error(); err != nil {
		t.Fatal(err)
	}
	if n, _ := srv.Do("ZCARD", k.Idem("test")); n != "1" {
		t.Fatalf("idempotency set holds %s tokens, want 1", n)
	}
}

// The publish script takes the messages as COUNTS and DATA (wire.Pack); a call in another form,
// or whose lengths do not describe DATA, fails with an error naming COUNTS and writes nothing:
// no call appends a log entry that subscribers cannot read.
func TestPublishScriptRejectsMalformedCounts(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	c, rc := newTestClient(t, srv.URL(), Config{})
	k := c.keysMust(t, "c")
	head := []string{k.PubSub, "PUBLISH", "e1", "0", "0", "60000", "0", "0"}
	for _, more := range [][]string{
		{"a"},            // the old form: one argument per message
		{"a", "b", "c"},  // too many
		{"0 1", "a"},     // no messages
		{"1", "a"},       // no lengths
		{"2 1  1", "ab"}, // two spaces
		{"1 1 ", "a"},    // a trailing space
		{"1 x", "a"},     // not a number
		{"01 1", "a"},    // a leading zero in the count
		{"-1 1", "a"},    // a sign
		{"1 2", "a"},     // lengths that add up to more than DATA
		{"1 1", "ab"},    // or to less
		{"2 1", "a"},     // fewer lengths than messages
		{"1 1 0", "a"},   // more lengths than messages
	} {
		err := wire.Publish.Exec(context.Background(), rc, []string{k.Meta, k.Log, k.Idem("test")}, append(head, more...)).Error()
		if err == nil || !strings.Contains(err.Error(), "COUNTS") {
			t.Errorf("%q: err = %v, want one naming COUNTS", more, err)
		}
	}
	if n, _ := srv.Do("DBSIZE"); n != "0" {
		t.Fatalf("malformed calls wrote %s keys", n)
	}
	// An empty message is a message.
	vs, err := wire.Publish.Exec(context.Background(), rc, []string{k.Meta, k.Log, k.Idem("test")}, append(head, wire.Pack(nil, []byte("x"))...)).AsStrSlice()
	if err != nil || vs[1] != "1" {
		t.Fatalf("two messages, one empty: %v, %v", vs, err)
	}
}

func TestPublishRejectsBadInput(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	c, _ := newTestClient(t, srv.URL(), Config{MaxMessageBytes: 10, MaxBatchBytes: 20, MaxBatchMessages: 3})
	ctx := context.Background()
	cases := []struct {
		name string
		err  error
		call func() error
	}{
		{"message too large", ErrTooLarge, func() error { _, err := c.Publish(ctx, "c", make([]byte, 11)); return err }},
		{"batch too long", ErrTooLarge, func() error { _, err := c.PublishBatch(ctx, "c", make([][]byte, 4)); return err }},
		{"batch too large", ErrTooLarge, func() error {
			_, err := c.PublishBatch(ctx, "c", [][]byte{make([]byte, 10), make([]byte, 10), make([]byte, 1)})
			return err
		}},
		{"empty batch", ErrEmptyBatch, func() error { _, err := c.PublishBatch(ctx, "c", nil); return err }},
		{"empty name", ErrInvalidName, func() error { _, err := c.Publish(ctx, "", nil); return err }},
		{"brace in name", ErrInvalidName, func() error { _, err := c.Publish(ctx, "a{b}", nil); return err }},
		{"subscribe bad name", ErrInvalidName, func() error {
			_, err := c.Subscribe(ctx, "a}", FromStart(), func(context.Context, Event) error { return nil })
			return err
		}},
	}
	for _, tc := range cases {
		if err := tc.call(); !errors.Is(err, tc.err) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
		}
	}
	if n, _ := srv.Do("DBSIZE"); n != "0" {
		t.Fatalf("bad input wrote %s keys", n)
	}
}

func TestPermissionDeniedEndsTheSubscription(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	if _, err := srv.Do("ACL", "SETUSER", "reader", "on", ">pw", "~*", "&*", "+@all", "-evalsha", "-eval", "-evalsha_ro", "-eval_ro"); err != nil {
		t.Fatal(err)
	}
	c, _ := newTestClient(t, "redis://reader:pw@"+srv.Addr(), Config{})
	_, err := c.Publish(context.Background(), "c", []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "NOPERM") || !strings.Contains(err.Error(), srv.Addr()) {
		t.Fatalf("publish err = %v, want NOPERM naming %s", err, srv.Addr())
	}
	s, err := c.Subscribe(context.Background(), "c", FromStart(), func(context.Context, Event) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("subscription still running after a permission error")
	}
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("subscription err = %v", err)
	}
}

func TestEventsIteratorResumesFromAPosition(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	c, _ := newTestClient(t, srv.URL(), Config{})
	ps := publishN(t, c, "c", 10)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got []Event
	for ev, err := range c.Events(ctx, "c", After(ps[6])) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
		if len(got) == 3 {
			break
		}
	}
	checkSequence(t, got, 8, 10)

	// A position from another epoch is answered with a reset, then the current history.
	var first Event
	for ev, err := range c.Events(ctx, "c", After(Position{Epoch: "gone", Seq: 4})) {
		if err != nil {
			t.Fatal(err)
		}
		first = ev
		break
	}
	if first.Reset == nil || first.Reset.Reason != ResetEpochChanged || first.Reset.OldEpoch != "gone" {
		t.Fatalf("first event = %+v", first)
	}
}

func TestCloseEndsEverythingAndLeavesNoGoroutine(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	ignore := goleak.IgnoreCurrent()
	rc, err := redisconn.Open(context.Background(), redisconn.Options{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(rc, Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rec, s := subscribe(t, c, "c", FromStart())
	publishN(t, c, "c", 5)
	rec.waitMsgs(t, 5, 5*time.Second)
	iterDone := make(chan error, 1)
	go func() {
		for _, err := range c.Events(context.Background(), "c", FromNow()) {
			if err != nil {
				iterDone <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	c.Close() // idempotent
	<-s.Done()
	if !errors.Is(s.Err(), ErrClosed) {
		t.Fatalf("subscription ended with %v, want ErrClosed", s.Err())
	}
	if err := <-iterDone; !errors.Is(err, ErrClosed) {
		t.Fatalf("iterator ended with %v, want ErrClosed", err)
	}
	if _, err := c.Publish(context.Background(), "c", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("publish after Close: %v", err)
	}
	rc.Close()
	goleak.VerifyNone(t, ignore)
}

func (c *Client) keysMust(t *testing.T, name string) keys {
	k, err := c.keysFor(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestHoleInLiveSequenceIsFilledFromLog(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	pub, rc := newTestClient(t, srv.URL(), Config{})
	// A long idle check: only the hole itself can bring message 4 in time.
	sub, _ := newTestClient(t, srv.URL(), Config{Prefix: pub.cfg.Prefix, IdleCheck: time.Minute})
	rec, _ := subscribe(t, sub, "c", FromStart())
	publishN(t, pub, "c", 3)
	rec.waitMsgs(t, 3, 5*time.Second)

	k := pub.keysMust(t, "c")
	args := []string{"nowhere", "PUBLISH", "epoch", "0", "0", "1000", "0", "0"}
	args = append(args, wire.Pack([]byte("lost copy"))...)
	if err := wire.Publish.Exec(context.Background(), rc, []string{k.Meta, k.Log, k.Idem("test")}, args).Error(); err != nil {
		t.Fatal(err)
	}
	publishN(t, pub, "c", 1)
	events := rec.waitMsgs(t, 5, 5*time.Second)
	checkSequence(t, events, 1, 5)
	if string(events[3].Data) != "lost copy" {
		t.Fatalf("message 4 = %q", events[3].Data)
	}
	if st := sub.Stats(); st.GapsFilled == 0 {
		t.Fatalf("gap not counted: %+v", st)
	}
}

func TestSlowHandshakeDoesNotEndTheSubscription(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	px, err := faultproxy.New(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	pub, _ := newTestClient(t, srv.URL(), Config{})
	// Through the proxy, with a 1 s timeout: a handshake slower than that times out.
	rc, err := redisconn.Open(context.Background(), redisconn.Options{URL: "redis://" + px.Addr(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	sub, err := New(rc, Config{Prefix: pub.cfg.Prefix, IdleCheck: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	rec, s := subscribe(t, sub, "c", FromStart())
	publishN(t, pub, "c", 1)
	rec.waitMsgs(t, 1, 5*time.Second)

	px.SetLatency(1500 * time.Millisecond) // slower than the timeout, for a while
	srv.ClientKill("normal")               // the next read needs a new connection
	time.Sleep(3 * time.Second)
	px.SetLatency(0)
	publishN(t, pub, "c", 1)
	rec.waitMsgs(t, 2, 10*time.Second)
	if err := s.Err(); err != nil {
		t.Fatalf("the subscription ended: %v", err)
	}
}

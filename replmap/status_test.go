package replmap

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/redistest"
)

// Status reports a replica that falls behind: how many changes and how old the oldest one it
// has not applied is, then agreement with Redis once it has caught up.
func TestStatusLag(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	prefix := newPrefix()
	release := make(chan struct{})
	slow := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}, OnChange: func(c Change[string]) {
		if c.Key == "block" {
			<-release // holds the replica's goroutine: later changes wait
		}
	}})
	writer := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}})
	waitReady(t, slow.m)
	waitReady(t, writer.m)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	st, err := slow.m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ready || st.Lag != 0 || st.LagTime != 0 || !st.Comparable() || !st.Match() {
		t.Fatalf("status of an idle replica: %+v", st)
	}

	blockSeq, err := writer.m.Set(ctx, "block", "x")
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for _, k := range []string{"a", "b", "c"} {
		if last, err = writer.m.Set(ctx, k, "v"); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, func() bool { return slow.m.Position().Seq == blockSeq })
	time.Sleep(50 * time.Millisecond)
	st, err = slow.m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Applied.Seq != blockSeq || st.Head.Seq != last || st.Lag != last-blockSeq || st.LagTime < 50*time.Millisecond || st.Comparable() || st.Match() {
		t.Errorf("status of a replica held at %d with the head at %d: %+v", blockSeq, last, st)
	}
	if st.Head.Epoch != st.Applied.Epoch || st.Keys != 1 || st.RedisKeys != 4 {
		t.Errorf("epochs %q and %q, keys %d and %d in Redis", st.Applied.Epoch, st.Head.Epoch, st.Keys, st.RedisKeys)
	}

	close(release)
	waitUntil(t, func() bool { return slow.m.Position().Seq == last })
	if st, err = slow.m.Status(ctx); err != nil || st.Lag != 0 || st.LagTime != 0 || !st.Match() || st.Keys != 4 {
		t.Errorf("status after catching up: %+v, %v", st, err)
	}
}

// Writes yields one item per write: its position, time and every operation; junk on the
// channel is skipped; a trim arrives as a reset; from now is fixed when Writes returns.
func TestWrites(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	prefix := newPrefix()
	n := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}})
	waitReady(t, n.m)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := n.m.Set(ctx, "gone", "1"); err != nil {
		t.Fatal(err)
	}
	writes := n.m.Writes(ctx, channel.FromNow()) // fixed here
	before := time.Now()
	seq, err := n.m.Write(ctx, Op[string]{Key: "a", Value: "1"}, Op[string]{Key: "gone", Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	appendRaw(t, n, prefix, "m", "not a change record")
	seq2, _ := n.m.Set(ctx, "b", "2")
	var got []Write[string]
	for w, err := range writes {
		if err != nil {
			t.Fatal(err)
		}
		if got = append(got, w); len(got) == 2 {
			break
		}
	}
	w := got[0]
	cs := w.Changes
	if w.Seq != seq || w.Reset != nil || w.Time.Before(before.Add(-time.Second)) || len(cs) != 2 ||
		cs[0].Key != "a" || cs[0].Value != "1" || cs[0].Version != seq || cs[0].Deleted ||
		cs[1].Key != "gone" || !cs[1].Deleted || cs[1].OldVersion != seq-1 || cs[1].Position != w.Position {
		t.Fatalf("first write = %+v", w)
	}
	if got[1].Seq != seq2 || len(got[1].Changes) != 1 || got[1].Changes[0].Key != "b" {
		t.Fatalf("second write = %+v (junk must be skipped)", got[1])
	}
	// A start before the log's oldest entry: a reset first.
	if _, err := srv.Do("XTRIM", prefix+":{m}:log", "MINID", strconv.FormatUint(seq2, 10)+"-0"); err != nil {
		t.Fatal(err)
	}
	for w, err := range n.m.Writes(ctx, channel.FromStart()) {
		if err != nil || w.Reset == nil || w.Reset.Reason != channel.ResetTrimmed || w.Reset.From != 1 || w.Reset.To != seq2-1 {
			t.Fatalf("first item after a trim: %+v, %v", w, err)
		}
		break
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

package replmap

import (
	"context"
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

// Changes decodes an event of the map's channel as Watch does, all operations of a write at once.
func TestChanges(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	n := openNode(t, srv.URL(), newPrefix(), "m", Config[string]{Codec: String{}})
	waitReady(t, n.m)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := n.m.Set(ctx, "gone", "1"); err != nil {
		t.Fatal(err)
	}
	seq, err := n.m.Write(ctx, Op[string]{Key: "a", Value: "1"}, Op[string]{Key: "gone", Delete: true})
	if err != nil {
		t.Fatal(err)
	}
	for ev, err := range n.cl.Events(ctx, "m", channel.After(channel.Position{Seq: seq - 1}).Of(channel.KindMap)) {
		if err != nil {
			t.Fatal(err)
		}
		cs, err := n.m.Changes(ev)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 2 || cs[0].Key != "a" || cs[0].Value != "1" || cs[0].Version != seq || cs[0].Deleted ||
			cs[1].Key != "gone" || !cs[1].Deleted || cs[1].OldVersion != seq-1 || cs[1].Position != ev.Position {
			t.Fatalf("Changes = %+v", cs)
		}
		break
	}
	if _, err := n.m.Changes(channel.Event{Position: channel.Position{Seq: 9}, Data: []byte("junk")}); err == nil {
		t.Error("Changes of junk: no error")
	}
	r := &channel.Reset{Reason: channel.ResetTrimmed, From: 1, To: 3}
	if cs, err := n.m.Changes(channel.Event{Position: channel.Position{Seq: 3}, Reset: r}); err != nil || len(cs) != 1 || cs[0].Reset != r {
		t.Errorf("Changes of a reset = %+v, %v", cs, err)
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

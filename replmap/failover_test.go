package replmap

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
)

// After a Sentinel failover that loses acknowledged writes, every replica converges to what
// the new master holds, by itself: its subscription sees the rewound log, it reloads, and
// Verify matches, key by key.
func TestReplicasConvergeAfterAFailoverThatLosesWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Sentinel deployment; skipped with -short")
	}
	d := redistest.StartSentinel(t, redistest.SentinelOptions{})
	prefix := newPrefix()
	cfg := Config[string]{Codec: String{}, VerifyEvery: 500 * time.Millisecond}
	w := openNode(t, d.URL(), prefix, "m", cfg)
	a := openNode(t, d.URL(), prefix, "m", cfg)
	b := openNode(t, d.URL(), prefix, "m", cfg)
	waitReady(t, a.m)
	waitReady(t, b.m)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		acked := 0
		for i := 0; ctx.Err() == nil; i++ {
			wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
			if _, err := w.m.Set(wctx, fmt.Sprintf("k%d", i%50), fmt.Sprint(i)); err == nil {
				acked++
			}
			wcancel()
			time.Sleep(time.Millisecond)
		}
		done <- acked
	}()
	waitLong(t, func() bool { return w.m.Position().Seq > 150 })
	stalled := d.StallReplicas()
	at := w.m.Position().Seq
	waitLong(t, func() bool { return w.m.Position().Seq > at+80 })
	lostFrom := at
	old := d.Master()
	old.Kill()
	for _, r := range stalled {
		r.Resume()
	}
	d.WaitFailover(old)
	waitLong(t, func() bool { return w.m.Ready() && w.m.Position().Seq > lostFrom+100 })
	cancel()
	acked := <-done

	for _, n := range []node[string]{w, a, b} {
		waitLong(t, func() bool {
			vctx, vcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer vcancel()
			v, err := n.m.Verify(vctx)
			return err == nil && v.Match && n.m.Ready()
		})
	}
	// Key by key, every replica holds what the new master holds.
	rc := w.cl.Redis()
	raw, err := rc.Do(context.Background(), rc.B().Hgetall().Key(prefix+":{m}:state").Build()).AsStrMap()
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[string]string)
	for k, v := range raw {
		ver, val, _ := strings.Cut(v, ":")
		want[k] = ver + "=" + val
	}
	for i, n := range []node[string]{w, a, b} {
		got := contents(n.m)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("replica %d differs from the new master:\n got %v\nwant %v", i, got, want)
		}
	}
	resnaps := a.m.Stats().Resnapshots + b.m.Stats().Resnapshots
	if resnaps == 0 {
		t.Fatal("no replica reloaded: the failover lost no write the replicas had applied")
	}
	t.Logf("%d writes acknowledged; replicas reloaded %d times and equal the new master", acked, resnaps)
}

// waitLong waits up to 60 s for cond: failovers and reloads on a busy machine take a while.
func waitLong(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out after 60s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

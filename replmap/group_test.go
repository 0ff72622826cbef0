package replmap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
	"github.com/redisync/redisync/internal/wire"
)

// Writes that come while a call is in flight go together in the next call (one log entry),
// and each keeps its own outcome: of 40 compare-and-sets of the same absent key, exactly one
// applies and the others conflict with the winner's version; 40 sets of keys of their own
// all apply, each with its own seq.
func TestGroupCommitKeepsEachOutcome(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	prefix := newPrefix()
	n := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}})
	waitReady(t, n.m)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := n.m.Set(ctx, "warm", "up"); err != nil {
		t.Fatal(err)
	}

	// Redis stalls, so that the first call waits and the rest queue behind it.
	srv.Pause()
	const writers = 40
	var wg sync.WaitGroup
	cas := make([]error, writers)
	casSeq := make([]uint64, writers)
	own := make([]uint64, writers)
	ownErr := make([]error, writers)
	for i := range writers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			casSeq[i], cas[i] = n.m.CompareAndSet(ctx, "k", fmt.Sprint("w", i), 0)
		}()
		go func() {
			defer wg.Done()
			own[i], ownErr[i] = n.m.Set(ctx, fmt.Sprint("own", i), "v")
		}()
	}
	time.Sleep(300 * time.Millisecond)
	srv.Resume()
	wg.Wait()

	winner := -1
	for i, err := range cas {
		if err == nil {
			if winner >= 0 {
				t.Fatalf("two compare-and-sets of an absent key applied: writers %d and %d", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no compare-and-set of the absent key applied")
	}
	for i, err := range cas {
		var ce *ConflictError
		if i != winner && (!errors.As(err, &ce) || ce.Actual != casSeq[winner]) {
			t.Fatalf("writer %d: %v; want a conflict with version %d", i, err, casSeq[winner])
		}
	}
	seqs := map[uint64]bool{casSeq[winner]: true}
	for i := range writers {
		if ownErr[i] != nil || seqs[own[i]] {
			t.Fatalf("set of own%d: seq %d, %v (a seq given twice, or an error)", i, own[i], ownErr[i])
		}
		seqs[own[i]] = true
		if v, ver, err := n.m.Get(fmt.Sprint("own", i)); err != nil || v != "v" || ver != own[i] {
			t.Fatalf("own%d reads %q, %d, %v; want \"v\" at %d", i, v, ver, err, own[i])
		}
	}
	if v, ver, err := n.m.Get("k"); err != nil || v != fmt.Sprint("w", winner) || ver != casSeq[winner] {
		t.Fatalf("k reads %q, %d, %v", v, ver, err)
	}
	// 81 writes; the ones that queued went together.
	k, _ := wire.KeysFor(prefix, "m")
	entries, err := n.cl.Redis().Do(ctx, n.cl.Redis().B().Xlen().Key(k.Log).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	if entries > 10 {
		t.Fatalf("%d log entries for 81 writes, 80 of them queued behind a stalled call: not grouped", entries)
	}
	verify(t, n.m)
}

// A group retried after its reply was lost is not applied twice, and each write gets the
// outcome of the first attempt.
func TestGroupRetryGetsTheFirstOutcomes(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	prefix := newPrefix()
	n := openNode(t, srv.URL(), prefix, "m", Config[string]{Codec: String{}})
	ctx := context.Background()
	if _, err := n.m.Set(ctx, "a", "1"); err != nil {
		t.Fatal(err)
	}
	k, _ := wire.KeysFor(prefix, "m")
	keys := []string{k.Meta, k.Log, k.Idem("p"), k.State}
	argv := []string{k.PubSub, "PUBLISH", wire.RandomID(), "5", "1", "60000", "0", "0", "g",
		"1", "s", "a", "2", "1", // applies: a is at 1
		"1", "s", "b", "x", "7", // conflicts: b is absent
		"1", "d", "zz", "", "", // nothing to delete
		"1", "s", "c", "y", ""} // applies
	run := func() []wire.Written {
		t.Helper()
		vs, err := wire.Write.Exec(ctx, n.cl.Redis(), keys, argv).ToArray()
		if err != nil {
			t.Fatal(err)
		}
		ws, err := wire.ParseWriteGroup(vs, []int{1, 1, 1, 1})
		if err != nil {
			t.Fatal(err)
		}
		return ws
	}
	first := run()
	want := fmt.Sprint([]wire.Written{
		{Epoch: first[0].Epoch, Seq: 2, Status: wire.WriteOK},
		{Epoch: first[0].Epoch, Status: wire.WriteConflict, Index: 0, Actual: 0},
		{Epoch: first[0].Epoch, Status: wire.WriteNotFound},
		{Epoch: first[0].Epoch, Seq: 3, Status: wire.WriteOK},
	})
	if fmt.Sprint(first) != want {
		t.Fatalf("group outcomes %v, want %v", first, want)
	}
	// The same call again, as a retry sends it: same token, same entry id.
	if again := run(); fmt.Sprint(again) != want {
		t.Fatalf("retried group outcomes %v, want the first ones %v", again, want)
	}
	if head, err := n.cl.Head(ctx, "m"); err != nil || head.Seq != 3 {
		t.Fatalf("head %v, %v: want 3 (the retry applied nothing)", head, err)
	}
}

// Close ends the calls in flight and the writes queued behind them: every Write returns, and
// Close does not wait for Redis to answer.
func TestGroupCommitEndsWithClose(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	n := openNode(t, srv.URL(), newPrefix(), "m", Config[string]{Codec: String{}})
	waitReady(t, n.m)
	srv.Pause()
	defer srv.Resume()
	errs := make(chan error, 20)
	for i := range cap(errs) {
		go func() {
			_, err := n.m.Set(context.Background(), fmt.Sprint("k", i), "v")
			errs <- err
		}()
	}
	time.Sleep(200 * time.Millisecond) // one call in flight, the rest queued behind it
	closed := make(chan struct{})
	go func() { n.m.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a stalled Redis")
	}
	for range cap(errs) {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("a write pending at Close returned %v, want ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a write pending at Close did not return")
		}
	}
}

// A reply to a group of writes that does not have the protocol's form is an error matching
// wire.ErrMalformed, naming the reply.
func TestMalformedGroupReply(t *testing.T) {
	srv := startRedis(t, redistest.Options{})
	n := openNode(t, srv.URL(), newPrefix(), "m", Config[string]{Codec: String{}})
	ctx := context.Background()
	for _, reply := range []string{
		"{'e', '1', 'group', 'ok'}",                 // one outcome for two writes
		"{'e', '1', 'group', 'ok', 'bogus'}",        // an unknown outcome
		"{'e', 'x', 'group', 'ok', 'ok'}",           // not a seq
		"{'e', '1', 'single', 'ok', 'ok'}",          // not a group
		"{'e', '1', 'group', 'ok', 'conflict 2 1'}", // an operation the write does not have
		"{'e', '1', 'group', 'ok', 'conflict 1'}",   // no version
	} {
		vs, err := n.cl.Redis().Do(ctx, n.cl.Redis().B().Eval().Script("return "+reply).Numkeys(0).Build()).ToArray()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wire.ParseWriteGroup(vs, []int{1, 1}); !errors.Is(err, wire.ErrMalformed) || !strings.Contains(err.Error(), "write script returned") {
			t.Errorf("%s: err = %v, want ErrMalformed naming the reply", reply, err)
		}
	}
	vs, err := n.cl.Redis().Do(ctx, n.cl.Redis().B().Eval().Script("return {'e', '4', 'group', 'conflict 1 3', 'ok'}").Numkeys(0).Build()).ToArray()
	if err != nil {
		t.Fatal(err)
	}
	ws, err := wire.ParseWriteGroup(vs, []int{1, 1})
	if err != nil || ws[0].Status != wire.WriteConflict || ws[0].Actual != 3 || ws[1].Seq != 4 {
		t.Fatalf("a conflict then a write: %v, %v", ws, err)
	}
}

package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/replmap"
)

// checkWrites checks that evs are the events of writes first+1 … first+len(evs), in order,
// each with its write's operations: write i (0-based) set key k<i> to v<i>, and every third
// write also deleted the key d<i> in the same atomic write.
func checkWrites(t *testing.T, evs []sseEventIn, first uint64) {
	t.Helper()
	for i, ev := range evs {
		seq := first + uint64(i) + 1
		var w wireWrite
		if err := json.Unmarshal([]byte(ev.data), &w); err != nil {
			t.Fatalf("event %d: data %q: %v", i, ev.data, err)
		}
		if ev.typ != "" || ev.id != strconv.FormatUint(seq, 10) || w.Seq != seq || w.Epoch == "" {
			t.Fatalf("event %d: id %q type %q seq %d, want id %d (contiguous, no duplicate, no loss)", i, ev.id, ev.typ, w.Seq, seq)
		}
		want := []wireChange{{Op: "set", Key: fmt.Sprint("k", i), Version: seq}}
		v := fmt.Sprint("v", i)
		want[0].Value = &v
		if i%3 == 0 {
			want = append(want, wireChange{Op: "del", Key: fmt.Sprint("d", i), Version: seq})
		}
		if len(w.Changes) != len(want) {
			t.Fatalf("event %d (seq %d) holds %d changes, want the %d of its write: %s", i, seq, len(w.Changes), len(want), ev.data)
		}
		for j, c := range w.Changes {
			if c.Op != want[j].Op || c.Key != want[j].Key || c.Version != seq || (c.Value == nil) != (want[j].Value == nil) ||
				(c.Value != nil && *c.Value != *want[j].Value) {
				t.Fatalf("event %d change %d = %+v, want %+v", i, j, c, want[j])
			}
		}
	}
}

// A client cut off in the middle of a stream of writes resumes with Last-Event-ID and gets
// every write once: one event per write, with all its operations.
func TestNodeSSEResumeMap(t *testing.T) {
	srv := startRedis(t)
	n := startNode(t, srv.URL(), newPrefix(), Config{Maps: []string{"m"}})
	n.waitReady(t)
	m := n.maps["m"].m
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := m.Set(ctx, "before", []byte("x")); err != nil {
		t.Fatal(err)
	}
	start := m.Position().Seq

	s := openSSE(t, n.url+"/v1/maps/m/watch")
	const total, cut = 200, 100
	writes := make(chan error, 1)
	go func() {
		for i := range total {
			ops := []replmap.Op[[]byte]{{Key: fmt.Sprint("k", i), Value: []byte(fmt.Sprint("v", i))}}
			if i%3 == 0 {
				ops = append(ops, replmap.Op[[]byte]{Key: fmt.Sprint("d", i), Delete: true})
			}
			if _, err := m.Write(ctx, ops...); err != nil {
				writes <- err
				return
			}
		}
		writes <- nil
	}()

	var evs []sseEventIn
	for len(evs) < cut {
		evs = append(evs, s.next(10*time.Second))
	}
	s.close() // cut off mid-stream
	evs = append(evs, s.rest()...)
	lastID := s.lastID.Load().(string)
	if lastID != evs[len(evs)-1].id {
		t.Fatalf("last event ID %q, want the last event's %q", lastID, evs[len(evs)-1].id)
	}

	s = openSSE(t, n.url+"/v1/maps/m/watch?from=now", "Last-Event-ID", lastID) // the header wins over from
	for len(evs) < total {
		evs = append(evs, s.next(10*time.Second))
	}
	if err := <-writes; err != nil {
		t.Fatal(err)
	}
	checkWrites(t, evs, start)
	select {
	case ev := <-s.events:
		t.Fatalf("an event beyond the writes: %+v", ev)
	case <-time.After(200 * time.Millisecond):
	}
}

// A stream's first bytes carry its starting position: a client cut off before any event
// resumes from there and misses nothing written meanwhile.
func TestNodeSSEStartPosition(t *testing.T) {
	srv := startRedis(t)
	n := startNode(t, srv.URL(), newPrefix(), Config{Channels: []string{"c"}})
	for i := range 3 {
		expect(t, "POST", do(t, "POST", n.url+"/v1/channels/c", strings.NewReader(fmt.Sprint("old", i))), http.StatusOK)
	}
	s := openSSE(t, n.url+"/v1/channels/c/events")
	waitFor(t, 5*time.Second, "the starting id", func() bool { return s.lastID.Load().(string) != "" })
	s.close()
	if id := s.lastID.Load().(string); id != "3" {
		t.Fatalf("starting id %q, want 3 (the head)", id)
	}
	expect(t, "POST", do(t, "POST", n.url+"/v1/channels/c", strings.NewReader("new")), http.StatusOK)
	s = openSSE(t, n.url+"/v1/channels/c/events", "Last-Event-ID", "3")
	ev := s.next(10 * time.Second)
	var msg wireMessage
	if err := json.Unmarshal([]byte(ev.data), &msg); err != nil || ev.id != "4" || msg.Data != "new" {
		t.Fatalf("first event after resuming: %+v", ev)
	}
}

// The same for a relayed channel, resuming with ?from= (as a client without the header
// would).
func TestNodeSSEResumeChannel(t *testing.T) {
	srv := startRedis(t)
	n := startNode(t, srv.URL(), newPrefix(), Config{Channels: []string{"c"}})
	s := openSSE(t, n.url+"/v1/channels/c/events?from=0")
	const total, cut = 200, 100
	posted := make(chan error, 1)
	go func() {
		for i := 1; i <= total; i++ {
			req, _ := http.NewRequest("POST", n.url+"/v1/channels/c", strings.NewReader(fmt.Sprint("msg-", i)))
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("POST %d: status %d", i, resp.StatusCode)
				}
			}
			if err != nil {
				posted <- err
				return
			}
		}
		posted <- nil
	}()
	var evs []sseEventIn
	for len(evs) < cut {
		evs = append(evs, s.next(10*time.Second))
	}
	s.close()
	evs = append(evs, s.rest()...)
	if last := s.lastID.Load().(string); last != evs[len(evs)-1].id {
		t.Fatalf("last event ID %q, want the last event's %q", last, evs[len(evs)-1].id)
	}
	s = openSSE(t, n.url+"/v1/channels/c/events?from="+s.lastID.Load().(string))
	for len(evs) < total {
		evs = append(evs, s.next(10*time.Second))
	}
	if err := <-posted; err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		var msg wireMessage
		if err := json.Unmarshal([]byte(ev.data), &msg); err != nil {
			t.Fatalf("event %d: %q: %v", i, ev.data, err)
		}
		want := uint64(i + 1)
		if ev.id != strconv.FormatUint(want, 10) || msg.Seq != want || msg.Data != fmt.Sprint("msg-", want) || msg.Time == "" {
			t.Fatalf("event %d = id %q %+v, want seq %d data msg-%d", i, ev.id, msg, want, want)
		}
	}
}

// History that cannot be delivered arrives as an "event: reset": trimmed from the log, and
// lost by Redis (a new epoch).
func TestNodeSSEReset(t *testing.T) {
	srv := startRedis(t)
	prefix := newPrefix()
	n := startNode(t, srv.URL(), prefix, Config{Maps: []string{"m"}, Channels: []string{"c"}})
	n.waitReady(t)
	for i := range 10 {
		expect(t, "POST", do(t, "POST", n.url+"/v1/channels/c", strings.NewReader(fmt.Sprint(i))), http.StatusOK)
	}
	if _, err := srv.Do("XTRIM", prefix+":{c}:log", "MAXLEN", "0"); err != nil {
		t.Fatal(err)
	}
	s := openSSE(t, n.url+"/v1/channels/c/events?from=0")
	ev := s.next(10 * time.Second)
	var r wireReset
	if err := json.Unmarshal([]byte(ev.data), &r); err != nil || ev.typ != "reset" || ev.id != "10" ||
		r.Reset.Reason != "trimmed" || r.Reset.From != 1 || r.Reset.To != 10 {
		t.Fatalf("first event %+v, want a reset of 1-10 (trimmed) with id 10", ev)
	}
	expect(t, "POST", do(t, "POST", n.url+"/v1/channels/c", strings.NewReader("after")), http.StatusOK)
	if ev := s.next(10 * time.Second); ev.typ != "" || ev.id != "11" {
		t.Fatalf("event after the reset %+v, want message 11", ev)
	}

	// Redis loses the map's history: the watch says so, then goes on in the new epoch.
	expect(t, "PUT", do(t, "PUT", n.url+"/v1/maps/m/keys/a", strings.NewReader("1")), http.StatusOK)
	w := openSSE(t, n.url+"/v1/maps/m/watch?from=0")
	first := w.next(10 * time.Second)
	if first.typ != "" || first.id != "1" {
		t.Fatalf("first map event %+v, want write 1", first)
	}
	if _, err := srv.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the replica to notice the loss", func() bool {
		return do(t, "PUT", n.url+"/v1/maps/m/keys/b", strings.NewReader("2")).code == http.StatusOK && n.maps["m"].m.Position().Epoch != ""
	})
	ev = w.next(10 * time.Second)
	if err := json.Unmarshal([]byte(ev.data), &r); err != nil || ev.typ != "reset" || r.Reset.Reason != "epoch-changed" || r.Reset.OldEpoch == "" {
		t.Fatalf("map event after FLUSHALL %+v, want a reset (epoch-changed)", ev)
	}
	ev = w.next(10 * time.Second)
	var wr wireWrite
	if err := json.Unmarshal([]byte(ev.data), &wr); err != nil || ev.typ != "" || wr.Seq != 1 || wr.Epoch == r.Reset.OldEpoch || wr.Changes[0].Key != "b" {
		t.Fatalf("map event after the reset %+v, want write 1 of the new epoch setting b", ev)
	}
}

// Streams end when the server shuts down: Serve stops accepting, ends the streams and
// returns; Close deregisters.
func TestNodeSSEShutdown(t *testing.T) {
	srv := startRedis(t)
	prefix := newPrefix()
	n := startNode(t, srv.URL(), prefix, Config{Maps: []string{"m"}, KeepAlive: 50 * time.Millisecond})
	n.waitReady(t)

	// A second node serving with Serve, as redisync serve does.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	node2, err := New(n.cl, Config{Maps: []string{"m"}, Heartbeat: 50 * time.Millisecond, TTL: time.Second, Logger: quiet, Addr: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer node2.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() { served <- node2.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	waitFor(t, 10*time.Second, "both nodes registered", func() bool {
		recs, err := ListNodes(ctx, n.rc, prefix)
		return err == nil && len(recs) == 2
	})

	s := openSSE(t, url+"/v1/maps/m/watch")
	expect(t, "PUT", do(t, "PUT", n.url+"/v1/maps/m/keys/a", strings.NewReader("1")), http.StatusOK)
	s.next(10 * time.Second)
	time.Sleep(120 * time.Millisecond) // keep-alive comments flow meanwhile

	begin := time.Now()
	stop()
	select {
	case <-s.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the SSE stream did not end on shutdown")
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve returned %v after a shutdown, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return on shutdown")
	}
	node2.Close()
	t.Logf("shutdown took %v", time.Since(begin).Round(time.Millisecond))
	recs, err := ListNodes(context.Background(), n.rc, prefix)
	if err != nil || len(recs) != 1 || recs[0].ID != n.ID() {
		t.Fatalf("registry after Close: %+v, %v; want the first node only", recs, err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("the listener still accepts after Serve returned")
	}

	// Close on a node with an open stream ends it too.
	s = openSSE(t, n.url+"/v1/maps/m/watch")
	n.Close()
	select {
	case <-s.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the SSE stream did not end on Close")
	}
}

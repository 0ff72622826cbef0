package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/replmap"
)

// checkWrites checks that evs are the events of writes first+1 … first+len(evs), in order,
// each with its write's operations: write i (0-based) set key k<i> to v<i>, and every third
// write also deleted the key d<i> (which existed) in the same atomic write.
func checkWrites(t *testing.T, evs []sseEventIn, first uint64) {
	t.Helper()
	for i, ev := range evs {
		seq := first + uint64(i) + 1
		var w wireWrite
		if err := json.Unmarshal([]byte(ev.data), &w); err != nil {
			t.Fatalf("event %d: data %q: %v", i, ev.data, err)
		}
		if ev.typ != "" || w.Seq != seq || w.Epoch == "" || ev.id != pos(w.Epoch, seq) {
			t.Fatalf("event %d: id %q type %q seq %d, want id EPOCH:%d (contiguous, no duplicate, no loss)", i, ev.id, ev.typ, w.Seq, seq)
		}
		decodeEvent(t, ev) // "pos" is the id
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
	const total, cut = 200, 100
	// The keys the writes delete exist: a delete of an absent key writes nothing.
	var pre []replmap.Op[[]byte]
	for i := 0; i < total; i += 3 {
		pre = append(pre, replmap.Op[[]byte]{Key: fmt.Sprint("d", i), Value: []byte("x")})
	}
	if _, err := m.Write(ctx, pre...); err != nil {
		t.Fatal(err)
	}
	start := m.Position().Seq

	s := openSSE(t, n.url+"/v1/maps/m/watch")
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
	// A channel without history: the position is a bare 0 (there is no epoch yet).
	s := openSSE(t, n.url+"/v1/channels/c/events")
	waitFor(t, 5*time.Second, "the starting id", func() bool { return s.lastID.Load().(string) != "" })
	s.close()
	if id := s.lastID.Load().(string); id != "0" {
		t.Fatalf("starting id %q of a channel without history, want 0", id)
	}

	var p published
	for i := range 3 {
		decode(t, expect(t, "POST", do(t, "POST", n.url+"/v1/channels/c", strings.NewReader(fmt.Sprint("old", i))), http.StatusOK), &p)
	}
	s = openSSE(t, n.url+"/v1/channels/c/events")
	waitFor(t, 5*time.Second, "the starting id", func() bool { return s.lastID.Load().(string) != "" })
	s.close()
	if id := s.lastID.Load().(string); id != pos(p.Epoch, 3) {
		t.Fatalf("starting id %q, want %q (the head, with its epoch)", id, pos(p.Epoch, 3))
	}
	expect(t, "POST", do(t, "POST", n.url+"/v1/channels/c", strings.NewReader("new")), http.StatusOK)
	// The id as the stream wrote it, and a bare seq (taken in the current epoch).
	for _, last := range []string{pos(p.Epoch, 3), "3"} {
		s = openSSE(t, n.url+"/v1/channels/c/events", "Last-Event-ID", last)
		ev := s.next(10 * time.Second)
		if in := decodeEvent(t, ev); ev.id != pos(p.Epoch, 4) || in.Data != "new" {
			t.Fatalf("first event after resuming from %q: %+v", last, ev)
		}
		s.close()
	}
	// A bare seq beyond the head names no message of this history: a reset says so, and the
	// history follows from seq 1.
	s = openSSE(t, n.url+"/v1/channels/c/events", "Last-Event-ID", "9")
	ev := s.next(10 * time.Second)
	if r := decodeEvent(t, ev); ev.typ != "reset" || r.Reset == nil || r.Reset.Reason != "rewound" || r.Reset.From != 1 ||
		r.Reset.To == nil || *r.Reset.To != 9 || ev.id != pos(p.Epoch, 0) {
		t.Fatalf("first event after resuming from 9 with the head at 4: %+v; want a reset (rewound) of 1-9", ev)
	}
	for seq := uint64(1); seq <= 4; seq++ {
		if ev := s.next(10 * time.Second); ev.id != pos(p.Epoch, seq) {
			t.Fatalf("event %+v, want %s", ev, pos(p.Epoch, seq))
		}
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
			req.Header.Set("Content-Type", "text/x-message")
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
		decodeEvent(t, ev)
		want := uint64(i + 1)
		if ev.id != pos(msg.Epoch, want) || msg.Epoch == "" || msg.Seq != want || msg.Data != fmt.Sprint("msg-", want) || msg.Time == "" {
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
	var p published
	for i := range 10 {
		decode(t, expect(t, "POST", do(t, "POST", n.url+"/v1/channels/c", strings.NewReader(fmt.Sprint(i))), http.StatusOK), &p)
	}
	if _, err := srv.Do("XTRIM", prefix+":{c}:log", "MAXLEN", "0"); err != nil {
		t.Fatal(err)
	}
	s := openSSE(t, n.url+"/v1/channels/c/events?from=0")
	ev := s.next(10 * time.Second)
	r := decodeEvent(t, ev)
	if ev.typ != "reset" || ev.id != pos(p.Epoch, 10) || r.Reset == nil ||
		r.Reset.Reason != "trimmed" || r.Reset.From != 1 || r.Reset.To == nil || *r.Reset.To != 10 {
		t.Fatalf("first event %+v, want a reset of 1-10 (trimmed) with id %s", ev, pos(p.Epoch, 10))
	}
	expect(t, "POST", do(t, "POST", n.url+"/v1/channels/c", strings.NewReader("after")), http.StatusOK)
	if ev := s.next(10 * time.Second); ev.typ != "" || ev.id != pos(p.Epoch, 11) {
		t.Fatalf("event after the reset %+v, want message 11", ev)
	}

	// Redis loses the map's history: the watch says so, then goes on in the new epoch.
	expect(t, "PUT", do(t, "PUT", n.url+"/v1/maps/m/keys/a", strings.NewReader("1")), http.StatusOK)
	w := openSSE(t, n.url+"/v1/maps/m/watch?from=0")
	first := w.next(10 * time.Second)
	if in := decodeEvent(t, first); first.typ != "" || in.Epoch == "" || first.id != pos(in.Epoch, 1) {
		t.Fatalf("first map event %+v, want write 1", first)
	}
	if _, err := srv.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the replica to notice the loss", func() bool {
		return do(t, "PUT", n.url+"/v1/maps/m/keys/b", strings.NewReader("2")).code == http.StatusOK && n.maps["m"].m.Position().Epoch != ""
	})
	ev = w.next(10 * time.Second)
	if r = decodeEvent(t, ev); ev.typ != "reset" || r.Reset == nil || r.Reset.Reason != "epoch-changed" || r.Reset.OldEpoch == "" {
		t.Fatalf("map event after FLUSHALL %+v, want a reset (epoch-changed)", ev)
	}
	ev = w.next(10 * time.Second)
	decodeEvent(t, ev)
	var wr wireWrite
	if err := json.Unmarshal([]byte(ev.data), &wr); err != nil || ev.typ != "" || wr.Seq != 1 || wr.Epoch == r.Reset.OldEpoch ||
		ev.id != pos(wr.Epoch, 1) || wr.Changes[0].Key != "b" {
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

// Each kind of event is written with its position as id, "EPOCH:SEQ" (a bare "SEQ" when there
// is no epoch), and its data holds that id as "pos" beside the fields it always had; a reset
// whose range has no known end says "to":null.
func TestSSEEventText(t *testing.T) {
	at := time.UnixMilli(1700000000123)
	msg := channel.Event{Position: channel.Position{Epoch: "e1", Seq: 7}, Time: at, Data: []byte("hi")}
	write := channel.Event{Position: channel.Position{Epoch: "e1", Seq: 8}, Time: at}
	changes := []replmap.Change[[]byte]{
		{Position: write.Position, Key: "a", Raw: []byte("1"), Version: 8},
		{Position: write.Position, Key: "b", Deleted: true, Version: 8, OldVersion: 3},
	}
	for _, tc := range []struct {
		name   string
		ev     sseEvent
		id     string
		typ    string
		fields []string // the data's fields, besides "pos"
		to     any      // a reset's "to": nil for null, else a number
	}{
		{name: "message", ev: messageEvent(msg), id: "e1:7", fields: []string{"seq", "epoch", "time", "data"}},
		{name: "write", ev: writeEvent(replmap.Write[[]byte]{Position: write.Position, Time: at, Changes: changes}), id: "e1:8", fields: []string{"seq", "epoch", "time", "changes"}},
		{name: "trimmed", typ: "reset", id: "e1:10", to: 10.0, fields: []string{"seq", "epoch", "reset"},
			ev: resetEvent(channel.Position{Epoch: "e1", Seq: 10},
				&channel.Reset{Reason: channel.ResetTrimmed, From: 1, To: 10, OldEpoch: "e1", NewEpoch: "e1"})},
		{name: "epoch changed", typ: "reset", id: "e2:0", to: nil, fields: []string{"seq", "epoch", "reset"},
			ev: resetEvent(channel.Position{Epoch: "e2"},
				&channel.Reset{Reason: channel.ResetEpochChanged, From: 4, Open: true, OldEpoch: "e1", NewEpoch: "e2"})},
		{name: "history gone", typ: "reset", id: "0", to: nil, fields: []string{"seq", "epoch", "reset"},
			ev: resetEvent(channel.Position{}, &channel.Reset{Reason: channel.ResetEpochChanged, From: 4, Open: true, OldEpoch: "e1"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out streamWriter
			out.event(tc.ev)
			text := out.buf.String()
			want := "id: " + tc.id + "\n"
			if tc.typ != "" {
				want += "event: " + tc.typ + "\n"
			}
			data, ok := strings.CutPrefix(text, want+"data: ")
			if !ok || !strings.HasSuffix(data, "\n\n") || strings.Count(data, "\n") != 2 {
				t.Fatalf("event text %q, want %q then one data line", text, want)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(data), &got); err != nil {
				t.Fatalf("data %q: %v", data, err)
			}
			if got["pos"] != tc.id {
				t.Errorf("data %s: \"pos\" is %v, want the id %q", data, got["pos"], tc.id)
			}
			for _, f := range tc.fields {
				if _, ok := got[f]; !ok {
					t.Errorf("data %s lacks the field %q", data, f)
				}
			}
			if tc.typ != "reset" {
				return
			}
			r, _ := got["reset"].(map[string]any)
			to, ok := r["to"]
			if !ok || to != tc.to {
				t.Errorf("data %s: reset \"to\" is %v (present %v), want %v", data, to, ok, tc.to)
			}
			for _, f := range []string{"reason", "from", "old_epoch"} {
				if _, ok := r[f]; !ok {
					t.Errorf("data %s: the reset lacks the field %q", data, f)
				}
			}
		})
	}
}

// A client that resumes with the id it kept after Redis lost its data (a restart without
// persistence) is told so by a reset before anything else, then gets the new history from
// seq 1. With the bare seq 3 it would have skipped seqs 1-3 of the new history: the epoch in
// the id is what tells the histories apart.
func TestNodeSSEResumeAcrossEpochs(t *testing.T) {
	srv := startRedis(t)
	n := startNode(t, srv.URL(), newPrefix(), Config{Maps: []string{"m"}, Channels: []string{"c"}})
	n.waitReady(t)
	streams := []struct{ name, path, write string }{
		{"channel", "/v1/channels/c/events", "/v1/channels/c"},
		{"map", "/v1/maps/m/watch", "/v1/maps/m/keys/k"},
	}
	write := func(path string, i int, what string) {
		t.Helper()
		method := "PUT"
		if strings.HasPrefix(path, "/v1/channels/") {
			method = "POST"
		}
		// After the restart the replica reloads when it hears of the new epoch: a client retries
		// the 503 it answers meanwhile (Retry-After), as this one does.
		r := do(t, method, n.url+path, strings.NewReader(fmt.Sprint(what, i)))
		for deadline := time.Now().Add(10 * time.Second); r.code == http.StatusServiceUnavailable && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			r = do(t, method, n.url+path, strings.NewReader(fmt.Sprint(what, i)))
		}
		expect(t, method, r, http.StatusOK)
	}
	lastIDs, oldEpochs := make([]string, len(streams)), make([]string, len(streams))
	for i, st := range streams {
		for j := 1; j <= 3; j++ {
			write(st.write, j, "old-")
		}
		s := openSSE(t, n.url+st.path+"?from=0")
		for range 3 {
			oldEpochs[i] = decodeEvent(t, s.next(10*time.Second)).Epoch
		}
		s.close()
		lastIDs[i] = s.lastID.Load().(string)
		if lastIDs[i] != pos(oldEpochs[i], 3) {
			t.Fatalf("%s: last event ID %q, want %q", st.name, lastIDs[i], pos(oldEpochs[i], 3))
		}
	}

	srv.Restart() // without persistence: Redis comes back empty
	waitFor(t, 20*time.Second, "the node to reach Redis again", func() bool {
		return do(t, "GET", n.url+"/readyz", nil).code == http.StatusOK
	})
	const fresh = 5
	for _, st := range streams {
		for j := 1; j <= fresh; j++ {
			write(st.write, j, "new-")
		}
	}

	for i, st := range streams {
		t.Run(st.name, func(t *testing.T) {
			s := openSSE(t, n.url+st.path, "Last-Event-ID", lastIDs[i])
			ev := s.next(10 * time.Second)
			r := decodeEvent(t, ev)
			if ev.typ != "reset" || r.Reset == nil || r.Reset.Reason != "epoch-changed" || r.Reset.OldEpoch != oldEpochs[i] ||
				r.Reset.NewEpoch == "" || r.Reset.NewEpoch == oldEpochs[i] || r.Reset.From != 4 || ev.id != pos(r.Reset.NewEpoch, 0) {
				t.Fatalf("first event after resuming from %s: %+v; want a reset (epoch-changed) from 4 of the old epoch, id NEW:0", lastIDs[i], ev)
			}
			if r.Reset.To != nil {
				t.Errorf("reset %s: \"to\" is %d, want null (the old history's end is unknown)", ev.data, *r.Reset.To)
			}
			newEpoch := r.Reset.NewEpoch
			for j := uint64(1); j <= fresh; j++ {
				ev := s.next(10 * time.Second)
				in := decodeEvent(t, ev)
				if ev.typ != "" || ev.id != pos(newEpoch, j) || in.Seq != j || in.Epoch != newEpoch {
					t.Fatalf("event %d after the reset: %+v; want %s", j, ev, pos(newEpoch, j))
				}
				value := in.Data
				if st.name == "map" {
					var w wireWrite
					if err := json.Unmarshal([]byte(ev.data), &w); err != nil || len(w.Changes) != 1 || w.Changes[0].Value == nil {
						t.Fatalf("event %d: %q is not a write of one set", j, ev.data)
					}
					value = *w.Changes[0].Value
				}
				if value != fmt.Sprint("new-", j) {
					t.Fatalf("event %d holds %q, want new-%d", j, value, j)
				}
			}
		})
	}
}

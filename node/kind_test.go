package node

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/channel"
)

// A name is a channel or a map, never both: a call that takes it for the other kind answers
// 409 with an error that says what the name is, and writes nothing.
func TestNodeWrongKind(t *testing.T) {
	srv := startRedis(t)
	prefix := newPrefix()
	// Node a serves the map "m" and relays the channel "c"; node b, on the same Redis and
	// prefix, has them the other way round (one node refuses to serve a name as both).
	a := startNode(t, srv.URL(), prefix, Config{Maps: []string{"m"}, Channels: []string{"c"}})
	a.waitReady(t)
	expect(t, "PUT on a map", do(t, "PUT", a.url+"/v1/maps/m/keys/k", strings.NewReader("v")), http.StatusOK)
	var p published
	decode(t, expect(t, "POST on a channel", do(t, "POST", a.url+"/v1/channels/c", strings.NewReader("hello")), http.StatusOK), &p)
	b := startNode(t, srv.URL(), prefix, Config{Maps: []string{"c"}, Channels: []string{"m"}})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	heads := func() [2]channel.Position {
		t.Helper()
		var h [2]channel.Position
		for i, name := range []string{"m", "c"} {
			var err error
			if h[i], err = a.cl.Head(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		return h
	}
	before := heads()

	conflict := func(what string, r reply, name, is, want string) {
		t.Helper()
		expect(t, what, r, http.StatusConflict)
		if e, says := r.errorText(), `"`+name+`" is a `+is+`, not a `+want; !strings.Contains(e, says) {
			t.Errorf("%s: error %q does not say %s", what, e, says)
		}
		if ct := r.hdr.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q, want application/json", what, ct)
		}
	}

	// A map's name as a channel: publish, and streams from now, from the start, resuming.
	conflict("POST on a map", do(t, "POST", b.url+"/v1/channels/m", strings.NewReader("forged")), "m", "map", "channel")
	mapEpoch := before[0].Epoch
	conflict("stream a map as a channel", do(t, "GET", b.url+"/v1/channels/m/events", nil), "m", "map", "channel")
	conflict("stream a map as a channel, from=0", do(t, "GET", b.url+"/v1/channels/m/events?from=0", nil), "m", "map", "channel")
	conflict("stream a map as a channel, resuming", do(t, "GET", b.url+"/v1/channels/m/events", nil, "Last-Event-ID", pos(mapEpoch, 1)), "m", "map", "channel")

	// A channel's name as a map: streams, and (once its replica found out) reads and writes.
	conflict("watch a channel as a map", do(t, "GET", b.url+"/v1/maps/c/watch", nil), "c", "channel", "map")
	conflict("watch a channel as a map, from=0", do(t, "GET", b.url+"/v1/maps/c/watch?from=0", nil), "c", "channel", "map")
	if err := b.maps["c"].m.WaitReady(ctx); !errors.Is(err, channel.ErrWrongKind) {
		t.Fatalf("b's replica of c: WaitReady = %v, want an error matching channel.ErrWrongKind", err)
	}
	conflict("PUT on a channel", do(t, "PUT", b.url+"/v1/maps/c/keys/k", strings.NewReader("forged")), "c", "channel", "map")
	conflict("DELETE on a channel", do(t, "DELETE", b.url+"/v1/maps/c/keys/k", nil), "c", "channel", "map")
	conflict("GET on a channel", do(t, "GET", b.url+"/v1/maps/c/keys/k", nil), "c", "channel", "map")
	r := expect(t, "readyz", do(t, "GET", b.url+"/readyz", nil), http.StatusServiceUnavailable)
	if !strings.Contains(r.body, `is a channel, not a map`) {
		t.Errorf("readyz %q does not say why the map cannot load", r.body)
	}

	if after := heads(); after != before {
		t.Errorf("heads of m and c moved from %v to %v: a refused call wrote something", before, after)
	}
	// The names still work as what they are.
	s := openSSE(t, a.url+"/v1/channels/c/events?from=0")
	if ev := s.next(10 * time.Second); ev.id != pos(p.Epoch, 1) || decodeEvent(t, ev).Data != "hello" {
		t.Fatalf("the channel's first event %+v", ev)
	}
}

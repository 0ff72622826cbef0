package node

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/faultproxy"
)

// A stream's first frame is an event "ready" with data, whose id is the position it starts
// after: a client that ignores events without data (the npm eventsource package does) still
// takes the id.
func TestNodeSSEReadyEvent(t *testing.T) {
	srv := startRedis(t)
	n := startNode(t, srv.URL(), newPrefix(), Config{Channels: []string{"c"}})
	var p published
	decode(t, expect(t, "POST", do(t, "POST", n.url+"/v1/channels/c", strings.NewReader("x")), http.StatusOK), &p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", n.url+"/v1/channels/c/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var first []string
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("the stream ended before its first frame: %v (read %q)", err, first)
		}
		line = strings.TrimRight(line, "\n")
		if line == "" {
			break
		}
		first = append(first, line)
	}
	want := pos(p.Epoch, 1)
	wantData := fmt.Sprintf(`{"seq":1,"epoch":%q,"pos":%q}`, p.Epoch, want)
	if strings.Join(first, "\n") != "retry: 1000\n: ready\nevent: ready\nid: "+want+"\ndata: "+wantData {
		t.Fatalf("first frame %q, want retry, a comment, then event ready with id %s and data %s", first, want, wantData)
	}
}

// While Redis is unreachable a stream answers 200 at once and waits (an EventSource gives up
// for good on any other status); once Redis answers it starts, and delivers from there.
func TestNodeSSEWaitsForRedis(t *testing.T) {
	srv := startRedis(t)
	proxy, err := faultproxy.New(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	prefix := newPrefix()
	writer := startNode(t, srv.URL(), prefix, Config{Channels: []string{"c"}})
	expect(t, "POST", do(t, "POST", writer.url+"/v1/channels/c", strings.NewReader("before")), http.StatusOK)
	n := startNode(t, "redis://"+proxy.Addr(), prefix, Config{Channels: []string{"c"}, KeepAlive: 200 * time.Millisecond})

	proxy.SetBlocked(true) // every connection cut, new ones closed at once
	for _, path := range []string{"/v1/channels/c/events", "/v1/channels/c/events?from=0"} {
		begin := time.Now()
		s := openSSE(t, n.url+path) // fails the test unless 200 text/event-stream
		if took := time.Since(begin); took > 5*time.Second {
			t.Errorf("%s: the answer took %v", path, took)
		}
		select {
		case ev := <-s.ready:
			t.Fatalf("%s: a ready event %+v while Redis is unreachable", path, ev)
		case <-time.After(500 * time.Millisecond):
		}
		s.close()
	}
	if r := do(t, "HEAD", n.url+"/v1/channels/c/events", nil); r.code != http.StatusOK {
		t.Errorf("HEAD while Redis is unreachable: %d", r.code)
	}

	s := openSSE(t, n.url+"/v1/channels/c/events")
	time.Sleep(300 * time.Millisecond)
	proxy.SetBlocked(false)
	var ready sseEventIn
	select {
	case ready = <-s.ready:
	case <-time.After(20 * time.Second):
		t.Fatal("no ready event within 20s of Redis coming back")
	}
	epoch := decodeEvent(t, ready).Epoch
	if ready.id != pos(epoch, 1) {
		t.Fatalf("ready event %+v, want id %s (the head once Redis answered)", ready, pos(epoch, 1))
	}
	expect(t, "POST", do(t, "POST", writer.url+"/v1/channels/c", strings.NewReader("after")), http.StatusOK)
	if ev := s.next(10 * time.Second); ev.id != pos(epoch, 2) || decodeEvent(t, ev).Data != "after" {
		t.Fatalf("event %+v, want message 2", ev)
	}
}

// HEAD on a stream answers the headers a GET would and ends: the connection serves the next
// request.
func TestNodeSSEHead(t *testing.T) {
	srv := startRedis(t)
	n := startNode(t, srv.URL(), newPrefix(), Config{Maps: []string{"m"}, Channels: []string{"c"}})
	n.waitReady(t)
	addr := strings.TrimPrefix(n.url, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	for _, path := range []string{"/v1/maps/m/watch", "/v1/channels/c/events?from=0", "/v1/maps/m/watch"} {
		begin := time.Now()
		fmt.Fprintf(conn, "HEAD %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr)
		resp, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
		if err != nil {
			t.Fatalf("HEAD %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("HEAD %s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		// The same connection answers the next request at once: the stream did not go on.
		fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		resp, err = http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("GET /healthz after HEAD %s: %v (the HEAD still holds the connection?)", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if took := time.Since(begin); resp.StatusCode != http.StatusOK || took > 3*time.Second {
			t.Fatalf("GET /healthz after HEAD %s: %d after %v", path, resp.StatusCode, took)
		}
	}
	// The errors of a GET come before any stream, for HEAD too.
	expect(t, "HEAD bad from", do(t, "HEAD", n.url+"/v1/maps/m/watch?from=x", nil), http.StatusBadRequest)
	expect(t, "HEAD unknown", do(t, "HEAD", n.url+"/v1/channels/nope/events", nil), http.StatusNotFound)
}

// A start position whose seq no log can reach answers 400 before the stream; the largest
// seq a log can hold still starts one.
func TestNodeSSEStartBeyondAnyLog(t *testing.T) {
	srv := startRedis(t)
	n := startNode(t, srv.URL(), newPrefix(), Config{Maps: []string{"m"}, Channels: []string{"c"}})
	n.waitReady(t)
	for _, seq := range []string{"18446744073709551615", "18446744073709551614", strconv.FormatUint(MaxSeq+1, 10), "9223372036854775808"} {
		for _, tc := range []struct{ name, url, header string }{
			{"from", n.url + "/v1/channels/c/events?from=" + seq, ""},
			{"from with epoch", n.url + "/v1/maps/m/watch?from=e1:" + seq, ""},
			{"Last-Event-ID", n.url + "/v1/channels/c/events", seq},
		} {
			var r reply
			if tc.header != "" {
				r = do(t, "GET", tc.url, nil, "Last-Event-ID", tc.header)
			} else {
				r = do(t, "GET", tc.url, nil)
			}
			if r.code != http.StatusBadRequest || !strings.Contains(r.errorText(), "largest seq") {
				t.Errorf("%s %s: %d %q, want 400 saying the seq is beyond the largest a log holds", tc.name, seq, r.code, r.body)
			}
		}
	}
	// The largest one: beyond the head, so a reset (rewound) then the history from 1.
	expect(t, "POST", do(t, "POST", n.url+"/v1/channels/c", strings.NewReader("one")), http.StatusOK)
	s := openSSE(t, n.url+"/v1/channels/c/events?from="+strconv.FormatUint(MaxSeq, 10))
	ev := s.next(10 * time.Second)
	if r := decodeEvent(t, ev); ev.typ != "reset" || r.Reset == nil || r.Reset.Reason != "rewound" || r.Reset.To == nil || *r.Reset.To != MaxSeq {
		t.Fatalf("first event from MaxSeq: %+v", ev)
	}
	if ev := s.next(10 * time.Second); decodeEvent(t, ev).Data != "one" {
		t.Fatalf("event after the reset: %+v", ev)
	}
}

// A condition sent in two header lines is refused: which one holds would be a guess.
func TestNodeTwoConditionLines(t *testing.T) {
	srv := startRedis(t)
	n := startNode(t, srv.URL(), newPrefix(), Config{Maps: []string{"m"}})
	n.waitReady(t)
	r := expect(t, "PUT", do(t, "PUT", n.url+"/v1/maps/m/keys/k", strings.NewReader("v1")), http.StatusOK)
	v1 := version(t, r)
	for _, tc := range []struct {
		name   string
		header string
		values []string
	}{
		{"If-Match twice", "If-Match", []string{etag(v1), etag(v1 + 100)}},
		{"If-Match twice, the same", "If-Match", []string{etag(v1), etag(v1)}},
		{"If-None-Match twice", "If-None-Match", []string{"*", "*"}},
	} {
		for _, method := range []string{"PUT", "DELETE"} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			req, _ := http.NewRequestWithContext(ctx, method, n.url+"/v1/maps/m/keys/k", strings.NewReader("v2"))
			req.Header.Set("Content-Type", "application/octet-stream")
			for _, v := range tc.values {
				req.Header.Add(tc.header, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var e apiError
			json.NewDecoder(resp.Body).Decode(&e)
			resp.Body.Close()
			cancel()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(e.Error, tc.header) {
				t.Errorf("%s %s: %d %q, want 400 naming %s", tc.name, method, resp.StatusCode, e.Error, tc.header)
			}
		}
	}
	if r := do(t, "GET", n.url+"/v1/maps/m/keys/k", nil); r.body != "v1" || version(t, r) != v1 {
		t.Fatalf("k = %q at %d after refused writes, want v1 at %d", r.body, version(t, r), v1)
	}
	// A GET's If-None-Match may be a list, over several lines.
	expect(t, "GET If-None-Match lines", do(t, "GET", n.url+"/v1/maps/m/keys/k", nil, "If-None-Match", `"999", `+etag(v1)), http.StatusNotModified)
}

// A stream started after a bare seq names it, in its ready event, with the epoch current when
// it started: an EventSource cut off before any message resumes with that id, and after Redis
// lost the log meanwhile it is told so (epoch-changed) instead of resuming after the same seq
// of the new history, which would skip that history's first messages.
func TestNodeSSEReadyPinsABareSeq(t *testing.T) {
	srv := startRedis(t)
	n := startNode(t, srv.URL(), newPrefix(), Config{Channels: []string{"c"}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	publish := func(count int) channel.Position {
		t.Helper()
		var last channel.Position
		for i := 0; i < count; i++ {
			p, err := n.cl.Publish(ctx, "c", []byte(fmt.Sprint("m", i)))
			if err != nil {
				t.Fatal(err)
			}
			last = p
		}
		return last
	}
	old := publish(10)

	s := openSSE(t, n.url+"/v1/channels/c/events?from=10")
	var ready sseEventIn
	select {
	case ready = <-s.ready:
	case <-time.After(10 * time.Second):
		t.Fatal("no ready event")
	}
	s.close()
	if want := pos(old.Epoch, 10); ready.id != want {
		t.Fatalf("ready id %q after ?from=10, want %q: the seq with the epoch it is a seq of", ready.id, want)
	}

	if _, err := srv.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	now := publish(13)
	s = openSSE(t, n.url+"/v1/channels/c/events", "Last-Event-ID", ready.id)
	ev := decodeEvent(t, s.next(10*time.Second))
	if ev.Reset == nil || ev.Reset.Reason != "epoch-changed" || ev.Reset.OldEpoch != old.Epoch || ev.Reset.From != 11 {
		t.Fatalf("first event after resuming with %s across a FLUSHALL: %+v, want a reset epoch-changed from 11 of epoch %s", ready.id, ev, old.Epoch)
	}
	for seq := uint64(1); seq <= 13; seq++ {
		if ev := decodeEvent(t, s.next(10*time.Second)); ev.Reset != nil || ev.Epoch != now.Epoch || ev.Seq != seq {
			t.Fatalf("event %+v, want message %d of the new epoch %s", ev, seq, now.Epoch)
		}
	}
}

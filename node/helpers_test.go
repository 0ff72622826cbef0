package node

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/redistest"
	"github.com/redisync/redisync/redisconn"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var prefixSeq atomic.Int64

// newPrefix returns a key prefix of its own for a test.
func newPrefix() string {
	return "t" + strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.FormatInt(prefixSeq.Add(1), 10)
}

// beforeNew runs in startNode once the node's Redis client is connected, before New.
var beforeNew = func() {}

// testNode is a Node served by an httptest server.
type testNode struct {
	*Node
	url string // http://127.0.0.1:PORT
	cl  *channel.Client
	rc  rueidis.Client
}

// startNode connects to redisURL, starts a Node with cfg (test defaults: fast heartbeat, short
// TTL, quiet logger) behind an httptest server, and closes everything when the test ends.
func startNode(t *testing.T, redisURL, prefix string, cfg Config) *testNode {
	t.Helper()
	rc, err := redisconn.Open(context.Background(), redisconn.Options{URL: redisURL, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := channel.New(rc, channel.Config{Prefix: prefix, Logger: quiet, IdleCheck: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	beforeNew()
	ts := httptest.NewUnstartedServer(nil)
	if cfg.Addr == "" {
		cfg.Addr = ts.Listener.Addr().String()
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 100 * time.Millisecond
	}
	if cfg.TTL == 0 {
		cfg.TTL = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	n, err := New(cl, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = n.Handler()
	ts.Start()
	t.Cleanup(func() {
		n.Close()
		ts.Close()
		cl.Close()
		rc.Close()
	})
	return &testNode{Node: n, url: ts.URL, cl: cl, rc: rc}
}

// waitReady waits until every replica of n is ready.
func (n *testNode) waitReady(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		t.Fatalf("node %s not ready: %v", n.ID(), err)
	}
}

// reply is an HTTP answer read in full.
type reply struct {
	code int
	hdr  http.Header
	body string
}

// errorText returns the "error" field of a JSON error body.
func (r reply) errorText() string {
	var e apiError
	_ = json.Unmarshal([]byte(r.body), &e)
	return e.Error
}

// do sends a request and reads the whole answer. headers are name, value pairs. A request
// with a body says it is application/octet-stream, as a client would: a POST without the
// token needs a non-simple type (a later Content-Type in headers wins).
func do(t *testing.T, method, url string, body io.Reader, headers ...string) reply {
	t.Helper()
	if body != nil {
		headers = append([]string{"Content-Type", "application/octet-stream"}, headers...)
	}
	return request(t, method, url, "", body, headers...)
}

// request sends method url with the given Host header (empty: the URL's) and headers (name,
// value pairs), and reads the whole answer.
func request(t *testing.T, method, url, host string, body io.Reader, headers ...string) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return reply{code: resp.StatusCode, hdr: resp.Header, body: string(b)}
}

// expect fails the test unless r has the status code want.
func expect(t *testing.T, what string, r reply, want int) reply {
	t.Helper()
	if r.code != want {
		t.Fatalf("%s: status %d, want %d; body %q", what, r.code, want, r.body)
	}
	return r
}

// decode unmarshals r's body into v.
func decode(t *testing.T, r reply, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("body %q is not the JSON expected: %v", r.body, err)
	}
}

// waitFor polls cond every 10ms until it holds, and fails the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sseEventIn is an event read from a stream.
type sseEventIn struct {
	id   string
	typ  string
	data string
}

// sseStream reads a Server-Sent Events stream as a browser would: it dispatches events with
// data and keeps the last event ID, which an id-only event also sets. The stream's "ready"
// event goes to ready, the others to events (as onmessage and the "reset" listener of a
// page see them).
type sseStream struct {
	t      *testing.T
	resp   *http.Response
	ctx    context.Context
	cancel context.CancelFunc
	events chan sseEventIn
	ready  chan sseEventIn // the "ready" events; buffered
	ended  chan struct{}   // closed when the stream has ended
	lastID atomic.Value    // string
}

// openSSE opens a stream at url; headers are name, value pairs. It fails the test unless the
// answer is 200 with text/event-stream.
func openSSE(t *testing.T, url string, headers ...string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: status %d, content type %q, body %q", url, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	s := &sseStream{t: t, resp: resp, ctx: ctx, cancel: cancel, events: make(chan sseEventIn, 1024), ready: make(chan sseEventIn, 16),
		ended: make(chan struct{})}
	s.lastID.Store("")
	go s.read()
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) read() {
	defer close(s.ended)
	defer close(s.events)
	br := bufio.NewReader(s.resp.Body)
	var ev sseEventIn
	var data []string
	hasID := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if len(data) > 0 && ev.typ == "ready" {
				ev.data = strings.Join(data, "\n")
				select {
				case s.ready <- ev:
				default:
					s.t.Errorf("more ready events than expected: %+v", ev)
				}
			} else if len(data) > 0 {
				ev.data = strings.Join(data, "\n")
				select {
				case s.events <- ev:
				case <-s.ctx.Done():
					return // not received: the last event ID stays
				}
			}
			if hasID {
				s.lastID.Store(ev.id)
			}
			ev, data, hasID = sseEventIn{}, nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			ev.id, hasID = value, true
		case "event":
			ev.typ = value
		case "data":
			data = append(data, value)
		}
	}
}

// next returns the next event, failing the test after within.
func (s *sseStream) next(within time.Duration) sseEventIn {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.t.Fatal("the SSE stream ended")
		}
		return ev
	case <-time.After(within):
		s.t.Fatalf("no SSE event within %v", within)
		return sseEventIn{}
	}
}

// rest returns the events read but not taken by next, once the stream has ended.
func (s *sseStream) rest() []sseEventIn {
	<-s.ended
	var evs []sseEventIn
	for ev := range s.events {
		evs = append(evs, ev)
	}
	return evs
}

// close cuts the stream off, as a client that goes away.
func (s *sseStream) close() {
	s.cancel()
	<-s.ended
	s.resp.Body.Close()
}

// startRedis starts a redis-server of the test's own.
func startRedis(t *testing.T) *redistest.Server {
	t.Helper()
	return redistest.Start(t, redistest.Options{})
}

// eventIn is the data of an SSE event as a client reads it: the fields every kind of event
// has, and a reset's details. It is decoded independently of the types that encode it.
type eventIn struct {
	Seq   uint64  `json:"seq"`
	Epoch string  `json:"epoch"`
	Pos   *string `json:"pos"`
	Entry string  `json:"entry"`
	Data  string  `json:"data"`
	Reset *struct {
		Reason   string  `json:"reason"`
		From     uint64  `json:"from"`
		To       *uint64 `json:"to"` // null: no known end
		OldEpoch string  `json:"old_epoch"`
		NewEpoch string  `json:"new_epoch"`
	} `json:"reset"`
}

// decodeEvent decodes ev's data and checks that its "pos" is its id, as a client that keeps
// either must find.
func decodeEvent(t *testing.T, ev sseEventIn) eventIn {
	t.Helper()
	var in eventIn
	if err := json.Unmarshal([]byte(ev.data), &in); err != nil {
		t.Fatalf("event %+v: data is not the JSON expected: %v", ev, err)
	}
	if in.Pos == nil || *in.Pos != ev.id {
		t.Fatalf("event %+v: \"pos\" is not the event's id", ev)
	}
	return in
}

// pos formats a position as the streams write their ids: "EPOCH:SEQ".
func pos(epoch string, seq uint64) string {
	return channel.Position{Epoch: epoch, Seq: seq}.String()
}

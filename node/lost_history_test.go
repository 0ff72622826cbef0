package node

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/wire"
	"github.com/redisync/redisync/replmap"
)

// A client that delivered messages a failover then lost resumes with the id of the last one.
// The same EPOCH:SEQ now names another message: the stream must begin with a reset (rewound)
// that covers what the client delivered, then deliver the log's history, never go on after
// the seq as if nothing happened. The node that sent the events remembers their entries, so
// a bare Last-Event-ID is checked; any node checks a position sent with its entry.
func TestNodeSSEResumeAfterALostHistory(t *testing.T) {
	srv := startRedis(t)
	prefix := newPrefix()
	n := startNode(t, srv.URL(), prefix, Config{Channels: []string{"c"}})
	other := startNode(t, srv.URL(), prefix, Config{Channels: []string{"c"}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 1; i <= 10; i++ {
		if _, err := n.cl.Publish(ctx, "c", []byte(fmt.Sprint("old", i))); err != nil {
			t.Fatal(err)
		}
	}
	s := openSSE(t, n.url+"/v1/channels/c/events?from=0")
	var last eventIn
	for i := 1; i <= 10; i++ {
		last = decodeEvent(t, s.next(10*time.Second))
	}
	s.close()
	if last.Seq != 10 || last.Entry == "" {
		t.Fatalf("last event %+v: want seq 10 with its entry", last)
	}

	// A failover to a replica that had 1..7; the new primary takes 8..12.
	k, err := wire.KeysFor(prefix, "c")
	if err != nil {
		t.Fatal(err)
	}
	f, err := n.rc.Do(ctx, n.rc.B().Xrange().Key(k.Log).Start("7-0").End("7-0").Build()).AsXRange()
	if err != nil || len(f) != 1 {
		t.Fatalf("XRANGE: %v, %v", f, err)
	}
	env, err := wire.DecodeEnvelope(f[0].FieldValues["e"])
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{
		{"XDEL", k.Log, "8-0", "9-0", "10-0"},
		{"XSETID", k.Log, "7-0"},
		{"HSET", k.Meta, "seq", "7", "tip", env.ID},
	} {
		if _, err := srv.Do(cmd...); err != nil {
			t.Fatal(err)
		}
	}
	for i := 8; i <= 12; i++ {
		if _, err := n.cl.Publish(ctx, "c", []byte(fmt.Sprint("new", i))); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		name, url string
		headers   []string
	}{
		{"Last-Event-ID, to the node that sent it", n.url + "/v1/channels/c/events", []string{"Last-Event-ID", *last.Pos}},
		{"?from= with the entry, to another node", other.url + "/v1/channels/c/events?from=" + *last.Pos + ":" + last.Entry, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openSSE(t, tc.url, tc.headers...)
			defer s.close()
			ev := s.next(10 * time.Second)
			r := decodeEvent(t, ev)
			if ev.typ != "reset" || r.Reset == nil || r.Reset.Reason != "rewound" || r.Reset.From != 1 || r.Reset.To == nil || *r.Reset.To != 10 {
				t.Fatalf("first event %+v; want a reset (rewound) of 1-10", ev)
			}
			for i := 1; i <= 12; i++ {
				want := "old" + strconv.Itoa(i)
				if i > 7 {
					want = "new" + strconv.Itoa(i)
				}
				if got := decodeEvent(t, s.next(10*time.Second)); got.Seq != uint64(i) || got.Data != want {
					t.Fatalf("event %+v; want seq %d %s", got, i, want)
				}
			}
		})
	}
}

// A map write that Redis acknowledged and then lost is answered 503 with Retry-After, saying
// so, not as a refusal of Redis: the client is to write again.
func TestWriteLostAnswer(t *testing.T) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPut, "/v1/maps/m/keys/k", nil)
	err := fmt.Errorf("%w: e:8", replmap.ErrWriteLost)
	(&Node{}).writeFailure(rec, req, err, `write to map "m"`)
	body := rec.Body.String()
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(body, "lost") || !strings.Contains(body, "write again") {
		t.Fatalf("answer %d, Retry-After %q, body %s; want 503 with Retry-After, saying the write was lost", rec.Code, rec.Header().Get("Retry-After"), body)
	}
}

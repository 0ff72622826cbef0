package channel

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/internal/redistest"
	"github.com/redisync/redisync/redisconn"
)

// newTestClient returns a Client on srv (or on url when srv is nil), closed when the test ends.
func newTestClient(t *testing.T, url string, cfg Config) (*Client, rueidis.Client) {
	t.Helper()
	rc, err := redisconn.Open(context.Background(), redisconn.Options{URL: url, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "t" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	c, err := New(rc, cfg)
	if err != nil {
		rc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		rc.Close()
	})
	return c, rc
}

// recorder collects the events a handler receives.
type recorder struct {
	mu     sync.Mutex
	events []Event
	msgs   int
	delay  time.Duration
}

func (r *recorder) handle(_ context.Context, ev Event) error {
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	if ev.Reset == nil {
		r.msgs++
	}
	return nil
}

func (r *recorder) snapshot() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// waitMsgs waits until n messages (not resets) were received.
func (r *recorder) waitMsgs(t *testing.T, n int, within time.Duration) []Event {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r.mu.Lock()
		got := r.msgs
		r.mu.Unlock()
		if got >= n {
			return r.snapshot()
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d messages within %v", got, n, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// subscribe starts a subscription recording into a new recorder.
func subscribe(t *testing.T, c *Client, name string, from From) (*recorder, *Subscription) {
	t.Helper()
	r := &recorder{}
	s, err := c.Subscribe(context.Background(), name, from, r.handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return r, s
}

// checkSequence fails unless events are exactly the messages from..to in order, no resets,
// with the data "m<seq>" published by publishN.
func checkSequence(t *testing.T, events []Event, from, to uint64) {
	t.Helper()
	if want := int(to - from + 1); len(events) != want {
		t.Fatalf("got %d events, want %d", len(events), want)
	}
	for i, ev := range events {
		want := from + uint64(i)
		if ev.Reset != nil {
			t.Fatalf("event %d is a reset: %+v", i, *ev.Reset)
		}
		if ev.Seq != want {
			t.Fatalf("event %d has seq %d, want %d", i, ev.Seq, want)
		}
	}
}

// publishN publishes n messages "m<i>" one at a time and returns their positions.
func publishN(t *testing.T, c *Client, name string, n int) []Position {
	t.Helper()
	ps := make([]Position, n)
	for i := range n {
		p, err := c.Publish(context.Background(), name, []byte(fmt.Sprintf("m%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = p
	}
	return ps
}

// startRedis starts a redis-server for one test.
func startRedis(t *testing.T, opts redistest.Options) *redistest.Server {
	t.Helper()
	return redistest.Start(t, opts)
}

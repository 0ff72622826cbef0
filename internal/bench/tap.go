package bench

import (
	"context"
	"strings"
	"sync"

	"github.com/redis/rueidis"
)

// tap is a rueidis.Client that a scenario puts between a channel.Client and its Redis
// client: it notes the name of every command sent through Do and DoMulti (the idle scenario
// tells the commands its clients sent from those their scripts ran), and it can hold back new
// dedicated connections, which the channel package uses for pub/sub (the storm scenario keeps
// its clients cut off from pub/sub while it publishes). Everything else passes through.
type tap struct {
	rueidis.Client

	mu    sync.Mutex          // guards the fields below
	sent  map[string]struct{} // lower-case names of the commands sent
	held  chan struct{}       // while not nil, Dedicate waits until it is closed
	count int64               // commands sent
}

func newTap(rc rueidis.Client) *tap { return &tap{Client: rc, sent: map[string]struct{}{}} }

func (t *tap) note(cmds ...rueidis.Completed) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range cmds {
		if args := c.Commands(); len(args) > 0 {
			t.sent[strings.ToLower(args[0])] = struct{}{}
		}
		t.count++
	}
}

func (t *tap) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	t.note(cmd) // before Do, which recycles cmd
	return t.Client.Do(ctx, cmd)
}

func (t *tap) DoMulti(ctx context.Context, cmds ...rueidis.Completed) []rueidis.RedisResult {
	t.note(cmds...)
	return t.Client.DoMulti(ctx, cmds...)
}

// Dedicate waits while new connections are held back, then passes through.
func (t *tap) Dedicate() (rueidis.DedicatedClient, func()) {
	t.mu.Lock()
	held := t.held
	t.mu.Unlock()
	if held != nil {
		<-held
	}
	return t.Client.Dedicate()
}

// hold makes Dedicate wait until release.
func (t *tap) hold() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.held == nil {
		t.held = make(chan struct{})
	}
}

// release lets Dedicate through again. It is idempotent.
func (t *tap) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.held != nil {
		close(t.held)
		t.held = nil
	}
}

// sentCount returns the number of commands sent so far.
func (t *tap) sentCount() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count
}

// sentNames returns the names of the commands sent so far, lower-case as in INFO
// commandstats.
func (t *tap) sentNames() map[string]struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]struct{}, len(t.sent))
	for k := range t.sent {
		out[k] = struct{}{}
	}
	return out
}

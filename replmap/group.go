package replmap

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/wire"
)

// group commits the writes of one writer several to a script call: while a call is in flight,
// the writes that come meanwhile queue, and the next call carries them all (PROTOCOL.md, "Maps":
// a group of writes). Each write is applied on its own, with its own guards and seq, as if it
// were a call of its own; only the round trip and the script's fixed cost are shared. The
// caller whose write opens a call commits in its own goroutine; the writes still queued once
// its own has its result are left to a goroutine that commits until none is left.
type group struct {
	app      *wire.Appender
	k        wire.Keys
	maxBytes int             // of one call's keys and values
	life     context.Context // ends with the Map (Close): so do the calls in flight

	drains sync.WaitGroup // the drain goroutine, waited for by close

	mu      sync.Mutex // guards the fields below
	pending []*groupWrite
	busy    bool // a caller or the drain goroutine is committing
	closed  bool // no drain goroutine starts any more
}

// close waits for the drain goroutine, whose calls end with life, which the Map has ended.
// Writes still queued when no goroutine may start get ErrClosed.
func (g *group) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.drains.Wait()
}

// groupMaxWrites bounds the writes of one call.
const groupMaxWrites = 256

// groupWrite is one write waiting for its call.
type groupWrite struct {
	ctx     context.Context
	args    []string // four per operation, as the write script takes them
	size    int
	done    chan groupResult // buffered: the committer never blocks on a caller that left
	settled atomic.Bool
}

type groupResult struct {
	w     wire.Written
	entry string // the id of the call's log entry
	err   error
}

func (gw *groupWrite) finish(r groupResult) {
	gw.settled.Store(true)
	gw.done <- r
}

// write commits one write (args: four per operation) and returns the script's outcome for it,
// the id of the log entry that holds it, and the error of the call: nil, or one matching
// channel.ErrNotReplicated when it was applied all the same.
func (g *group) write(ctx context.Context, args []string, size int) (wire.Written, string, error) {
	gw := &groupWrite{ctx: ctx, args: args, size: size, done: make(chan groupResult, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, gw)
	lead := !g.busy
	g.busy = true
	g.mu.Unlock()
	if lead {
		for !gw.settled.Load() {
			g.commit(g.take())
		}
		g.mu.Lock()
		more := len(g.pending) > 0
		g.busy = more && !g.closed
		if g.busy {
			g.drains.Add(1) // under mu: close has not begun waiting
			go func() {
				defer g.drains.Done()
				g.drain()
			}()
		} else {
			for _, left := range g.pending {
				left.finish(groupResult{err: ErrClosed})
			}
			g.pending = g.pending[:0]
		}
		g.mu.Unlock()
	}
	select {
	case r := <-gw.done:
		return r.w, r.entry, r.err
	case <-ctx.Done():
		return wire.Written{}, "", ctx.Err()
	}
}

// drain commits the queued writes until none is left.
func (g *group) drain() {
	for {
		batch := g.take()
		if len(batch) == 0 {
			g.mu.Lock()
			if len(g.pending) == 0 {
				g.busy = false
				g.mu.Unlock()
				return
			}
			g.mu.Unlock()
			continue
		}
		g.commit(batch)
	}
}

// take removes the next call's writes from the queue: those whose callers still wait, within
// the limits of one call.
func (g *group) take() (batch []*groupWrite) {
	g.mu.Lock()
	defer g.mu.Unlock()
	size, i := 0, 0
	for ; i < len(g.pending); i++ {
		gw := g.pending[i]
		if err := gw.ctx.Err(); err != nil {
			gw.finish(groupResult{err: err})
			continue
		}
		if len(batch) > 0 && (len(batch) == groupMaxWrites || size+gw.size > g.maxBytes) {
			break
		}
		batch = append(batch, gw)
		size += gw.size
	}
	g.pending = append(g.pending[:0], g.pending[i:]...)
	return batch
}

// commit runs the write script once for batch, while any of its callers still waits, and
// hands each its outcome.
func (g *group) commit(batch []*groupWrite) {
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer context.AfterFunc(g.life, cancel)()
	var waiting atomic.Int32
	waiting.Store(int32(len(batch)))
	n := 1
	for _, gw := range batch {
		stop := context.AfterFunc(gw.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
		n += 1 + len(gw.args)
	}
	args := make([]string, 0, n)
	args = append(args, "g")
	nops := make([]int, len(batch))
	for i, gw := range batch {
		nops[i] = len(gw.args) / 4
		args = append(args, strconv.Itoa(nops[i]))
		args = append(args, gw.args...)
	}
	vs, entry, err := g.app.Append(ctx, wire.Write, g.k, []string{g.k.State}, args)
	if err != nil && g.life.Err() != nil {
		err = ErrClosed
	}
	var ws []wire.Written
	if err == nil || errors.Is(err, channel.ErrNotReplicated) {
		var perr error
		if ws, perr = wire.ParseWriteGroup(vs, nops); perr != nil {
			err = fmt.Errorf("replmap: write to map %q: %w", g.k.Name, perr)
		}
	}
	for i, gw := range batch {
		r := groupResult{entry: entry, err: err}
		if ws != nil {
			r.w = ws[i]
		} else if cerr := gw.ctx.Err(); cerr != nil {
			r.err = cerr
		}
		gw.finish(r)
	}
}

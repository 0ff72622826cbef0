package channel

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redisync/redisync/internal/wire"
)

// Publish appends data to the channel's log and announces it to subscribers. It returns once
// Redis has accepted the message, with the message's position.
//
// Transient failures (a dropped connection, a Redis restart, a failover) are retried until ctx
// ends; a retried call is never appended twice. When ctx ends first, the error is ctx's and the
// message may or may not have been appended. Concurrent calls on one channel are committed
// together in one script call (group commit); each still gets its own seq.
func (c *Client) Publish(ctx context.Context, name string, data []byte) (Position, error) {
	return c.PublishBatch(ctx, name, [][]byte{data})
}

// PublishBatch appends msgs atomically in one script call: they get contiguous seqs, msgs[i] at
// the returned position's Seq+i, and no other message comes between them. The batch must fit
// Config.MaxBatchMessages and Config.MaxBatchBytes. Retries are as for Publish.
func (c *Client) PublishBatch(ctx context.Context, name string, msgs [][]byte) (Position, error) {
	st, err := c.pubStateFor(name)
	if err != nil {
		return Position{}, err
	}
	if len(msgs) == 0 {
		return Position{}, ErrEmptyBatch
	}
	if len(msgs) > c.cfg.MaxBatchMessages {
		return Position{}, fmt.Errorf("%w: %d messages in a batch, the limit is %d", ErrTooLarge, len(msgs), c.cfg.MaxBatchMessages)
	}
	size := 0
	for _, m := range msgs {
		if len(m) > c.cfg.MaxMessageBytes {
			return Position{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(m), c.cfg.MaxMessageBytes)
		}
		size += len(m)
	}
	if size > c.cfg.MaxBatchBytes {
		return Position{}, fmt.Errorf("%w: %d bytes in a batch, the limit is %d", ErrTooLarge, size, c.cfg.MaxBatchBytes)
	}
	req := &pubReq{ctx: ctx, msgs: msgs, size: size, done: make(chan pubResult, 1)}
	st.mu.Lock()
	st.pending = append(st.pending, req)
	lead := st.flushers < c.cfg.MaxInflight
	if lead {
		st.flushers++
	}
	st.mu.Unlock()
	if lead {
		c.lead(st, req)
	}
	select {
	case r := <-req.done:
		return r.pos, r.err
	case <-ctx.Done():
		return Position{}, ctx.Err()
	case <-c.ctx.Done():
		return Position{}, ErrClosed
	}
}

type pubReq struct {
	ctx     context.Context
	msgs    [][]byte
	size    int
	done    chan pubResult // buffered: the flusher never blocks on a caller that left
	settled atomic.Bool    // done has its result
}

func (r *pubReq) finish(res pubResult) {
	r.settled.Store(true)
	r.done <- res
}

type pubResult struct {
	pos Position
	err error
}

// pubState is the group-commit state of one channel.
type pubState struct {
	name string
	keys keys

	mu       sync.Mutex  // guards the fields below
	pending  []*pubReq   // waiting for a flusher, oldest first
	flushers int         // flush goroutines running, at most Config.MaxInflight
	ackEpoch string      // epoch of the newest seq acknowledged
	ackSeq   uint64      // the newest seq acknowledged in ackEpoch
	acks     []ackedCall // calls acknowledged in ackEpoch, oldest first, as keepAck thins them
	calls    uint64      // calls acknowledged in ackEpoch: the number of the newest
}

// ackedCall is a publish call that was acknowledged: its number in the epoch, its seqs and the
// id of its log entry.
type ackedCall struct {
	n, first, last uint64
	entry          string
}

// ackedRecent is how many of its newest acknowledged calls a publisher remembers per channel,
// every one, to find where the log parted from them when a failover lost some (partedBelow).
const ackedRecent = 32

// keepAck reports whether call number n is still remembered once calls were acknowledged:
// every one of the newest ackedRecent, then one in 2, 4, 8, … the older it is (ackedRecent/2
// for each doubling of age), so that where the log parted is found within a sixteenth of its
// distance from the head, from a few hundred calls at most. A call dropped is never kept again.
func keepAck(n, calls uint64) bool {
	age := calls - n
	if age < ackedRecent {
		return true
	}
	return n%(1<<bits.Len64(age/ackedRecent)) == 0
}

func (c *Client) pubStateFor(name string) (*pubState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if st, ok := c.pubs[name]; ok {
		return st, nil
	}
	k, err := c.keysFor(name)
	if err != nil {
		return nil, err
	}
	st := &pubState{name: name, keys: k}
	c.pubs[name] = st
	return st, nil
}

// lead commits pending requests in the caller's goroutine until req has its result; requests
// still pending then are left to a flusher goroutine, so that no caller waits for others'
// commits after its own. A lone publisher thus commits with no goroutine hand-off at all.
func (c *Client) lead(st *pubState, req *pubReq) {
	for !req.settled.Load() {
		batch := c.take(st)
		if batch == nil {
			return // take retired this flusher
		}
		c.commit(st, batch)
	}
	st.mu.Lock()
	more := len(st.pending) > 0
	if !more {
		st.flushers--
	}
	st.mu.Unlock()
	if more && !c.goFunc(func() { c.flush(st) }) {
		st.mu.Lock()
		st.flushers--
		st.mu.Unlock()
	}
}

// flush commits pending requests until none is left.
func (c *Client) flush(st *pubState) {
	for {
		runtime.Gosched() // let the publishers just answered publish again: larger batches
		batch := c.take(st)
		if batch == nil {
			return
		}
		c.commit(st, batch)
	}
}

// take removes the next batch from st.pending within the batch limits. It returns nil, and
// retires the calling flusher, when nothing is pending.
func (c *Client) take(st *pubState) (batch []*pubReq) {
	st.mu.Lock()
	defer st.mu.Unlock()
	msgs, size, i := 0, 0, 0
	for ; i < len(st.pending); i++ {
		r := st.pending[i]
		if err := r.ctx.Err(); err != nil {
			r.finish(pubResult{err: err})
			continue
		}
		if len(batch) > 0 && (msgs+len(r.msgs) > c.cfg.MaxBatchMessages || size+r.size > c.cfg.MaxBatchBytes) {
			break
		}
		batch = append(batch, r)
		msgs += len(r.msgs)
		size += r.size
	}
	st.pending = append(st.pending[:0], st.pending[i:]...)
	if len(batch) == 0 {
		st.flushers--
	}
	return batch
}

// commit appends batch in one script call while any caller in it still waits, and hands every
// caller its result.
func (c *Client) commit(st *pubState, batch []*pubReq) {
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	var waiting atomic.Int32
	waiting.Store(int32(len(batch)))
	for _, r := range batch {
		stop := context.AfterFunc(r.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	var msgs [][]byte
	for _, r := range batch {
		msgs = append(msgs, r.msgs...)
	}
	vs, entry, err := c.app.Append(ctx, wire.Publish, st.keys, nil, wire.Pack(msgs...))
	if err != nil && c.ctx.Err() != nil {
		err = ErrClosed
	}
	var pos Position
	var reply wire.Appended
	if err == nil || errors.Is(err, ErrNotReplicated) {
		var perr error
		if reply, perr = wire.ParsePublish(vs); perr != nil {
			err = perr
		}
		pos = Position{Epoch: reply.Epoch, Seq: reply.First, Entry: entry}
	}
	appended := err == nil || errors.Is(err, ErrNotReplicated)
	if appended {
		c.stats.published.Add(uint64(len(msgs)))
		c.stats.publishCalls.Add(1)
		if !reply.Repeat { // a retry answered from the idempotency record: an old seq is expected
			st.acknowledged(c, pos, uint64(len(msgs)))
		}
	}
	seq := pos.Seq
	for _, r := range batch {
		res := pubResult{err: err}
		if appended {
			res.pos = Position{Epoch: pos.Epoch, Seq: seq, Entry: entry}
			seq += uint64(len(r.msgs))
		} else if ctxErr := r.ctx.Err(); ctxErr != nil {
			res.err = ctxErr
		} else if c.ctx.Err() != nil {
			res.err = ErrClosed
		}
		r.finish(res)
	}
}

// acknowledged notes that a fresh append of n messages got seqs from pos on. A seq at or below
// one already acknowledged in the same epoch means the log went back: a failover lost writes
// that had been acknowledged, and their seqs now name other messages. That is logged and
// counted (Stats.SeqsReused), and marked in Redis as a subscription that sees it would
// (writeMark), so that a resume by a bare EPOCH:SEQ is told even when no subscription ran
// through the failover; the subscribers see it as a rewound reset.
func (st *pubState) acknowledged(c *Client, pos Position, n uint64) {
	last := pos.Seq + n - 1
	st.mu.Lock()
	reused := pos.Epoch == st.ackEpoch && pos.Seq <= st.ackSeq && c.cfg.MaxInflight == 1
	prev := st.ackSeq
	var before []ackedCall // the calls acknowledged below the reused seq: the log may still hold them
	if reused {
		i := 0
		for i < len(st.acks) && st.acks[i].last < pos.Seq {
			i++
		}
		before, st.acks = append([]ackedCall(nil), st.acks[:i]...), st.acks[:i]
	}
	if pos.Epoch != st.ackEpoch {
		st.acks, st.calls = st.acks[:0], 0
	}
	if pos.Epoch != st.ackEpoch || last > st.ackSeq || reused {
		st.ackEpoch, st.ackSeq = pos.Epoch, last
	}
	if pos.Entry != "" && c.cfg.MaxInflight == 1 {
		st.rememberLocked(pos.Seq, last, pos.Entry)
	}
	st.mu.Unlock()
	if reused {
		c.stats.seqsReused.Add(1)
		c.cfg.Logger.Warn("redisync: a publish got a seq already given to another; Redis lost acknowledged messages (a failover?)",
			"channel", st.name, "epoch", pos.Epoch, "seq", pos.Seq, "acknowledged_before", prev)
		c.goFunc(func() {
			ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
			defer cancel()
			d, err := c.partedBelow(ctx, st.keys, pos.Epoch, before)
			if err != nil {
				c.cfg.Logger.Debug("redisync: could not find where the history parted", "channel", st.name, "err", err)
				return
			}
			c.writeMark(ctx, st.keys, pos.Epoch, d)
		})
	}
}

// rememberLocked adds an acknowledged call to st.acks, and every ackedRecent calls drops those
// keepAck no longer keeps.
func (st *pubState) rememberLocked(first, last uint64, entry string) {
	st.calls++
	st.acks = append(st.acks, ackedCall{st.calls, first, last, entry})
	if st.calls%ackedRecent != 0 {
		return
	}
	kept := st.acks[:0]
	for _, a := range st.acks {
		if keepAck(a.n, st.calls) {
			kept = append(kept, a)
		}
	}
	st.acks = kept
}

// partedBelow returns a seq at or below the one where the log of epoch parted from the history
// in which acks (calls acknowledged there, oldest first) were made: one past the newest of them
// the log still holds (the log holds a prefix of them: a call it holds means every seq up to
// it is the same), or, when it holds none, the log's oldest message.
func (c *Client) partedBelow(ctx context.Context, k keys, epoch string, acks []ackedCall) (uint64, error) {
	lo, hi := 0, len(acks) // acks[:lo] are held, acks[hi:] are not
	for lo < hi {
		mid := (lo + hi) / 2
		f, err := c.fetch(ctx, k, "", acks[mid].first, 1)
		if err != nil {
			return 0, err
		}
		if f.Epoch == epoch && len(f.Entries) > 0 && f.Entries[0].First == acks[mid].first && f.Entries[0].ID == acks[mid].entry {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo > 0 {
		return acks[lo-1].last + 1, nil
	}
	f, err := c.fetch(ctx, k, "", 1, 1)
	if err != nil {
		return 0, err
	}
	if f.Epoch == epoch && len(f.Entries) > 0 {
		return max(f.Entries[0].First, 1), nil
	}
	return 1, nil
}

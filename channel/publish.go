package channel

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
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
	spawn := st.flushers < c.cfg.MaxInflight
	if spawn {
		st.flushers++
	}
	st.mu.Unlock()
	if spawn && !c.goFunc(func() { c.flush(st) }) {
		return Position{}, ErrClosed
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
	ctx  context.Context
	msgs [][]byte
	size int
	done chan pubResult // buffered: the flusher never blocks on a caller that left
}

type pubResult struct {
	pos Position
	err error
}

// pubState is the group-commit state of one channel.
type pubState struct {
	name string
	keys keys

	mu        sync.Mutex          // guards the fields below
	pending   []*pubReq           // waiting for a flusher, oldest first
	flushers  int                 // flush goroutines running, at most Config.MaxInflight
	token     uint64              // last idempotency token issued
	unsettled map[uint64]struct{} // tokens of calls whose outcome is not yet known to the caller
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
	st := &pubState{name: name, keys: k, unsettled: make(map[uint64]struct{})}
	c.pubs[name] = st
	return st, nil
}

// flush commits pending requests until none is left.
func (c *Client) flush(st *pubState) {
	for {
		batch, token, low := c.take(st)
		if batch == nil {
			return
		}
		c.commit(st, batch, token, low)
		st.mu.Lock()
		delete(st.unsettled, token)
		st.mu.Unlock()
	}
}

// take removes the next batch from st.pending within the batch limits and issues its token.
// It returns nil, and retires the calling flusher, when nothing is pending.
func (c *Client) take(st *pubState) (batch []*pubReq, token, low uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	msgs, size, i := 0, 0, 0
	for ; i < len(st.pending); i++ {
		r := st.pending[i]
		if err := r.ctx.Err(); err != nil {
			r.done <- pubResult{err: err}
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
		return nil, 0, 0
	}
	st.token++
	token = st.token
	st.unsettled[token] = struct{}{}
	low = token
	for t := range st.unsettled {
		low = min(low, t)
	}
	return batch, token, low
}

// commit runs the publish script for batch, retrying transient failures while any caller in
// the batch still waits, and hands every caller its result.
func (c *Client) commit(st *pubState, batch []*pubReq, token, low uint64) {
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

	pubcmd := "PUBLISH"
	if c.cfg.Sharded {
		pubcmd = "SPUBLISH"
	}
	maxlen := c.cfg.MaxLen
	if maxlen < 0 {
		maxlen = 0
	}
	args := []string{
		st.keys.pubsub, pubcmd, randomID(),
		strconv.FormatUint(token, 10), strconv.FormatUint(low, 10),
		strconv.FormatInt(c.cfg.IdempotencyWindow.Milliseconds(), 10),
		strconv.FormatInt(maxlen, 10),
		strconv.FormatInt(c.cfg.MaxAge.Milliseconds(), 10),
	}
	n := 0
	for _, r := range batch {
		for _, m := range r.msgs {
			args = append(args, string(m))
			n++
		}
	}
	keys := []string{st.keys.meta, st.keys.log, st.keys.idem}

	start := time.Now()
	var pos Position
	var err error
	for attempt := 0; ; attempt++ {
		pos, err = parsePublishReply(publishScript.Exec(ctx, c.rc, keys, args).ToArray())
		if err == nil || !transient(err) {
			break
		}
		if time.Since(start) > c.cfg.IdempotencyWindow/2 {
			err = fmt.Errorf("%w: %v", ErrUnknownOutcome, err)
			break
		}
		if !sleepBackoff(ctx, attempt) {
			break
		}
		c.stats.publishRetries.Add(1)
	}
	if err == nil {
		c.stats.published.Add(uint64(n))
		c.stats.publishCalls.Add(1)
	} else {
		err = c.redisError(fmt.Sprintf("publish to %q", st.name), err)
	}
	seq := pos.Seq
	for _, r := range batch {
		res := pubResult{err: err}
		if err == nil {
			res.pos = Position{Epoch: pos.Epoch, Seq: seq}
			seq += uint64(len(r.msgs))
		} else if ctxErr := r.ctx.Err(); ctxErr != nil {
			res.err = ctxErr
		} else if c.ctx.Err() != nil {
			res.err = ErrClosed
		}
		r.done <- res
	}
}

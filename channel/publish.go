package channel

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
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

	mu        sync.Mutex           // guards the fields below
	pending   []*pubReq            // waiting for a flusher, oldest first
	flushers  int                  // flush goroutines running, at most Config.MaxInflight
	token     uint64               // last idempotency token issued
	ackEpoch  string               // epoch of the newest seq acknowledged
	ackSeq    uint64               // the newest seq acknowledged in ackEpoch
	unsettled map[uint64]time.Time // tokens that may still reach Redis: in flight (zero time), or in doubt until the time
	window    time.Duration        // Config.IdempotencyWindow
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
	st := &pubState{name: name, keys: k, unsettled: make(map[uint64]time.Time), window: c.cfg.IdempotencyWindow}
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
	var args []string
	for _, r := range batch {
		for _, m := range r.msgs {
			args = append(args, string(m))
		}
	}
	vs, err := c.execAppend(ctx, st, publishScript, nil, args)
	var pos Position
	if err == nil || errors.Is(err, ErrNotReplicated) {
		var perr error
		if pos, perr = parsePublishReply(vs); perr != nil {
			err = perr
		}
	}
	appended := err == nil || errors.Is(err, ErrNotReplicated)
	if appended {
		c.stats.published.Add(uint64(len(args)))
		c.stats.publishCalls.Add(1)
		st.acknowledged(c, pos, uint64(len(args)), vs)
	}
	seq := pos.Seq
	for _, r := range batch {
		res := pubResult{err: err}
		if appended {
			res.pos = Position{Epoch: pos.Epoch, Seq: seq}
			seq += uint64(len(r.msgs))
		} else if ctxErr := r.ctx.Err(); ctxErr != nil {
			res.err = ctxErr
		} else if c.ctx.Err() != nil {
			res.err = ErrClosed
		}
		r.finish(res)
	}
}

// ExecAppend runs script, a script that appends to channel name, with the protocol of
// Publish: a fresh idempotency token, retries of transient failures with the same arguments
// until ctx ends or the idempotency window is half gone, and Config.MinReplicas. The script
// gets KEYS meta, log, idem, then keys; and ARGV pubchan, pubcmd, id, token, lowwater, idemttl,
// maxlen, maxage, then args (see PROTOCOL.md). It returns the script's reply, which must be an
// array; with an error matching ErrNotReplicated the reply is there too.
func (c *Client) ExecAppend(ctx context.Context, name string, script *AppendScript, keys, args []string) ([]rueidis.RedisMessage, error) {
	st, err := c.pubStateFor(name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.ctx, cancel)()
	vs, err := c.execAppend(ctx, st, script, keys, args)
	if err != nil && c.ctx.Err() != nil {
		return nil, ErrClosed
	}
	return vs, err
}

func (c *Client) execAppend(ctx context.Context, st *pubState, script *AppendScript, keys, args []string) ([]rueidis.RedisMessage, error) {
	token, low := st.issue()
	pubcmd := "PUBLISH"
	if c.cfg.Sharded {
		pubcmd = "SPUBLISH"
	}
	argv := make([]string, 0, 8+len(args))
	argv = append(argv,
		st.keys.pubsub, pubcmd, randomID(),
		strconv.FormatUint(token, 10), strconv.FormatUint(low, 10),
		strconv.FormatInt(c.cfg.IdempotencyWindow.Milliseconds(), 10),
		strconv.FormatInt(max(c.cfg.MaxLen, 0), 10),
		strconv.FormatInt(c.cfg.MaxAge.Milliseconds(), 10))
	argv = append(argv, args...)
	kv := append([]string{st.keys.meta, st.keys.log, st.keys.idem}, keys...)

	start := time.Now()
	// inDoubt: an attempt failed without a reply. It may still reach Redis later, held up on
	// the connection it was sent on, even after a later attempt has succeeded.
	inDoubt := false
	defer func() { st.settle(token, inDoubt) }()
	for attempt := 0; ; attempt++ {
		vs, err := c.exec(ctx, script, kv, argv)
		if errors.Is(err, ErrNotReplicated) {
			return vs, c.redisError(fmt.Sprintf("append to %q", st.name), err)
		}
		var re *rueidis.RedisError
		if err != nil && !errors.As(err, &re) {
			inDoubt = true
		}
		if err == nil || !transient(ctx, err) {
			if err != nil {
				if kerr := asKindError(err, st.name, ""); kerr != err {
					return nil, kerr
				}
				err = c.redisError(fmt.Sprintf("append to %q", st.name), err)
			}
			return vs, err
		}
		if time.Since(start) > c.cfg.IdempotencyWindow/2 {
			return nil, c.redisError(fmt.Sprintf("append to %q", st.name), fmt.Errorf("%w: %v", ErrUnknownOutcome, err))
		}
		if !sleepBackoff(ctx, attempt) {
			return nil, ctx.Err()
		}
		c.stats.publishRetries.Add(1)
	}
}

// issue returns a new idempotency token and the low-water mark to send with it: the least
// token whose call may still reach Redis, so that Redis keeps remembering it.
func (st *pubState) issue() (token, low uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.token++
	token = st.token
	st.unsettled[token] = time.Time{}
	low = token
	now := time.Now()
	for t, until := range st.unsettled {
		if !until.IsZero() && now.After(until) {
			delete(st.unsettled, t)
			continue
		}
		low = min(low, t)
	}
	return token, low
}

// settle ends token's call. When an attempt of it may still be on its way to Redis (its
// connection failed or its caller gave up with no reply; whether a later attempt succeeded
// does not matter), the token stays unsettled for the idempotency window: a late attempt must
// still find it, not append a second time.
func (st *pubState) settle(token uint64, inDoubt bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if inDoubt {
		st.unsettled[token] = time.Now().Add(st.window)
		return
	}
	delete(st.unsettled, token)
}

// acknowledged notes that a fresh append of n messages got seqs from pos on. A seq at or below
// one already acknowledged in the same epoch means the log went back: a failover lost writes
// that had been acknowledged, and their seqs now name other messages. That is logged and
// counted (Stats.SeqsReused); the subscribers see it as a rewound reset.
func (st *pubState) acknowledged(c *Client, pos Position, n uint64, reply []rueidis.RedisMessage) {
	if s, _ := reply[2].ToString(); s != "0" {
		return // a retry answered from the idempotency record: an old seq is expected
	}
	last := pos.Seq + n - 1
	st.mu.Lock()
	reused := pos.Epoch == st.ackEpoch && pos.Seq <= st.ackSeq && c.cfg.MaxInflight == 1
	prev := st.ackSeq
	if pos.Epoch != st.ackEpoch || last > st.ackSeq || reused {
		st.ackEpoch, st.ackSeq = pos.Epoch, last
	}
	st.mu.Unlock()
	if reused {
		c.stats.seqsReused.Add(1)
		c.cfg.Logger.Warn("redisync: a publish got a seq already given to another; Redis lost acknowledged messages (a failover?)",
			"channel", st.name, "epoch", pos.Epoch, "seq", pos.Seq, "acknowledged_before", prev)
	}
}

// exec runs script once. With Config.MinReplicas it runs it on a connection of its own
// followed by WAIT, and reports ErrNotReplicated (with the script's reply) when fewer replicas
// acknowledged it in time.
func (c *Client) exec(ctx context.Context, script *AppendScript, keys, argv []string) ([]rueidis.RedisMessage, error) {
	if c.cfg.MinReplicas == 0 {
		return script.lua.Exec(ctx, c.rc, keys, argv).ToArray()
	}
	var vs []rueidis.RedisMessage
	var acked int64
	err := c.rc.Dedicated(func(dc rueidis.DedicatedClient) error {
		wait := dc.B().Wait().Numreplicas(int64(c.cfg.MinReplicas)).Timeout(c.cfg.ReplicaTimeout.Milliseconds()).Build()
		rs := dc.DoMulti(ctx, dc.B().Evalsha().Sha1(script.sha).Numkeys(int64(len(keys))).Key(keys...).Arg(argv...).Build(), wait)
		if err := rs[0].Error(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			wait = dc.B().Wait().Numreplicas(int64(c.cfg.MinReplicas)).Timeout(c.cfg.ReplicaTimeout.Milliseconds()).Build()
			rs = dc.DoMulti(ctx, dc.B().Eval().Script(script.text).Numkeys(int64(len(keys))).Key(keys...).Arg(argv...).Build(), wait)
		}
		var err error
		if vs, err = rs[0].ToArray(); err != nil {
			return err
		}
		acked, err = rs[1].AsInt64()
		return err
	})
	if err != nil {
		return nil, err
	}
	if acked < int64(c.cfg.MinReplicas) {
		return vs, fmt.Errorf("%w: %d of %d replicas confirmed it within %v", ErrNotReplicated, acked, c.cfg.MinReplicas, c.cfg.ReplicaTimeout)
	}
	return vs, nil
}

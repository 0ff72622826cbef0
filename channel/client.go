package channel

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/internal/wire"
)

// Client publishes to and subscribes on reliable channels over one Redis client. It is safe for
// concurrent use. All the subscriptions of a Client share one pub/sub connection.
type Client struct {
	rc  rueidis.Client
	cfg Config
	app *wire.Appender // runs the publish script: idempotency tokens, retries, WAIT

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the Client starts

	mu     sync.Mutex           // guards closed and pubs
	closed bool                 //
	pubs   map[string]*pubState // group-commit state per channel

	hub   *hub
	stats stats
}

// New returns a Client that uses rc, which stays owned by the caller (Close does not close it).
func New(rc rueidis.Client, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		rc:     rc,
		cfg:    cfg,
		ctx:    ctx,
		cancel: cancel,
		pubs:   make(map[string]*pubState),
	}
	c.app = &wire.Appender{
		RC: rc, Prefix: cfg.Prefix, Producer: wire.RandomID(), Window: cfg.IdempotencyWindow,
		MaxLen: max(cfg.MaxLen, 0), MaxAge: cfg.MaxAge, Sharded: cfg.Sharded,
		MinReplicas: cfg.MinReplicas, ReplicaTimeout: cfg.ReplicaTimeout, Retries: &c.stats.publishRetries,
	}
	c.hub = newHub(c)
	return c, nil
}

// Close ends every subscription (with ErrClosed), fails publishes that are waiting, and returns
// once every goroutine the Client started has ended. It is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}

// goFunc runs f in a goroutine that Close waits for. It reports false, and runs nothing, once
// the Client is closed.
func (c *Client) goFunc(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

// Config returns the Client's configuration, defaults applied.
func (c *Client) Config() Config { return c.cfg }

// Redis returns the Redis client the Client uses.
func (c *Client) Redis() rueidis.Client { return c.rc }

// Head returns the position of the newest message of a channel, with the id of its log entry;
// Epoch is empty and Seq 0 for a channel that has no history.
func (c *Client) Head(ctx context.Context, name string) (Position, error) {
	k, err := c.keysFor(name)
	if err != nil {
		return Position{}, err
	}
	r, err := c.fetch(ctx, k, "", 1, 0)
	if err != nil {
		return Position{}, err
	}
	return Position{Epoch: r.Epoch, Seq: r.Head, Entry: r.Tip}, nil
}

// Pin returns the position a subscription from from starts after, read from Redis now, in the
// form that stays true when the channel's history changes later: for FromNow, the channel's
// head with the id of its entry; for a position without an epoch (a bare seq, FromStart) that
// the channel's current history reaches, the same seq in the current epoch, with the id of the
// log entry holding it while the log holds it. Any other position is returned as it is, with
// no read: one with an epoch, or a bare seq above the head (a subscription announces that
// no such message exists).
//
// A subscription started After the result delivers what one started from from would have
// delivered from that moment; a resume from it after Redis lost the log, or a failover rewound
// it, is announced by a reset rather than read against the new history. Show the result, not
// from, where a user may resume from it (the CLI's start line, an event stream's first id).
// A name of another kind than from's (see From.Of) is a *KindError.
func (c *Client) Pin(ctx context.Context, name string, from From) (Position, error) {
	k, err := c.keysFor(name)
	if err == nil {
		err = checkStart(from)
	}
	if err != nil {
		return Position{}, err
	}
	p := from.pos
	if !from.now && p.Epoch != "" {
		return p, nil
	}
	count := 0 // FromNow and seq 0 need the head alone
	if !from.now && p.Seq > 0 {
		count = 1
	}
	f, err := c.fetch(ctx, k, from.kindOr(), max(p.Seq, 1), count)
	switch {
	case err != nil:
		return Position{}, err
	case from.now:
		return Position{Epoch: f.Epoch, Seq: f.Head, Entry: f.Tip}, nil
	case f.Epoch == "" || f.Head < p.Seq:
		return p, nil
	}
	p.Epoch = f.Epoch
	if len(f.Entries) > 0 && f.Entries[0].First <= p.Seq && p.Seq <= f.Entries[0].Last() {
		p.Entry = f.Entries[0].ID
	}
	return p, nil
}

// markParted records, best effort and in the background, that the history of channel k's
// epoch parted at seq (mark.lua). A user that may not write (a read-only subscriber) leaves
// no mark.
func (c *Client) markParted(k keys, epoch string, seq uint64) {
	c.goFunc(func() {
		ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
		defer cancel()
		c.writeMark(ctx, k, epoch, seq)
	})
}

// writeMark runs mark.lua for channel k: its history of epoch parted at seq. A failure is only
// logged at debug level.
func (c *Client) writeMark(ctx context.Context, k keys, epoch string, seq uint64) {
	err := wire.Mark.Exec(ctx, c.rc, []string{k.Meta}, []string{epoch, strconv.FormatUint(seq, 10)}).Error()
	if err != nil && c.ctx.Err() == nil {
		c.cfg.Logger.Debug("redisync: could not record where the history parted", "channel", k.Name, "err", err)
	}
}

// readParted reads where channel k's history last parted (mark.lua): its epoch, seq and the
// time of the mark; an empty epoch when there is no mark.
func (c *Client) readParted(ctx context.Context, k keys) (string, uint64, time.Time, error) {
	v, err := c.rc.Do(ctx, c.rc.B().Hget().Key(k.Meta).Field("parted").Build()).ToString()
	if err != nil {
		return "", 0, time.Time{}, err
	}
	f := strings.Fields(v)
	if len(f) != 3 {
		return "", 0, time.Time{}, fmt.Errorf("parted mark %q", v)
	}
	seq, err1 := strconv.ParseUint(f[1], 10, 64)
	ms, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, time.Time{}, fmt.Errorf("parted mark %q", v)
	}
	return f[0], seq, time.UnixMilli(ms), nil
}

// Kind returns what name holds in Redis: KindChannel, KindMap, or "" when nothing has been
// written under it yet (or it was written before kinds were stored).
func (c *Client) Kind(ctx context.Context, name string) (Kind, error) {
	k, err := c.keysFor(name)
	if err != nil {
		return "", err
	}
	v, err := c.rc.Do(ctx, c.rc.B().Hget().Key(k.Meta).Field("kind").Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return "", nil
	}
	if err != nil {
		return "", c.redisError(fmt.Sprintf("read the kind of %q", name), err)
	}
	return Kind(v), nil
}

// Stats are counters since New. They only grow.
type Stats struct {
	Published      uint64 // messages appended by this client
	PublishCalls   uint64 // script calls that appended them (fewer when publishes were grouped)
	PublishRetries uint64 // script calls repeated after a transient failure
	Delivered      uint64 // messages handed to subscribers
	Resets         uint64 // reset events handed to subscribers
	FromLog        uint64 // messages delivered from the log rather than from pub/sub
	GapsFilled     uint64 // catch-ups started by a hole in the live sequence
	TailLosses     uint64 // idle head reads that found messages pub/sub never brought
	Duplicates     uint64 // live messages dropped as already delivered
	Overflows      uint64 // live envelopes dropped because a subscription's queue was full
	Junk           uint64 // pub/sub messages that were not valid envelopes
	Reconnects     uint64 // pub/sub connections re-established
	Rewinds        uint64 // rewound resets: the log no longer held messages a subscription delivered
	SeqsReused     uint64 // publishes given a seq at or below one this client was given before in the same epoch (a failover lost writes)
}

type stats struct {
	published, publishCalls, publishRetries, delivered, resets, fromLog, gapsFilled,
	tailLosses, duplicates, overflows, junk, reconnects, rewinds, seqsReused atomic.Uint64
}

// Stats returns a snapshot of the counters.
func (c *Client) Stats() Stats {
	s := &c.stats
	return Stats{
		Published: s.published.Load(), PublishCalls: s.publishCalls.Load(),
		PublishRetries: s.publishRetries.Load(), Delivered: s.delivered.Load(),
		Resets: s.resets.Load(), FromLog: s.fromLog.Load(), GapsFilled: s.gapsFilled.Load(),
		TailLosses: s.tailLosses.Load(), Duplicates: s.duplicates.Load(),
		Overflows: s.overflows.Load(), Junk: s.junk.Load(), Reconnects: s.reconnects.Load(),
		Rewinds: s.rewinds.Load(), SeqsReused: s.seqsReused.Load(),
	}
}

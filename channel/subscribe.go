package channel

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redisync/redisync/internal/wire"
)

// Handler handles one event of a subscription. Calls are sequential. Returning an error ends
// the subscription with that error.
type Handler func(ctx context.Context, ev Event) error

// Subscription is a running subscription started by Subscribe.
type Subscription struct {
	sub    *subscriber
	cancel context.CancelFunc
	closed atomic.Bool // Close was called
	done   chan struct{}
	err    error    // why it ended; written once before done closes
	start  Position // where it started, after which it delivers
}

// Start is the position the subscription started after: the head read by Subscribe for
// FromNow, the position given to After, or the zero Position for FromStart.
func (s *Subscription) Start() Position { return s.start }

// Subscribe delivers the channel's messages after from to h, each exactly once and in seq
// order, in a goroutine of its own, until ctx ends, the Subscription or the Client is closed,
// h returns an error, or Redis refuses a read for good (a permission denied, say). Lost
// connections and Redis restarts are ridden out: the subscription resumes from its last
// delivered message. Messages that can no longer be delivered are announced by a reset event.
//
// With FromNow, Subscribe reads the channel's head before it returns (retrying transient
// failures until ctx ends): every message whose publish begins after Subscribe returns is
// delivered. Start reports the position it fixed.
func (c *Client) Subscribe(ctx context.Context, name string, from From, h Handler) (*Subscription, error) {
	k, err := c.keysFor(name)
	if err != nil {
		return nil, err
	}
	if from, err = c.fix(ctx, k, from); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Subscription{cancel: cancel, done: make(chan struct{}), start: from.pos}
	s.sub = c.newSubscriber(name, k, from.kindOr(), func(ctx context.Context, ev Event) error { return h(ctx, ev) })
	if !c.goFunc(func() {
		defer close(s.done)
		defer cancel()
		s.err = s.sub.run(ctx, from)
		if s.closed.Load() && ctx.Err() != nil {
			s.err = ErrClosed
		}
	}) {
		cancel()
		return nil, ErrClosed
	}
	return s, nil
}

// Close ends the subscription and waits until its handler has returned. It is idempotent.
func (s *Subscription) Close() error {
	s.closed.Store(true)
	s.cancel()
	<-s.done
	return nil
}

// Done is closed when the subscription has ended.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err says why the subscription ended: ErrClosed when it or its Client was closed, the
// context's error, the handler's error, or a Redis error. It is nil while it runs.
func (s *Subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Status reports where the subscription stands.
func (s *Subscription) Status() Status { return s.sub.status() }

// Confirmed is Status().Confirmed, cheaper: when the subscription last knew it had everything.
func (s *Subscription) Confirmed() time.Time {
	if ns := s.sub.confirmed.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Status is the state of a subscription.
type Status struct {
	// Position of the last event delivered.
	Position Position
	// Confirmed is when the subscription last knew it had everything: a live message arrived
	// in order, or a read of the log's head showed nothing missing. Zero until then.
	Confirmed time.Time
}

// Events returns an iterator over the channel's events after from, with the guarantees of
// Subscribe. It runs in the caller's goroutine and yields a non-nil error once, as its last
// pair, to say why it ended; breaking out of the loop ends it too.
//
// With FromNow, Events reads the channel's head before it returns, as Subscribe does: every
// message whose publish begins after Events returns is delivered, and every loop over the
// iterator starts from that same position. A failure to read it is yielded by the iterator.
func (c *Client) Events(ctx context.Context, name string, from From) iter.Seq2[Event, error] {
	k, err := c.keysFor(name)
	if err == nil {
		from, err = c.fix(ctx, k, from)
	}
	return func(yield func(Event, error) bool) {
		if err != nil {
			yield(Event{}, err)
			return
		}
		stopped := errors.New("stopped")
		s := c.newSubscriber(name, k, from.kindOr(), func(_ context.Context, ev Event) error {
			if !yield(ev, nil) {
				return stopped
			}
			return nil
		})
		if err := s.run(ctx, from); err != stopped {
			yield(Event{}, err)
		}
	}
}

// subscriber is the state of one subscription; its run loop owns every field but the ones the
// hub touches (live, wake, resync) and mu's.
type subscriber struct {
	c       *Client
	name    string
	k       keys
	kind    Kind // the kind of name the subscription follows
	deliver func(context.Context, Event) error
	// read fetches the log (fetch.lua, retried): the one seam between the subscription's
	// logic and Redis, so that the logic can be tested against a log in memory.
	read func(ctx context.Context, from uint64, count int) (wire.Fetched, error)
	// mark records in Redis where the history parted (mark.lua), and parted reads the mark
	// (chain.go): best effort, nil in tests without Redis.
	mark   func(epoch string, seq uint64)
	parted func(ctx context.Context) (epoch string, seq uint64, at time.Time, err error)

	live  chan *wire.Envelope // envelopes offered by the hub; full means drop and resync
	heads chan wire.Fetched   // the channel's head, read by the hub's idle check (idle.go)
	// lastNews is when the subscription last knew it was current or heard of its channel
	// (unix ns): the idle check reads the head of channels whose subscriptions are quiet.
	lastNews atomic.Int64
	wake     chan struct{} // pokes the loop to look at resync
	resync   atomic.Bool   // catch up from the log before trusting live envelopes again

	epoch string  // epoch of the log being followed; empty when not known yet
	next  uint64  // seq of the next message to deliver
	tip   string  // id of the log entry that ends at next-1 (chain.go); "" when not known
	hist  history // the entries delivered most recently, to locate a rewind
	// anchor is the log entry the subscription started in (its start position's Entry): the
	// one entry it knows below what it delivered. Zero when not known.
	anchor struct {
		seq uint64
		id  string
	}
	since  uint64 // the first seq delivered in this epoch, 0 before any
	missed int    // idle head reads in a row that found messages pub/sub never brought

	mu        sync.Mutex // guards pos, read by status
	pos       Position
	confirmed atomic.Int64 // unix nanoseconds, 0 for never
}

func (c *Client) newSubscriber(name string, k keys, kind Kind, deliver func(context.Context, Event) error) *subscriber {
	s := &subscriber{
		c: c, name: name, k: k, kind: kind, deliver: deliver,
		hist:  history{max: c.cfg.RewindMemory},
		live:  make(chan *wire.Envelope, c.cfg.BufferSize),
		heads: make(chan wire.Fetched, 1),
		wake:  make(chan struct{}, 1),
	}
	s.read = func(ctx context.Context, from uint64, count int) (wire.Fetched, error) {
		return c.fetchRetrying(ctx, k, kind, from, count)
	}
	s.mark = func(epoch string, seq uint64) { c.markParted(k, epoch, seq) }
	s.parted = func(ctx context.Context) (string, uint64, time.Time, error) { return c.readParted(ctx, k) }
	return s
}

func (s *subscriber) status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Position: s.pos}
	if ns := s.confirmed.Load(); ns != 0 {
		st.Confirmed = time.Unix(0, ns)
	}
	return st
}

// offer queues env without blocking; when the queue is full it drops env and asks for a resync.
func (s *subscriber) offer(env *wire.Envelope) {
	select {
	case s.live <- env:
	default:
		s.c.stats.overflows.Add(1)
		s.askResync()
	}
}

func (s *subscriber) askResync() {
	s.resync.Store(true)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run is the subscription loop. It returns why it ended.
func (s *subscriber) run(ctx context.Context, from From) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.c.ctx, cancel)
	defer stop()
	defer func() {
		if s.c.ctx.Err() != nil && ctx.Err() != nil {
			err = ErrClosed
		}
	}()

	if !s.c.hub.add(s) {
		return ErrClosed
	}
	defer s.c.hub.remove(s)

	if from.now {
		return errors.New("channel: internal error: a subscription started from an unfixed position")
	}
	s.start(from.pos)
	if err := s.checkBareStart(ctx, from.pos); err != nil {
		return err
	}
	if err := s.catchUp(ctx); err != nil {
		return err
	}

	for {
		s.lastNews.Store(time.Now().UnixNano())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case env := <-s.live:
			err = s.onEnvelope(ctx, env)
		case <-s.wake:
			if s.resync.Load() {
				err = s.catchUp(ctx)
			}
		case f := <-s.heads:
			err = s.onHead(ctx, f)
		}
		if err != nil {
			return err
		}
	}
}

// copyData copies the messages of an entry for delivery, in one allocation: each message is a
// slice of its own capacity, so that appending to one never touches another.
func copyData(ds []string) [][]byte {
	n := 0
	for _, d := range ds {
		n += len(d)
	}
	buf, out := make([]byte, 0, n), make([][]byte, len(ds))
	for i, d := range ds {
		start := len(buf)
		buf = append(buf, d...)
		out[i] = buf[start:len(buf):len(buf)]
	}
	return out
}

// start sets the subscription to deliver what follows p.
func (s *subscriber) start(p Position) {
	// The entry holding the start seq is the tip too: an entry of the same history that starts
	// at next has it as its prev, or holds the start seq itself.
	s.epoch, s.next, s.tip = p.Epoch, p.Seq+1, p.Entry
	if p.Entry != "" && p.Epoch != "" {
		s.anchor.seq, s.anchor.id = p.Seq, p.Entry
	}
	s.setPos(p)
}

// onEnvelope delivers a live envelope when it continues the sequence, skips what was already
// delivered, and falls back to the log for anything else (a hole, another epoch).
func (s *subscriber) onEnvelope(ctx context.Context, env *wire.Envelope) error {
	if s.resync.Load() || s.epoch == "" || env.Epoch != s.epoch {
		return s.catchUp(ctx)
	}
	if env.Last() < s.next {
		if !s.knows(env) {
			return s.catchUp(ctx) // the same seqs, other messages: the log was rewound
		}
		s.c.stats.duplicates.Add(uint64(len(env.Data)))
		return nil
	}
	if env.First > s.next {
		s.c.stats.gapsFilled.Add(1)
		return s.catchUp(ctx)
	}
	if !s.continues(env) {
		return s.catchUp(ctx)
	}
	s.c.stats.duplicates.Add(s.next - env.First)
	t := time.UnixMilli(env.Ms)
	for _, d := range copyData(env.Data[s.next-env.First:]) {
		if err := s.emit(ctx, Event{Position: Position{Epoch: s.epoch, Seq: s.next, Entry: env.ID}, Time: t, Data: d}); err != nil {
			return err
		}
		s.next++
	}
	s.deliveredEntry(env)
	s.missed = 0
	s.confirm()
	return nil
}

// onHead handles the channel's head, read by the idle check after a quiet spell: messages
// pub/sub never brought (a lost tail, a silent connection) are caught up from the log, and a
// second such finding in a row replaces the pub/sub connection.
func (s *subscriber) onHead(ctx context.Context, f wire.Fetched) error {
	if f.Epoch == s.epoch && f.Head+1 == s.next && (s.tip == "" || f.Tip == "" || f.Tip == s.tip) {
		s.missed = 0
		s.confirm()
		return nil
	}
	if f.Epoch == s.epoch && f.Head < s.next {
		return s.catchUp(ctx) // the log is behind what was delivered, or another history: a rewind
	}
	if f.Epoch != "" || s.epoch != "" {
		s.c.stats.tailLosses.Add(1)
		if s.missed++; s.missed >= 2 {
			s.c.cfg.Logger.Warn("redisync: pub/sub brought nothing while the log grew; reconnecting", "channel", s.name)
			s.c.hub.reconnect()
			s.missed = 0
		}
	}
	return s.catchUp(ctx)
}

// catchUp delivers from the log until it has reached the head, with a reset event for
// anything the log can no longer give.
func (s *subscriber) catchUp(ctx context.Context) error {
	for {
		s.resync.Store(false)
		// At least two entries: the first may end below next (the entry holding it is gone),
		// and the next one must then be seen to tell a hole from the end of the log.
		f, err := s.fetch(ctx, s.next, max(s.c.cfg.FetchCount, 2))
		if err != nil {
			return err
		}
		switch {
		case f.Epoch == "" && s.epoch == "":
			if s.next > 1 {
				// Started after a seq with no epoch, and the channel has no history at all.
				if err := s.beyondHead(ctx, f); err != nil {
					return err
				}
			}
			s.confirm()
			return nil
		case f.Epoch == "":
			// The log is gone and nothing was published since: whatever comes next is new history.
			if err := s.reset(ctx, Reset{Reason: ResetEpochChanged, From: s.next, Open: true, OldEpoch: s.epoch}, Position{}); err != nil {
				return err
			}
			s.newEpoch("")
			continue
		case s.epoch == "":
			if f.Head+1 < s.next {
				// Started after a seq with no epoch that the current history does not reach.
				if err := s.beyondHead(ctx, f); err != nil {
					return err
				}
				continue
			}
			s.epoch = f.Epoch
		case f.Epoch != s.epoch:
			if err := s.reset(ctx, Reset{Reason: ResetEpochChanged, From: s.next, Open: true, OldEpoch: s.epoch, NewEpoch: f.Epoch},
				Position{Epoch: f.Epoch}); err != nil {
				return err
			}
			s.newEpoch(f.Epoch)
			continue
		}
		if f.Head+1 < s.next || (f.Head+1 == s.next && s.tip != "" && f.Tip != "" && f.Tip != s.tip) {
			// The log is behind what was delivered, or holds other messages under its seqs.
			if err := s.rewind(ctx, f.Head); err != nil {
				return err
			}
			continue
		}
		rewound, asked := false, s.next
		for _, env := range f.Entries {
			if env.Last() < s.next {
				continue
			}
			if env.First > s.next {
				if err := s.trimmed(ctx, env.First-1); err != nil {
					return err
				}
			}
			if !s.continues(env) {
				if err := s.rewind(ctx, f.Head); err != nil {
					return err
				}
				rewound = true
				break
			}
			t := time.UnixMilli(env.Ms)
			from, data := s.next, copyData(env.Data[s.next-env.First:])
			for seq := from; seq <= env.Last(); seq++ {
				s.c.stats.fromLog.Add(1)
				if err := s.emit(ctx, Event{Position: Position{Epoch: s.epoch, Seq: seq, Entry: env.ID}, Time: t, Data: data[seq-from]}); err != nil {
					return err
				}
				s.next = seq + 1
			}
			s.deliveredEntry(env)
		}
		if rewound {
			continue
		}
		if f.Head >= s.next && (len(f.Entries) == 0 || f.Entries[len(f.Entries)-1].Last() < asked) {
			// Nothing at or above next, yet the head is there: those messages are gone.
			if err := s.trimmed(ctx, f.Head); err != nil {
				return err
			}
		}
		if s.next > f.Head && !s.resync.Load() {
			s.confirm()
			return nil
		}
	}
}

// beyondHead handles a start after a seq with no epoch above the channel's head f: whatever
// history the seq came from, it is not the current one up to that seq. Every seq up to it is
// announced as rewound, and the current history is delivered from seq 1.
func (s *subscriber) beyondHead(ctx context.Context, f wire.Fetched) error {
	err := s.reset(ctx, Reset{Reason: ResetRewound, From: 1, To: s.next - 1, NewEpoch: f.Epoch},
		Position{Epoch: f.Epoch})
	s.newEpoch(f.Epoch)
	return err
}

// newEpoch starts following epoch (empty: whatever history comes next) from its first message.
func (s *subscriber) newEpoch(epoch string) {
	s.epoch, s.next, s.tip, s.since = epoch, 1, "", 0
	s.anchor.seq, s.anchor.id = 0, ""
	s.hist.clear()
}

// trimmed announces that s.next..to are no longer in the log and moves past them.
func (s *subscriber) trimmed(ctx context.Context, to uint64) error {
	err := s.reset(ctx, Reset{Reason: ResetTrimmed, From: s.next, To: to, OldEpoch: s.epoch, NewEpoch: s.epoch},
		Position{Epoch: s.epoch, Seq: to})
	s.next, s.tip = to+1, "" // the entry before next is gone: the next one cannot be checked
	return err
}

func (s *subscriber) reset(ctx context.Context, r Reset, after Position) error {
	s.c.stats.resets.Add(1)
	s.c.cfg.Logger.Info("redisync: subscription reset", "channel", s.name, "reason", r.Reason,
		"from", r.From, "to", r.To, "old_epoch", r.OldEpoch, "new_epoch", r.NewEpoch)
	return s.emit(ctx, Event{Position: after, Reset: &r})
}

func (s *subscriber) emit(ctx context.Context, ev Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.deliver(ctx, ev); err != nil {
		return err
	}
	if ev.Reset == nil {
		s.c.stats.delivered.Add(1)
		if s.since == 0 {
			s.since = ev.Seq
		}
	}
	s.setPos(ev.Position)
	return nil
}

func (s *subscriber) setPos(p Position) {
	s.mu.Lock()
	s.pos = p
	s.mu.Unlock()
}

func (s *subscriber) confirm() {
	s.confirmed.Store(time.Now().UnixNano())
}

// fetch reads the log, retrying transient failures until ctx ends.
func (s *subscriber) fetch(ctx context.Context, from uint64, count int) (wire.Fetched, error) {
	return s.read(ctx, from, count)
}

// fetchRetrying is fetch, retrying transient failures until ctx ends.
func (c *Client) fetchRetrying(ctx context.Context, k keys, kind Kind, from uint64, count int) (wire.Fetched, error) {
	for attempt := 0; ; attempt++ {
		f, err := c.fetch(ctx, k, kind, from, count)
		if err == nil {
			return f, nil
		}
		var kerr *KindError
		if errors.As(err, &kerr) {
			return wire.Fetched{}, err
		}
		if !wire.Transient(ctx, err) {
			return wire.Fetched{}, c.redisError(fmt.Sprintf("read channel %q", k.Name), err)
		}
		if attempt == 3 {
			c.cfg.Logger.Warn("redisync: reading the log keeps failing; retrying", "channel", k.Name, "err", err)
		}
		if !wire.SleepBackoff(ctx, attempt) {
			return wire.Fetched{}, ctx.Err()
		}
	}
}

// fix turns FromNow into a position: the channel's head, read now (checking the name's kind),
// so that every message whose publish begins after fix returns comes after it.
func (c *Client) fix(ctx context.Context, k keys, from From) (From, error) {
	if err := checkStart(from); err != nil || !from.now {
		return from, err
	}
	f, err := c.fetchRetrying(ctx, k, from.kindOr(), 1, 0)
	if err != nil {
		return From{}, err
	}
	return From{pos: Position{Epoch: f.Epoch, Seq: f.Head, Entry: f.Tip}, kind: from.kind}, nil
}

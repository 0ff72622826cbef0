package robustness

import (
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/wire"
	"github.com/redisync/redisync/replmap"
)

// Probes are the entry points as users call them: a subscription or a watch that starts
// channel.FromNow() while every node publishes and writes, records the instant its call
// returned (Subscribe) or the iterator was created (Events, Watch: that is when the start is
// fixed), records what it delivers for a while, then stops. Every message whose publish began
// after that instant must be delivered to it, or lie in a reset's range (check_now.go).
//
// A probe is told to stop after its lifetime; it then reads the head and keeps going until it
// has delivered it (or a reset has moved it past the head's epoch), so that its obligations
// run up to a known position. One that cannot within probeDrain stops where it stands.
// Where a failover may have rewound the log, a seq is not enough to say that the probe stands
// in the log's history: the probe has reached the head only when the log holds, at the seq
// it stands at, what it delivered there (probeState.at, node.logAt).

var nowKinds = []string{StreamNowSub, StreamNowEvents, StreamNowWatch, StreamNowMapWatch}

// probeDrain bounds how long a probe keeps going after its lifetime to reach the head.
const probeDrain = 8 * time.Second

// probeState is what a probe's consumer tells its controller.
type probeState struct {
	mu     sync.Mutex // guards the fields below
	known  bool       // an event was delivered
	pos    channel.Position
	seen   map[uint64]string // what it delivered at each seq of pos's epoch that no reset took back
	lost   map[string]bool   // epochs a reset announced as lost from some seq on
	notify chan struct{}     // poked after each event
}

// update records an event: a message or change at p (what: content(…)), or a reset.
func (s *probeState) update(p channel.Position, r *channel.Reset, what string) {
	s.mu.Lock()
	if s.known && p.Epoch != s.pos.Epoch || s.seen == nil {
		s.seen = map[uint64]string{}
	}
	s.known, s.pos = true, p
	switch {
	case r == nil:
		s.seen[p.Seq] = what
	case r.Reason == channel.ResetRewound:
		for seq := range s.seen {
			if seq >= r.From {
				delete(s.seen, seq)
			}
		}
	}
	if r != nil && r.Open {
		if s.lost == nil {
			s.lost = map[string]bool{}
		}
		s.lost[r.OldEpoch] = true
	}
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// at reports whether the probe stands at or after target, or a reset announced that target's
// epoch is lost (everything of it from some seq on): done. Otherwise, when it stands at or
// after target by seq, it returns the seq and what it delivered there, for the caller to
// compare with the log (check); check is false when the probe delivered nothing there (a
// reset put it there).
func (s *probeState) at(target channel.Position) (done bool, seq uint64, what string, check bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.lost[target.Epoch]:
		return true, 0, "", false
	case !s.known || s.pos.Epoch != target.Epoch || s.pos.Seq < target.Seq:
		return false, 0, "", false
	}
	what, check = s.seen[s.pos.Seq]
	return !check, s.pos.Seq, what, check
}

// content names a message (its payload id) or a map change ("set KEY=VALUE", "del KEY") the
// same way for the probes and the log (node.logAt).
func content(isMap, del bool, key, val string) string {
	switch {
	case !isMap:
		return val
	case del:
		return "del " + key
	}
	return "set " + key + "=" + val
}

// prober starts probes one after another, several running at once, until the workload stops;
// it returns once every probe has stopped.
func (n *node) prober() {
	defer n.workWg.Done()
	r := n.rand(2000)
	var wg sync.WaitGroup
	defer wg.Wait()
	for pause(n.work, r, n.cfg.ProbeEvery) {
		gen := int(n.probes.Add(1))
		kind := nowKinds[r.IntN(len(nowKinds))]
		life := n.cfg.ProbeLife/4 + time.Duration(r.Int64N(int64(n.cfg.ProbeLife*3/2)))
		var delay time.Duration
		if kind != StreamNowSub && r.IntN(2) == 0 {
			// Created, then iterated a little later, as code that hands an iterator on does:
			// the start is fixed at creation all the same.
			delay = time.Duration(r.Int64N(int64(100 * time.Millisecond)))
		}
		seed := r.Uint64()
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.probe(gen, kind, life, delay, seed)
		}()
	}
}

// probe runs one FromNow stream.
func (n *node) probe(gen int, kind string, life, delay time.Duration, seed uint64) {
	ctx, cancel := context.WithCancel(n.ctx)
	defer cancel()
	st := &probeState{notify: make(chan struct{}, 1)}
	record := func(l Line, p channel.Position, r *channel.Reset) {
		l.Kind, l.Gen = kind, gen
		n.line(l)
		st.update(p, r, content(isMapStream(kind), l.Del, l.Key, l.Val))
	}
	name := n.cfg.Chan
	if kind == StreamNowWatch || kind == StreamNowMapWatch {
		name = n.cfg.Map
	}
	var (
		sub  *channel.Subscription
		evs  iter.Seq2[channel.Event, error]
		chs  iter.Seq2[replmap.Change[string], error]
		err  error
		done = make(chan struct{})
	)
	switch kind {
	case StreamNowSub:
		sub, err = n.cl.Subscribe(ctx, name, channel.FromNow(), func(_ context.Context, ev channel.Event) error {
			record(eventLine(ev), ev.Position, ev.Reset)
			return nil
		})
	case StreamNowEvents:
		evs = n.cl.Events(ctx, name, channel.FromNow())
	case StreamNowWatch:
		chs = replmap.Watch(ctx, n.cl, name, channel.FromNow(), replmap.Codec[string](replmap.String{}))
	case StreamNowMapWatch:
		chs = n.m.Load().Watch(ctx, channel.FromNow())
	}
	setUp := n.now()
	if err != nil {
		if ctx.Err() == nil {
			n.line(Line{T: LineNote, Kind: kind, Gen: gen, At: setUp, Err: "Subscribe(FromNow) failed: " + err.Error()})
		}
		return
	}
	n.line(Line{T: LineStart, Kind: kind, Gen: gen, At: setUp})
	fail := func(err error) {
		if ctx.Err() == nil {
			n.line(Line{T: LineEvent, Kind: kind, Gen: gen, Err: err.Error()})
		}
	}
	switch {
	case sub != nil:
		go func() {
			defer close(done)
			<-sub.Done()
			fail(sub.Err())
		}()
	case evs != nil:
		go func() {
			defer close(done)
			if !wire.Sleep(ctx, delay) {
				return
			}
			for ev, err := range evs {
				if err != nil {
					fail(err)
					return
				}
				record(eventLine(ev), ev.Position, ev.Reset)
			}
		}()
	default:
		go func() {
			defer close(done)
			if !wire.Sleep(ctx, delay) {
				return
			}
			for c, err := range chs {
				if err != nil {
					fail(err)
					return
				}
				record(changeLine(c), c.Position, c.Reset)
			}
		}()
	}

	status, target := EndUnreached, channel.Position{}
	if wire.Sleep(ctx, life) {
		target, status = n.drain(ctx, name, st, done, rand.New(rand.NewPCG(seed, 0)))
	}
	cancel()
	if sub != nil {
		sub.Close()
	}
	<-done
	if n.ctx.Err() == nil {
		n.line(Line{T: LineEnd, Kind: kind, Gen: gen, Status: status, Epoch: target.Epoch, Ver: target.Seq})
	}
}

// drain reads the head and waits until the probe has delivered it, within probeDrain (less
// once the workload has stopped: no message may come to show that it had).
func (n *node) drain(ctx context.Context, name string, st *probeState, finished <-chan struct{}, r *rand.Rand) (channel.Position, string) {
	deadline := time.Now().Add(probeDrain)
	var target channel.Position
	for {
		hctx, cancel := context.WithTimeout(ctx, n.cfg.ConnTimeout)
		h, err := n.cl.Head(hctx, name)
		cancel()
		if err == nil {
			target = h
			break
		}
		if time.Now().After(deadline) || !wire.Sleep(ctx, time.Duration(50+r.IntN(100))*time.Millisecond) {
			return channel.Position{}, EndUnreached
		}
	}
	var stopped <-chan time.Time
	var read time.Time // the last time the log was read to compare
	for {
		done, seq, what, check := st.at(target)
		if done {
			break
		}
		if check && time.Since(read) >= 100*time.Millisecond {
			read = time.Now()
			lctx, cancel := context.WithTimeout(ctx, n.cfg.ConnTimeout)
			got, err := n.logAt(lctx, name, seq)
			cancel()
			if err == nil && got == what {
				break
			}
		}
		if n.work.Err() != nil && stopped == nil {
			stopped = time.After(2 * time.Second)
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return target, EndUnreached
		}
		select {
		case <-st.notify:
		case <-finished:
			return target, EndUnreached
		case <-stopped:
			return target, EndUnreached
		case <-time.After(min(wait, 100*time.Millisecond)):
		case <-ctx.Done():
			return target, EndUnreached
		}
	}
	return target, EndReached
}

// logAt reads what the log of name holds at seq, as content names it ("" when it holds
// nothing there), with the protocol's key names and decoders.
func (n *node) logAt(ctx context.Context, name string, seq uint64) (string, error) {
	k, err := wire.KeysFor(n.cfg.Prefix, name)
	if err != nil {
		return "", err
	}
	id := strconv.FormatUint(seq, 10) + "-0"
	entries, err := n.rc.Do(ctx, n.rc.B().Xrevrange().Key(k.Log).End(id).Start("-").Count(1).Build()).AsXRange()
	if err != nil || len(entries) == 0 {
		return "", err
	}
	env, err := wire.DecodeEnvelope(entries[0].FieldValues["e"])
	if err != nil {
		return "", err
	}
	if seq < env.First || seq > env.Last() {
		return "", nil
	}
	msg := env.Data[seq-env.First]
	if name != n.cfg.Map {
		return content(false, false, "", payloadID([]byte(msg))), nil
	}
	chs, err := decodeRecord(msg)
	if err != nil || len(chs) != 1 {
		return "", fmt.Errorf("map log seq %d: %v (%d ops)", seq, err, len(chs))
	}
	return content(true, chs[0].Del, chs[0].Key, chs[0].Val), nil
}

// eventLine records a channel event (message or reset).
func eventLine(ev channel.Event) Line {
	l := Line{T: LineEvent, Ver: ev.Seq, Epoch: ev.Epoch}
	if ev.Reset != nil {
		l.Reset = resetInfo(ev.Reset)
	} else {
		l.Val = payloadID(ev.Data)
	}
	return l
}

// changeLine records a map change (operation or reset).
func changeLine(c replmap.Change[string]) Line {
	l := Line{T: LineEvent, Ver: c.Seq, Epoch: c.Epoch}
	if c.Reset != nil {
		l.Reset = resetInfo(c.Reset)
	} else {
		l.Key, l.Val, l.Del, l.Old = c.Key, c.Value, c.Deleted, c.OldVersion
	}
	return l
}

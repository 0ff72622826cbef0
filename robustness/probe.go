package robustness

import (
	"context"
	"iter"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/redisync/redisync/channel"
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

var nowKinds = []string{StreamNowSub, StreamNowEvents, StreamNowWatch, StreamNowMapWatch}

// probeDrain bounds how long a probe keeps going after its lifetime to reach the head.
const probeDrain = 8 * time.Second

// probeState is what a probe's consumer tells its controller.
type probeState struct {
	mu     sync.Mutex // guards the fields below
	known  bool       // an event was delivered
	pos    channel.Position
	lost   map[string]bool // epochs a reset announced as lost from some seq on
	notify chan struct{}   // poked after each event
}

func (s *probeState) update(p channel.Position, r *channel.Reset) {
	s.mu.Lock()
	s.known, s.pos = true, p
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

// reached reports whether the probe stands at or after target, or a reset announced that
// target's epoch is lost (everything of it from some seq on).
func (s *probeState) reached(target channel.Position) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return (s.known && s.pos.Epoch == target.Epoch && s.pos.Seq >= target.Seq) || s.lost[target.Epoch]
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
		st.update(p, r)
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
			if !sleepCtx(ctx, delay) {
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
			if !sleepCtx(ctx, delay) {
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
	if sleepCtx(ctx, life) {
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
func (n *node) drain(ctx context.Context, name string, st *probeState, done <-chan struct{}, r *rand.Rand) (channel.Position, string) {
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
		if time.Now().After(deadline) || !sleepCtx(ctx, time.Duration(50+r.IntN(100))*time.Millisecond) {
			return channel.Position{}, EndUnreached
		}
	}
	var stopped <-chan time.Time
	for !st.reached(target) {
		if n.work.Err() != nil && stopped == nil {
			stopped = time.After(2 * time.Second)
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return target, EndUnreached
		}
		select {
		case <-st.notify:
		case <-done:
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

// sleepCtx sleeps d, reporting false when ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

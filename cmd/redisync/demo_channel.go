package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/wire"
	"github.com/redisync/redisync/redisconn"
)

// runChannelDemo runs the channel part of the demo on the Redis at url, under prefix.
func runChannelDemo(ctx context.Context, g *globals, out, errw io.Writer, url, prefix string, n int) error {
	// The publisher and subscriber A connect directly.
	open := func(url string) (rueidis.Client, error) {
		return redisconn.Open(ctx, redisconn.Options{URL: url})
	}
	pubRC, err := open(url)
	if err != nil {
		return err
	}
	defer pubRC.Close()
	aRC, err := open(url)
	if err != nil {
		return err
	}
	defer aRC.Close()

	// B and C connect through the proxy, which can drop their connections.
	proxy, proxied, err := proxyFor(pubRC, url)
	if err != nil {
		return err
	}
	defer proxy.Close()
	bRC, err := open(proxied)
	if err != nil {
		return err
	}
	defer bRC.Close()
	cRC, err := open(proxied)
	if err != nil {
		return err
	}
	defer cRC.Close()

	// Each node is a channel.Client over its own Redis client.
	cfg := channel.Config{Prefix: prefix, Logger: g.quietLogger(errw)}
	var nodes [3]*channel.Client
	for i, rc := range []rueidis.Client{pubRC, aRC, bRC} {
		if nodes[i], err = channel.New(rc, cfg); err != nil {
			return err
		}
		defer nodes[i].Close()
	}
	pub, a, b := nodes[0], nodes[1], nodes[2]

	// Subscribers A and B: redisync, from the start of the (new) channel.
	recA, recB := newRecorder(n), newRecorder(n)
	var subs [2]*channel.Subscription
	for i, s := range []struct {
		cl  *channel.Client
		rec *recorder
	}{{a, recA}, {b, recB}} {
		rec := s.rec
		sub, err := s.cl.Subscribe(ctx, demoChannel, channel.FromStart(), func(_ context.Context, ev channel.Event) error {
			if ev.Reset != nil {
				rec.reset()
				return nil
			}
			rec.add(int(ev.Seq), string(ev.Data) == demoMessage(int(ev.Seq)))
			return nil
		})
		if err != nil {
			return err
		}
		defer sub.Close()
		subs[i] = sub
	}
	fmt.Fprintln(out, "Subscriber A: redisync, connected directly.")
	fmt.Fprintln(out, "Subscriber B: redisync, through a proxy that will drop its connections.")

	// Subscriber C: plain SUBSCRIBE, the naive recipe; rueidis resubscribes after a drop.
	rawName := prefix + ":raw"
	recC := newRecorder(n)
	rawEnd := make(chan struct{})
	rawReady := make(chan struct{})
	var readyOnce, endOnce sync.Once
	rawCtx, rawCancel := context.WithCancel(ctx)
	rawDone := make(chan struct{})
	go func() {
		defer close(rawDone)
		hctx := rueidis.WithOnSubscriptionHook(rawCtx, func(s rueidis.PubSubSubscription) {
			if s.Kind == "subscribe" {
				readyOnce.Do(func() { close(rawReady) })
			}
		})
		for rawCtx.Err() == nil {
			_ = cRC.Receive(hctx, cRC.B().Subscribe().Channel(rawName).Build(), func(m rueidis.PubSubMessage) {
				if m.Message == demoRawEnd {
					endOnce.Do(func() { close(rawEnd) })
					return
				}
				k, ok := parseDemoMessage(m.Message)
				recC.add(k, ok)
			})
			select {
			case <-rawCtx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	defer func() { rawCancel(); <-rawDone }()
	select {
	case <-rawReady:
	case <-ctx.Done():
		return fmt.Errorf("subscriber C could not subscribe: %w", ctx.Err())
	}
	fmt.Fprintf(out, "Subscriber C: plain SUBSCRIBE on %q, through the same proxy.\n", rawName)
	if !wire.Sleep(ctx, demoSettle) {
		return ctx.Err()
	}

	// Publish at a steady pace, dropping B's and C's connections twice on the way.
	batch := min(max(1, (n+demoTicks-1)/demoTicks), channel.DefaultMaxBatchMessages)
	batches := (n + batch - 1) / batch
	fmt.Fprintf(out, "Publishing %d messages, %d every %v, each through redisync and with a plain PUBLISH...\n", n, batch, demoTick)
	start := time.Now()
	tick := time.NewTicker(demoTick)
	defer tick.Stop()
	cuts := 0
	for i, sent := 0, 0; i < batches; i++ {
		if cuts < demoCuts && i > 0 && i == batches*(cuts+1)/(demoCuts+1) {
			cuts++
			fmt.Fprintf(out, "  after message %d: dropping subscriber B's and C's connections (%d of %d)\n", sent, cuts, demoCuts)
			proxy.Cut()
		}
		msgs := make([][]byte, 0, batch)
		raws := make(rueidis.Commands, 0, batch)
		for ; len(msgs) < batch && sent < n; sent++ {
			m := demoMessage(sent + 1)
			msgs = append(msgs, []byte(m))
			raws = append(raws, pubRC.B().Publish().Channel(rawName).Message(m).Build())
		}
		if err := demoPublish(ctx, g, pub, pubRC, msgs, raws); err != nil {
			return err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := pubRC.Do(ctx, pubRC.B().Publish().Channel(rawName).Message(demoRawEnd).Build()).Error(); err != nil {
		return fmt.Errorf("plain PUBLISH: %w", err)
	}
	fmt.Fprintf(out, "Published %d messages in %.1f s.\n", n, time.Since(start).Seconds())

	// Wait for A and B to have everything, and for C's end marker.
	waitStart := time.Now()
	wctx, wcancel := context.WithTimeout(ctx, demoDeliverWait)
	defer wcancel()
	for _, r := range []*recorder{recA, recB} {
		select {
		case <-r.full:
		case <-wctx.Done():
		}
	}
	rctx, rcancel := context.WithTimeout(ctx, demoRawEndWait)
	defer rcancel()
	select {
	case <-rawEnd:
	case <-rctx.Done():
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	fmt.Fprintf(out, "The subscribers were done %d ms after the last publish.\n\n", time.Since(waitStart).Milliseconds())

	// Report and check.
	sa, sb, sc := recA.snapshot(), recB.snapshot(), recC.snapshot()
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "subscriber\treceived\tin order\tmissing\tresets")
	fmt.Fprintf(tw, "A  redisync, direct\t%d/%d\t%s\t%d\t%d\n", sa.received, n, yesNo(sa.inOrder), sa.missing, sa.resets)
	fmt.Fprintf(tw, "B  redisync, via proxy\t%d/%d\t%s\t%d\t%d\n", sb.received, n, yesNo(sb.inOrder), sb.missing, sb.resets)
	fmt.Fprintf(tw, "C  plain SUBSCRIBE, via proxy\t%d/%d\t%s\t%d\t-\n", sc.received, n, yesNo(sc.inOrder), sc.missing)
	tw.Flush()
	fmt.Fprintln(out)
	if cuts > 0 {
		st := b.Stats()
		fmt.Fprintf(out, "B rode out %d dropped connections: %d pub/sub reconnects, %d messages read back from the log.\n",
			cuts, st.Reconnects, st.FromLog)
	}

	var failed []string
	for i, s := range []struct {
		name string
		rec  recording
	}{{"A", sa}, {"B", sb}} {
		if why := s.rec.problem(n); why != "" {
			if err := subs[i].Err(); err != nil {
				why += " (its subscription ended: " + err.Error() + ")"
			}
			failed = append(failed, "subscriber "+s.name+" "+why)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintln(out, "FAILED: redisync did not deliver every message exactly once and in order.")
		return fmt.Errorf("demo check failed: %s", strings.Join(failed, "; "))
	}
	lost := "lost none this time"
	if sc.missing > 0 {
		lost = fmt.Sprintf("lost %d of them", sc.missing)
	}
	fmt.Fprintf(out, "Both redisync subscribers received all %d messages exactly once and in order; plain pub/sub %s.\n", n, lost)
	return nil
}

// Bounds of the map part of the demo.
const (
	demoMap          = "demo-map" // the replicated map
	demoMapKeys      = 50         // distinct keys written
	demoMapWrites    = 300        // writes per writing node
	demoMapDeleteOne = 5          // one write in demoMapDeleteOne is a delete
)

// demoPublish publishes one batch through redisync and the same messages with plain PUBLISH.
func demoPublish(ctx context.Context, g *globals, pub *channel.Client, rc rueidis.Client, msgs [][]byte, raws rueidis.Commands) error {
	pctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	if _, err := pub.PublishBatch(pctx, demoChannel, msgs); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	for _, r := range rc.DoMulti(pctx, raws...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("plain PUBLISH: %w", err)
		}
	}
	return nil
}

func demoMessage(k int) string { return "message " + strconv.Itoa(k) }

// parseDemoMessage returns k for "message k"; ok is false for anything else.
func parseDemoMessage(s string) (k int, ok bool) {
	rest, found := strings.CutPrefix(s, "message ")
	if !found {
		return 0, false
	}
	k, err := strconv.Atoi(rest)
	return k, err == nil
}

// recorder tallies what one subscriber received of messages 1..want.
type recorder struct {
	want int
	full chan struct{} // closed once every message 1..want has been received

	mu sync.Mutex // guards the fields below
	recording
	seen []bool
}

// recording is a snapshot of a recorder.
type recording struct {
	received  int  // messages received, duplicates included
	missing   int  // of 1..want, never received
	inOrder   bool // each message came after the previous one, with no repeat
	wrongData int  // messages whose data did not match their number
	resets    int  // reset events
	last      int  // number of the last message received
}

func newRecorder(want int) *recorder {
	return &recorder{
		want:      want,
		full:      make(chan struct{}),
		recording: recording{missing: want, inOrder: true},
		seen:      make([]bool, want+1),
	}
}

// add records message k; dataOK says whether its data was the one published as k.
func (r *recorder) add(k int, dataOK bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.received++
	if !dataOK {
		r.wrongData++
	}
	if k <= r.last {
		r.inOrder = false
	}
	r.last = k
	if k >= 1 && k <= r.want && !r.seen[k] {
		r.seen[k] = true
		if r.missing--; r.missing == 0 {
			close(r.full)
		}
	}
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.resets++
	r.mu.Unlock()
}

func (r *recorder) snapshot() recording {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recording
}

// problem says how the recording falls short of every message 1..want exactly once, in
// order, with its own data and without a reset; it is empty when nothing does.
func (r recording) problem(want int) string {
	var p []string
	if r.missing > 0 {
		p = append(p, fmt.Sprintf("received %d of %d messages (%d missing)", want-r.missing, want, r.missing))
	}
	if dup := r.received - (want - r.missing); dup > 0 {
		p = append(p, fmt.Sprintf("received %d duplicates or unknown messages", dup))
	}
	if !r.inOrder {
		p = append(p, "received messages out of order")
	}
	if r.wrongData > 0 {
		p = append(p, fmt.Sprintf("received %d messages with the wrong data", r.wrongData))
	}
	if r.resets > 0 {
		p = append(p, fmt.Sprintf("had %d resets", r.resets))
	}
	return strings.Join(p, ", ")
}

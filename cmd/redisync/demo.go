package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/redis/rueidis"
	"github.com/spf13/cobra"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/faultproxy"
	"github.com/redisync/redisync/redisconn"
	"github.com/redisync/redisync/replmap"
)

// Bounds of the demo.
const (
	demoTimeout     = 30 * time.Second       // the whole demo, set-up and clean-up included
	demoDeliverWait = 10 * time.Second       // for the subscribers to receive everything once published
	demoRawEndWait  = 2 * time.Second        // for the plain subscriber's end marker
	demoTick        = 20 * time.Millisecond  // between two batches
	demoTicks       = 100                    // batches in a run of the default size: about 2 s
	demoChannel     = "demo"                 // the reliable channel
	demoRawEnd      = "end"                  // last plain PUBLISH, after every message
	demoCleanupWait = 2 * time.Second        // for deleting the demo's keys from a real Redis
	demoCuts        = 2                      // connection drops during the run
	demoSettle      = 200 * time.Millisecond // before publishing, for the subscriptions to start
)

func newDemoCmd(g *globals) *cobra.Command {
	var messages int
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Show redisync at work with no set-up: dropped connections, nothing lost, replicas that agree",
		Long: `Run the classic pub/sub example and show that redisync loses nothing where plain
PUBLISH/SUBSCRIBE does.

Without --redis, an embedded Redis-compatible server (miniredis) is started in-process, so
nothing needs to be set up; with --redis URL that Redis is used ($REDIS_URL is ignored here),
under a key prefix unique to the run, and only the demo's own keys are deleted at the end.

Three subscribers listen while a publisher sends --messages messages over about two seconds:
  A  a redisync subscriber connected directly to Redis,
  B  a redisync subscriber whose connections go through a proxy that drops them twice,
  C  a plain SUBSCRIBE on a channel of its own, through the same proxy.
Every message is published both through redisync and with a plain PUBLISH for C.

The demo then checks that A and B each received every message exactly once, in order, without
a reset, and reports how many C lost.

Then a replicated map: nodes A, B and C (C through the proxy) each hold a replica of one map
and make 300 random sets and deletes on 50 keys, all at once. Half-way, C's connections are
dropped; later a fourth node, D, joins and loads the map while the writes go on. At the end it
prints each node's key count, last applied seq and digest, which must all be equal, and checks
each replica against the digest Redis keeps (as "redisync check" does).

It exits 0 when every check passes, and 1 with the reason when one fails or the demo does not
finish within 30 s.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if messages < 1 {
				return fmt.Errorf("--messages %d is below 1", messages)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), demoTimeout)
			defer cancel()
			err := runDemo(ctx, g, cmd.OutOrStdout(), cmd.ErrOrStderr(), messages)
			if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("demo did not finish within %v: %w", demoTimeout, err)
			}
			return err
		},
	}
	cmd.Flags().IntVar(&messages, "messages", 2000, "number of messages to publish")
	return cmd
}

// runDemo runs the demo, printing to out; it returns why it failed.
func runDemo(ctx context.Context, g *globals, out, errw io.Writer, n int) error {
	id := make([]byte, 4)
	_, _ = rand.Read(id) // crypto/rand.Read never fails
	prefix := g.prefix + "-demo-" + hex.EncodeToString(id)
	fmt.Fprintf(out, "redisync demo: %d messages, two redisync subscribers, one plain PUBLISH/SUBSCRIBE subscriber\n", n)

	// Redis: embedded unless --redis was given.
	url := g.redisURL
	if url == "" {
		mr, err := startEmbedded()
		if err != nil {
			return err
		}
		defer mr.Close()
		url = "redis://" + mr.Addr()
		fmt.Fprintf(out, "Started an embedded Redis-compatible server (miniredis) at %s.\n", mr.Addr())
	} else {
		fmt.Fprintf(out, "Using the Redis at %s, under the key prefix %q.\n", redactURL(url), prefix)
		// The demo's keys are deleted with a client of their own once every node is closed.
		rc, err := redisconn.Open(ctx, redisconn.Options{URL: url})
		if err != nil {
			return err
		}
		defer rc.Close()
		defer deleteDemoKeys(rc, prefix, errw)
	}

	if err := runChannelDemo(ctx, g, out, errw, url, prefix, n); err != nil {
		return err
	}
	fmt.Fprintln(out)
	return runMapDemo(ctx, g, out, errw, url, prefix)
}

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
	target, err := hostPort(pubRC)
	if err != nil {
		return err
	}
	proxy, err := faultproxy.New(target)
	if err != nil {
		return err
	}
	defer proxy.Close()
	proxied, err := proxiedURL(url, proxy.Addr())
	if err != nil {
		return err
	}
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
	cfg := channel.Config{Prefix: prefix, Logger: g.logger(errw)}
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
	if err := sleepCtx(ctx, demoSettle); err != nil {
		return err
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

// demoNode is one node of the map part: its own Redis client, channel client and replica.
type demoNode struct {
	label string
	cl    *channel.Client
	m     *replmap.Map[[]byte]
	close func()
}

// openDemoNode connects to the Redis at url and opens the demo's map there.
func openDemoNode(ctx context.Context, g *globals, errw io.Writer, label, url, prefix string) (*demoNode, error) {
	rc, err := redisconn.Open(ctx, redisconn.Options{URL: url})
	if err != nil {
		return nil, err
	}
	cl, err := channel.New(rc, channel.Config{Prefix: prefix, Logger: g.logger(errw)})
	if err != nil {
		rc.Close()
		return nil, err
	}
	m, err := replmap.Open(cl, demoMap, replmap.Config[[]byte]{Codec: replmap.Bytes{}, Logger: g.logger(errw)})
	if err != nil {
		cl.Close()
		rc.Close()
		return nil, err
	}
	return &demoNode{label: label, cl: cl, m: m, close: func() { m.Close(); cl.Close(); rc.Close() }}, nil
}

// runMapDemo runs the map part of the demo on the Redis at url, under prefix: three nodes write
// to one map at once, one of them through a proxy that drops its connections half-way, a fourth
// node joins late, and every replica must end equal to the others and to Redis.
func runMapDemo(ctx context.Context, g *globals, out, errw io.Writer, url, prefix string) error {
	const writers = 3
	total := writers * demoMapWrites
	fmt.Fprintf(out, "Map %q: nodes A, B and C each make %d random sets and deletes on %d keys, all at once;\n", demoMap, demoMapWrites, demoMapKeys)
	fmt.Fprintln(out, "C goes through a proxy that will drop its connections, and node D joins late.")

	var nodes []*demoNode
	defer func() {
		for _, n := range nodes {
			n.close()
		}
	}()
	open := func(label, url string) (*demoNode, error) {
		n, err := openDemoNode(ctx, g, errw, label, url, prefix)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", label[:1], err)
		}
		nodes = append(nodes, n)
		return n, nil
	}
	for _, label := range []string{"A  direct", "B  direct"} {
		if _, err := open(label, url); err != nil {
			return err
		}
	}
	target, err := hostPort(nodes[0].cl.Redis())
	if err != nil {
		return err
	}
	proxy, err := faultproxy.New(target)
	if err != nil {
		return err
	}
	defer proxy.Close()
	proxied, err := proxiedURL(url, proxy.Addr())
	if err != nil {
		return err
	}
	c, err := open("C  via proxy", proxied)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if err := n.m.WaitReady(ctx); err != nil {
			return fmt.Errorf("node %s did not load the map: %w", n.label[:1], err)
		}
	}

	// Each writer makes its writes in turn, each one waiting until its own replica holds it.
	cutAt, joinAt := total/2, total*2/3
	var done atomic.Int64
	reached := make(chan int64, 2) // cutAt and joinAt, as the writes reach them
	lastSeq := make([]uint64, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := time.Now()
	for i, n := range nodes[:writers] {
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))
			for j := range demoMapWrites {
				key := fmt.Sprintf("key-%02d", rng.IntN(demoMapKeys))
				wctx, cancel := context.WithTimeout(ctx, g.timeout)
				var seq uint64
				var err error
				if rng.IntN(demoMapDeleteOne) == 0 {
					seq, err = n.m.Delete(wctx, key)
				} else {
					seq, err = n.m.Set(wctx, key, fmt.Appendf(nil, "%s-%d", n.label[:1], j+1))
				}
				cancel()
				if err != nil {
					errs[i] = fmt.Errorf("node %s, write %d: %w", n.label[:1], j+1, err)
					return
				}
				lastSeq[i] = max(lastSeq[i], seq)
				if d := done.Add(1); d == int64(cutAt) || d == int64(joinAt) {
					reached <- d
				}
			}
		})
	}
	writing := make(chan struct{})
	go func() { wg.Wait(); close(writing) }()
milestones:
	for range 2 {
		var d int64
		select {
		case d = <-reached:
		case <-writing:
			break milestones // a writer failed before the milestones
		}
		if d == int64(cutAt) {
			fmt.Fprintf(out, "  after %d writes: dropping node C's connections\n", d)
			proxy.Cut()
			continue
		}
		fmt.Fprintf(out, "  after %d writes: node D joins, loads a snapshot and catches up while the writes go on\n", d)
		if _, err := open("D  joined late", url); err != nil {
			<-writing
			return err
		}
	}
	<-writing
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("map writes failed: %w", err)
	}
	last := slices.Max(lastSeq)
	fmt.Fprintf(out, "Wrote %d changes in %.1f s; the last one is seq %d.\n\n", total, time.Since(start).Seconds(), last)

	// Every replica must reach the last write, and then agree with the others and with Redis.
	wctx, wcancel := context.WithTimeout(ctx, demoDeliverWait)
	defer wcancel()
	var failed []string
	for _, n := range nodes {
		if err := n.m.WaitFor(wctx, last); err != nil {
			failed = append(failed, fmt.Sprintf("node %s did not apply seq %d: %v", n.label[:1], last, err))
		}
	}
	type state struct {
		keys   int
		pos    channel.Position
		digest replmap.Digest
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "node\tkeys\tlast seq\tdigest\tverify")
	var first state
	for i, n := range nodes {
		who := "node " + n.label[:1]
		var s state
		s.digest, s.pos = n.m.Digest()
		s.keys = n.m.Len()
		if i == 0 {
			first = s
		} else if s != first {
			failed = append(failed, fmt.Sprintf("%s differs from node A", who))
		}
		verify := "match"
		v, err := n.m.Verify(wctx)
		switch {
		case err != nil:
			verify = "failed"
			failed = append(failed, fmt.Sprintf("%s could not verify: %v", who, err))
		case !v.Match:
			verify = "MISMATCH"
			failed = append(failed, fmt.Sprintf("%s disagrees with Redis at seq %d: digest %s with %d keys, Redis %s with %d keys",
				who, v.Position.Seq, v.Replica, v.ReplicaKeys, v.Redis, v.RedisKeys))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", n.label, s.keys, s.pos.Seq, s.digest, verify)
	}
	tw.Flush()
	fmt.Fprintln(out)
	st := c.cl.Stats()
	fmt.Fprintf(out, "C rode out its dropped connections: %d pub/sub reconnects, %d write retries.\n", st.Reconnects, st.PublishRetries)
	if len(failed) > 0 {
		fmt.Fprintln(out, "FAILED: the map replicas did not converge.")
		return fmt.Errorf("demo map check failed: %s", strings.Join(failed, "; "))
	}
	fmt.Fprintf(out, "All %d map replicas hold the same %d keys at seq %d with digest %s, and each matched Redis.\n",
		len(nodes), first.keys, first.pos.Seq, first.digest)
	return nil
}

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

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// hostPort returns the address of the one Redis node rc talks to.
func hostPort(rc rueidis.Client) (string, error) {
	var addrs []string
	for a := range rc.Nodes() {
		addrs = append(addrs, a)
	}
	if len(addrs) != 1 {
		return "", fmt.Errorf("the demo needs a single Redis server, not %d nodes (%s)", len(addrs), strings.Join(addrs, ","))
	}
	return addrs[0], nil
}

// proxiedURL returns url with its host and port replaced by addr, keeping credentials,
// database and options.
func proxiedURL(url, addr string) (string, error) {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok || (scheme != "redis" && scheme != "rediss") {
		return "", fmt.Errorf("the demo needs a redis:// or rediss:// URL, not %q", redactURL(url))
	}
	hostEnd := strings.IndexAny(rest, "/?")
	if hostEnd < 0 {
		hostEnd = len(rest)
	}
	creds := ""
	if at := strings.LastIndex(rest[:hostEnd], "@"); at >= 0 {
		creds = rest[:at+1]
	}
	return scheme + "://" + creds + addr + rest[hostEnd:], nil
}

// redactURL hides a password in url.
func redactURL(url string) string {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return url
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return url
	}
	if user, _, hasPass := strings.Cut(rest[:at], ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + rest[at+1:]
	}
	return url
}

// deleteDemoKeys deletes the keys under prefix, which is unique to this run, and nothing else.
// It reports only a failure, on errw.
func deleteDemoKeys(rc rueidis.Client, prefix string, errw io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), demoCleanupWait)
	defer cancel()
	var cursor uint64
	for {
		e, err := rc.Do(ctx, rc.B().Scan().Cursor(cursor).Match(prefix+":*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			fmt.Fprintf(errw, "redisync: could not delete the demo's keys under %q: %v\n", prefix+":", err)
			return
		}
		if len(e.Elements) > 0 {
			if err := rc.Do(ctx, rc.B().Unlink().Key(e.Elements...).Build()).Error(); err != nil {
				fmt.Fprintf(errw, "redisync: could not delete the demo's keys under %q: %v\n", prefix+":", err)
				return
			}
		}
		if cursor = e.Cursor; cursor == 0 {
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/redisconn"
	"github.com/redisync/redisync/replmap"
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
	cl, err := channel.New(rc, channel.Config{Prefix: prefix, Logger: g.quietLogger(errw)})
	if err != nil {
		rc.Close()
		return nil, err
	}
	m, err := replmap.Open(cl, demoMap, replmap.Config[[]byte]{Codec: replmap.Bytes{}, Logger: g.quietLogger(errw)})
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
	proxy, proxied, err := proxyFor(nodes[0].cl.Redis(), url)
	if err != nil {
		return err
	}
	defer proxy.Close()
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
				}
				if seq == 0 && (err == nil || errors.Is(err, replmap.ErrNotFound)) {
					// Not a delete, or the delete of an absent key, which writes nothing: a set.
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

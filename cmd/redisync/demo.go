package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/redis/rueidis"
	"github.com/spf13/cobra"

	"github.com/redisync/redisync/internal/faultproxy"
	"github.com/redisync/redisync/redisconn"
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

// proxyFor starts a fault proxy in front of rc's Redis and returns it with url rewritten to
// go through it.
func proxyFor(rc rueidis.Client, url string) (*faultproxy.Proxy, string, error) {
	target, err := hostPort(rc)
	if err != nil {
		return nil, "", err
	}
	proxy, err := faultproxy.New(target)
	if err != nil {
		return nil, "", err
	}
	proxied, err := proxiedURL(url, proxy.Addr())
	if err != nil {
		proxy.Close()
		return nil, "", err
	}
	return proxy, proxied, nil
}

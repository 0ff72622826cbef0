package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/redis/rueidis"
	"github.com/spf13/cobra"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/redisconn"
)

// globals are the flags every command shares.
type globals struct {
	redisURL string
	prefix   string
	timeout  time.Duration
	verbose  bool
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "redisync",
		Short: "Keep data in sync across many nodes through Redis, losing nothing",
		Long: `redisync keeps data in sync across many application nodes through Redis.

Reliable channels: every message gets a sequence number, and every subscriber receives each one
once and in order, across disconnects and Redis restarts; what cannot be delivered any more is
announced as a reset, never skipped silently.

Configuration comes from flags, then the environment:
  REDIS_URL   Redis to use (redis://[user:password@]host:port[/db], rediss:// for TLS),
              default ` + redisconn.DefaultURL + `

Exit codes: 0 success; 1 an error (one line on standard error: an unreachable Redis, a key
not found, a name that is a channel where a map is wanted or the reverse, …); 3 a version
conflict of set or del --if-version; 130 interrupted by SIGINT or SIGTERM.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.redisURL, "redis", "", "Redis URL (default $REDIS_URL, else "+redisconn.DefaultURL+")")
	pf.StringVar(&g.prefix, "prefix", channel.DefaultPrefix, "prefix of every Redis key redisync uses")
	pf.DurationVar(&g.timeout, "timeout", 30*time.Second, "how long an operation may retry a lost connection or a Redis restart")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "also log what is merely informative (warnings are always logged to standard error)")
	root.AddCommand(newPubCmd(g), newSubCmd(g),
		newSetCmd(g), newGetCmd(g), newDelCmd(g), newWatchCmd(g), newDumpCmd(g), newCheckCmd(g), newRetentionCmd(g),
		newServeCmd(g), newStatusCmd(g), newDemoCmd(g), newBenchCmd(g))
	return root
}

// url returns the Redis URL from the flag or the environment.
func (g *globals) url() string {
	if g.redisURL != "" {
		return g.redisURL
	}
	return redisconn.URLFromEnv()
}

// logger writes warnings (lost connections, resets, a replica that diverged and reloads, pub/sub
// refused) to w, and with -v also what is merely informative.
func (g *globals) logger(w io.Writer) *slog.Logger {
	level := slog.LevelWarn
	if g.verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// quietLogger is logger for commands whose own output already tells what happened (the demo
// cuts connections on purpose): silent without -v.
func (g *globals) quietLogger(w io.Writer) *slog.Logger {
	if !g.verbose {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return g.logger(w)
}

// open connects to Redis and returns a channel client over it; close releases both.
func (g *globals) open(ctx context.Context) (rc rueidis.Client, cl *channel.Client, close func(), err error) {
	rc, err = redisconn.Open(ctx, redisconn.Options{URL: g.url()})
	if err != nil {
		return nil, nil, nil, err
	}
	cl, err = channel.New(rc, channel.Config{Prefix: g.prefix, Logger: g.logger(os.Stderr)})
	if err != nil {
		rc.Close()
		return nil, nil, nil, err
	}
	return rc, cl, func() { cl.Close(); rc.Close() }, nil
}

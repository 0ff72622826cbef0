package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/redis/rueidis"
	"github.com/spf13/cobra"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/redisconn"
)

// globals are the flags every command shares.
type globals struct {
	redisURL string
	prefix   string // --namespace: channel.Config.Prefix
	alias    string // --prefix, the deprecated name of --namespace
	timeout  time.Duration
	verbose  bool
	sharded  string // auto, on or off
	conn     redisconn.Options
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	version := readVersion()
	root := &cobra.Command{
		Use:   "redisync",
		Short: "Keep data in sync across many nodes through Redis, losing nothing",
		Long: `redisync keeps data in sync across many application nodes through Redis.

Reliable channels: every message gets a sequence number, and every subscriber receives each one
once and in order, across disconnects and Redis restarts; what cannot be delivered any more is
announced as a reset, never skipped silently.

Replicated maps: every node holds a whole keyspace, kept current from a channel of its
writes; "redisync check" proves a replica equals Redis.

Every Redis key and pub/sub channel redisync uses starts with its namespace (--namespace,
default "` + channel.DefaultPrefix + `"): commands, nodes and programs that share data use the same one.

Configuration comes from flags, then the environment:
  REDIS_URL   Redis to use (redis://[user:password@]host:port[/db], rediss:// for TLS),
              default ` + redisconn.DefaultURL + `. A Sentinel deployment:
              redis://[user:password@]SENTINEL?addr=SENTINEL2&addr=SENTINEL3&master_set=NAME;
              a Redis Cluster: redis://[user:password@]NODE?addr=NODE2&addr=NODE3 (sharded
              pub/sub is then used: --sharded).
  REDISYNC_SENTINEL_PASSWORD  the sentinels' password, when --sentinel-password is not given

Exit codes: 0 success; 1 an error (one line on standard error: an unreachable Redis, a key
not found, a map that does not exist, a name that is a channel where a map is wanted or the
reverse, …); 3 a version conflict of set or del --if-version; 4 pub found that Redis lost
lines it had acknowledged; 130 interrupted by SIGINT or SIGTERM.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.String(),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.resolve(cmd)
		},
	}
	var versionText strings.Builder
	version.print(&versionText)
	root.SetVersionTemplate(versionText.String())
	// Ours rather than cobra's, which would take -v, the shorthand of --verbose.
	root.Flags().Bool("version", false, `print the version, commit and Go version (as "redisync version")`)
	pf := root.PersistentFlags()
	pf.StringVar(&g.redisURL, "redis", "", "Redis URL (default $REDIS_URL, else "+redisconn.DefaultURL+")")
	pf.StringVar(&g.prefix, "namespace", channel.DefaultPrefix, "namespace of every Redis key and pub/sub channel redisync uses (NAMESPACE:{NAME}:…)")
	pf.StringVar(&g.alias, "prefix", channel.DefaultPrefix, "the former name of --namespace")
	pf.MarkDeprecated("prefix", "use --namespace instead (same meaning: the namespace of every Redis key; dump and watch filter keys with --key-prefix)")
	pf.DurationVar(&g.timeout, "timeout", 30*time.Second, "how long an operation may retry a lost connection or a Redis restart, and a command waits at start\n"+
		"for a Redis that refuses connections; one connection attempt gives up after this or "+redisconn.DefaultTimeout.String()+", whichever is shorter")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "also log what is merely informative (warnings are always logged to standard error)")
	pf.StringVar(&g.sharded, "sharded", "auto", `sharded pub/sub (SPUBLISH/SSUBSCRIBE): "auto" (on for a Redis Cluster), "on" or "off"`)
	pf.StringVar(&g.conn.CAFile, "tls-ca", "", "PEM file of the CA that signed the server's certificate (rediss://; URL parameter tls_ca)")
	pf.StringVar(&g.conn.CertFile, "tls-cert", "", "PEM client certificate, for a server with tls-auth-clients (URL parameter tls_cert)")
	pf.StringVar(&g.conn.KeyFile, "tls-key", "", "PEM private key of --tls-cert (URL parameter tls_key)")
	pf.StringVar(&g.conn.ServerName, "tls-server-name", "", "name the server certificates must be valid for (default the URL's host; URL parameter tls_server_name)")
	pf.StringVar(&g.conn.SentinelUser, "sentinel-user", "", "user of the sentinels, apart from the master's in the URL (URL parameter sentinel_user)")
	pf.StringVar(&g.conn.SentinelPassword, "sentinel-password", "", "password of the sentinels (URL parameter sentinel_password; default $REDISYNC_SENTINEL_PASSWORD)")
	root.AddCommand(newPubCmd(g), newSubCmd(g),
		newSetCmd(g), newGetCmd(g), newDelCmd(g), newWatchCmd(g), newDumpCmd(g), newCheckCmd(g), newRetentionCmd(g),
		newServeCmd(g), newStatusCmd(g), newDemoCmd(g), newBenchCmd(g), newVersionCmd())
	return root
}

// resolve settles the flags that depend on each other, before any command runs: --prefix is
// the deprecated name of --namespace.
func (g *globals) resolve(cmd *cobra.Command) error {
	f := cmd.Flags()
	if f.Changed("redis") && strings.TrimSpace(g.redisURL) == "" {
		// Most likely an unset variable ("--redis $URL"): not a reason to use another Redis.
		return errors.New("--redis is empty: give a Redis URL (redis://HOST:PORT), or leave the flag out to use $REDIS_URL or " + redisconn.DefaultURL)
	}
	if !f.Changed("prefix") {
		return nil
	}
	if f.Changed("namespace") && g.alias != g.prefix {
		return fmt.Errorf("--namespace %q and --prefix %q disagree: give --namespace only (--prefix is its former name)", g.prefix, g.alias)
	}
	g.prefix = g.alias
	return nil
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
	return g.openConfig(ctx, channel.Config{})
}

// openConfig is open with a channel client configured by cfg, whose Prefix, Sharded and
// Logger are set here. A Redis that refuses connections (restarting, or a master that just
// failed, still named by the sentinels) or is still loading its data is waited for, up to
// --timeout, saying so once on standard error.
func (g *globals) openConfig(ctx context.Context, cfg channel.Config) (rc rueidis.Client, cl *channel.Client, close func(), err error) {
	return g.openRetrying(ctx, cfg, os.Stderr, "redisync", redisStarting)
}

// openRetrying connects as openOnce does, trying again while passing(err) says the failure
// may pass with time, for up to --timeout; it says so once on stderr, naming itself who. An
// error that would not pass with time (a bad URL, a refused password) ends it at once.
func (g *globals) openRetrying(ctx context.Context, cfg channel.Config, stderr io.Writer, who string,
	passing func(error) bool) (rc rueidis.Client, cl *channel.Client, close func(), err error) {
	octx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	var last error
	for attempt := 0; ; attempt++ {
		rc, cl, close, err = g.openOnce(octx, cfg)
		if err == nil {
			if attempt > 0 {
				fmt.Fprintf(stderr, "%s: Redis answers\n", who)
			}
			return rc, cl, close, nil
		}
		switch {
		case ctx.Err() != nil:
			return nil, nil, nil, err
		case octx.Err() != nil:
			if last == nil || !errors.Is(err, context.DeadlineExceeded) {
				last = err
			}
			return nil, nil, nil, fmt.Errorf("%w; gave up after --timeout %v", last, g.timeout)
		case !passing(err):
			return nil, nil, nil, err
		}
		last = err
		if attempt == 0 {
			fmt.Fprintf(stderr, "%s: waiting for Redis (%v); retrying for up to --timeout %v\n", who, err, g.timeout)
		}
		select {
		case <-octx.Done():
		case <-time.After(min(100*time.Millisecond<<min(attempt, 4), time.Second)):
		}
	}
}

// redisStarting reports whether err, a failure to open a Redis client, is a Redis that is not
// there yet but should be soon: the connection refused (a restart, or a master that just
// failed), Redis loading its data, or a failover or cluster change under way. A connection
// cut or left unanswered is not: it is as likely a wrong address or protocol (TLS) as a
// restart.
func redisStarting(err error) bool {
	var re *rueidis.RedisError
	if errors.As(err, &re) {
		return re.IsLoading() || re.IsTryAgain() || re.IsClusterDown() || strings.HasPrefix(re.Error(), "MASTERDOWN")
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// openOnce is openConfig without the waiting: one try, within --timeout.
func (g *globals) openOnce(ctx context.Context, cfg channel.Config) (rc rueidis.Client, cl *channel.Client, close func(), err error) {
	o := g.conn
	o.URL = g.url()
	if o.SentinelPassword == "" {
		o.SentinelPassword = os.Getenv("REDISYNC_SENTINEL_PASSWORD")
	}
	// Connecting, and any later Redis call left without an answer, give up after --timeout,
	// at most redisconn's default, and within ctx's deadline.
	o.Timeout = min(g.timeout, redisconn.DefaultTimeout)
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return nil, nil, nil, g.explain(ctx.Err())
		}
		o.Timeout = min(o.Timeout, left)
	}
	// Open is bounded by o.Timeout and then says which step got no answer (a TLS handshake
	// with a plain server, say); ctx's deadline, the same instant, would race with that and
	// leave a bare "deadline exceeded". So Open gets ctx's cancellation, not its deadline.
	octx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(ctx, func() {
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cancel()
		}
	})()
	rc, err = redisconn.Open(octx, o)
	if err != nil {
		return nil, nil, nil, err
	}
	var sharded bool
	switch g.sharded {
	case "auto":
		sharded = redisconn.IsCluster(rc)
	case "on":
		sharded = true
	case "off":
	default:
		rc.Close()
		return nil, nil, nil, fmt.Errorf("--sharded %q: want auto, on or off", g.sharded)
	}
	cfg.Prefix, cfg.Sharded, cfg.Logger = g.prefix, sharded, g.logger(os.Stderr)
	cl, err = channel.New(rc, cfg)
	if err != nil {
		rc.Close()
		return nil, nil, nil, err
	}
	return rc, cl, func() { cl.Close(); rc.Close() }, nil
}

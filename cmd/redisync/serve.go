package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/rueidis"
	"github.com/spf13/cobra"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/node"
)

// envToken is the environment variable serve reads the token from when --token is not given.
const envToken = "REDISYNC_TOKEN"

func newServeCmd(g *globals) *cobra.Command {
	var maps, chans, allowedHosts, allowedOrigins []string
	var listen, token, id string
	var ttl, bodyTimeout, goneAfter time.Duration
	var insecure bool
	cmd := &cobra.Command{
		Use:   "serve --map NAME [--map NAME …] [--channel NAME …]",
		Short: "Serve replicated maps and channels over HTTP and SSE, with metrics and a live dashboard",
		Long: `Host a replica of every --map and relay every --channel, and serve them over HTTP until
interrupted (SIGINT or SIGTERM: open event streams are ended, the node leaves the registry).

` + node.RouteTable("  ") + `
A KEY is percent-decoded bytes; a path with an empty segment (a//b) or a "." or ".."
segment answers 400, never a redirect: write such slashes as %2F ("a%2F%2Fb"). In JSON, a key
that is not UTF-8 comes percent-encoded with "key_escaped":true (a page's next with
"next_escaped":true), ready to put in a URL as it is.

An event stream resumes after the position in Last-Event-ID (what a browser's EventSource
sends when it reconnects) or ?from=EPOCH:SEQ (a bare SEQ: of the current epoch), and
delivers every later change exactly once; history that cannot be delivered any more arrives
as an "event: reset". Each stream begins with an
"event: ready" whose id is where it starts; while Redis is unreachable a stream answers 200
and waits for it. Errors are JSON {"error":"…"}: 400, 401, 403 (see below), 404, 408 (a body
slower than --body-timeout), 409 (a name that holds the other kind: a channel where a map is
served, or the reverse), 412, 413 (body over 1 MiB), 414 (key over 1 KiB), 503 (a replica
still loading, Redis unreachable, a write Redis acknowledged and then lost: write again).
A request line Go's HTTP server cannot parse (a bad percent-encoding) gets its plain-text 400.

Security. The node listens on loopback by default; a --listen on another address needs
--token (or $` + envToken + `), or --insecure-no-token to serve without one. With a token every
request but /healthz and the dashboard's files needs "Authorization: Bearer TOKEN"; the
event streams also accept ?token=TOKEN, since browsers cannot send headers there. The
dashboard takes ?token= once: open http://ADDRESS/?token=TOKEN. Whatever the token:
  - the Host header must be localhost, 127.0.0.1 or [::1] with the node's port, the address
    a client connected to, or a name given with --allowed-host (DNS rebinding): else 403;
  - a write from a web page of another origin answers 403, unless --allowed-origin names
    it (its CORS preflights are answered; no other origin's are);
  - without a token, a POST must have a Content-Type a page cannot send without asking
    first (application/octet-stream, application/json…; not text/plain, a form or none);
  - headers must arrive within 10s, a body within --body-timeout.

Every node records itself in Redis (id, address, version, per map its seq, digest and lag)
with a heartbeat every --ttl/5; "redisync status" prints the registry. A node that stops
heartbeating is shown late, then, once its record has expired (--ttl), gone for --gone-after. When Redis cannot be reached at start, serve retries
for up to --timeout, then gives up.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if token == "" {
				token = os.Getenv(envToken)
			}
			if ttl < 50*time.Millisecond {
				return fmt.Errorf("--ttl %v: want at least 50ms", ttl)
			}
			if bodyTimeout <= 0 {
				return fmt.Errorf("--body-timeout %v: want a positive duration", bodyTimeout)
			}
			cfg := node.Config{
				Maps: maps, Channels: chans, ID: id, Token: token,
				AllowedHosts: allowedHosts, AllowedOrigins: allowedOrigins, BodyTimeout: bodyTimeout,
				Heartbeat: ttl / 5, TTL: ttl, Logger: g.logger(os.Stderr), Version: readVersion().String(),
				GoneAfter: goneAfter,
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			exposed := func(where string) error {
				if token != "" {
					return nil
				}
				if !insecure {
					return fmt.Errorf("--listen %s: %s is not a loopback address, and without --token (or $%s) anyone who reaches it "+
						"could read and write every map; give --token, or --insecure-no-token to serve without one", listen, where, envToken)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "redisync serve: warning: listening on %s without --token (--insecure-no-token): "+
					"anyone who reaches it can read and write the maps\n", where)
				return nil
			}
			if where, known, local := listenScope(listen); known && !local {
				if err := exposed(where); err != nil {
					return err // before listening
				}
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", listen, err)
			}
			defer ln.Close()
			if _, known, _ := listenScope(listen); !known && !loopback(ln.Addr()) {
				if err := exposed(ln.Addr().String()); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			_, cl, closeConn, err := g.openRetrying(ctx, channel.Config{}, cmd.ErrOrStderr(), "redisync serve", redisDown)
			if err != nil {
				return err
			}
			defer closeConn()
			cfg.Addr = ln.Addr().String()
			n, err := node.New(cl, cfg)
			if err != nil {
				return err
			}
			defer n.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "redisync serve: node %s listening on http://%s (maps: %s; channels: %s)\n",
				n.ID(), displayAddr(ln.Addr()), listOrNone(maps), listOrNone(chans))
			return n.Serve(ctx, ln)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&maps, "map", nil, "a replicated map to serve (repeatable)")
	f.StringArrayVar(&chans, "channel", nil, "a channel to relay: publish with POST, follow with SSE (repeatable)")
	f.StringVar(&listen, "listen", node.DefaultListen, "address to listen on (host:port; port 0 picks a free one)")
	f.StringVar(&token, "token", "", "require this bearer token on every request but /healthz (default $"+envToken+")")
	f.BoolVar(&insecure, "insecure-no-token", false, "allow a non-loopback --listen without --token")
	f.StringArrayVar(&allowedHosts, "allowed-host", nil, "a name clients may use in the Host header besides localhost, 127.0.0.1 and [::1] on the node's port\n"+
		"and the address they connect to: NAME (any port), NAME:PORT, or * for any (repeatable)")
	f.StringArrayVar(&allowedOrigins, "allowed-origin", nil, "a web origin (https://app.example.com) whose pages may call the API: CORS and cross-origin writes (repeatable)")
	f.DurationVar(&bodyTimeout, "body-timeout", node.DefaultBodyTimeout, "how long a client may take to send a request body (408 and the connection closed beyond)")
	f.DurationVar(&goneAfter, "gone-after", node.DefaultGoneAfter, "how long /v1/nodes and the dashboard list a node whose registry record expired without it leaving, as gone (at most 24h)")
	f.StringVar(&id, "id", "", "the node's id in the registry (default: host name and a random suffix)")
	f.DurationVar(&ttl, "ttl", node.DefaultTTL, "how long the node stays in the registry after its last heartbeat (heartbeat: ttl/5)")
	return cmd
}

// redisDown reports whether err, a failure to open a Redis client, may pass with time for a
// daemon that waits for Redis: what redisStarting says, and also a connection cut, timed out
// or not resolvable.
func redisDown(err error) bool {
	var ne net.Error
	var re *rueidis.RedisError
	switch {
	case redisStarting(err):
		return true
	case errors.As(err, &re):
		return false
	}
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, context.DeadlineExceeded)
}

// listenScope says, when it can before listening, whether --listen binds to loopback only:
// known is false for a host name other than localhost (its addresses are known once bound).
// where describes the address for messages.
func listenScope(listen string) (where string, known, local bool) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return listen, false, false // net.Listen says what is wrong
	}
	switch ip := net.ParseIP(host); {
	case host == "":
		return "every address of this host", true, false
	case strings.EqualFold(host, "localhost"):
		return host, true, true
	case ip == nil:
		return host, false, false
	case ip.IsUnspecified():
		return host + " (every address of this host)", true, false
	default:
		return host, true, ip.IsLoopback()
	}
}

// loopback reports whether addr is a loopback address.
func loopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// displayAddr is addr as a client on this host reaches it: 127.0.0.1 for a listener on every
// address (which Go reports as [::]).
func displayAddr(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
	}
	return addr.String()
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/redisync/redisync/node"
)

// envToken is the environment variable serve reads the token from when --token is not given.
const envToken = "REDISYNC_TOKEN"

func newServeCmd(g *globals) *cobra.Command {
	var maps, chans []string
	var listen, token, id string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "serve --map NAME [--map NAME …] [--channel NAME …]",
		Short: "Serve replicated maps and channels over HTTP and SSE, with metrics and a live dashboard",
		Long: `Host a replica of every --map and relay every --channel, and serve them over HTTP until
interrupted (SIGINT or SIGTERM: open event streams are ended, the node leaves the registry).

  GET    /v1/maps/MAP/keys/KEY     the value as stored; its version in the ETag ("42")
  PUT    /v1/maps/MAP/keys/KEY     store the body; If-Match: "N" writes only if the key is at
                                   version N ("0": absent), If-None-Match: * only if absent;
                                   412 when the condition fails
  DELETE /v1/maps/MAP/keys/KEY     delete the key (same conditions)
  GET    /v1/maps/MAP              keys and versions, sorted: ?after=KEY&limit=N&prefix=P&values=true
  GET    /v1/maps/MAP/watch        Server-Sent Events: one event per write, id = its seq
  POST   /v1/channels/CHANNEL      publish the body; answers {"seq":N,"epoch":"…"}
  GET    /v1/channels/CHANNEL/events   Server-Sent Events: one event per message, id = its seq
  GET    /v1/nodes                 the registry: every live node, each map's agreement
  GET    /metrics  /healthz  /readyz  and the dashboard at /

An event stream resumes after the seq in Last-Event-ID (what a browser's EventSource sends
when it reconnects) or ?from=N, and delivers every later change exactly once; history that
cannot be delivered any more arrives as an "event: reset". Errors are JSON {"error":"…"}: 400,
401, 404, 412, 413 (body over 1 MiB), 414 (key over 1 KiB), 503 (a replica still loading).

The node listens on loopback by default. With --token (or $` + envToken + `) every request but
/healthz and the dashboard's files needs "Authorization: Bearer TOKEN"; the event streams also
accept ?token=TOKEN, since browsers cannot send headers there. The dashboard takes ?token=
once: open http://ADDRESS/?token=TOKEN.

Every node records itself in Redis (id, address, version, per map its seq, digest and lag)
with a heartbeat every --ttl/5; "redisync status" prints the registry. A node that dies
without leaving disappears after --ttl.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if token == "" {
				token = os.Getenv(envToken)
			}
			if ttl < 50*time.Millisecond {
				return fmt.Errorf("--ttl %v: want at least 50ms", ttl)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", listen, err)
			}
			defer ln.Close()
			if token == "" && !loopback(ln.Addr()) {
				fmt.Fprintf(cmd.ErrOrStderr(), "redisync serve: warning: listening on %s without --token: anyone who reaches it can read and write the maps\n", ln.Addr())
			}
			ctx := cmd.Context()
			octx, cancel := context.WithTimeout(ctx, g.timeout)
			_, cl, closeConn, err := g.open(octx)
			cancel()
			if err != nil {
				return err
			}
			defer closeConn()
			n, err := node.New(cl, node.Config{
				Maps: maps, Channels: chans, ID: id, Addr: ln.Addr().String(), Token: token,
				Heartbeat: ttl / 5, TTL: ttl, Logger: g.logger(os.Stderr),
			})
			if err != nil {
				return err
			}
			defer n.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "redisync serve: node %s listening on http://%s (maps: %s; channels: %s)\n",
				n.ID(), ln.Addr(), listOrNone(maps), listOrNone(chans))
			return n.Serve(ctx, ln)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&maps, "map", nil, "a replicated map to serve (repeatable)")
	f.StringArrayVar(&chans, "channel", nil, "a channel to relay: publish with POST, follow with SSE (repeatable)")
	f.StringVar(&listen, "listen", node.DefaultListen, "address to listen on (host:port; port 0 picks a free one)")
	f.StringVar(&token, "token", "", "require this bearer token on every request but /healthz (default $"+envToken+")")
	f.StringVar(&id, "id", "", "the node's id in the registry (default: host name and a random suffix)")
	f.DurationVar(&ttl, "ttl", node.DefaultTTL, "how long the node stays in the registry after its last heartbeat (heartbeat: ttl/5)")
	return cmd
}

// loopback reports whether addr is a loopback address.
func loopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

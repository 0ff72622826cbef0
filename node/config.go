package node

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/redisync/redisync/replmap"
)

// Defaults for the zero fields of Config.
const (
	DefaultListen          = "127.0.0.1:7480"
	DefaultHeartbeat       = time.Second
	DefaultTTL             = 5 * time.Second
	DefaultKeepAlive       = 15 * time.Second
	DefaultWriteTimeout    = 10 * time.Second
	DefaultStreamTimeout   = 30 * time.Second
	DefaultShutdownTimeout = 5 * time.Second
	DefaultBodyTimeout     = 10 * time.Second
	DefaultHeaderTimeout   = 10 * time.Second
	DefaultMaxKeyBytes     = replmap.DefaultMaxKeyBytes
	DefaultMaxBodyBytes    = replmap.DefaultMaxValueBytes
	DefaultListLimit       = 100
	MaxListLimit           = 1000
)

// Config configures a Node. A zero field takes the default named in its comment.
type Config struct {
	// Maps are the names of the replicated maps the node hosts a replica of and serves.
	Maps []string
	// Channels are the names of the channels the node relays: publish over HTTP, events over SSE.
	Channels []string
	// ID names the node in the registry. Default: the host name and 6 random hex digits.
	ID string
	// Addr is the address the node advertises in the registry (where its HTTP API is);
	// informational. Default: none.
	Addr string
	// Version is the software version the node advertises. Default: the module version of
	// the running binary, or "dev".
	Version string
	// Token, when set, is required as "Authorization: Bearer <Token>" on every request but
	// /healthz and the dashboard's static files; SSE endpoints also accept it as ?token=.
	Token string
	// AllowedHosts are the names the node answers to in the Host header besides the defaults,
	// which are localhost, 127.0.0.1 and [::1] with the port the connection arrived on, and
	// the address it arrived on. An entry "name" allows that name on any port, "name:port"
	// on that port only; "*" allows any Host (no check). A request for another Host answers
	// 403: a web page whose name was made to resolve to this node's address (DNS rebinding)
	// cannot use it. /healthz is not checked. Default: none.
	AllowedHosts []string
	// AllowedOrigins are the web origins ("https://app.example.com", scheme://host[:port])
	// whose pages may call the API from another origin: CORS preflights are answered for
	// them only, their responses carry Access-Control-Allow-Origin, and their writes pass the
	// cross-origin check. Default: none (only same-origin pages, such as the dashboard).
	AllowedOrigins []string
	// Heartbeat is how often the node samples its replicas and Redis (metrics, lag, round
	// trip) and refreshes its registry record. Default DefaultHeartbeat.
	Heartbeat time.Duration
	// TTL is how long a registry record outlives the last heartbeat that wrote it: a node that
	// dies without deregistering disappears after it. At least twice Heartbeat.
	// Default DefaultTTL.
	TTL time.Duration
	// GoneAfter is how long /v1/nodes and the dashboard still list a node whose registry record
	// expired without it leaving, as gone (ReadOptions.GoneAfter). Default DefaultGoneAfter.
	GoneAfter time.Duration
	// KeepAlive is the interval of the comments an SSE stream sends while it has no event,
	// so that proxies and clients see it alive. Default DefaultKeepAlive.
	KeepAlive time.Duration
	// WriteTimeout bounds a write request (PUT, DELETE, POST), its retries across Redis
	// trouble included; past it the answer is 503. Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// StreamTimeout bounds each write to an SSE client: a client that takes longer to accept
	// the bytes is cut off (it resumes with Last-Event-ID). Default DefaultStreamTimeout.
	StreamTimeout time.Duration
	// BodyTimeout bounds reading a request's body, from when the request is routed: a client
	// that has not sent all of it by then gets 408 and its connection is closed. Event streams
	// take no body and have no such bound. Default DefaultBodyTimeout.
	BodyTimeout time.Duration
	// HeaderTimeout bounds reading a request's headers (http.Server.ReadHeaderTimeout) in
	// Serve; a server of your own around Handler sets its own. Default DefaultHeaderTimeout.
	HeaderTimeout time.Duration
	// MaxKeyBytes bounds a key (414 beyond). Default DefaultMaxKeyBytes.
	MaxKeyBytes int
	// MaxBodyBytes bounds a request body: a value or a channel message (413 beyond); never
	// more than the channel client's MaxMessageBytes for messages. Default DefaultMaxBodyBytes.
	MaxBodyBytes int
	// Logger receives warnings (a failed heartbeat, a replica that disagrees with Redis).
	// Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.ID == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "node"
		}
		var b [3]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		c.ID = host + "-" + hex.EncodeToString(b[:])
	}
	if c.Version == "" {
		c.Version = "dev"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			c.Version = bi.Main.Version
		}
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.StreamTimeout == 0 {
		c.StreamTimeout = DefaultStreamTimeout
	}
	if c.BodyTimeout == 0 {
		c.BodyTimeout = DefaultBodyTimeout
	}
	if c.HeaderTimeout == 0 {
		c.HeaderTimeout = DefaultHeaderTimeout
	}
	if c.MaxKeyBytes == 0 {
		c.MaxKeyBytes = DefaultMaxKeyBytes
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.GoneAfter == 0 {
		c.GoneAfter = DefaultGoneAfter
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports the first field of c that cannot work, once defaults are applied: what
// New would refuse, without a channel client.
func (c Config) Validate() error { return c.withDefaults().validate() }

// validate reports the first field that cannot work, after defaults are applied.
func (c Config) validate() error {
	if c.GoneAfter < 0 || c.GoneAfter > MaxGoneAfter {
		return fmt.Errorf("node: GoneAfter %v: want from 0 to %v", c.GoneAfter, MaxGoneAfter)
	}
	seen := map[string]string{}
	for _, list := range []struct {
		what  string
		names []string
	}{{"map", c.Maps}, {"channel", c.Channels}} {
		for _, name := range list.names {
			if name == "" {
				return fmt.Errorf("node: empty %s name", list.what)
			}
			if prev, dup := seen[name]; dup {
				// A map is a channel of the same name: one name cannot be served as both.
				return fmt.Errorf("node: %q is named twice (as a %s and as a %s)", name, prev, list.what)
			}
			seen[name] = list.what
		}
	}
	switch {
	case strings.ContainsAny(c.ID, " \t\r\n{}"):
		return fmt.Errorf("node: ID %q holds a space or a brace", c.ID)
	case c.Heartbeat < time.Millisecond:
		return fmt.Errorf("node: Heartbeat %v is below one millisecond", c.Heartbeat)
	case c.TTL < 2*c.Heartbeat:
		return fmt.Errorf("node: TTL %v is below twice the Heartbeat %v", c.TTL, c.Heartbeat)
	case c.KeepAlive <= 0:
		return fmt.Errorf("node: KeepAlive %v is not positive", c.KeepAlive)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("node: WriteTimeout %v is not positive", c.WriteTimeout)
	case c.StreamTimeout <= 0:
		return fmt.Errorf("node: StreamTimeout %v is not positive", c.StreamTimeout)
	case c.BodyTimeout <= 0:
		return fmt.Errorf("node: BodyTimeout %v is not positive", c.BodyTimeout)
	case c.HeaderTimeout <= 0:
		return fmt.Errorf("node: HeaderTimeout %v is not positive", c.HeaderTimeout)
	case c.MaxKeyBytes < 1:
		return fmt.Errorf("node: MaxKeyBytes %d is below 1", c.MaxKeyBytes)
	case c.MaxBodyBytes < 1:
		return fmt.Errorf("node: MaxBodyBytes %d is below 1", c.MaxBodyBytes)
	}
	for _, h := range c.AllowedHosts {
		if _, err := parseHostEntry(h); err != nil {
			return err
		}
	}
	for _, o := range c.AllowedOrigins {
		if _, err := parseOrigin(o); err != nil {
			return err
		}
	}
	return nil
}

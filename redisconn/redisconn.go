// Package redisconn opens Redis clients from a URL, with errors that name the address and the
// cause in one line.
package redisconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/rueidis"
)

// Defaults for the zero fields of Options.
const (
	DefaultURL     = "redis://127.0.0.1:6379"
	DefaultTimeout = 5 * time.Second
)

// EnvURL is the environment variable read by URLFromEnv.
const EnvURL = "REDIS_URL"

// Options says how to reach Redis.
type Options struct {
	// URL is redis://[user:password@]host:port[/db], rediss:// for TLS, or unix:///path.
	// A Sentinel deployment is named with ?master_set=NAME and its sentinels as
	// ?addr=host:port&addr=…. Default DefaultURL.
	URL string
	// Timeout bounds connecting, and each later read or write that gets no answer (the
	// connection is then closed and reopened). Default DefaultTimeout.
	Timeout time.Duration
}

// URLFromEnv returns $REDIS_URL, or DefaultURL when it is unset.
func URLFromEnv() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

// Error is a failure to open a client: Addr names what was reached for (the URL when it
// did not parse) and Err the cause.
type Error struct {
	Addr string
	Err  error
}

func (e *Error) Error() string { return "redis " + e.Addr + ": " + explain(e.Err) }

func (e *Error) Unwrap() error { return e.Err }

// Open connects to Redis and checks that it answers. The caller closes the client.
func Open(ctx context.Context, o Options) (rueidis.Client, error) {
	if o.URL == "" {
		o.URL = DefaultURL
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	opt, err := rueidis.ParseURL(o.URL)
	if err != nil {
		var ue *url.Error // repeats the whole URL, password included
		if errors.As(err, &ue) {
			ue.URL = redact(ue.URL)
		}
		return nil, &Error{Addr: fmt.Sprintf("URL %q", redact(o.URL)), Err: err}
	}
	opt.DisableCache = true
	opt.ClientSetInfo = rueidis.DisableClientSetInfo
	opt.Dialer.Timeout = o.Timeout
	opt.ConnWriteTimeout = o.Timeout
	guard := newDialGuard(opt.DialCtxFn)
	opt.DialCtxFn = guard.dial
	addr := strings.Join(opt.InitAddress, ",")
	if addr == "" {
		addr = fmt.Sprintf("URL %q", redact(o.URL))
	}

	type result struct {
		c   rueidis.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := rueidis.NewClient(opt)
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, o.Timeout)
			err = c.Do(pctx, c.B().Ping().Build()).Error()
			cancel()
			if err != nil {
				c.Close()
				c = nil
			}
		}
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			guard.abort()
			return nil, &Error{Addr: addr, Err: r.err}
		}
		guard.release()
		return r.c, nil
	case <-ctx.Done():
		// Closing the connections fails the handshake under way at once, so the goroutine
		// ends promptly and nothing outlives Open.
		guard.abort()
		if r := <-done; r.c != nil {
			r.c.Close()
		}
		return nil, &Error{Addr: addr, Err: ctx.Err()}
	}
}

// dialGuard ties the connections dialed while Open waits to Open: abort cancels the dials
// under way and closes every connection made, release hands them to the client for good.
type dialGuard struct {
	inner   func(context.Context, string, *net.Dialer, *tls.Config) (net.Conn, error) // the URL's own dialer (unix://), or nil
	aborted context.Context                                                           // done once abort is called
	cancel  context.CancelFunc

	mu       sync.Mutex // guards conns and released
	conns    []net.Conn // dialed before release or abort
	released bool
}

func newDialGuard(inner func(context.Context, string, *net.Dialer, *tls.Config) (net.Conn, error)) *dialGuard {
	aborted, cancel := context.WithCancel(context.Background())
	return &dialGuard{inner: inner, aborted: aborted, cancel: cancel}
}

// dial is the client's DialCtxFn.
func (g *dialGuard) dial(ctx context.Context, dst string, d *net.Dialer, tc *tls.Config) (net.Conn, error) {
	g.mu.Lock()
	guarded := !g.released
	g.mu.Unlock()
	if guarded {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(g.aborted, cancel)()
	}
	var conn net.Conn
	var err error
	switch {
	case g.inner != nil:
		conn, err = g.inner(ctx, dst, d, tc)
	case tc != nil:
		conn, err = (&tls.Dialer{NetDialer: d, Config: tc}).DialContext(ctx, "tcp", dst)
	default:
		conn, err = d.DialContext(ctx, "tcp", dst)
	}
	if err != nil || !guarded {
		return conn, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.released:
	case g.aborted.Err() != nil:
		conn.Close()
		return nil, g.aborted.Err()
	default:
		g.conns = append(g.conns, conn)
	}
	return conn, nil
}

// release stops guarding: the client owns its connections from now on.
func (g *dialGuard) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.released, g.conns = true, nil
}

// abort cancels the dials under way and closes the connections dialed so far.
func (g *dialGuard) abort() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cancel()
	for _, c := range g.conns {
		c.Close()
	}
	g.conns = nil
}

// explain turns the usual causes into words a user can act on, keeping Redis's own text.
func explain(err error) string {
	msg := err.Error()
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (is redis-server running on that address?)"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "no answer in time (" + msg + ")"
	case strings.HasPrefix(msg, "WRONGPASS"), strings.HasPrefix(msg, "NOAUTH"),
		strings.Contains(msg, "AUTH") && strings.Contains(msg, "password"):
		return "authentication failed: " + msg
	case strings.HasPrefix(msg, "NOPERM"):
		return "permission denied by the server's ACL: " + msg
	}
	return msg
}

// redact hides a password in a URL for messages.
func redact(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if ok {
		scheme += "://"
	} else {
		scheme, rest = "", u // no scheme: still hide "user:password@"
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return u
	}
	creds := rest[:at]
	if user, _, hasPass := strings.Cut(creds, ":"); hasPass {
		return scheme + user + ":xxxxx@" + rest[at+1:]
	}
	return u
}

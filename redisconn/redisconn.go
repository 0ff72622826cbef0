// Package redisconn opens Redis clients from a URL, with errors that name the address and the
// cause in one line.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
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
		return nil, &Error{Addr: fmt.Sprintf("URL %q", redact(o.URL)), Err: err}
	}
	opt.DisableCache = true
	opt.ClientSetInfo = rueidis.DisableClientSetInfo
	opt.Dialer.Timeout = o.Timeout
	opt.ConnWriteTimeout = o.Timeout
	addr := strings.Join(opt.InitAddress, ",")

	type result struct {
		c   rueidis.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := rueidis.NewClient(opt)
		if err == nil {
			pctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
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
			return nil, &Error{Addr: addr, Err: r.err}
		}
		return r.c, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, &Error{Addr: addr, Err: ctx.Err()}
	}
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
	if !ok {
		return u
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return u
	}
	creds := rest[:at]
	if user, _, hasPass := strings.Cut(creds, ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + rest[at+1:]
	}
	return u
}

package redisconn

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
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

// Options says how to reach Redis. Each field but URL and Timeout has a URL query
// parameter of the same meaning, so that the whole connection fits in $REDIS_URL; a field
// that is set wins over its parameter (a command-line flag over the environment).
type Options struct {
	// URL is redis://[[user]:password@]host:port[/db], rediss://… for TLS, or
	// unix://[[user]:password@]/path/to/socket[?db=N]. Its query parameters:
	//
	//   - addr=host:port, repeated: more addresses. Several addresses are the seeds of a
	//     Redis Cluster, or with master_set the sentinels.
	//   - master_set=NAME: the host and the addr parameters are sentinels, and the client
	//     follows the master they name as NAME across failovers.
	//   - sentinel_user=USER, sentinel_password=PASSWORD: the sentinels' own credentials
	//     (SentinelUser, SentinelPassword); the URL's user and password are those of the
	//     master.
	//   - tls_ca=FILE: PEM certificates of the CA that signed the server's certificate,
	//     instead of the system's (CAFile).
	//   - tls_cert=FILE, tls_key=FILE: a PEM client certificate and its private key, for a
	//     server that asks for one (tls-auth-clients yes) (CertFile, KeyFile).
	//   - tls_server_name=NAME: the name the server's certificate must be valid for;
	//     default the URL's host (ServerName). It is checked for every server the client
	//     reaches: the sentinels and the masters they name, the nodes of a cluster.
	//   - allow_replica=true: AllowReplica.
	//   - skip_verify=true: accept any server certificate (tests only).
	//   - db=N, protocol=2, client_name=NAME, max_retries=0: as rueidis.ParseURL reads
	//     them; dial_timeout, write_timeout and client_cache are accepted and overridden
	//     by Timeout and a disabled client-side cache.
	//
	// The tls_ parameters need rediss://; with master_set, rediss:// means TLS to the
	// sentinels too. Any other parameter is an error. Default DefaultURL.
	URL string
	// Timeout bounds connecting, and each later read or write that gets no answer (the
	// connection is then closed and reopened). Default DefaultTimeout.
	Timeout time.Duration

	// CAFile is a PEM file of the CA certificates that the server's certificate must be
	// signed by, instead of the system's roots. Default: the tls_ca parameter.
	CAFile string
	// CertFile and KeyFile are PEM files of a client certificate and its private key,
	// shown to a server that asks for one; one needs the other. Default: the tls_cert and
	// tls_key parameters.
	CertFile, KeyFile string
	// ServerName is the name the certificate of every server reached must be valid for.
	// Default: the tls_server_name parameter, else the URL's host.
	ServerName string

	// SentinelUser and SentinelPassword authenticate to the sentinels (their requirepass,
	// or an ACL user of theirs), apart from the master's credentials in the URL. Default:
	// the sentinel_user and sentinel_password parameters.
	SentinelUser, SentinelPassword string

	// AllowReplica lets Open connect to a replica, for a client that only reads. By
	// default Open refuses a URL that names a replica at once, since every write would
	// fail with READONLY; a cluster or a Sentinel deployment always sends writes to a
	// master whatever the URL names. Default: the allow_replica parameter, else false.
	AllowReplica bool
}

// URLFromEnv returns $REDIS_URL, or DefaultURL when it is unset.
func URLFromEnv() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

// Open connects to Redis and checks that it answers, and that it is what the URL means:
// a master (unless AllowReplica), a cluster the client can route over, or the master that
// sentinels name. It fails with an *Error when that is not so, when ctx is done, or once
// Timeout has passed (up to half a second later, to let a step that timed out say which it
// was). The caller closes the client.
func Open(ctx context.Context, o Options) (rueidis.Client, error) {
	if o.URL == "" {
		o.URL = DefaultURL
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	opt, err := clientOption(o)
	addr := strings.Join(opt.InitAddress, ",")
	if addr == "" {
		addr = fmt.Sprintf("URL %q", redact(o.URL))
	}
	if err == nil {
		o.AllowReplica, err = allowReplica(o)
	}
	if err != nil {
		return nil, &Error{Addr: addr, Err: err}
	}
	guard := newDialGuard(opt.DialCtxFn)
	opt.DialCtxFn = guard.dial

	type result struct {
		c   rueidis.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		pctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		c, err := rueidis.NewClient(opt)
		if err == nil {
			err = Ping(pctx, c)
			if err == nil {
				err = checkServer(pctx, c, o)
			}
			if err != nil {
				c.Close()
				c = nil
			}
		}
		if err != nil {
			err = classify(pctx, opt, err)
		}
		done <- result{c, err}
	}()
	// Each dial, handshake and command gives up after Timeout on its own, with its own
	// error; this bounds their sum (rueidis tries the sentinels one after the other).
	backstop := time.NewTimer(o.Timeout + min(o.Timeout/2, backstopGrace))
	defer backstop.Stop()
	var cause error
	select {
	case r := <-done:
		if r.err != nil {
			guard.abort()
			return nil, &Error{Addr: addr, Err: r.err}
		}
		guard.release()
		return r.c, nil
	case <-ctx.Done():
		cause = ctx.Err()
	case <-backstop.C:
		cause = context.DeadlineExceeded
	}
	// Closing the connections fails the handshake under way at once, so the goroutine ends
	// promptly and nothing outlives Open.
	guard.abort()
	if r := <-done; r.c != nil {
		r.c.Close()
	}
	return nil, &Error{Addr: addr, Err: cause}
}

// backstopGrace is how much longer than Timeout Open waits at most for a step that has a
// Timeout of its own to report its own error.
const backstopGrace = 500 * time.Millisecond

// classify wraps the causes that need a hint the server's text does not give: missing
// credentials (of the server or of the sentinels), and a connection closed at once (plain
// RESP to a TLS port, or TLS without the client certificate the server asks for).
func classify(ctx context.Context, opt rueidis.ClientOption, err error) error {
	msg := err.Error()
	switch {
	case opt.Sentinel.MasterSet != "" && isAuthError(msg):
		if serr := sentinelAuth(ctx, opt); serr != nil && isAuthError(serr.Error()) {
			return &sentinelAuthError{err: serr, password: opt.Sentinel.Password != ""}
		}
	case isClosed(err) || strings.Contains(msg, "tls: certificate required"):
		// TLS 1.3 ends the handshake before the server checks the client's certificate: its
		// refusal is an alert or a reset on the first command.
		isTLS := opt.TLSConfig != nil
		return &closedError{err: err, tls: isTLS, clientCert: isTLS && len(opt.TLSConfig.Certificates) > 0}
	}
	if strings.HasPrefix(msg, "NOAUTH") && opt.Password == "" {
		return &noPasswordError{err}
	}
	return err
}

// sentinelAuth connects to the first sentinel alone with the sentinels' credentials and
// returns the error, to tell whether they or the master refused the client.
func sentinelAuth(ctx context.Context, opt rueidis.ClientOption) error {
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:       opt.InitAddress[:1],
		Username:          opt.Sentinel.Username,
		Password:          opt.Sentinel.Password,
		TLSConfig:         opt.Sentinel.TLSConfig,
		Dialer:            opt.Sentinel.Dialer,
		DialCtxFn:         opt.DialCtxFn,
		DisableCache:      true,
		DisableRetry:      true,
		ForceSingleClient: true,
		ClientSetInfo:     rueidis.DisableClientSetInfo,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Do(ctx, c.B().Ping().Build()).Error()
}

// Ping checks that Redis answers. A cluster client sends a command without a key to any node
// it knows, the addresses of the URL included, and one of them may have failed (and been
// failed over): Redis answers if any node does.
func Ping(ctx context.Context, c rueidis.Client) error {
	err := c.Do(ctx, c.B().Ping().Build()).Error()
	if err == nil || !IsCluster(c) {
		return err
	}
	for _, n := range c.Nodes() {
		if n.Do(ctx, n.B().Ping().Build()).Error() == nil {
			return nil
		}
	}
	return err
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
		conn, err = dialTLS(ctx, dst, d, tc)
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

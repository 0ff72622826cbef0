package redisconn_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/redisync/redisync/internal/redistest"
	"github.com/redisync/redisync/redisconn"
)

// rueidisRefresh is rueidis's delayed topology refresh, scheduled when a connection fails and
// ended on its own within a second; TestOpenCancelled waits for it instead of ignoring it.
const rueidisRefresh = "github.com/redis/rueidis.(*call).DelayDo.func1"

// rueidisDrop is how a rueidis cluster client drops the connections to nodes that serve no
// slot (a replica given as a seed): it closes them 5 s later, even after Close.
const rueidisDrop = "github.com/redis/rueidis.(*clusterClient)._refresh.func2"

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction(rueidisRefresh), goleak.IgnoreAnyFunction(rueidisDrop))
}

// margin is how much longer than its Timeout a failing Open may take.
const margin = time.Second

// openErr runs Open with o, fails the test if it succeeds or outlives o.Timeout+margin, and
// checks that the error is a one-line *redisconn.Error. It returns the message.
func openErr(t *testing.T, ctx context.Context, o redisconn.Options) (string, error) {
	t.Helper()
	start := time.Now()
	c, err := redisconn.Open(ctx, o)
	elapsed := time.Since(start)
	if err == nil {
		c.Close()
		t.Fatalf("Open(%q) succeeded, want an error", o.URL)
	}
	if limit := o.Timeout + margin; elapsed > limit {
		t.Errorf("Open(%q) took %v, want under %v", o.URL, elapsed, limit)
	}
	var re *redisconn.Error
	if !errors.As(err, &re) {
		t.Errorf("Open(%q) error is %T (%v), want *redisconn.Error", o.URL, err, err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("Open(%q) error spans several lines: %q", o.URL, msg)
	}
	t.Logf("Open(%q): %s (%v)", o.URL, msg, elapsed.Round(time.Millisecond))
	return msg, err
}

// freeAddr returns a loopback address where nothing listens.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentListener accepts connections on a loopback port and never answers; everything is
// closed when the test ends. It starts one goroutine, ended by the cleanup.
type silentListener struct {
	ln   net.Listener
	done chan struct{}

	mu    sync.Mutex // guards conns
	conns []net.Conn
}

func newSilentListener(t *testing.T) *silentListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentListener{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-s.done
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			c.Close()
		}
	})
	return s
}

func (s *silentListener) addr() string { return s.ln.Addr().String() }

// accepted returns the connections accepted so far.
func (s *silentListener) accepted() []net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Conn(nil), s.conns...)
}

func TestOpenBadURL(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		want      string // in the message
	}{
		{"scheme", "http://x", `URL "http://x"`},
		{"port", "redis://host:notaport", `URL "redis://host:notaport"`},
		{"port with password", "redis://u:secret@host:notaport", `URL "redis://u:xxxxx@host:notaport"`},
		{"escape with password", "redis://u:sec%zzret@127.0.0.1:1", `URL "redis://u:xxxxx@127.0.0.1:1"`},
		{"no scheme with password", "u:secret@127.0.0.1:1", `no scheme: write redis://u:xxxxx@127.0.0.1:1`},
		{"host:port", "127.0.0.1:6379", `URL "127.0.0.1:6379": no scheme: write redis://127.0.0.1:6379 (rediss:// for TLS`},
		{"name:port", "localhost:6379", `no scheme: write redis://localhost:6379`},
		{"db", "redis://u:secret@127.0.0.1:1/notadb", "notadb"},
		{"unknown parameter", "redis://127.0.0.1:1?tls_cafile=x&db=1&Addr=y", "unknown URL parameter Addr, tls_cafile"},
		{"sentinel password", "redis://host:notaport?master_set=m&sentinel_password=secret&addr=h:1", `sentinel_password=xxxxx&addr=h:1`},
		{"sentinel password without master_set", "redis://127.0.0.1:1?sentinel_password=secret", "sentinel credentials need ?master_set=NAME"},
		{"allow_replica", "redis://127.0.0.1:1?allow_replica=perhaps", `allow_replica="perhaps": want true or false`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, _ := openErr(t, context.Background(), redisconn.Options{URL: tc.url, Timeout: time.Second})
			if !strings.Contains(msg, tc.want) {
				t.Errorf("message %q does not contain %q", msg, tc.want)
			}
			if strings.Contains(msg, "secret") || strings.Contains(msg, "sec%zzret") {
				t.Errorf("message %q shows the password", msg)
			}
		})
	}
}

func TestOpenRefused(t *testing.T) {
	addr := freeAddr(t)
	for _, url := range []string{"redis://" + addr, "redis://u:secret@" + addr} {
		msg, _ := openErr(t, context.Background(), redisconn.Options{URL: url, Timeout: 2 * time.Second})
		for _, want := range []string{"connection refused", addr} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q does not contain %q", msg, want)
			}
		}
		if strings.Contains(msg, "secret") {
			t.Errorf("message %q shows the password", msg)
		}
	}
}

func TestOpenAuth(t *testing.T) {
	// Set after the start: with --requirepass, redistest's own PING would be refused.
	srv := redistest.Start(t, redistest.Options{})
	if _, err := srv.Do("CONFIG", "SET", "requirepass", "pw"); err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	for _, tc := range []struct {
		name, url string
		want      string
	}{
		{"no password", "redis://" + addr, "the server wants a password and the URL gives none (redis://:PASSWORD@HOST:PORT"},
		{"wrong password", "redis://:nope@" + addr, "WRONGPASS"},
		{"wrong user", "redis://nobody:pw@" + addr, "WRONGPASS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, _ := openErr(t, context.Background(), redisconn.Options{URL: tc.url, Timeout: 2 * time.Second})
			for _, want := range []string{"authentication failed", addr, tc.want} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not contain %q", msg, want)
				}
			}
			if strings.Contains(msg, "nope") {
				t.Errorf("message %q shows the password", msg)
			}
		})
	}
	t.Run("right password", func(t *testing.T) {
		c, err := redisconn.Open(context.Background(), redisconn.Options{URL: "redis://:pw@" + addr, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got, err := c.Do(context.Background(), c.B().Ping().Build()).ToString(); err != nil || got != "PONG" {
			t.Fatalf("PING = %q, %v", got, err)
		}
	})
}

func TestOpenACL(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	addr := srv.Addr()
	// reader may read and PING, nothing else.
	if _, err := srv.Do("ACL", "SETUSER", "reader", "on", ">rpw", "~*", "+@read", "+ping", "+hello", "+auth"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Do("ACL", "SETUSER", "gone", "off", ">gpw", "~*", "+@all"); err != nil {
		t.Fatal(err)
	}

	t.Run("lacking a permission", func(t *testing.T) {
		// Open checks that Redis answers, not what the user may do: that is found out later.
		ctx := context.Background()
		c, err := redisconn.Open(ctx, redisconn.Options{URL: "redis://reader:rpw@" + addr, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatalf("Open as a user lacking SET: %v", err)
		}
		defer c.Close()
		err = c.Do(ctx, c.B().Set().Key("k").Value("v").Build()).Error()
		if err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Fatalf("SET as reader: err = %v, want NOPERM", err)
		}
	})
	t.Run("disabled user", func(t *testing.T) {
		msg, _ := openErr(t, context.Background(), redisconn.Options{URL: "redis://gone:gpw@" + addr, Timeout: 2 * time.Second})
		for _, want := range []string{"authentication failed", addr, "disabled"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q does not contain %q", msg, want)
			}
		}
		if strings.Contains(msg, "gpw") {
			t.Errorf("message %q shows the password", msg)
		}
	})
}

func TestOpenNoAnswer(t *testing.T) {
	sl := newSilentListener(t)
	msg, err := openErr(t, context.Background(), redisconn.Options{URL: "redis://" + sl.addr(), Timeout: 300 * time.Millisecond})
	for _, want := range []string{"no answer in time", sl.addr()} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not contain %q", msg, want)
		}
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
}

// An HTTP server where a Redis was expected: the error says the server does not speak the
// Redis protocol, not only rueidis's "unknown message type".
func TestOpenNotRedis(t *testing.T) {
	hs := httptest.NewServer(http.NotFoundHandler())
	defer hs.Close()
	addr := strings.TrimPrefix(hs.URL, "http://")
	msg, _ := openErr(t, context.Background(), redisconn.Options{URL: "redis://" + addr, Timeout: 2 * time.Second})
	for _, want := range []string{addr, "does not speak the Redis protocol"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not contain %q", msg, want)
		}
	}
}

func TestOpenCancelled(t *testing.T) {
	sl := newSilentListener(t)
	defer noGoroutineLeft(t, goleak.IgnoreCurrent())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(100*time.Millisecond, cancel)
	o := redisconn.Options{URL: "redis://" + sl.addr(), Timeout: 30 * time.Second}
	start := time.Now()
	c, err := redisconn.Open(ctx, o)
	elapsed := time.Since(start)
	if err == nil {
		c.Close()
		t.Fatal("Open succeeded against a server that never answers")
	}
	t.Logf("Open: %v (%v)", err, elapsed.Round(time.Millisecond))
	if elapsed > margin {
		t.Errorf("Open returned %v after it was called, want within %v of the cancel at 100ms", elapsed, margin)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
	var re *redisconn.Error
	if !errors.As(err, &re) || !strings.Contains(err.Error(), sl.addr()) {
		t.Errorf("error %v is not a *redisconn.Error naming %s", err, sl.addr())
	}
	// The connection Open made must be closed: the silent server sees EOF.
	conns := sl.accepted()
	if len(conns) == 0 {
		t.Fatal("Open never connected to the listener")
	}
	for _, conn := range conns {
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 4096)
		for {
			if _, err := conn.Read(buf); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Errorf("connection from %v still open 2s after Open returned", conn.RemoteAddr())
				}
				break
			}
		}
	}
}

// noGoroutineLeft fails the test if goroutines other than those opts ignore are still running
// after leakGrace. rueidis may keep one for up to a second after a failed connection: it
// schedules a topology refresh (a cluster probe) at a random delay below one second.
func noGoroutineLeft(t *testing.T, opts ...goleak.Option) {
	t.Helper()
	const leakGrace = 3 * time.Second
	start := time.Now()
	for {
		err := goleak.Find(opts...)
		if err == nil {
			t.Logf("no goroutine left %v after Open returned", time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > leakGrace {
			t.Errorf("goroutines left %v after Open returned: %v", leakGrace, err)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestURLFromEnv(t *testing.T) {
	const custom = "redis://127.0.0.1:7777/2"
	t.Setenv(redisconn.EnvURL, custom)
	if got := redisconn.URLFromEnv(); got != custom {
		t.Errorf("with %s=%q: URLFromEnv() = %q", redisconn.EnvURL, custom, got)
	}
	t.Setenv(redisconn.EnvURL, "") // restores the variable when the test ends
	if got := redisconn.URLFromEnv(); got != redisconn.DefaultURL {
		t.Errorf("with %s empty: URLFromEnv() = %q, want %q", redisconn.EnvURL, got, redisconn.DefaultURL)
	}
	if err := os.Unsetenv(redisconn.EnvURL); err != nil {
		t.Fatal(err)
	}
	if got := redisconn.URLFromEnv(); got != redisconn.DefaultURL {
		t.Errorf("with %s unset: URLFromEnv() = %q, want %q", redisconn.EnvURL, got, redisconn.DefaultURL)
	}
}

func TestOpen(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	for _, url := range []string{srv.URL(), srv.URL() + "/3"} {
		c, err := redisconn.Open(ctx, redisconn.Options{URL: url})
		if err != nil {
			t.Fatalf("Open(%q): %v", url, err)
		}
		got, err := c.Do(ctx, c.B().Ping().Build()).ToString()
		if err != nil || got != "PONG" {
			t.Errorf("Open(%q): PING = %q, %v", url, got, err)
		}
		c.Close()
	}
}

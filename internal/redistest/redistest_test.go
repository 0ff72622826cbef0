package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// rueidis goroutines that outlive a client's Close, each for a bounded time:
const (
	// rueidisRefresh is the delayed topology refresh scheduled when a connection fails
	// (a node killed); it ends within a second.
	rueidisRefresh = "github.com/redis/rueidis.(*call).DelayDo.func1"
	// rueidisDrop closes the connections to nodes that serve no slot (the replicas among
	// Cluster.Addrs) 5 s after a refresh.
	rueidisDrop = "github.com/redis/rueidis.(*clusterClient)._refresh.func2"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction(rueidisRefresh), goleak.IgnoreAnyFunction(rueidisDrop))
}

func TestStartDo(t *testing.T) {
	s := Start(t, Options{})
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || strings.HasSuffix(s.Addr(), ":6379") {
		t.Fatalf("Addr() = %q", s.Addr())
	}
	if want := "redis://" + s.Addr(); s.URL() != want {
		t.Fatalf("URL() = %q, want %q", s.URL(), want)
	}
	mustDo(t, s, "OK", "SET", "k", "v")
	mustDo(t, s, "v", "GET", "k")
	mustDo(t, s, "2", "RPUSH", "l", "a", "b")
	mustDo(t, s, "[a b]", "LRANGE", "l", "0", "-1")
	if _, err := s.Do("GET", "missing"); !errors.Is(err, ErrNil) {
		t.Fatalf("GET missing: err = %v, want ErrNil", err)
	}
	if _, err := s.Do("NOSUCHCOMMAND"); err == nil || !strings.Contains(err.Error(), "ERR unknown command") {
		t.Fatalf("NOSUCHCOMMAND: err = %v, want unknown command", err)
	}
	mustDo(t, s, "[appendonly no]", "CONFIG", "GET", "appendonly")
}

func TestArgs(t *testing.T) {
	s := Start(t, Options{Args: []string{"--client-output-buffer-limit", "pubsub 64kb 0 0"}})
	got, err := s.Do("CONFIG", "GET", "client-output-buffer-limit")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "pubsub 65536 0 0") {
		t.Fatalf("client-output-buffer-limit = %q, want pubsub 65536 0 0", got)
	}
}

func TestBadArgsFail(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server; skipped with -short")
	}
	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(ft, Options{Args: []string{"--no-such-option", "1"}})
	}()
	<-done
	t.Logf("Start reported: %s", ft.msg)
	if !strings.Contains(ft.msg, "no-such-option") {
		t.Fatalf("Fatal message does not show the redis error: %q", ft.msg)
	}
}

func TestRestartAppendOnlyKeepsData(t *testing.T) {
	s := Start(t, Options{AppendOnly: true})
	mustDo(t, s, "OK", "SET", "k", "v")
	addr := s.Addr()
	s.Kill()
	if _, err := s.Do("PING"); err == nil {
		t.Fatal("PING answered after Kill")
	}
	s.Restart()
	if s.Addr() != addr {
		t.Fatalf("Addr() changed across Restart: %q -> %q", addr, s.Addr())
	}
	mustDo(t, s, "v", "GET", "k")
	// Restart of a running server kills it first.
	mustDo(t, s, "OK", "SET", "k2", "v2")
	s.Restart()
	mustDo(t, s, "v2", "GET", "k2")
}

func TestRestartWithoutPersistenceLosesData(t *testing.T) {
	s := Start(t, Options{})
	mustDo(t, s, "OK", "SET", "k", "v")
	s.Restart()
	if _, err := s.Do("GET", "k"); !errors.Is(err, ErrNil) {
		t.Fatalf("GET k after Restart: err = %v, want ErrNil", err)
	}
}

func TestStop(t *testing.T) {
	s := Start(t, Options{AppendOnly: true})
	mustDo(t, s, "OK", "SET", "k", "v")
	s.Stop()
	if _, err := s.Do("PING"); err == nil {
		t.Fatal("PING answered after Stop")
	}
	s.Stop() // no-op
	s.Kill() // no-op
	s.Restart()
	mustDo(t, s, "v", "GET", "k")
}

func TestKillReapsProcess(t *testing.T) {
	s := Start(t, Options{})
	pid := s.cmd.Process.Pid
	s.Kill()
	// A zombie still accepts signal 0; a reaped process does not exist.
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("kill(%d, 0) after Kill = %v, want ESRCH", pid, err)
	}
}

func TestCleanupKills(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server; skipped with -short")
	}
	var pid int
	t.Run("owner", func(t *testing.T) {
		pid = Start(t, Options{}).cmd.Process.Pid
	})
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("redis-server %d still exists after its test ended: %v", pid, err)
	}
}

func TestClientKillPubSub(t *testing.T) {
	s := Start(t, Options{})
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("SUBSCRIBE x\r\n")); err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	if got, err := readReply(r, 0); err != nil || got != "[subscribe x 1]" {
		t.Fatalf("SUBSCRIBE reply = %q, %v", got, err)
	}
	if n := s.ClientKill("normal"); n != 0 {
		t.Fatalf("ClientKill(normal) = %d, want 0", n)
	}
	if n := s.ClientKill("pubsub"); n != 1 {
		t.Fatalf("ClientKill(pubsub) = %d, want 1", n)
	}
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after ClientKill: err = %v, want EOF", err)
	}
}

func TestClient(t *testing.T) {
	s := Start(t, Options{})
	c := s.Client(t)
	ctx := context.Background()
	if err := c.Do(ctx, c.B().Set().Key("k").Value("v").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	mustDo(t, s, "v", "GET", "k")
}

// mustDo runs args on s and fails the test unless the reply is want.
func mustDo(t *testing.T, s *Server, want string, args ...string) {
	t.Helper()
	got, err := s.Do(args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	if got != want {
		t.Fatalf("%v = %q, want %q", args, got, want)
	}
}

// fatalRecorder records the message of Fatalf and ends the goroutine, so a
// test can check what Start reports without failing itself.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestStartRetriesBusyPort(t *testing.T) {
	// Occupy a port and make Restart try it: the launch must fail fast as
	// busy (not time out), and the message must say why.
	s := Start(t, Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s.Kill()
	err = s.launch(ln.Addr().(*net.TCPAddr).Port)
	if !errors.Is(err, errPortBusy) {
		t.Fatalf("launch on a busy port: err = %v, want errPortBusy", err)
	}
}

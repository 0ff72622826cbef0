package faultproxy

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestForward(t *testing.T) {
	p := newProxy(t, startEcho(t).addr)
	c := dial(t, p)
	roundTrip(t, c, "hello")
	roundTrip(t, c, "world")
	if n := p.Conns(); n != 1 {
		t.Fatalf("Conns() = %d, want 1", n)
	}
	c.Close()
	waitConns(t, p, 0)
}

func TestCut(t *testing.T) {
	echo := startEcho(t)
	p := newProxy(t, echo.addr)
	c1, c2 := dial(t, p), dial(t, p)
	roundTrip(t, c1, "a")
	roundTrip(t, c2, "b")
	p.Cut()
	expectClosed(t, c1)
	expectClosed(t, c2)
	if n := p.Conns(); n != 0 {
		t.Fatalf("Conns() after Cut = %d, want 0", n)
	}
	waitEchoConns(t, echo, 0) // the target side is closed too
	roundTrip(t, dial(t, p), "again")
}

func TestBlocked(t *testing.T) {
	p := newProxy(t, startEcho(t).addr)
	old := dial(t, p)
	roundTrip(t, old, "x")
	p.SetBlocked(true)
	expectClosed(t, old)
	expectClosed(t, dial(t, p))
	if n := p.Conns(); n != 0 {
		t.Fatalf("Conns() while blocked = %d, want 0", n)
	}
	p.SetBlocked(false)
	roundTrip(t, dial(t, p), "healed")
}

func TestStalledHoldsThenDelivers(t *testing.T) {
	p := newProxy(t, startEcho(t).addr)
	c := dial(t, p)
	roundTrip(t, c, "warm")
	p.SetStalled(true)
	for _, s := range []string{"one,", "two,", "three"} {
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 64)
	if n, err := c.Read(buf); !isTimeout(err) {
		t.Fatalf("read while stalled = %q, %v; want a timeout", buf[:n], err)
	}
	if n := p.Conns(); n != 1 {
		t.Fatalf("Conns() while stalled = %d, want 1", n)
	}
	p.SetStalled(false)
	expectRead(t, c, "one,two,three")
}

func TestStalledLargeInOrder(t *testing.T) {
	p := newProxy(t, startEcho(t).addr)
	c := dial(t, p)
	p.SetStalled(true)
	want := make([]byte, 1<<20)
	rand.Read(want)
	// Much more than the socket buffers hold: the writer blocks until resume.
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		werr <- err
	}()
	time.Sleep(100 * time.Millisecond)
	p.SetStalled(false)
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("bytes reordered or corrupted across the stall")
	}
}

func TestCutWhileStalled(t *testing.T) {
	p := newProxy(t, startEcho(t).addr)
	c := dial(t, p)
	roundTrip(t, c, "warm")
	p.SetStalled(true)
	c.Write([]byte("held"))
	time.Sleep(20 * time.Millisecond)
	p.Cut()
	expectClosed(t, c)
	p.SetStalled(false)
	roundTrip(t, dial(t, p), "fresh")
}

func TestLatency(t *testing.T) {
	p := newProxy(t, startEcho(t).addr)
	c := dial(t, p)
	roundTrip(t, c, "warm")
	const d = 100 * time.Millisecond
	p.SetLatency(d)
	start := time.Now()
	roundTrip(t, c, "slow")
	if rtt := time.Since(start); rtt < 2*d {
		t.Fatalf("round trip took %v, want at least %v (latency each way)", rtt, 2*d)
	}
	p.SetLatency(0)
	start = time.Now()
	roundTrip(t, c, "fast")
	if rtt := time.Since(start); rtt >= d {
		t.Fatalf("round trip without latency took %v", rtt)
	}
}

func TestTargetDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close()
	p := newProxy(t, target)
	expectClosed(t, dial(t, p))
	waitConns(t, p, 0)
}

func TestCloseLeavesNothing(t *testing.T) {
	defer goleak.VerifyNone(t)
	echo := startEcho(t)
	p, err := New(echo.addr)
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := dial(t, p), dial(t, p)
	roundTrip(t, c1, "a")
	p.SetStalled(true) // a copy goroutine parked at the gate
	c2.Write([]byte("held"))
	time.Sleep(20 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	expectClosed(t, c1)
	expectClosed(t, c2)
	if err := p.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	if n := p.Conns(); n != 0 {
		t.Fatalf("Conns() after Close = %d", n)
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("dial after Close succeeded")
	}
	echo.close()
}

func TestNewRejectsEmptyTarget(t *testing.T) {
	if _, err := New(""); err == nil {
		t.Fatal("New(\"\") succeeded")
	}
}

// newProxy returns a proxy to target closed at the end of the test.
func newProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return p
}

// dial connects to p; the connection is closed at the end of the test.
func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg on c and expects the echo back.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	expectRead(t, c, msg)
}

// expectRead reads exactly len(want) bytes from c and compares them.
func expectRead(t *testing.T, c net.Conn, want string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read %q: %v", want, err)
	}
	if string(got) != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// expectClosed expects the peer to close c within a few seconds.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil || isTimeout(err) {
		t.Fatalf("read = %d, %v; want the connection closed", n, err)
	}
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// waitConns waits until p.Conns() is want.
func waitConns(t *testing.T, p *Proxy, want int) {
	t.Helper()
	waitFor(t, func() int { return p.Conns() }, want)
}

// waitEchoConns waits until the echo server has want connections open.
func waitEchoConns(t *testing.T, e *echoServer, want int) {
	t.Helper()
	waitFor(t, e.open, want)
}

func waitFor(t *testing.T, get func() int, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for got := get(); got != want; got = get() {
		if time.Now().After(deadline) {
			t.Fatalf("count = %d, want %d", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// echoServer writes back every byte it reads, on each connection.
type echoServer struct {
	addr string
	ln   net.Listener
	wg   sync.WaitGroup
	once sync.Once

	mu     sync.Mutex // guards conns and closed
	conns  map[net.Conn]struct{}
	closed bool
}

// startEcho starts an echo server closed at the end of the test.
func startEcho(t *testing.T) *echoServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoServer{addr: ln.Addr().String(), ln: ln, conns: make(map[net.Conn]struct{})}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			if e.closed {
				e.mu.Unlock()
				c.Close()
				continue
			}
			e.conns[c] = struct{}{}
			e.mu.Unlock()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				io.Copy(c, c)
				c.Close()
				e.mu.Lock()
				delete(e.conns, c)
				e.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(e.close)
	return e
}

func (e *echoServer) open() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.conns)
}

func (e *echoServer) close() {
	e.once.Do(func() {
		e.ln.Close()
		e.mu.Lock()
		e.closed = true
		for c := range e.conns {
			c.Close()
		}
		e.mu.Unlock()
		e.wg.Wait()
	})
}

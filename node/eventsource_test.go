package node

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// eventSourceDir installs testdata/eventsource (the npm eventsource package, at the version
// its package-lock.json pins) into a directory of the test's own and returns it. The test
// skips under -short only: without Node.js or npm it fails, saying what to install.
func eventSourceDir(t *testing.T) (dir, nodeBin string) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Node.js, npm and the npm eventsource package: skipped under -short")
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("this test runs the npm eventsource package under Node.js and found no node on PATH: apt-get install -y nodejs npm")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatal("this test installs the npm eventsource package and found no npm on PATH: apt-get install -y npm")
	}
	dir = t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "client.mjs"} {
		b, err := os.ReadFile(filepath.Join("testdata", "eventsource", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci of testdata/eventsource (it needs the npm registry, or the package in npm's cache): %v\n%s", err, out)
	}
	return dir, nodeBin
}

// gate lets a test refuse connections to a handler for a while: a refused connection is
// closed before any answer, which an EventSource takes for a network error and retries.
type gate struct {
	next   http.Handler
	closed atomic.Bool
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.closed.Load() {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	g.next.ServeHTTP(w, r)
}

// esClient is client.mjs following one stream.
type esClient struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
	more  chan struct{} // signalled on every line
}

func startESClient(t *testing.T, dir, nodeBin, url string) *esClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, nodeBin, filepath.Join(dir, "client.mjs"), url)
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &esClient{t: t, more: make(chan struct{}, 1)}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			c.mu.Unlock()
			select {
			case c.more <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		stdin.Close() // the client closes its EventSource and exits
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cancel()
			<-done
		}
		cancel()
		<-read
		if s := stderr.String(); s != "" {
			t.Logf("client.mjs standard error:\n%s", s)
		}
	})
	return c
}

// wait returns the first line from index from on that starts with prefix, failing the test
// after limit.
func (c *esClient) wait(from int, prefix string, limit time.Duration) (line string, index int) {
	c.t.Helper()
	deadline := time.After(limit)
	for {
		c.mu.Lock()
		for i := from; i < len(c.lines); i++ {
			if strings.HasPrefix(c.lines[i], prefix) {
				line := c.lines[i]
				c.mu.Unlock()
				return line, i
			}
		}
		seen := strings.Join(c.lines, "\n")
		c.mu.Unlock()
		select {
		case <-c.more:
		case <-deadline:
			c.t.Fatalf("client.mjs printed no %q line within %v; it printed:\n%s", prefix, limit, seen)
		}
	}
}

// The npm eventsource package (4.x, the most used EventSource client outside browsers)
// follows a stream from now, is cut off before any event, a write happens while it cannot
// connect, and it reconnects: the write is delivered, because the first frame's id (that of
// the "ready" event, which has data) is what it resumes from.
func TestNodeEventSourceClient(t *testing.T) {
	dir, nodeBin := eventSourceDir(t)
	srv := startRedis(t)
	n := startNode(t, srv.URL(), newPrefix(), Config{Maps: []string{"m"}, Channels: []string{"c"}})
	n.waitReady(t)
	g := &gate{next: n.Handler()}
	front := httptest.NewServer(g)
	defer front.Close()

	for _, tc := range []struct {
		name, stream, method, write, body, want string
	}{
		{"map", "/v1/maps/m/watch", "PUT", "/v1/maps/m/keys/k", "written while cut off", `"key":"k","value":"written while cut off"`},
		{"channel", "/v1/channels/c/events", "POST", "/v1/channels/c", "published while cut off", `"data":"published while cut off"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startESClient(t, dir, nodeBin, front.URL+tc.stream)
			ready, _ := c.wait(0, "ready ", 30*time.Second)
			t.Logf("client.mjs: %s", ready)
			_, i := c.wait(0, "open", time.Second)

			g.closed.Store(true)
			front.CloseClientConnections()
			_, i = c.wait(i, "error", 10*time.Second)
			expect(t, tc.method, do(t, tc.method, n.url+tc.write, strings.NewReader(tc.body)), http.StatusOK)
			time.Sleep(1500 * time.Millisecond) // the client retries (retry: 1000) and is refused meanwhile
			g.closed.Store(false)

			got, _ := c.wait(i, "message ", 20*time.Second)
			if !strings.Contains(got, tc.want) {
				t.Fatalf("the first message after reconnecting is %q, want the write made while cut off (%s)", got, tc.want)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			for _, l := range c.lines {
				if l == "closed" {
					t.Errorf("the client gave up (closed): %q", c.lines)
				}
			}
		})
	}
}

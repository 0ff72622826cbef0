package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/faultproxy"
	"github.com/redisync/redisync/internal/redistest"
)

var listeningRE = regexp.MustCompile(`listening on (http://\S+)`)

// serveURL waits until a serve process says where it listens and returns that URL.
func serveURL(t *testing.T, p *proc) string {
	t.Helper()
	var url string
	waitFor(t, 30*time.Second, "redisync serve to listen", func() bool {
		if m := listeningRE.FindStringSubmatch(p.stdout.String()); m != nil {
			url = m[1]
			return true
		}
		select {
		case <-p.done:
			t.Fatalf("redisync serve exited: %v\nstderr:\n%s", p.err, p.stderr.String())
		default:
		}
		return false
	})
	return url
}

// call makes an HTTP request with an optional bearer token and returns the status and body.
func call(t *testing.T, method, url, body, token string) (int, string, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// statusJSON is the output of "redisync status --json".
type statusJSON struct {
	Nodes []struct {
		ID   string `json:"id"`
		Addr string `json:"addr"`
		Maps []struct {
			Name   string `json:"name"`
			Seq    uint64 `json:"seq"`
			Digest string `json:"digest"`
		} `json:"maps"`
	} `json:"nodes"`
	Maps []struct {
		Map   string `json:"map"`
		State string `json:"state"`
	} `json:"maps"`
}

func status(t *testing.T, common []string) statusJSON {
	t.Helper()
	out, errOut, code := run(t, nil, append([]string{"status", "--json"}, common...)...)
	if code != 0 {
		t.Fatalf("status --json: exit code %d\nstderr:\n%s", code, errOut)
	}
	var s statusJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("status --json printed %q: %v", out, err)
	}
	return s
}

func nodeIDs(s statusJSON) string {
	var ids []string
	for _, n := range s.Nodes {
		ids = append(ids, n.ID)
	}
	return strings.Join(ids, ",")
}

// Two "redisync serve" processes on one Redis: both in "redisync status", a PUT on one is
// read on the other and seen in an event stream of the other; one stopped by SIGTERM leaves
// the registry at once (ending its streams), one killed leaves it after --ttl.
func TestServeTwoNodes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	prefix := uniquePrefix(t)
	common := []string{"--redis", srv.URL(), "--prefix", prefix}
	t.Setenv("REDISYNC_TOKEN", "tok") // node-2 takes its token from the environment
	serve := func(id string, extra ...string) *proc {
		args := append([]string{"serve", "--map", "m", "--channel", "c", "--listen", "127.0.0.1:0", "--id", id, "--ttl", "1s"}, extra...)
		return startProc(t, nil, append(args, common...)...)
	}
	p1 := serve("node-1", "--token", "tok")
	p2 := serve("node-2")
	url1, url2 := serveURL(t, p1), serveURL(t, p2)

	waitFor(t, 20*time.Second, "both nodes in status --json", func() bool {
		s := status(t, common)
		return nodeIDs(s) == "node-1,node-2" && len(s.Maps) == 1 && s.Maps[0].State == "in sync"
	})
	s := status(t, common)
	if s.Nodes[0].Addr != strings.TrimPrefix(url1, "http://") || s.Nodes[1].Addr != strings.TrimPrefix(url2, "http://") {
		t.Errorf("registered addresses %q and %q, want %s and %s", s.Nodes[0].Addr, s.Nodes[1].Addr, url1, url2)
	}

	for _, url := range []string{url1, url2} {
		if code, body, _ := call(t, "GET", url+"/v1/maps/m", "", ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s/v1/maps/m without the token: %d %s, want 401", url, code, body)
		}
		if code, _, _ := call(t, "GET", url+"/healthz", "", ""); code != http.StatusOK {
			t.Errorf("GET %s/healthz: %d, want 200 without a token", url, code)
		}
	}

	// An event stream on node-2, open before the write on node-1.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url2+"/v1/maps/m/watch?token=tok", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("opening the stream on node-2: %v %v", resp, err)
	}
	var mu sync.Mutex
	var streamed strings.Builder
	streamEnded := make(chan struct{})
	go func() {
		defer close(streamEnded)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			mu.Lock()
			streamed.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
	}()
	waitFor(t, 10*time.Second, "the stream's first bytes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(streamed.String(), "retry:")
	})

	code, body, hdr := call(t, "PUT", url1+"/v1/maps/m/keys/greeting", "hello from node-1", "tok")
	if code != http.StatusOK || hdr.Get("ETag") == "" {
		t.Fatalf("PUT on node-1: %d %s (ETag %q)", code, body, hdr.Get("ETag"))
	}
	etag := hdr.Get("ETag")
	waitFor(t, 10*time.Second, "the value on node-2", func() bool {
		code, body, hdr := call(t, "GET", url2+"/v1/maps/m/keys/greeting", "", "tok")
		return code == http.StatusOK && body == "hello from node-1" && hdr.Get("ETag") == etag
	})
	waitFor(t, 10*time.Second, "the write in node-2's stream", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(streamed.String(), `"key":"greeting","value":"hello from node-1"`)
	})
	if code, body, _ := call(t, "PUT", url2+"/v1/maps/m/keys/greeting", "stale", "tok"+"x"); code != http.StatusUnauthorized {
		t.Errorf("PUT with a wrong token: %d %s", code, body)
	}

	out, errOut, code := run(t, nil, append([]string{"status"}, common...)...)
	t.Logf("status:\n%s", out)
	if code != 0 || !strings.Contains(out, "node-1") || !strings.Contains(out, "node-2") || !strings.Contains(out, "in sync") {
		t.Errorf("status: exit code %d, output lacks a node or \"in sync\"\nstderr:\n%s", code, errOut)
	}

	// SIGTERM: node-2 ends its stream, leaves the registry and exits 0.
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p2.wait(); code != 0 {
		t.Errorf("node-2 exited with code %d after SIGTERM\nstderr:\n%s", code, p2.stderr.String())
	}
	select {
	case <-streamEnded:
	case <-time.After(5 * time.Second):
		t.Error("node-2's event stream did not end on SIGTERM")
	}
	if ids := nodeIDs(status(t, common)); ids != "node-1" {
		t.Errorf("registry right after node-2's SIGTERM: %q, want node-1 only", ids)
	}

	// SIGKILL: node-1 cannot deregister; its record expires after --ttl.
	if err := p1.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p1.done
	killed := time.Now()
	waitFor(t, 10*time.Second, "node-1 to expire", func() bool { return nodeIDs(status(t, common)) == "" })
	t.Logf("node-1 left the registry %v after SIGKILL (--ttl 1s)", time.Since(killed).Round(time.Millisecond))
	out, _, _ = run(t, nil, append([]string{"status"}, common...)...)
	if !strings.Contains(out, "no node is registered") {
		t.Errorf("status with no node: %q", out)
	}
}

func TestServeBadFlags(t *testing.T) {
	url := "redis://" + freeAddr(t) // nothing listens: flags must fail before connecting
	for _, tc := range []struct {
		name string
		args []string
		want string // on standard error
	}{
		{"listen", []string{"serve", "--map", "m", "--listen", "256.0.0.1:x"}, "--listen"},
		{"ttl", []string{"serve", "--map", "m", "--ttl", "1ms"}, "--ttl"},
		{"args", []string{"serve", "m"}, "unknown command"},
		{"status args", []string{"status", "x"}, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(t, nil, append(tc.args, "--redis", url)...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit code %d, stderr %q; want a failure mentioning %q (stdout %q)", code, errOut, tc.want, out)
			}
		})
	}
}

// serveRequest makes a request to a serve process with the given Host (empty: the URL's)
// and headers (name, value pairs), and returns the status and body.
func serveRequest(t *testing.T, method, url, host, body string, headers ...string) (int, string, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// Redis down when serve starts: it waits for it, up to --timeout, and serves once it answers.
func TestServeWaitsForRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	proxy, err := faultproxy.New(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	proxy.SetBlocked(true) // connections accepted and closed at once: Redis is down
	p := startProc(t, nil, "serve", "--map", "m", "--listen", "127.0.0.1:0", "--ttl", "1s", "--timeout", "60s",
		"--redis", "redis://"+proxy.Addr(), "--prefix", uniquePrefix(t))
	line := p.waitLine(&p.stderr, "redisync serve: waiting for Redis", 20*time.Second)
	t.Logf("stderr: %s", line)
	if !strings.Contains(line, "--timeout 1m0s") {
		t.Errorf("the waiting line %q does not say for how long", line)
	}
	select {
	case <-p.done:
		t.Fatalf("serve exited while Redis was down: %v\nstderr:\n%s", p.err, p.stderr.String())
	case <-time.After(1500 * time.Millisecond):
	}
	proxy.SetBlocked(false)
	url := serveURL(t, p)
	waitFor(t, 20*time.Second, "readyz 200", func() bool {
		code, _, _ := call(t, "GET", url+"/readyz", "", "")
		return code == http.StatusOK
	})
	if code, body, _ := serveRequest(t, "PUT", url+"/v1/maps/m/keys/k", "", "v"); code != http.StatusOK {
		t.Fatalf("PUT: %d %s", code, body)
	}
}

// Redis never comes: serve gives up once --timeout has passed, saying so.
func TestServeGivesUpOnRedis(t *testing.T) {
	addr := freeAddr(t)
	p := startProc(t, nil, "serve", "--map", "m", "--listen", "127.0.0.1:0", "--timeout", "1500ms", "--redis", "redis://"+addr)
	code := p.waitWithin(15 * time.Second)
	took := time.Since(p.start)
	errOut := p.stderr.String()
	t.Logf("exit code %d after %v, stderr:\n%s", code, took.Round(time.Millisecond), errOut)
	if code != 1 || took < 1500*time.Millisecond {
		t.Errorf("exit code %d after %v, want 1 after --timeout 1.5s", code, took)
	}
	for _, want := range []string{"waiting for Redis", addr, "connection refused", "gave up after --timeout 1.5s"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not contain %q", want)
		}
	}
	if strings.Contains(p.stdout.String(), "listening on") {
		t.Errorf("stdout %q: it said it listened", p.stdout.String())
	}
}

// A --listen beyond loopback without a token refuses to start, before connecting to Redis;
// --insecure-no-token lets it, with a warning and an address a client here can use.
func TestServeNonLoopbackListen(t *testing.T) {
	nowhere := "redis://" + freeAddr(t) // must fail before connecting
	for _, listen := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		out, errOut, code := run(t, nil, "serve", "--map", "m", "--listen", listen, "--redis", nowhere, "--timeout", "20s")
		if code != 1 || !strings.Contains(errOut, "--insecure-no-token") || !strings.Contains(errOut, "--token") ||
			strings.Contains(errOut, "waiting for Redis") || strings.Contains(out, "listening") {
			t.Errorf("--listen %s without a token: exit code %d, stdout %q, stderr %q; want a refusal naming --token and --insecure-no-token, before Redis",
				listen, code, out, errOut)
		}
	}

	srv := redistest.Start(t, redistest.Options{})
	p := startProc(t, nil, "serve", "--map", "m", "--listen", "0.0.0.0:0", "--insecure-no-token", "--ttl", "1s",
		"--redis", srv.URL(), "--prefix", uniquePrefix(t))
	url := serveURL(t, p)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Errorf("listening URL %s, want one on 127.0.0.1 (a client here can use it)", url)
	}
	if !strings.Contains(p.stderr.String(), "warning") {
		t.Errorf("no warning on stderr: %q", p.stderr.String())
	}
	waitFor(t, 20*time.Second, "readyz 200", func() bool {
		code, _, _ := call(t, "GET", url+"/readyz", "", "")
		return code == http.StatusOK
	})
	if code, body, _ := serveRequest(t, "GET", url+"/v1/maps/m", "attacker.example", ""); code != http.StatusForbidden {
		t.Errorf("Host attacker.example: %d %s, want 403", code, body)
	}
}

// --allowed-host, --allowed-origin and --body-timeout reach the node.
func TestServeSecurityFlags(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	p := startProc(t, nil, "serve", "--map", "m", "--channel", "c", "--listen", "127.0.0.1:0", "--ttl", "1s",
		"--allowed-host", "sync.test", "--allowed-host", "other.test:8443", "--allowed-origin", "https://app.test",
		"--body-timeout", "300ms", "--redis", srv.URL(), "--prefix", uniquePrefix(t))
	url := serveURL(t, p)
	waitFor(t, 20*time.Second, "readyz 200", func() bool {
		code, _, _ := call(t, "GET", url+"/readyz", "", "")
		return code == http.StatusOK
	})
	for _, tc := range []struct {
		host string
		want int
	}{{"sync.test", 200}, {"other.test:8443", 200}, {"other.test:1", 403}, {"evil.test", 403}} {
		if code, body, _ := serveRequest(t, "GET", url+"/v1/maps/m", tc.host, ""); code != tc.want {
			t.Errorf("Host %s: %d %s, want %d", tc.host, code, body, tc.want)
		}
	}
	code, _, hdr := serveRequest(t, "OPTIONS", url+"/v1/channels/c", "", "", "Origin", "https://app.test", "Access-Control-Request-Method", "POST")
	if code != http.StatusNoContent || hdr.Get("Access-Control-Allow-Origin") != "https://app.test" {
		t.Errorf("preflight of the allowed origin: %d %v", code, hdr)
	}
	if code, body, _ := serveRequest(t, "OPTIONS", url+"/v1/channels/c", "", "", "Origin", "https://evil.test", "Access-Control-Request-Method", "POST"); code != http.StatusForbidden {
		t.Errorf("preflight of another origin: %d %s", code, body)
	}
	if code, body, _ := serveRequest(t, "POST", url+"/v1/channels/c", "", "x", "Content-Type", "text/plain"); code != http.StatusForbidden {
		t.Errorf("text/plain POST without a token: %d %s, want 403", code, body)
	}
	if code, body, _ := serveRequest(t, "POST", url+"/v1/channels/c", "", "x", "Content-Type", "application/json", "Origin", "https://app.test"); code != http.StatusOK {
		t.Errorf("POST from the allowed origin: %d %s, want 200", code, body)
	}
	// A body trickled slower than --body-timeout is cut.
	pr, pw := io.Pipe()
	go func() {
		for range 20 {
			if _, err := pw.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		pw.Close()
	}()
	defer pw.Close()
	req, _ := http.NewRequest("PUT", url+"/v1/maps/m/keys/slow", pr)
	begin := time.Now()
	resp, err := http.DefaultClient.Do(req)
	took := time.Since(begin)
	if err == nil {
		resp.Body.Close()
	}
	if err == nil && resp.StatusCode != http.StatusRequestTimeout || took > 1500*time.Millisecond {
		t.Errorf("trickled PUT: %v %v after %v, want 408 (or the connection cut) after about 300ms", resp, err, took)
	}
}

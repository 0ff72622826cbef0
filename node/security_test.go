package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The Host header must name the node: a page of a site whose name was made to resolve to the
// node's address (DNS rebinding) is refused, loopback names and the address itself are not.
func TestNodeHostCheck(t *testing.T) {
	srv := startRedis(t)
	n := startNode(t, srv.URL(), newPrefix(), Config{Maps: []string{"m"}, Channels: []string{"c"},
		AllowedHosts: []string{"sync.example", "other.example:8443"}})
	n.waitReady(t)
	port := strings.TrimPrefix(n.url[strings.LastIndex(n.url, ":"):], ":")
	octet := []string{"Content-Type", "application/octet-stream"}
	for _, tc := range []struct {
		host string
		want int
	}{
		{"attacker.example:" + port, http.StatusForbidden},
		{"attacker.example", http.StatusForbidden},
		{"localhost.attacker.example:" + port, http.StatusForbidden},
		{"127.0.0.1.nip.example:" + port, http.StatusForbidden},
		{"localhost:1", http.StatusForbidden}, // the defaults are on the node's own port
		{"localhost:" + port, http.StatusOK},
		{"LOCALHOST:" + port, http.StatusOK},
		{"localhost.:" + port, http.StatusOK},
		{"127.0.0.1:" + port, http.StatusOK},
		{"[::1]:" + port, http.StatusOK},
		{"sync.example", http.StatusOK},         // configured without a port: any port
		{"sync.example:" + port, http.StatusOK}, //
		{"other.example:8443", http.StatusOK},   // configured with its port
		{"other.example:" + port, http.StatusForbidden},
	} {
		for _, rq := range []struct {
			method, path string
			body         string
		}{
			{"GET", "/v1/maps/m", ""},
			{"GET", "/", ""},
			{"PUT", "/v1/maps/m/keys/k", "v"},
			{"POST", "/v1/channels/c", "hi"},
			{"GET", "/readyz", ""},
		} {
			var body io.Reader
			if rq.body != "" {
				body = strings.NewReader(rq.body)
			}
			r := request(t, rq.method, n.url+rq.path, tc.host, body, octet...)
			if r.code != tc.want {
				t.Errorf("%s %s with Host %s: status %d, want %d; body %.200q", rq.method, rq.path, tc.host, r.code, tc.want, r.body)
			}
			if r.code == http.StatusForbidden && !strings.Contains(r.errorText(), "--allowed-host") {
				t.Errorf("Host %s: error %q does not name --allowed-host", tc.host, r.errorText())
			}
		}
	}
	// /healthz answers whatever the Host (probes use addresses and names of their own).
	expect(t, "healthz", request(t, "GET", n.url+"/healthz", "attacker.example", nil), http.StatusOK)
	if v, _, err := n.maps["m"].m.Get("k"); err != nil || string(v) != "v" {
		t.Fatalf("k = %q, %v", v, err)
	}
}

// Without a token, a write from another origin is refused (403), whether the browser says
// so with Origin or with Sec-Fetch-Site, and so is a POST that any page could send without a
// preflight (text/plain, a form, no type). An allowed origin passes and gets its CORS
// preflight answered; others get none.
func TestNodeCrossOrigin(t *testing.T) {
	srv := startRedis(t)
	n := startNode(t, srv.URL(), newPrefix(), Config{Maps: []string{"m"}, Channels: []string{"c"},
		AllowedOrigins: []string{"https://app.example"}})
	n.waitReady(t)
	head := func() uint64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p, err := n.cl.Head(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		return p.Seq
	}
	post := func(headers ...string) reply {
		t.Helper()
		return request(t, "POST", n.url+"/v1/channels/c", "", strings.NewReader("forged"), headers...)
	}
	for _, tc := range []struct {
		name    string
		headers []string
	}{
		{"text/plain from a page", []string{"Content-Type", "text/plain;charset=UTF-8", "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}},
		{"JSON from another origin", []string{"Content-Type", "application/json", "Origin", "https://evil.example"}},
		{"Sec-Fetch-Site cross-site without Origin", []string{"Content-Type", "application/json", "Sec-Fetch-Site", "cross-site"}},
		{"same-site is another origin", []string{"Content-Type", "application/json", "Origin", "http://localhost:3000", "Sec-Fetch-Site", "same-site"}},
		{"text/plain without Origin", []string{"Content-Type", "text/plain"}},
		{"a form", []string{"Content-Type", "application/x-www-form-urlencoded"}},
		{"multipart", []string{"Content-Type", "multipart/form-data; boundary=x"}},
		{"no type", nil},
	} {
		r := post(tc.headers...)
		if r.code != http.StatusForbidden || r.errorText() == "" {
			t.Errorf("%s: status %d, want 403 with a reason; body %q", tc.name, r.code, r.body)
		}
		if r.hdr.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: Access-Control-Allow-Origin %q on a refusal", tc.name, r.hdr.Get("Access-Control-Allow-Origin"))
		}
	}
	for _, r := range []reply{
		request(t, "PUT", n.url+"/v1/maps/m/keys/k", "", strings.NewReader("x"), "Origin", "https://evil.example"),
		request(t, "DELETE", n.url+"/v1/maps/m/keys/k", "", nil, "Sec-Fetch-Site", "cross-site"),
	} {
		expect(t, "cross-origin PUT or DELETE", r, http.StatusForbidden)
	}
	if h := head(); h != 0 {
		t.Fatalf("the channel's head is %d after refused posts, want 0", h)
	}

	// Clients that are no page of another site.
	expect(t, "curl-like JSON", post("Content-Type", "application/json"), http.StatusOK)
	expect(t, "octet-stream", post("Content-Type", "application/octet-stream"), http.StatusOK)
	expect(t, "same origin", post("Content-Type", "application/json", "Origin", n.url, "Sec-Fetch-Site", "same-origin"), http.StatusOK)
	// An allowed origin: preflight, then the request, with CORS headers.
	r := request(t, "OPTIONS", n.url+"/v1/maps/m/keys/k", "", nil,
		"Origin", "https://app.example", "Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", "content-type, if-match")
	expect(t, "preflight of an allowed origin", r, http.StatusNoContent)
	if r.hdr.Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(r.hdr.Get("Access-Control-Allow-Methods"), "PUT") ||
		!strings.Contains(strings.ToLower(r.hdr.Get("Access-Control-Allow-Headers")), "if-match") {
		t.Errorf("preflight headers %v", r.hdr)
	}
	r = request(t, "PUT", n.url+"/v1/maps/m/keys/k", "", strings.NewReader("from app"),
		"Origin", "https://app.example", "Sec-Fetch-Site", "cross-site", "Content-Type", "application/octet-stream")
	expect(t, "PUT from an allowed origin", r, http.StatusOK)
	if r.hdr.Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(r.hdr.Get("Access-Control-Expose-Headers"), "ETag") {
		t.Errorf("answer to an allowed origin: headers %v", r.hdr)
	}
	r = request(t, "OPTIONS", n.url+"/v1/channels/c", "", nil, "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	expect(t, "preflight of another origin", r, http.StatusForbidden)
	if r.hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight of another origin answered with Access-Control-Allow-Origin %q", r.hdr.Get("Access-Control-Allow-Origin"))
	}
	// Reads stay open to navigation from anywhere (the browser keeps another site's page
	// from reading the answer).
	expect(t, "dashboard from a link", request(t, "GET", n.url+"/", "", nil, "Sec-Fetch-Site", "cross-site"), http.StatusOK)

	// With a token, a POST of any type passes once authenticated.
	tn := startNode(t, srv.URL(), newPrefix(), Config{Channels: []string{"c"}, Token: "tok"})
	expect(t, "text/plain with the token", request(t, "POST", tn.url+"/v1/channels/c", "", strings.NewReader("x"),
		"Content-Type", "text/plain", "Authorization", "Bearer tok"), http.StatusOK)
	expect(t, "text/plain without the token", request(t, "POST", tn.url+"/v1/channels/c", "", strings.NewReader("x"),
		"Content-Type", "text/plain"), http.StatusUnauthorized)
}

func TestNodeSecurityConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"host with a scheme", Config{AllowedHosts: []string{"http://a.example"}}, "allowed host"},
		{"host with a path", Config{AllowedHosts: []string{"a.example/x"}}, "allowed host"},
		{"empty host", Config{AllowedHosts: []string{""}}, "allowed host"},
		{"origin without a scheme", Config{AllowedOrigins: []string{"app.example"}}, "allowed origin"},
		{"origin with a path", Config{AllowedOrigins: []string{"https://app.example/x"}}, "allowed origin"},
		{"good ones", Config{AllowedHosts: []string{"*", "a.example", "a.example:80", "[::1]:9"}, AllowedOrigins: []string{"http://a.example:8080"}}, ""},
		{"zero body timeout after defaults", Config{BodyTimeout: -1}, "BodyTimeout"},
	} {
		err := tc.cfg.withDefaults().validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}

// A client that trickles its body is cut off once Config.BodyTimeout has passed: 408, the
// connection closed, nothing written.
func TestNodeBodyTimeout(t *testing.T) {
	srv := startRedis(t)
	const limit = 500 * time.Millisecond
	n := startNode(t, srv.URL(), newPrefix(), Config{Maps: []string{"m"}, Channels: []string{"c"}, BodyTimeout: limit})
	n.waitReady(t)
	addr := strings.TrimPrefix(n.url, "http://")
	for _, tc := range []struct{ method, path string }{
		{"PUT", "/v1/maps/m/keys/slow"},
		{"POST", "/v1/channels/c"},
		{"GET", "/v1/maps/m"}, // a body nobody reads is bounded too
	} {
		t.Run(tc.method, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			begin := time.Now()
			fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\n", tc.method, tc.path, addr)
			// One byte every 100ms: 10 s for the whole body.
			answered := make(chan string, 1)
			go func() {
				b, _ := io.ReadAll(conn) // until the server closes the connection
				answered <- string(b)
			}()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			giveUp := time.After(5 * time.Second)
			var answer string
		trickle:
			for {
				select {
				case answer = <-answered:
					break trickle
				case <-tick.C:
					conn.Write([]byte("x")) // fails once the server has closed: fine
				case <-giveUp:
					t.Fatalf("the server still reads the body after %v (Config.BodyTimeout %v)", time.Since(begin), limit)
				}
			}
			took := time.Since(begin)
			t.Logf("cut after %v: %.80q", took.Round(time.Millisecond), answer)
			if took < limit || took > limit+2*time.Second {
				t.Errorf("cut after %v, want about %v", took, limit)
			}
			if tc.method != "GET" && !strings.HasPrefix(answer, "HTTP/1.1 408") {
				t.Errorf("answer %q, want a 408", answer)
			}
		})
	}
	if _, _, err := n.maps["m"].m.Get("slow"); err == nil {
		t.Error("the key of the cut PUT was written")
	}
	// A body that comes in time is taken, and the wait for Redis after it is not cut.
	expect(t, "PUT in time", do(t, "PUT", n.url+"/v1/maps/m/keys/quick", strings.NewReader("v")), http.StatusOK)
}

// Serve cuts a client that does not finish its headers within Config.HeaderTimeout.
func TestNodeHeaderTimeout(t *testing.T) {
	srv := startRedis(t)
	base := startNode(t, srv.URL(), newPrefix(), Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const limit = 300 * time.Millisecond
	n, err := New(base.cl, Config{Heartbeat: 50 * time.Millisecond, TTL: time.Second, Logger: quiet, HeaderTimeout: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- n.Serve(ctx, ln) }()
	defer func() {
		stop()
		<-served
	}()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	begin := time.Now()
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n", ln.Addr())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 { // a header line every 100ms, never the blank line
			if _, err := fmt.Fprintf(conn, "X-Slow: 1\r\n"); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(io.Discard, conn) // until the server closes the connection
	took := time.Since(begin)
	if errors.Is(err, syscall.ECONNRESET) {
		err = nil // closed while a header line was on its way: a reset rather than an end of file
	}
	if err != nil || took > limit+2*time.Second {
		t.Fatalf("headers still read after %v (%v), want the connection closed after about %v", took, err, limit)
	}
	<-done
}

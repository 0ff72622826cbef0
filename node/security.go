package node

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The checks every request passes before its route (see "Security" in the package doc):
// its Host (DNS rebinding), its origin when it writes (cross-site request forgery), CORS
// preflights, and whether a browser could have sent it from any page without asking first.

// hostEntry is an entry of Config.AllowedHosts.
type hostEntry struct {
	any  bool   // "*"
	name string // lower case, without brackets or a final dot
	port string // "": any port
}

// parseHostEntry reads "name", "name:port", "[v6]", "[v6]:port" or "*".
func parseHostEntry(s string) (hostEntry, error) {
	if s == "*" {
		return hostEntry{any: true}, nil
	}
	name, port := splitHost(s)
	if name == "" || strings.ContainsAny(s, "/ \t@?#") || strings.Contains(s, "://") {
		return hostEntry{}, fmt.Errorf("node: allowed host %q: want a host name or address, with or without :port (no scheme, no path)", s)
	}
	return hostEntry{name: name, port: port}, nil
}

// parseOrigin reads an origin of Config.AllowedOrigins: scheme://host[:port], as a browser
// sends it in the Origin header.
func parseOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("node: allowed origin %q: want scheme://host[:port], such as https://app.example.com", s)
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), nil
}

// splitHost splits a Host header value into its lower-case name (without brackets or a
// final dot) and its port ("" when absent).
func splitHost(s string) (name, port string) {
	if h, p, err := net.SplitHostPort(s); err == nil {
		name, port = h, p
	} else {
		name = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	}
	return strings.TrimSuffix(strings.ToLower(name), "."), port
}

// security holds the checks built from the Config.
type security struct {
	hosts   []hostEntry
	anyHost bool
	origins map[string]bool // allowed origins, normalized by parseOrigin
	cop     *http.CrossOriginProtection
}

func newSecurity(cfg Config) *security {
	s := &security{origins: map[string]bool{}, cop: http.NewCrossOriginProtection()}
	for _, h := range cfg.AllowedHosts {
		e, _ := parseHostEntry(h) // validated by Config.validate
		s.anyHost = s.anyHost || e.any
		s.hosts = append(s.hosts, e)
	}
	for _, o := range cfg.AllowedOrigins {
		norm, _ := parseOrigin(o)
		s.origins[norm] = true
		_ = s.cop.AddTrustedOrigin(norm) // the same check as parseOrigin's
	}
	return s
}

// hostAllowed reports whether r's Host header names this node: a loopback name or address,
// or the address the connection arrived on, with its port; or an entry of
// Config.AllowedHosts.
func (s *security) hostAllowed(r *http.Request) bool {
	if s.anyHost || r.Host == "" { // no Host: an HTTP/1.0 client, not a browser
		return true
	}
	name, port := splitHost(r.Host)
	for _, e := range s.hosts {
		if e.name == name && (e.port == "" || e.port == port || (port == "" && e.port == "80")) {
			return true
		}
	}
	if port == "" {
		port = "80"
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	var localIP net.IP
	if tcp, ok := local.(*net.TCPAddr); ok {
		if fmt.Sprint(tcp.Port) != port {
			return false
		}
		localIP = tcp.IP
	}
	if name == "localhost" {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && (ip.IsLoopback() || ip.Equal(localIP))
}

// originAllowed reports whether origin (an Origin header) is one of Config.AllowedOrigins.
func (s *security) originAllowed(origin string) bool {
	norm, err := parseOrigin(origin)
	return err == nil && s.origins[norm]
}

// simpleContentType reports whether a POST with this Content-Type is one a browser sends
// from any page without a CORS preflight: none, text/plain, a form.
func simpleContentType(ct string) bool {
	essence, _, _ := strings.Cut(ct, ";")
	switch strings.ToLower(strings.TrimSpace(essence)) {
	case "", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data":
		return true
	}
	return false
}

// corsMethods and corsHeaders are what a preflight of an allowed origin may ask for.
const (
	corsMethods = "GET, HEAD, PUT, DELETE, POST"
	corsHeaders = "Authorization, Content-Type, If-Match, If-None-Match, Last-Event-ID"
	corsExpose  = "ETag, Retry-After, WWW-Authenticate"
)

// secure runs the checks of s before next: Host, then CORS preflight, then the origin of a
// write.
func (n *Node) secure(s *security, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && !s.hostAllowed(r) {
			writeErrorf(w, http.StatusForbidden, "Host %q is not a name of this node: it answers to localhost, 127.0.0.1 and [::1] "+
				"on the port it listens on, to the address a connection arrives on, and to the names given with --allowed-host "+
				"(Config.AllowedHosts)", r.Host)
			return
		}
		origin := r.Header.Get("Origin")
		allowed := origin != "" && s.originAllowed(origin)
		hdr := w.Header()
		if len(s.origins) > 0 {
			hdr.Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != "" {
			if !allowed {
				writeErrorf(w, http.StatusForbidden, "cross-origin requests from %s are not allowed: only the origins given with "+
					"--allowed-origin (Config.AllowedOrigins) are", origin)
				return
			}
			hdr.Set("Access-Control-Allow-Origin", origin)
			hdr.Set("Access-Control-Allow-Methods", corsMethods)
			hdr.Set("Access-Control-Allow-Headers", corsHeaders)
			hdr.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if allowed {
			hdr.Set("Access-Control-Allow-Origin", origin)
			hdr.Set("Access-Control-Expose-Headers", corsExpose)
		}
		if err := s.cop.Check(r); err != nil {
			from := origin
			if from == "" {
				from = "another site (Sec-Fetch-Site: " + r.Header.Get("Sec-Fetch-Site") + ")"
			}
			writeErrorf(w, http.StatusForbidden, "cross-origin %s refused: a page of %s may not write here; allow its origin with "+
				"--allowed-origin (Config.AllowedOrigins)", r.Method, from)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// notSimple refuses, when the node has no token, a POST that any web page could send without
// a CORS preflight (a "simple request": no Content-Type, text/plain or a form), whatever
// headers an old browser left out: with the token, or another Content-Type, it passes.
func (n *Node) notSimple(h http.HandlerFunc) http.HandlerFunc {
	if n.cfg.Token != "" {
		return h // guard requires the token, which no page can send without a preflight
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); simpleContentType(ct) {
			writeErrorf(w, http.StatusForbidden, "a POST without the token must have a Content-Type that a web page cannot send "+
				"without asking first, such as application/octet-stream or application/json (not %q): any page could send this one", ct)
			return
		}
		h(w, r)
	}
}

// withBodyTimeout bounds reading r's body to Config.BodyTimeout: past it a read fails (and
// readBody answers 408). readBody lifts the deadline once the body is read, so that the
// wait for Redis is bounded by WriteTimeout alone.
func (n *Node) withBodyTimeout(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 { // a body, of known length or chunked
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(n.cfg.BodyTimeout))
		}
		h(w, r)
	}
}

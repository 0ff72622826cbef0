package node

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/redisync/redisync/redisconn"
)

// access says who may call a route.
type access int

const (
	public      access = iota // no token needed
	tokenHeader               // the token in the Authorization header
	tokenQuery                // the token in the header or in ?token= (EventSource cannot send headers)
)

// routes builds the node's handler. The paths, methods and status codes are documented in the
// package doc and README.md; they are a promise to users.
func (n *Node) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, a access, h http.HandlerFunc) {
		mux.Handle(pattern, n.guard(a, h))
	}
	// Every route but the streams reads its body, if any, within Config.BodyTimeout.
	bounded := n.withBodyTimeout
	handle("GET /healthz", public, bounded(n.healthz))
	handle("GET /readyz", tokenHeader, bounded(n.readyz))
	handle("GET /metrics", tokenHeader, bounded(n.met.handler().ServeHTTP))

	handle("GET /v1/nodes", tokenHeader, bounded(n.listNodes))
	handle("GET /v1/maps", tokenHeader, bounded(n.listMaps))
	handle("GET /v1/maps/{map}", tokenHeader, bounded(n.listKeys))
	handle("GET /v1/maps/{map}/keys/{key...}", tokenHeader, bounded(n.getKey))
	handle("PUT /v1/maps/{map}/keys/{key...}", tokenHeader, bounded(n.putKey))
	handle("DELETE /v1/maps/{map}/keys/{key...}", tokenHeader, bounded(n.deleteKey))
	// Without it the ServeMux would redirect to .../keys/ (an empty key).
	handle("/v1/maps/{map}/keys", public, bounded(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusBadRequest, "empty key: the path is /v1/maps/{map}/keys/{key}")
	}))
	handle("GET /v1/maps/{map}/watch", tokenQuery, n.watchMap)
	handle("GET /v1/channels", tokenHeader, bounded(n.listChannels))
	handle("POST /v1/channels/{channel}", tokenHeader, bounded(n.notSimple(n.publish)))
	handle("GET /v1/channels/{channel}/events", tokenQuery, n.channelEvents)

	// The dashboard's files hold no data: they load without the token, and the page asks for
	// it (or takes ?token= once) to call the API.
	handle("GET /{$}", public, bounded(serveDashboardIndex))
	handle("GET /dashboard/", public, bounded(serveDashboardFiles))
	handle("/", public, bounded(func(w http.ResponseWriter, r *http.Request) {
		// Nothing matched the method and the path: 405 if another method matches the path.
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPost} {
			r2 := r.Clone(r.Context())
			r2.Method = m
			if _, p := mux.Handler(r2); p != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeErrorf(w, http.StatusMethodNotAllowed, "%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allow, ", "))
			return
		}
		writeError(w, http.StatusNotFound, "no such path: "+r.URL.Path+" (the API is under /v1; see redisync serve --help)")
	}))
	return n.met.instrument(n.secure(newSecurity(n.cfg), canonical(mux)))
}

// canonical answers 400 for an API path that is not in canonical form (an empty segment,
// "." or ".."), which the ServeMux would redirect to its cleaned form: a client that follows
// the redirect would repeat a write on another key ("a//b" is not "a/b"). Such a key is
// written percent-encoded. Other paths (the dashboard's) are left to the ServeMux.
func canonical(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		c := cleanPath(p)
		if c != p && (strings.HasPrefix(c, "/v1/") || strings.HasPrefix(p, "/v1/") || c == "/v1" ||
			(r.Method != http.MethodGet && r.Method != http.MethodHead)) {
			writeErrorf(w, http.StatusBadRequest, "the path %q is not in canonical form (it has an empty segment, \".\" or \"..\"), "+
				"so it names no key and nothing was done; in a key, percent-encode each slash as %%2F and each dot of a \".\" or \"..\" "+
				"segment as %%2E (the key \"a//b\" is /v1/maps/MAP/keys/a%%2F%%2Fb)", p)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// cleanPath is the canonical form of p as the ServeMux computes it: "." and ".." resolved,
// repeated slashes collapsed, a final slash kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if strings.HasSuffix(p, "/") && np != "/" {
		np += "/"
	}
	return np
}

// guard enforces the token of access a before h.
func (n *Node) guard(a access, h http.HandlerFunc) http.Handler {
	if n.cfg.Token == "" || a == public {
		return h
	}
	want := sha256.Sum256([]byte(n.cfg.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r.Header.Get("Authorization"))
		if !ok && a == tokenQuery {
			tok, ok = r.URL.Query().Get("token"), r.URL.Query().Has("token")
		}
		// Compare hashes: constant time, whatever the lengths.
		got := sha256.Sum256([]byte(tok))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="redisync"`)
			msg := "missing token: send Authorization: Bearer <token>"
			if ok {
				msg = "wrong token"
			}
			writeError(w, http.StatusUnauthorized, msg)
			return
		}
		h(w, r)
	})
}

// bearer returns the token of an "Authorization: Bearer T" header value.
func bearer(h string) (string, bool) {
	scheme, tok, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

func (n *Node) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// readyz answers 200 when every replica is ready (Map.Ready: loaded, caught up, and not found
// different from Redis since) and Redis answers a PING, 503 otherwise, with the details as
// JSON: each map is "ready", "loading" (its first snapshot), "reloading" (a new snapshot,
// after a reset or a mismatch with Redis) or "cannot load: …".
func (n *Node) readyz(w http.ResponseWriter, r *http.Request) {
	type body struct {
		Ready bool              `json:"ready"`
		Redis string            `json:"redis"`
		Maps  map[string]string `json:"maps"`
	}
	b := body{Ready: true, Redis: "ok", Maps: map[string]string{}}
	for name, h := range n.maps {
		b.Maps[name] = "ready"
		if !h.m.Ready() {
			b.Maps[name], b.Ready = notReady(h), false
			if err := loadFault(h.m); err != nil {
				b.Maps[name] = "cannot load: " + err.Error()
			}
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	rc := n.cl.Redis()
	if err := redisconn.Ping(ctx, rc); err != nil {
		b.Redis, b.Ready = "unreachable: "+err.Error(), false
	}
	code := http.StatusOK
	if !b.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, b)
}

// writeJSON answers v as JSON with code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// apiError is the body of every error answer: {"error": "…"} plus, for some, fields that
// say more.
type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

func writeErrorf(w http.ResponseWriter, code int, format string, args ...any) {
	writeError(w, code, fmt.Sprintf(format, args...))
}

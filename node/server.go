package node

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
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
	handle("GET /healthz", public, n.healthz)
	handle("GET /readyz", tokenHeader, n.readyz)
	handle("GET /metrics", tokenHeader, n.met.handler().ServeHTTP)

	handle("GET /v1/nodes", tokenHeader, n.listNodes)
	handle("GET /v1/maps", tokenHeader, n.listMaps)
	handle("GET /v1/maps/{map}", tokenHeader, n.listKeys)
	handle("GET /v1/maps/{map}/keys/{key...}", tokenHeader, n.getKey)
	handle("PUT /v1/maps/{map}/keys/{key...}", tokenHeader, n.putKey)
	handle("DELETE /v1/maps/{map}/keys/{key...}", tokenHeader, n.deleteKey)
	handle("GET /v1/maps/{map}/watch", tokenQuery, n.watchMap)
	handle("GET /v1/channels", tokenHeader, n.listChannels)
	handle("POST /v1/channels/{channel}", tokenHeader, n.publish)
	handle("GET /v1/channels/{channel}/events", tokenQuery, n.channelEvents)

	// The dashboard's files hold no data: they load without the token, and the page asks for
	// it (or takes ?token= once) to call the API.
	handle("GET /{$}", public, serveDashboardIndex)
	handle("GET /dashboard/", public, serveDashboardFiles)
	handle("/", public, func(w http.ResponseWriter, r *http.Request) {
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
	})
	return n.met.instrument(mux)
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

// readyz answers 200 when every replica is ready and Redis answers a PING, 503 otherwise,
// with the details as JSON.
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
			b.Maps[name], b.Ready = "loading", false
			if err := loadFault(h.m); err != nil {
				b.Maps[name] = "cannot load: " + err.Error()
			}
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	rc := n.cl.Redis()
	if err := rc.Do(ctx, rc.B().Ping().Build()).Error(); err != nil {
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

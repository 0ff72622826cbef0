package node

import (
	"fmt"
	"strings"
)

// Route is one route of the HTTP API, as users see it. Routes is the one list of them:
// `redisync serve --help` prints RouteTable, and tests check that the package doc lists the
// same ones and that the handler serves each.
type Route struct {
	Method, Path string
	Summary      string
}

// Routes are the routes of the HTTP API, a promise to users.
var Routes = []Route{
	{"GET", "/v1/maps/{map}/keys/{key}", `the value's bytes; ETag "<version>"; If-None-Match → 304`},
	{"PUT", "/v1/maps/{map}/keys/{key}", `store the body; If-Match: "N" (version N, "0": absent), If-Match: * (exists), If-None-Match: * (absent); 412 when it fails`},
	{"DELETE", "/v1/maps/{map}/keys/{key}", "delete the key (same conditions); 404 when it is absent"},
	{"GET", "/v1/maps/{map}", "keys in byte order: ?after=KEY&limit=N&prefix=P&values=true"},
	{"GET", "/v1/maps/{map}/watch", "Server-Sent Events: one event per write, id EPOCH:SEQ; ?from=, Last-Event-ID"},
	{"GET", "/v1/maps", "the maps this node serves, with position, keys and digest"},
	{"POST", "/v1/channels/{channel}", `publish the body; {"channel","seq","epoch"}`},
	{"GET", "/v1/channels/{channel}/events", "Server-Sent Events: one event per message, id EPOCH:SEQ; ?from=, Last-Event-ID"},
	{"GET", "/v1/channels", "the relayed channels with their heads"},
	{"GET", "/v1/nodes", "the registry: every node (live, late, or gone), each map's agreement and lag"},
	{"GET", "/metrics", "Prometheus"},
	{"GET", "/healthz", "200 while the process runs (never needs the token)"},
	{"GET", "/readyz", "200 when every replica is ready and Redis answers, else 503"},
	{"GET", "/", "the dashboard"},
}

// RouteTable formats Routes as an indented table, for help texts.
func RouteTable(indent string) string {
	var b strings.Builder
	for _, r := range Routes {
		fmt.Fprintf(&b, "%s%-6s %-32s %s\n", indent, r.Method, r.Path, r.Summary)
	}
	return b.String()
}

package node

import (
	"embed"
	"io/fs"
	"net/http"
)

// The dashboard: plain HTML, CSS and JavaScript embedded in the binary, no build step. The
// page polls GET /v1/nodes every second, shows a map's keys from GET /v1/maps/{map} and its
// live changes from the SSE stream /v1/maps/{map}/watch. It paints at once from
// GET /v1/nodes?local=true (this node's own state, answered without Redis), and again from
// it, under a banner that names the failure, while the registry cannot be read. Two pills
// say two things: "page updating" whether this node answers the page's polls, "cluster: …"
// the registry's health (late and gone nodes, diverged maps: Registry.Health).
//
//go:embed dashboard
var dashboardFS embed.FS

var dashboardFiles = func() fs.FS {
	sub, err := fs.Sub(dashboardFS, "dashboard")
	if err != nil {
		panic(err)
	}
	return sub
}()

// dashboardHeaders are set on every dashboard file: it runs only its own code and talks only
// to its own origin.
func dashboardHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
}

func serveDashboardIndex(w http.ResponseWriter, r *http.Request) {
	dashboardHeaders(w)
	http.ServeFileFS(w, r, dashboardFiles, "index.html")
}

var dashboardFileServer = http.StripPrefix("/dashboard/", http.FileServerFS(dashboardFiles))

func serveDashboardFiles(w http.ResponseWriter, r *http.Request) {
	dashboardHeaders(w)
	dashboardFileServer.ServeHTTP(w, r)
}

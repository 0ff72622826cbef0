package node

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/channel"
)

// A path that is not the canonical form of one key is refused with 400, never redirected:
// a client that follows redirects (Go's default client does, repeating a PUT's body on a
// 307) would otherwise write, or delete, another key. A key with such slashes or dots is
// written percent-encoded.
func TestNodeKeyPathsNeverRedirect(t *testing.T) {
	srv := startRedis(t)
	n := startNode(t, srv.URL(), newPrefix(), Config{Maps: []string{"m", "other"}})
	n.waitReady(t)
	base := n.url + "/v1/maps/m/keys/"
	for _, k := range []string{"a/b", "etc/hosts", "x/y", "b"} {
		expect(t, "PUT "+k, do(t, "PUT", base+k, strings.NewReader("original")), http.StatusOK)
	}
	expect(t, "PUT other/k", do(t, "PUT", n.url+"/v1/maps/other/keys/k", strings.NewReader("original")), http.StatusOK)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	heads := func() [2]channel.Position {
		var h [2]channel.Position
		for i, name := range []string{"m", "other"} {
			var err error
			if h[i], err = n.cl.Head(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		return h
	}
	before := heads()

	for _, tc := range []struct{ method, path string }{
		{"PUT", "/v1/maps/m/keys/a//b"},
		{"PUT", "/v1/maps/m/keys//etc/hosts"},
		{"DELETE", "/v1/maps/m/keys/x//y"},
		{"PUT", "/v1/maps/m/keys/a/./b"},
		{"PUT", "/v1/maps/m/keys/q/../a/b"},
		{"DELETE", "/v1/maps/m/keys/z/../b"},
		{"PUT", "/v1/maps/m/keys/../../other/keys/k"},
		{"PUT", "//v1/maps/m/keys/b"},
		{"PUT", "/v1/maps/m/keys/a/b/."},
		{"GET", "/v1/maps/m/keys/a//b"},
		{"PUT", "/v1/maps/m/keys"},
		{"DELETE", "/v1/maps/m/keys"},
	} {
		// http.DefaultClient follows redirects, 307s with their body included.
		r := do(t, tc.method, n.url+tc.path, strings.NewReader("overwritten"))
		if r.code != http.StatusBadRequest {
			t.Errorf("%s %s: status %d, want 400; body %q", tc.method, tc.path, r.code, r.body)
			continue
		}
		if tc.path != "/v1/maps/m/keys" && !strings.Contains(r.errorText(), "%2F") {
			t.Errorf("%s %s: error %q does not say to percent-encode slashes (%%2F)", tc.method, tc.path, r.errorText())
		}
	}
	if after := heads(); after != before {
		t.Fatalf("heads moved from %v to %v: a refused path wrote something", before, after)
	}
	for _, k := range []string{"a/b", "etc/hosts", "x/y", "b"} {
		if r := do(t, "GET", base+k, nil); r.code != http.StatusOK || r.body != "original" {
			t.Errorf("key %q: %d %q, want it untouched", k, r.code, r.body)
		}
	}

	// The keys those paths did not name are written percent-encoded, each under its own name.
	for _, k := range []struct{ key, path string }{
		{"a//b", "a%2F%2Fb"},
		{"/etc/hosts", "%2Fetc/hosts"},
		{"q/../a", "q/%2E%2E/a"},
		{".", "%2E"},
		{"a/", "a/"},
	} {
		expect(t, "PUT "+k.path, do(t, "PUT", base+k.path, strings.NewReader("v:"+k.key)), http.StatusOK)
		if r := expect(t, "GET "+k.path, do(t, "GET", base+k.path, nil), http.StatusOK); r.body != "v:"+k.key {
			t.Errorf("GET %s = %q", k.path, r.body)
		}
		if v, _, err := n.maps["m"].m.Get(k.key); err != nil || string(v) != "v:"+k.key {
			t.Errorf("key %q: %q, %v; want the value written at %s", k.key, v, err, k.path)
		}
	}
	if v, _, _ := n.maps["m"].m.Get("a/b"); string(v) != "original" {
		t.Errorf("a/b is %q after the percent-encoded writes", v)
	}
}

package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/faultproxy"
	"github.com/redisync/redisync/replmap"
)

// version parses an ETag "N".
func version(t *testing.T, r reply) uint64 {
	t.Helper()
	tag := r.hdr.Get("ETag")
	v, err := strconv.ParseUint(strings.Trim(tag, `"`), 10, 64)
	if err != nil || !strings.HasPrefix(tag, `"`) || !strings.HasSuffix(tag, `"`) {
		t.Fatalf("ETag %q is not a strong quoted version", tag)
	}
	return v
}

func TestNodeAPI(t *testing.T) {
	srv := startRedis(t)
	n := startNode(t, srv.URL(), newPrefix(), Config{Maps: []string{"m"}, Channels: []string{"c"}, MaxKeyBytes: 64, MaxBodyBytes: 1024})
	n.waitReady(t)
	key := n.url + "/v1/maps/m/keys/"

	t.Run("unknown map", func(t *testing.T) {
		for _, r := range []reply{
			do(t, "GET", n.url+"/v1/maps/nope/keys/a", nil),
			do(t, "PUT", n.url+"/v1/maps/nope/keys/a", strings.NewReader("x")),
			do(t, "GET", n.url+"/v1/maps/nope", nil),
			do(t, "GET", n.url+"/v1/maps/nope/watch", nil),
		} {
			expect(t, "unknown map", r, http.StatusNotFound)
			if e := r.errorText(); !strings.Contains(e, `"nope"`) || !strings.Contains(e, `"m"`) {
				t.Errorf("error %q does not name the map asked for and the maps served", e)
			}
			if ct := r.hdr.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
		}
	})

	t.Run("absent key", func(t *testing.T) {
		r := expect(t, "GET absent", do(t, "GET", key+"absent", nil), http.StatusNotFound)
		if !strings.Contains(r.errorText(), `"absent"`) {
			t.Errorf("error %q does not name the key", r.errorText())
		}
	})

	t.Run("put get delete", func(t *testing.T) {
		r := expect(t, "PUT", do(t, "PUT", key+"k", strings.NewReader("v1")), http.StatusOK)
		v1 := version(t, r)
		var res writeResult
		decode(t, r, &res)
		if res.Version != v1 || res.Key != "k" || res.Map != "m" {
			t.Errorf("PUT answered %+v, ETag %d", res, v1)
		}
		r = expect(t, "GET", do(t, "GET", key+"k", nil), http.StatusOK)
		if r.body != "v1" || version(t, r) != v1 {
			t.Errorf("GET = %q version %d, want v1 version %d", r.body, version(t, r), v1)
		}
		expect(t, "GET If-None-Match", do(t, "GET", key+"k", nil, "If-None-Match", etag(v1)), http.StatusNotModified)

		// Compare-and-set.
		r = expect(t, "PUT If-Match", do(t, "PUT", key+"k", strings.NewReader("v2"), "If-Match", etag(v1)), http.StatusOK)
		v2 := version(t, r)
		if v2 <= v1 {
			t.Errorf("version after CAS %d, want above %d", v2, v1)
		}
		r = expect(t, "stale If-Match", do(t, "PUT", key+"k", strings.NewReader("v3"), "If-Match", etag(v1)), http.StatusPreconditionFailed)
		var c conflictBody
		decode(t, r, &c)
		if c.Key != "k" || c.Map != "m" || c.Expected == nil || *c.Expected != v1 || c.Actual != v2 || c.Error == "" {
			t.Errorf("412 body %s, want key k, expected %d, actual %d", r.body, v1, v2)
		}
		if r := do(t, "GET", key+"k", nil); r.body != "v2" {
			t.Errorf("a failed CAS changed the value to %q", r.body)
		}

		// Create only.
		expect(t, "If-None-Match * on a present key", do(t, "PUT", key+"k", strings.NewReader("x"), "If-None-Match", "*"), http.StatusPreconditionFailed)
		expect(t, "If-None-Match * on an absent key", do(t, "PUT", key+"new1", strings.NewReader("x"), "If-None-Match", "*"), http.StatusOK)
		expect(t, `If-Match "0" on an absent key`, do(t, "PUT", key+"new2", strings.NewReader("x"), "If-Match", `"0"`), http.StatusOK)
		expect(t, `If-Match "0" on a present key`, do(t, "PUT", key+"new2", strings.NewReader("x"), "If-Match", `"0"`), http.StatusPreconditionFailed)
		// Must exist.
		expect(t, "If-Match * on an absent key", do(t, "PUT", key+"new3", strings.NewReader("x"), "If-Match", "*"), http.StatusPreconditionFailed)
		expect(t, "If-Match * on a present key", do(t, "PUT", key+"new2", strings.NewReader("y"), "If-Match", "*"), http.StatusOK)

		// Delete, conditionally then not.
		expect(t, "DELETE stale If-Match", do(t, "DELETE", key+"k", nil, "If-Match", etag(v1)), http.StatusPreconditionFailed)
		r = expect(t, "DELETE If-Match", do(t, "DELETE", key+"k", nil, "If-Match", etag(v2)), http.StatusOK)
		if v3 := version(t, r); v3 <= v2 {
			t.Errorf("version of the delete %d, want above %d", v3, v2)
		}
		decode(t, r, &res)
		if !res.Deleted {
			t.Errorf("DELETE answered %s, want deleted:true", r.body)
		}
		expect(t, "GET deleted", do(t, "GET", key+"k", nil), http.StatusNotFound)
	})

	t.Run("delete absent", func(t *testing.T) {
		expect(t, "PUT", do(t, "PUT", key+"gone", strings.NewReader("x")), http.StatusOK)
		expect(t, "DELETE", do(t, "DELETE", key+"gone", nil), http.StatusOK)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		before, err := n.cl.Head(ctx, "m")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"gone", "never"} {
			r := expect(t, "DELETE absent "+k, do(t, "DELETE", key+k, nil), http.StatusNotFound)
			if e := r.errorText(); !strings.Contains(e, strconv.Quote(k)) || !strings.Contains(e, `"m"`) {
				t.Errorf("DELETE absent %s: error %q does not name the key and the map", k, e)
			}
			if ct := r.hdr.Get("Content-Type"); ct != "application/json" || r.hdr.Get("ETag") != "" {
				t.Errorf("DELETE absent %s: Content-Type %q, ETag %q; want JSON and no ETag", k, ct, r.hdr.Get("ETag"))
			}
		}
		if after, err := n.cl.Head(ctx, "m"); err != nil || after != before {
			t.Errorf("the map's head moved from %v to %v (%v): a delete of an absent key wrote something", before, after, err)
		}
	})

	t.Run("keys", func(t *testing.T) {
		for _, k := range []string{"a/b/c", "with space", "ünï", "%25"} {
			path := key + strings.ReplaceAll(strings.ReplaceAll(k, " ", "%20"), "%25", "%2525")
			expect(t, "PUT "+k, do(t, "PUT", path, strings.NewReader("v-"+k)), http.StatusOK)
			if r := expect(t, "GET "+k, do(t, "GET", path, nil), http.StatusOK); r.body != "v-"+k {
				t.Errorf("GET %q = %q", k, r.body)
			}
			if _, ver, err := n.maps["m"].m.Get(k); err != nil || ver == 0 {
				t.Errorf("key %q is not in the replica under its own name: %v", k, err)
			}
		}
		expect(t, "empty key", do(t, "PUT", key, strings.NewReader("x")), http.StatusBadRequest)
		r := expect(t, "long key", do(t, "PUT", key+strings.Repeat("k", 65), strings.NewReader("x")), http.StatusRequestURITooLong)
		if !strings.Contains(r.errorText(), "64") {
			t.Errorf("error %q does not give the limit", r.errorText())
		}
	})

	t.Run("values", func(t *testing.T) {
		bin := []byte{0, 1, 2, 0xff, '\n'}
		expect(t, "PUT binary", do(t, "PUT", key+"bin", bytes.NewReader(bin)), http.StatusOK)
		if r := do(t, "GET", key+"bin", nil); r.body != string(bin) || r.hdr.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("GET binary = %q (%s)", r.body, r.hdr.Get("Content-Type"))
		}
		expect(t, "PUT empty", do(t, "PUT", key+"empty", nil), http.StatusOK)
		if r := expect(t, "GET empty", do(t, "GET", key+"empty", nil), http.StatusOK); r.body != "" {
			t.Errorf("GET empty = %q", r.body)
		}
		expect(t, "PUT at the limit", do(t, "PUT", key+"big", strings.NewReader(strings.Repeat("x", 1024))), http.StatusOK)
		r := expect(t, "PUT over the limit", do(t, "PUT", key+"big", strings.NewReader(strings.Repeat("x", 1025))), http.StatusRequestEntityTooLarge)
		if !strings.Contains(r.errorText(), "1024") {
			t.Errorf("error %q does not give the limit", r.errorText())
		}
		// Without a Content-Length, the limit holds while reading.
		chunked := io.MultiReader(strings.NewReader(strings.Repeat("x", 1000)), strings.NewReader(strings.Repeat("y", 1000)))
		expect(t, "chunked PUT over the limit", do(t, "PUT", key+"big", io.NopCloser(chunked)), http.StatusRequestEntityTooLarge)
		if r := do(t, "GET", key+"big", nil); len(r.body) != 1024 {
			t.Errorf("an oversized PUT changed the value (%d bytes)", len(r.body))
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct{ name, header, value string }{
			{"weak If-Match", "If-Match", `W/"1"`},
			{"unquoted If-Match", "If-Match", `1`},
			{"not a version", "If-Match", `"abc"`},
			{"a list", "If-Match", `"1", "2"`},
			{"If-None-Match other than *", "If-None-Match", `"1"`},
		} {
			r := expect(t, tc.name, do(t, "PUT", key+"x", strings.NewReader("x"), tc.header, tc.value), http.StatusBadRequest)
			if r.errorText() == "" {
				t.Errorf("%s: no error message in %q", tc.name, r.body)
			}
		}
		r := do(t, "PUT", key+"x", strings.NewReader("x"), "If-Match", `"1"`, "If-None-Match", "*")
		expect(t, "both conditions", r, http.StatusBadRequest)
		expect(t, "limit=0", do(t, "GET", n.url+"/v1/maps/m?limit=0", nil), http.StatusBadRequest)
		expect(t, "limit=abc", do(t, "GET", n.url+"/v1/maps/m?limit=abc", nil), http.StatusBadRequest)
		// A stream's start: the error names the parameter and the forms it takes.
		for _, tc := range []struct{ name, url, header, param string }{
			{"from=abc", n.url + "/v1/maps/m/watch?from=abc", "", "?from="},
			{"from=E:", n.url + "/v1/channels/c/events?from=e1:", "", "?from="},
			{"from=:3", n.url + "/v1/channels/c/events?from=:3", "", "?from="},
			{"from=-1", n.url + "/v1/channels/c/events?from=-1", "", "?from="},
			{"Last-Event-ID abc", n.url + "/v1/channels/c/events", "abc", "Last-Event-ID"},
			{"Last-Event-ID now", n.url + "/v1/maps/m/watch", "now", "Last-Event-ID"},
		} {
			var r reply
			if tc.header != "" {
				r = do(t, "GET", tc.url, nil, "Last-Event-ID", tc.header)
			} else {
				r = do(t, "GET", tc.url, nil)
			}
			e := expect(t, tc.name, r, http.StatusBadRequest).errorText()
			if !strings.Contains(e, tc.param) || !strings.Contains(e, "EPOCH:SEQ") || !strings.Contains(e, " SEQ") {
				t.Errorf("%s: error %q does not name %s and the forms it takes (EPOCH:SEQ, SEQ)", tc.name, e, tc.param)
			}
			if tc.param == "?from=" && !strings.Contains(e, `"now"`) {
				t.Errorf("%s: error %q does not say that ?from= takes \"now\"", tc.name, e)
			}
		}
		expect(t, "from and epoch disagree", do(t, "GET", n.url+"/v1/channels/c/events?from=e1:3&epoch=e2", nil), http.StatusBadRequest)
		r = expect(t, "unknown path", do(t, "GET", n.url+"/v2/what", nil), http.StatusNotFound)
		if r.errorText() == "" {
			t.Errorf("unknown path: body %q is not a JSON error", r.body)
		}
		expect(t, "wrong method", do(t, "POST", key+"x", nil), http.StatusMethodNotAllowed)
	})

	t.Run("channels", func(t *testing.T) {
		var p published
		for i := 1; i <= 2; i++ {
			r := expect(t, "POST", do(t, "POST", n.url+"/v1/channels/c", strings.NewReader(fmt.Sprint("m", i))), http.StatusOK)
			decode(t, r, &p)
			if p.Seq != uint64(i) || p.Epoch == "" || p.Channel != "c" {
				t.Errorf("POST %d answered %s", i, r.body)
			}
		}
		expect(t, "POST unknown channel", do(t, "POST", n.url+"/v1/channels/nope", strings.NewReader("x")), http.StatusNotFound)
		expect(t, "POST over the limit", do(t, "POST", n.url+"/v1/channels/c", strings.NewReader(strings.Repeat("x", 1025))), http.StatusRequestEntityTooLarge)
		var list struct{ Channels []channelInfo }
		decode(t, expect(t, "GET /v1/channels", do(t, "GET", n.url+"/v1/channels", nil), http.StatusOK), &list)
		if len(list.Channels) != 1 || list.Channels[0].Seq != 2 || list.Channels[0].Epoch != p.Epoch {
			t.Errorf("GET /v1/channels = %+v", list)
		}
	})

	t.Run("health", func(t *testing.T) {
		expect(t, "healthz", do(t, "GET", n.url+"/healthz", nil), http.StatusOK)
		r := expect(t, "readyz", do(t, "GET", n.url+"/readyz", nil), http.StatusOK)
		if !strings.Contains(r.body, `"ready":true`) {
			t.Errorf("readyz body %q", r.body)
		}
		var maps struct{ Maps []mapInfo }
		decode(t, expect(t, "GET /v1/maps", do(t, "GET", n.url+"/v1/maps", nil), http.StatusOK), &maps)
		if len(maps.Maps) != 1 || !maps.Maps[0].Ready || maps.Maps[0].Keys != n.maps["m"].m.Len() || len(maps.Maps[0].Digest) != 24 {
			t.Errorf("GET /v1/maps = %+v", maps)
		}
	})
}

func TestNodeListPages(t *testing.T) {
	srv := startRedis(t)
	n := startNode(t, srv.URL(), newPrefix(), Config{Maps: []string{"m"}})
	n.waitReady(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const total = 250
	var ops []replmap.Op[[]byte]
	for i := range total {
		ops = append(ops, replmap.Op[[]byte]{Key: fmt.Sprintf("k%03d", i), Value: []byte(fmt.Sprint("v", i))})
	}
	ops = append(ops, replmap.Op[[]byte]{Key: "other", Value: []byte{0xff}})
	seq, err := n.maps["m"].m.Write(ctx, ops...)
	if err != nil {
		t.Fatal(err)
	}

	var got []string
	after, pages := "", 0
	for {
		url := n.url + "/v1/maps/m?prefix=k&limit=100"
		if after != "" {
			url += "&after=" + after
		}
		var p keyPage
		decode(t, expect(t, "list", do(t, "GET", url, nil), http.StatusOK), &p)
		pages++
		if p.Seq != seq || p.Total != total+1 {
			t.Errorf("page at seq %d with total %d, want %d and %d", p.Seq, p.Total, seq, total+1)
		}
		for _, k := range p.Keys {
			got = append(got, k.Key)
			if k.Version != seq || k.Value != nil {
				t.Errorf("item %+v, want version %d and no value", k, seq)
			}
		}
		if p.Next == "" {
			break
		}
		if p.Next != p.Keys[len(p.Keys)-1].Key {
			t.Errorf("next %q is not the page's last key", p.Next)
		}
		after = p.Next
	}
	if pages != 3 || len(got) != total {
		t.Fatalf("%d pages, %d keys; want 3 pages, %d keys", pages, len(got), total)
	}
	for i, k := range got {
		if want := fmt.Sprintf("k%03d", i); k != want {
			t.Fatalf("key %d is %q, want %q (sorted, no duplicates)", i, k, want)
		}
	}

	var p keyPage
	decode(t, expect(t, "values", do(t, "GET", n.url+"/v1/maps/m?values=true&after=k248", nil), http.StatusOK), &p)
	if len(p.Keys) != 2 || p.Keys[0].Key != "k249" || *p.Keys[0].Value != "v249" || p.Keys[1].Key != "other" || !p.Keys[1].Base64 || *p.Keys[1].Value != "/w==" || p.Next != "" {
		t.Errorf("last page with values = %+v", p.Keys)
	}
}

// A replica that cannot load (Redis does not answer) makes its map's requests answer 503
// until it has loaded; here the node's link to Redis is stalled while it starts.
func TestNodeNotReady(t *testing.T) {
	srv := startRedis(t)
	proxy, err := faultproxy.New(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	prefix := newPrefix()
	writer := startNode(t, srv.URL(), prefix, Config{Maps: []string{"m"}})
	writer.waitReady(t)
	expect(t, "PUT", do(t, "PUT", writer.url+"/v1/maps/m/keys/k", strings.NewReader("v")), http.StatusOK)

	// The node connects (redisconn.Open checks Redis answers), then the link stalls before
	// its replica can load.
	n := startNodeStalled(t, "redis://"+proxy.Addr(), prefix, proxy, Config{Maps: []string{"m"}})
	for _, r := range []reply{
		do(t, "GET", n.url+"/v1/maps/m/keys/k", nil),
		do(t, "PUT", n.url+"/v1/maps/m/keys/k", strings.NewReader("x")),
		do(t, "DELETE", n.url+"/v1/maps/m/keys/k", nil),
		do(t, "GET", n.url+"/v1/maps/m", nil),
	} {
		expect(t, "before ready", r, http.StatusServiceUnavailable)
		if r.hdr.Get("Retry-After") == "" || !strings.Contains(r.errorText(), "loading") {
			t.Errorf("503 without Retry-After or without saying why: %q", r.body)
		}
	}
	r := expect(t, "readyz before ready", do(t, "GET", n.url+"/readyz", nil), http.StatusServiceUnavailable)
	if !strings.Contains(r.body, `"m":"loading"`) {
		t.Errorf("readyz body %q does not say the map is loading", r.body)
	}
	expect(t, "healthz before ready", do(t, "GET", n.url+"/healthz", nil), http.StatusOK)
	if n.maps["m"].m.Ready() {
		t.Fatal("the replica loaded through a stalled link: the test proved nothing")
	}

	proxy.SetStalled(false)
	n.waitReady(t)
	if r := expect(t, "GET after ready", do(t, "GET", n.url+"/v1/maps/m/keys/k", nil), http.StatusOK); r.body != "v" {
		t.Errorf("GET after ready = %q", r.body)
	}
	waitFor(t, 10*time.Second, "readyz 200", func() bool { return do(t, "GET", n.url+"/readyz", nil).code == http.StatusOK })
}

// startNodeStalled is startNode with the proxy stalled after the connection is made and
// before the node starts.
func startNodeStalled(t *testing.T, url, prefix string, proxy *faultproxy.Proxy, cfg Config) *testNode {
	t.Helper()
	orig := beforeNew
	beforeNew = func() { proxy.SetStalled(true) }
	defer func() { beforeNew = orig }()
	return startNode(t, url, prefix, cfg)
}

package node

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/eventjson"
	"github.com/redisync/redisync/replmap"
)

func TestWireKey(t *testing.T) {
	for _, tc := range []struct {
		key, want string
		escaped   bool
	}{
		{"plain", "plain", false},
		{"a/b c%", "a/b c%", false},
		{"ünï", "ünï", false},
		{"\xff", "%FF", true},
		{"a/\xfe b%", "a%2F%FE%20b%25", true},
		{"z\xc3", "z%C3", true}, // a truncated UTF-8 sequence
	} {
		got, escaped := eventjson.Key(tc.key)
		if got != tc.want || escaped != tc.escaped {
			t.Errorf("eventjson.Key(%q) = %q, %v; want %q, %v", tc.key, got, escaped, tc.want, tc.escaped)
		}
		if !escaped {
			continue
		}
		// The escaped form names the same bytes in a path and in a query.
		if back, err := url.PathUnescape(got); err != nil || back != tc.key {
			t.Errorf("PathUnescape(%q) = %q, %v; want %q", got, back, err, tc.key)
		}
		if back, err := url.QueryUnescape(got); err != nil || back != tc.key {
			t.Errorf("QueryUnescape(%q) = %q, %v; want %q", got, back, err, tc.key)
		}
	}
}

// Keys are bytes: a key that is not UTF-8 is listed percent-encoded with "key_escaped":true,
// answers at the path it is listed under, and paging over such keys ends, each key listed
// once.
func TestNodeNonUTF8Keys(t *testing.T) {
	srv := startRedis(t)
	n := startNode(t, srv.URL(), newPrefix(), Config{Maps: []string{"m"}})
	n.waitReady(t)
	keys := []string{"a", "\xfe", "\xff", "\xff\xff", "\xffb", "z\xc3", "é", "%41", "~x"}
	// Written through the library (as any other client may), and one through the API.
	var ops []replmap.Op[[]byte]
	for _, k := range keys[1:] {
		ops = append(ops, replmap.Op[[]byte]{Key: k, Value: []byte("v:" + k)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.maps["m"].m.Write(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	r := expect(t, "PUT", do(t, "PUT", n.url+"/v1/maps/m/keys/a", strings.NewReader("v:a")), http.StatusOK)
	var res writeResult
	decode(t, r, &res)
	if res.Key != "a" || res.KeyEscaped {
		t.Errorf("PUT a answered %s", r.body)
	}
	r = expect(t, "PUT \\xfe", do(t, "PUT", n.url+"/v1/maps/m/keys/%FE", strings.NewReader("v:\xfe")), http.StatusOK)
	decode(t, r, &res)
	if res.Key != "%FE" || !res.KeyEscaped {
		t.Errorf("PUT %%FE answered %s, want key %%FE with key_escaped", r.body)
	}

	var listed []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 2*len(keys) {
			t.Fatalf("paging did not end after %d pages (keys so far %q)", pages, listed)
		}
		u := n.url + "/v1/maps/m?limit=2&values=true"
		if after != "" {
			u += "&after=" + after
		}
		var p struct {
			Keys []struct {
				Key        string `json:"key"`
				KeyEscaped bool   `json:"key_escaped"`
				Value      string `json:"value"`
				Base64     bool   `json:"base64"`
			} `json:"keys"`
			Next        string `json:"next"`
			NextEscaped bool   `json:"next_escaped"`
		}
		r := expect(t, "list", do(t, "GET", u, nil), http.StatusOK)
		if err := json.Unmarshal([]byte(r.body), &p); err != nil {
			t.Fatal(err)
		}
		for _, k := range p.Keys {
			key, path := k.Key, url.PathEscape(k.Key)
			if k.KeyEscaped {
				var err error
				if key, err = url.PathUnescape(k.Key); err != nil {
					t.Fatalf("escaped key %q: %v", k.Key, err)
				}
				path = k.Key // already in URL form
			}
			listed = append(listed, key)
			value := k.Value
			if k.Base64 {
				b, _ := base64.StdEncoding.DecodeString(k.Value)
				value = string(b)
			}
			if value != "v:"+key {
				t.Errorf("key %q listed with value %q (base64 %v)", key, k.Value, k.Base64)
			}
			if g := do(t, "GET", n.url+"/v1/maps/m/keys/"+path, nil); g.code != http.StatusOK || g.body != "v:"+key {
				t.Errorf("GET of the listed key %q at %s: %d %q", key, path, g.code, g.body)
			}
		}
		if p.Next == "" {
			break
		}
		after = url.QueryEscape(p.Next)
		if p.NextEscaped {
			after = p.Next
		}
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Fatalf("listed %q, want %q (byte order, each once)", listed, want)
	}

	// A change event carries the key the same way.
	s := openSSE(t, n.url+"/v1/maps/m/watch")
	<-s.ready
	expect(t, "DELETE", do(t, "DELETE", n.url+"/v1/maps/m/keys/%FF%FF", nil), http.StatusOK)
	var w wireWrite
	if err := json.Unmarshal([]byte(s.next(10*time.Second).data), &w); err != nil || len(w.Changes) != 1 ||
		w.Changes[0].Key != "%FF%FF" || !w.Changes[0].KeyEscaped {
		t.Fatalf("the delete's event %+v (%v), want key %%FF%%FF with key_escaped", w, err)
	}
}

package node

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/faultproxy"
	"github.com/redisync/redisync/replmap"
)

// checkReplicaEqualsRedis fails the test unless m's replica holds exactly Redis's state of
// the map and Verify finds the digests equal.
func checkReplicaEqualsRedis(t *testing.T, who string, n *testNode, m *replmap.Map[[]byte], stateKey string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	state, err := n.rc.Do(ctx, n.rc.B().Hgetall().Key(stateKey).Build()).AsStrMap()
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != len(state) {
		t.Errorf("%s: the replica holds %d keys, Redis %d", who, m.Len(), len(state))
	}
	for k, stored := range state {
		ver, value, _ := strings.Cut(stored, ":")
		v, got, err := m.Get(k)
		if err != nil || strconv.FormatUint(got, 10) != ver || string(v) != value {
			t.Errorf("%s: key %q is %q at %d (%v) in the replica, %q at %s in Redis", who, k, v, got, err, value, ver)
		}
	}
	if v, err := m.Verify(ctx); err != nil || !v.Match {
		t.Errorf("%s: Verify = %+v, %v; want a match", who, v, err)
	}
}

// The forged-record attack through the gateway (PROTOCOL.md, section 7): a node that relays
// the map's name as a channel is asked to publish a change record on it. Kinds are enforced:
// the publish answers 409, nothing is appended, and every replica still equals Redis.
func TestNodeForgedChangeRecord(t *testing.T) {
	srv := startRedis(t)
	prefix := newPrefix()
	a := startNode(t, srv.URL(), prefix, Config{Maps: []string{"m"}})
	b := startNode(t, srv.URL(), prefix, Config{Maps: []string{"m"}})
	relay := startNode(t, srv.URL(), prefix, Config{Channels: []string{"m"}})
	a.waitReady(t)
	b.waitReady(t)
	for _, kv := range [][2]string{{"k", "original"}, {"other", "x"}} {
		expect(t, "PUT", do(t, "PUT", a.url+"/v1/maps/m/keys/"+kv[0], strings.NewReader(kv[1])), http.StatusOK)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(t, 10*time.Second, "b to apply the writes", func() bool { return b.maps["m"].m.Position() == a.maps["m"].m.Position() })
	before, err := a.cl.Head(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	seq := strconv.FormatUint(before.Seq+1, 10)
	for _, forged := range []string{
		"m1 1 s 0 1 6\nkHACKED",                        // set k to HACKED, as a record of seq head+1
		"m1 2 s 0 1 6 d " + seq + " 5 0\nkHACKEDother", // and delete other
		"m1 1 s 0 3 1\nnewX",                           // create a key
	} {
		for _, ct := range []string{"application/octet-stream", "application/json"} {
			r := do(t, "POST", relay.url+"/v1/channels/m", strings.NewReader(forged), "Content-Type", ct)
			expect(t, "POST of a change record on the map's name", r, http.StatusConflict)
			if !strings.Contains(r.errorText(), `"m" is a map, not a channel`) {
				t.Errorf("409 error %q does not say that m is a map", r.errorText())
			}
		}
	}
	if after, err := a.cl.Head(ctx, "m"); err != nil || after != before {
		t.Fatalf("the map's head moved from %v to %v (%v): a forged record was appended", before, after, err)
	}
	time.Sleep(200 * time.Millisecond) // what pub/sub would have brought
	state := prefix + ":{m}:state"
	checkReplicaEqualsRedis(t, "a", a, a.maps["m"].m, state)
	checkReplicaEqualsRedis(t, "b", b, b.maps["m"].m, state)
	for _, n := range []*testNode{a, b} {
		if r := do(t, "GET", n.url+"/v1/maps/m/keys/k", nil); r.body != "original" {
			t.Errorf("GET k = %q", r.body)
		}
		expect(t, "GET new", do(t, "GET", n.url+"/v1/maps/m/keys/new", nil), http.StatusNotFound)
	}
}

// A replica found different from Redis is not ready until it has reloaded, and /readyz says
// so meanwhile: here Redis's digest is made wrong, and Verify finds the mismatch. The node's
// link to Redis is slowed so that the reload takes a while.
func TestNodeReadyzFollowsReplica(t *testing.T) {
	srv := startRedis(t)
	proxy, err := faultproxy.New(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	prefix := newPrefix()
	n := startNode(t, "redis://"+proxy.Addr(), prefix, Config{Maps: []string{"m"}})
	n.waitReady(t)
	expect(t, "PUT", do(t, "PUT", n.url+"/v1/maps/m/keys/k", strings.NewReader("v")), http.StatusOK)
	expect(t, "readyz", do(t, "GET", n.url+"/readyz", nil), http.StatusOK)
	m := n.maps["m"].m

	meta := prefix + ":{m}:meta"
	dx, err := srv.Do("HGET", meta, "dx")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Do("HSET", meta, "dx", "12345"); err != nil {
		t.Fatal(err)
	}
	proxy.SetLatency(300 * time.Millisecond) // the reload's round trips take a while
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	v, err := m.Verify(ctx)
	if err != nil || v.Match {
		t.Fatalf("Verify with a wrong digest in Redis = %+v, %v; want a mismatch", v, err)
	}
	r := expect(t, "readyz after the mismatch", do(t, "GET", n.url+"/readyz", nil), http.StatusServiceUnavailable)
	if !strings.Contains(r.body, `"m":"reloading"`) {
		t.Errorf("readyz %q does not say the map is reloading", r.body)
	}
	r = expect(t, "GET while reloading", do(t, "GET", n.url+"/v1/maps/m/keys/k", nil), http.StatusServiceUnavailable)
	if r.hdr.Get("Retry-After") == "" || !strings.Contains(r.errorText(), "reloading") {
		t.Errorf("GET while reloading: %q", r.body)
	}
	if _, err := srv.Do("HSET", meta, "dx", dx); err != nil {
		t.Fatal(err)
	}
	proxy.SetLatency(0)
	waitFor(t, 20*time.Second, "readyz 200 after the reload", func() bool { return do(t, "GET", n.url+"/readyz", nil).code == http.StatusOK })
	if !m.Ready() || m.Stats().Divergences != 1 || m.Stats().Resnapshots < 1 {
		t.Fatalf("after the reload: ready %v, stats %+v", m.Ready(), m.Stats())
	}
	if r := expect(t, "GET after the reload", do(t, "GET", n.url+"/v1/maps/m/keys/k", nil), http.StatusOK); r.body != "v" {
		t.Fatalf("GET after the reload = %q", r.body)
	}
}

package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/wire"
)

// Two nodes on one Redis: both are in the registry, a write on one is read on the other and
// seen in a stream of the other, their replicas agree, and one that closes leaves the registry.
func TestNodeTwoNodes(t *testing.T) {
	srv := startRedis(t)
	prefix := newPrefix()
	a := startNode(t, srv.URL(), prefix, Config{ID: "node-a", Maps: []string{"m"}, Channels: []string{"c"}})
	b := startNode(t, srv.URL(), prefix, Config{ID: "node-b", Maps: []string{"m"}, Channels: []string{"c"}})
	a.waitReady(t)
	b.waitReady(t)

	var view nodesView
	waitFor(t, 10*time.Second, "both nodes in the registry", func() bool {
		decode(t, expect(t, "GET /v1/nodes", do(t, "GET", a.url+"/v1/nodes", nil), http.StatusOK), &view)
		return len(view.Nodes) == 2
	})
	if view.Self != "node-a" || view.Nodes[0].ID != "node-a" || view.Nodes[1].ID != "node-b" {
		t.Fatalf("registry seen from a: self %q, nodes %+v", view.Self, view.Nodes)
	}
	for i, rec := range view.Nodes {
		want := []*testNode{a, b}[i]
		if rec.Addr != strings.TrimPrefix(want.url, "http://") || rec.Version == "" || rec.Started.IsZero() || rec.TTLMillis != 1000 ||
			len(rec.Maps) != 1 || rec.Maps[0].Name != "m" || len(rec.Channels) != 1 || rec.Channels[0].Name != "c" {
			t.Errorf("record %d = %+v", i, rec)
		}
	}

	watch := openSSE(t, b.url+"/v1/maps/m/watch")
	r := expect(t, "PUT on a", do(t, "PUT", a.url+"/v1/maps/m/keys/greeting", strings.NewReader("hello")), http.StatusOK)
	ver := version(t, r)
	waitFor(t, 5*time.Second, "the write on b", func() bool {
		r := do(t, "GET", b.url+"/v1/maps/m/keys/greeting", nil)
		return r.code == http.StatusOK && r.body == "hello" && r.hdr.Get("ETag") == etag(ver)
	})
	ev := watch.next(5 * time.Second)
	var w wireWrite
	if err := json.Unmarshal([]byte(ev.data), &w); err != nil || w.Seq != ver || len(w.Changes) != 1 || w.Changes[0].Key != "greeting" || *w.Changes[0].Value != "hello" {
		t.Fatalf("b's stream got %+v, want the write of greeting at %d", ev, ver)
	}
	events := openSSE(t, b.url+"/v1/channels/c/events")
	expect(t, "POST on a", do(t, "POST", a.url+"/v1/channels/c", strings.NewReader("ping")), http.StatusOK)
	if ev := events.next(5 * time.Second); !strings.Contains(ev.data, `"data":"ping"`) {
		t.Fatalf("b's channel stream got %+v", ev)
	}

	waitFor(t, 10*time.Second, "both replicas in sync at the write", func() bool {
		decode(t, do(t, "GET", b.url+"/v1/nodes", nil), &view)
		if len(view.Nodes) != 2 || len(view.Maps) != 1 || view.Maps[0].State != StateInSync {
			return false
		}
		ma, mb := view.Nodes[0].Maps[0], view.Nodes[1].Maps[0]
		return ma.Seq == ver && mb.Seq == ver && ma.Digest == mb.Digest && ma.Keys == 1 &&
			ma.RedisMatch != nil && *ma.RedisMatch && mb.RedisMatch != nil && *mb.RedisMatch
	})

	b.Close()
	recs, err := ListNodes(context.Background(), a.rc, prefix)
	if err != nil || len(recs) != 1 || recs[0].ID != "node-a" {
		t.Fatalf("registry after b closed: %+v, %v; want node-a alone", recs, err)
	}
}

// A node that dies without deregistering disappears after its TTL, and its index entry is
// pruned by the next reader.
func TestNodeRegistryExpiry(t *testing.T) {
	srv := startRedis(t)
	prefix := newPrefix()
	a := startNode(t, srv.URL(), prefix, Config{ID: "alive", Maps: []string{"m"}})
	rec, _ := json.Marshal(Record{ID: "dead", Addr: "127.0.0.1:1", Maps: []MapRecord{}, Channels: []ChannelRecord{}})
	if _, err := srv.Do("SET", prefix+":{nodes}:node:dead", string(rec), "PX", "300"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Do("SADD", prefix+":{nodes}:index", "dead"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	waitFor(t, 5*time.Second, "both nodes listed", func() bool {
		recs, err := ListNodes(ctx, a.rc, prefix)
		return err == nil && len(recs) == 2 && recs[0].ID == "alive" && recs[1].ID == "dead"
	})
	waitFor(t, 5*time.Second, "the dead node gone", func() bool {
		recs, err := ListNodes(ctx, a.rc, prefix)
		return err == nil && len(recs) == 1 && recs[0].ID == "alive"
	})
	if got, _ := srv.Do("SISMEMBER", prefix+":{nodes}:index", "dead"); got != "0" {
		t.Errorf("the dead node is still in the index (SISMEMBER = %s)", got)
	}
	if got, _ := srv.Do("SISMEMBER", prefix+":{nodes}:index", "alive"); got != "1" {
		t.Errorf("the live node left the index (SISMEMBER = %s)", got)
	}
}

func TestNodeAgreement(t *testing.T) {
	yes, no := true, false
	rec := func(id string, maps ...MapRecord) Record { return Record{ID: id, Maps: maps} }
	m := func(seq uint64, digest string, lag uint64) MapRecord {
		return MapRecord{Name: "m", Ready: true, Epoch: "e", Seq: seq, Digest: digest, Lag: lag}
	}
	loading := MapRecord{Name: "m"}
	mismatch := m(5, "d5", 0)
	mismatch.RedisMatch = &no
	match := m(5, "d5", 0)
	match.RedisMatch = &yes
	for _, tc := range []struct {
		name  string
		nodes []Record
		want  string
	}{
		{"one node", []Record{rec("a", m(5, "d5", 0))}, StateInSync},
		{"equal", []Record{rec("a", match), rec("b", m(5, "d5", 0))}, StateInSync},
		{"same seq, other digest", []Record{rec("a", m(5, "d5", 0)), rec("b", m(5, "x", 0))}, StateDiverged},
		{"disagrees with Redis", []Record{rec("a", mismatch), rec("b", m(5, "d5", 0))}, StateDiverged},
		{"one behind", []Record{rec("a", m(5, "d5", 0)), rec("b", m(4, "d4", 1))}, StateCatchingUp},
		{"sampled at other seqs, none behind", []Record{rec("a", m(5, "d5", 0)), rec("b", m(6, "d6", 0))}, StateInSync},
		{"loading", []Record{rec("a", m(5, "d5", 0)), rec("b", loading)}, StateLoading},
		{"diverged beats loading", []Record{rec("a", m(5, "d5", 0)), rec("b", m(5, "x", 0)), rec("c", loading)}, StateDiverged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Agreement(tc.nodes)
			if len(got) != 1 || got[0].State != tc.want || got[0].Map != "m" || got[0].Nodes != len(tc.nodes) || got[0].Detail == "" {
				t.Fatalf("Agreement = %+v, want state %q", got, tc.want)
			}
		})
	}
	if got := Agreement(nil); len(got) != 0 {
		t.Errorf("Agreement(nil) = %+v", got)
	}
}

// nodesJSON is the answer of GET /v1/nodes as a client reads it, decoded independently of the
// types that encode it.
type nodesJSON struct {
	Self  string `json:"self"`
	Local bool   `json:"local"`
	Nodes []struct {
		ID           string   `json:"id"`
		State        string   `json:"state"`
		HeartbeatAge *float64 `json:"heartbeat_age_seconds"`
		HeartbeatMS  int64    `json:"heartbeat_ms"`
		Maps         []struct {
			Name     string  `json:"name"`
			Ready    bool    `json:"ready"`
			Seq      uint64  `json:"seq"`
			Digest   string  `json:"digest"`
			Lag      uint64  `json:"lag"`
			HeadNow  uint64  `json:"head_now"`
			LagNow   *uint64 `json:"lag_now"`
			Diverged *bool   `json:"diverged"`
		} `json:"maps"`
	} `json:"nodes"`
	Gone []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	} `json:"gone"`
	Maps []struct {
		Map     string `json:"map"`
		State   string `json:"state"`
		Detail  string `json:"detail"`
		HeadNow uint64 `json:"head_now"`
	} `json:"maps"`
	Health struct {
		Level    string   `json:"level"`
		Summary  string   `json:"summary"`
		Problems []string `json:"problems"`
	} `json:"health"`
}

// readNodes answers GET /v1/nodes of n; the answer must be 200.
func readNodes(t *testing.T, url string) nodesJSON {
	t.Helper()
	var v nodesJSON
	decode(t, expect(t, "GET /v1/nodes", do(t, "GET", url+"/v1/nodes", nil), http.StatusOK), &v)
	return v
}

// A node frozen with SIGSTOP while writes go on: the registry shows it late, with its lag
// from the map's head read now (its own last report says 0), the map catching up; once its
// record expires it is gone, not silently absent.
func TestNodeRegistryFrozenNode(t *testing.T) {
	srv := startRedis(t)
	prefix := newPrefix()
	a := startNode(t, srv.URL(), prefix, Config{ID: "node-a", Maps: []string{"m"}})
	a.waitReady(t)
	f := startNodeProcess(t, nodeProcessSpec{Redis: srv.URL(), Prefix: prefix, ID: "node-f", Maps: []string{"m"},
		Heartbeat: 100 * time.Millisecond, TTL: time.Second})
	expect(t, "PUT", do(t, "PUT", a.url+"/v1/maps/m/keys/k0", strings.NewReader("v")), http.StatusOK)
	waitFor(t, 10*time.Second, "both nodes live and in sync", func() bool {
		v := readNodes(t, a.url)
		return len(v.Nodes) == 2 && v.Nodes[1].ID == "node-f" && v.Nodes[1].State == NodeLive &&
			len(v.Maps) == 1 && v.Maps[0].State == StateInSync && v.Nodes[1].Maps[0].Seq == 1
	})
	f.freeze(t)
	frozen := time.Now()
	const writes = 10
	for i := 1; i <= writes; i++ {
		expect(t, "PUT", do(t, "PUT", a.url+fmt.Sprint("/v1/maps/m/keys/k", i), strings.NewReader("v")), http.StatusOK)
	}
	var v nodesJSON
	waitFor(t, 5*time.Second, "node-f late", func() bool {
		v = readNodes(t, a.url)
		return len(v.Nodes) == 2 && v.Nodes[1].State == NodeLate
	})
	if time.Since(frozen) > time.Second {
		t.Fatalf("node-f late only %v after it froze (heartbeat 100ms, TTL 1s)", time.Since(frozen))
	}
	fm := v.Nodes[1].Maps[0]
	if fm.Seq != 1 || fm.Lag != 0 || fm.LagNow == nil || *fm.LagNow != writes || fm.HeadNow != 1+writes {
		t.Errorf("node-f's replica: seq %d, reported lag %d, lag now %v, head now %d; want seq 1, reported 0, lag from the head %d, head %d",
			fm.Seq, fm.Lag, fm.LagNow, fm.HeadNow, writes, 1+writes)
	}
	if v.Nodes[1].HeartbeatAge == nil || *v.Nodes[1].HeartbeatAge < 0.2 || v.Nodes[1].HeartbeatMS != 100 {
		t.Errorf("node-f's heartbeat age %v (heartbeat_ms %d), want at least two periods of 100ms", v.Nodes[1].HeartbeatAge, v.Nodes[1].HeartbeatMS)
	}
	if v.Maps[0].State != StateCatchingUp || !strings.Contains(v.Maps[0].Detail, "node-f") || v.Maps[0].HeadNow != 1+writes {
		t.Errorf("map m: %+v; want catching up, naming node-f, head %d", v.Maps[0], 1+writes)
	}
	if v.Health.Level != HealthWarn || !strings.Contains(v.Health.Summary, "1 node late") {
		t.Errorf("health %+v, want a warning: 1 node late", v.Health)
	}

	waitFor(t, 10*time.Second, "node-f gone", func() bool {
		v = readNodes(t, a.url)
		return len(v.Nodes) == 1 && len(v.Gone) == 1
	})
	if v.Gone[0].ID != "node-f" || v.Gone[0].State != NodeGone || v.Health.Level != HealthBad || !strings.Contains(v.Health.Summary, "1 node gone") {
		t.Errorf("after node-f's record expired: gone %+v, health %+v; want node-f gone, health bad", v.Gone, v.Health)
	}
	if recs, err := ListNodes(context.Background(), a.rc, prefix); err != nil || len(recs) != 1 {
		t.Errorf("ListNodes lists the live nodes only: %+v, %v", recs, err)
	}
}

// Replicas whose digest differs from Redis's at the same seq (Redis's digest field dx
// tampered with) are diverged, and so is the map.
func TestNodeRegistryDiverged(t *testing.T) {
	srv := startRedis(t)
	prefix := newPrefix()
	a := startNode(t, srv.URL(), prefix, Config{ID: "node-a", Maps: []string{"m"}})
	b := startNode(t, srv.URL(), prefix, Config{ID: "node-b", Maps: []string{"m"}})
	a.waitReady(t)
	b.waitReady(t)
	for i := range 3 {
		expect(t, "PUT", do(t, "PUT", a.url+fmt.Sprint("/v1/maps/m/keys/k", i), strings.NewReader("v")), http.StatusOK)
	}
	waitFor(t, 10*time.Second, "both replicas in sync", func() bool {
		v := readNodes(t, a.url)
		return len(v.Maps) == 1 && v.Maps[0].State == StateInSync && len(v.Nodes) == 2 && v.Nodes[0].Maps[0].Seq == 3 && v.Nodes[1].Maps[0].Seq == 3
	})
	if _, err := srv.Do("HSET", prefix+":{m}:meta", "dx", "12345"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "both replicas diverged", func() bool {
		v := readNodes(t, a.url)
		if len(v.Maps) != 1 || v.Maps[0].State != StateDiverged || v.Health.Level != HealthBad || len(v.Nodes) != 2 {
			return false
		}
		for _, n := range v.Nodes {
			if d := n.Maps[0].Diverged; d == nil || !*d {
				return false
			}
		}
		return true
	})
}

// While Redis does not answer, GET /v1/nodes?local=true answers at once this node's own
// state, and GET /v1/nodes says within its timeout (WriteTimeout, at most 2s) that Redis is
// unreachable, in words for a read.
func TestNodeRegistryRedisFrozen(t *testing.T) {
	srv := startRedis(t)
	prefix := newPrefix()
	a := startNode(t, srv.URL(), prefix, Config{ID: "node-a", Maps: []string{"m"}, WriteTimeout: 500 * time.Millisecond})
	a.waitReady(t)
	expect(t, "PUT", do(t, "PUT", a.url+"/v1/maps/m/keys/k", strings.NewReader("v")), http.StatusOK)
	srv.Pause()
	defer srv.Resume()

	start := time.Now()
	var v nodesJSON
	decode(t, expect(t, "GET /v1/nodes?local=true", do(t, "GET", a.url+"/v1/nodes?local=true", nil), http.StatusOK), &v)
	if took := time.Since(start); took > time.Second {
		t.Errorf("the local view took %v with Redis frozen", took)
	}
	if !v.Local || v.Self != "node-a" || len(v.Nodes) != 1 || v.Nodes[0].ID != "node-a" || len(v.Nodes[0].Maps) != 1 ||
		v.Nodes[0].Maps[0].Seq != 1 || !v.Nodes[0].Maps[0].Ready || len(v.Maps) != 1 || v.Maps[0].Map != "m" || v.Maps[0].State != StateUnknown {
		t.Errorf("the local view: %+v", v)
	}

	start = time.Now()
	r := expect(t, "GET /v1/nodes", do(t, "GET", a.url+"/v1/nodes", nil), http.StatusServiceUnavailable)
	took := time.Since(start)
	msg := r.errorText()
	t.Logf("GET /v1/nodes with Redis frozen: %v: %s", took.Round(time.Millisecond), msg)
	if took > 2*time.Second || !strings.HasPrefix(msg, "Redis unreachable: ") || !strings.Contains(msg, "registry") ||
		strings.Contains(msg, "applied") || strings.Contains(msg, "confirmed") {
		t.Errorf("GET /v1/nodes answered after %v: %q; want within a few seconds \"Redis unreachable\" about reading the registry, no words of a write", took, msg)
	}
	expect(t, "GET /v1/nodes?local=nope", do(t, "GET", a.url+"/v1/nodes?local=nope", nil), http.StatusBadRequest)
}

// ReadRegistry lists a node whose record expired as gone within GoneAfter, not beyond, and
// forgets those older than MaxGoneAfter.
func TestNodeRegistryGoneAfter(t *testing.T) {
	srv := startRedis(t)
	prefix := newPrefix()
	a := startNode(t, srv.URL(), prefix, Config{ID: "node-a", Maps: []string{"m"}})
	now := time.Now()
	for id, ago := range map[string]time.Duration{"recent": time.Second, "older": 10 * time.Second, "ancient": MaxGoneAfter + time.Hour} {
		if _, err := srv.Do("ZADD", prefix+":{nodes}:expires", fmt.Sprint(now.Add(-ago).UnixMilli()), id); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	gone := func(opt ReadOptions) string {
		t.Helper()
		reg, err := ReadRegistry(ctx, a.rc, prefix, opt)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, g := range reg.Gone {
			if g.State != NodeGone || g.GoneSeconds <= 0 {
				t.Errorf("gone node %+v", g)
			}
			ids = append(ids, g.ID)
		}
		return strings.Join(ids, ",")
	}
	waitFor(t, 5*time.Second, "node-a registered", func() bool {
		reg, err := ReadRegistry(ctx, a.rc, prefix, ReadOptions{})
		return err == nil && len(reg.Nodes) == 1 && reg.Nodes[0].State == NodeLive
	})
	if got := gone(ReadOptions{}); got != "older,recent" {
		t.Errorf("gone within the default window: %q", got)
	}
	if got := gone(ReadOptions{GoneAfter: 5 * time.Second}); got != "recent" {
		t.Errorf("gone within 5s: %q", got)
	}
	if got := gone(ReadOptions{GoneAfter: -1}); got != "" {
		t.Errorf("gone with a negative window: %q", got)
	}
	if got, _ := srv.Do("ZSCORE", prefix+":{nodes}:expires", "ancient"); got != "" {
		t.Errorf("a node gone beyond MaxGoneAfter is still in the registry (score %q)", got)
	}
	if _, err := ReadRegistry(ctx, a.rc, prefix, ReadOptions{GoneAfter: MaxGoneAfter + time.Second}); err == nil {
		t.Error("GoneAfter beyond MaxGoneAfter: no error")
	}
	a.Close()
	if got, _ := srv.Do("ZSCORE", prefix+":{nodes}:expires", "node-a"); got != "" {
		t.Errorf("a node that left is still in the expiries (score %q): it would show as gone", got)
	}
}

// agree with the heads read now: a late node's replica behind the head makes its map catch up,
// a live one's does not (the head moved since its heartbeat); a replica at the head whose
// digest is not Redis's, and replicas that differ at the same seq, are diverged.
func TestNodeAgreeWithHeads(t *testing.T) {
	d := func(x uint64) string { return wireDigest(x).String() }
	rep := func(seq uint64, digest string, lagNow uint64) ReplicaStatus {
		return ReplicaStatus{MapRecord: MapRecord{Name: "m", Ready: true, Epoch: "e", Seq: seq, Digest: digest, Keys: 1}, LagNow: lagNow}
	}
	node := func(id, state string, reps ...ReplicaStatus) NodeStatus {
		return NodeStatus{Record: Record{ID: id}, State: state, Maps: reps}
	}
	heads := map[string]mapHead{"m": {epoch: "e", seq: 9, digest: wireDigest(9), keys: 1}}
	for _, tc := range []struct {
		name     string
		nodes    []NodeStatus
		want     string
		diverged []bool // per node
	}{
		{"live, head moved since", []NodeStatus{node("a", NodeLive, rep(7, d(7), 2)), node("b", NodeLive, rep(8, d(8), 1))}, StateInSync, []bool{false, false}},
		{"late and behind", []NodeStatus{node("a", NodeLive, rep(9, d(9), 0)), node("f", NodeLate, rep(3, d(3), 6))}, StateCatchingUp, []bool{false, false}},
		{"late, not behind", []NodeStatus{node("a", NodeLive, rep(9, d(9), 0)), node("f", NodeLate, rep(9, d(9), 0))}, StateInSync, []bool{false, false}},
		{"other digest than Redis at the head", []NodeStatus{node("a", NodeLive, rep(9, d(9), 0)), node("b", NodeLive, rep(9, d(1), 0))}, StateDiverged, []bool{true, true}},
		{"other digest than Redis alone", []NodeStatus{node("a", NodeLive, rep(9, d(1), 0)), node("b", NodeLive, rep(8, d(8), 1))}, StateDiverged, []bool{true, false}},
		{"replicas differ below the head", []NodeStatus{node("a", NodeLive, rep(5, d(5), 4)), node("b", NodeLive, rep(5, d(1), 4)), node("c", NodeLive, rep(9, d(9), 0))}, StateDiverged, []bool{true, true, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := agree(tc.nodes, heads)
			if len(got) != 1 || got[0].State != tc.want || got[0].HeadNow != 9 || got[0].RedisDigest != d(9) {
				t.Fatalf("agree = %+v, want state %q at head 9", got, tc.want)
			}
			if tc.nodes[len(tc.nodes)-1].State == NodeLate && !strings.Contains(got[0].Detail, "late: node f") {
				t.Errorf("detail %q does not name the late node", got[0].Detail)
			}
			for i, n := range tc.nodes {
				if n.Maps[0].Diverged != tc.diverged[i] {
					t.Errorf("node %s: diverged %v, want %v", n.ID, n.Maps[0].Diverged, tc.diverged[i])
				}
			}
		})
	}
}

func TestNodeRegistryHealth(t *testing.T) {
	late := NodeStatus{Record: Record{ID: "f", HeartbeatMillis: 200}, State: NodeLate, HeartbeatAgeSeconds: 1.5}
	for _, tc := range []struct {
		name           string
		reg            Registry
		level, summary string
	}{
		{"healthy", Registry{Maps: []MapAgreement{{Map: "m", State: StateCatchingUp}}}, HealthOK, "healthy"},
		{"late", Registry{Nodes: []NodeStatus{late}}, HealthWarn, "1 node late"},
		{"gone beats late", Registry{Nodes: []NodeStatus{late}, Gone: []GoneNode{{ID: "g"}, {ID: "h"}}}, HealthBad, "1 node late, 2 nodes gone"},
		{"diverged", Registry{Maps: []MapAgreement{{Map: "m", State: StateDiverged}, {Map: "n", State: StateLoading}}}, HealthBad, "map m diverged, map n loading"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := health(tc.reg)
			if h.Level != tc.level || h.Summary != tc.summary || (tc.level == HealthOK) != (len(h.Problems) == 0) {
				t.Errorf("health = %+v, want %s: %q", h, tc.level, tc.summary)
			}
		})
	}
	if h := health(Registry{Nodes: []NodeStatus{late}}); h.Problems[0] != "node f is late: its last heartbeat was 1.5s ago (it beats every 200ms)" {
		t.Errorf("problem %q", h.Problems[0])
	}
}

// wireDigest is a digest that stands for x in tests.
func wireDigest(x uint64) wire.Digest { return wire.Digest{X: x, Y: x} }

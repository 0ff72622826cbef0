package node

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
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

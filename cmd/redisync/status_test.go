package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
)

// registryJSON is what "redisync status --json" and GET /v1/nodes say of the registry, decoded
// independently of the types that encode it.
type registryJSON struct {
	Nodes []struct {
		ID    string `json:"id"`
		State string `json:"state"`
		Maps  []struct {
			Name     string  `json:"name"`
			Seq      uint64  `json:"seq"`
			Lag      uint64  `json:"lag"`
			LagNow   *uint64 `json:"lag_now"`
			HeadNow  uint64  `json:"head_now"`
			Diverged bool    `json:"diverged"`
		} `json:"maps"`
	} `json:"nodes"`
	Gone []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	} `json:"gone"`
	Maps []struct {
		Map   string `json:"map"`
		State string `json:"state"`
	} `json:"maps"`
	Health struct {
		Level   string `json:"level"`
		Summary string `json:"summary"`
	} `json:"health"`
}

// states sums up r for comparisons: each node's state and each replica's seq and lag from
// the head, the gone nodes, each map's state, the health.
func (r registryJSON) states() string {
	var b strings.Builder
	for _, n := range r.Nodes {
		fmt.Fprintf(&b, "node %s %s;", n.ID, n.State)
		for _, m := range n.Maps {
			lag := "?"
			if m.LagNow != nil {
				lag = fmt.Sprint(*m.LagNow)
			}
			fmt.Fprintf(&b, " %s seq %d lag %s diverged %v;", m.Name, m.Seq, lag, m.Diverged)
		}
	}
	for _, g := range r.Gone {
		fmt.Fprintf(&b, "gone %s %s;", g.ID, g.State)
	}
	for _, m := range r.Maps {
		fmt.Fprintf(&b, "map %s %s;", m.Map, m.State)
	}
	fmt.Fprintf(&b, "health %s: %s", r.Health.Level, r.Health.Summary)
	return b.String()
}

// statusRegistry runs "redisync status --json" with args.
func statusRegistry(t *testing.T, args ...string) registryJSON {
	t.Helper()
	out, errOut, code := run(t, nil, append([]string{"status", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("status --json: exit code %d\nstderr:\n%s", code, errOut)
	}
	var r registryJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("status --json printed %q: %v", out, err)
	}
	return r
}

// nodesRegistry answers GET /v1/nodes of the node at url.
func nodesRegistry(t *testing.T, url string) registryJSON {
	t.Helper()
	code, body, _ := call(t, "GET", url+"/v1/nodes", "", "")
	if code != http.StatusOK {
		t.Fatalf("GET %s/v1/nodes: %d %s", url, code, body)
	}
	var r registryJSON
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("GET /v1/nodes answered %q: %v", body, err)
	}
	return r
}

// "redisync status", a process apart, reports what GET /v1/nodes reports: a node frozen with
// SIGSTOP is late, with its lag from the head (its own record says 0); once its record has
// expired it is gone (for --gone-after); a replica whose digest is not Redis's at the same
// seq is diverged.
func TestStatusStates(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	prefix := uniquePrefix(t)
	common := []string{"--redis", srv.URL(), "--namespace", prefix}
	serve := func(id, ttl string) *proc {
		return startProc(t, nil, append([]string{"serve", "--map", "m", "--listen", "127.0.0.1:0", "--id", id, "--ttl", ttl}, common...)...)
	}
	p1, p2 := serve("node-1", "1s"), serve("node-2", "4s") // node-2 beats every 800ms: late after 1.6s, gone after 4s
	url1, url2 := serveURL(t, p1), serveURL(t, p2)
	for _, url := range []string{url1, url2} {
		waitFor(t, 20*time.Second, "readyz 200", func() bool {
			code, _, _ := call(t, "GET", url+"/readyz", "", "")
			return code == http.StatusOK
		})
	}
	put := func(key string) {
		t.Helper()
		if code, body, _ := call(t, "PUT", url1+"/v1/maps/m/keys/"+key, "v", ""); code != http.StatusOK {
			t.Fatalf("PUT %s: %d %s", key, code, body)
		}
	}
	put("k0")
	waitFor(t, 20*time.Second, "both nodes live and in sync at seq 1", func() bool {
		return statusRegistry(t, common...).states() == "node node-1 live; m seq 1 lag 0 diverged false;node node-2 live; m seq 1 lag 0 diverged false;map m in sync;health ok: healthy"
	})

	if err := p2.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		put(fmt.Sprint("k", i))
	}
	var s registryJSON
	waitFor(t, 10*time.Second, "node-2 late in status", func() bool {
		s = statusRegistry(t, common...)
		return len(s.Nodes) == 2 && s.Nodes[1].State == "late" && s.Nodes[0].Maps[0].Seq == 6
	})
	const want = "node node-1 live; m seq 6 lag 0 diverged false;node node-2 late; m seq 1 lag 5 diverged false;map m catching up;health warn: 1 node late"
	if got := s.states(); got != want {
		t.Errorf("status --json with node-2 frozen:\n got %s\nwant %s", got, want)
	}
	if m := s.Nodes[1].Maps[0]; m.Lag != 0 || m.HeadNow != 6 {
		t.Errorf("node-2's replica: reported lag %d, head now %d; want 0 (its last report) and 6", m.Lag, m.HeadNow)
	}
	if got := nodesRegistry(t, url1).states(); got != want {
		t.Errorf("GET /v1/nodes with node-2 frozen:\n got %s\nwant %s", got, want)
	}
	out, _, _ := run(t, nil, append([]string{"status"}, common...)...)
	t.Logf("status with node-2 frozen:\n%s", out)
	for _, line := range []string{"node-2 (late)", "node node-2: late: last heartbeat ", "health: warn: 1 node late"} {
		if !strings.Contains(out, line) {
			t.Errorf("status does not say %q", line)
		}
	}

	waitFor(t, 15*time.Second, "node-2 gone in status", func() bool {
		s = statusRegistry(t, common...)
		return len(s.Nodes) == 1 && len(s.Gone) == 1
	})
	const wantGone = "node node-1 live; m seq 6 lag 0 diverged false;gone node-2 gone;map m in sync;health bad: 1 node gone"
	if got := s.states(); got != wantGone {
		t.Errorf("status --json once node-2's record expired:\n got %s\nwant %s", got, wantGone)
	}
	if got := nodesRegistry(t, url1).states(); got != wantGone {
		t.Errorf("GET /v1/nodes once node-2's record expired:\n got %s\nwant %s", got, wantGone)
	}
	if got := statusRegistry(t, append([]string{"--gone-after", "0"}, common...)...); len(got.Gone) != 0 {
		t.Errorf("status --gone-after 0 lists gone nodes: %s", got.states())
	}
	out, _, _ = run(t, nil, append([]string{"status"}, common...)...)
	t.Logf("status with node-2 gone:\n%s", out)
	for _, line := range []string{"gone (record expired ", "node node-2: gone: its record expired ", "health: bad: 1 node gone"} {
		if !strings.Contains(out, line) {
			t.Errorf("status does not say %q", line)
		}
	}

	// Redis's digest of m tampered with: node-1's replica differs from it at the same seq.
	if _, err := srv.Do("HSET", prefix+":{m}:meta", "dx", "12345"); err != nil {
		t.Fatal(err)
	}
	const wantDiverged = "node node-1 live; m seq 6 lag 0 diverged true;gone node-2 gone;map m diverged;health bad: 1 node gone, map m diverged"
	waitFor(t, 10*time.Second, "m diverged in status", func() bool { return statusRegistry(t, common...).states() == wantDiverged })
	if got := nodesRegistry(t, url1).states(); got != wantDiverged {
		t.Errorf("GET /v1/nodes once m diverged:\n got %s\nwant %s", got, wantDiverged)
	}
	out, _, _ = run(t, nil, append([]string{"status"}, common...)...)
	if !strings.Contains(out, "map m: diverged: ") || !strings.Contains(out, "DIFFERS") && !strings.Contains(out, "DIVERGED") {
		t.Errorf("status once m diverged:\n%s", out)
	}
}

func TestStatusBadGoneAfter(t *testing.T) {
	url := "redis://" + freeAddr(t) // nothing listens: the flag must fail before connecting
	for _, v := range []string{"-1s", "25h"} {
		_, errOut, code := run(t, nil, "status", "--gone-after", v, "--redis", url)
		if code != 1 || !strings.Contains(errOut, "--gone-after") {
			t.Errorf("status --gone-after %s: exit code %d, stderr %q", v, code, errOut)
		}
	}
}

package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/redisync/redisync/internal/redistest"
)

// runDemoCmd runs "redisync demo" in-process with args after "demo" and returns its output.
func runDemoCmd(t *testing.T, args ...string) string {
	t.Helper()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cmd := newRootCmd()
	var out, errw bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errw)
	cmd.SetArgs(append([]string{"demo"}, args...))
	if err := cmd.Execute(); err != nil {
		t.Fatalf("demo failed: %v\noutput:\n%s\nstderr:\n%s", err, out.String(), errw.String())
	}
	t.Logf("output:\n%s", out.String())
	return out.String()
}

// checkDemoOutput asserts that both reliable subscribers received all n messages in order.
func checkDemoOutput(t *testing.T, out, n string) {
	t.Helper()
	for _, row := range []string{`A  redisync, direct`, `B  redisync, via proxy`} {
		re := regexp.MustCompile(`(?m)^` + row + `\s+` + n + `/` + n + `\s+yes\s+0\s+0\s*$`)
		if !re.MatchString(out) {
			t.Errorf("no row %q reporting %s/%s in order, 0 missing, 0 resets", row, n, n)
		}
	}
	if !regexp.MustCompile(`(?m)^C  plain SUBSCRIBE, via proxy\s+\d+/` + n + `\s`).MatchString(out) {
		t.Errorf("no row for the plain pub/sub subscriber")
	}
	if want := "dropping subscriber B's and C's connections (2 of 2)"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q", want)
	}
	if want := "Both redisync subscribers received all " + n + " messages exactly once and in order"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q", want)
	}
	checkDemoMapOutput(t, out)
}

// checkDemoMapOutput asserts that the map part's four replicas ended equal, at the last of the
// 900 writes, and each matched Redis.
func checkDemoMapOutput(t *testing.T, out string) {
	t.Helper()
	for _, want := range []string{
		"after 450 writes: dropping node C's connections",
		"after 600 writes: node D joins",
		"Wrote 900 changes in",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	var first []string
	for _, node := range []string{"A  direct", "B  direct", "C  via proxy", "D  joined late"} {
		m := regexp.MustCompile(`(?m)^` + node + `\s+(\d+)\s+(\d+)\s+([0-9a-f]{24})\s+match\s*$`).FindStringSubmatch(out)
		switch {
		case m == nil:
			t.Errorf("no row for map node %q with a digest and \"match\"", node)
		case m[2] != "900":
			t.Errorf("map node %q: last seq %s, want 900", node, m[2])
		case first == nil:
			first = m
		case m[1] != first[1] || m[3] != first[3]:
			t.Errorf("map node %q: %s keys, digest %s; node A: %s keys, digest %s", node, m[1], m[3], first[1], first[3])
		}
	}
	if first != nil {
		want := "All 4 map replicas hold the same " + first[1] + " keys at seq 900 with digest " + first[3] + ", and each matched Redis."
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestDemoEmbedded(t *testing.T) {
	t.Setenv("REDIS_URL", "redis://127.0.0.1:1") // ignored: without --redis the demo embeds its own
	out := runDemoCmd(t, "--messages", "500")
	if !strings.Contains(out, "Started an embedded Redis-compatible server (miniredis)") {
		t.Errorf("output does not say it started an embedded server")
	}
	checkDemoOutput(t, out, "500")
}

func TestDemoRealRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	out := runDemoCmd(t, "--redis", srv.URL(), "--messages", "500")
	if !strings.Contains(out, "Using the Redis at "+srv.URL()) {
		t.Errorf("output does not say it uses %s", srv.URL())
	}
	checkDemoOutput(t, out, "500")
	if n, err := srv.Do("DBSIZE"); err != nil || n != "0" {
		t.Errorf("after the demo DBSIZE = %q, %v; want 0: the demo must delete its own keys", n, err)
	}
}

func TestDemoRecordingProblem(t *testing.T) {
	tests := []struct {
		name string
		add  []int
		bad  int // index in add of a message with the wrong data, -1 for none
		rst  bool
		want string
	}{
		{name: "complete", add: []int{1, 2, 3}, bad: -1},
		{name: "missing", add: []int{1, 3}, bad: -1, want: "received 2 of 3 messages (1 missing)"},
		{name: "duplicate", add: []int{1, 2, 2, 3}, bad: -1, want: "received 1 duplicates or unknown messages, received messages out of order"},
		{name: "out of order", add: []int{2, 1, 3}, bad: -1, want: "received messages out of order"},
		{name: "wrong data", add: []int{1, 2, 3}, bad: 1, want: "received 1 messages with the wrong data"},
		{name: "reset", add: []int{1, 2, 3}, bad: -1, rst: true, want: "had 1 resets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder(3)
			for i, k := range tt.add {
				r.add(k, i != tt.bad)
			}
			if tt.rst {
				r.reset()
			}
			if got := r.snapshot().problem(3); got != tt.want {
				t.Errorf("problem() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDemoProxiedURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"redis://127.0.0.1:6379", "redis://PROXY"},
		{"redis://user:pw@host:6379/2?dial_timeout=1s", "redis://user:pw@PROXY/2?dial_timeout=1s"},
		{"rediss://:pw@host:6380?skip_verify=true", "rediss://:pw@PROXY?skip_verify=true"},
	}
	for _, tt := range tests {
		got, err := proxiedURL(tt.in, "PROXY")
		if err != nil || got != tt.want {
			t.Errorf("proxiedURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := proxiedURL("unix:///tmp/redis.sock", "PROXY"); err == nil {
		t.Errorf("proxiedURL of a unix URL: no error")
	}
}

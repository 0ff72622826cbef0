package main_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
)

// On a Redis Cluster the CLI uses sharded pub/sub by itself, for channels on every shard, and a
// subscriber never falls back to polling.
func TestCLIOnACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster; skipped with -short")
	}
	cl := redistest.StartCluster(t, redistest.ClusterOptions{})
	prefix := uniquePrefix(t)
	common := []string{"--redis", cl.URL(), "--namespace", prefix}
	names := []string{"orders", "prices", "users", "events"}
	var subs []*proc
	for _, n := range names {
		p := startProc(t, nil, append([]string{"sub", n, "--json", "--count", "300"}, common...)...)
		p.subscribed()
		subs = append(subs, p)
	}
	// Each subscriber holds a sharded subscription on the master of its channel's slot.
	for _, n := range names {
		ch := pubsubChannel(prefix, n)
		owner := cl.MasterOf(cl.Slot(ch))
		waitFor(t, 10*time.Second, "a sharded subscriber of "+ch, func() bool {
			out, err := owner.Do("PUBSUB", "SHARDNUMSUB", ch)
			return err == nil && strings.Contains(out, " 1]")
		})
	}
	for _, n := range names {
		run(t, bytes.NewReader(numberedLines(300)), append([]string{"pub", n}, common...)...)
	}
	for i, p := range subs {
		p.mustSucceed()
		checkLines(t, "sub "+names[i], p.stdout.String(), 300)
		if s := p.stderr.String(); strings.Contains(s, "level=WARN") {
			t.Errorf("sub %s warned:\n%s", names[i], s)
		}
		if d := time.Since(p.start); d > 60*time.Second {
			t.Errorf("sub %s took %v", names[i], d)
		}
	}
	// Forcing plain pub/sub on a cluster works too (through the log and idle checks it would
	// be slow; here pub/sub is plain on both sides).
	p := startProc(t, nil, append([]string{"sub", "plain", "--sharded", "off", "--count", "3"}, common...)...)
	p.subscribed()
	run(t, strings.NewReader("a\nb\nc\n"), append([]string{"pub", "plain", "--sharded", "off"}, common...)...)
	p.mustSucceed()
	if out := p.stdout.String(); out != "1\ta\n2\tb\n3\tc\n" {
		t.Errorf("plain pub/sub on a cluster printed %q", out)
	}
	if _, errOut, code := run(t, nil, append([]string{"sub", "x", "--sharded", "maybe"}, common...)...); code != 1 || !strings.Contains(errOut, `--sharded "maybe"`) {
		t.Errorf("--sharded maybe: exit %d, %q", code, errOut)
	}
}

package main_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// "redisync retention" prints the retention stored with a channel and sets it, a flag at a
// time; publishes then trim the log by it.
func TestRetention(t *testing.T) {
	c := newMapCLI(t)
	const name = "kept"
	const none = "none stored yet; the first publish will store the publisher's settings (redisync pub: max-len 1000000, max-age none)\n"
	if out := c.ok("retention", name); out != none {
		t.Errorf("retention of a new channel printed %q, want %q", out, none)
	}
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-len", "300"}, "max-len 300, max-age none"},
		{nil, "max-len 300, max-age none"},
		{[]string{"--max-age", "90m"}, "max-len 300, max-age 1h30m0s"},
		{[]string{"--max-len", "0"}, "max-len none, max-age 1h30m0s"},
		{nil, "max-len none, max-age 1h30m0s"},
		{[]string{"--max-len", "10", "--max-age", "0"}, "max-len 10, max-age none"},
		{nil, "max-len 10, max-age none"},
	} {
		if out := c.ok(append([]string{"retention", name}, step.args...)...); out != step.want+"\n" {
			t.Errorf("retention %s printed %q, want %q", strings.Join(step.args, " "), out, step.want+"\n")
		}
	}

	// Bad values exit 1 naming the flag, and change nothing.
	c.fails(1, []string{"--max-len"}, "retention", name, "--max-len", "-1")
	c.fails(1, []string{"--max-age"}, "retention", name, "--max-age", "-1s")
	c.fails(1, []string{"--max-age"}, "retention", name, "--max-age", "10us")
	c.fails(1, []string{"--max-age"}, "retention", name, "--max-age", "banana")
	c.fails(1, []string{"arg"}, "retention")
	c.fails(1, []string{"invalid channel name"}, "retention", "bad{name}")
	if out := c.ok("retention", name); out != "max-len 10, max-age none\n" {
		t.Errorf("after bad values, retention printed %q, want it unchanged", out)
	}

	// The stored retention is what publishes apply (whoever makes them: pub has a limit of its
	// own, 1000000): of 300 messages published one call at a time, the oldest are trimmed and
	// a subscriber from the start is told so.
	lines := make([]string, 300)
	for i := range lines {
		lines[i] = "m"
	}
	pubLines(t, c.common(), name, lines...)
	out := c.ok("sub", name, "--from", "0", "--json", "--count", "1")
	evs := parseEvents(t, strings.Split(strings.TrimSuffix(out, "\n"), "\n"))
	if len(evs) != 2 || evs[0].Reset == nil || evs[0].Reset.Reason != "trimmed" || evs[0].Reset.From != 1 ||
		evs[1].Reset != nil || evs[1].Seq == 1 || evs[1].Seq > 300-10+1 {
		t.Errorf("sub --from 0 after 300 publishes with max-len 10 printed:\n%swant a trimmed reset from 1, then a message no older than 291", out)
	}

	// A channel that had none stored gets the first publisher's.
	c.ok("pub", "fresh", "x")
	if out := c.ok("retention", "fresh"); out != "max-len 1000000, max-age none\n" {
		t.Errorf("retention after a first publish by redisync printed %q, want its defaults stored", out)
	}
}

// retention works on a map's name as on a channel's: the first write stores the writer's
// retention, it can be changed, writes trim the map's log by it (a watch from the start is
// told so), and the map itself keeps every key.
func TestRetentionOfAMap(t *testing.T) {
	c := newMapCLI(t)
	const name = "kept-map"
	for i := range 6 {
		c.seq("set", name, fmt.Sprintf("k%d", i), "v")
	}
	if out := c.ok("retention", name); out != "max-len 1000000, max-age none\n" {
		t.Errorf("retention of a map after its first writes printed %q, want the writer's defaults", out)
	}
	if out := c.ok("retention", name, "--max-len", "4"); out != "max-len 4, max-age none\n" {
		t.Errorf("retention --max-len 4 of a map printed %q", out)
	}
	// By age, which trims at every write (by length, every 256 messages: see TestRetention).
	if out := c.ok("retention", name, "--max-age", "1ms"); out != "max-len 4, max-age 1ms\n" {
		t.Errorf("retention --max-age 1ms of a map printed %q", out)
	}
	time.Sleep(20 * time.Millisecond)
	last := c.seq("set", name, "k6", "v")
	if out := c.ok("retention", name); out != "max-len 4, max-age 1ms\n" {
		t.Errorf("retention after a write printed %q: the writer changed it", out)
	}
	lines := strings.Split(strings.TrimSuffix(c.ok("watch", name, "--from", "0", "--json", "--count", "1"), "\n"), "\n")
	evs := parseEvents(t, lines)
	if len(evs) != 2 || evs[0].Reset == nil || evs[0].Reset.Reason != "trimmed" || evs[0].Reset.From != 1 || evs[0].Reset.To != last-1 ||
		evs[1].Reset != nil || evs[1].Seq != last {
		t.Errorf("watch --from 0 of the map after the expiry printed:\n%s\nwant a trimmed reset of 1 to %d, then the write %d", strings.Join(lines, "\n"), last-1, last)
	}
	if r := parseCheck(t, c.ok("check", name)); !r.ok || r.redisKeys != 7 || r.seq != last {
		t.Errorf("check of the trimmed map:\n%s\nwant a match with all 7 keys at seq %d", r.out, last)
	}
	if n := strings.Count(c.ok("dump", name), "\n"); n != 7 {
		t.Errorf("dump of the trimmed map printed %d keys, want 7", n)
	}
}

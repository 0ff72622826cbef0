package main_test

import (
	"strings"
	"testing"
)

// A map never written to does not exist: dump, check and get say so and exit 1, instead of
// showing an empty map. A map whose keys were all deleted exists and is empty.
func TestMissingMap(t *testing.T) {
	c := newMapCLI(t)
	const missing = `map "pricez" does not exist`
	oneLine := func(want string, args ...string) {
		t.Helper()
		out, errOut, code := c.run(args...)
		if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, c.prefix) {
			t.Errorf("redisync %s: exit code %d, stdout %q, stderr %q; want 1, nothing, and one line saying %s in namespace %q",
				strings.Join(args, " "), code, out, errOut, want, c.prefix)
		}
	}
	c.seq("set", "prices", "sku-1", "999") // another map exists
	oneLine(missing, "dump", "pricez")
	oneLine(missing, "dump", "pricez", "--json")
	oneLine(missing, "check", "pricez")
	oneLine(`key "sku-1" not found: `+missing, "get", "pricez", "sku-1")
	oneLine(`key "sku-1" not found: `+missing, "get", "pricez", "sku-1", "--json")
	// Nothing was created by asking.
	oneLine(missing, "check", "pricez")

	// An existing map: an absent key is just that.
	if _, errOut, code := c.run("get", "prices", "sku-2"); code != 1 || strings.Contains(errOut, "does not exist") || !strings.Contains(errOut, `key "sku-2" not found in map "prices"`) {
		t.Errorf("get of an absent key of an existing map: exit %d, stderr %q", code, errOut)
	}
	// Emptied, not missing.
	c.seq("del", "prices", "sku-1")
	if out := c.ok("dump", "prices"); out != "" {
		t.Errorf("dump of an emptied map printed %q, want nothing", out)
	}
	if r := parseCheck(t, c.ok("check", "prices")); !r.ok || r.redisKeys != 0 {
		t.Errorf("check of an emptied map:\n%s", r.out)
	}
	// A channel is not a missing map.
	c.ok("pub", "feed", "x")
	for _, args := range [][]string{{"dump", "feed"}, {"check", "feed"}, {"get", "feed", "k"}} {
		if _, errOut, code := c.run(args...); code != 1 || errOut != "redisync: \"feed\" is a channel, not a map\n" {
			t.Errorf("redisync %s: exit %d, stderr %q; want 1 and that feed is a channel", strings.Join(args, " "), code, errOut)
		}
	}
}

// An etcdctl habit, dump MAP --prefix P, meant as a key filter: --prefix is the namespace, so
// the map does not exist there, and the deprecation line points at --key-prefix.
func TestDumpPrefixIsNotAKeyFilter(t *testing.T) {
	c := newMapCLI(t)
	c.seq("set", "accounts", "user:1", "x")
	p := startProc(t, nil, "dump", "accounts", "--prefix", "user:", "--redis", c.srv.URL())
	if code := p.wait(); code != 1 || p.stdout.String() != "" ||
		!strings.Contains(p.stderr.String(), "--key-prefix") || !strings.Contains(p.stderr.String(), `map "accounts" does not exist`) {
		t.Errorf("dump accounts --prefix user: exit %d, stdout %q, stderr %q; want 1, nothing, a hint at --key-prefix and that the map does not exist in that namespace",
			code, p.stdout.String(), p.stderr.String())
	}
}

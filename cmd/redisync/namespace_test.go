package main_test

import (
	"fmt"
	"strings"
	"testing"
)

// --namespace names the Redis namespace; --prefix, its former name, still works and says once,
// on standard error, that it is deprecated; the two cannot disagree.
func TestNamespaceFlag(t *testing.T) {
	c := newMapCLI(t)
	url := c.srv.URL()
	exists := func(key string) bool {
		t.Helper()
		n, err := c.srv.Do("EXISTS", key)
		if err != nil {
			t.Fatal(err)
		}
		return n == "1"
	}

	out, errOut, code := run(t, nil, "pub", "orders", "x", "--redis", url, "--namespace", c.prefix+"-ns")
	if code != 0 || out != "1\n" || errOut != "" {
		t.Errorf("pub --namespace: exit %d, stdout %q, stderr %q; want 0, \"1\\n\", nothing", code, out, errOut)
	}
	if !exists(c.prefix + "-ns:{orders}:log") {
		t.Errorf("pub --namespace %s-ns wrote no key %s-ns:{orders}:log", c.prefix, c.prefix)
	}

	out, errOut, code = run(t, nil, "pub", "orders", "x", "--redis", url, "--prefix", c.prefix+"-old")
	if code != 0 || out != "1\n" {
		t.Errorf("pub --prefix: exit %d, stdout %q; want 0 and \"1\\n\"\nstderr: %s", code, out, errOut)
	}
	if !exists(c.prefix + "-old:{orders}:log") {
		t.Errorf("pub --prefix %s-old wrote no key %s-old:{orders}:log", c.prefix, c.prefix)
	}
	if strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "--prefix") || !strings.Contains(errOut, "deprecated") ||
		!strings.Contains(errOut, "--namespace") {
		t.Errorf("pub --prefix: stderr %q, want one line saying --prefix is deprecated for --namespace", errOut)
	}

	// Both, the same: fine. Both, different: an error before anything is written.
	if out, errOut, code := run(t, nil, "pub", "orders", "y", "--redis", url, "--prefix", c.prefix+"-ns", "--namespace", c.prefix+"-ns"); code != 0 || out != "2\n" {
		t.Errorf("--prefix and --namespace the same: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	_, errOut, code = run(t, nil, "pub", "orders", "z", "--redis", url, "--prefix", "a", "--namespace", "b")
	if code != 1 || !strings.Contains(errOut, `--namespace "b"`) || !strings.Contains(errOut, `--prefix "a"`) {
		t.Errorf("--prefix a --namespace b: exit %d, stderr %q; want 1, naming both", code, errOut)
	}
	if exists("a:{orders}:log") || exists("b:{orders}:log") {
		t.Error("--prefix a --namespace b wrote to Redis")
	}

	// The help shows --namespace; the deprecated name is hidden.
	help, _, _ := run(t, nil, "--help")
	if !strings.Contains(help, "--namespace") || strings.Contains(help, "--prefix") {
		t.Errorf("redisync --help lists --prefix, or not --namespace:\n%s", help)
	}
}

// dump --key-prefix and watch --key-prefix print only the keys that start with it, as
// ?prefix= does in the HTTP API.
func TestKeyPrefix(t *testing.T) {
	c := newMapCLI(t)
	const name = "accounts"
	vers := map[string]uint64{}
	for _, k := range []string{"user:2", "order:1", "user:1", "user", "users:9", "order:2"} {
		vers[k] = c.seq("set", name, k, "v-"+k)
	}

	out := c.ok("dump", name, "--key-prefix", "user:")
	if want := fmt.Sprintf("user:1\t%d\tv-user:1\nuser:2\t%d\tv-user:2\n", vers["user:1"], vers["user:2"]); out != want {
		t.Errorf("dump --key-prefix user: printed %q, want %q", out, want)
	}
	if out := c.ok("dump", name, "--key-prefix", "user", "--json"); strings.Count(out, "\n") != 4 || strings.Contains(out, "order") {
		t.Errorf("dump --key-prefix user --json printed:\n%s\nwant the 4 keys user, user:1, user:2, users:9", out)
	}
	if out := c.ok("dump", name, "--key-prefix", "nobody"); out != "" {
		t.Errorf("dump --key-prefix nobody printed %q, want nothing", out)
	}
	if all := c.ok("dump", name); strings.Count(all, "\n") != 6 {
		t.Errorf("dump without --key-prefix printed:\n%s\nwant 6 keys", all)
	}

	// watch: from the start, only the matching changes, counted by --count.
	out = c.ok("watch", name, "--from", "0", "--key-prefix", "order:", "--count", "2")
	if want := fmt.Sprintf("%d\tset\torder:1\tv-order:1\n%d\tset\torder:2\tv-order:2\n", vers["order:1"], vers["order:2"]); out != want {
		t.Errorf("watch --key-prefix order: printed %q, want %q", out, want)
	}
	// From now: a change of another key is not printed, and does not count.
	w := c.start("watch", name, "--key-prefix", "order:", "--count", "1", "--json")
	w.subscribed()
	c.seq("set", name, "user:3", "x")
	s := c.seq("del", name, "order:1")
	w.mustSucceed()
	lines := w.stdout.lines()
	if len(lines) != 1 || parseWatch(t, lines[0]).str(t, "key") != "order:1" || parseWatch(t, lines[0]).num(t, "seq") != s {
		t.Errorf("watch --key-prefix order: --count 1 printed %q, want the del of order:1 at seq %d", lines, s)
	}
}

package main_test

import (
	"strings"
	"testing"
)

// help runs redisync ARGS --help, which must succeed, and returns what it printed.
func help(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, nil, append(args, "--help")...)
	if code != 0 || errOut != "" {
		t.Fatalf("redisync %s --help: exit code %d, stderr %q", strings.Join(args, " "), code, errOut)
	}
	return out
}

// Each command's help says what it does: the sentences below were wrong once.
func TestHelpTexts(t *testing.T) {
	for _, tc := range []struct {
		cmd       []string
		want, not []string
	}{
		// get reads the key through from Redis; it loads no replica.
		{[]string{"get"}, []string{"reads the key from Redis", "does not exist"}, []string{"loads a replica"}},
		// del --if-version 0 can never apply: the help of set's flag was copied.
		{[]string{"del"}, []string{"delete only if the key is at this version"}, []string{"only if absent"}},
		{[]string{"set"}, []string{"0: only if absent", "standard input", "--file", "--value"}, nil},
		{[]string{"dump"}, []string{"--key-prefix", "does not exist"}, nil},
		{[]string{"watch"}, []string{"--key-prefix"}, nil},
		{[]string{"check"}, []string{"does not exist"}, nil},
		{[]string{"retention"}, []string{"map", "multiple of 256"}, nil},
		{[]string{"pub"}, []string{"--max-message-bytes"}, nil},
		{[]string{"status"}, []string{"--namespace"}, nil},
		{[]string{"version"}, []string{"(devel)", "commit"}, nil},
		{nil, []string{"--namespace", "--version", "version "}, []string{"--prefix"}},
	} {
		out := help(t, tc.cmd...)
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("redisync %s --help lacks %q:\n%s", strings.Join(tc.cmd, " "), w, out)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(out, n) {
				t.Errorf("redisync %s --help says %q:\n%s", strings.Join(tc.cmd, " "), n, out)
			}
		}
	}
	// No command's help speaks of --prefix, the deprecated name of --namespace, as a flag to use
	// (serve's ?prefix= is a query parameter of the HTTP API).
	for _, c := range []string{"pub", "sub", "set", "get", "del", "watch", "dump", "check", "retention", "serve", "status", "demo", "bench", "version"} {
		if out := help(t, c); strings.Contains(out, "--prefix") {
			t.Errorf("redisync %s --help mentions --prefix:\n%s", c, out)
		}
	}
}

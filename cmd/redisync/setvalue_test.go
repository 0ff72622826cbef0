package main_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// set takes its value from the argument, from standard input ("-"), from a file (--file) or
// literally (--value, for "-" itself), stored as the exact bytes.
func TestSetValueSources(t *testing.T) {
	c := newMapCLI(t)
	const name = "values"
	withStdin := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, code := run(t, strings.NewReader(stdin), append(args, c.common()...)...)
		if code != 0 {
			t.Fatalf("redisync %s with %q on standard input: exit code %d\nstderr:\n%s", strings.Join(args, " "), stdin, code, errOut)
		}
		return out
	}
	value := func(key string) string {
		t.Helper()
		e := parseEntry(t, c.ok("get", name, key, "--json"))
		if e.Base64 {
			b, err := base64.StdEncoding.DecodeString(*e.Value)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		return *e.Value
	}

	withStdin("two\nlines\n", "set", name, "stdin", "-")
	if v := value("stdin"); v != "two\nlines\n" {
		t.Errorf("set - stored %q, want the standard input as it is", v)
	}
	withStdin("\x00\xff binary", "set", name, "bin", "-")
	if v := value("bin"); v != "\x00\xff binary" {
		t.Errorf("set - of binary input stored %q", v)
	}
	withStdin("", "set", name, "empty", "-")
	if v := value("empty"); v != "" {
		t.Errorf("set - of empty input stored %q", v)
	}
	withStdin("from stdin", "set", name, "dashfile", "--file", "-")
	if v := value("dashfile"); v != "from stdin" {
		t.Errorf("set --file - stored %q", v)
	}

	path := filepath.Join(t.TempDir(), "value.json")
	if err := os.WriteFile(path, []byte(`{"cents":999}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.seq("set", name, "file", "--file", path)
	if v := value("file"); v != `{"cents":999}`+"\n" {
		t.Errorf("set --file stored %q", v)
	}

	// A literal "-", and values that look like flags.
	c.seq("set", name, "dash", "--value", "-")
	c.seq("set", name, "neg", "--value", "-5")
	if out, errOut, code := run(t, nil, append(append([]string{"set", name, "neg2"}, c.common()...), "--", "-7")...); code != 0 {
		t.Errorf("set %s neg2 … -- -7: exit code %d, stdout %q, stderr %q", name, code, out, errOut)
	}
	c.seq("set", name, "plain", "hello")
	for k, want := range map[string]string{"dash": "-", "neg": "-5", "neg2": "-7", "plain": "hello"} {
		if v := value(k); v != want {
			t.Errorf("key %s holds %q, want %q", k, v, want)
		}
	}

	// One source, exactly; a file that cannot be read; a value too large. Nothing is written.
	before := c.ok("dump", name)
	c.fails(1, []string{"no value"}, "set", name, "k")
	c.fails(1, []string{"more than one value"}, "set", name, "k", "v", "--value", "w")
	c.fails(1, []string{"more than one value"}, "set", name, "k", "-", "--file", path)
	c.fails(1, []string{"--file", "nope.txt"}, "set", name, "k", "--file", filepath.Join(t.TempDir(), "nope.txt"))
	out, errOut, code := run(t, strings.NewReader(strings.Repeat("x", 1<<20+1)), append([]string{"set", name, "big", "-"}, c.common()...)...)
	if code != 1 || out != "" || !strings.Contains(errOut, "1048576") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("set - of 1 MiB + 1 byte: exit %d, stdout %q, stderr %q; want 1 and one line naming the 1048576-byte limit", code, out, errOut)
	}
	if after := c.ok("dump", name); after != before {
		t.Errorf("failed sets changed the map:\n%s\nwas\n%s", after, before)
	}
}

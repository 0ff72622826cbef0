package main_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
)

// mapCLI runs redisync commands against one Redis under a key prefix of the test's own.
type mapCLI struct {
	t      *testing.T
	srv    *redistest.Server
	prefix string
}

func newMapCLI(t *testing.T) *mapCLI {
	srv := redistest.Start(t, redistest.Options{})
	return &mapCLI{t: t, srv: srv, prefix: uniquePrefix(t)}
}

func (c *mapCLI) common() []string { return []string{"--redis", c.srv.URL(), "--namespace", c.prefix} }

// run runs redisync args to the end.
func (c *mapCLI) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	return run(c.t, nil, append(args, c.common()...)...)
}

// start starts redisync args.
func (c *mapCLI) start(args ...string) *proc {
	c.t.Helper()
	return startProc(c.t, nil, append(args, c.common()...)...)
}

// ok runs redisync args, fails the test unless it exits 0, and returns its standard output.
func (c *mapCLI) ok(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("redisync %s: exit code %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// seq runs a set or del that must succeed and returns the number it printed.
func (c *mapCLI) seq(args ...string) uint64 {
	c.t.Helper()
	out := c.ok(args...)
	n, err := strconv.ParseUint(strings.TrimSuffix(out, "\n"), 10, 64)
	if err != nil || out != strconv.FormatUint(n, 10)+"\n" {
		c.t.Fatalf("redisync %s printed %q, want a number and a newline", strings.Join(args, " "), out)
	}
	return n
}

// fails runs redisync args and checks that it exits with code, printing nothing on standard
// output and every one of wants on standard error.
func (c *mapCLI) fails(code int, wants []string, args ...string) {
	c.t.Helper()
	out, errOut, got := c.run(args...)
	if got != code {
		c.t.Errorf("redisync %s: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), got, code, out, errOut)
	}
	if out != "" {
		c.t.Errorf("redisync %s: stdout %q, want nothing", strings.Join(args, " "), out)
	}
	for _, w := range wants {
		if !strings.Contains(errOut, w) {
			c.t.Errorf("redisync %s: stderr %q lacks %q", strings.Join(args, " "), errOut, w)
		}
	}
}

// getEntry is the output of get --json and a line of dump --json.
type getEntry struct {
	Key     *string `json:"key"`
	Value   *string `json:"value"`
	Base64  bool    `json:"base64"`
	Version *uint64 `json:"version"`
}

func parseEntry(t *testing.T, line string) getEntry {
	t.Helper()
	var e getEntry
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		t.Fatalf("not a JSON object: %q: %v", line, err)
	}
	if e.Key == nil || e.Value == nil || e.Version == nil {
		t.Fatalf("%q lacks one of key, value, version", line)
	}
	return e
}

func TestMapSetGetDel(t *testing.T) {
	c := newMapCLI(t)

	v1 := c.seq("set", "m", "a", "hello")
	if v1 != 1 {
		t.Errorf("first set printed version %d, want 1", v1)
	}
	if out := c.ok("get", "m", "a"); out != "hello\n" {
		t.Errorf("get printed %q, want %q", out, "hello\n")
	}
	out := c.ok("get", "m", "a", "--json")
	if !strings.HasSuffix(out, "}\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("get --json printed %q, want one object and a newline", out)
	}
	e := parseEntry(t, out)
	if *e.Key != "a" || *e.Value != "hello" || *e.Version != v1 || e.Base64 {
		t.Errorf("get --json = %s, want key a, value hello, version %d, no base64", out, v1)
	}
	if !strings.Contains(out, `"version":1`) {
		t.Errorf("get --json = %s: version is not a JSON number", out)
	}

	// Values are bytes: not UTF-8 comes back as base64 in JSON, and raw in plain output.
	bin := "x\xffy"
	vb := c.seq("set", "m", "bin", bin)
	e = parseEntry(t, c.ok("get", "m", "bin", "--json"))
	if dec, err := base64.StdEncoding.DecodeString(*e.Value); !e.Base64 || err != nil || string(dec) != bin || *e.Version != vb {
		t.Errorf("get --json of a binary value = %+v, want base64 of %q and version %d", e, bin, vb)
	}
	if out := c.ok("get", "m", "bin"); out != bin+"\n" {
		t.Errorf("get of a binary value printed %q, want %q", out, bin+"\n")
	}

	// Absent keys.
	c.fails(1, []string{`"nope"`, "not found"}, "get", "m", "nope")
	c.fails(1, []string{`"nope"`, "not found"}, "get", "m", "nope", "--json")
	c.fails(1, []string{"not found"}, "get", "other-map", "a")

	// Guarded sets: a conflict exits 3 and names the key and both versions.
	c.fails(3, []string{`"a"`, "expected version 5", "found version 1"}, "set", "m", "a", "x", "--if-version", "5")
	c.fails(3, []string{`"a"`, "expected version 0 (absent)", "found version 1"}, "set", "m", "a", "x", "--if-version", "0")
	c.fails(3, []string{`"b"`, "expected version 1", "found version 0 (absent)"}, "set", "m", "b", "x", "--if-version", "1")
	vB := c.seq("set", "m", "b", "created", "--if-version", "0")
	v2 := c.seq("set", "m", "a", "second", "--if-version", strconv.FormatUint(v1, 10))
	if vB <= vb || v2 <= vB {
		t.Errorf("versions %d, %d, %d after %d: want them increasing", vb, vB, v2, v1)
	}
	e = parseEntry(t, c.ok("get", "m", "a", "--json"))
	if *e.Value != "second" || *e.Version != v2 {
		t.Errorf("get after a guarded set = %q version %d, want %q version %d", *e.Value, *e.Version, "second", v2)
	}

	// Deletes: guarded ones conflict with exit code 3, and print their seq when they apply.
	c.fails(3, []string{`"a"`, "expected version 1", fmt.Sprintf("found version %d", v2)}, "del", "m", "a", "--if-version", "1")
	d := c.seq("del", "m", "a", "--if-version", strconv.FormatUint(v2, 10))
	if d <= v2 {
		t.Errorf("del printed seq %d, want above %d", d, v2)
	}
	c.fails(1, []string{"not found"}, "get", "m", "a")
	c.fails(3, []string{`"a"`, fmt.Sprintf("expected version %d", v2), "found version 0 (absent)"}, "del", "m", "a", "--if-version", strconv.FormatUint(v2, 10))
	// A key deleted can be created again, with a new version.
	if v3 := c.seq("set", "m", "a", "again", "--if-version", "0"); v3 <= d {
		t.Errorf("re-creating a deleted key gave version %d, want above %d", v3, d)
	}

	// Bad input exits 1 with the library's message and writes nothing.
	before := c.ok("dump", "m")
	c.fails(1, []string{"invalid write", "empty key"}, "set", "m", "", "v")
	c.fails(1, []string{"invalid write", "empty key"}, "del", "m", "")
	c.fails(1, []string{"invalid write", "limit is 1024"}, "set", "m", strings.Repeat("k", 1025), "v")
	c.fails(1, []string{"invalid channel name", "bad{map}"}, "set", "bad{map}", "k", "v")
	if after := c.ok("dump", "m"); after != before {
		t.Errorf("bad writes changed the map: dump was\n%s\nis\n%s", before, after)
	}
}

func TestMapBadArgs(t *testing.T) {
	// Nothing listens there: the commands must fail on their arguments before connecting.
	url := "redis://" + freeAddr(t)
	for _, tc := range []struct {
		name string
		args []string
		want string // on standard error
	}{
		{"set without value", []string{"set", "m", "k"}, "arg"},
		{"set bad version", []string{"set", "m", "k", "v", "--if-version", "x"}, "--if-version"},
		{"del bad version", []string{"del", "m", "k", "--if-version", "-1"}, "--if-version"},
		{"get without key", []string{"get", "m"}, "arg"},
		{"watch bad from", []string{"watch", "m", "--from", "banana"}, "--from"},
		{"dump without map", []string{"dump"}, "arg"},
		{"check without map", []string{"check"}, "arg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(t, nil, append(tc.args, "--redis", url)...)
			if code != 1 {
				t.Errorf("exit code %d, want 1; stdout %q, stderr %q", code, out, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q does not mention %q", errOut, tc.want)
			}
		})
	}
}

// checkResult is the output of "redisync check".
type checkResult struct {
	seq                    uint64
	redis, replica         string
	redisKeys, replicaKeys int
	ok, mismatch           bool
	out                    string
}

var (
	checkPosRe     = regexp.MustCompile(`(?m)^position: seq (\d+) (?:of epoch [0-9a-f]+|\(the map has no history\))$`)
	checkRedisRe   = regexp.MustCompile(`(?m)^redis:    digest ([0-9a-f]{24})  keys (\d+)$`)
	checkReplicaRe = regexp.MustCompile(`(?m)^replica:  digest ([0-9a-f]{24})  keys (\d+)$`)
)

func parseCheck(t *testing.T, out string) checkResult {
	t.Helper()
	p, r, l := checkPosRe.FindStringSubmatch(out), checkRedisRe.FindStringSubmatch(out), checkReplicaRe.FindStringSubmatch(out)
	if p == nil || r == nil || l == nil {
		t.Fatalf("check output lacks the position, Redis's or the replica's digest:\n%s", out)
	}
	res := checkResult{redis: r[1], replica: l[1], out: out, ok: strings.Contains(out, "\nOK: "), mismatch: strings.Contains(out, "\nMISMATCH: ")}
	res.seq, _ = strconv.ParseUint(p[1], 10, 64)
	res.redisKeys, _ = strconv.Atoi(r[2])
	res.replicaKeys, _ = strconv.Atoi(l[2])
	return res
}

// The acceptance: "redisync check" exits 0 after a concurrent write storm from three
// redisync processes at a time, and 1 once Redis's state was tampered with.
func TestMapWriteStormCheck(t *testing.T) {
	const (
		writers   = 3
		perWriter = 40
		keys      = 12
	)
	c := newMapCLI(t)
	const name = "storm"

	var wg sync.WaitGroup
	var mu sync.Mutex // guards seqs
	seqs := map[uint64]string{}
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
			for i := range perWriter {
				key := fmt.Sprintf("k%02d", rng.IntN(keys))
				args := []string{"set", name, key, fmt.Sprintf("w%d-%d", w, i)}
				if i%5 == 4 {
					args = []string{"del", name, key}
				}
				out, errOut, code := c.run(args...)
				if args[0] == "del" && code == 1 && strings.Contains(errOut, fmt.Sprintf("key %q not found", key)) {
					continue // an absent key: nothing written
				}
				if code != 0 {
					t.Errorf("redisync %s: exit code %d\nstderr:\n%s", strings.Join(args, " "), code, errOut)
					return
				}
				s, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
				if err != nil {
					t.Errorf("redisync %s printed %q", strings.Join(args, " "), out)
					return
				}
				mu.Lock()
				if prev, dup := seqs[s]; dup {
					t.Errorf("seq %d printed twice: by %q and by %q", s, prev, strings.Join(args, " "))
				}
				seqs[s] = strings.Join(args, " ")
				mu.Unlock()
			}
		})
	}
	// A check while the storm blows: a replica that loads during the writes and compares at
	// whatever seq Redis is at.
	time.Sleep(time.Second)
	mid := c.start("check", name)
	wg.Wait()
	mid.mustSucceed()
	if r := parseCheck(t, mid.stdout.String()); !r.ok || r.redis != r.replica || r.redisKeys != r.replicaKeys {
		t.Errorf("check during the storm did not match:\n%s", r.out)
	} else {
		t.Logf("check during the storm, at seq %d:\n%s", r.seq, r.out)
	}
	if t.Failed() {
		t.FailNow()
	}

	out := c.ok("check", name)
	t.Logf("check after the storm:\n%s", out)
	r := parseCheck(t, out)
	total := uint64(len(seqs)) // the writes made: every set, and the deletes of present keys
	t.Logf("%d writes of %d commands", total, writers*perWriter)
	if !r.ok || r.mismatch || r.redis != r.replica || r.redisKeys != r.replicaKeys {
		t.Errorf("check after the storm: want matching digests and key counts and an OK line")
	}
	if r.seq != total {
		t.Errorf("check at seq %d, want %d: one per write made", r.seq, total)
	}
	for s := uint64(1); s <= total; s++ {
		if _, ok := seqs[s]; !ok {
			t.Errorf("no write printed seq %d", s)
		}
	}

	// The replica equals the state in Redis, key by key.
	dump := strings.Split(strings.TrimSuffix(c.ok("dump", name), "\n"), "\n")
	if len(dump) != r.redisKeys {
		t.Errorf("dump printed %d keys, check counted %d", len(dump), r.redisKeys)
	}
	rc := c.srv.Client(t)
	state, err := rc.Do(context.Background(), rc.B().Hgetall().Key(c.prefix+":{"+name+"}:state").Build()).AsStrMap()
	if err != nil {
		t.Fatal(err)
	}
	if len(state) != len(dump) {
		t.Errorf("Redis holds %d keys, dump printed %d", len(state), len(dump))
	}
	for _, line := range dump {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Errorf("dump line %q: want key, version, value", line)
			continue
		}
		if want := f[1] + ":" + f[2]; state[f[0]] != want {
			t.Errorf("dump line %q, but Redis holds %q for %s", line, state[f[0]], f[0])
		}
	}

	// Tamper with Redis behind redisync's back: check must notice and exit 1.
	if _, err := c.srv.Do("HSET", c.prefix+":{"+name+"}:state", "k", "999:evil"); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := c.run("check", name)
	t.Logf("check after tampering: exit code %d\n%s%s", code, out, errOut)
	if code != 1 {
		t.Errorf("check after tampering: exit code %d, want 1", code)
	}
	r = parseCheck(t, out)
	if r.ok || !r.mismatch || r.redis == r.replica {
		t.Errorf("check after tampering: want different digests and a MISMATCH line")
	}
	if r.replicaKeys != r.redisKeys+1 {
		t.Errorf("check after tampering: replica keys %d, want Redis's %d plus the added one", r.replicaKeys, r.redisKeys)
	}
	if !strings.Contains(errOut, "disagrees with Redis") {
		t.Errorf("check after tampering: stderr %q does not say the replica disagrees", errOut)
	}
}

// A map whose keys were all deleted exists, and is empty: check matches at the seq of the
// last delete. (A map never written does not exist: see TestMissingMap.)
func TestMapCheckEmpty(t *testing.T) {
	c := newMapCLI(t)
	c.seq("set", "emptied", "k", "v")
	c.seq("del", "emptied", "k")
	r := parseCheck(t, c.ok("check", "emptied"))
	if !r.ok || r.seq != 2 || r.redisKeys != 0 || r.replicaKeys != 0 || r.redis != r.replica {
		t.Errorf("check of a map whose keys were all deleted:\n%s\nwant seq 2, no keys, matching digests", r.out)
	}
}

// watchLine is a line of "redisync watch --json", with the raw fields to check their types.
type watchLine map[string]json.RawMessage

func parseWatch(t *testing.T, line string) watchLine {
	t.Helper()
	var w watchLine
	if err := json.Unmarshal([]byte(line), &w); err != nil {
		t.Fatalf("watch line is not a JSON object: %q: %v", line, err)
	}
	return w
}

// num returns field f, which must be a JSON number.
func (w watchLine) num(t *testing.T, f string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(string(w[f]), 10, 64)
	if err != nil {
		t.Errorf("watch line %v: %q is %s, want a number", w, f, w[f])
	}
	return n
}

// str returns field f, which must be a JSON string.
func (w watchLine) str(t *testing.T, f string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(w[f], &s); err != nil {
		t.Errorf("watch line %v: %q is %s, want a string", w, f, w[f])
	}
	return s
}

type wantChange struct {
	seq, old uint64
	op, key  string
	value    string // for a set
}

func checkWatch(t *testing.T, lines []string, want []wantChange) {
	t.Helper()
	if len(lines) != len(want) {
		t.Fatalf("watch printed %d lines, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, l := range lines {
		w, c := parseWatch(t, l), want[i]
		if w.num(t, "seq") != c.seq || w.num(t, "version") != c.seq || w.num(t, "old_version") != c.old ||
			w.str(t, "op") != c.op || w.str(t, "key") != c.key || w.str(t, "epoch") == "" {
			t.Errorf("watch line %d = %s, want seq and version %d, old_version %d, op %s, key %s", i+1, l, c.seq, c.old, c.op, c.key)
		}
		if pos, want := w.str(t, "pos"), fmt.Sprintf("%s:%d", w.str(t, "epoch"), c.seq); pos != want {
			t.Errorf("watch line %d = %s, want pos %q", i+1, l, want)
		}
		if _, has := w["reset"]; has {
			t.Errorf("watch line %d = %s: a reset", i+1, l)
		}
		switch {
		case c.op == "set" && w.str(t, "value") != c.value:
			t.Errorf("watch line %d = %s, want value %q", i+1, l, c.value)
		case c.op == "del" && len(w["value"]) > 0 && string(w["value"]) != `""`:
			t.Errorf("watch line %d = %s: a del with a value", i+1, l)
		}
	}
}

func TestMapWatch(t *testing.T) {
	c := newMapCLI(t)
	const name = "watched"
	w := c.start("watch", name, "--json", "--count", "3")
	if pos := w.subscribed(); pos != "0" {
		t.Errorf("watch of a map never written: subscribed after %q, want %q", pos, "0")
	}

	s1 := c.seq("set", name, "a", "one")
	s2 := c.seq("set", name, "a", "two")
	s3 := c.seq("del", name, "a")
	w.mustSucceed()
	want := []wantChange{
		{seq: s1, old: 0, op: "set", key: "a", value: "one"},
		{seq: s2, old: s1, op: "set", key: "a", value: "two"},
		{seq: s3, old: s2, op: "del", key: "a"},
	}
	checkWatch(t, w.stdout.lines(), want)
	epoch := parseWatch(t, w.stdout.lines()[0]).str(t, "epoch")

	// --from N resumes after N: exactly the later changes.
	out := c.ok("watch", name, "--json", "--from", strconv.FormatUint(s1, 10), "--count", "2")
	checkWatch(t, strings.Split(strings.TrimSuffix(out, "\n"), "\n"), want[1:])
	// So does --from with the pos of a change, verbatim.
	pos1 := parseWatch(t, w.stdout.lines()[0]).str(t, "pos")
	w = c.start("watch", name, "--json", "--from", pos1, "--count", "2")
	w.mustSucceed()
	checkWatch(t, w.stdout.lines(), want[1:])
	if got := w.stderr.String(); got != "subscribed after "+pos1+"\n" {
		t.Errorf("watch --from %s: stderr %q, want %q", pos1, got, "subscribed after "+pos1+"\n")
	}
	// A watch from now starts after the head, and says so.
	w = c.start("watch", name, "--count", "1")
	if pos, want := w.subscribed(), fmt.Sprintf("%s:%d", epoch, s3); pos != want {
		t.Errorf("watch from now: subscribed after %q, want %q", pos, want)
	}
	s4 := c.seq("set", name, "b", "four")
	w.mustSucceed()
	if got, want := w.stdout.String(), fmt.Sprintf("%d\tset\tb\tfour\n", s4); got != want {
		t.Errorf("watch from now printed %q, want %q", got, want)
	}
	out = c.ok("watch", name, "--json", "--from", "0", "--count", "3")
	checkWatch(t, strings.Split(strings.TrimSuffix(out, "\n"), "\n"), want)

	// Plain output: seq, op, key, value, separated by tabs.
	out = c.ok("watch", name, "--from", "0", "--count", "3")
	wantPlain := fmt.Sprintf("%d\tset\ta\tone\n%d\tset\ta\ttwo\n%d\tdel\ta\t\n", s1, s2, s3)
	if out != wantPlain {
		t.Errorf("watch printed %q, want %q", out, wantPlain)
	}
}

func TestMapDump(t *testing.T) {
	c := newMapCLI(t)
	const name = "dumped"
	vers := map[string]uint64{}
	for _, kv := range [][2]string{{"b", "2"}, {"a", "1"}, {"c/x", "3 with spaces"}, {"B", "upper"}, {"nl", "two\nlines"}, {"gone", "x"}} {
		vers[kv[0]] = c.seq("set", name, kv[0], kv[1])
	}
	c.seq("del", name, "gone")

	out := c.ok("dump", name)
	want := fmt.Sprintf("B\t%d\tupper\na\t%d\t1\nb\t%d\t2\nc/x\t%d\t3 with spaces\nnl\t%d\t\"two\\nlines\"\n",
		vers["B"], vers["a"], vers["b"], vers["c/x"], vers["nl"])
	if out != want {
		t.Errorf("dump printed\n%q\nwant\n%q", out, want)
	}

	out = c.ok("dump", name, "--json")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	wantKeys := []string{"B", "a", "b", "c/x", "nl"}
	wantVals := []string{"upper", "1", "2", "3 with spaces", "two\nlines"}
	if len(lines) != len(wantKeys) {
		t.Fatalf("dump --json printed %d lines, want %d:\n%s", len(lines), len(wantKeys), out)
	}
	for i, l := range lines {
		e := parseEntry(t, l)
		if *e.Key != wantKeys[i] || *e.Value != wantVals[i] || *e.Version != vers[wantKeys[i]] || e.Base64 {
			t.Errorf("dump --json line %d = %s, want key %q value %q version %d", i+1, l, wantKeys[i], wantVals[i], vers[wantKeys[i]])
		}
	}

	c.seq("set", "empty", "k", "v")
	c.seq("del", "empty", "k")
	if out := c.ok("dump", "empty"); out != "" {
		t.Errorf("dump of an empty map printed %q", out)
	}
}

// Deleting an absent key writes nothing: it says so and exits 1.
func TestMapDelAbsent(t *testing.T) {
	c := newMapCLI(t)
	const name = "sparse"
	oneLine := func(args ...string) {
		t.Helper()
		out, errOut, code := c.run(args...)
		if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, `key "nope" not found`) {
			t.Errorf("redisync %s: exit code %d, stdout %q, stderr %q; want 1, nothing, and one line saying key \"nope\" not found",
				strings.Join(args, " "), code, out, errOut)
		}
	}
	oneLine("del", name, "nope") // a map never written
	v1 := c.seq("set", name, "a", "1")
	oneLine("del", name, "nope")
	d := c.seq("del", name, "a")
	oneLine("del", name, "nope")
	c.fails(1, []string{`key "a" not found`}, "del", name, "a") // deleted already

	// Nothing was appended: the next write gets the next seq, and the log holds two changes.
	if v2 := c.seq("set", name, "b", "2"); v1 != 1 || d != 2 || v2 != 3 {
		t.Errorf("set, del, set printed %d, %d, %d around deletes of absent keys, want 1, 2, 3", v1, d, v2)
	}
	out := c.ok("watch", name, "--from", "0", "--count", "3")
	if want := "1\tset\ta\t1\n2\tdel\ta\t\n3\tset\tb\t2\n"; out != want {
		t.Errorf("watch --from 0 printed %q, want %q", out, want)
	}
}

// A name is a channel or a map, never both: a command on the other kind fails at once with
// one line saying what the name is.
func TestKinds(t *testing.T) {
	c := newMapCLI(t)
	if out := c.ok("pub", "shared", "x"); out != "1\n" {
		t.Fatalf("pub printed %q", out)
	}
	if v := c.seq("set", "m", "k", "v"); v != 1 {
		t.Fatalf("set printed %d", v)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"set", "shared", "k", "v"}, `redisync: "shared" is a channel, not a map`},
		{[]string{"del", "shared", "k"}, `redisync: "shared" is a channel, not a map`},
		{[]string{"watch", "shared"}, `redisync: "shared" is a channel, not a map`},
		{[]string{"pub", "m", "x"}, `redisync: "m" is a map, not a channel`},
		{[]string{"sub", "m"}, `redisync: "m" is a map, not a channel`},
		{[]string{"sub", "m", "--from", "0"}, `redisync: "m" is a map, not a channel`},
	} {
		p := c.start(tc.args...)
		code := p.waitWithin(10 * time.Second)
		if errOut := p.stderr.String(); code != 1 || errOut != tc.want+"\n" || p.stdout.String() != "" {
			t.Errorf("redisync %s: exit code %d, stdout %q, stderr %q; want 1, nothing, %q",
				strings.Join(tc.args, " "), code, p.stdout.String(), errOut, tc.want+"\n")
		}
	}
	// Nothing was written to either.
	if out := c.ok("sub", "shared", "--from", "0", "--count", "1"); out != "1\tx\n" {
		t.Errorf("the channel holds %q after the failed commands", out)
	}
	if v := c.seq("set", "m", "k2", "v"); v != 2 {
		t.Errorf("the next write to the map got seq %d, want 2", v)
	}
}

package main_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
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

// readmeSection returns the text of the README's section "## title", up to the next one.
func readmeSection(t *testing.T, title string) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## "+title+"\n")
	if !ok {
		t.Fatalf("README.md has no %q section", "## "+title)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	return section
}

// fencedBlocks returns the blocks of a Markdown text fenced as ```lang.
func fencedBlocks(md, lang string) []string {
	var blocks []string
	for {
		_, rest, ok := strings.Cut(md, "```"+lang+"\n")
		if !ok {
			return blocks
		}
		block, after, _ := strings.Cut(rest, "```\n")
		blocks = append(blocks, block)
		md = after
	}
}

// unitValues returns the values of key in a systemd unit's text, continuation lines joined.
func unitValues(unit, key string) []string {
	var vals []string
	unit = strings.ReplaceAll(unit, "\\\n", " ")
	for _, l := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), key+"="); ok {
			vals = append(vals, strings.TrimSpace(v))
		}
	}
	return vals
}

// The README's Deployment section, as written, where this machine can follow it: the unit it
// shows is deploy/redisync.service; systemd-analyze (when installed) finds nothing to say
// about it; its ExecStart command line, with the environment file the README writes, serves
// the health checks the README gives, against a redis-server of the test's own; and SIGTERM,
// what systemctl stop sends, ends it with an exit code the unit counts as success. (Installing
// into /etc and systemctl itself need root and a running systemd: not done here.)
func TestDeploymentSystemdUnit(t *testing.T) {
	section := readmeSection(t, "Deployment")
	file, err := os.ReadFile("../../deploy/redisync.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(file)
	if inis := fencedBlocks(section, "ini"); len(inis) != 1 || inis[0] != unit {
		t.Fatalf("the Deployment section must show deploy/redisync.service as it is, in one ini block; it has %d ini blocks", len(inis))
	}
	execs := unitValues(unit, "ExecStart")
	if len(execs) != 1 {
		t.Fatalf("the unit has %d ExecStart lines, want 1", len(execs))
	}
	argv := strings.Fields(execs[0])
	if strings.ContainsAny(execs[0], `"'$%\`) || len(argv) < 2 || argv[1] != "serve" {
		t.Fatalf("ExecStart=%s: want a plain redisync serve command line (no quotes, variables or specifiers, which this test does not expand)", execs[0])
	}
	installed := argv[0]

	// systemd's own check, on a copy naming the binary under test (verify requires that the
	// command exists).
	if analyze, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze is not on PATH (Debian package systemd): the unit file is not verified by systemd")
	} else {
		dir := t.TempDir()
		copyPath := filepath.Join(dir, "redisync.service")
		if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(unit, installed, binary)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
		t.Logf("systemd-analyze verify: %v\n%s", err, out)
		if err != nil || strings.Contains(string(out), "redisync.service") {
			t.Errorf("systemd-analyze verify of the unit: %v\n%s", err, out)
		}
	}

	// The environment file, as the README's install block writes it: REDIS_URL, here the
	// test's Redis.
	srv := redistest.Start(t, redistest.Options{})
	var envLine string
	for _, b := range fencedBlocks(section, "sh") {
		for _, l := range strings.Split(b, "\n") {
			if strings.Contains(l, "/etc/redisync/redisync.env") && strings.HasPrefix(l, "echo 'REDIS_URL=") {
				envLine = l
			}
		}
	}
	if envLine == "" {
		t.Fatal("the Deployment section writes no REDIS_URL into /etc/redisync/redisync.env")
	}
	if files := unitValues(unit, "EnvironmentFile"); len(files) != 1 || strings.TrimPrefix(files[0], "-") != "/etc/redisync/redisync.env" {
		t.Errorf("the unit's EnvironmentFile is %q, want the /etc/redisync/redisync.env the README writes", files)
	}
	t.Setenv("REDIS_URL", srv.URL())

	// The command line, but on a free port: 7480 may be taken on this machine.
	args := append([]string(nil), argv[1:]...)
	listen := ""
	for i, a := range args {
		if a == "--listen" && i+1 < len(args) {
			listen, args[i+1] = args[i+1], "127.0.0.1:0"
		}
	}
	if listen == "" {
		t.Fatalf("ExecStart=%s has no --listen", execs[0])
	}
	p := startProc(t, nil, args...)
	line := p.waitLine(&p.stdout, "redisync serve: node ", 30*time.Second)
	_, addr, ok := strings.Cut(line, " listening on http://")
	addr, _, _ = strings.Cut(addr, " ")
	if !ok || addr == "" {
		t.Fatalf("serve printed %q: no address", line)
	}

	// The health checks of the README, each a curl -f of a URL on --listen: 200 expected.
	checks := 0
	for _, b := range fencedBlocks(section, "sh") {
		for _, l := range strings.Split(b, "\n") {
			f := strings.Fields(l)
			if len(f) < 3 || f[0] != "curl" || !strings.HasPrefix(f[2], "http://"+listen+"/") {
				continue
			}
			url := "http://" + addr + strings.TrimPrefix(f[2], "http://"+listen)
			checks++
			var code int
			var body string
			waitFor(t, 30*time.Second, url+" answering 200", func() bool {
				resp, err := http.Get(url)
				if err != nil {
					return false
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				code, body = resp.StatusCode, string(b)
				return code == http.StatusOK
			})
			t.Logf("%s (README: %s): %d %s", url, strings.TrimSpace(l), code, strings.TrimSpace(body))
		}
	}
	if checks < 2 {
		t.Errorf("the Deployment section has %d curl health checks on http://%s/, want /healthz and /readyz", checks, listen)
	}

	// systemctl stop: SIGTERM, and an exit code the unit takes for success.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := p.waitWithin(20 * time.Second)
	success := []string{"0"}
	for _, v := range unitValues(unit, "SuccessExitStatus") {
		success = append(success, strings.Fields(v)...)
	}
	if !slices.Contains(success, strconv.Itoa(code)) {
		t.Errorf("serve exited with code %d after SIGTERM; the unit counts %v as success\nstderr:\n%s", code, success, p.stderr.String())
	}
}

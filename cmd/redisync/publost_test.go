package main_test

import (
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
	"github.com/redisync/redisync/internal/wire"
)

// Lines that Redis acknowledged and lost afterwards are not a success: pub says which, on
// standard error, and exits with code 4. Once for a log rolled back under the same epoch (what a
// failover to a replica that had not received them leaves), once for a log Redis lost whole.
func TestPubReportsAcknowledgedLinesLost(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	prefix := uniquePrefix(t)
	common := []string{"--redis", srv.URL(), "--namespace", prefix, "--batch", "1"}
	head := func(name string) uint64 {
		t.Helper()
		k, err := wire.KeysFor(prefix, name)
		if err != nil {
			t.Fatal(err)
		}
		v, err := srv.Do("HGET", k.Meta, "seq")
		if err != nil {
			return 0
		}
		n, _ := strconv.ParseUint(fmt.Sprint(v), 10, 64)
		return n
	}
	// feed starts pub on name, writes lines 1..n and waits until they are in the log; more
	// writes the rest once the log was damaged, and returns pub's exit code and outputs.
	feed := func(name string, n int) (more func(lines int) (int, string, string)) {
		pr, pw := io.Pipe()
		p := startProc(t, pr, append([]string{"pub", name}, common...)...)
		for i := 1; i <= n; i++ {
			fmt.Fprintf(pw, "line %d\n", i)
		}
		waitFor(t, 20*time.Second, "the lines in the log", func() bool { return head(name) == uint64(n) })
		return func(lines int) (int, string, string) {
			for i := 1; i <= lines; i++ {
				fmt.Fprintf(pw, "more %d\n", i)
			}
			pw.Close()
			code := p.wait()
			return code, p.stdout.String(), p.stderr.String()
		}
	}

	more := feed("rolled", 6)
	k, err := wire.KeysFor(prefix, "rolled")
	if err != nil {
		t.Fatal(err)
	}
	env, err := srv.Do("XRANGE", k.Log, "3-0", "3-0")
	if err != nil {
		t.Fatal(err)
	}
	tip := regexp.MustCompile(`rs2 \S+ 3 \d+ (\S+) `).FindStringSubmatch(fmt.Sprint(env))
	if tip == nil {
		t.Fatalf("entry 3: %v", env)
	}
	for _, cmd := range [][]string{{"XDEL", k.Log, "4-0", "5-0", "6-0"}, {"XSETID", k.Log, "3-0"}, {"HSET", k.Meta, "seq", "3", "tip", tip[1]}} {
		if _, err := srv.Do(cmd...); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := more(2)
	want := regexp.MustCompile(`(?m)^redisync: 3 lines acknowledged at seqs 4 to 6 of epoch \S+ were lost: Redis gave those seqs to later messages`)
	if code != 4 || strings.TrimSpace(out) != "5" || !want.MatchString(errOut) {
		t.Errorf("pub over a rolled-back log: exit code %d, stdout %q, stderr %q; want %d, \"5\", and a line matching %s", code, out, errOut, 4, want)
	}

	more = feed("wiped", 4)
	srv.Restart() // no persistence: the log is gone
	code, out, errOut = more(1)
	want = regexp.MustCompile(`(?m)^redisync: 4 lines acknowledged in epoch \S+ \(seqs 1 to 4\) were lost: Redis lost the channel's log`)
	if code != 4 || strings.TrimSpace(out) != "1" || !want.MatchString(errOut) {
		t.Errorf("pub across a restart without persistence: exit code %d, stdout %q, stderr %q; want %d, \"1\", and a line matching %s", code, out, errOut, 4, want)
	}

	// Nothing lost: exit code 0 and nothing on standard error.
	more = feed("kept", 3)
	if code, out, errOut = more(2); code != 0 || strings.TrimSpace(out) != "5" || errOut != "" {
		t.Errorf("pub with nothing lost: exit code %d, stdout %q, stderr %q; want 0, \"5\", nothing", code, out, errOut)
	}
}

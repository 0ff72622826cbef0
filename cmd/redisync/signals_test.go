package main_test

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
)

// stopLimit is how soon an interrupted command must have exited.
const stopLimit = 5 * time.Second

var signals = []struct {
	name string
	sig  os.Signal
}{{"SIGINT", os.Interrupt}, {"SIGTERM", syscall.SIGTERM}}

// interrupt sends sig to p and returns its exit code; it fails the test when p has not exited
// within stopLimit.
func (p *proc) interrupt(sig os.Signal) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
	return p.waitWithin(stopLimit)
}

var interruptedRe = regexp.MustCompile(`(?m)^interrupted after (\d+) lines \((\d+) not published\)$`)

// parseInterrupted returns N and M of pub's "interrupted after N lines (M not published)".
func parseInterrupted(t *testing.T, stderr string) (read, notPublished int) {
	t.Helper()
	m := interruptedRe.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("pub's stderr has no line \"interrupted after N lines (M not published)\":\n%s", stderr)
	}
	read, _ = strconv.Atoi(m[1])
	notPublished, _ = strconv.Atoi(m[2])
	return read, notPublished
}

// A pub reading a pipe that stays open and idle stops at once when interrupted, says what it
// published, and exits 130.
func TestPubInterruptIdle(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	for _, s := range signals {
		t.Run(s.name, func(t *testing.T) {
			common := []string{"--redis", srv.URL(), "--namespace", uniquePrefix(t)}
			const name = "idle"
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pw.Close()
			p := startProc(t, pr, append([]string{"pub", name}, common...)...)
			pr.Close()
			if _, err := pw.Write([]byte("line-1\nline-2\n")); err != nil {
				t.Fatal(err)
			}
			// Once both lines are in Redis, pub is running and waits for more.
			out, errOut, code := run(t, nil, append([]string{"sub", name, "--from", "0", "--json", "--count", "2"}, common...)...)
			if code != 0 {
				t.Fatalf("sub: exit code %d\nstderr:\n%s", code, errOut)
			}
			checkLines(t, "sub", out, 2)

			start := time.Now()
			code = p.interrupt(s.sig)
			t.Logf("pub exited %v after %s with code %d; stderr:\n%s", time.Since(start).Round(time.Millisecond), s.name, code, p.stderr.String())
			if code != 130 {
				t.Errorf("exit code %d, want 130", code)
			}
			if got := p.stdout.String(); got != "2\n" {
				t.Errorf("stdout %q, want the last seq published: %q", got, "2\n")
			}
			if read, lost := parseInterrupted(t, p.stderr.String()); read != 2 || lost != 0 {
				t.Errorf("pub said it read %d lines and did not publish %d, want 2 and 0", read, lost)
			}
		})
	}
}

// A pub interrupted while lines flow in stops at once, and its account is exact: every line it
// says it published is in Redis, nothing more is, and the lines read but not published are
// counted.
func TestPubInterruptFlowing(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	for _, s := range signals {
		t.Run(s.name, func(t *testing.T) {
			common := []string{"--redis", srv.URL(), "--namespace", uniquePrefix(t)}
			const name = "flowing"
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			p := startProc(t, pr, append([]string{"pub", name}, common...)...)
			pr.Close()
			const total = 500000 // far more than get through before the signal
			writeErr := pacedWriter(pw, numberedLines(total), 100, time.Millisecond)

			// Wait until 2000 lines are in Redis, then interrupt while the rest flows.
			if _, errOut, code := run(t, nil, append([]string{"sub", name, "--from", "0", "--count", "2000"}, common...)...); code != 0 {
				t.Fatalf("sub: exit code %d\nstderr:\n%s", code, errOut)
			}
			start := time.Now()
			code := p.interrupt(s.sig)
			t.Logf("pub exited %v after %s with code %d; stderr:\n%s", time.Since(start).Round(time.Millisecond), s.name, code, p.stderr.String())
			pw.Close()
			<-writeErr // a broken pipe, most likely: pub is gone
			if code != 130 {
				t.Errorf("exit code %d, want 130", code)
			}
			published, err := strconv.Atoi(strings.TrimSpace(p.stdout.String()))
			if err != nil || p.stdout.String() != fmt.Sprintln(published) {
				t.Fatalf("stdout %q, want the last seq published", p.stdout.String())
			}
			read, lost := parseInterrupted(t, p.stderr.String())
			if strings.Contains(p.stderr.String(), "in flight") {
				t.Errorf("pub gave up a batch in flight: against a healthy Redis it has the time to be acknowledged")
			}
			if read != published+lost || published < 2000 || read >= total {
				t.Errorf("pub published %d lines (last seq) and said it read %d lines, %d not published: want read = published + not published, published >= 2000, read < %d",
					published, read, lost, total)
			}

			// Every line reported published is in Redis, in order ...
			out, errOut, code := run(t, nil, append([]string{"sub", name, "--from", "0", "--json", "--count", strconv.Itoa(published)}, common...)...)
			if code != 0 {
				t.Fatalf("sub: exit code %d\nstderr:\n%s", code, errOut)
			}
			checkLines(t, "sub", out, published)
			// ... and no other: the next message gets the next seq.
			out, errOut, code = run(t, nil, append([]string{"pub", name, "end"}, common...)...)
			if want := fmt.Sprintln(published + 1); code != 0 || out != want {
				t.Errorf("pub after the interruption: exit code %d, printed %q, want %q: Redis holds lines pub did not report\nstderr:\n%s", code, out, want, errOut)
			}
		})
	}
}

// sub and watch end with exit code 130 when interrupted, not 0: a script can tell an
// interruption from a --count reached.
func TestSubWatchInterrupt(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	common := []string{"--redis", srv.URL(), "--namespace", uniquePrefix(t)}
	for _, cmd := range []string{"sub", "watch"} {
		for _, s := range signals {
			t.Run(cmd+"/"+s.name, func(t *testing.T) {
				p := startProc(t, nil, append([]string{cmd, "quiet-" + cmd}, common...)...)
				p.subscribed()
				if code := p.interrupt(s.sig); code != 130 {
					t.Errorf("%s interrupted by %s: exit code %d, want 130\nstderr:\n%s", cmd, s.name, code, p.stderr.String())
				}
			})
		}
	}
}

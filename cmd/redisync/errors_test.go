package main_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
)

// oneLineError runs redisync and checks that it fails with exit code 1 within limit, printing
// nothing on standard output and one line on standard error holding every one of wants.
func oneLineError(t *testing.T, limit time.Duration, wants []string, args ...string) {
	t.Helper()
	p := startProc(t, nil, args...)
	code := p.wait()
	took := time.Since(p.start)
	errOut := p.stderr.String()
	t.Logf("redisync %s: exit code %d after %v: %s", strings.Join(args, " "), code, took.Round(time.Millisecond), errOut)
	if code != 1 || p.stdout.String() != "" || strings.Count(errOut, "\n") != 1 {
		t.Errorf("redisync %s: exit code %d, stdout %q, stderr %q; want 1, nothing, one line", strings.Join(args, " "), code, p.stdout.String(), errOut)
	}
	for _, w := range wants {
		if !strings.Contains(errOut, w) {
			t.Errorf("redisync %s: stderr %q lacks %q", strings.Join(args, " "), errOut, w)
		}
	}
	if took > limit {
		t.Errorf("redisync %s took %v, want at most %v", strings.Join(args, " "), took.Round(time.Millisecond), limit)
	}
}

// The usual connection mistakes are each one line that names the problem and the fix.
func TestConnectionErrors(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	locked := redistest.Start(t, redistest.Options{Password: "s3cret"})
	ns := []string{"--namespace", uniquePrefix(t)}

	// No scheme: said at once, with the URL to write.
	oneLineError(t, 5*time.Second, []string{"no scheme", "redis://" + srv.Addr()}, append([]string{"pub", "c", "x", "--redis", srv.Addr()}, ns...)...)
	// A server that wants a password: the URL's form with one.
	oneLineError(t, 5*time.Second, []string{"password", "redis://:PASSWORD@HOST:PORT"}, append([]string{"pub", "c", "x", "--redis", "redis://" + locked.Addr()}, ns...)...)
	oneLineError(t, 5*time.Second, []string{"password"}, append([]string{"get", "m", "k", "--redis", "redis://:wrong@" + locked.Addr()}, ns...)...)
	// TLS to a plain server: bounded by --timeout (not the default 5s of the connection), and
	// a hint that the server may not speak TLS.
	oneLineError(t, 2*time.Second+time.Second, []string{"TLS", "redis://"},
		append([]string{"pub", "c", "x", "--redis", "rediss://" + srv.Addr(), "--timeout", "2s"}, ns...)...)
	oneLineError(t, 2*time.Second+time.Second, []string{"TLS", "redis://"},
		append([]string{"dump", "m", "--redis", "rediss://" + srv.Addr(), "--timeout", "2s"}, ns...)...)
}

// A line longer than a message may be names the limit and the flag that raises it; the flag
// does, up to 4 MiB; and pub batches by bytes as well as by lines.
func TestPubLongLines(t *testing.T) {
	c := newMapCLI(t)
	pub := func(stdin []byte, args ...string) (string, string, int) {
		t.Helper()
		return run(t, bytes.NewReader(stdin), append(append([]string{"pub"}, args...), c.common()...)...)
	}
	long := bytes.Repeat([]byte("a"), 1<<20+1)

	// Line 2 is over 1 MiB: line 1 is published, and the error names line 2, the limit and the flag.
	out, errOut, code := pub(append(append([]byte("first\n"), long...), '\n'), "long")
	if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 {
		t.Errorf("pub of a line over 1 MiB: exit %d, stdout %q, stderr %q; want 1, nothing, one line", code, out, errOut)
	}
	for _, w := range []string{"line 2", "1048576", "--max-message-bytes", "4194304", "the 1 line before it was published, at seq 1"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("pub of a line over 1 MiB: stderr %q lacks %q", errOut, w)
		}
	}
	if strings.Contains(errOut, "token too long") {
		t.Errorf("pub of a line over 1 MiB: stderr %q speaks of bufio", errOut)
	}
	// Far over the limit (the reader cannot even hold the line): the same, size unknown.
	huge := bytes.Repeat([]byte("b"), 3<<20)
	_, errOut, code = pub(huge, "huge")
	if code != 1 || !strings.Contains(errOut, "line 1") || !strings.Contains(errOut, "more than 1048576 bytes") || !strings.Contains(errOut, "--max-message-bytes") {
		t.Errorf("pub of a 3 MiB line: exit %d, stderr %q", code, errOut)
	}
	// A message given as an argument: the same limit, the same hint.
	out, errOut, code = run(t, nil, append([]string{"pub", "arg", strings.Repeat("c", 200), "--max-message-bytes", "100"}, c.common()...)...)
	if code != 1 || out != "" || !strings.Contains(errOut, "MESSAGE is 200 bytes") || !strings.Contains(errOut, "--max-message-bytes 100") {
		t.Errorf("pub of a 200-byte MESSAGE with --max-message-bytes 100: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// Raised: the long line is published whole, and a subscriber gets it.
	out, errOut, code = pub(append(long, '\n'), "long", "--max-message-bytes", "2000000")
	if code != 0 || out != "2\n" {
		t.Fatalf("pub --max-message-bytes 2000000: exit %d, stdout %q, stderr %q; want seq 2", code, out, errOut)
	}
	got := c.ok("sub", "long", "--from", "1", "--count", "1")
	if want := "2\t" + string(long) + "\n"; got != want {
		t.Errorf("sub printed %d bytes, want the %d of message 2", len(got), len(want))
	}
	// At most 4 MiB: beyond, the flag is refused before connecting, and a line over 4 MiB says so.
	_, errOut, code = pub(nil, "x", "--max-message-bytes", "5000000")
	if code != 1 || !strings.Contains(errOut, "--max-message-bytes 5000000") || !strings.Contains(errOut, "4194304") {
		t.Errorf("--max-message-bytes 5000000: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = pub(append(bytes.Repeat([]byte("d"), 5<<20), '\n'), "x", "--max-message-bytes", "4194304")
	if code != 1 || !strings.Contains(errOut, "the largest message") {
		t.Errorf("a 5 MiB line with --max-message-bytes 4194304: exit %d, stderr %q", code, errOut)
	}

	// 300 lines of 50 kB: 15 MB, read ahead faster than published, where a batch of 500
	// lines would be more than the 4 MiB one publish call may carry.
	var many bytes.Buffer
	for range 300 {
		many.Write(bytes.Repeat([]byte("m"), 50_000))
		many.WriteByte('\n')
	}
	if out, errOut, code := pub(many.Bytes(), "many"); code != 0 || out != "300\n" {
		t.Errorf("pub of 300 lines of 50,000 bytes: exit %d, stdout %q, stderr %q; want 300", code, out, errOut)
	}
	if out, errOut, code := pub(nil, "x", "--batch", "5000"); code != 1 || !strings.Contains(errOut, "--batch 5000") {
		t.Errorf("pub --batch 5000: exit %d, stdout %q, stderr %q; want 1 naming --batch", code, out, errOut)
	}
}

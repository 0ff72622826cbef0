package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
)

// binary is the redisync command built by TestMain.
var binary string

// procLimit bounds every redisync process a test runs: it is killed after that.
const procLimit = 2 * time.Minute

// TestMain builds the redisync binary once, with -race when the tests run with it, so that
// the tests below run the real command as a user would.
func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "redisync-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cli_test:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = dir + "/redisync"
	args := []string{"build", "-o", binary}
	if raceEnabled() {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cli_test: %s failed (%v); the end-to-end tests need the binary:\n%s", strings.Join(build.Args, " "), err, out)
		return 1
	}
	return m.Run()
}

// raceEnabled reports whether this test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// lineBuffer collects a process's output and lets a test wait for lines as they come.
type lineBuffer struct {
	mu      sync.Mutex // guards buf and written
	buf     bytes.Buffer
	written chan struct{} // when not nil, poked (without blocking) at every write
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.written != nil {
		select {
		case b.written <- struct{}{}:
		default:
		}
	}
	return b.buf.Write(p)
}

// writes returns a channel poked at every write from now on.
func (b *lineBuffer) writes() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.written == nil {
		b.written = make(chan struct{}, 1)
	}
	return b.written
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the complete lines written so far.
func (b *lineBuffer) lines() []string {
	s := b.String()
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.Split(s[:i], "\n")
	}
	return nil
}

// proc is a redisync process started by a test.
type proc struct {
	t      *testing.T
	args   []string
	cmd    *exec.Cmd
	stdout lineBuffer
	stderr lineBuffer
	start  time.Time
	done   chan struct{} // closed once the process has exited and been reaped
	err    error         // of Wait; read after done
}

// startProc starts redisync with args, its standard input from stdin (nil: empty). The process
// is killed after procLimit and, if still running, when the test ends.
func startProc(t *testing.T, stdin io.Reader, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), procLimit)
	p := &proc{t: t, args: args, done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, binary, args...)
	p.cmd.Stdin = stdin
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	p.cmd.WaitDelay = 5 * time.Second
	if raceEnabled() {
		// The race runtime sleeps a second at exit by default; that would skew the timings.
		p.cmd.Env = append(os.Environ(), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	}
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start redisync %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		p.err = p.cmd.Wait()
		cancel()
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

// wait waits for the process to exit and returns its exit code; it fails the test when the
// process had to be killed.
func (p *proc) wait() int {
	p.t.Helper()
	<-p.done
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee) && ee.Exited():
		return ee.ExitCode()
	default:
		p.t.Fatalf("redisync %s: %v after %v (killed?)\nstdout (tail):\n%s\nstderr:\n%s",
			strings.Join(p.args, " "), p.err, time.Since(p.start).Round(time.Millisecond), tail(p.stdout.String(), 10), p.stderr.String())
		return -1
	}
}

// mustSucceed waits for the process and fails the test unless it exited 0.
func (p *proc) mustSucceed() {
	p.t.Helper()
	if code := p.wait(); code != 0 {
		p.t.Fatalf("redisync %s: exit code %d\nstdout (tail):\n%s\nstderr:\n%s",
			strings.Join(p.args, " "), code, tail(p.stdout.String(), 10), p.stderr.String())
	}
}

// run runs redisync to the end and returns its output and exit code.
func run(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	p := startProc(t, stdin, args...)
	code = p.wait()
	return p.stdout.String(), p.stderr.String(), code
}

// waitFor polls cond every 10ms until it is true, and fails the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitLine waits until b, the standard output or error of p, holds a complete line that starts
// with prefix, and returns that line. It fails the test after limit, or when p exits first.
func (p *proc) waitLine(b *lineBuffer, prefix string, limit time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	written := b.writes()
	for {
		for _, l := range b.lines() {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		select {
		case <-p.done:
			for _, l := range b.lines() { // it may have come just before the exit
				if strings.HasPrefix(l, prefix) {
					return l
				}
			}
			p.t.Fatalf("redisync %s exited (%v) without printing a line %q\nstdout (tail):\n%s\nstderr:\n%s",
				strings.Join(p.args, " "), p.err, prefix+"…", tail(p.stdout.String(), 10), p.stderr.String())
		case <-written:
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("redisync %s printed no line %q within %v\nstdout (tail):\n%s\nstderr:\n%s",
				strings.Join(p.args, " "), prefix+"…", limit, tail(p.stdout.String(), 10), p.stderr.String())
		}
	}
}

// subscribed waits for the "subscribed after POS" line of a sub or watch and returns POS.
func (p *proc) subscribed() string {
	p.t.Helper()
	return strings.TrimPrefix(p.waitLine(&p.stderr, "subscribed after ", 30*time.Second), "subscribed after ")
}

// waitWithin is wait, but fails the test (which kills the process) when it has not exited
// within limit.
func (p *proc) waitWithin(limit time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.wait()
	case <-time.After(limit):
		p.t.Fatalf("redisync %s still running %v later\nstdout (tail):\n%s\nstderr:\n%s",
			strings.Join(p.args, " "), limit, tail(p.stdout.String(), 10), p.stderr.String())
		return -1
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// uniquePrefix returns a key prefix of the test's own.
func uniquePrefix(t *testing.T) string {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return "t-" + name + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// pubsubChannel is the Redis pub/sub channel of a redisync channel (see keysFor in
// channel/position.go).
func pubsubChannel(prefix, name string) string { return prefix + ":{" + name + "}:pub" }

// numSub returns the number of subscribers of a Redis pub/sub channel.
func numSub(t *testing.T, srv *redistest.Server, ch string) int {
	reply, err := srv.Do("PUBSUB", "NUMSUB", ch)
	if err != nil {
		return -1
	}
	f := strings.Fields(strings.Trim(reply, "[]"))
	if len(f) != 2 {
		t.Fatalf("PUBSUB NUMSUB %s = %q", ch, reply)
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// jsonEvent is a line of "redisync sub --json".
type jsonEvent struct {
	Seq   uint64  `json:"seq"`
	Epoch string  `json:"epoch"`
	Time  string  `json:"time"`
	Data  *string `json:"data"`
	Reset *struct {
		Reason   string `json:"reason"`
		From     uint64 `json:"from"`
		To       uint64 `json:"to"`
		OldEpoch string `json:"old_epoch"`
		NewEpoch string `json:"new_epoch"`
	} `json:"reset"`
}

func parseEvents(t *testing.T, lines []string) []jsonEvent {
	t.Helper()
	evs := make([]jsonEvent, 0, len(lines))
	for i, l := range lines {
		var ev jsonEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("line %d of sub output is not JSON: %q: %v", i+1, l, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// checkLines checks that out holds exactly n messages, seq 1..n in order in one epoch, each
// with data "line-<seq>" and no reset. It reports at most a few mistakes.
func checkLines(t *testing.T, who, out string, n int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if out == "" {
		lines = nil
	}
	if len(lines) != n {
		t.Errorf("%s printed %d lines, want %d; last ones:\n%s", who, len(lines), n, tail(out, 5))
	}
	evs := parseEvents(t, lines)
	bad := 0
	for i, ev := range evs {
		want := uint64(i + 1)
		var problem string
		switch {
		case ev.Reset != nil:
			problem = "a reset"
		case ev.Seq != want:
			problem = fmt.Sprintf("seq %d, want %d", ev.Seq, want)
		case ev.Epoch == "" || ev.Epoch != evs[0].Epoch:
			problem = fmt.Sprintf("epoch %q, want %q", ev.Epoch, evs[0].Epoch)
		case ev.Data == nil || *ev.Data != "line-"+strconv.FormatUint(ev.Seq, 10):
			problem = "wrong data"
		}
		if problem != "" {
			t.Errorf("%s line %d is %s: %s", who, i+1, problem, lines[i])
			if bad++; bad == 5 {
				t.Fatalf("%s: giving up after %d bad lines", who, bad)
			}
		}
	}
}

// numberedLines returns "line-1\n" … "line-n\n".
func numberedLines(n int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "line-%d\n", i)
	}
	return b.Bytes()
}

// pacedWriter writes data to w in chunks of chunk lines, one every gap, then closes w. It
// returns a channel that yields the error of the writing, if any, when done.
func pacedWriter(w io.WriteCloser, data []byte, chunk int, gap time.Duration) <-chan error {
	errc := make(chan error, 1)
	go func() {
		defer w.Close()
		for len(data) > 0 {
			end, n := 0, 0
			for end < len(data) && n < chunk {
				i := bytes.IndexByte(data[end:], '\n')
				end += i + 1
				n++
			}
			if _, err := w.Write(data[:end]); err != nil {
				errc <- err
				return
			}
			data = data[end:]
			time.Sleep(gap)
		}
		errc <- nil
	}()
	return errc
}

// The acceptance test of the project: two subscribers receive every one of 20,000 piped lines
// once and in order while their pub/sub connections are killed under them.
func TestPipedPublishWithPubSubKills(t *testing.T) {
	const (
		total = 20000
		chunk = 400                   // lines per write into pub's standard input
		gap   = 20 * time.Millisecond // between writes: 50 writes, about 1s of stream
	)
	srv := redistest.Start(t, redistest.Options{})
	prefix := uniquePrefix(t)
	const name = "accept"
	common := []string{"--redis", srv.URL(), "--namespace", prefix}

	subs := []*proc{
		startProc(t, nil, append([]string{"sub", name, "--json", "--count", strconv.Itoa(total), "-v"}, common...)...),
		startProc(t, nil, append([]string{"sub", name, "--json", "--count", strconv.Itoa(total), "-v"}, common...)...),
	}
	ch := pubsubChannel(prefix, name)
	waitFor(t, 30*time.Second, "both subscribers on "+ch, func() bool { return numSub(t, srv, ch) == 2 })
	// A subscriber reads the head ("--from now") just after subscribing; give it the time to.
	time.Sleep(300 * time.Millisecond)

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := startProc(t, pr, append([]string{"pub", name}, common...)...)
	pr.Close() // the child has its own copy
	writeErr := pacedWriter(pw, numberedLines(total), chunk, gap)

	// Kill the subscribers' pub/sub connections while the lines flow.
	time.Sleep(200 * time.Millisecond)
	kills := 0
	for range 3 {
		kills += srv.ClientKill("pubsub")
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("CLIENT KILL TYPE pubsub closed %d connections", kills)

	p.mustSucceed()
	elapsed := time.Since(p.start)
	if err := <-writeErr; err != nil {
		t.Fatalf("writing to pub's standard input: %v", err)
	}
	if got := strings.TrimSpace(p.stdout.String()); got != strconv.Itoa(total) {
		t.Errorf("pub printed %q, want %d", got, total)
	}
	t.Logf("pub: %d lines in %v: %.0f lines/s (paced input: %d lines every %v)",
		total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), chunk, gap)
	if kills == 0 {
		t.Fatal("no pub/sub connection was killed while publishing: the test proved nothing")
	}

	for i, s := range subs {
		s.mustSucceed()
		who := fmt.Sprintf("sub %d", i+1)
		checkLines(t, who, s.stdout.String(), total)
		lost := strings.Count(s.stderr.String(), "pub/sub connection lost")
		t.Logf("%s: %d lines; logged %d lost pub/sub connections", who, len(s.stdout.lines()), lost)
	}

	// The unpaced rate, for the record: the same lines at once into another channel.
	p = startProc(t, bytes.NewReader(numberedLines(total)), append([]string{"pub", name + "-rate"}, common...)...)
	p.mustSucceed()
	elapsed = time.Since(p.start)
	t.Logf("pub, unpaced: %d lines in %v: %.0f lines/s (process start included; race detector: %v)",
		total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), raceEnabled())
}

func TestPubRidesOutRestart(t *testing.T) {
	const total = 2000
	srv := redistest.Start(t, redistest.Options{AppendOnly: true})
	prefix := uniquePrefix(t)
	const name = "restart"
	common := []string{"--redis", srv.URL(), "--namespace", prefix}

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := startProc(t, pr, append([]string{"pub", name, "-v"}, common...)...)
	pr.Close()
	writeErr := pacedWriter(pw, numberedLines(total), 1, time.Millisecond)

	time.Sleep(500 * time.Millisecond) // about a quarter of the stream
	logKey := prefix + ":{" + name + "}:log"
	n, err := srv.Do("XLEN", logKey)
	if err != nil {
		t.Fatal(err)
	}
	if n == "0" || n == strconv.Itoa(total) {
		t.Fatalf("XLEN %s = %s before the restart: it would not land mid-stream", logKey, n)
	}
	srv.Restart()
	t.Logf("redis-server restarted %v after pub started, after message %s", time.Since(p.start).Round(time.Millisecond), n)

	p.mustSucceed()
	if err := <-writeErr; err != nil {
		t.Fatalf("writing to pub's standard input: %v", err)
	}
	if got := strings.TrimSpace(p.stdout.String()); got != strconv.Itoa(total) {
		t.Errorf("pub printed %q, want %d", got, total)
	}
	t.Logf("pub stderr:\n%s", p.stderr.String())

	out, errOut, code := run(t, nil, append([]string{"sub", name, "--from", "0", "--json", "--count", strconv.Itoa(total)}, common...)...)
	if code != 0 {
		t.Fatalf("sub exit code %d\nstderr:\n%s", code, errOut)
	}
	checkLines(t, "sub", out, total)
}

func TestSubReset(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	prefix := uniquePrefix(t)
	const name = "reset"
	common := []string{"--redis", srv.URL(), "--namespace", prefix}

	out, errOut, code := run(t, strings.NewReader("m1\nm2\nm3\nm4\nm5\n"), append([]string{"pub", name}, common...)...)
	if code != 0 || strings.TrimSpace(out) != "5" {
		t.Fatalf("pub: exit code %d, printed %q\nstderr:\n%s", code, out, errOut)
	}

	sub := startProc(t, nil, append([]string{"sub", name, "--from", "0", "--json", "--count", "6"}, common...)...)
	plain := startProc(t, nil, append([]string{"sub", name, "--from", "0", "--count", "6"}, common...)...)
	waitFor(t, 30*time.Second, "the 5 messages from sub", func() bool { return len(sub.stdout.lines()) >= 5 })
	waitFor(t, 30*time.Second, "the 5 messages from the plain sub", func() bool { return len(plain.stdout.lines()) >= 5 })
	srv.Restart() // no persistence: the log is gone, the next publish starts a new epoch

	out, errOut, code = run(t, nil, append([]string{"pub", name, "after"}, common...)...)
	if code != 0 || strings.TrimSpace(out) != "1" {
		t.Fatalf("pub after the restart: exit code %d, printed %q, want 1\nstderr:\n%s", code, out, errOut)
	}
	sub.mustSucceed()
	plain.mustSucceed()

	lines := sub.stdout.lines()
	t.Logf("sub output:\n%s", strings.Join(lines, "\n"))
	evs := parseEvents(t, lines)
	if len(evs) != 7 {
		t.Fatalf("sub printed %d lines, want 5 messages, a reset and 1 message", len(evs))
	}
	for i, ev := range evs[:5] {
		if want := fmt.Sprintf("m%d", i+1); ev.Reset != nil || ev.Seq != uint64(i+1) || ev.Data == nil || *ev.Data != want {
			t.Errorf("line %d = %s, want seq %d data %q", i+1, lines[i], i+1, want)
		}
	}
	oldEpoch := evs[0].Epoch
	if r := evs[5].Reset; r == nil || r.Reason != "epoch-changed" {
		t.Errorf("line 6 = %s, want a reset with reason epoch-changed", lines[5])
	} else if r.OldEpoch != oldEpoch {
		t.Errorf("reset old_epoch %q, want %q", r.OldEpoch, oldEpoch)
	}
	last := evs[6]
	if last.Reset != nil || last.Seq != 1 || last.Data == nil || *last.Data != "after" || last.Epoch == oldEpoch || last.Epoch == "" {
		t.Errorf("line 7 = %s, want seq 1 data \"after\" in a new epoch", lines[6])
	}
	// The lost range has no known end: "to" is null, not 0. The reset's pos is where the
	// subscription continues: before the new epoch's first message, or (when the reset came
	// before the new epoch did) before whatever epoch comes next.
	raw := rawLines(t, sub.stdout.String())
	if to := rawReset(t, raw[5])["to"]; string(to) != "null" {
		t.Errorf("reset \"to\" is %s, want null", to)
	}
	if p := str(t, raw[5], "pos"); p != last.Epoch+":0" && p != "0" {
		t.Errorf("reset pos %q, want %q or %q", p, last.Epoch+":0", "0")
	}
	resetRe := regexp.MustCompile(`^reset \(epoch-changed\): messages from 6 on of epoch ` + oldEpoch +
		`; (the new epoch is ` + last.Epoch + `; continuing after ` + last.Epoch + `:0|the channel has no history now; continuing after 0)$`)
	// Besides, the restart is logged as warnings (lines of the form time=… level=WARN …).
	var errLines []string
	for _, l := range plain.stderr.lines() {
		if !strings.HasPrefix(l, "time=") {
			errLines = append(errLines, l)
		} else if !strings.Contains(l, "level=WARN") {
			t.Errorf("a log line below warning level without -v: %s", l)
		}
	}
	if len(errLines) != 2 || errLines[0] != "subscribed after "+oldEpoch+":0" || !resetRe.MatchString(errLines[1]) {
		t.Errorf("plain sub's stderr:\n%s\nwant \"subscribed after %s:0\" and a line matching %s", plain.stderr.String(), oldEpoch, resetRe)
	}
	if out, want := plain.stdout.String(), "1\tm1\n2\tm2\n3\tm3\n4\tm4\n5\tm5\n1\tafter\n"; out != want {
		t.Errorf("plain sub printed %q, want %q", out, want)
	}
}

// An empty --redis (an unset variable in a script) is an error, not a reason to use
// $REDIS_URL or the default address: nothing is published anywhere.
func TestEmptyRedisURL(t *testing.T) {
	out, errOut, code := run(t, nil, "pub", "c", "x", "--redis", "", "--timeout", "1s")
	if code != 1 || out != "" || !strings.Contains(errOut, "--redis is empty") {
		t.Errorf("pub --redis \"\": exit code %d, stdout %q, stderr %q; want 1 and an error naming --redis", code, out, errOut)
	}
}

func TestSubBadFlags(t *testing.T) {
	// Nothing listens there: the commands must fail on their arguments before connecting.
	url := "redis://" + freeAddr(t)
	for _, tc := range []struct {
		name string
		args []string
		want string // on standard error
	}{
		{"from", []string{"sub", "c", "--from", "banana"}, "--from"},
		{"from without epoch", []string{"sub", "c", "--from", ":5"}, "--from"},
		{"from without seq", []string{"sub", "c", "--from", "9d1c9a97561c2466:"}, "--from"},
		{"from negative", []string{"sub", "c", "--from", "-1"}, "--from"},
		{"from beyond any log", []string{"sub", "c", "--from", "18446744073709551615"}, "beyond the largest seq a log can hold"},
		{"from beyond any log, with an epoch", []string{"sub", "c", "--from", "9d1c9a97561c2466:9007199254740992"}, "beyond the largest seq"},
		{"watch from beyond any log", []string{"watch", "m", "--from", "9007199254740992"}, "beyond the largest seq"},
		{"pub without args", []string{"pub"}, "arg"},
		{"sub without args", []string{"sub"}, "arg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := run(t, nil, append(tc.args, "--redis", url)...)
			t.Logf("exit code %d, stderr: %s", code, errOut)
			if code == 0 {
				t.Errorf("exit code 0, want non-zero; stdout %q", out)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q does not mention %q", errOut, tc.want)
			}
		})
	}
}

// A command started while Redis restarts waits for it and then does its work: pub publishes
// once the server is back.
func TestCommandWaitsForARestartingRedis(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	srv.Stop()
	p := startProc(t, nil, "pub", "c", "hi", "--redis", srv.URL(), "--namespace", uniquePrefix(t), "--timeout", "20s")
	p.waitLine(&p.stderr, "redisync: waiting for Redis", 10*time.Second)
	srv.Restart()
	if code := p.wait(); code != 0 || strings.TrimSpace(p.stdout.String()) != "1" {
		t.Fatalf("pub across a restart: exit code %d, stdout %q, stderr %q; want 0 and seq 1", code, p.stdout.String(), p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "redisync: Redis answers") {
		t.Errorf("stderr %q does not say Redis answers again", p.stderr.String())
	}
}

// A Redis that refuses connections may be restarting: a command waits for it up to --timeout,
// saying so once, then gives up with one line naming the address and the cause.
func TestUnreachableRedis(t *testing.T) {
	addr := freeAddr(t)
	p := startProc(t, nil, "pub", "c", "hi", "--redis", "redis://"+addr, "--timeout", "1s")
	code := p.wait()
	elapsed := time.Since(p.start)
	errOut := p.stderr.String()
	t.Logf("exit code %d after %v, stderr: %s", code, elapsed.Round(time.Millisecond), errOut)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if elapsed < time.Second || elapsed > 6*time.Second {
		t.Errorf("took %v, want --timeout 1s and a little more", elapsed)
	}
	lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "redisync: waiting for Redis (") ||
		!strings.HasSuffix(lines[0], "retrying for up to --timeout 1s") || !strings.HasSuffix(lines[1], "gave up after --timeout 1s") {
		t.Errorf("stderr %q: want a line saying it waits, then one saying it gave up", errOut)
	}
	for _, want := range []string{"connection refused", addr} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q does not contain %q", errOut, want)
		}
	}
	if strings.Contains(errOut, "goroutine") {
		t.Errorf("stderr holds a stack trace: %q", errOut)
	}
	if p.stdout.String() != "" {
		t.Errorf("stdout %q, want nothing", p.stdout.String())
	}
}

func TestPubSingleMessage(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	common := []string{"--redis", srv.URL(), "--namespace", uniquePrefix(t)}
	for i, want := range []string{"1", "2"} {
		out, errOut, code := run(t, nil, append([]string{"pub", "c", "hello"}, common...)...)
		if code != 0 || strings.TrimSpace(out) != want || out != want+"\n" {
			t.Errorf("call %d: exit code %d, printed %q, want %q\nstderr:\n%s", i+1, code, out, want+"\n", errOut)
		}
	}
}

// freeAddr returns a loopback address where nothing listens.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

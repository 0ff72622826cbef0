package redistest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// DefaultBinary is where Debian installs redis-server; when it is
	// missing, redis-server is looked up on PATH.
	DefaultBinary = "/usr/bin/redis-server"
	// StartTimeout bounds how long Start and Restart wait for PING to answer.
	StartTimeout = 10 * time.Second
	// StopTimeout bounds how long Stop waits for a graceful exit before
	// falling back to SIGKILL.
	StopTimeout = 10 * time.Second

	startAttempts = 5
	logName       = "redis.log"
	stderrName    = "redis.stderr"
	logTailLines  = 20
)

// errPortBusy reports that redis-server could not bind its port, which
// someone took between freePort and the launch; such a start is retried.
var errPortBusy = errors.New("redistest: port already in use")

// Options configures a server started by Start. The zero value starts a
// server without persistence and without extra arguments.
type Options struct {
	// AppendOnly enables the append-only file with "appendfsync always", so
	// that every acknowledged write survives Kill and Restart. Default: off
	// (--appendonly no), and Restart loses all data.
	AppendOnly bool
	// Args are extra redis-server arguments appended after the defaults,
	// e.g. {"--client-output-buffer-limit", "pubsub 64kb 0 0"}. Default: none.
	Args []string
	// Password is set as requirepass, and Do, Client and the start's PING
	// authenticate with it. Default: none, the server is open.
	Password string
	// TLS, when set, makes the server speak TLS only, on its port
	// (--port 0 --tls-port PORT), with the server certificate of TLS, and
	// ask clients for a certificate signed by its CA (tls-auth-clients yes,
	// the default). Do, Client and the start's PING connect with the client
	// certificate. Default: nil, plain TCP.
	TLS *Certs
}

// Server is one redis-server process owned by a test. Its port and data
// directory stay the same across Restart.
type Server struct {
	tb   testing.TB
	bin  string
	opts Options
	dir  string
	port int
	addr string

	tls      *tls.Config // how Do connects when opts.TLS is set
	user     string      // ACL user Do authenticates as with opts.Password; "" is the default user
	sentinel string      // path of the config file of a sentinel; "" for a data server
	cluster  bool        // runs with cluster-enabled yes on busPort
	busPort  int         // cluster bus port, chosen with the port by Start

	mu     sync.Mutex    // guards cmd, exited and paused
	cmd    *exec.Cmd     // the current process; nil before the first launch
	exited chan struct{} // closed once cmd has exited and been reaped
	paused bool          // stopped by Pause and not resumed yet
}

// Start starts a redis-server on a free loopback port and waits until it
// answers PING. It calls t.Fatalf on failure and registers a t.Cleanup that
// kills the process and removes its data directory.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	skipShort(t)
	s := newServer(t, opts)
	if err := s.start(); err != nil {
		t.Fatalf("%v", err)
	}
	return s
}

// newServer returns a server that is not started yet, with its data
// directory and the cleanup that kills it.
func newServer(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := findBinary()
	if err != nil {
		t.Fatalf("%v", err)
	}
	s := &Server{
		tb:   t,
		bin:  bin,
		opts: opts,
		// TempDir registers its removal before our kill is registered, so
		// cleanups (run last-in first-out) kill the process first.
		dir: t.TempDir(),
	}
	if opts.TLS != nil {
		if s.tls, err = opts.TLS.clientConfig(); err != nil {
			t.Fatalf("redistest: TLS client configuration: %v", err)
		}
	}
	t.Cleanup(s.kill)
	return s
}

// start launches s on free ports, trying others when a port is taken
// between freePort and the launch.
func (s *Server) start() error {
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		if s.cluster {
			if s.busPort, err = freePort(); err != nil {
				return err
			}
		}
		err = s.launch(port)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errPortBusy) || attempt == startAttempts {
			return fmt.Errorf("redistest: start redis-server (attempt %d): %w", attempt, err)
		}
	}
}

// Addr returns the server's address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.addr }

// URL returns the server's address as a redis URL, "redis://127.0.0.1:PORT",
// or "rediss://127.0.0.1:PORT" when it speaks TLS (the URL names no
// certificate: add them as the client expects).
func (s *Server) URL() string {
	if s.opts.TLS != nil {
		return "rediss://" + s.addr
	}
	return "redis://" + s.addr
}

// Dir returns the server's data directory, which holds the append-only file
// and the log file redis.log; it survives Restart.
func (s *Server) Dir() string { return s.dir }

// Pause stops the server's process with SIGSTOP: its connections stay open
// and its port keeps accepting them, but it reads, writes and answers
// nothing, as a machine that froze or a replica cut off from its master. A
// paused replica falls behind its master; a paused master is seen as down
// once its peers' timeouts expire. Pause does nothing if the server is not
// running or already paused.
func (s *Server) Pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runningLocked() && !s.paused {
		if err := s.cmd.Process.Signal(pauseSignal); err != nil {
			s.tb.Fatalf("redistest: pause redis-server on %s: %v", s.addr, err)
		}
		s.paused = true
	}
}

// Resume continues a server stopped by Pause with SIGCONT. It does nothing
// if the server is not paused.
func (s *Server) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resumeLocked()
}

func (s *Server) resumeLocked() {
	if s.runningLocked() && s.paused {
		if err := s.cmd.Process.Signal(resumeSignal); err != nil {
			s.tb.Fatalf("redistest: resume redis-server on %s: %v", s.addr, err)
		}
	}
	s.paused = false
}

// Kill sends SIGKILL to the server and waits until the process has exited
// and been reaped. Nothing is flushed beyond what "appendfsync always"
// already wrote. Kill does nothing if the server is not running.
func (s *Server) Kill() { s.kill() }

// Stop shuts the server down with SHUTDOWN NOSAVE (SIGTERM if the command
// cannot be sent), resuming it first if it is paused, and waits until it has
// exited; after StopTimeout it falls back to SIGKILL. Stop does nothing if
// the server is not running.
func (s *Server) Stop() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.runningLocked() {
		return
	}
	s.resumeLocked()
	if _, err := s.Do("SHUTDOWN", "NOSAVE"); err != nil && !isConnClosed(err) {
		_ = s.cmd.Process.Signal(terminateSignal)
	}
	select {
	case <-s.exited:
	case <-time.After(StopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.tb.Fatalf("redistest: redis-server on %s ignored SHUTDOWN for %v; killed it", s.addr, StopTimeout)
	}
}

// Restart kills the server if it is running, then starts it again on the
// same port with the same data directory (so an append-only file survives)
// and waits until it answers PING.
func (s *Server) Restart() {
	s.tb.Helper()
	s.kill()
	var err error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		if err = s.launch(s.port); err == nil || !errors.Is(err, errPortBusy) {
			break
		}
		// The port may linger for a moment after the kill; try again.
		time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
	}
	if err != nil {
		s.tb.Fatalf("redistest: restart redis-server on %s: %v", s.addr, err)
	}
}

// kill sends SIGKILL and reaps the process; it is also the cleanup.
func (s *Server) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.runningLocked() {
		return
	}
	_ = s.cmd.Process.Kill() // SIGKILL ends a paused process too
	<-s.exited
	s.paused = false
}

// up reports whether the process runs and is not paused.
func (s *Server) up() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runningLocked() && !s.paused
}

// runningLocked reports whether a launched process has not exited yet.
func (s *Server) runningLocked() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// launch starts redis-server on port and waits until it answers PING. It
// returns an error wrapping errPortBusy if the port could not be bound.
func (s *Server) launch(port int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runningLocked() {
		return errors.New("redistest: redis-server is already running")
	}
	if port != s.port {
		// Only while Start still owns s: Restart reuses the same port, so
		// Addr never races with a relaunch.
		s.port = port
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}

	args := s.args(port)

	// Errors before the log file is open (bad arguments) go to stderr,
	// which holds the last launch only; the log file keeps every launch.
	logStart := fileSize(filepath.Join(s.dir, logName))
	stderr, err := os.Create(filepath.Join(s.dir, stderrName))
	if err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	cmd.SysProcAttr = sysProcAttr()
	err = cmd.Start()
	stderr.Close() // the child has its own copy
	if err != nil {
		return fmt.Errorf("redistest: run %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // reaps the process: no zombie
		close(exited)
	}()
	s.cmd, s.exited, s.paused = cmd, exited, false

	deadline := time.Now().Add(StartTimeout)
	for {
		select {
		case <-exited:
			err := fmt.Errorf("redistest: redis-server exited before answering PING (%v) on port %d%s", cmd.ProcessState, port, s.logTail())
			if s.portBusySince(logStart) {
				err = fmt.Errorf("%w: %w", errPortBusy, err)
			}
			return err
		default:
		}
		if reply, err := s.do(200*time.Millisecond, "PING"); err == nil && reply == "PONG" {
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redistest: redis-server on port %d did not answer PING within %v%s", port, StartTimeout, s.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// args returns the command line of a launch on port.
func (s *Server) args(port int) []string {
	var args []string
	if s.sentinel != "" {
		// Sentinel reads and rewrites its own config file; the command line
		// overrides what the file says.
		args = append(args, s.sentinel, "--sentinel")
	}
	if s.opts.TLS != nil {
		args = append(args,
			"--port", "0",
			"--tls-port", strconv.Itoa(port),
			"--tls-cert-file", s.opts.TLS.ServerCertFile,
			"--tls-key-file", s.opts.TLS.ServerKeyFile,
			"--tls-ca-cert-file", s.opts.TLS.CAFile,
		)
	} else {
		args = append(args, "--port", strconv.Itoa(port))
	}
	args = append(args,
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--daemonize", "no",
		"--logfile", filepath.Join(s.dir, logName),
	)
	if s.sentinel == "" {
		args = append(args, "--save", "")
		if s.opts.AppendOnly {
			args = append(args, "--appendonly", "yes", "--appendfsync", "always")
		} else {
			args = append(args, "--appendonly", "no")
		}
		if s.opts.Password != "" {
			args = append(args, "--requirepass", s.opts.Password)
		}
		if s.cluster {
			args = append(args,
				"--cluster-enabled", "yes",
				"--cluster-port", strconv.Itoa(s.busPort),
				"--cluster-config-file", "nodes.conf",
			)
		}
	}
	return append(args, s.opts.Args...)
}

// logTail returns the last lines of the server's stderr and log file,
// formatted for an error message.
func (s *Server) logTail() string {
	var b strings.Builder
	for _, name := range []string{stderrName, logName} {
		data, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil || len(strings.TrimSpace(string(data))) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > logTailLines {
			lines = lines[len(lines)-logTailLines:]
		}
		fmt.Fprintf(&b, "\n--- tail of %s ---\n%s", name, strings.Join(lines, "\n"))
	}
	return b.String()
}

// portBusySince reports whether the log written after offset says that
// redis-server could not bind its port.
func (s *Server) portBusySince(offset int64) bool {
	data, err := os.ReadFile(filepath.Join(s.dir, logName))
	if err != nil || int64(len(data)) < offset {
		return false
	}
	return strings.Contains(string(data[offset:]), "Address already in use")
}

// fileSize returns the size of the file at path, 0 if it does not exist.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// findBinary returns the path of redis-server.
func findBinary() (string, error) {
	if _, err := os.Stat(DefaultBinary); err == nil {
		return DefaultBinary, nil
	}
	if path, err := exec.LookPath("redis-server"); err == nil {
		return path, nil
	}
	return "", errors.New(`redis-server not found: install it with "apt-get install redis-server" (tests need a real Redis 7)`)
}

// freePort returns a loopback port that was free a moment ago; it never
// returns 6379, which belongs to the machine's own Redis.
func freePort() (int, error) {
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("redistest: find a free port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if port != 6379 {
			return port, nil
		}
	}
}

// skipShort skips t under go test -short: the fast tier runs no redis-server. The full
// command never skips; a missing redis-server is then a failure with advice.
func skipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a redis-server; skipped with -short (the full test command runs it)")
	}
}

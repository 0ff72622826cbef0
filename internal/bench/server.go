package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RedisServerBinary is where Debian installs redis-server; when it is missing, StartServer looks
// redis-server up on PATH.
const RedisServerBinary = "/usr/bin/redis-server"

// serverStartTimeout bounds how long StartServer waits for PING to answer.
const serverStartTimeout = 10 * time.Second

// Server is a redis-server process started by StartServer for a run: no persistence, bound to
// a free loopback port, with a data directory of its own.
type Server struct {
	cmd    *exec.Cmd
	addr   string
	dir    string
	exited chan struct{} // closed once the process has exited and been reaped
}

// StartServer starts redis-server on a free loopback port, with no persistence (--save ""
// --appendonly no), and waits until it answers PING. Close kills it.
func StartServer(ctx context.Context) (*Server, error) {
	bin, err := redisServerBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "redisync-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: start redis-server: %w", err)
	}
	for attempt := 1; ; attempt++ {
		s, err := launch(ctx, bin, dir)
		if err == nil {
			return s, nil
		}
		if attempt == 3 || ctx.Err() != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		// Most likely someone took the port between finding it free and binding it.
	}
}

func launch(ctx context.Context, bin, dir string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: find a free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	logPath := filepath.Join(dir, "redis.log")
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--logfile", logPath)
	cmd.Dir = dir
	cmd.SysProcAttr = serverProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: run %s: %w", bin, err)
	}
	s := &Server{cmd: cmd, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // reaps the process
		close(s.exited)
	}()
	deadline := time.Now().Add(serverStartTimeout)
	for {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("bench: redis-server exited before answering PING (%v)%s", cmd.ProcessState, logTail(logPath))
		case <-ctx.Done():
			s.kill()
			return nil, ctx.Err()
		default:
		}
		if ping(s.addr) == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.kill()
			return nil, fmt.Errorf("bench: redis-server on %s did not answer PING within %v%s", s.addr, serverStartTimeout, logTail(logPath))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Addr returns the server's address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.addr }

// URL returns the server's address as a redis URL.
func (s *Server) URL() string { return "redis://" + s.addr }

// Close kills the server, waits until it has exited and removes its data directory. It is
// idempotent.
func (s *Server) Close() error {
	s.kill()
	return os.RemoveAll(s.dir)
}

func (s *Server) kill() {
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// ping sends PING on a new connection and checks the answer.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

func logTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil || len(strings.TrimSpace(string(data))) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return "\n--- tail of redis.log ---\n" + strings.Join(lines[max(0, len(lines)-10):], "\n")
}

func redisServerBinary() (string, error) {
	if _, err := os.Stat(RedisServerBinary); err == nil {
		return RedisServerBinary, nil
	}
	if path, err := exec.LookPath("redis-server"); err == nil {
		return path, nil
	}
	return "", errors.New(`bench: redis-server not found in ` + RedisServerBinary + ` or on PATH: install it ` +
		`("apt-get install redis-server"), or point --redis at a running Redis`)
}

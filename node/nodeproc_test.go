package node

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nodeProcessEnv hands a copy of the test binary the nodeProcessSpec of the node it serves
// (TestHelperNodeProcess): a node in a process of its own can be frozen with SIGSTOP.
const nodeProcessEnv = "REDISYNC_TEST_NODE_PROCESS"

// nodeProcessSpec is the node a process started by startNodeProcess serves.
type nodeProcessSpec struct {
	Redis, Prefix, ID string
	Maps              []string
	Heartbeat, TTL    time.Duration
}

// TestHelperNodeProcess is no test of its own: run by startNodeProcess with nodeProcessEnv,
// it serves the node described there, prints "node-process URL" once its replicas are
// ready, and serves until its standard input ends or it is killed. Without nodeProcessEnv
// it returns at once.
func TestHelperNodeProcess(t *testing.T) {
	env := os.Getenv(nodeProcessEnv)
	if env == "" {
		return
	}
	var spec nodeProcessSpec
	if err := json.Unmarshal([]byte(env), &spec); err != nil {
		t.Fatalf("%s: %v", nodeProcessEnv, err)
	}
	n := startNode(t, spec.Redis, spec.Prefix, Config{ID: spec.ID, Maps: spec.Maps, Heartbeat: spec.Heartbeat, TTL: spec.TTL})
	n.waitReady(t)
	os.Stdout.WriteString("node-process " + n.url + "\n")
	io.Copy(io.Discard, os.Stdin)
}

// nodeProcess is a node served by another process (a copy of the test binary).
type nodeProcess struct {
	cmd     *exec.Cmd
	url     string
	stderr  lockedBuffer
	drained chan struct{} // closed once its standard output has ended
}

// lockedBuffer is a bytes.Buffer that a process writes while a test may read it.
type lockedBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startNodeProcess starts a process that serves the node of spec, waits until its replicas
// are ready, and kills it when the test ends (frozen or not).
func startNodeProcess(t *testing.T, spec nodeProcessSpec) *nodeProcess {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	p := &nodeProcess{drained: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestHelperNodeProcess$", "-test.count=1", "-test.timeout=5m")
	p.cmd.Env = append(os.Environ(), nodeProcessEnv+"="+string(b))
	p.cmd.Stderr = &p.stderr
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	urls := make(chan string, 1)
	go func() {
		defer close(p.drained)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if url, ok := strings.CutPrefix(sc.Text(), "node-process "); ok {
				once.Do(func() { urls <- url })
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() {
		stdin.Close()
		p.cmd.Process.Kill() // SIGKILL ends a stopped process too
		<-p.drained
		p.cmd.Wait()
	})
	select {
	case p.url = <-urls:
	case <-p.drained:
		t.Fatalf("the node process %s ended before serving:\n%s", spec.ID, p.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the node process %s did not serve within 30s:\n%s", spec.ID, p.stderr.String())
	}
	return p
}

// freeze stops the node's process with SIGSTOP, as a machine that hangs: it keeps its
// connections open and answers nothing.
func (p *nodeProcess) freeze(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
}

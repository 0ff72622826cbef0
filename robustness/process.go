package robustness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/faultproxy"
)

// EnvNodeProcess holds a process node's NodeConfig (JSON). The test binary re-executed with
// -test.run=^TestNodeProcess$ and this variable set runs the node instead of the suite.
const EnvNodeProcess = "REDISYNC_ROBUST_NODE"

// RunNodeProcess is the body of a process node: it runs the node described by cfgJSON,
// writes its history on out as JSON lines, and obeys the commands it reads from in (stop,
// converge, close). It returns when told to close or when in ends.
func RunNodeProcess(cfgJSON string, in io.Reader, out io.Writer, log *slog.Logger) error {
	var cfg NodeConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		return fmt.Errorf("robustness: bad %s: %w", EnvNodeProcess, err)
	}
	var mu sync.Mutex
	emit := func(l Line) {
		b, err := json.Marshal(l)
		if err != nil {
			panic(err)
		}
		b = append(b, '\n')
		mu.Lock()
		defer mu.Unlock()
		_, _ = out.Write(b) // one write per line: a SIGKILL truncates at most the last one
	}
	cmds := make(chan command)
	inDone := make(chan struct{})
	go func() {
		defer close(inDone)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			var c command
			if json.Unmarshal(sc.Bytes(), &c) == nil {
				cmds <- c
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-inDone:
			cancel() // the harness is gone: stop connecting
		case <-ctx.Done():
		}
	}()
	n, err := startNode(ctx, cfg, emit, log)
	if err != nil {
		return err
	}
	defer n.Close()
	for {
		select {
		case <-inDone:
			return nil
		case c := <-cmds:
			switch c.Cmd {
			case "stop":
				n.StopWork()
				emit(Line{T: LineStopped, Node: cfg.Name, Inc: cfg.Inc, At: time.Now().UnixNano()})
			case "converge":
				cctx, ccancel := context.WithTimeout(ctx, time.Duration(c.Timeout))
				f := n.Converge(cctx, c.Targets)
				ccancel()
				emit(Line{T: LineFinal, Node: cfg.Name, Inc: cfg.Inc, At: time.Now().UnixNano(), Final: f})
			case "close":
				return nil
			}
		}
	}
}

// procNode is the harness's side of a node that runs as a child process.
type procNode struct {
	name  string
	index int
	proxy *faultproxy.Proxy
	base  NodeConfig
	hist  *history
	dir   string // where each incarnation's stderr goes

	inc     int
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	readerW sync.WaitGroup
	exited  chan struct{} // closed when cmd has been waited for
	exitErr error

	mu       sync.Mutex // guards the fields below
	watchPos channel.Position
	subPos   channel.Position
	stopped  chan struct{}
	final    chan *Final
	running  bool
	gateway  string // the address of the running incarnation's gateway; empty when none
}

// start launches a new incarnation that resumes the watch and the subscription after the
// last positions this harness received.
func (p *procNode) start() error {
	p.mu.Lock()
	p.inc++
	cfg := p.base
	cfg.Inc = p.inc
	cfg.WatchFrom, cfg.SubFrom = p.watchPos, p.subPos
	p.stopped, p.final = make(chan struct{}, 1), make(chan *Final, 1)
	p.gateway = ""
	p.mu.Unlock()
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	stderr, err := os.Create(filepath.Join(p.dir, fmt.Sprintf("%s.%d.stderr", p.name, cfg.Inc)))
	if err != nil {
		return err
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNodeProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), EnvNodeProcess+"="+string(b))
	cmd.Stderr = stderr
	cmd.SysProcAttr = sysProcAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		stderr.Close()
		return err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		stderr.Close()
		return err
	}
	if err := cmd.Start(); err != nil {
		stderr.Close()
		return fmt.Errorf("start node process %s: %w", p.name, err)
	}
	stderr.Close()
	p.cmd, p.stdin, p.exited = cmd, stdin, make(chan struct{})
	p.mu.Lock()
	p.running = true
	p.mu.Unlock()
	p.readerW.Add(1)
	go p.read(stdout)
	go func() {
		p.readerW.Wait() // Wait closes stdout: read it to the end first
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	return nil
}

// read parses the child's history. A line cut short by a SIGKILL is dropped.
func (p *procNode) read(r io.Reader) {
	defer p.readerW.Done()
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 && b[0] == '{' && b[len(b)-1] == '\n' {
			if l, perr := parseLine(b); perr == nil {
				p.hist.add(l)
				p.track(l)
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *procNode) track(l Line) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case l.T == LineEvent && l.Kind == StreamWatch && l.Err == "":
		p.watchPos = channel.Position{Epoch: l.Epoch, Seq: l.Ver, Entry: l.Entry}
	case l.T == LineEvent && l.Kind == StreamSub:
		p.subPos = channel.Position{Epoch: l.Epoch, Seq: l.Ver, Entry: l.Entry}
	case l.T == LineNote && l.Kind == NoteGateway:
		p.gateway = l.Val
	case l.T == LineStopped:
		p.stopped <- struct{}{}
	case l.T == LineFinal:
		p.final <- l.Final
	}
}

// kill SIGKILLs the child and waits until its history is read to the end.
func (p *procNode) kill() {
	p.mu.Lock()
	p.running, p.gateway = false, ""
	p.mu.Unlock()
	_ = p.cmd.Process.Kill()
	<-p.exited
}

func (p *procNode) send(c command) error {
	b, _ := json.Marshal(c)
	_, err := p.stdin.Write(append(b, '\n'))
	return err
}

// stop stops the child's workload and waits until its ops have returned.
func (p *procNode) stop(timeout time.Duration) error {
	p.mu.Lock()
	stopped := p.stopped
	p.mu.Unlock()
	if err := p.send(command{Cmd: "stop"}); err != nil {
		return err
	}
	select {
	case <-stopped:
		return nil
	case <-p.exited:
		return fmt.Errorf("node process %s exited: %v", p.name, p.exitErr)
	case <-time.After(timeout):
		return fmt.Errorf("node process %s did not stop within %v", p.name, timeout)
	}
}

// converge asks the child to converge and returns its final state.
func (p *procNode) converge(tg Targets, timeout time.Duration) (*Final, error) {
	p.mu.Lock()
	final := p.final
	p.mu.Unlock()
	if err := p.send(command{Cmd: "converge", Targets: tg, Timeout: int64(timeout)}); err != nil {
		return nil, err
	}
	select {
	case f := <-final:
		return f, nil
	case <-p.exited:
		return nil, fmt.Errorf("node process %s exited: %v", p.name, p.exitErr)
	case <-time.After(timeout + 15*time.Second):
		return nil, fmt.Errorf("node process %s did not report within %v", p.name, timeout+15*time.Second)
	}
}

// close tells the child to close and waits for it to exit: an exit status other than 0 means
// its own goroutine-leak check (TestMain) or the race detector failed.
func (p *procNode) close(timeout time.Duration) error {
	_ = p.send(command{Cmd: "close"})
	_ = p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.kill()
		return errors.New("node process " + p.name + " did not exit after close; killed it")
	}
	if p.exitErr != nil {
		tail, _ := os.ReadFile(filepath.Join(p.dir, fmt.Sprintf("%s.%d.stderr", p.name, p.inc)))
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return fmt.Errorf("node process %s exited with %v; stderr ends with:\n%s", p.name, p.exitErr, tail)
	}
	return nil
}

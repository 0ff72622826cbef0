package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// DialTimeout bounds how long the proxy waits to connect to its target for
// each accepted connection; on failure the client connection is closed.
const DialTimeout = 5 * time.Second

// Proxy forwards TCP connections from its own loopback address to a target
// address, with faults switched on and off by the test.
type Proxy struct {
	target string
	ln     net.Listener
	ctx    context.Context // canceled by Close; ends pending dials
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the proxy started
	once   sync.Once      // runs Close's body once
	err    error          // the listener's close error, returned by Close

	mu      sync.Mutex         // guards the fields below and every link's closed and upstream
	links   map[*link]struct{} // open connections
	blocked bool
	resume  chan struct{} // non-nil while stalled; closed when the stall ends
	latency time.Duration
	closed  bool
}

// New returns a proxy listening on 127.0.0.1 at a free port and already
// accepting connections, each of which it forwards to target.
func New(target string) (*Proxy, error) {
	if target == "" {
		return nil, errors.New("faultproxy: empty target address")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		target: target,
		ln:     ln,
		ctx:    ctx,
		cancel: cancel,
		links:  make(map[*link]struct{}),
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr returns the address clients dial, "127.0.0.1:PORT".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target returns the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Cut closes every connection currently open, both the client side and the
// target side. New connections are still accepted.
func (p *Proxy) Cut() {
	p.mu.Lock()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.close()
	}
}

// SetBlocked partitions the link while b is true: open connections are cut,
// and new ones are accepted then closed at once. SetBlocked(false) heals it.
func (p *Proxy) SetBlocked(b bool) {
	p.mu.Lock()
	p.blocked = b
	p.mu.Unlock()
	if b {
		p.Cut()
	}
}

// SetStalled holds all bytes in both directions while b is true: nothing is
// forwarded and nothing is dropped, so the link looks up but dead. Bytes
// beyond one chunk per direction wait in the kernel's socket buffers, and
// then the sender blocks. SetStalled(false) forwards the held bytes in order.
func (p *Proxy) SetStalled(b bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case b && p.resume == nil:
		p.resume = make(chan struct{})
	case !b && p.resume != nil:
		close(p.resume)
		p.resume = nil
	}
}

// SetLatency sets the delay added to each forwarded chunk, in both
// directions; zero (the default) forwards at once.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = d
	p.mu.Unlock()
}

// Conns returns the number of connections currently open.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// Close stops accepting, cuts every connection and waits for every goroutine
// the proxy started. It is idempotent: later calls wait for the first one
// and return nil.
func (p *Proxy) Close() error {
	first := false
	p.once.Do(func() {
		first = true
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		if err := p.ln.Close(); err != nil {
			p.err = fmt.Errorf("faultproxy: close listener: %w", err)
		}
		p.cancel()
		p.Cut()
		p.wg.Wait()
	})
	if first {
		return p.err
	}
	return nil
}

// acceptLoop accepts connections until the listener is closed.
func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient failure such as too many open files: back off.
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p.mu.Lock()
		if p.closed || p.blocked {
			p.mu.Unlock()
			c.Close()
			continue
		}
		l := &link{proxy: p, client: c, done: make(chan struct{})}
		p.links[l] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go l.serve()
	}
}

// gate blocks a chunk received at recv until the latency has passed and no
// stall is on; it returns false if l is closed meanwhile.
func (p *Proxy) gate(l *link, recv time.Time) bool {
	for {
		p.mu.Lock()
		wait := time.Until(recv.Add(p.latency))
		resume := p.resume
		p.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return false
			}
			continue // latency or stall may have changed while sleeping
		}
		if resume == nil {
			return true
		}
		select {
		case <-resume:
		case <-l.done:
			return false
		}
	}
}

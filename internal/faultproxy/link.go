package faultproxy

import (
	"net"
	"time"
)

// chunkSize is the largest chunk a copy goroutine reads and forwards at once.
const chunkSize = 32 << 10

// link is one proxied connection: the accepted client connection and the
// connection to the target, with one copy goroutine per direction.
type link struct {
	proxy  *Proxy
	client net.Conn
	done   chan struct{} // closed by close; wakes gated copies

	// Guarded by proxy.mu.
	upstream net.Conn // nil until the dial succeeds
	closed   bool
}

// serve dials the target, then copies target-to-client in a new goroutine
// and client-to-target in this one until either side ends.
func (l *link) serve() {
	p := l.proxy
	defer p.wg.Done()
	d := net.Dialer{Timeout: DialTimeout}
	up, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		l.close()
		return
	}
	p.mu.Lock()
	if l.closed { // cut while dialing
		p.mu.Unlock()
		up.Close()
		return
	}
	l.upstream = up
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		l.copy(l.client, up)
	}()
	l.copy(up, l.client)
}

// copy forwards chunks from src to dst through the proxy's gate until
// either side fails, then closes the whole link.
func (l *link) copy(dst, src net.Conn) {
	defer l.close()
	buf := make([]byte, chunkSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !l.proxy.gate(l, time.Now()) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// close closes both sides of the link and forgets it; it is idempotent.
func (l *link) close() {
	p := l.proxy
	p.mu.Lock()
	if l.closed {
		p.mu.Unlock()
		return
	}
	l.closed = true
	up := l.upstream
	delete(p.links, l)
	p.mu.Unlock()
	close(l.done)
	l.client.Close()
	if up != nil {
		up.Close()
	}
}

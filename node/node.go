package node

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/replmap"
)

// Node hosts replicas of maps and relays channels over one channel.Client, serves them over
// HTTP and SSE, exports metrics and keeps its record in the registry. It is safe for
// concurrent use; its life goes from New to Close.
type Node struct {
	cl      *channel.Client
	cfg     Config
	started time.Time
	maps    map[string]*hosted // by name; fixed after New
	chans   map[string]*relayed
	names   []string // of maps, sorted
	handler http.Handler
	met     *metrics

	ctx    context.Context // cancelled by Close: ends the heartbeat
	cancel context.CancelFunc
	wg     sync.WaitGroup // the heartbeat and the bootstrap timers

	streams    context.Context // cancelled by drain: ends every SSE stream
	endStreams context.CancelFunc
	streamMu   sync.Mutex     // guards streamsOff and the Adds of streamWG
	streamsOff bool           // Close has begun: no new stream starts
	streamWG   sync.WaitGroup // open SSE streams

	closeOnce sync.Once
	closed    chan struct{} // closed once Close has finished

	redisUp atomic.Bool // the last PING of the heartbeat was answered
	sent    ledger      // the entries of the positions the streams sent
}

// hosted is a map the node serves.
type hosted struct {
	name string
	m    *replmap.Map[[]byte]

	bootstrap atomic.Int64  // nanoseconds the first load took; 0 while loading
	writes    writeCounters // HTTP writes by outcome

	mu   sync.Mutex // guards the fields below, written by the heartbeat
	last sample
}

// sample is what the heartbeat last read of a map.
type sample struct {
	at     time.Time
	st     replmap.Status
	ok     bool    // st was read
	rate   float64 // writes per second over the last heartbeat
	match  *bool   // the replica's digest equalled Redis's at the same seq, when last compared
	warned bool    // a mismatch was logged
}

type writeCounters struct {
	ok, conflict, failed atomic.Uint64
}

// relayed is a channel the node relays.
type relayed struct {
	name string

	mu   sync.Mutex // guards the fields below, written by the heartbeat
	head channel.Position
	at   time.Time
	rate float64
	ok   bool
}

// New opens a replica of every map of cfg on cl (they load in the background: requests for a
// map answer 503 until it is ready), registers the node and starts its heartbeat. cl stays
// owned by the caller and must outlive the Node.
func New(cl *channel.Client, cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	streams, endStreams := context.WithCancel(ctx)
	n := &Node{
		cl: cl, cfg: cfg, started: time.Now(),
		maps: make(map[string]*hosted), chans: make(map[string]*relayed),
		ctx: ctx, cancel: cancel, streams: streams, endStreams: endStreams,
		closed: make(chan struct{}),
	}
	for _, name := range cfg.Channels {
		if err := channel.ValidateName(name); err != nil {
			cancel()
			return nil, err
		}
		n.chans[name] = &relayed{name: name}
	}
	for _, name := range cfg.Maps {
		m, err := replmap.Open(cl, name, replmap.Config[[]byte]{
			Codec:         replmap.Bytes{},
			MaxKeyBytes:   cfg.MaxKeyBytes,
			MaxValueBytes: cfg.MaxBodyBytes,
			Logger:        cfg.Logger,
		})
		if err != nil {
			for _, h := range n.maps {
				h.m.Close()
			}
			cancel()
			return nil, err
		}
		n.maps[name] = &hosted{name: name, m: m}
		n.names = append(n.names, name)
	}
	sort.Strings(n.names)
	for _, h := range n.maps {
		n.goFunc(func() {
			if h.m.WaitReady(ctx) == nil {
				h.bootstrap.Store(max(int64(time.Since(n.started)), 1))
			}
		})
	}
	n.met = newMetrics(n)
	n.handler = n.routes()
	n.goFunc(n.heartbeat)
	return n, nil
}

// ID returns the node's id in the registry.
func (n *Node) ID() string { return n.cfg.ID }

// Config returns the node's configuration, defaults applied.
func (n *Node) Config() Config { return n.cfg }

// Handler returns the node's HTTP handler: the API, SSE streams, /metrics, /healthz, /readyz
// and the dashboard.
func (n *Node) Handler() http.Handler { return n.handler }

// Ready reports whether every map's replica is ready.
func (n *Node) Ready() bool {
	for _, h := range n.maps {
		if !h.m.Ready() {
			return false
		}
	}
	return true
}

// WaitReady waits until every map's replica is ready, or ctx ends.
func (n *Node) WaitReady(ctx context.Context) error {
	for _, h := range n.maps {
		if err := h.m.WaitReady(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) goFunc(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// Serve serves the node's handler on ln until ctx ends, then shuts down in this order: it
// stops accepting connections and ends every SSE stream at once (after the event being
// written), waits up to DefaultShutdownTimeout for the other requests in flight, and
// returns. Call Close after it to deregister the node and close its maps. Serve returns nil
// after a shutdown, or the error that stopped it serving.
func (n *Node) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           n.handler,
		ReadHeaderTimeout: n.cfg.HeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	srv.RegisterOnShutdown(n.drain)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		n.drain()
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), DefaultShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close() // requests that outlived the grace period are cut
	}
	<-errc
	return err
}

// drain ends every SSE stream and makes new ones end at once.
func (n *Node) drain() { n.endStreams() }

// startStream counts an SSE stream that begins; it reports false once Close has begun. The
// stream calls n.streamWG.Done when it ends.
func (n *Node) startStream() bool {
	n.streamMu.Lock()
	defer n.streamMu.Unlock()
	if n.streamsOff {
		return false
	}
	n.streamWG.Add(1)
	return true
}

// Close ends every SSE stream, stops the heartbeat, removes the node's record from the
// registry, closes its replicas and waits for every goroutine it started. It is idempotent;
// the channel client stays open.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.streamMu.Lock()
		n.streamsOff = true
		n.streamMu.Unlock()
		n.drain()
		n.streamWG.Wait()
		n.cancel()
		n.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := n.deregister(ctx); err != nil {
			n.cfg.Logger.Warn("redisync: could not remove the node from the registry; it expires by itself", "node", n.cfg.ID, "ttl", n.cfg.TTL, "err", err)
		}
		cancel()
		for _, h := range n.maps {
			h.m.Close()
		}
		close(n.closed)
	})
	<-n.closed
	return nil
}

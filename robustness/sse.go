package robustness

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/wire"
	gwnode "github.com/redisync/redisync/node"
)

// The SSE part of a run: some nodes serve the HTTP gateway (node.New over the node's own
// channel client, so behind the node's proxy and its faults; in a node process it dies with
// every crash and comes back on another port), and the harness runs SSE clients that read
// text/event-stream over real HTTP, disconnect every so often and resume with Last-Event-ID
// set to the last id they received, from any gateway, across every fault.

// The gateway's first event is either an id alone (an event without data) or, since the
// gateway writes one, an event "ready" with the same position as its id and in its data; the
// client takes either for the stream's start. Comments (": keepalive", ": waiting for
// Redis") are skipped.

// NoteGateway is the Kind of the note a node writes when its gateway listens (Val: address).
const NoteGateway = "gateway"

// gateway is a node's HTTP gateway.
type gateway struct {
	n      *gwnode.Node
	addr   string
	cancel context.CancelFunc
	served chan struct{}
}

// startGateway serves a node.Node for the run's map and channel on a loopback port.
func startGateway(cl *channel.Client, cfg NodeConfig, log *slog.Logger) (*gateway, error) {
	nd, err := gwnode.New(cl, gwnode.Config{
		Maps: []string{cfg.Map}, Channels: []string{cfg.Chan},
		ID: fmt.Sprintf("%s-%d", cfg.Name, cfg.Inc), Logger: log,
		KeepAlive: time.Second, StreamTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		nd.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &gateway{n: nd, addr: ln.Addr().String(), cancel: cancel, served: make(chan struct{})}
	go func() {
		defer close(g.served)
		if err := nd.Serve(ctx, ln); err != nil {
			log.Warn("robustness: gateway stopped serving", "err", err)
		}
	}()
	return g, nil
}

// close shuts the server down (ending every stream), then closes the node.
func (g *gateway) close() {
	g.cancel()
	<-g.served
	g.n.Close()
}

// gatewayAddr is a gateway the SSE clients may use.
type gatewayAddr struct{ name, addr string }

// sseClient is one SSE client of the gateways: a stream resumed across connections.
type sseClient struct {
	name, kind, path string
	gateways         func() []gatewayAddr
	emit             func(Line)
	r                *rand.Rand
	hc               *http.Client

	mu       sync.Mutex       // guards the fields below
	lastID   string           // the last event ID: what Last-Event-ID carries on the next connection
	pos      channel.Position // the position of the last event (data or start), to wait for convergence
	known    bool
	conns    int
	held     chan struct{}      // when not nil, no connection until it is closed (release)
	cancelS  context.CancelFunc // ends the current connection
	sessDone chan struct{}      // closed when the current connection has ended
}

// hold ends the client's connection, waits until it has, and keeps the client disconnected
// until release: the harness holds clients across Redis restarts so that they resume across
// them, from an id of the history before.
func (s *sseClient) hold() {
	s.mu.Lock()
	if s.held == nil {
		s.held = make(chan struct{})
	}
	cancel, done := s.cancelS, s.sessDone
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// release lets a held client connect again.
func (s *sseClient) release() {
	s.mu.Lock()
	if s.held != nil {
		close(s.held)
		s.held = nil
	}
	s.mu.Unlock()
}

// begin registers a connection about to start, or reports false while the client is held.
func (s *sseClient) begin(cancel context.CancelFunc, done chan struct{}) (held chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held != nil {
		return s.held
	}
	s.cancelS, s.sessDone = cancel, done
	return nil
}

func newSSEClient(name, kind, path string, seed uint64, gateways func() []gatewayAddr, emit func(Line)) *sseClient {
	return &sseClient{
		name: name, kind: kind, path: path, gateways: gateways, emit: emit,
		r: rand.New(rand.NewPCG(seed, 0x55e)),
		hc: &http.Client{Transport: &http.Transport{
			// A new connection for every stream, as a reconnecting EventSource opens, and
			// nothing idle left behind.
			DisableKeepAlives:     true,
			DialContext:           (&net.Dialer{Timeout: time.Second}).DialContext,
			ResponseHeaderTimeout: 5 * time.Second,
		}},
	}
}

// run connects, reads for a while, disconnects and resumes, until ctx ends.
func (s *sseClient) run(ctx context.Context) {
	for ctx.Err() == nil {
		gws := s.gateways()
		if len(gws) == 0 {
			wire.Sleep(ctx, 100*time.Millisecond)
			continue
		}
		g := gws[s.r.IntN(len(gws))]
		life := 200*time.Millisecond + time.Duration(s.r.Int64N(int64(1800*time.Millisecond)))
		s.session(ctx, g, life)
		wire.Sleep(ctx, time.Duration(s.r.Int64N(int64(150*time.Millisecond))))
	}
}

func (s *sseClient) line(l Line) {
	l.Node, l.Kind = s.name, s.kind
	if l.At == 0 {
		l.At = time.Now().UnixNano()
	}
	s.emit(l)
}

// session is one connection: it sends Last-Event-ID when it has one and reads events until
// life is over or the connection ends.
func (s *sseClient) session(ctx context.Context, g gatewayAddr, life time.Duration) {
	sctx, cancel := context.WithTimeout(ctx, life)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	if held := s.begin(cancel, done); held != nil {
		select {
		case <-held:
		case <-ctx.Done():
		}
		return
	}
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, "http://"+g.addr+s.path, nil)
	if err != nil {
		panic(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	s.mu.Lock()
	last := s.lastID
	s.conns++
	s.mu.Unlock()
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	s.line(Line{T: LineConnect, Key: g.name, Val: last})
	resp, err := s.hc.Do(req)
	if err != nil {
		return // refused (a node process down), cut, or timed out: try again
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		s.line(Line{T: LineNote, Key: g.name, Status: resp.Status, Err: strings.TrimSpace(string(b))})
		return
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		s.line(Line{T: LineEvent, Status: statusMalformed, Err: "Content-Type " + ct})
		return
	}
	br := bufio.NewReader(resp.Body)
	var id, typ string
	var data []string
	idSet := false
	for {
		text, err := br.ReadString('\n')
		if err != nil {
			return // the partial event, if any, is not dispatched (as EventSource does)
		}
		text = strings.TrimSuffix(strings.TrimSuffix(text, "\n"), "\r")
		if text == "" {
			// Dispatch: the id is the last event ID from now on, with or without data.
			if idSet {
				s.mu.Lock()
				s.lastID = id
				s.mu.Unlock()
			}
			switch {
			case typ == "ready" && len(data) > 0:
				s.ready(id, strings.Join(data, "\n"))
			case len(data) > 0:
				s.dispatch(id, typ, strings.Join(data, "\n"))
			case idSet:
				s.start(id) // an id alone: the start of the stream, as the gateway first wrote it
			}
			typ, data, idSet = "", nil, false
			continue
		}
		field, value, _ := strings.Cut(text, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			if !strings.ContainsRune(value, 0) {
				id, idSet = value, true
			}
		case "event":
			typ = value
		case "data":
			data = append(data, value)
		}
	}
}

// statusMalformed marks an SSE event the client could not make sense of (Err says why).
const statusMalformed = "malformed"

// ready records the gateway's first event, "ready", whose id and data give the position the
// stream starts after.
func (s *sseClient) ready(id, data string) {
	var r struct {
		Seq   uint64 `json:"seq"`
		Epoch string `json:"epoch"`
		Pos   string `json:"pos"`
	}
	if err := json.Unmarshal([]byte(data), &r); err != nil || r.Pos != id || (channel.Position{Epoch: r.Epoch, Seq: r.Seq}).String() != id {
		s.line(Line{T: LineEvent, SID: id, Status: statusMalformed, Err: fmt.Sprintf("ready event with id %q and data %q", id, clip(data))})
		return
	}
	s.start(id)
}

// start records the id a stream starts with: the position it starts after.
func (s *sseClient) start(id string) {
	s.line(Line{T: LineSSEID, SID: id})
	if p, err := channel.ParsePosition(id); err == nil {
		s.setPos(p)
	}
}

func (s *sseClient) setPos(p channel.Position) {
	s.mu.Lock()
	s.pos, s.known = p, true
	s.mu.Unlock()
}

// sseReset, sseMessage and sseWrite are the data of the gateway's events (node/sse.go, as
// the package doc of node describes them), decoded here from the wire.
type sseReset struct {
	Seq   uint64 `json:"seq"`
	Epoch string `json:"epoch"`
	Reset struct {
		Reason   string  `json:"reason"`
		From     uint64  `json:"from"`
		To       *uint64 `json:"to"` // null: no known end
		OldEpoch string  `json:"old_epoch"`
		NewEpoch string  `json:"new_epoch"`
	} `json:"reset"`
}

type sseMessage struct {
	Seq    uint64 `json:"seq"`
	Epoch  string `json:"epoch"`
	Data   string `json:"data"`
	Base64 bool   `json:"base64"`
}

type sseWrite struct {
	Seq     uint64 `json:"seq"`
	Epoch   string `json:"epoch"`
	Changes []struct {
		Op         string  `json:"op"`
		Key        string  `json:"key"`
		Value      *string `json:"value"`
		Version    uint64  `json:"version"`
		OldVersion uint64  `json:"old_version"`
	} `json:"changes"`
}

// dispatch records an event with data.
func (s *sseClient) dispatch(id, typ, data string) {
	l, err := decodeSSE(s.kind, typ, data)
	l.T, l.SID = LineEvent, id
	if err != nil {
		l.Status, l.Err = statusMalformed, err.Error()
		s.line(l)
		return
	}
	s.line(l)
	s.setPos(channel.Position{Epoch: l.Epoch, Seq: l.Ver})
}

// decodeSSE turns an event's type and data into a Line's fields.
func decodeSSE(kind, typ, data string) (Line, error) {
	var l Line
	switch {
	case typ == "reset":
		var r sseReset
		if err := json.Unmarshal([]byte(data), &r); err != nil {
			return l, fmt.Errorf("reset %q: %v", clip(data), err)
		}
		l.Ver, l.Epoch = r.Seq, r.Epoch
		l.Reset = &ResetInfo{Reason: r.Reset.Reason, From: r.Reset.From, Open: r.Reset.To == nil,
			OldEpoch: r.Reset.OldEpoch, NewEpoch: r.Reset.NewEpoch}
		if r.Reset.To != nil {
			l.Reset.To = *r.Reset.To
		}
	case typ != "":
		return l, fmt.Errorf("event type %q", typ)
	case kind == StreamSSEChan:
		var m sseMessage
		if err := json.Unmarshal([]byte(data), &m); err != nil {
			return l, fmt.Errorf("message %q: %v", clip(data), err)
		}
		d := []byte(m.Data)
		if m.Base64 {
			var err error
			if d, err = base64.StdEncoding.DecodeString(m.Data); err != nil {
				return l, fmt.Errorf("message %q: %v", clip(data), err)
			}
		}
		l.Ver, l.Epoch, l.Val = m.Seq, m.Epoch, payloadID(d)
	default:
		var w sseWrite
		if err := json.Unmarshal([]byte(data), &w); err != nil {
			return l, fmt.Errorf("write %q: %v", clip(data), err)
		}
		l.Ver, l.Epoch = w.Seq, w.Epoch
		if len(w.Changes) != 1 {
			return l, fmt.Errorf("write %s:%d holds %d changes; the workload writes one key at a time", w.Epoch, w.Seq, len(w.Changes))
		}
		c := w.Changes[0]
		l.Key, l.Del, l.Old = c.Key, c.Op == "del", c.OldVersion
		if c.Value != nil {
			l.Val = *c.Value
		}
		if c.Version != w.Seq && !l.Del {
			return l, fmt.Errorf("write %s:%d sets version %d", w.Epoch, w.Seq, c.Version)
		}
	}
	return l, nil
}

// at reports where the client stands.
func (s *sseClient) at() (channel.Position, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos, s.known
}

// waitFor waits until the client has received target, or ctx ends.
func (s *sseClient) waitFor(ctx context.Context, target channel.Position) error {
	for {
		if p, ok := s.at(); ok && p == target {
			return nil
		}
		if !wire.Sleep(ctx, 20*time.Millisecond) {
			p, _ := s.at()
			return errors.New(s.name + " at " + p.String() + ", target " + target.String())
		}
	}
}

func (s *sseClient) close() { s.hc.CloseIdleConnections() }

package channel

import (
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/internal/wire"
)

// hub owns the Client's pub/sub connections: one connection for plain pub/sub, or with
// Config.Sharded one sharded subscription per channel, which rueidis keeps on a connection to
// the channel's shard (hub_sharded.go). It subscribes to the pub/sub channel of every channel
// that has a local subscriber, decodes each envelope once and offers it to those subscribers
// without ever blocking the connection's reader. When a connection is lost it reconnects,
// resubscribes, and asks the subscribers to catch up from the log, since pub/sub dropped
// whatever was published meanwhile.
type hub struct {
	c *Client

	wireMu sync.Mutex // serializes SUBSCRIBE and UNSUBSCRIBE on the connection

	mu      sync.RWMutex                        // guards the fields below
	started bool                                // run was started
	conn    rueidis.DedicatedClient             // the live connection, nil while disconnected
	subs    map[string]map[*subscriber]struct{} // pub/sub channel name to local subscribers
	kick    chan struct{}                       // asks run to drop the connection and reconnect
	junkLog time.Time                           // last time junk was logged
	shards  map[string]*shardSub                // with Config.Sharded: the subscription of each pub/sub channel
	idling  bool                                // idleLoop was started
}

func newHub(c *Client) *hub {
	return &hub{c: c, subs: make(map[string]map[*subscriber]struct{}), kick: make(chan struct{}, 1),
		shards: make(map[string]*shardSub)}
}

// add registers s and makes sure its pub/sub channel is subscribed, starting the connection on
// first use. It returns false when the Client is closed.
func (h *hub) add(s *subscriber) bool {
	h.mu.Lock()
	set := h.subs[s.k.PubSub]
	if set == nil {
		set = make(map[*subscriber]struct{})
		h.subs[s.k.PubSub] = set
	}
	set[s] = struct{}{}
	if !h.idling {
		h.idling = true
		if !h.c.goFunc(h.idleLoop) {
			h.mu.Unlock()
			return false
		}
	}
	if h.c.cfg.Sharded {
		ok := h.addShardLocked(s.k.PubSub)
		h.mu.Unlock()
		return ok
	}
	start := !h.started
	h.started = true
	h.mu.Unlock()
	if start && !h.c.goFunc(h.run) {
		return false
	}
	h.sync(s.k.PubSub)
	return true
}

// remove unregisters s, unsubscribing its channel when s was the last local subscriber.
func (h *hub) remove(s *subscriber) {
	h.mu.Lock()
	set := h.subs[s.k.PubSub]
	delete(set, s)
	if len(set) == 0 {
		delete(h.subs, s.k.PubSub)
		if sh := h.shards[s.k.PubSub]; sh != nil {
			delete(h.shards, s.k.PubSub)
			sh.stop()
		}
	}
	h.mu.Unlock()
	if !h.c.cfg.Sharded {
		h.sync(s.k.PubSub)
	}
}

// sync makes the connection's subscription to name match whether name has local subscribers.
// A failure drops the connection: run then reconnects and subscribes everything afresh.
func (h *hub) sync(name string) {
	h.wireMu.Lock()
	defer h.wireMu.Unlock()
	h.mu.RLock()
	want := len(h.subs[name]) > 0
	conn := h.conn
	h.mu.RUnlock()
	if conn == nil {
		return
	}
	var cmd rueidis.Completed
	switch {
	case want && h.c.cfg.Sharded:
		cmd = conn.B().Ssubscribe().Channel(name).Build()
	case want:
		cmd = conn.B().Subscribe().Channel(name).Build()
	case h.c.cfg.Sharded:
		cmd = conn.B().Sunsubscribe().Channel(name).Build()
	default:
		cmd = conn.B().Unsubscribe().Channel(name).Build()
	}
	if err := conn.Do(h.c.ctx, cmd).Error(); err != nil && h.c.ctx.Err() == nil {
		h.c.cfg.Logger.Warn("redisync: pub/sub subscription change failed; reconnecting", "channel", name, "err", err)
		h.reconnect()
	}
}

// reconnect asks run to drop the connection and make a new one (with Config.Sharded, every
// sharded subscription to subscribe again).
func (h *hub) reconnect() {
	if h.c.cfg.Sharded {
		h.mu.RLock()
		for _, sh := range h.shards {
			sh.restart()
		}
		h.mu.RUnlock()
		return
	}
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// run keeps one pub/sub connection up until the Client closes.
func (h *hub) run() {
	ctx := h.c.ctx
	for attempt, connected := 0, false; ctx.Err() == nil; {
		conn, _ := h.c.rc.Dedicate()
		lost := conn.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: h.onMessage})
		err := h.subscribeAll(conn)
		if err != nil {
			conn.Close()
			if ctx.Err() == nil {
				h.c.cfg.Logger.Warn("redisync: pub/sub connection failed; retrying", "addr", h.c.addr(), "err", err)
			}
			wire.SleepBackoff(ctx, attempt+4)
			attempt++
			continue
		}
		attempt = 0
		if connected {
			h.c.stats.reconnects.Add(1)
		}
		connected = true
		h.resyncAll()
		select {
		case err = <-lost:
		case <-h.kick:
		case <-ctx.Done():
		}
		h.mu.Lock()
		h.conn = nil
		h.mu.Unlock()
		conn.Close()
		if ctx.Err() == nil {
			h.c.cfg.Logger.Warn("redisync: pub/sub connection lost; reconnecting", "addr", h.c.addr(), "err", err)
		}
	}
}

// subscribeAll makes conn the live connection with every wanted channel subscribed.
func (h *hub) subscribeAll(conn rueidis.DedicatedClient) error {
	h.wireMu.Lock()
	defer h.wireMu.Unlock()
	// PING alone first: a connection that could not be made fails it with the real cause. Sent
	// together with SUBSCRIBE, such a connection (which never completed its handshake, so knows
	// no protocol version) would fail both with rueidis's misleading "RESP2" error.
	if err := conn.Do(h.c.ctx, conn.B().Ping().Build()).Error(); err != nil {
		return err
	}
	h.mu.RLock()
	cmds := make(rueidis.Commands, 0, len(h.subs))
	for name := range h.subs {
		if h.c.cfg.Sharded {
			cmds = append(cmds, conn.B().Ssubscribe().Channel(name).Build())
		} else {
			cmds = append(cmds, conn.B().Subscribe().Channel(name).Build())
		}
	}
	h.mu.RUnlock()
	if len(cmds) > 0 {
		for _, r := range conn.DoMulti(h.c.ctx, cmds...) {
			if err := r.Error(); err != nil {
				return err
			}
		}
	}
	h.mu.Lock()
	h.conn = conn
	h.mu.Unlock()
	return nil
}

// resyncAll asks every subscriber to catch up from the log.
func (h *hub) resyncAll() {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, set := range h.subs {
		for s := range set {
			s.askResync()
		}
	}
}

// onMessage runs on the connection's reader: it must not block.
func (h *hub) onMessage(m rueidis.PubSubMessage) {
	h.mu.RLock()
	set := h.subs[m.Channel]
	if len(set) == 0 {
		h.mu.RUnlock()
		return
	}
	var env *wire.Envelope
	var err error = wire.ErrJunk
	if len(m.Message) <= h.c.cfg.MaxEnvelopeBytes {
		env, err = wire.DecodeEnvelope(m.Message)
	}
	if err != nil {
		h.mu.RUnlock()
		h.junk(m)
		return
	}
	for s := range set {
		s.offer(env)
	}
	h.mu.RUnlock()
}

// junk counts a message that is not an envelope, logging at most one a second.
func (h *hub) junk(m rueidis.PubSubMessage) {
	h.c.stats.junk.Add(1)
	h.mu.Lock()
	now := time.Now()
	quiet := now.Sub(h.junkLog) < time.Second
	if !quiet {
		h.junkLog = now
	}
	h.mu.Unlock()
	if !quiet {
		h.c.cfg.Logger.Warn("redisync: ignored a pub/sub message that is not a redisync envelope",
			"channel", m.Channel, "bytes", len(m.Message), "junk_total", h.c.stats.junk.Load())
	}
}

package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/redisconn"
)

// heartbeat samples the replicas, the relayed channels and Redis every Config.Heartbeat and
// writes the node's record to the registry, until Close.
func (n *Node) heartbeat() {
	t := time.NewTicker(n.cfg.Heartbeat)
	defer t.Stop()
	var hb beatState
	for {
		n.beat(&hb)
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// beatState is what the heartbeat remembers between beats; only its goroutine touches it.
type beatState struct {
	at        time.Time
	delivered uint64
	rtt       time.Duration
	failing   bool // the last beat failed (logged once until one succeeds)
}

// beat takes one sample and writes the record.
func (n *Node) beat(hb *beatState) {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.TTL)
	defer cancel()
	rc := n.cl.Redis()
	start := time.Now()
	err := redisconn.Ping(ctx, rc)
	now := time.Now()
	n.redisUp.Store(err == nil)
	if err == nil {
		hb.rtt = now.Sub(start)
		n.met.rtt.Observe(hb.rtt.Seconds())
		err = n.sampleAll(ctx, now)
	}
	if err == nil {
		err = n.register(ctx, n.record(now, hb))
	}
	if ctx.Err() != nil && n.ctx.Err() != nil {
		return // closing
	}
	if err != nil && !hb.failing {
		n.cfg.Logger.Warn("redisync: node heartbeat failed; retrying every heartbeat", "node", n.cfg.ID, "err", err)
	}
	hb.failing = err != nil
}

// sampleAll reads the status of every replica and the head of every relayed channel.
func (n *Node) sampleAll(ctx context.Context, now time.Time) error {
	for _, name := range n.names {
		h := n.maps[name]
		st, err := h.m.Status(ctx)
		if err != nil {
			return err
		}
		h.mu.Lock()
		prev := h.last
		s := sample{at: now, st: st, ok: true, match: prev.match, warned: prev.warned}
		if prev.ok && prev.st.Applied.Epoch == st.Applied.Epoch && st.Applied.Seq >= prev.st.Applied.Seq {
			s.rate = float64(st.Applied.Seq-prev.st.Applied.Seq) / now.Sub(prev.at).Seconds()
		}
		if st.Comparable() {
			match := st.Match()
			s.match = &match
			if !match && !prev.warned {
				n.cfg.Logger.Warn("redisync: map replica's digest differs from Redis's at the same seq", "map", name,
					"seq", st.Applied.Seq, "replica", st.Digest, "redis", st.RedisDigest)
			}
			s.warned = !match
		}
		h.last = s
		h.mu.Unlock()
	}
	for _, name := range n.channelNames() {
		c := n.chans[name]
		head, err := n.cl.Head(ctx, name)
		if err != nil {
			return err
		}
		c.mu.Lock()
		if c.ok && c.head.Epoch == head.Epoch && head.Seq >= c.head.Seq {
			c.rate = float64(head.Seq-c.head.Seq) / now.Sub(c.at).Seconds()
		} else {
			c.rate = 0
		}
		c.head, c.at, c.ok = head, now, true
		c.mu.Unlock()
	}
	return nil
}

// record builds the node's registry record from the last samples.
func (n *Node) record(now time.Time, hb *beatState) Record {
	s := n.cl.Stats()
	rec := Record{
		ID: n.cfg.ID, Addr: n.cfg.Addr, Version: n.cfg.Version,
		Started: n.started.UTC().Truncate(time.Millisecond), Heartbeat: now.UTC().Truncate(time.Millisecond),
		TTLMillis: n.cfg.TTL.Milliseconds(), HeartbeatMillis: n.cfg.Heartbeat.Milliseconds(),
		RedisRTTSeconds: hb.rtt.Seconds(), RedisUp: n.redisUp.Load(),
		Published: s.Published, Delivered: s.Delivered,
		Maps: []MapRecord{}, Channels: []ChannelRecord{},
	}
	for _, h := range n.maps {
		rec.Published += h.writes.ok.Load()
	}
	if !hb.at.IsZero() && s.Delivered >= hb.delivered {
		rec.DeliveredPerSecond = float64(s.Delivered-hb.delivered) / now.Sub(hb.at).Seconds()
	}
	hb.at, hb.delivered = now, s.Delivered
	for _, name := range n.names {
		h := n.maps[name]
		h.mu.Lock()
		last := h.last
		h.mu.Unlock()
		st := last.st
		rec.Maps = append(rec.Maps, MapRecord{
			Name: name, Ready: st.Ready, Epoch: st.Applied.Epoch, Seq: st.Applied.Seq, Digest: st.Digest.String(), Keys: st.Keys,
			Head: st.Head.Seq, Lag: st.Lag, LagSeconds: st.LagTime.Seconds(), RedisMatch: last.match, WritesPerSecond: last.rate,
		})
	}
	for _, name := range n.channelNames() {
		c := n.chans[name]
		c.mu.Lock()
		rec.Channels = append(rec.Channels, ChannelRecord{Name: name, Epoch: c.head.Epoch, Seq: c.head.Seq, MessagesPerSecond: c.rate})
		c.mu.Unlock()
	}
	return rec
}

// nodesView is the answer of GET /v1/nodes: the registry as ReadRegistry reads it, and
// this node's ID.
type nodesView struct {
	Self string `json:"self"`
	Registry
	// Local is set on the answer of ?local=true: this node alone, from its own memory (its
	// replicas now, its last sample of Redis), without reading Redis.
	Local bool `json:"local,omitempty"`
}

// registryReadTimeout bounds the registry read of GET /v1/nodes: the dashboard asks every
// second, painting this node's own state (?local=true) until it has an answer.
const registryReadTimeout = 2 * time.Second

// listNodes answers the registry: every node's record and state, the gone nodes, each map's
// agreement and the cluster's health. With ?local=true it answers at once this node's own
// state, without Redis.
func (n *Node) listNodes(w http.ResponseWriter, r *http.Request) {
	if s := r.URL.Query().Get("local"); s != "" {
		local, err := strconv.ParseBool(s)
		if err != nil {
			writeErrorf(w, http.StatusBadRequest, "local %q: want true or false", s)
			return
		}
		if local {
			writeJSON(w, http.StatusOK, n.localView(time.Now()))
			return
		}
	}
	timeout := min(n.cfg.WriteTimeout, registryReadTimeout)
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	reg, err := ReadRegistry(ctx, n.cl.Redis(), n.prefix(), ReadOptions{GoneAfter: n.cfg.GoneAfter})
	if err != nil {
		n.readFailure(w, r, err, "the registry could not be read", timeout)
		return
	}
	writeJSON(w, http.StatusOK, nodesView{Self: n.cfg.ID, Registry: reg})
}

// readFailure answers a read of Redis that failed (what says what could not be done): 503
// while Redis is unreachable or slower than timeout, 502 when it refused.
func (n *Node) readFailure(w http.ResponseWriter, r *http.Request, err error, what string, timeout time.Duration) {
	switch {
	case errors.Is(err, channel.ErrClosed), n.ctx.Err() != nil:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "the node is shutting down")
	case r.Context().Err() != nil:
		writeErrorf(w, http.StatusServiceUnavailable, "the request was cancelled: %s", what)
	case errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", "1")
		writeErrorf(w, http.StatusServiceUnavailable, "Redis unreachable: %s: no answer within %v", what, timeout)
	case unreachable(err):
		w.Header().Set("Retry-After", "1")
		writeErrorf(w, http.StatusServiceUnavailable, "Redis unreachable: %s: %v", what, err)
	default:
		writeErrorf(w, http.StatusBadGateway, "%s: Redis refused: %v", what, err)
	}
}

// localView is this node alone as it knows itself at now, without Redis: its replicas as
// they are, the head, lag and match of its last sample of Redis, the time of that sample as
// its heartbeat.
func (n *Node) localView(now time.Time) nodesView {
	rec := n.record(now, &beatState{})
	rec.RedisRTTSeconds = 0 // not measured here
	var last time.Time
	for i, name := range n.names {
		h := n.maps[name]
		h.mu.Lock()
		s := h.last
		h.mu.Unlock()
		if s.ok && s.at.After(last) {
			last = s.at
		}
		d, pos := h.m.Digest()
		m := &rec.Maps[i]
		m.Ready, m.Epoch, m.Seq, m.Digest, m.Keys = h.m.Ready(), pos.Epoch, pos.Seq, d.String(), h.m.Len()
		m.Lag, m.LagSeconds = 0, 0
		if m.Epoch == s.st.Head.Epoch && m.Head > m.Seq {
			m.Lag, m.LagSeconds = m.Head-m.Seq, s.st.LagTime.Seconds()
		}
	}
	for _, c := range n.chans {
		c.mu.Lock()
		if c.ok && c.at.After(last) {
			last = c.at
		}
		c.mu.Unlock()
	}
	if last.IsZero() {
		last = n.started
	}
	rec.Heartbeat = last.UTC().Truncate(time.Millisecond)
	ns := nodeStatus(rec, -1, now)
	ns.State = NodeLive // it answers
	for i := range ns.Maps {
		m := &ns.Maps[i]
		m.HeadNow, m.LagNow, m.LagSecondsNow = m.Head, m.Lag, m.LagSeconds
	}
	nodes := []NodeStatus{ns}
	maps := agree(nodes, nil)
	for i := range maps {
		if a := &maps[i]; a.State != StateDiverged && a.State != StateLoading {
			a.State, a.Detail = StateUnknown, fmt.Sprintf("this node's replica is at seq %d; the other replicas are not known without the registry", a.Seq)
		}
	}
	return nodesView{Self: n.cfg.ID, Local: true, Registry: Registry{
		Nodes: nodes, Maps: maps, Gone: []GoneNode{},
		Health: Health{Level: HealthUnknown, Summary: "the registry was not read", Problems: []string{}},
	}}
}

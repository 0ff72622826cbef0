package node

import (
	"context"
	"net/http"
	"time"
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
	err := rc.Do(ctx, rc.B().Ping().Build()).Error()
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
		TTLMillis:       n.cfg.TTL.Milliseconds(),
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

// nodesView is the answer of GET /v1/nodes.
type nodesView struct {
	Self  string         `json:"self"`
	Nodes []Record       `json:"nodes"`
	Maps  []MapAgreement `json:"maps"`
}

// listNodes answers the registry: every live node's record and each map's agreement.
func (n *Node) listNodes(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), n.cfg.WriteTimeout)
	defer cancel()
	recs, err := ListNodes(ctx, n.cl.Redis(), n.prefix())
	if err != nil {
		n.writeFailure(w, r, err, "read the registry")
		return
	}
	writeJSON(w, http.StatusOK, nodesView{Self: n.cfg.ID, Nodes: recs, Maps: Agreement(recs)})
}

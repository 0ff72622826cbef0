package channel

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/internal/wire"
)

// The idle check detects a lost tail: a message whose pub/sub copy was lost, with nothing
// after it to reveal the hole. A subscription that heard nothing for a while needs its
// channel's head. One goroutine per Client reads the heads of all such channels at once, every
// Config.IdleCheck: one command (heads.lua) on a single Redis, or one per channel pipelined in
// one round trip with sharded pub/sub (on a cluster the channels live on different shards). So
// the cost of idle subscriptions grows with the number of Clients, not of subscriptions.

// idleLoop runs the idle checks until the Client closes.
func (h *hub) idleLoop() {
	t := time.NewTicker(h.c.cfg.IdleCheck)
	defer t.Stop()
	for {
		select {
		case <-h.c.ctx.Done():
			return
		case <-t.C:
		}
		h.checkIdle()
	}
}

// checkIdle reads the heads of the channels of subscriptions that heard nothing for at least
// half of IdleCheck, and hands each of them its channel's head. A subscription is thus
// checked within 1.5 × IdleCheck of its last news.
func (h *hub) checkIdle() {
	due := time.Now().Add(-h.c.cfg.IdleCheck / 2).UnixNano()
	byMeta := make(map[string][]*subscriber)
	var metas []string
	h.mu.RLock()
	for _, set := range h.subs {
		for s := range set {
			if s.lastNews.Load() > due {
				continue
			}
			if byMeta[s.k.Meta] == nil {
				metas = append(metas, s.k.Meta)
			}
			byMeta[s.k.Meta] = append(byMeta[s.k.Meta], s)
		}
	}
	h.mu.RUnlock()
	if len(metas) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(h.c.ctx, h.c.cfg.IdleCheck)
	defer cancel()
	heads, err := h.c.readHeads(ctx, metas)
	if err != nil {
		if h.c.ctx.Err() == nil {
			h.c.cfg.Logger.Warn("redisync: idle check could not read the channels' heads; retrying", "addr", h.c.addr(), "err", err)
		}
		return
	}
	for i, meta := range metas {
		for _, s := range byMeta[meta] {
			select {
			case s.heads <- heads[i]:
			default: // the subscription has not taken the last one yet
			}
		}
	}
}

// readHeads reads the epoch, head and tip of the channels whose meta hashes are metas.
func (c *Client) readHeads(ctx context.Context, metas []string) ([]wire.Fetched, error) {
	var replies []rueidis.RedisResult
	if c.cfg.Sharded { // keys of different slots cannot share a script on a cluster
		execs := make([]rueidis.LuaExec, len(metas))
		for i, m := range metas {
			execs[i] = rueidis.LuaExec{Keys: []string{m}}
		}
		replies = wire.Heads.ExecMulti(ctx, c.rc, execs...)
	} else {
		replies = []rueidis.RedisResult{wire.Heads.Exec(ctx, c.rc, metas, nil)}
	}
	out := make([]wire.Fetched, 0, len(metas))
	for _, r := range replies {
		vs, err := r.ToArray()
		if err != nil {
			return nil, err
		}
		heads, err := wire.ParseHeads(vs)
		if err != nil {
			return nil, err
		}
		out = append(out, heads...)
	}
	if len(out) != len(metas) {
		return nil, fmt.Errorf("heads script returned %d heads for %d channels", len(out), len(metas))
	}
	return out, nil
}

package channel

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/internal/wire"
)

// shardSub keeps one sharded pub/sub subscription (SSUBSCRIBE) up. On Redis Cluster a sharded
// channel lives on the shard of its slot: rueidis's Receive picks that shard's connection,
// so a Client can follow channels of any slots, each on the right node. Receive returns when
// the subscription ends: the connection was lost, or Redis unsubscribed the client because
// the slot moved (SUNSUBSCRIBE) or failed over; the loop then subscribes again at once, on
// whichever node now owns the slot, and asks the subscribers to catch up from the log.
type shardSub struct {
	h    *hub
	name string // the pub/sub channel
	ctx  context.Context
	stop context.CancelFunc

	mu     sync.Mutex         // guards cancel
	cancel context.CancelFunc // ends the current Receive, for restart
}

// addShardLocked starts the sharded subscription of name unless it runs. h.mu is held.
func (h *hub) addShardLocked(name string) bool {
	if h.shards[name] != nil {
		return true
	}
	ctx, cancel := context.WithCancel(h.c.ctx)
	sh := &shardSub{h: h, name: name, ctx: ctx, stop: cancel}
	if !h.c.goFunc(sh.run) {
		cancel()
		return false
	}
	h.shards[name] = sh
	return true
}

// restart ends the current subscription so that run makes a new one.
func (sh *shardSub) restart() {
	sh.mu.Lock()
	if sh.cancel != nil {
		sh.cancel()
	}
	sh.mu.Unlock()
}

func (sh *shardSub) run() {
	h := sh.h
	var subscribed atomic.Bool // a subscription was confirmed before: a new one is a reconnect
	for attempt := 0; sh.ctx.Err() == nil; {
		ctx, cancel := context.WithCancel(sh.ctx)
		sh.mu.Lock()
		sh.cancel = cancel
		sh.mu.Unlock()
		var confirmed atomic.Bool // written by the connection's reader
		ctx = rueidis.WithOnSubscriptionHook(ctx, func(s rueidis.PubSubSubscription) {
			if s.Kind == "ssubscribe" && s.Channel == sh.name {
				// Subscribed: whatever was published before this point is read from the log.
				confirmed.Store(true)
				if subscribed.Swap(true) {
					h.c.stats.reconnects.Add(1)
				}
				h.resync(sh.name)
			}
		})
		err := h.c.rc.Receive(ctx, h.c.rc.B().Ssubscribe().Channel(sh.name).Build(), h.onMessage)
		cancel()
		if sh.ctx.Err() != nil {
			return
		}
		h.resync(sh.name) // pub/sub may have dropped messages until the next subscription
		if confirmed.Load() {
			attempt = 0
			if err != nil {
				h.c.cfg.Logger.Warn("redisync: sharded pub/sub subscription lost; subscribing again", "channel", sh.name, "err", err)
			} else {
				h.c.cfg.Logger.Info("redisync: sharded pub/sub subscription ended by Redis (slot moved?); subscribing again", "channel", sh.name)
			}
			continue
		}
		h.c.cfg.Logger.Warn("redisync: sharded pub/sub subscription failed; subscribers fall back to reading the log until it works",
			"channel", sh.name, "addr", h.c.addr(), "err", err)
		wire.SleepBackoff(sh.ctx, attempt+4)
		attempt++
	}
}

// resync asks every subscriber of pub/sub channel name to catch up from the log.
func (h *hub) resync(name string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs[name] {
		s.askResync()
	}
}

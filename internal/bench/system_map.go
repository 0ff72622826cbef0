package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/channel"
	"github.com/redisync/redisync/internal/bench/mapfill"
	"github.com/redisync/redisync/replmap"
)

// mapLatencyKeys is the number of distinct keys the map-latency scenario writes: message i
// sets mapfill.Key(i mod mapLatencyKeys).
const mapLatencyKeys = 10_000

// mapSystem writes to a replicated map (replmap) instead of publishing on a channel: one node
// writes with Config.NoWaitOnWrite, one Set per message (a batch is one atomic Write), the
// message being the value and its key derived from the message's index; every tally has a
// replica on a node of its own (a channel.Client and a Redis client) whose OnChange hands it
// each change. The writing node holds a replica too, as every node of a map does, but no tally
// listens to it.
type mapSystem struct{}

func (mapSystem) name() string { return "redisync" }

func (mapSystem) settle(r *Runner) time.Duration { return redisyncSystem{}.settle(r) }

type mapSession struct {
	pubsub   string
	writer   *replmap.Map[[]byte]
	replicas []*replmap.Map[[]byte]
	clients  []*channel.Client // the writer's first
	rcs      []rueidis.Client
}

func (mapSystem) open(ctx context.Context, r *Runner, name string, tallies []*tally) (_ session, err error) {
	s := &mapSession{pubsub: r.pubsubName(name)}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	node := func(onChange func(replmap.Change[[]byte])) (*replmap.Map[[]byte], error) {
		cl, err := r.openChannel(ctx, &s.rcs)
		if err != nil {
			return nil, err
		}
		s.clients = append(s.clients, cl)
		return replmap.Open(cl, name, replmap.Config[[]byte]{
			Codec: replmap.Bytes{}, NoWaitOnWrite: true, OnChange: onChange, Logger: r.cfg.Logger})
	}
	if s.writer, err = node(nil); err != nil {
		return nil, err
	}
	for _, t := range tallies {
		m, err := node(func(ch replmap.Change[[]byte]) {
			if ch.Reset != nil {
				t.reset(ch.Seq)
				return
			}
			deliver(t, ch.Value, ch.Version)
		})
		if err != nil {
			return nil, err
		}
		s.replicas = append(s.replicas, m)
	}
	// A replica that loaded its snapshot after the first write would hold that write without
	// an OnChange for it: every replica loads the empty map before anything is written.
	wctx, cancel := context.WithTimeout(ctx, warmUpTimeout)
	defer cancel()
	for _, m := range append(s.replicas, s.writer) {
		if err := m.WaitReady(wctx); err != nil {
			return nil, fmt.Errorf("waiting for the replicas to load the empty map: %w", err)
		}
	}
	return s, nil
}

// publish writes msgs: a Set of one message, or one atomic Write of a batch.
func (s *mapSession) publish(ctx context.Context, msgs [][]byte) error {
	ops := make([]replmap.Op[[]byte], len(msgs))
	for i, m := range msgs {
		_, index, _, _ := header(m)
		ops[i] = replmap.Op[[]byte]{Key: mapfill.Key(int(index % mapLatencyKeys)), Value: m}
	}
	_, err := s.writer.Write(ctx, ops...)
	return err
}

func (s *mapSession) pubsubChannel() string { return s.pubsub }

func (s *mapSession) stats() map[string]uint64 {
	stats := map[string]uint64{}
	if len(s.clients) > 1 {
		channelStats(stats, s.clients[1:])
	}
	for _, m := range s.replicas {
		ms := m.Stats()
		stats["changes"] += ms.Changes
		stats["resnapshots"] += ms.Resnapshots
		stats["bad_records"] += ms.BadRecords
	}
	return stats
}

func (s *mapSession) close() error {
	var errs []error
	for _, m := range append(s.replicas, s.writer) {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	for _, cl := range s.clients {
		cl.Close()
	}
	for _, rc := range s.rcs {
		rc.Close()
	}
	return errors.Join(errs...)
}

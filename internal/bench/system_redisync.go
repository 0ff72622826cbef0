package bench

import (
	"context"
	"errors"
	"time"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/channel"
)

// redisyncSystem publishes with channel.Client.Publish (PublishBatch for batches) and
// subscribes with channel.Client.Subscribe from the start of a fresh channel, every subscriber
// on a channel.Client and a Redis client of its own; with tapped, a tap between the two
// (the storm scenario holds back their pub/sub connections with it).
type redisyncSystem struct{ tapped bool }

func (redisyncSystem) name() string { return "redisync" }

// settle leaves time for three idle checks: a subscriber whose pub/sub copy of the tail was
// lost fetches it from the log after one.
func (redisyncSystem) settle(r *Runner) time.Duration {
	return r.cfg.Settle + 3*channel.DefaultIdleCheck
}

type redisyncSession struct {
	name    string
	pubsub  string
	pub     *channel.Client
	subs    []*channel.Client
	running []*channel.Subscription
	rcs     []rueidis.Client // every Redis client, the publisher's first
	taps    []*tap           // the subscribers' taps, when tapped
}

func (sys redisyncSystem) open(ctx context.Context, r *Runner, name string, tallies []*tally) (_ session, err error) {
	s := &redisyncSession{name: name, pubsub: r.pubsubName(name)}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.pub, err = r.openChannel(ctx, &s.rcs); err != nil {
		return nil, err
	}
	for _, t := range tallies {
		var cl *channel.Client
		if sys.tapped {
			var tp *tap
			cl, tp, err = r.openTapped(ctx, &s.rcs, r.cfg.Channel)
			s.taps = append(s.taps, tp)
		} else {
			cl, err = r.openChannel(ctx, &s.rcs)
		}
		if err != nil {
			return nil, err
		}
		s.subs = append(s.subs, cl)
		sub, err := cl.Subscribe(ctx, name, channel.After(channel.Position{}), func(_ context.Context, ev channel.Event) error {
			if ev.Reset != nil {
				t.reset(ev.Seq)
				return nil
			}
			deliver(t, ev.Data, ev.Seq)
			return nil
		})
		if err != nil {
			return nil, err
		}
		s.running = append(s.running, sub)
	}
	return s, nil
}

func (s *redisyncSession) publish(ctx context.Context, msgs [][]byte) error {
	var err error
	if len(msgs) == 1 {
		_, err = s.pub.Publish(ctx, s.name, msgs[0])
	} else {
		_, err = s.pub.PublishBatch(ctx, s.name, msgs)
	}
	return err
}

func (s *redisyncSession) pubsubChannel() string { return s.pubsub }

func (s *redisyncSession) stats() map[string]uint64 {
	stats := map[string]uint64{}
	if s.pub != nil {
		ps := s.pub.Stats()
		stats["published"] = ps.Published
		stats["publish_calls"] = ps.PublishCalls
		stats["publish_retries"] = ps.PublishRetries
	}
	channelStats(stats, s.subs)
	return stats
}

// channelStats adds the subscribing counters of clients to stats.
func channelStats(stats map[string]uint64, clients []*channel.Client) {
	for _, cl := range clients {
		ss := cl.Stats()
		stats["from_log"] += ss.FromLog
		stats["gaps_filled"] += ss.GapsFilled
		stats["tail_losses"] += ss.TailLosses
		stats["duplicates"] += ss.Duplicates
		stats["overflows"] += ss.Overflows
		stats["reconnects"] += ss.Reconnects
		stats["junk"] += ss.Junk
	}
}

func (s *redisyncSession) close() error {
	for _, tp := range s.taps {
		tp.release()
	}
	var errs []error
	for _, sub := range s.running {
		select {
		case <-sub.Done(): // it ended before we closed it: say why
			errs = append(errs, sub.Err())
		default:
		}
		sub.Close()
	}
	if s.pub != nil {
		s.pub.Close()
	}
	for _, cl := range s.subs {
		cl.Close()
	}
	for _, rc := range s.rcs {
		rc.Close()
	}
	return errors.Join(errs...)
}

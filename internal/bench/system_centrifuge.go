package bench

import (
	"context"
	"errors"
	"time"

	"github.com/centrifugal/centrifuge"

	"github.com/redisync/redisync/channel"
)

// Centrifuge's history for the centrifuge baseline: as long as a redisync channel's default
// log (channel.DefaultMaxLen entries), kept for centrifugeHistoryTTL after the last publish
// (Centrifuge keeps no history without a TTL).
const (
	centrifugeHistorySize = channel.DefaultMaxLen
	centrifugeHistoryTTL  = time.Hour
)

// centrifugeSystem is the Centrifuge baseline of the throughput-concurrent scenario: the Redis
// broker of github.com/centrifugal/centrifuge with history (Broker.Publish with HistorySize and
// HistoryTTL: one Lua script call per publication that appends it to a stream and publishes
// it), called from every publishing goroutine as a Centrifuge application would, through one
// broker. Every subscriber is a Node of its own with a RedisBroker and a RedisShard (so
// connections of its own) subscribed to the channel, whose BrokerEventHandler hands each
// publication to its tally. The brokers' Redis clients have Centrifuge's own rueidis options
// (NewRedisShard), not redisconn's; only the address is the bench's.
type centrifugeSystem struct{}

func (centrifugeSystem) name() string { return "centrifuge" }

func (centrifugeSystem) settle(r *Runner) time.Duration { return r.cfg.Settle }

type centrifugeSession struct {
	r       *Runner
	channel string // the Centrifuge channel
	pubsub  string // its Redis pub/sub channel
	prefix  string // Centrifuge's prefix of every key and pub/sub channel of the session
	pub     *centrifuge.RedisBroker
	brokers []*centrifuge.RedisBroker // the publisher's first
	shards  []*centrifuge.RedisShard
}

// centrifugeHandler hands the publications a subscriber's broker receives to its tally.
// Centrifuge calls it from one goroutine per channel.
type centrifugeHandler struct{ t *tally }

func (h centrifugeHandler) HandlePublication(_ string, pub *centrifuge.Publication, _ centrifuge.StreamPosition, _ bool, _ *centrifuge.Publication) error {
	if h.t != nil {
		deliver(h.t, pub.Data, 0)
	}
	return nil
}

func (centrifugeHandler) HandleJoin(string, *centrifuge.ClientInfo) error  { return nil }
func (centrifugeHandler) HandleLeave(string, *centrifuge.ClientInfo) error { return nil }

func (centrifugeSystem) open(ctx context.Context, r *Runner, name string, tallies []*tally) (_ session, err error) {
	s := &centrifugeSession{r: r, channel: name, prefix: r.prefix + ":centrifuge"}
	s.pubsub = s.prefix + ".client." + name
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.pub, err = s.broker(); err != nil {
		return nil, err
	}
	for _, t := range tallies {
		b, err := s.broker()
		if err != nil {
			return nil, err
		}
		if err := b.RegisterBrokerEventHandler(centrifugeHandler{t}); err != nil {
			return nil, err
		}
		if err := b.Subscribe(name); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// broker returns a new Node's RedisBroker on a RedisShard of its own.
func (s *centrifugeSession) broker() (*centrifuge.RedisBroker, error) {
	node, err := centrifuge.New(centrifuge.Config{Name: "redisync-bench"})
	if err != nil {
		return nil, err
	}
	shard, err := centrifuge.NewRedisShard(node, centrifuge.RedisShardConfig{Address: s.r.cfg.URL})
	if err != nil {
		return nil, err
	}
	s.shards = append(s.shards, shard)
	b, err := centrifuge.NewRedisBroker(node, centrifuge.RedisBrokerConfig{Prefix: s.prefix, Shards: []*centrifuge.RedisShard{shard}})
	if err != nil {
		return nil, err
	}
	s.brokers = append(s.brokers, b)
	return b, nil
}

// publish makes one Broker.Publish call per message: the broker has no batch call.
func (s *centrifugeSession) publish(_ context.Context, msgs [][]byte) error {
	for _, m := range msgs {
		if _, err := s.pub.Publish(s.channel, m, centrifuge.PublishOptions{HistorySize: centrifugeHistorySize, HistoryTTL: centrifugeHistoryTTL}); err != nil {
			return err
		}
	}
	return nil
}

func (s *centrifugeSession) pubsubChannel() string { return s.pubsub }

func (s *centrifugeSession) stats() map[string]uint64 { return nil }

// close closes every broker and shard, and deletes Centrifuge's keys (its history).
func (s *centrifugeSession) close() error {
	ctx := context.Background()
	var errs []error
	for _, b := range s.brokers {
		errs = append(errs, b.Close(ctx))
	}
	for _, sh := range s.shards {
		sh.Close()
	}
	errs = append(errs, s.r.deleteKeys(ctx, s.prefix+"*"))
	return errors.Join(errs...)
}

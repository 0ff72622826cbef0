package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// rawSystem is the baseline: plain PUBLISH (DoMulti of PUBLISH commands for a batch, one round
// trip) and SUBSCRIBE, as an application would use Redis pub/sub with rueidis. A subscriber
// whose connection drops subscribes again; whatever was published meanwhile is lost.
type rawSystem struct{}

func (rawSystem) name() string { return "raw" }

func (rawSystem) settle(r *Runner) time.Duration { return r.cfg.Settle }

type rawSession struct {
	channel    string
	pub        rueidis.Client
	subs       []rueidis.Client
	cancel     context.CancelFunc
	wg         sync.WaitGroup // the subscriber goroutines
	reconnects atomic.Uint64
}

func (rawSystem) open(ctx context.Context, r *Runner, name string, tallies []*tally) (_ session, err error) {
	sctx, cancel := context.WithCancel(context.Background())
	s := &rawSession{channel: r.rawName(name), cancel: cancel}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.pub, err = r.openRedis(ctx); err != nil {
		return nil, err
	}
	for _, t := range tallies {
		rc, err := r.openRedis(ctx)
		if err != nil {
			return nil, err
		}
		s.subs = append(s.subs, rc)
		s.wg.Add(1)
		go s.receive(sctx, rc, t)
	}
	return s, nil
}

// receive runs one subscriber until ctx ends. rueidis calls the handler on this goroutine.
func (s *rawSession) receive(ctx context.Context, rc rueidis.Client, t *tally) {
	defer s.wg.Done()
	for {
		_ = rc.Receive(ctx, rc.B().Subscribe().Channel(s.channel).Build(), func(m rueidis.PubSubMessage) {
			deliver(t, m.Message, 0)
		})
		if ctx.Err() != nil {
			return
		}
		s.reconnects.Add(1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (s *rawSession) publish(ctx context.Context, msgs [][]byte) error {
	if len(msgs) == 1 {
		return s.pub.Do(ctx, s.pub.B().Publish().Channel(s.channel).Message(string(msgs[0])).Build()).Error()
	}
	cmds := make(rueidis.Commands, len(msgs))
	for i, m := range msgs {
		cmds[i] = s.pub.B().Publish().Channel(s.channel).Message(string(m)).Build()
	}
	for _, res := range s.pub.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			return err
		}
	}
	return nil
}

func (s *rawSession) pubsubChannel() string { return s.channel }

func (s *rawSession) stats() map[string]uint64 {
	return map[string]uint64{"reconnects": s.reconnects.Load()}
}

func (s *rawSession) close() error {
	s.cancel()
	s.wg.Wait()
	for _, rc := range s.subs {
		rc.Close()
	}
	if s.pub != nil {
		s.pub.Close()
	}
	return nil
}

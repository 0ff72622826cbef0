package bench

import (
	"context"
	"fmt"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/channel"
)

// TargetCatchupSeconds is the target of the catchup scenario: a subscriber that missed
// DefaultCatchupMessages delivers them all within this many seconds.
const TargetCatchupSeconds = 1.0

// runCatchup publishes Config.CatchupMessages while no one subscribes, then starts a
// subscriber after seq 0 and times it from the Subscribe call to its last delivery. Raw
// pub/sub has no counterpart: what it publishes while no one listens is gone.
func runCatchup(ctx context.Context, r *Runner, res *Result) (err error) {
	n := r.cfg.CatchupMessages
	res.Params = Params{Size: r.cfg.Size, Subscribers: 1, Messages: n}
	name := res.Scenario + "-redisync"
	r.progress("%s: publishing %d messages with no subscriber…", res.Scenario, n)
	defer func() {
		if derr := r.deleteChannel(context.WithoutCancel(ctx), name); err == nil {
			err = derr
		}
	}()
	var rcs []rueidis.Client
	defer func() {
		for _, rc := range rcs {
			rc.Close()
		}
	}()
	pub, err := r.openChannel(ctx, &rcs)
	if err != nil {
		return err
	}
	defer pub.Close()
	batch := max(1, min(channel.DefaultMaxBatchMessages, channel.DefaultMaxBatchBytes/r.cfg.Size))
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = newPayload(r.cfg.Size)
	}
	for sent := 0; sent < n; {
		k := min(batch, n-sent)
		for j := range k {
			stamp(bufs[j], kindMeasured, uint64(sent+j), 0)
		}
		if _, err := pub.PublishBatch(ctx, name, bufs[:k]); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		sent += k
	}
	pub.Close()

	r.progress("%s: a subscriber catching up on %d messages…", res.Scenario, n)
	cl, err := r.openChannel(ctx, &rcs)
	if err != nil {
		return err
	}
	defer cl.Close()
	t := &tally{base: r.base}
	before, err := r.usage(ctx)
	if err != nil {
		return fmt.Errorf("INFO: %w", err)
	}
	stopProfile, err := r.startProfile(name)
	if err != nil {
		return err
	}
	start := r.now()
	sub, err := cl.Subscribe(ctx, name, channel.After(channel.Position{Seq: 0}), func(_ context.Context, ev channel.Event) error {
		if ev.Reset != nil {
			t.reset(ev.Seq)
		} else {
			deliver(t, ev.Data, ev.Seq)
		}
		return nil
	})
	if err != nil {
		stopProfile()
		return err
	}
	err = r.drain(ctx, []*tally{t}, int64(n), redisyncSystem{}.settle(r))
	if perr := stopProfile(); err == nil {
		err = perr
	}
	select {
	case <-sub.Done():
		if err == nil {
			err = fmt.Errorf("the subscriber ended: %w", sub.Err())
		}
	default:
	}
	sub.Close()
	if err != nil {
		return err
	}
	after, err := r.usage(ctx)
	if err != nil {
		return fmt.Errorf("INFO: %w", err)
	}
	st := cl.Stats()
	cl.Close()
	side := newSide("redisync", int64(n), start, start, []*tally{t}, after, before,
		map[string]uint64{"from_log": st.FromLog, "resets": st.Resets})
	side.PublishRate, side.PublishSeconds = 0, 0
	res.Sides = []Side{side}
	met := side.Seconds < TargetCatchupSeconds && side.Lossless()
	res.Rows = []Row{
		{Metric: "catch-up time", Unit: "s", Redisync: side.Seconds, Target: fmt.Sprintf("< %g s", TargetCatchupSeconds), Met: &met},
		{Metric: "catch-up rate", Unit: "msgs/s", Redisync: side.Throughput},
	}
	return nil
}

package bench

import (
	"context"
	"fmt"
)

// Targets of the throughput scenarios, as ratios of redisync's delivered rate to raw pub/sub's.
const (
	TargetConcurrent = 1.0 // group commit: one script call carries many concurrent publishes
	TargetBatch      = 0.9
	TargetSingle     = 0.8
)

// TargetCentrifuge is the target of the throughput-concurrent scenario against its second
// baseline: redisync's delivered rate is at least this many times Centrifuge's Redis broker
// with history (centrifugeSystem), the same goroutines publishing the same messages.
const TargetCentrifuge = 3.0

// BaselineCentrifuge names the second baseline of the throughput-concurrent scenario.
const BaselineCentrifuge = "Centrifuge, Redis broker with history"

// runThroughputConcurrent: Config.Publishers goroutines each publishing one message per call,
// through one client (rueidis pipelines the concurrent calls; redisync also groups them into
// shared script calls); then the same load through Centrifuge's Redis broker with history.
func runThroughputConcurrent(ctx context.Context, r *Runner, res *Result) error {
	if err := r.throughput(ctx, res, r.cfg.Publishers, 1, TargetConcurrent); err != nil {
		return err
	}
	rs := res.Sides[0]
	ld := load{name: res.Scenario, publishers: r.cfg.Publishers, batch: 1, duration: r.cfg.Duration}
	cf, err := r.measure(ctx, centrifugeSystem{}, ld)
	res.Sides = append(res.Sides, sides(cf)...)
	if err != nil {
		return err
	}
	row := compareRow("delivered", 0, "msgs/s", rs.Throughput, cf.Throughput).atLeast(TargetCentrifuge, rs)
	row.Baseline = BaselineCentrifuge
	row.Target = fmt.Sprintf("≥ %.2f× Centrifuge", TargetCentrifuge)
	res.Rows = append(res.Rows, row)
	return nil
}

// runThroughputBatch: one goroutine publishing Config.Batch messages per call: PublishBatch,
// against DoMulti of as many PUBLISH commands (one round trip).
func runThroughputBatch(ctx context.Context, r *Runner, res *Result) error {
	return r.throughput(ctx, res, 1, r.cfg.Batch, TargetBatch)
}

// runThroughputSingle: one goroutine, one message per call, each call waiting for its reply.
func runThroughputSingle(ctx context.Context, r *Runner, res *Result) error {
	return r.throughput(ctx, res, 1, 1, TargetSingle)
}

// throughput publishes as fast as publishers goroutines can for Config.Duration per side and
// compares the rates delivered to every subscriber.
func (r *Runner) throughput(ctx context.Context, res *Result, publishers, batch int, target float64) error {
	res.Params = Params{Size: r.cfg.Size, Subscribers: r.cfg.Subscribers, Publishers: publishers, Batch: batch,
		DurationSeconds: r.cfg.Duration.Seconds()}
	ld := load{name: res.Scenario, publishers: publishers, batch: batch, duration: r.cfg.Duration}
	rs, raw, err := r.compare(ctx, ld)
	res.Sides = sides(rs, raw)
	if err != nil {
		return err
	}
	res.Rows = []Row{compareRow("delivered", 0, "msgs/s", rs.Throughput, raw.Throughput).atLeast(target, rs)}
	return nil
}

// sides returns the sides that were measured.
func sides(ss ...Side) []Side {
	var out []Side
	for _, s := range ss {
		if s.System != "" {
			out = append(out, s)
		}
	}
	return out
}

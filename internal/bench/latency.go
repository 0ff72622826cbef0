package bench

import (
	"context"

	"github.com/redisync/redisync/internal/bench/mapfill"
)

// Target of the latency scenarios: redisync's p99 at TargetLatencyRate is at most this ratio of
// raw pub/sub's.
const (
	TargetLatencyP99  = 1.5
	TargetLatencyRate = 10_000
)

// runLatency publishes at each of Config.Rates messages/s for Config.Duration per side: a
// pacer hands each message, as it falls due, to a pool of Config.Publishers goroutines (so a
// slow call does not hold back the next message), which stamp it with the time of the publish
// call. Every subscriber records the time from that call to its delivery.
func runLatency(ctx context.Context, r *Runner, res *Result) error {
	return r.latency(ctx, res, r.cfg.Rates, redisyncSystem{}, r.cfg.Size, true)
}

// runLatencySweep is runLatency at each of Config.SweepRates, with no target: the points of
// the latency plot (PlotLatency).
func runLatencySweep(ctx context.Context, r *Runner, res *Result) error {
	return r.latency(ctx, res, r.cfg.SweepRates, redisyncSystem{}, r.cfg.Size, false)
}

// runMapLatency is runLatency for map writes: one node sets a key per message with
// replmap.Config.NoWaitOnWrite (the message, stamped with the time of the Set call, is the
// value), and each subscriber is a replica on a node of its own that records the time from
// that call to its OnChange. The raw side publishes messages of the key's and the value's
// bytes together.
func runMapLatency(ctx context.Context, r *Runner, res *Result) error {
	keyBytes := len(mapfill.Key(0))
	if err := r.latency(ctx, res, r.cfg.Rates, mapSystem{}, r.cfg.Size+keyBytes, true); err != nil {
		return err
	}
	res.Params.KeyBytes = keyBytes
	res.Params.Keys = mapLatencyKeys
	return nil
}

// latency measures sys and raw pub/sub side by side at each rate, raw messages being of
// rawSize bytes, and adds rows of p50, p99, max and delivered rate per rate; with target, the
// p99 at TargetLatencyRate gets the target.
func (r *Runner) latency(ctx context.Context, res *Result, rates []int, sys system, rawSize int, target bool) error {
	res.Params = Params{Size: r.cfg.Size, Subscribers: r.cfg.Subscribers, Publishers: r.cfg.Publishers,
		DurationSeconds: r.cfg.Duration.Seconds(), Rates: rates}
	for _, rate := range rates {
		ld := load{name: res.Scenario, publishers: r.cfg.Publishers, batch: 1, rate: rate, duration: r.cfg.Duration, latency: true}
		rs, err := r.measure(ctx, sys, ld)
		var raw Side
		if err == nil {
			ld.size = rawSize
			raw, err = r.measure(ctx, rawSystem{}, ld)
		}
		res.Sides = append(res.Sides, sides(rs, raw)...)
		if err != nil {
			return err
		}
		if rs.Latency == nil || raw.Latency == nil {
			continue // nothing published: a duration too short for the rate
		}
		p99 := compareRow("p99", rate, "us", rs.Latency.P99, raw.Latency.P99)
		if target && rate == TargetLatencyRate {
			p99 = p99.atMost(TargetLatencyP99, rs)
		}
		res.Rows = append(res.Rows,
			compareRow("p50", rate, "us", rs.Latency.P50, raw.Latency.P50),
			p99,
			compareRow("max", rate, "us", rs.Latency.Max, raw.Latency.Max),
			compareRow("delivered", rate, "msgs/s", rs.Throughput, raw.Throughput))
	}
	return nil
}

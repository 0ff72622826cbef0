package bench

import "context"

// Target of the latency scenario: redisync's p99 at TargetLatencyRate is at most this ratio of
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
	res.Params = Params{Size: r.cfg.Size, Subscribers: r.cfg.Subscribers, Publishers: r.cfg.Publishers,
		DurationSeconds: r.cfg.Duration.Seconds(), Rates: r.cfg.Rates}
	for _, rate := range r.cfg.Rates {
		ld := load{name: res.Scenario, publishers: r.cfg.Publishers, batch: 1, rate: rate, duration: r.cfg.Duration, latency: true}
		rs, raw, err := r.compare(ctx, ld)
		res.Sides = append(res.Sides, sides(rs, raw)...)
		if err != nil {
			return err
		}
		if rs.Latency == nil || raw.Latency == nil {
			continue // nothing published: a duration too short for the rate
		}
		p99 := compareRow("p99", rate, "us", rs.Latency.P99, raw.Latency.P99)
		if rate == TargetLatencyRate {
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

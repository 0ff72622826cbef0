package bench

import (
	"context"
	"fmt"
)

// TargetFanoutP99 is the target of the fanout scenario: redisync's p99 over every delivery
// to Config.Clients clients is at most this ratio of raw pub/sub's.
const TargetFanoutP99 = 1.5

// runFanout is runLatency at Config.FanoutRate with Config.Clients subscribers instead of
// Config.Subscribers, each a client with connections of its own, all in this process: p50,
// p99 and max over every delivery to every client, the rate delivered to all, and the CPU
// that Redis and this process used (INFO cpu and getrusage, before and after).
func runFanout(ctx context.Context, r *Runner, res *Result) error {
	rate, clients := r.cfg.FanoutRate, r.cfg.Clients
	res.Params = Params{Size: r.cfg.Size, Subscribers: clients, Publishers: r.cfg.Publishers,
		DurationSeconds: r.cfg.Duration.Seconds(), Rates: []int{rate}}
	ld := load{name: res.Scenario, publishers: r.cfg.Publishers, batch: 1, rate: rate, duration: r.cfg.Duration,
		latency: true, subscribers: clients}
	rs, raw, err := r.compare(ctx, ld)
	res.Sides = sides(rs, raw)
	if err != nil {
		return err
	}
	if rs.Latency == nil || raw.Latency == nil {
		return fmt.Errorf("nothing published: %v is too short for %d messages/s", r.cfg.Duration, rate)
	}
	cpu := func(s Side, seconds float64) float64 { return 100 * seconds / s.Seconds }
	res.Rows = []Row{
		compareRow("p50", rate, "us", rs.Latency.P50, raw.Latency.P50),
		compareRow("p99", rate, "us", rs.Latency.P99, raw.Latency.P99).atMost(TargetFanoutP99, rs),
		compareRow("max", rate, "us", rs.Latency.Max, raw.Latency.Max),
		compareRow("delivered", rate, "msgs/s", rs.Throughput, raw.Throughput),
		compareRow("Redis CPU", rate, "%", cpu(rs, rs.RedisCPUSeconds), cpu(raw, raw.RedisCPUSeconds)),
		compareRow("bench process CPU", rate, "%", cpu(rs, rs.ClientCPUSeconds), cpu(raw, raw.ClientCPUSeconds)),
	}
	return nil
}

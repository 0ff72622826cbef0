package bench

import (
	"context"
	"fmt"
	"strings"
)

// Scenario is one benchmark. It measures redisync and, where there is one, the raw pub/sub
// baseline side by side in the same run (same client options, payload and subscribers), and
// fills in a Result. Run them with Runner.Run.
type Scenario struct {
	Name    string
	Summary string
	run     func(ctx context.Context, r *Runner, res *Result) error
}

// Scenarios returns every scenario, in the order a full run takes them.
func Scenarios() []Scenario {
	return []Scenario{
		{Name: "latency", Summary: "propagation latency at steady publish rates, publish call to delivery on every subscriber", run: runLatency},
		{Name: "map-latency", Summary: "map write propagation at steady write rates, Set call (NoWaitOnWrite) to OnChange on every replica", run: runMapLatency},
		{Name: "throughput-concurrent", Summary: "many goroutines publishing single messages; messages/s delivered to every subscriber", run: runThroughputConcurrent},
		{Name: "throughput-batch", Summary: "one goroutine publishing batches in one call each; messages/s delivered to every subscriber", run: runThroughputBatch},
		{Name: "throughput-single", Summary: "one goroutine, one call per message; messages/s delivered to every subscriber", run: runThroughputSingle},
		{Name: "catchup", Summary: "time for a subscriber that missed messages to deliver them all from the log (raw pub/sub cannot)", run: runCatchup},
		{Name: "bootstrap", Summary: "time and live heap for a new node to load a large map while another node writes, against a plain HSCAN into a Go map", run: runBootstrap},
		{Name: "get", Summary: "Get on a warm replica, one goroutine and GOMAXPROCS goroutines, against a map lookup under a sync.RWMutex", run: runGet},
		{Name: "latency-sweep", Summary: "channel propagation latency against the publish rate, the points of the latency plot", run: runLatencySweep},
		{Name: "fanout", Summary: "many subscribing clients, each its own connection, at a steady rate: latency over every delivery, delivered rate, Redis CPU", run: runFanout},
		{Name: "storm", Summary: "many clients that lost their pub/sub connection at once catch up from the log: time until all are current, Redis at its busiest (raw pub/sub cannot)", run: runStorm},
		{Name: "idle", Summary: "idle subscriptions spread over clients: the commands per second Redis runs for them", run: runIdle},
	}
}

// Lookup returns the scenarios named, in the order given; no name, or "all", means every one.
func Lookup(names ...string) ([]Scenario, error) {
	all := Scenarios()
	var out []Scenario
	for _, n := range names {
		n = strings.TrimSpace(n)
		switch n {
		case "":
			continue
		case "all":
			out = append(out, all...)
			continue
		}
		found := false
		for _, s := range all {
			if s.Name == n {
				out, found = append(out, s), true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("bench: no scenario %q; the scenarios are %s", n, strings.Join(ScenarioNames(), ", "))
		}
	}
	if len(out) == 0 {
		return all, nil
	}
	return out, nil
}

// ScenarioNames returns the name of every scenario.
func ScenarioNames() []string {
	var names []string
	for _, s := range Scenarios() {
		names = append(names, s.Name)
	}
	return names
}

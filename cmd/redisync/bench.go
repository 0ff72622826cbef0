package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/redisync/redisync/internal/bench"
)

func newBenchCmd(g *globals) *cobra.Command {
	var (
		scenarios  string
		cfg        bench.Config
		smoke      bool
		asJSON     bool
		cpuProfile string
		plotPath   string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure redisync against raw Redis pub/sub, side by side in one run",
		Long: `Measure redisync channels and maps and, in the same run, a baseline without redisync:
raw Redis pub/sub with the same client options, payload and number of subscribers (each its own
Redis client, in this process), a plain HSCAN, a plain Go map; and print both figures, their
ratio and the project's target.

Scenarios (--scenario, a comma-separated list; all by default):
  latency                publish call to delivery on every subscriber, p50/p99/max, at steady
                         rates of 1,000 and 10,000 messages/s (target: p99 at 10,000/s at most
                         1.5 x raw)
  map-latency            the same for map writes: Set with NoWaitOnWrite on one node to OnChange
                         on each of 3 replicas, against raw PUBLISH of the key's and value's
                         bytes (target: p99 at 10,000/s at most 1.5 x raw)
  throughput-concurrent  16 goroutines publishing single messages; messages/s delivered to every
                         subscriber, with redisync losing nothing (target: at least 1.0 x raw
                         PUBLISH with rueidis auto-pipelining); then the same load through
                         Centrifuge's Redis broker with history (target: at least 3 x Centrifuge)
  throughput-batch       batches of 100 per call: PublishBatch against DoMulti of 100 PUBLISH
                         (target: at least 0.9 x raw)
  throughput-single      one goroutine, one call per message (target: at least 0.8 x raw)
  catchup                time for a subscriber that missed 100,000 messages to deliver them all
                         from the log (target: under 1 s); raw pub/sub has no counterpart
  bootstrap              a new node loading a map of --keys keys with 100-byte values while
                         another node writes 1,000/s: time and live heap per key, against a
                         plain HSCAN into a Go map (targets at 1,000,000 keys: under 3 s, at
                         most 2 x the raw key+value bytes + 64 per key); the loaded replica is
                         checked against Redis key by key
  get                    Map.Get on a warm replica, 1 and GOMAXPROCS goroutines, timed for
                         --benchtime, against a map lookup under a sync.RWMutex (target:
                         under 100 ns, 0 allocs)
  fanout                 --clients subscribing clients (200), each its own connections, at
                         --fanout-rate messages/s (1,000): p50/p99/max over every delivery,
                         delivered rate, Redis and bench CPU (target: p99 at most 1.5 x raw)
  storm                  --clients clients (200) cut off pub/sub at once (CLIENT KILL TYPE
                         pubsub) while --storm-messages (10,000) are published, then let back
                         at once: time until every client is current, Redis's CPU and commands/s
                         at their busiest (100 ms samples); raw pub/sub has no counterpart
  idle                   --idle-subscriptions idle subscriptions (1,000), a channel each, over
                         --idle-clients clients (100): Redis's commands/s over --idle-window
                         (5 s), against one command per subscription per IdleCheck, the old
                         design, computed (target: at most 1 command per client per IdleCheck)
  latency-sweep          channel latency at 1,000, 2,000, 5,000, 10,000 and 20,000 messages/s,
                         redisync and raw: the points of --plot

Each side of each measurement publishes for --duration. Every redisync delivery is checked:
no message missing, seqs contiguous, no reset; a redisync loss makes the command fail. Raw
pub/sub's losses are reported. Below each table, a line per side gives the CPU used by this
process and by Redis, and the commands Redis spent most time on (INFO commandstats).

Without --redis, a redis-server is started on a free loopback port with no persistence
(--save "" --appendonly no) and killed at the end; $REDIS_URL is ignored. With --redis URL,
that Redis is used, under a key prefix unique to the run, and the keys are deleted as each
measurement ends. The figures depend on the machine: run it where your application runs.

--json prints one JSON object per scenario (every figure of every side) instead of tables.
--plot FILE.png draws p50 and p99 against the rate for both systems from the latency-sweep
results of the run (or, without latency-sweep, from the latency results).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			list, err := bench.Lookup(strings.Split(scenarios, ",")...)
			if err != nil {
				return err
			}
			if smoke {
				given := cfg
				cfg = bench.Smoke(cfg)
				keep := func(flag string, dst *int, v int) {
					if cmd.Flags().Changed(flag) {
						*dst = v
					}
				}
				keep("keys", &cfg.BootstrapKeys, given.BootstrapKeys)
				keep("clients", &cfg.Clients, given.Clients)
				keep("fanout-rate", &cfg.FanoutRate, given.FanoutRate)
				keep("storm-messages", &cfg.StormMessages, given.StormMessages)
				keep("idle-clients", &cfg.IdleClients, given.IdleClients)
				keep("idle-subscriptions", &cfg.IdleSubscriptions, given.IdleSubscriptions)
				if cmd.Flags().Changed("benchtime") {
					cfg.BenchTime = given.BenchTime
				}
				if cmd.Flags().Changed("idle-window") {
					cfg.IdleWindow = given.IdleWindow
				}
			}
			cfg.Prefix = g.prefix + "-bench"
			cfg.CPUProfile = cpuProfile
			cfg.Logger = g.quietLogger(cmd.ErrOrStderr())
			cfg.Progress = cmd.ErrOrStderr()
			out := cmd.OutOrStdout()
			if err := cfg.Validate(); err != nil {
				return err
			}
			plotFrom := ""
			if plotPath != "" {
				for _, s := range list {
					if s.Name == "latency-sweep" || (s.Name == "latency" && plotFrom == "") {
						plotFrom = s.Name
					}
				}
				if plotFrom == "" {
					return errors.New("--plot needs the latency-sweep (or latency) scenario")
				}
			}

			cfg.URL = g.redisURL
			if cfg.URL == "" {
				srv, err := bench.StartServer(ctx)
				if err != nil {
					return err
				}
				defer srv.Close()
				cfg.URL = srv.URL()
				fmt.Fprintf(cmd.ErrOrStderr(), "Started redis-server on %s (no persistence).\n", srv.Addr())
			}
			r, err := bench.New(ctx, cfg)
			if err != nil {
				return err
			}
			defer r.Close()
			if !asJSON {
				m, c := r.Machine(), r.Config()
				fmt.Fprintf(out, "redisync bench: Redis %s, %s %s/%s, %d CPUs (GOMAXPROCS %d), %.1f GiB; %d-byte messages, %d subscribers, %v per side\n",
					m.RedisVersion, m.GoVersion, m.OS, m.Arch, m.CPUs, m.GOMAXPROCS, float64(m.MemoryBytes)/(1<<30), c.Size, c.Subscribers, c.Duration)
			}
			var problems []string
			enc := json.NewEncoder(out)
			for _, s := range list {
				start := time.Now()
				res, err := r.Run(ctx, s)
				if err != nil {
					return err
				}
				if asJSON {
					err = enc.Encode(res)
				} else {
					err = res.WriteText(out)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: done in %v\n", s.Name, time.Since(start).Round(time.Millisecond))
				problems = append(problems, res.Problems()...)
				if s.Name == plotFrom {
					if err := writePlot(plotPath, res); err != nil {
						return err
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "Plotted %s into %s.\n", s.Name, plotPath)
				}
			}
			if len(problems) > 0 {
				return errors.New("redisync broke its guarantees:\n  " + strings.Join(problems, "\n  "))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&scenarios, "scenario", "all", "comma-separated scenarios to run: "+strings.Join(bench.ScenarioNames(), ", ")+", or all")
	f.DurationVar(&cfg.Duration, "duration", bench.DefaultDuration, "how long each side of each measurement publishes")
	f.IntVar(&cfg.Size, "size", bench.DefaultSize, fmt.Sprintf("payload of every message, in bytes (at least %d)", bench.MinSize))
	f.IntVar(&cfg.Subscribers, "subscribers", bench.DefaultSubscribers, "subscribers receiving every message, each with its own Redis client")
	f.BoolVar(&smoke, "smoke", false, "a run of a few seconds with tiny measurements (overrides --duration, and the sizes such as --keys, --benchtime and --clients unless given), to check that the bench works (CI)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per scenario instead of tables")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of each side of each measurement to PREFIX-MEASUREMENT-SYSTEM.pprof")
	f.IntVar(&cfg.BootstrapKeys, "keys", bench.DefaultBootstrapKeys, "keys of the map the bootstrap scenario loads")
	f.DurationVar(&cfg.BenchTime, "benchtime", bench.DefaultBenchTime, "how long the get scenario reads in each of its measurements")
	f.StringVar(&plotPath, "plot", "", "draw the latency-sweep (or latency) results as a PNG into this file")
	f.IntVar(&cfg.Clients, "clients", bench.DefaultClients, "subscribing clients of the fanout and storm scenarios, each with its own Redis client")
	f.IntVar(&cfg.FanoutRate, "fanout-rate", bench.DefaultFanoutRate, "messages/s of the fanout scenario")
	f.IntVar(&cfg.StormMessages, "storm-messages", bench.DefaultStormMessages, "messages published while the storm scenario's clients are cut off")
	f.IntVar(&cfg.IdleClients, "idle-clients", bench.DefaultIdleClients, "clients of the idle scenario")
	f.IntVar(&cfg.IdleSubscriptions, "idle-subscriptions", bench.DefaultIdleSubs, "idle subscriptions of the idle scenario, spread over --idle-clients")
	f.DurationVar(&cfg.IdleWindow, "idle-window", bench.DefaultIdleWindow, "how long the idle scenario counts Redis's commands, per side")
	return cmd
}

// writePlot draws res's latencies into the PNG file path.
func writePlot(path string, res bench.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := bench.PlotLatency(f, res); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

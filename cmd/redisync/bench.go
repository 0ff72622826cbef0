package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/redisync/redisync/bench"
)

func newBenchCmd(g *globals) *cobra.Command {
	var (
		scenarios  string
		cfg        bench.Config
		smoke      bool
		asJSON     bool
		cpuProfile string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure redisync against raw Redis pub/sub, side by side in one run",
		Long: `Measure redisync channels and, in the same run, raw Redis pub/sub with the same client
options, payload and number of subscribers (each its own Redis client, in this process), and
print both figures, their ratio and the project's target.

Scenarios (--scenario, a comma-separated list; all by default):
  latency                publish call to delivery on every subscriber, p50/p99/max, at steady
                         rates of 1,000 and 10,000 messages/s (target: p99 at 10,000/s at most
                         1.5 x raw)
  throughput-concurrent  16 goroutines publishing single messages; messages/s delivered to every
                         subscriber, with redisync losing nothing (target: at least 1.0 x raw
                         PUBLISH with rueidis auto-pipelining)
  throughput-batch       batches of 100 per call: PublishBatch against DoMulti of 100 PUBLISH
                         (target: at least 0.6 x raw)
  throughput-single      one goroutine, one call per message (target: at least 0.8 x raw)
  catchup                time for a subscriber that missed 100,000 messages to deliver them all
                         from the log (target: under 1 s); raw pub/sub has no counterpart

Each side of each measurement publishes for --duration. Every redisync delivery is checked:
no message missing, seqs contiguous, no reset; a redisync loss makes the command fail. Raw
pub/sub's losses are reported. Below each table, a line per side gives the CPU used by this
process and by Redis, and the commands Redis spent most time on (INFO commandstats).

Without --redis, a redis-server is started on a free loopback port with no persistence
(--save "" --appendonly no) and killed at the end; $REDIS_URL is ignored. With --redis URL,
that Redis is used, under a key prefix unique to the run, and the keys are deleted as each
measurement ends. The figures depend on the machine: run it where your application runs.

--json prints one JSON object per scenario (every figure of every side) instead of tables.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			list, err := bench.Lookup(strings.Split(scenarios, ",")...)
			if err != nil {
				return err
			}
			if smoke {
				cfg = bench.Smoke(cfg)
			}
			cfg.Prefix = g.prefix + "-bench"
			cfg.CPUProfile = cpuProfile
			cfg.Logger = g.logger(cmd.ErrOrStderr())
			cfg.Progress = cmd.ErrOrStderr()
			out := cmd.OutOrStdout()
			if err := cfg.Validate(); err != nil {
				return err
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
				fmt.Fprintf(out, "redisync bench: Redis %s, %s %s/%s, %d CPUs (GOMAXPROCS %d); %d-byte messages, %d subscribers, %v per side\n",
					m.RedisVersion, m.GoVersion, m.OS, m.Arch, m.CPUs, m.GOMAXPROCS, c.Size, c.Subscribers, c.Duration)
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
	f.BoolVar(&smoke, "smoke", false, "a run of a few seconds with tiny measurements (overrides --duration), to check that the bench works (CI)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per scenario instead of tables")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of each side of each measurement to PREFIX-MEASUREMENT-SYSTEM.pprof")
	return cmd
}

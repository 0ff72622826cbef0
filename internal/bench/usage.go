package bench

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// usage is a reading of the CPU spent so far by this process and by Redis, and of Redis's
// per-command counters; the difference of two readings is what a measurement cost.
type usage struct {
	client   time.Duration // CPU time of this process: publishers and subscribers
	redis    time.Duration // CPU time of the Redis server's main process
	commands map[string]CommandStat
	clock    time.Duration // Redis's clock (server_time_usec), read by usageClocked only
}

// CommandStat is what Redis spent on one command during a measurement, from INFO
// commandstats. Commands run by scripts are counted too, and their time is also part of
// the script's (EVALSHA).
type CommandStat struct {
	Calls       int64   `json:"calls"`
	Usec        int64   `json:"usec"`
	UsecPerCall float64 `json:"usec_per_call"`
}

func (r *Runner) usage(ctx context.Context) (usage, error) {
	return r.readUsage(ctx, "cpu", "commandstats")
}

// usageClocked is usage with Redis's clock, for rates over intervals too short for the time a
// reply takes to arrive to be left out.
func (r *Runner) usageClocked(ctx context.Context) (usage, error) {
	return r.readUsage(ctx, "server", "cpu", "commandstats")
}

func (r *Runner) readUsage(ctx context.Context, sections ...string) (usage, error) {
	u := usage{client: processCPU(), commands: map[string]CommandStat{}}
	info, err := r.info(ctx, sections...)
	if err != nil {
		return u, err
	}
	if us, err := strconv.ParseInt(info["server_time_usec"], 10, 64); err == nil {
		u.clock = time.Duration(us) * time.Microsecond
	}
	for _, k := range []string{"used_cpu_sys", "used_cpu_user"} {
		f, _ := strconv.ParseFloat(info[k], 64)
		u.redis += time.Duration(f * float64(time.Second))
	}
	for k, v := range info {
		name, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok {
			continue
		}
		var c CommandStat
		for kv := range strings.SplitSeq(v, ",") {
			f, val, _ := strings.Cut(kv, "=")
			switch f {
			case "calls":
				c.Calls, _ = strconv.ParseInt(val, 10, 64)
			case "usec":
				c.Usec, _ = strconv.ParseInt(val, 10, 64)
			}
		}
		u.commands[name] = c
	}
	return u, nil
}

// since returns the cost from an earlier reading to u.
func (u usage) since(before usage) (client, redis time.Duration, commands map[string]CommandStat) {
	commands = map[string]CommandStat{}
	for name, c := range u.commands {
		b := before.commands[name]
		d := CommandStat{Calls: c.Calls - b.Calls, Usec: c.Usec - b.Usec}
		if d.Calls <= 0 {
			continue
		}
		d.UsecPerCall = float64(d.Usec) / float64(d.Calls)
		commands[name] = d
	}
	return u.client - before.client, u.redis - before.redis, commands
}

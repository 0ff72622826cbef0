package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/redis/rueidis"

	"github.com/redisync/redisync/internal/bench/mapfill"
	"github.com/redisync/redisync/replmap"
)

// TargetGetNanos is the target of the get scenario: a Get on a warm replica takes under this
// many nanoseconds and allocates nothing.
const TargetGetNanos = 100

// BaselineLockedMap is the Baseline of the get scenario.
const BaselineLockedMap = "map + RWMutex"

// getSampleKeys is the number of keys, drawn at random from the map, that the reads of the get
// scenario cycle over: few enough to stay in the CPU's caches, so that the figure is the cost
// of a Get rather than of memory; a power of two.
const getSampleKeys = 4096

// runGet writes a map of Config.GetKeys keys straight into Redis, loads a replica of it
// (String codec) and a plain map[string]string of the same entries, and times reads of both
// for Config.BenchTime each (timeLoop): Map.Get against a lookup under a sync.RWMutex's read
// lock, from one goroutine, then from GOMAXPROCS goroutines.
func runGet(ctx context.Context, r *Runner, res *Result) (err error) {
	n := r.cfg.GetKeys
	name := res.Scenario + "-redisync"
	res.Baseline = BaselineLockedMap
	res.Params = Params{Keys: n, KeyBytes: (keyBytesTotal(n) + n/2) / n, ValueBytes: BootstrapValueBytes,
		BenchTimeSeconds: r.cfg.BenchTime.Seconds()}
	defer func() {
		if derr := r.deleteChannel(context.WithoutCancel(ctx), name); err == nil {
			err = derr
		}
	}()
	r.progress("%s: loading a replica of %s keys…", res.Scenario, thousands(float64(n)))
	if err := mapfill.Fill(ctx, r.admin, mapfill.Options{Prefix: r.prefix, Name: name, Keys: n, ValueBytes: BootstrapValueBytes}); err != nil {
		return err
	}
	var rcs []rueidis.Client
	defer func() {
		for _, rc := range rcs {
			rc.Close()
		}
	}()
	cl, err := r.openChannel(ctx, &rcs)
	if err != nil {
		return err
	}
	defer cl.Close()
	m, err := replmap.Open(cl, name, replmap.Config[string]{Codec: replmap.String{}, Logger: r.cfg.Logger})
	if err != nil {
		return err
	}
	defer m.Close()
	wctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	if err := m.WaitReady(wctx); err != nil {
		return fmt.Errorf("waiting for the replica: %w", err)
	}

	plain := make(map[string]string, n)
	for k, e := range m.All() {
		plain[k] = e.Value
	}
	var mu sync.RWMutex // guards plain, as a map shared by goroutines must be
	rng := rand.New(rand.NewPCG(1, 2))
	sample := make([]string, getSampleKeys)
	for i := range sample {
		sample[i] = mapfill.Key(rng.IntN(n))
	}
	getRedisync := func(k string) bool {
		_, _, err := m.Get(k)
		return err == nil
	}
	getRaw := func(k string) bool {
		mu.RLock()
		_, ok := plain[k]
		mu.RUnlock()
		return ok
	}
	for _, procs := range slices.Compact([]int{1, runtime.GOMAXPROCS(0)}) {
		rs, err := r.benchGet(ctx, res.Scenario, "redisync", getRedisync, sample, procs)
		if err != nil {
			return err
		}
		raw, err := r.benchGet(ctx, res.Scenario, "raw", getRaw, sample, procs)
		if err != nil {
			return err
		}
		res.Sides = append(res.Sides, rs, raw)
		label := plural(procs, "goroutine")
		res.Rows = append(res.Rows,
			compareRow("Get, "+label, 0, "ns", rs.NsPerOp, raw.NsPerOp).below(TargetGetNanos, false, fmt.Sprintf("< %d ns", TargetGetNanos), rs),
			compareRow("allocs, "+label, 0, "allocs/op", float64(*rs.AllocsPerOp), float64(*raw.AllocsPerOp)).below(1, false, "0", rs))
	}
	return nil
}

// benchGet times get over keys, cycling through them, from procs goroutines for
// Config.BenchTime (timeLoop).
func (r *Runner) benchGet(ctx context.Context, scenario, system string, get func(string) bool, keys []string, procs int) (Side, error) {
	r.progress("%s: %s, %s, %v…", scenario, system, plural(procs, "goroutine"), r.cfg.BenchTime)
	stopProfile, err := r.startProfile(scenario + "-" + system + "-" + strconv.Itoa(procs))
	if err != nil {
		return Side{}, err
	}
	mask := len(keys) - 1
	var missing atomic.Int64
	res, err := timeLoop(ctx, r.cfg.BenchTime, procs, func(i int) {
		if !get(keys[i&mask]) {
			missing.Add(1)
		}
	})
	if perr := stopProfile(); err == nil {
		err = perr
	}
	switch {
	case err != nil:
		return Side{}, err
	case missing.Load() > 0:
		return Side{}, fmt.Errorf("%s: %d reads of keys the map holds found nothing", system, missing.Load())
	}
	allocs, bytes := res.allocsPerOp(), res.bytesPerOp()
	return Side{System: system, Goroutines: procs, Ops: res.Ops, NsPerOp: res.nsPerOp(),
		AllocsPerOp: &allocs, BytesPerOp: &bytes, Seconds: res.Elapsed.Seconds()}, nil
}

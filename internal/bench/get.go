package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
// (String codec) and a plain map[string]string of the same entries, and reads both with
// testing.Benchmark for Config.BenchTime each: Map.Get against a lookup under a sync.RWMutex's
// read lock, from one goroutine, then from GOMAXPROCS goroutines (b.RunParallel).
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
		rs, err := r.benchGet(res.Scenario, "redisync", getRedisync, sample, procs)
		if err != nil {
			return err
		}
		raw, err := r.benchGet(res.Scenario, "raw", getRaw, sample, procs)
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

// benchGet runs testing.Benchmark of get over keys, cycling through them, from procs
// goroutines (b.RunParallel when above 1).
func (r *Runner) benchGet(scenario, system string, get func(string) bool, keys []string, procs int) (Side, error) {
	r.progress("%s: %s, %s, %v…", scenario, system, plural(procs, "goroutine"), r.cfg.BenchTime)
	stopProfile, err := r.startProfile(scenario + "-" + system + "-" + strconv.Itoa(procs))
	if err != nil {
		return Side{}, err
	}
	mask := len(keys) - 1
	var missing atomic.Int64
	var res testing.BenchmarkResult
	err = withBenchTime(r.cfg.BenchTime, func() {
		res = testing.Benchmark(func(b *testing.B) {
			if procs == 1 {
				for i := range b.N {
					if !get(keys[i&mask]) {
						missing.Add(1)
					}
				}
				return
			}
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for i := int(next.Add(1)) * 1021; pb.Next(); i++ {
					if !get(keys[i&mask]) {
						missing.Add(1)
					}
				}
			})
		})
	})
	if perr := stopProfile(); err == nil {
		err = perr
	}
	switch {
	case err != nil:
		return Side{}, err
	case missing.Load() > 0:
		return Side{}, fmt.Errorf("%s: %d reads of keys the map holds found nothing", system, missing.Load())
	case res.N == 0:
		return Side{}, fmt.Errorf("%s: testing.Benchmark ran nothing", system)
	}
	allocs, bytes := res.AllocsPerOp(), res.AllocedBytesPerOp()
	return Side{System: system, Goroutines: procs, Ops: int64(res.N), NsPerOp: float64(res.T.Nanoseconds()) / float64(res.N),
		AllocsPerOp: &allocs, BytesPerOp: &bytes, Seconds: res.T.Seconds()}, nil
}

// benchTimeMu serializes changes of testing's benchtime flag.
var benchTimeMu sync.Mutex

// withBenchTime runs f with testing.Benchmark's -test.benchtime set to d, then restores it.
// testing.Init registers that flag in a program that is not a test; in a test it does nothing.
func withBenchTime(d time.Duration, f func()) error {
	benchTimeMu.Lock()
	defer benchTimeMu.Unlock()
	testing.Init()
	fl := flag.Lookup("test.benchtime")
	if fl == nil {
		return errors.New("bench: testing.Init registered no test.benchtime flag")
	}
	old := fl.Value.String()
	if err := fl.Value.Set(d.String()); err != nil {
		return fmt.Errorf("bench: bench time %v: %w", d, err)
	}
	defer fl.Value.Set(old)
	f()
	return nil
}

package bench

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// maxLoopOps bounds the operations of one timed loop, as testing.Benchmark bounds b.N.
const maxLoopOps = 1_000_000_000

// loopResult is what timeLoop measured.
type loopResult struct {
	Ops     int64         // operations run
	Elapsed time.Duration // wall time of the batches, without the bookkeeping between them
	Mallocs uint64        // heap objects allocated meanwhile (runtime.MemStats.Mallocs)
	Bytes   uint64        // heap bytes allocated meanwhile (runtime.MemStats.TotalAlloc)
}

// nsPerOp returns the wall time per operation: with several goroutines, the time the loop
// took divided by all their operations, as b.RunParallel reports it.
func (l loopResult) nsPerOp() float64 {
	return float64(l.Elapsed.Nanoseconds()) / float64(l.Ops)
}

// allocsPerOp returns the allocations per operation, rounded down as testing's AllocsPerOp
// rounds them, so that a few allocations of the loop itself among millions of operations
// count as none.
func (l loopResult) allocsPerOp() int64 { return int64(l.Mallocs / uint64(l.Ops)) }

// bytesPerOp returns the bytes allocated per operation, rounded down.
func (l loopResult) bytesPerOp() int64 { return int64(l.Bytes / uint64(l.Ops)) }

// timeLoop calls op with 0, 1, 2… from procs goroutines until d is spent, in batches: the
// first batch is one call, each next one is sized from the time per call so far to fill what
// is left of d, growing at most a hundredfold, as testing.Benchmark grows b.N. The goroutines
// of a batch take its calls in chunks from a shared counter, so that none idles while another
// has work left, and every index is passed exactly once. Allocations are the difference of
// runtime.ReadMemStats before the first batch (after a GC) and after the last one; they
// include any other goroutine's, so the process should be quiet meanwhile. timeLoop checks
// ctx between batches and returns its error once it is done.
func timeLoop(ctx context.Context, d time.Duration, procs int, op func(i int)) (loopResult, error) {
	var res loopResult
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for n := int64(1); ; {
		if err := ctx.Err(); err != nil {
			return loopResult{}, err
		}
		res.Elapsed += runBatch(res.Ops, n, procs, op)
		res.Ops += n
		if res.Elapsed >= d || res.Ops >= maxLoopOps {
			break
		}
		perOp := float64(max(res.Elapsed, 1)) / float64(res.Ops)
		next := int64(float64(d-res.Elapsed)/perOp*1.05) + 1
		n = min(next, 100*n, maxLoopOps-res.Ops)
	}
	runtime.ReadMemStats(&after)
	res.Mallocs = after.Mallocs - before.Mallocs
	res.Bytes = after.TotalAlloc - before.TotalAlloc
	return res, nil
}

// runBatch calls op with base to base+n-1 from procs goroutines (the calling one when procs
// is 1) and returns the time it took.
func runBatch(base, n int64, procs int, op func(i int)) time.Duration {
	if procs <= 1 {
		start := time.Now()
		for i := base; i < base+n; i++ {
			op(int(i))
		}
		return time.Since(start)
	}
	// A chunk is small enough to share out a batch evenly, large enough that the counter is
	// not what the goroutines contend on.
	chunk := min(max(n/int64(procs*100), 1), 10_000)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range procs {
		wg.Go(func() {
			for {
				from := next.Add(chunk) - chunk
				if from >= n {
					return
				}
				for i := base + from; i < base+min(from+chunk, n); i++ {
					op(int(i))
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

package bench

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// loopSink keeps the allocations of the allocating op alive past the compiler.
var loopSink atomic.Pointer[[64]byte]

func TestTimeLoop(t *testing.T) {
	const d = 30 * time.Millisecond
	for _, tc := range []struct {
		name     string
		procs    int
		allocate bool
	}{
		{name: "one goroutine", procs: 1},
		{name: "four goroutines", procs: 4},
		{name: "one goroutine allocating", procs: 1, allocate: true},
		{name: "four goroutines allocating", procs: 4, allocate: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls, sum, top atomic.Int64
			res, err := timeLoop(context.Background(), d, tc.procs, func(i int) {
				calls.Add(1)
				sum.Add(int64(i))
				for {
					old := top.Load()
					if int64(i) <= old || top.CompareAndSwap(old, int64(i)) {
						break
					}
				}
				if tc.allocate {
					loopSink.Store(new([64]byte))
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Ops < 2 || res.Elapsed < d {
				t.Fatalf("%d ops in %v, want at least 2 in %v", res.Ops, res.Elapsed, d)
			}
			// Every index from 0 to Ops-1 was passed exactly once.
			if n := res.Ops; calls.Load() != n || top.Load() != n-1 || sum.Load() != n*(n-1)/2 {
				t.Errorf("%d ops: %d calls, highest index %d, indexes summing to %d", n, calls.Load(), top.Load(), sum.Load())
			}
			if ns := res.nsPerOp(); ns <= 0 || ns > float64(res.Elapsed) {
				t.Errorf("%v ns/op", ns)
			}
			switch allocs := res.allocsPerOp(); {
			case tc.allocate && (allocs != 1 || res.bytesPerOp() < 64):
				t.Errorf("%d allocs/op, %d B/op; want 1 of at least 64 bytes", allocs, res.bytesPerOp())
			case !tc.allocate && allocs != 0:
				t.Errorf("%d allocs/op, want 0", allocs)
			}
		})
	}
}

func TestTimeLoopCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	_, err := timeLoop(ctx, time.Hour, 1, func(int) {
		if calls++; calls == 1000 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("timeLoop after cancel: %v, want %v", err, context.Canceled)
	}
}

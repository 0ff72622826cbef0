package bench

import (
	"math"
	"runtime/metrics"
)

// schedMetric is the Go runtime's histogram of the time goroutines spent runnable before
// running. The fanout scenario reads it around each side: with every client in this process,
// a process short of CPU would show as goroutines waiting to run, which would delay
// deliveries whatever the system.
const schedMetric = "/sched/latencies:seconds"

// schedReading is a reading of schedMetric.
type schedReading struct{ h *metrics.Float64Histogram }

func readSched() schedReading {
	s := []metrics.Sample{{Name: schedMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return schedReading{}
	}
	return schedReading{s[0].Value.Float64Histogram()}
}

// since summarizes the waits from before to r (bucket bounds, so to within the histogram's
// resolution); nil when unknown or none.
func (r schedReading) since(before schedReading) *Latency {
	if r.h == nil || before.h == nil || len(r.h.Counts) != len(before.h.Counts) {
		return nil
	}
	counts := make([]uint64, len(r.h.Counts))
	var n uint64
	for i := range counts {
		counts[i] = r.h.Counts[i] - before.h.Counts[i]
		n += counts[i]
	}
	if n == 0 {
		return nil
	}
	// upper returns the upper bound of bucket i in µs (its lower bound for the last bucket,
	// whose upper bound is infinite).
	upper := func(i int) float64 {
		b := r.h.Buckets[i+1]
		if math.IsInf(b, 1) {
			b = r.h.Buckets[i]
		}
		return b * 1e6
	}
	q := func(p float64) float64 {
		want := uint64(math.Ceil(p * float64(n)))
		var seen uint64
		for i, c := range counts {
			if seen += c; seen >= want {
				return upper(i)
			}
		}
		return upper(len(counts) - 1)
	}
	l := &Latency{Samples: int(n), P50: q(0.5), P90: q(0.9), P99: q(0.99), P999: q(0.999)}
	for i := len(counts) - 1; i >= 0; i-- {
		if counts[i] > 0 {
			l.Max = upper(i)
			break
		}
	}
	return l
}

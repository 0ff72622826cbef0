package bench

import (
	"context"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
)

// The Go benchmarks publish b.N messages to DefaultSubscribers subscribers through redisync
// (channels, or map writes to as many replicas) or raw pub/sub, with the publishers of the
// matching scenario, and time them until every subscriber received everything; setting up
// clients and subscriptions is not timed. ns/op is per message delivered to all; msgs/s is the
// same figure as the bench's "delivered".
//
//	go test -run '^$' -bench . ./bench/

// BenchmarkPublishSingle: one goroutine, one Publish call per message.
func BenchmarkPublishSingle(b *testing.B) { benchPublish(b, redisyncSystem{}, 1, 1) }

// BenchmarkRawPublishSingle: one goroutine, one PUBLISH per message.
func BenchmarkRawPublishSingle(b *testing.B) { benchPublish(b, rawSystem{}, 1, 1) }

// BenchmarkPublishConcurrent: DefaultPublishers goroutines each making one Publish call per
// message (group commit).
func BenchmarkPublishConcurrent(b *testing.B) {
	benchPublish(b, redisyncSystem{}, DefaultPublishers, 1)
}

// BenchmarkRawPublishConcurrent: DefaultPublishers goroutines each making one PUBLISH per
// message (rueidis auto-pipelining).
func BenchmarkRawPublishConcurrent(b *testing.B) {
	benchPublish(b, rawSystem{}, DefaultPublishers, 1)
}

// BenchmarkPublishBatch100: one goroutine, PublishBatch of 100 messages.
func BenchmarkPublishBatch100(b *testing.B) { benchPublish(b, redisyncSystem{}, 1, 100) }

// BenchmarkRawPublishBatch100: one goroutine, DoMulti of 100 PUBLISH.
func BenchmarkRawPublishBatch100(b *testing.B) { benchPublish(b, rawSystem{}, 1, 100) }

// BenchmarkMapSet: one goroutine, one Set (NoWaitOnWrite) per message on a replicated map,
// timed until every replica's OnChange has seen every write.
func BenchmarkMapSet(b *testing.B) { benchPublish(b, mapSystem{}, 1, 1) }

// BenchmarkMapSetConcurrent: DefaultPublishers goroutines each making one Set per message.
func BenchmarkMapSetConcurrent(b *testing.B) { benchPublish(b, mapSystem{}, DefaultPublishers, 1) }

func benchPublish(b *testing.B, sys system, publishers, batch int) {
	srv := redistest.Start(b, redistest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r, err := New(ctx, Config{URL: srv.URL()})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.ReportAllocs()
	side, err := r.measure(ctx, sys, load{
		name: "bench", publishers: publishers, batch: batch, messages: b.N,
		onStart: b.ResetTimer, onEnd: b.StopTimer,
	})
	if err != nil {
		b.Fatal(err)
	}
	if sys.name() == "redisync" && !side.Lossless() {
		b.Fatalf("redisync lost %d, %d out of order, %d resets", side.Lost, side.OutOfOrder, side.Resets)
	}
	b.ReportMetric(side.Throughput, "msgs/s")
	b.ReportMetric(float64(side.Lost), "lost")
	if calls := side.Stats["publish_calls"]; calls > 0 {
		b.ReportMetric(float64(side.Stats["published"])/float64(calls), "msgs/call")
	}
}

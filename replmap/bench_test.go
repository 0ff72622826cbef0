package replmap

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/bench/mapfill"
	"github.com/redisync/redisync/internal/redistest"
)

// BenchmarkGet reads a warm replica of 100,000 keys.
func BenchmarkGet(b *testing.B) {
	m := bareReplica()
	for i := range 100_000 {
		m.entries[fmt.Sprintf("key:%07d", i)] = entry[string]{val: strings.Repeat("v", 100), ver: uint64(i + 1)}
	}
	b.Run("single", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, _, err := m.Get("key:0012345"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, _, err := m.Get("key:0012345"); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkBootstrap loads a replica of 1,000,000 keys with 100-byte values while another node
// keeps writing, and reports the replica's heap bytes per key next to the raw key+value size.
// Run it alone: go test -run XXX -bench Bootstrap -benchtime 1x ./replmap
func BenchmarkBootstrap(b *testing.B) {
	const keys, size = 1_000_000, 100
	srv := redistest.Start(b, redistest.Options{})
	prefix := newPrefix()
	if err := mapfill.Fill(context.Background(), srv.Client(b), mapfill.Options{
		Prefix: prefix, Name: "big", Keys: keys, ValueBytes: size}); err != nil {
		b.Fatal(err)
	}
	// The writer is a near-cache: it holds no replica of its own to skew the figures.
	wn := openNode(b, srv.URL(), prefix, "unused", Config[string]{Codec: String{}})
	w, err := OpenCache(context.Background(), wn.cl, "big", CacheConfig[string]{Codec: String{}, Size: 1, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	var writes atomic.Int64
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		for i := 0; ctx.Err() == nil; i++ {
			if _, err := w.Set(ctx, mapfill.Key(i*7919%keys), strings.Repeat("w", size)); err == nil {
				writes.Add(1)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		n := openNode(b, srv.URL(), prefix, "big", Config[string]{Codec: String{}})
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := n.m.WaitReady(cctx); err != nil {
			b.Fatal(err)
		}
		cancel()
		took := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		raw := float64(len(mapfill.Key(0)) + size)
		perKey := float64(after.HeapAlloc-before.HeapAlloc) / keys
		b.ReportMetric(took.Seconds(), "s/bootstrap")
		b.ReportMetric(perKey, "heapB/key")
		b.ReportMetric(raw, "rawB/key")
		b.ReportMetric(perKey/(2*raw+64), "x_target")
		b.ReportMetric(float64(writes.Load()), "writes_during")
		runtime.KeepAlive(n)
		vctx, vcancel := context.WithTimeout(context.Background(), time.Minute)
		if v, err := n.m.Verify(vctx); err != nil || !v.Match {
			b.Fatalf("loaded replica does not verify: %+v %v", v, err)
		}
		vcancel()
		n.m.Close()
	}
}

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/redisync/redisync/internal/redistest"
)

// TestBenchSmoke runs every scenario at the size of `redisync bench --smoke` and checks that
// the figures are sane: redisync lost nothing, every figure and ratio is positive (allocations,
// CPU shares and raw pub/sub's idle commands aside), raw pub/sub and Centrifuge lost nothing
// either at these rates, idle redisync clients sent idle checks, a loaded replica matches Redis, the
// results print and marshal, and the latency sweep plots.
func TestBenchSmoke(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var progress bytes.Buffer
	r, err := New(ctx, Smoke(Config{URL: srv.URL(), Progress: &progress}))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, s := range Scenarios() {
		res, err := r.Run(ctx, s)
		if err != nil {
			t.Fatalf("%v\nprogress:\n%s", err, progress.String())
		}
		var text strings.Builder
		if err := res.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		t.Log(text.String())
		if p := res.Problems(); len(p) > 0 {
			t.Errorf("%s: %v", s.Name, p)
		}
		if len(res.Rows) == 0 || len(res.Sides) == 0 {
			t.Errorf("%s: %d rows, %d sides", s.Name, len(res.Rows), len(res.Sides))
		}
		for _, row := range res.Rows {
			// Idle raw pub/sub may run no command at all in a short window, and a short
			// storm may leave Redis's CPU counters where they were.
			mayBeZero := row.Unit == "allocs/op" || row.Unit == "%" || (row.Unit == "cmds/s" && row.Baseline == "")
			if row.Redisync <= 0 && !mayBeZero {
				t.Errorf("%s: %s: redisync %v", s.Name, row.Metric, row.Redisync)
			}
			if row.Raw != nil && !mayBeZero && (*row.Raw <= 0 || row.Ratio == nil || *row.Ratio <= 0) {
				t.Errorf("%s: %s: raw %v, ratio %v", s.Name, row.Metric, *row.Raw, row.Ratio)
			}
		}
		for _, side := range res.Sides {
			switch {
			case side.NsPerOp > 0: // get
				if side.Ops <= 0 || side.Goroutines < 1 || side.AllocsPerOp == nil {
					t.Errorf("%s: %s: %d reads from %d goroutines, allocs %v", s.Name, side.System, side.Ops, side.Goroutines, side.AllocsPerOp)
				}
				continue
			case side.Subscriptions > 0: // idle
				if side.Subscriptions != res.Params.Subscribers || side.Seconds <= 0 || !side.Lossless() {
					t.Errorf("%s: %s: %d of %d subscriptions for %vs, lossless %v", s.Name, side.System, side.Subscriptions, res.Params.Subscribers, side.Seconds, side.Lossless())
				}
				if side.System == "redisync" && side.SentPerSecond <= 0 {
					t.Errorf("%s: redisync sent no idle check in %vs", s.Name, side.Seconds)
				}
				continue
			case side.Keys > 0: // bootstrap
				if side.Keys != int64(res.Params.Keys) || side.Seconds <= 0 || side.HeapBytes <= 0 {
					t.Errorf("%s: %s: %d of %d keys in %vs, %d heap bytes", s.Name, side.System, side.Keys, res.Params.Keys, side.Seconds, side.HeapBytes)
				}
			case len(side.Delivered) != res.Params.Subscribers:
				t.Errorf("%s: %s: %d delivery counts for %d subscribers", s.Name, side.System, len(side.Delivered), res.Params.Subscribers)
			}
			if side.Published <= 0 || side.Throughput <= 0 || side.Seconds <= 0 {
				t.Errorf("%s: %s: %d published, %v msgs/s in %vs", s.Name, side.System, side.Published, side.Throughput, side.Seconds)
			}
			if !side.Lossless() {
				t.Errorf("%s: %s lost %d, %d out of order, %d resets, %d junk", s.Name, side.System, side.Lost, side.OutOfOrder, side.Resets, side.Junk)
			}
		}
		if _, err := json.Marshal(res); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
		if s.Name == "latency-sweep" {
			if err := PlotLatency(io.Discard, res); err != nil {
				t.Errorf("%s: %v", s.Name, err)
			}
		}
	}
	// Every measurement deletes its keys.
	if keys, err := srv.Do("DBSIZE"); err != nil || keys != "0" {
		t.Errorf("DBSIZE after the run: %q, %v", keys, err)
	}
}

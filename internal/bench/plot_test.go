package bench

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"testing"
	"time"
)

func TestPlotLatency(t *testing.T) {
	res := Result{Scenario: "latency-sweep", Params: Params{Size: 256, Subscribers: 3, Publishers: 16, DurationSeconds: 5},
		Machine: Machine{RedisVersion: "7.0.15", GoVersion: "go1.26.8", OS: "linux", Arch: "amd64", CPUs: 2, GOMAXPROCS: 2, MemoryBytes: 47 << 29},
		Started: time.Date(2026, 11, 26, 1, 50, 0, 0, time.UTC)}
	for i, rate := range DefaultSweepRates() {
		f := float64(i + 1)
		res.Sides = append(res.Sides,
			Side{System: "redisync", Rate: rate, Latency: &Latency{P50: 150 + 20*f, P99: 400 + 300*f*f}},
			Side{System: "raw", Rate: rate, Latency: &Latency{P50: 80 + 5*f, P99: 180 + 150*f*f}})
	}
	var buf bytes.Buffer
	if err := PlotLatency(&buf, res); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != plotWidth || b.Dy() != plotHeight {
		t.Errorf("plot is %v, want %dx%d", b, plotWidth, plotHeight)
	}
	rgba, ok := img.(*image.RGBA)
	if !ok {
		t.Fatalf("decoded a %T", img)
	}
	// Both systems are drawn: each colour covers some pixels.
	for name, ink := range map[string]color.RGBA{"redisync": plotRedisync, "raw": plotRaw} {
		n := 0
		for i := 0; i+3 < len(rgba.Pix); i += 4 {
			if rgba.Pix[i] == ink.R && rgba.Pix[i+1] == ink.G && rgba.Pix[i+2] == ink.B && rgba.Pix[i+3] == ink.A {
				n++
			}
		}
		if n < 100 {
			t.Errorf("%s: %d pixels of its colour", name, n)
		}
	}
	if out := os.Getenv("BENCH_PLOT_OUT"); out != "" {
		if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	if err := PlotLatency(&buf, Result{Scenario: "get"}); err == nil {
		t.Error("a result without latency plots")
	}
	// One rate (the axes widen around it) plots; a latency of zero has no place on a log scale.
	one := res
	one.Sides = res.Sides[:2]
	if err := PlotLatency(io.Discard, one); err != nil {
		t.Errorf("one rate: %v", err)
	}
	zero := res
	zero.Sides = append([]Side{{System: "raw", Rate: 500, Latency: &Latency{}}}, res.Sides...)
	if err := PlotLatency(io.Discard, zero); err == nil {
		t.Error("a latency of zero plots")
	}
}

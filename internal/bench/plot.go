package bench

import (
	"cmp"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// The latency plot's size, in pixels, at plotDPI.
const (
	plotWidth  = 960
	plotHeight = 600
	plotDPI    = 96
)

// Colours of the latency plot: one per system; p50 is a solid line with discs, p99 a dashed
// line with squares.
var (
	plotRedisync = color.RGBA{0x1f, 0x66, 0xb4, 0xff}
	plotRaw      = color.RGBA{0xe0, 0x6c, 0x00, 0xff}
	plotGrid     = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
)

// plotPoint is one measured rate of one system.
type plotPoint struct {
	rate     float64
	p50, p99 float64 // µs
}

// PlotLatency draws, as a PNG, the p50 and p99 propagation latency of redisync and of raw
// pub/sub against the publish rate, from the sides of res (a latency-sweep or latency result,
// as Runner.Run returns it or as `redisync bench --json` prints it). Both axes are
// logarithmic. The legend and the machine that ran the bench are to the right of the plot.
func PlotLatency(w io.Writer, res Result) error {
	series := map[string][]plotPoint{}
	for _, s := range res.Sides {
		if s.Rate > 0 && s.Latency != nil && (s.System == "redisync" || s.System == "raw") {
			series[s.System] = append(series[s.System], plotPoint{float64(s.Rate), s.Latency.P50, s.Latency.P99})
		}
	}
	if len(series["redisync"]) == 0 && len(series["raw"]) == 0 {
		return fmt.Errorf("bench: plot: %s has no latency measured at a steady rate", cmp.Or(res.Scenario, "the result"))
	}
	var rates []float64
	minLat, maxLat := math.Inf(1), math.Inf(-1)
	for name, pts := range series {
		slices.SortFunc(pts, func(a, b plotPoint) int { return cmp.Compare(a.rate, b.rate) })
		series[name] = pts
		for _, p := range pts {
			rates = append(rates, p.rate)
			minLat, maxLat = min(minLat, p.p50, p.p99), max(maxLat, p.p50, p.p99)
		}
	}
	if minLat <= 0 {
		return errors.New("bench: plot: a latency of zero cannot be drawn on a log scale")
	}
	slices.Sort(rates)
	rates = slices.Compact(rates)

	// Both axes are linear axes of log10 of the values, with ticks labelled with the values
	// themselves. (plot.LogScale draws the same, but gonum/plot pads the plot for the
	// vertical axis's label as if it were centred on the arithmetic middle of the latencies,
	// which on a log scale squeezes the plot down.)
	lg := math.Log10
	p := plot.New()
	p.Title.Text = "Propagation latency against publish rate: p50 and p99\n" + plotParams(res)
	p.Title.TextStyle.Font.Size = vg.Points(12)
	p.Title.Padding = vg.Points(12)
	p.X.Label.Text = "publish rate (messages/s, log scale)"
	var xticks plot.ConstantTicks
	for _, rate := range rates {
		xticks = append(xticks, plot.Tick{Value: lg(rate), Label: thousands(rate)})
	}
	p.X.Tick.Marker = xticks
	p.Y.Label.Text = "latency, publish call to delivery (log scale)"
	p.Y.Tick.Marker = plot.TickerFunc(latencyTicks)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = vg.Points(11)
		a.Tick.Label.Font.Size = vg.Points(10)
	}

	grid := plotter.NewGrid()
	grid.Vertical = draw.LineStyle{Color: plotGrid, Width: vg.Points(0.75)}
	grid.Horizontal = grid.Vertical
	p.Add(grid)
	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	legend.TextStyle.Font.Size = vg.Points(10)
	legend.ThumbnailWidth = vg.Points(32)
	legend.Padding = vg.Points(4)
	systems := []struct {
		name, label string
		ink         color.Color
	}{{"redisync", "redisync", plotRedisync}, {"raw", "raw pub/sub", plotRaw}}
	for _, sys := range systems {
		pts := series[sys.name]
		if len(pts) == 0 {
			continue
		}
		for _, pct := range []struct {
			name   string
			of     func(plotPoint) float64
			dashes []vg.Length
			glyph  draw.GlyphDrawer
		}{
			{"p50", func(p plotPoint) float64 { return p.p50 }, nil, draw.CircleGlyph{}},
			{"p99", func(p plotPoint) float64 { return p.p99 }, []vg.Length{vg.Points(6), vg.Points(4)}, draw.BoxGlyph{}},
		} {
			xys := make(plotter.XYs, len(pts))
			for i, pt := range pts {
				xys[i] = plotter.XY{X: lg(pt.rate), Y: lg(pct.of(pt))}
			}
			line, points, err := plotter.NewLinePoints(xys)
			if err != nil {
				return fmt.Errorf("bench: plot: %w", err)
			}
			line.LineStyle = draw.LineStyle{Color: sys.ink, Width: vg.Points(2), Dashes: pct.dashes}
			points.GlyphStyle = draw.GlyphStyle{Color: sys.ink, Radius: vg.Points(3.5), Shape: pct.glyph}
			p.Add(line, points)
			legend.Add(sys.label+" "+pct.name, line, points)
		}
	}
	// After Add, which widens the axes to the data: 0.08 decade on both sides of the rates (at
	// least half a decade in all), the latencies from and to a labelled tick (at least a
	// decade in all).
	p.X.Min, p.X.Max = lg(rates[0])-0.08, lg(rates[len(rates)-1])+0.08
	if p.X.Max-p.X.Min < 0.5 {
		p.X.Min, p.X.Max = p.X.Min-0.25, p.X.Max+0.25
	}
	p.Y.Min, p.Y.Max = lg(niceBelow(minLat)), lg(niceAbove(maxLat))
	if p.Y.Max-p.Y.Min < 1 {
		p.Y.Min, p.Y.Max = p.Y.Min-0.5, p.Y.Max+0.5
	}

	img := vgimg.NewWith(vgimg.UseWH(plotWidth*vg.Inch/plotDPI, plotHeight*vg.Inch/plotDPI), vgimg.UseDPI(plotDPI))
	c := draw.New(img)
	machine, machineStyle := plotMachine(res), legend.TextStyle
	machineStyle.YAlign = draw.YTop
	// The band right of the plot, beside its data: the legend, and below it the machine.
	band := max(legend.Rectangle(c).Size().X, machineStyle.Width(machine)) + vg.Points(30)
	p.Draw(draw.Crop(c, 0, -band, 0, 0))
	data := p.DataCanvas(draw.Crop(c, 0, -band, 0, 0))
	right := draw.Crop(c, data.Max.X-c.Min.X+vg.Points(18), 0, data.Min.Y-c.Min.Y, data.Max.Y-c.Max.Y)
	legend.Draw(right)
	below := right.Max.Y - legend.Rectangle(right).Size().Y - vg.Points(24)
	right.FillText(machineStyle, vg.Point{X: right.Min.X, Y: below}, machine)
	_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

// plotParams says in a line what was measured.
func plotParams(res Result) string {
	return fmt.Sprintf("%d-byte messages, %s, %s; one side after the other, %ss each, same run",
		res.Params.Size, plural(res.Params.Subscribers, "subscriber"), plural(res.Params.Publishers, "publishing goroutine"),
		strconv.FormatFloat(res.Params.DurationSeconds, 'g', 3, 64))
}

// plotMachine says in a few lines where it was measured.
func plotMachine(res Result) string {
	m := res.Machine
	lines := []string{"Redis " + m.RedisVersion, m.GoVersion + " " + m.OS + "/" + m.Arch,
		plural(m.CPUs, "CPU") + ", GOMAXPROCS " + strconv.Itoa(m.GOMAXPROCS)}
	if m.MemoryBytes > 0 {
		lines = append(lines, fmt.Sprintf("%.1f GiB of memory", float64(m.MemoryBytes)/(1<<30)))
	}
	if !res.Started.IsZero() {
		lines = append(lines, res.Started.UTC().Format("2006-01-02 15:04 UTC"))
	}
	return strings.Join(lines, "\n")
}

// latencyTicks returns, for an axis from log10(lo µs) to log10(hi µs), a labelled tick at 1,
// 2 and 5 times each power of ten and an unlabelled one at the other multiples.
func latencyTicks(lgLo, lgHi float64) []plot.Tick {
	var ticks []plot.Tick
	for decade := math.Floor(lgLo); decade <= math.Ceil(lgHi); decade++ {
		for m := 1.0; m < 10; m++ {
			v := m * math.Pow(10, decade)
			if l := math.Log10(v); l < lgLo-1e-9 || l > lgHi+1e-9 {
				continue
			}
			t := plot.Tick{Value: math.Log10(v)}
			if m == 1 || m == 2 || m == 5 {
				t.Label = formatMicros(v)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// niceBelow returns the largest 1, 2 or 5 times a power of ten at most v.
func niceBelow(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{5, 2, 1} {
		if m*p <= v {
			return m * p
		}
	}
	return p
}

// niceAbove returns the smallest 1, 2 or 5 times a power of ten at least v.
func niceAbove(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// formatMicros labels a latency tick: "50 µs", "2 ms", "1 s".
func formatMicros(us float64) string {
	switch {
	case us >= 1e6:
		return strconv.FormatFloat(us/1e6, 'g', 3, 64) + " s"
	case us >= 1e3:
		return strconv.FormatFloat(us/1e3, 'g', 3, 64) + " ms"
	}
	return strconv.FormatFloat(us, 'g', 3, 64) + " µs"
}

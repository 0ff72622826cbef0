package bench

import (
	"cmp"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"slices"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"
)

// The latency plot's size and layout, in pixels.
const (
	plotWidth  = 960
	plotHeight = 600
	plotLeft   = 90  // the plot area starts here…
	plotRight  = 730 // …and ends here; the legend is to its right
	plotTop    = 70
	plotBottom = 530
)

// Colours of the latency plot: one per system; p50 is a solid line with discs, p99 a dashed
// line with squares.
var (
	plotInk      = color.RGBA{0x22, 0x22, 0x22, 0xff}
	plotGrid     = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	plotRedisync = color.RGBA{0x1f, 0x66, 0xb4, 0xff}
	plotRaw      = color.RGBA{0xe0, 0x6c, 0x00, 0xff}
)

// plotPoint is one measured rate of one system.
type plotPoint struct {
	rate     float64
	p50, p99 float64 // µs
}

// PlotLatency draws, as a PNG, the p50 and p99 propagation latency of redisync and of raw
// pub/sub against the publish rate, from the sides of res (a latency-sweep or latency result,
// as Runner.Run returns it or as `redisync bench --json` prints it). Both axes are
// logarithmic.
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
	minRate, maxRate := math.Inf(1), math.Inf(-1)
	minLat, maxLat := math.Inf(1), math.Inf(-1)
	for name, pts := range series {
		slices.SortFunc(pts, func(a, b plotPoint) int { return cmp.Compare(a.rate, b.rate) })
		series[name] = pts
		for _, p := range pts {
			minRate, maxRate = min(minRate, p.rate), max(maxRate, p.rate)
			minLat, maxLat = min(minLat, p.p50, p.p99), max(maxLat, p.p50, p.p99)
		}
	}
	if minLat <= 0 {
		return errors.New("bench: plot: a latency of zero cannot be drawn on a log scale")
	}

	img := image.NewRGBA(image.Rect(0, 0, plotWidth, plotHeight))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	c := &canvas{img: img, z: vector.NewRasterizer(plotWidth, plotHeight)}

	// Scales: log10 on both axes, with a margin around the rates and whole 1-2-5 steps around
	// the latencies.
	lx0, lx1 := math.Log10(minRate)-0.08, math.Log10(maxRate)+0.08
	if lx1-lx0 < 0.5 {
		lx0, lx1 = lx0-0.25, lx1+0.25
	}
	ly0, ly1 := math.Log10(niceBelow(minLat)), math.Log10(niceAbove(maxLat))
	if ly1-ly0 < 1 {
		ly0, ly1 = ly0-0.5, ly1+0.5
	}
	px := func(rate float64) float32 {
		return float32(plotLeft + (math.Log10(rate)-lx0)/(lx1-lx0)*(plotRight-plotLeft))
	}
	py := func(us float64) float32 {
		return float32(plotBottom - (math.Log10(us)-ly0)/(ly1-ly0)*(plotBottom-plotTop))
	}

	// Grid and ticks: a vertical line at every rate measured, a horizontal one at 1, 2 and 5
	// times each power of ten.
	var rates []float64
	for _, pts := range series {
		for _, p := range pts {
			rates = append(rates, p.rate)
		}
	}
	slices.Sort(rates)
	for _, rate := range slices.Compact(rates) {
		x := px(rate)
		c.line(x, plotTop, x, plotBottom, 1, plotGrid, 0)
		c.text(thousands(rate), int(x), plotBottom+18, alignCenter, plotInk)
	}
	for decade := math.Floor(ly0); decade <= ly1; decade++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, decade)
			if l := math.Log10(v); l < ly0-1e-9 || l > ly1+1e-9 {
				continue
			}
			y := py(v)
			width := float32(1)
			if m == 1 {
				width = 1.5
			}
			c.line(plotLeft, y, plotRight, y, width, plotGrid, 0)
			c.text(formatMicros(v), plotLeft-8, int(y)+4, alignRight, plotInk)
		}
	}
	c.line(plotLeft, plotTop, plotLeft, plotBottom, 1.5, plotInk, 0)
	c.line(plotLeft, plotBottom, plotRight, plotBottom, 1.5, plotInk, 0)

	// The series.
	systems := []struct {
		name, label string
		ink         color.RGBA
	}{{"redisync", "redisync", plotRedisync}, {"raw", "raw pub/sub", plotRaw}}
	for _, sys := range systems {
		pts := series[sys.name]
		for i, p := range pts {
			if i > 0 {
				q := pts[i-1]
				c.line(px(q.rate), py(q.p50), px(p.rate), py(p.p50), 2.5, sys.ink, 0)
				c.line(px(q.rate), py(q.p99), px(p.rate), py(p.p99), 2.5, sys.ink, 8)
			}
		}
		for _, p := range pts {
			c.disc(px(p.rate), py(p.p50), 4.5, sys.ink)
			c.square(px(p.rate), py(p.p99), 4.5, sys.ink)
		}
	}

	// Labels, title and legend.
	c.text("publish rate (messages/s, log scale)", (plotLeft+plotRight)/2, plotBottom+45, alignCenter, plotInk)
	c.textUp("latency, publish call to delivery (log scale)", 22, (plotTop+plotBottom)/2, plotInk)
	title := "Propagation latency against publish rate: p50 and p99"
	c.text(title, (plotLeft+plotRight)/2, 26, alignCenter, plotInk)
	sub := fmt.Sprintf("%d-byte messages, %s, %s; one side after the other, %v each, same run",
		res.Params.Size, plural(res.Params.Subscribers, "subscriber"), plural(res.Params.Publishers, "publishing goroutine"),
		secondsString(res.Params.DurationSeconds))
	c.text(sub, (plotLeft+plotRight)/2, 46, alignCenter, plotInk)
	ly := plotTop + 10
	for _, sys := range systems {
		if len(series[sys.name]) == 0 {
			continue
		}
		for _, pct := range []string{"p50", "p99"} {
			x0 := float32(plotRight + 25)
			y := float32(ly)
			if pct == "p50" {
				c.line(x0, y, x0+40, y, 2.5, sys.ink, 0)
				c.disc(x0+20, y, 4.5, sys.ink)
			} else {
				c.line(x0, y, x0+40, y, 2.5, sys.ink, 8)
				c.square(x0+20, y, 4.5, sys.ink)
			}
			c.text(sys.label+" "+pct, plotRight+75, ly+4, alignLeft, plotInk)
			ly += 24
		}
	}
	m := res.Machine
	ly += 16
	lines := []string{"Redis " + m.RedisVersion, m.GoVersion + " " + m.OS + "/" + m.Arch,
		plural(m.CPUs, "CPU") + ", GOMAXPROCS " + strconv.Itoa(m.GOMAXPROCS)}
	if m.MemoryBytes > 0 {
		lines = append(lines, fmt.Sprintf("%.1f GiB of memory", float64(m.MemoryBytes)/(1<<30)))
	}
	if !res.Started.IsZero() {
		lines = append(lines, res.Started.UTC().Format("2006-01-02 15:04 UTC"))
	}
	for _, line := range lines {
		c.text(line, plotRight+25, ly, alignLeft, plotInk)
		ly += 18
	}
	return png.Encode(w, img)
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

// formatMicros labels a latency tick: "50 us", "2 ms", "1 s" (the plot's font is ASCII).
func formatMicros(us float64) string {
	switch {
	case us >= 1e6:
		return strconv.FormatFloat(us/1e6, 'g', 3, 64) + " s"
	case us >= 1e3:
		return strconv.FormatFloat(us/1e3, 'g', 3, 64) + " ms"
	}
	return strconv.FormatFloat(us, 'g', 3, 64) + " us"
}

func secondsString(s float64) string {
	return strconv.FormatFloat(s, 'g', 3, 64) + "s"
}

// canvas draws anti-aliased shapes and text on an image.
type canvas struct {
	img *image.RGBA
	z   *vector.Rasterizer
}

type align int

const (
	alignLeft align = iota
	alignCenter
	alignRight
)

// fill fills the polygon of the points xy (x0, y0, x1, y1…), rasterizing only its bounding box.
func (c *canvas) fill(ink color.RGBA, xy ...float32) {
	x0, y0, x1, y1 := xy[0], xy[1], xy[0], xy[1]
	for i := 2; i+1 < len(xy); i += 2 {
		x0, y0, x1, y1 = min(x0, xy[i]), min(y0, xy[i+1]), max(x1, xy[i]), max(y1, xy[i+1])
	}
	box := image.Rect(int(x0)-1, int(y0)-1, int(x1)+2, int(y1)+2).Intersect(c.img.Bounds())
	if box.Empty() {
		return
	}
	ox, oy := float32(box.Min.X), float32(box.Min.Y)
	c.z.Reset(box.Dx(), box.Dy())
	c.z.DrawOp = draw.Over
	c.z.MoveTo(xy[0]-ox, xy[1]-oy)
	for i := 2; i+1 < len(xy); i += 2 {
		c.z.LineTo(xy[i]-ox, xy[i+1]-oy)
	}
	c.z.ClosePath()
	c.z.Draw(c.img, box, image.NewUniform(ink), image.Point{})
}

// line draws a line of the given width from (x0, y0) to (x1, y1); dashed, when dash is above
// zero, with dashes and gaps of that length.
func (c *canvas) line(x0, y0, x1, y1, width float32, ink color.RGBA, dash float32) {
	dx, dy := x1-x0, y1-y0
	length := float32(math.Hypot(float64(dx), float64(dy)))
	if length == 0 {
		return
	}
	if dash <= 0 {
		c.segment(x0, y0, x1, y1, width, ink)
		return
	}
	for t := float32(0); t < length; t += 2 * dash {
		e := min(t+dash, length)
		c.segment(x0+dx*t/length, y0+dy*t/length, x0+dx*e/length, y0+dy*e/length, width, ink)
	}
}

// segment draws a straight segment with round ends.
func (c *canvas) segment(x0, y0, x1, y1, width float32, ink color.RGBA) {
	dx, dy := x1-x0, y1-y0
	length := float32(math.Hypot(float64(dx), float64(dy)))
	nx, ny := -dy/length*width/2, dx/length*width/2
	c.fill(ink, x0+nx, y0+ny, x1+nx, y1+ny, x1-nx, y1-ny, x0-nx, y0-ny)
	if width > 1.5 {
		c.disc(x0, y0, width/2, ink)
		c.disc(x1, y1, width/2, ink)
	}
}

// disc draws a filled circle.
func (c *canvas) disc(x, y, r float32, ink color.RGBA) {
	const steps = 32
	xy := make([]float32, 0, 2*steps)
	for i := range steps {
		a := 2 * math.Pi * float64(i) / steps
		xy = append(xy, x+r*float32(math.Cos(a)), y+r*float32(math.Sin(a)))
	}
	c.fill(ink, xy...)
}

// square draws a filled square of half-side r.
func (c *canvas) square(x, y, r float32, ink color.RGBA) {
	c.fill(ink, x-r, y-r, x+r, y-r, x+r, y+r, x-r, y+r)
}

// text draws s with its baseline at y, aligned on x.
func (c *canvas) text(s string, x, y int, a align, ink color.RGBA) {
	d := &font.Drawer{Dst: c.img, Src: image.NewUniform(ink), Face: basicfont.Face7x13}
	w := d.MeasureString(s).Round()
	switch a {
	case alignCenter:
		x -= w / 2
	case alignRight:
		x -= w
	}
	d.Dot = fixed.P(x, y)
	d.DrawString(s)
}

// textUp draws s rotated a quarter turn anticlockwise, centred on (x, y).
func (c *canvas) textUp(s string, x, y int, ink color.RGBA) {
	face := basicfont.Face7x13
	d := &font.Drawer{Face: face}
	w := d.MeasureString(s).Round()
	h := face.Height
	tmp := image.NewRGBA(image.Rect(0, 0, w, h))
	d.Dst, d.Src, d.Dot = tmp, image.NewUniform(ink), fixed.P(0, face.Ascent)
	d.DrawString(s)
	// Pixel (i, j) of tmp goes to (x0 + j, y0 + w - 1 - i).
	x0, y0 := x-h/2, y-w/2
	for j := range h {
		for i := range w {
			if px := tmp.RGBAAt(i, j); px.A > 0 {
				c.img.SetRGBA(x0+j, y0+w-1-i, px)
			}
		}
	}
}

package main

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

var palette = map[string]color.Color{
	"plain":    color.RGBA{0x4c, 0x72, 0xb0, 0xff},
	"fast":     color.RGBA{0x55, 0xa8, 0x68, 0xff},
	"command":  color.RGBA{0xc4, 0x4e, 0x52, 0xff},
	"upstream": color.RGBA{0x81, 0x72, 0xb3, 0xff},
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// chart draws two panels into an SVG (a PNG when path ends in .png): ms per
// RUN step by image and configuration (section 1), and by CA count
// (section 2).
func chart(r *results, path string) error {
	left, err := configPlot(r)
	if err != nil {
		return err
	}
	plots := []*plot.Plot{left}
	// The CA-count plot needs the scaling section (-sections without it,
	// e.g. overhead only: one plot; a log axis over no point panics).
	if len(r.Scaling) > 0 {
		right, err := caPlot(r)
		if err != nil {
			return err
		}
		plots = append(plots, right)
	}
	const w, h = 30 * vg.Centimeter, 12 * vg.Centimeter
	var c interface {
		vg.CanvasSizer
		io.WriterTo
	}
	if strings.HasSuffix(path, ".png") {
		c = vgimg.PngCanvas{Canvas: vgimg.New(w, h)}
	} else {
		c = vgsvg.New(w, h)
	}
	dc := draw.New(c)
	pad := 4 * vg.Millimeter
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: 1.5 * vg.Centimeter, PadTop: pad, PadBottom: pad, PadLeft: pad, PadRight: pad}
	cs := plot.Align([][]*plot.Plot{plots}, tiles, dc)
	for i, p := range plots {
		p.Draw(cs[0][i])
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var shortImage = map[string]string{
	"debian-bookworm-tls": "bookworm-tls",
	"debian-bookworm-min": "bookworm-min",
	"busybox":             "busybox",
	"scratch-go":          "scratch-go",
}

// configPlot is grouped bars per image. The command path is an order of
// magnitude slower: its bars are cut at the top of the axis and labelled
// with their value.
func configPlot(r *results) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Time per RUN step by configuration (median)"
	p.Y.Label.Text = "ms per step"
	var images, labels []string
	for _, im := range r.Params.Images {
		if r.Overhead[im] != nil {
			images = append(images, im)
			labels = append(labels, shortImage[im])
		}
	}
	if len(images) == 0 {
		return p, nil
	}
	names := []string{"plain", "fast", "command", "upstream"}
	top := 0.0
	for _, im := range images {
		for _, n := range []string{"plain", "fast", "upstream"} {
			if c := r.Overhead[im][n]; c != nil && c.Sample.N() > 0 {
				top = math.Max(top, msf(c.Sample.Median()))
			}
		}
	}
	top = math.Max(10, math.Ceil(top*1.6/50)*50)
	p.Y.Min, p.Y.Max = 0, top
	const bw = 6 * vg.Millimeter
	var cut plotter.XYLabels
	for i, name := range names {
		vals := make(plotter.Values, len(images))
		for j, im := range images {
			c := r.Overhead[im][name]
			if c == nil || c.Sample.N() == 0 {
				continue
			}
			v := msf(c.Sample.Median())
			if v > top {
				cut.XYs = append(cut.XYs, plotter.XY{X: float64(j), Y: top * 0.93})
				cut.Labels = append(cut.Labels, fmt.Sprintf("%s\n%.0f ms", name, v))
				v = top
			}
			vals[j] = v
		}
		bars, err := plotter.NewBarChart(vals, bw)
		if err != nil {
			return nil, err
		}
		bars.Color = palette[name]
		bars.LineStyle.Width = 0
		bars.Offset = vg.Length(float64(i)-1.5) * bw
		p.Add(bars)
		p.Legend.Add(name, bars)
	}
	if len(cut.XYs) > 0 {
		l, err := plotter.NewLabels(cut)
		if err != nil {
			return nil, err
		}
		for i := range l.TextStyle {
			l.TextStyle[i].XAlign = draw.XLeft
			l.TextStyle[i].Font.Size = vg.Points(8)
		}
		l.Offset = vg.Point{X: bw * 1.2}
		p.Add(l)
	}
	p.Legend.Top = true
	p.NominalX(labels...)
	return p, nil
}

// caPlot is ms per step against the CA count, both on log scales, with
// plain and the command path (1 CA) as reference lines.
func caPlot(r *results) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "bookworm-tls: time per RUN step by CA count"
	p.X.Label.Text = "CAs in the engine's directory"
	p.Y.Label.Text = "ms per step (median; whiskers: round min–max)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, steps125{}
	const tls = "debian-bookworm-tls"
	var xys plotter.XYs
	var yerr plotter.YErrors
	for _, n := range r.Params.CACounts {
		c := r.Scaling[tls][specCAs(n).Name]
		if c == nil || c.Sample.N() == 0 {
			continue
		}
		m := msf(c.Sample.Median())
		lo, hi := c.Sample.RoundRange()
		xys = append(xys, plotter.XY{X: float64(n), Y: m})
		yerr = append(yerr, struct{ Low, High float64 }{m - msf(lo), msf(hi) - m})
	}
	if len(xys) == 0 {
		return p, nil
	}
	xmin, xmax := xys[0].X, xys[len(xys)-1].X
	if xmax <= xmin {
		xmax = xmin * 10
	}
	ref := func(name, label string, c *cell) error {
		if c == nil || c.Sample.N() == 0 {
			return nil
		}
		v := msf(c.Sample.Median())
		l, err := plotter.NewLine(plotter.XYs{{X: xmin, Y: v}, {X: xmax, Y: v}})
		if err != nil {
			return err
		}
		l.Color = palette[name]
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (%.0f ms)", label, v), l)
		return nil
	}
	if err := ref("plain", "plain, empty CA dir", r.Scaling[tls]["plain"]); err != nil {
		return nil, err
	}
	if err := ref("command", "mode=command, 1 CA", r.Overhead[tls]["command"]); err != nil {
		return nil, err
	}
	line, pts, err := plotter.NewLinePoints(xys)
	if err != nil {
		return nil, err
	}
	line.Color, pts.Color = palette["fast"], palette["fast"]
	pts.Shape = draw.CircleGlyph{}
	p.Add(line, pts)
	p.Legend.Add("mode=auto (fast path)", line, pts)
	eb, err := plotter.NewYErrorBars(struct {
		plotter.XYs
		plotter.YErrors
	}{xys, yerr})
	if err != nil {
		return nil, err
	}
	eb.Color = palette["fast"]
	p.Add(eb)
	p.X.Max *= 1.5
	p.Legend.Top = true
	p.Legend.Left = true
	return p, nil
}

// steps125 ticks a log axis at 1, 2, 5 × 10^k.
type steps125 struct{}

func (steps125) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(min)); math.Pow(10, e) <= max; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v >= min && v <= max {
				ts = append(ts, plot.Tick{Value: v, Label: fmt.Sprintf("%g", v)})
			}
		}
	}
	return ts
}

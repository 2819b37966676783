package main

import (
	"fmt"
	"image/color"
	"io"
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

var palette = []color.Color{
	color.RGBA{0x4c, 0x72, 0xb0, 0xff}, // plain
	color.RGBA{0x55, 0xa8, 0x68, 0xff}, // fast
	color.RGBA{0xc4, 0x4e, 0x52, 0xff}, // command
	color.RGBA{0x81, 0x72, 0xb3, 0xff}, // upstream
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// chart draws two panels into an SVG (a PNG when path ends in .png): ms per RUN step by image and
// configuration (section 1), and by CA count (section 2).
func chart(r *results, path string) error {
	left, err := configPlot(r)
	if err != nil {
		return err
	}
	right, err := caPlot(r)
	if err != nil {
		return err
	}
	const w, h = 28 * vg.Centimeter, 11 * vg.Centimeter
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
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Centimeter, PadY: vg.Millimeter * 3, PadTop: vg.Millimeter * 3, PadBottom: vg.Millimeter * 3, PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 3}
	cs := plot.Align([][]*plot.Plot{{left, right}}, tiles, dc)
	left.Draw(cs[0][0])
	right.Draw(cs[0][1])
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

func configPlot(r *results) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Time per RUN step by configuration (median)"
	p.Y.Label.Text = "ms per step"
	p.Y.Min = 0
	var images []string
	for _, im := range []string{"debian-bookworm-tls", "debian-bookworm-min", "busybox", "scratch-go"} {
		if r.Overhead[im] != nil {
			images = append(images, im)
		}
	}
	names := []string{"plain", "fast", "command", "upstream"}
	const bw = 12 * vg.Millimeter / 2
	for i, name := range names {
		vals := make(plotter.Values, len(images))
		for j, im := range images {
			if c := r.Overhead[im][name]; c != nil && c.Sample.N() > 0 {
				vals[j] = msf(c.Sample.Median())
			}
		}
		bars, err := plotter.NewBarChart(vals, bw)
		if err != nil {
			return nil, err
		}
		bars.Color = palette[i]
		bars.LineStyle.Width = 0
		bars.Offset = vg.Length(float64(i)-1.5) * bw
		p.Add(bars)
		p.Legend.Add(name, bars)
	}
	p.Legend.Top = true
	p.NominalX(images...)
	return p, nil
}

func caPlot(r *results) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "debian-bookworm-tls by CAs in the engine dir"
	p.Y.Label.Text = "ms per step (median; whiskers: round min–max)"
	p.Y.Min = 0
	const tls = "debian-bookworm-tls"
	type pt struct {
		label  string
		c      *cell
		colour color.Color
	}
	pts := []pt{{"plain", r.Scaling[tls]["plain"], palette[0]}}
	for _, n := range []int{1, 10, 100, 1000} {
		if c := r.Scaling[tls][specCAs(n).Name]; c != nil {
			pts = append(pts, pt{fmt.Sprintf("%d CA", n), c, palette[1]})
		}
	}
	labels := make([]string, len(pts))
	var errPts plotter.XYs
	var yErr plotter.YErrors
	for i, q := range pts {
		labels[i] = q.label
		vals := make(plotter.Values, len(pts))
		if q.c != nil && q.c.Sample.N() > 0 {
			vals[i] = msf(q.c.Sample.Median())
			lo, hi := q.c.Sample.RoundRange()
			errPts = append(errPts, plotter.XY{X: float64(i), Y: vals[i]})
			yErr = append(yErr, struct{ Low, High float64 }{vals[i] - msf(lo), msf(hi) - vals[i]})
		}
		bars, err := plotter.NewBarChart(vals, 14*vg.Millimeter)
		if err != nil {
			return nil, err
		}
		bars.Color = q.colour
		bars.LineStyle.Width = 0
		p.Add(bars)
	}
	if len(errPts) > 0 {
		eb, err := plotter.NewYErrorBars(struct {
			plotter.XYs
			plotter.YErrors
		}{errPts, yErr})
		if err != nil {
			return nil, err
		}
		p.Add(eb)
	}
	p.NominalX(labels...)
	return p, nil
}

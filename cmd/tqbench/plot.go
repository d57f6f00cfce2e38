package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/turboquant-go/tq/validate"
)

// savePNG renders plots tiled in rows × cols into a PNG of the given size.
func savePNG(file string, plots [][]*plot.Plot, w, h vg.Length) error {
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(96))
	dc := draw.New(img)
	t := draw.Tiles{Rows: len(plots), Cols: len(plots[0]), PadX: vg.Millimeter * 2, PadY: vg.Millimeter * 2,
		PadTop: vg.Millimeter, PadBottom: vg.Millimeter, PadLeft: vg.Millimeter, PadRight: vg.Millimeter}
	canvases := plot.Align(plots, t, dc)
	for i := range plots {
		for j := range plots[i] {
			if plots[i][j] != nil {
				plots[i][j].Draw(canvases[i][j])
			}
		}
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	png := vgimg.PngCanvas{Canvas: img}
	if _, err := png.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// plotFidelity plots 1 − attention cosine against bits per value, one
// labelled point per (workload, tokens, preset) row; fp32 and fp16 rows
// with no error are left out of the log axis.
func plotFidelity(file, title string, rows []validate.Fidelity) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "bits per stored value (norms included)"
	p.Y.Label.Text = "1 − attention-probability cosine (log)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	groups := map[string]*plotter.XYLabels{}
	var names []string
	for _, r := range rows {
		e := 1 - r.AttnCosine
		if e <= 1e-12 || r.BitsPerValue >= 16 {
			continue
		}
		key := fmt.Sprintf("%s, %d tokens", r.Workload, r.Tokens)
		if r.Workload == "real" {
			key = fmt.Sprintf("real layer %d", r.Layer)
		}
		if r.Center {
			key += ", centred"
		}
		g := groups[key]
		if g == nil {
			g = &plotter.XYLabels{}
			groups[key] = g
			names = append(names, key)
		}
		g.XYs = append(g.XYs, plotter.XY{X: r.BitsPerValue, Y: e})
		g.Labels = append(g.Labels, r.Preset)
	}
	sort.Strings(names)
	for i, name := range names {
		g := groups[name]
		s, err := plotter.NewScatter(g.XYs)
		if err != nil {
			return err
		}
		s.GlyphStyle.Color = plotutil.Color(i)
		s.GlyphStyle.Shape = plotutil.Shape(i)
		s.GlyphStyle.Radius = vg.Points(3)
		l, err := plotter.NewLabels(g)
		if err != nil {
			return err
		}
		for j := range l.TextStyle {
			l.TextStyle[j].Font.Size = vg.Points(7)
			l.TextStyle[j].Color = plotutil.Color(i)
		}
		l.Offset = vg.Point{X: vg.Points(4), Y: vg.Points(2)}
		p.Add(s, l)
		p.Legend.Add(name, s)
	}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	return savePNG(file, [][]*plot.Plot{{p}}, 7*vg.Inch, 4.5*vg.Inch)
}

// plotSpeed plots the decode-step time of each preset against the context
// length (both log scales).
func plotSpeed(file string, rows []benchRow, layers int) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Decode step (1 query token, 1 layer measured, ×%d layers shown)", layers)
	p.X.Label.Text = "context tokens"
	p.Y.Label.Text = "ms per token, whole model (log)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	var order []string
	series := map[string]plotter.XYs{}
	for _, r := range rows {
		if r.NsPerStep == 0 {
			continue
		}
		if _, ok := series[r.Preset]; !ok {
			order = append(order, r.Preset)
		}
		series[r.Preset] = append(series[r.Preset], plotter.XY{X: float64(r.Tokens), Y: r.ModelMsPerStep})
	}
	for i, name := range order {
		xy := series[name]
		sort.Slice(xy, func(a, b int) bool { return xy[a].X < xy[b].X })
		l, pts, err := plotter.NewLinePoints(xy)
		if err != nil {
			return err
		}
		l.Color, pts.Color = plotutil.Color(i), plotutil.Color(i)
		pts.Shape = plotutil.Shape(i)
		if name == "fp16" || name == "fp32" {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
			l.Width = vg.Points(2)
		}
		p.Add(l, pts)
		p.Legend.Add(name, l, pts)
	}
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	return savePNG(file, [][]*plot.Plot{{p}}, 7*vg.Inch, 4.5*vg.Inch)
}

// niahGrid is one preset's NIAH cells as a heat-map grid: columns are
// lengths, rows depths; Z is 2 (pass), 1 (needle on top, output off) or 0.
type niahGrid struct {
	lengths []int
	depths  []float64
	z       [][]float64 // [depth][length]
}

func (g niahGrid) Dims() (c, r int)   { return len(g.lengths), len(g.depths) }
func (g niahGrid) Z(c, r int) float64 { return g.z[r][c] }
func (g niahGrid) X(c int) float64    { return float64(c) }
func (g niahGrid) Y(r int) float64    { return float64(r) }

type niahPalette struct{}

func (niahPalette) Colors() []color.Color {
	return []color.Color{
		color.RGBA{R: 0xd7, G: 0x30, B: 0x27, A: 0xff}, // needle lost
		color.RGBA{R: 0xfd, G: 0xae, B: 0x61, A: 0xff}, // on top, output off
		color.RGBA{R: 0x1a, G: 0x98, B: 0x50, A: 0xff}, // pass
	}
}

type indexTicks []string

func (t indexTicks) Ticks(min, max float64) []plot.Tick {
	var out []plot.Tick
	for i, s := range t {
		out = append(out, plot.Tick{Value: float64(i), Label: s})
	}
	return out
}

func kTokens(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%dK", n/1024)
	}
	return fmt.Sprint(n)
}

// plotNIAH draws one depth × length heat map per preset, three per row.
func plotNIAH(file string, names []string, results []validate.NIAHResult) error {
	const cols = 3
	var plots [][]*plot.Plot
	for i, res := range results {
		g := niahGrid{}
		li, di := map[int]int{}, map[float64]int{}
		for _, c := range res.Cells {
			if _, ok := li[c.Tokens]; !ok {
				li[c.Tokens] = len(g.lengths)
				g.lengths = append(g.lengths, c.Tokens)
			}
			if _, ok := di[c.Depth]; !ok {
				di[c.Depth] = len(g.depths)
				g.depths = append(g.depths, c.Depth)
			}
		}
		g.z = make([][]float64, len(g.depths))
		for r := range g.z {
			g.z[r] = make([]float64, len(g.lengths))
		}
		for _, c := range res.Cells {
			v := 0.0
			if c.Retrieved {
				v = 1
			}
			if c.Pass {
				v = 2
			}
			g.z[di[c.Depth]][li[c.Tokens]] = v
		}
		h := plotter.NewHeatMap(g, niahPalette{})
		h.Min, h.Max = 0, 2
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s: pass %.0f%%, needle on top %.0f%%", names[i], 100*res.PassRate, 100*res.RetrievalRate)
		p.Add(h)
		var xl, yl indexTicks
		for _, L := range g.lengths {
			xl = append(xl, kTokens(L))
		}
		for _, d := range g.depths {
			yl = append(yl, fmt.Sprintf("%.0f%%", 100*d))
		}
		p.X.Tick.Marker, p.Y.Tick.Marker = xl, yl
		p.X.Label.Text, p.Y.Label.Text = "context", "depth"
		p.X.Min, p.X.Max = -0.5, float64(len(g.lengths))-0.5
		p.Y.Min, p.Y.Max = -0.5, float64(len(g.depths))-0.5
		if i%cols == 0 {
			plots = append(plots, make([]*plot.Plot, cols))
		}
		plots[len(plots)-1][i%cols] = p
	}
	if len(plots) == 0 {
		return fmt.Errorf("no NIAH results to plot")
	}
	rows := len(plots)
	return savePNG(file, plots, 10*vg.Inch, vg.Length(math.Max(2.8, 2.8*float64(rows)))*vg.Inch)
}

package main

import (
	"fmt"
	"image/color"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// plotRecall draws recall@1@k against k (log2 axis), one panel per metric,
// one line per (method, bits).
func plotRecall(path string, rows []annRow, ks []int) error {
	var metrics []string
	seen := map[string]bool{}
	for _, r := range rows {
		if !seen[r.Metric] {
			seen[r.Metric] = true
			metrics = append(metrics, r.Metric)
		}
	}
	const panelW, h = 6 * vg.Inch, 5 * vg.Inch
	var panels []*plot.Plot
	for _, m := range metrics {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s, %s: recall@1@k", rows[0].Dataset, m)
		p.X.Label.Text = "k"
		p.Y.Label.Text = "recall@1@k"
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.ConstantTicks(kTicks(ks))
		p.Y.Min, p.Y.Max = 0, 1
		p.Add(plotter.NewGrid())
		p.Legend.Top = false
		p.Legend.Left = false
		n := 0
		for _, r := range rows {
			if r.Metric != m {
				continue
			}
			var pts plotter.XYs
			keys := make([]int, 0, len(r.RecallAt1))
			for k := range r.RecallAt1 {
				keys = append(keys, k)
			}
			sort.Ints(keys)
			for _, k := range keys {
				pts = append(pts, plotter.XY{X: float64(k), Y: r.RecallAt1[k]})
			}
			l, s, err := plotter.NewLinePoints(pts)
			if err != nil {
				return err
			}
			c := palette[n%len(palette)]
			l.Color, s.Color = c, c
			s.Shape = shapes[int(math.Round(r.Bits))%len(shapes)]
			if !isTQ(r.Method) {
				l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			}
			p.Add(l, s)
			p.Legend.Add(fmt.Sprintf("%s %gb (%d B)", r.Method, r.Bits, r.BytesPerVec), l, s)
			n++
		}
		panels = append(panels, p)
	}
	return savePNG(path, [][]*plot.Plot{panels}, panelW*vg.Length(len(metrics)), h)
}

func isTQ(method string) bool {
	switch method {
	case "mse", "mse-norm", "prod", "polar":
		return true
	}
	return false
}

func kTicks(ks []int) []plot.Tick {
	var t []plot.Tick
	for _, k := range ks {
		t = append(t, plot.Tick{Value: float64(k), Label: fmt.Sprint(k)})
	}
	return t
}

var palette = []color.Color{
	color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255}, color.RGBA{44, 160, 44, 255},
	color.RGBA{214, 39, 40, 255}, color.RGBA{148, 103, 189, 255}, color.RGBA{140, 86, 75, 255},
	color.RGBA{227, 119, 194, 255}, color.RGBA{127, 127, 127, 255}, color.RGBA{188, 189, 34, 255},
	color.RGBA{23, 190, 207, 255}, color.RGBA{0, 0, 0, 255}, color.RGBA{100, 50, 0, 255},
}

var shapes = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{},
	draw.RingGlyph{}, draw.SquareGlyph{}, draw.PlusGlyph{}, draw.CrossGlyph{},
}

package main

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"

	"github.com/turboquant-go/tq/lloydmax"
)

type codebookRow struct {
	Dim        int       `json:"dim"`
	Bits       int       `json:"bits"`
	Density    string    `json:"density"`
	Centroids  []float64 `json:"centroids"`
	Boundaries []float64 `json:"boundaries"`
	MSEUnit    float64   `json:"mse_unit"` // d × per-coordinate distortion
}

func parseDensity(s string) (lloydmax.Family, error) {
	switch s {
	case "beta":
		return lloydmax.FamilyBeta, nil
	case "gaussian":
		return lloydmax.FamilyGaussian, nil
	}
	return 0, fmt.Errorf("unknown density %q (want beta or gaussian)", s)
}

func codebooks(dim int, bits []int, density string) ([]codebookRow, error) {
	fam, err := parseDensity(density)
	if err != nil {
		return nil, err
	}
	var rows []codebookRow
	for _, b := range bits {
		cb, err := lloydmax.Get(fam, dim, b)
		if err != nil {
			return nil, err
		}
		rows = append(rows, codebookRow{
			Dim: dim, Bits: b, Density: density,
			Centroids: cb.Centroids, Boundaries: cb.Boundaries,
			MSEUnit: float64(dim) * cb.Distortion,
		})
	}
	return rows, nil
}

func runCodebook(args []string, stdout io.Writer) error {
	fs := newFlags("codebook")
	dim := fs.Int("dim", 128, "vector dimension")
	bitsFlag := fs.String("bits", "1,2,3,4", "comma-separated bit widths (1–8)")
	density := fs.String("density", "beta", "beta (exact coordinate density) or gaussian (N(0,1/d))")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	bits, err := intList(*bitsFlag)
	if err != nil {
		return err
	}
	rows, err := codebooks(*dim, bits, *density)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "bits\tmse_unit\tpaper bounds [4^-b, √3π/2·4^-b]\tpositive centroids × √d\t\n")
	for _, r := range rows {
		lo, hi := math.Pow(4, -float64(r.Bits)), math.Sqrt(3)*math.Pi/2*math.Pow(4, -float64(r.Bits))
		fmt.Fprintf(tw, "%d\t%.6f\t[%.6f, %.6f]\t%s\t\n", r.Bits, r.MSEUnit, lo, hi, scaledHalf(r.Centroids, r.Dim))
	}
	fmt.Fprintf(tw, "\n")
	return tw.Flush()
}

// scaledHalf formats the positive half of a symmetric codebook, scaled by √d
// (at most 8 values, then an ellipsis).
func scaledHalf(c []float64, dim int) string {
	s := ""
	half := c[len(c)/2:]
	for i, v := range half {
		if i == 8 {
			return s + " …"
		}
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%.5f", v*math.Sqrt(float64(dim)))
	}
	return s
}

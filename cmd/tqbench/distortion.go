package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/turboquant-go/tq/turboquant"
	"github.com/turboquant-go/tq/validate"
)

func distortions(dim int, bits []int, method turboquant.Method, n int, seed uint64) ([]validate.Distortion, error) {
	if method == turboquant.Polar {
		bits = []int{0} // fixed 3.875 bits per coordinate
	}
	var rows []validate.Distortion
	for _, b := range bits {
		q, err := turboquant.New(turboquant.Config{Dim: dim, Bits: b, Method: method, Seed: seed, Norm: turboquant.FP32})
		if err != nil {
			return nil, err
		}
		r, err := validate.MeasureDistortion(q, n, seed)
		if err != nil {
			return nil, err
		}
		// Report the stored size with the default fp16 norm, as a user stores it.
		q16, err := turboquant.New(turboquant.Config{Dim: dim, Bits: b, Method: method})
		if err != nil {
			return nil, err
		}
		r.BytesPerVector = q16.CodeSize()
		rows = append(rows, r)
	}
	return rows, nil
}

func runDistortion(args []string, stdout io.Writer) error {
	fs := newFlags("distortion")
	dim := fs.Int("dim", 128, "vector dimension")
	bitsFlag := fs.String("bits", "1,2,3,4", "comma-separated bit widths (ignored for polar)")
	methodFlag := fs.String("method", "mse", "mse, prod or polar")
	n := fs.Int("n", 10000, "number of random unit vectors")
	seed := fs.Uint64("seed", 1, "random seed")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	bits, err := intList(*bitsFlag)
	if err != nil {
		return err
	}
	method, err := turboquant.ParseMethod(*methodFlag)
	if err != nil {
		return err
	}
	rows, err := distortions(*dim, bits, method, *n, *seed)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rows)
	}
	return printDistortions(stdout, rows)
}

func printDistortions(w io.Writer, rows []validate.Distortion) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "method\tbits\tdim\tn\tmse\tip_shrink\tip_bias\tip_var_d\tbytes_per_vector\t\n")
	for _, r := range rows {
		bits := fmt.Sprint(r.Bits)
		if r.Method == "polar" {
			bits = "3.875"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.5f\t%.5f\t%+.1e\t%.4f\t%d\t\n",
			r.Method, bits, r.Dim, r.N, r.MSE, r.IPShrink, r.IPBias, r.IPVarD, r.BytesPerVector)
	}
	return tw.Flush()
}

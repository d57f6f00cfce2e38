package main

import (
	"fmt"
	"io"
	"time"

	"github.com/turboquant-go/tq/turboquant"
	"github.com/turboquant-go/tq/validate"
)

// runReport is the default job: codebooks and Monte Carlo distortion at
// d = 128 for every method, next to the paper's numbers, and KV-cache
// fidelity on the embedded real K/V.
func runReport(stdout, stderr io.Writer) error {
	const dim, n, seed = 128, 10000, 1
	start := time.Now()
	fmt.Fprintf(stdout, "TurboQuant at d=%d (Monte Carlo over %d random unit vectors, seed %d)\n\n", dim, n, seed)
	fmt.Fprintf(stdout, "Lloyd–Max codebooks, exact Beta(d) density:\n")
	if err := runCodebook([]string{"-dim", fmt.Sprint(dim), "-bits", "1,2,3,4,5,6,7,8"}, stdout); err != nil {
		return err
	}
	var rows []validate.Distortion
	for _, m := range []turboquant.Method{turboquant.MSE, turboquant.Prod, turboquant.Polar} {
		fmt.Fprintf(stderr, "measuring %s …\n", m)
		r, err := distortions(dim, []int{1, 2, 3, 4}, m, n, seed)
		if err != nil {
			return err
		}
		rows = append(rows, r...)
	}
	fmt.Fprintf(stdout, "Distortion (paper at d=128: D_mse 0.3609 0.1160 0.0340 0.0093; E<x,x~> 0.63786 0.88527 0.96727 0.99127;\n"+
		"d·D_prod 1.563 0.564 0.181 0.053; fp16 is %d bytes per vector):\n", 2*dim)
	if err := printDistortions(stdout, rows); err != nil {
		return err
	}

	fmt.Fprintf(stderr, "measuring real K/V …\n")
	kv, err := validate.LoadEmbeddedRealKV()
	if err != nil {
		return err
	}
	fid, err := realKVRows(kv, []string{"fp16", "k8v4", "tq4", "tq3", "tq2"}, []bool{false, true}, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nKV cache on real keys/values/queries (Universal Sentence Encoder lite over KJV text, %d tokens per layer;\n"+
		"every token compressed; attention rows compared with exact float64 attention):\n", kv.Tokens(kv.LayerIndices()[0]))
	if err := printRealKV(stdout, fid); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n(%.1fs)\n", time.Since(start).Seconds())
	return nil
}

package turboquant_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	. "github.com/turboquant-go/tq/turboquant"
	"github.com/turboquant-go/tq/validate"
)

// mseStats returns E‖x−x̃‖² and E⟨x,x̃⟩ over n random unit vectors.
func mseStats(t *testing.T, q *Quantizer, n int, seed uint64) (mse, shrink float64) {
	r, err := validate.MeasureDistortion(q, n, seed)
	require.NoError(t, err)
	return r.MSE, r.IPShrink
}

// prodStats returns the mean and d·variance of the inner-product error of
// scored codes over n independent pairs of random unit vectors.
func prodStats(t *testing.T, q *Quantizer, n int, seed uint64) (bias, varD float64) {
	r, err := validate.MeasureDistortion(q, n, seed)
	require.NoError(t, err)
	return r.IPBias, r.IPVarD
}

// meanVar returns the sample mean and variance.
func meanVar(x []float64) (mean, variance float64) {
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	for _, v := range x {
		variance += (v - mean) * (v - mean)
	}
	return mean, variance / float64(len(x)-1)
}

func mustNew(t interface{ Fatalf(string, ...any) }, cfg Config) *Quantizer {
	q, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return q
}

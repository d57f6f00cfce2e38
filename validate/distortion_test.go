package validate

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/turboquant-go/tq/turboquant"
)

func TestUnitVectors(t *testing.T) {
	xs := UnitVectors(50, 33, 4)
	for i := range 50 {
		assert.InDelta(t, 1, Dot(xs[i*33:(i+1)*33], xs[i*33:(i+1)*33]), 1e-6)
	}
	assert.Equal(t, xs, UnitVectors(50, 33, 4), "deterministic in the seed")
	assert.NotEqual(t, xs, UnitVectors(50, 33, 5))
}

func TestMeasureDistortion(t *testing.T) {
	q, err := turboquant.New(turboquant.Config{Dim: 64, Bits: 2, Method: turboquant.MSE, Norm: turboquant.FP32})
	require.NoError(t, err)
	r, err := MeasureDistortion(q, 3000, 1)
	require.NoError(t, err)
	lo, hi := MSEBounds(2)
	assert.True(t, lo <= r.MSE && r.MSE <= hi, "D_mse %g outside [%g, %g]", r.MSE, lo, hi)
	// Lloyd–Max: E⟨x, x̃⟩ = 1 − D_mse; for independent y the MSE code's
	// error variance is about D_mse (d·Var = d·E⟨y, x−x̃⟩² ≈ D_mse).
	assert.InDelta(t, 1-r.MSE, r.IPShrink, 3e-3)
	assert.InEpsilon(t, r.MSE, r.IPVarD, 0.1)
	assert.Less(t, math.Abs(r.IPBias), 4*math.Sqrt(r.IPVarD/64/3000))
	assert.Equal(t, 4+16, r.BytesPerVector) // fp32 norm + 64 two-bit indices
	assert.Equal(t, "mse", r.Method)

	_, err = MeasureDistortion(q, 1, 1)
	assert.Error(t, err)
}

func TestMSEBounds(t *testing.T) {
	lo, hi := MSEBounds(3)
	assert.Equal(t, 1.0/64, lo)
	assert.InDelta(t, math.Sqrt(3)*math.Pi/2/64, hi, 1e-15)
}

func TestProdBounds(t *testing.T) {
	lo, hi := ProdBounds(2)
	assert.Equal(t, 1.0/16, lo)
	assert.InDelta(t, math.Sqrt(3)*math.Pi*math.Pi/16, hi, 1e-15)
}

// TestProdWithinPaperBounds measures d·D_prod of the Prod quantizer on
// random unit vectors and checks it against the paper's bounds at 1–4 bits.
func TestProdWithinPaperBounds(t *testing.T) {
	for bits := 1; bits <= 4; bits++ {
		q, err := turboquant.New(turboquant.Config{Dim: 128, Bits: bits, Method: turboquant.Prod, Norm: turboquant.FP32})
		require.NoError(t, err)
		r, err := MeasureDistortion(q, 4000, uint64(bits))
		require.NoError(t, err)
		lo, hi := ProdBounds(bits)
		assert.True(t, lo <= r.IPVarD && r.IPVarD <= hi, "%d bits: d·D_prod %g outside [%g, %g]", bits, r.IPVarD, lo, hi)
		// Unbiased: the mean error is within 4 standard errors of zero.
		assert.Less(t, math.Abs(r.IPBias), 4*math.Sqrt(r.IPVarD/128/4000), "%d bits: bias", bits)
	}
}

func TestSquaredDistance(t *testing.T) {
	assert.Equal(t, 25.0, SquaredDistance([]float32{0, 0}, []float32{3, 4}))
}

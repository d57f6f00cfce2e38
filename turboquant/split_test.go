package turboquant_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	. "github.com/turboquant-go/tq/turboquant"
)

// TestSplitMixesPrecisionAtOneNorm: a split's distortion is the coordinate
// mix of its two widths' (rotated coordinates are exchangeable), and it
// costs no scalar beyond the one norm.
func TestSplitMixesPrecisionAtOneNorm(t *testing.T) {
	const d = 128
	split := mustNew(t, Config{Dim: d, Bits: 3, Method: MSE, Seed: 1, Split: &Split{Coords: 32, Bits: 4}})
	assert.Equal(t, 2+96*3/8+32*4/8, split.CodeSize())
	assert.InDelta(t, 3.25+16.0/d, split.BitsPerCoord(), 1e-12)
	m3, _ := mseStats(t, mustNew(t, Config{Dim: d, Bits: 3, Method: MSE, Seed: 1}), 4000, 7)
	m4, _ := mseStats(t, mustNew(t, Config{Dim: d, Bits: 4, Method: MSE, Seed: 1}), 4000, 7)
	ms, _ := mseStats(t, split, 4000, 7)
	want := 0.75*m3 + 0.25*m4
	t.Logf("MSE of unit vectors: 3 bits %.5f, 4 bits %.5f, split 96@3+32@4 %.5f (mix %.5f)", m3, m4, ms, want)
	assert.InEpsilon(t, want, ms, 0.05)
}

// TestSplitAtEqualWidthsDecodesAsUnsplit: splitting off coordinates at the
// part's own width changes the layout, not the reconstruction.
func TestSplitAtEqualWidthsDecodesAsUnsplit(t *testing.T) {
	for _, bits := range []int{2, 3, 4, 6} {
		plain := mustNew(t, Config{Dim: 64, Bits: bits, Method: MSE, Seed: 5})
		split := mustNew(t, Config{Dim: 64, Bits: bits, Method: MSE, Seed: 5, Split: &Split{Coords: 24, Bits: bits}})
		cp, cs := make([]byte, plain.CodeSize()), make([]byte, split.CodeSize())
		xp, xs := make([]float32, 64), make([]float32, 64)
		for trial := range 20 {
			x := mixedVector(64, uint64(trial))
			require.NoError(t, plain.Encode(cp, x))
			require.NoError(t, split.Encode(cs, x))
			require.NoError(t, plain.Decode(xp, cp))
			require.NoError(t, split.Decode(xs, cs))
			require.Equal(t, xp, xs, "bits %d, trial %d", bits, trial)
		}
	}
}

func TestSplitRejectsBadConfigs(t *testing.T) {
	for _, cfg := range []Config{
		{Dim: 64, Bits: 3, Method: Prod, Split: &Split{Coords: 8, Bits: 4}},
		{Dim: 64, Bits: 3, Method: MSE, Correction: Unbiased, Split: &Split{Coords: 8, Bits: 4}},
		{Dim: 64, Bits: 3, Method: MSE, Split: &Split{Coords: 8, Bits: 4}, Outliers: &Outliers{Channels: []int{1, 2}, Bits: 4}},
		{Dim: 64, Bits: 3, Method: MSE, Split: &Split{Coords: 0, Bits: 4}},
		{Dim: 64, Bits: 3, Method: MSE, Split: &Split{Coords: 64, Bits: 4}},
		{Dim: 64, Bits: 3, Method: MSE, Split: &Split{Coords: 8, Bits: 9}},
		{Dim: 64, Bits: 3, Method: MSE, Split: &Split{Coords: 8, Bits: 0}},
	} {
		_, err := New(cfg)
		assert.ErrorIs(t, err, ErrConfig, name(cfg))
		_, err = cfg.CodeSize()
		assert.ErrorIs(t, err, ErrConfig, name(cfg))
	}
}

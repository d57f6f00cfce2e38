package turboquant_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/turboquant-go/tq/qjl"
	. "github.com/turboquant-go/tq/turboquant"
)

// TestConfigCodeSizeMatchesNew checks that the arithmetic Config.CodeSize
// and the Quantizer agree, and that Parts tiles the code.
func TestConfigCodeSizeMatchesNew(t *testing.T) {
	cfgs := configs()
	for _, d := range []int{16, 64, 100, 128} {
		for b := 1; b <= 8; b++ {
			cfgs = append(cfgs, Config{Dim: d, Bits: b, Method: MSE}, Config{Dim: d, Bits: b, Method: MSE, Norm: FP32, Correction: Unbiased})
			cfgs = append(cfgs, Config{Dim: d, Bits: b, Method: Prod, Sketch: qjl.Hadamard})
		}
		cfgs = append(cfgs, Config{Dim: d, Bits: 3, Method: MSE, Outliers: &Outliers{Channels: []int{9, 1, 5}, Bits: 5}})
	}
	cfgs = append(cfgs, Config{Dim: 128, Method: Polar}, Config{Dim: 64, Method: Polar, Correction: Renormalize, Norm: FP32})
	for _, cfg := range cfgs {
		q := mustNew(t, cfg)
		n, err := cfg.CodeSize()
		require.NoError(t, err, name(cfg))
		assert.Equal(t, q.CodeSize(), n, name(cfg))
		off := 0
		parts := q.Parts()
		for i, p := range parts {
			if p.SharesRotation { // a split's tail: indices right after the head's, one norm
				prev := parts[i-1]
				assert.Equal(t, prev.Offset, p.Offset, name(cfg))
				assert.Equal(t, prev.NormOffset, p.NormOffset, name(cfg))
				assert.Same(t, prev.Rotation, p.Rotation, name(cfg))
				assert.Equal(t, prev.Size, p.IndexOffset, name(cfg))
				assert.Equal(t, prev.Size+p.Size, p.IndexOffset+p.IndexBytes, name(cfg))
			} else {
				assert.Equal(t, off, p.Offset, name(cfg))
				assert.LessOrEqual(t, p.IndexOffset+p.IndexBytes, p.Size, name(cfg))
			}
			off += p.Size
		}
		assert.Equal(t, q.CodeSize(), off, name(cfg))
	}
	_, err := Config{Dim: 1, Bits: 3, Method: MSE}.CodeSize()
	assert.ErrorIs(t, err, ErrConfig)
}

// TestAccumulateRotatedGroupEqualsSingle checks the group form against
// AccumulateRotated, and its length errors.
func TestAccumulateRotatedGroupEqualsSingle(t *testing.T) {
	for _, cfg := range configs() {
		q := mustNew(t, cfg)
		d := q.Dim()
		code := make([]byte, q.CodeSize())
		require.NoError(t, q.Encode(code, mixedVector(d, 3)))
		ws := []float32{0.5, -2, 3}
		accs := [][]float32{make([]float32, d), make([]float32, d), make([]float32, d)}
		require.NoError(t, q.AccumulateRotatedGroup(accs, ws, code))
		for i, w := range ws {
			want := make([]float32, d)
			require.NoError(t, q.AccumulateRotated(want, w, code))
			assert.InDeltaSlice(t, want, accs[i], 1e-6, name(cfg))
		}
		assert.ErrorIs(t, q.AccumulateRotatedGroup(accs, ws[:2], code), ErrLength)
		assert.ErrorIs(t, q.AccumulateRotatedGroup(accs, ws, code[:1]), ErrLength)
		assert.ErrorIs(t, q.AccumulateRotatedGroup([][]float32{make([]float32, d-1)}, ws[:1], code), ErrLength)
	}
}

package turboquant_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	. "github.com/turboquant-go/tq/turboquant"
)

func TestAccumulateRotatedEqualsWeightedDecodes(t *testing.T) {
	for _, cfg := range configs() {
		q := mustNew(t, cfg)
		d := q.Dim()
		const n = 5
		codes := make([]byte, n*q.CodeSize())
		want := make([]float64, d)
		rec := make([]float32, d)
		acc := make([]float32, d)
		for i := range n {
			code := codes[i*q.CodeSize() : (i+1)*q.CodeSize()]
			require.NoError(t, q.Encode(code, mixedVector(d, uint64(i))))
			require.NoError(t, q.Decode(rec, code))
			w := float32(i+1) / 7
			for j := range want {
				want[j] += float64(w) * float64(rec[j])
			}
			require.NoError(t, q.AccumulateRotated(acc, w, code))
		}
		got := make([]float32, d)
		require.NoError(t, q.FinishRotated(got, acc))
		var scale float64
		for _, v := range want {
			scale = max(scale, abs(v))
		}
		for j := range want {
			assert.InDelta(t, want[j], float64(got[j]), 1e-5*scale+1e-30, "%s coord %d", name(cfg), j)
		}
	}
	q := mustNew(t, Config{Dim: 16, Bits: 2, Method: MSE})
	assert.ErrorIs(t, q.AccumulateRotated(make([]float32, 15), 1, make([]byte, q.CodeSize())), ErrLength)
	assert.ErrorIs(t, q.AccumulateRotated(make([]float32, 16), 1, nil), ErrLength)
	assert.ErrorIs(t, q.FinishRotated(make([]float32, 16), make([]float32, 3)), ErrLength)
}

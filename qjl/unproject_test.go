package qjl

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/turboquant-go/tq/internal/rng"
)

func TestUnprojectIsTheTransposeProduct(t *testing.T) {
	for _, kind := range []Kind{Gaussian, Hadamard} {
		for _, c := range []struct{ dim, rows int }{{1, 1}, {7, 13}, {100, 100}, {128, 128}, {20, 70}} {
			s, err := New(c.dim, c.rows, kind, 5)
			require.NoError(t, err)
			r := rng.New(uint64(c.dim*1000 + c.rows))
			signs := make([]byte, s.CodeBytes())
			for i := range signs {
				signs[i] = byte(r.Uint64())
			}
			if c.rows%8 != 0 { // valid codes have zero padding bits
				signs[len(signs)-1] &= byte(1<<(c.rows%8) - 1)
			}
			m := s.AppendMatrix(nil)
			want := make([]float64, c.dim)
			for i := range c.rows {
				sg := -1.0
				if signs[i/8]>>(i%8)&1 == 1 {
					sg = 1
				}
				for j := range c.dim {
					want[j] += sg * float64(m[i*c.dim+j])
				}
			}
			got := make([]float32, c.dim+1)
			got[c.dim] = 42 // guard
			s.Unproject(got, signs, make([]float32, s.ScratchLen()))
			for j := range c.dim {
				require.InDelta(t, want[j], float64(got[j]), 1e-3, "%v %dx%d coord %d", kind, c.rows, c.dim, j)
			}
			require.Equal(t, float32(42), got[c.dim], "wrote past Dim")
		}
	}
}

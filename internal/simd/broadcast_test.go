package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAxpyCodesBroadcast runs 4-bit AxpyCodes where the broadcast-weight
// kernel takes the rows in fours (more tokens than one weight layout holds,
// row counts that leave a remainder for the per-row kernels, dimensions with
// a generic tail) and checks every accumulator against float64 sums and
// every gap cell between accumulator rows for stray writes.
func TestAxpyCodesBroadcast(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, l := range vectorLevels(t) {
		for _, g := range []int{4, 5, 8} {
			for _, d := range []int{8, 16, 24, 100, 128} {
				for _, n := range []int{1, bcTokens - 1, bcTokens, 2*bcTokens + 3} {
					tab := make([]float32, 16)
					for i := range tab {
						tab[i] = float32(r.NormFloat64())
					}
					cb := NewCodebook(tab, 4)
					stride := 2 + (d*4+7)/8 + r.IntN(3)
					codes := codesWithNorms(r, n, stride, 0)
					ref := make([][]float64, n)
					for tk := range ref {
						ref[tk] = decodedRef(cb, codes[tk*stride:(tk+1)*stride], d)
					}
					as, ws := d+1+r.IntN(3), n+r.IntN(3)
					w := mixed(r, (g-1)*ws+n)
					acc, ok := poisoned((g-1)*as + d)
					base := mixed(r, len(acc))
					for i := range acc {
						if i%as < d {
							acc[i] = base[i]
						}
					}
					with(t, l, func() { AxpyCodes(acc, as, w, ws, g, cb, codes, stride, 2, 0, n, d) })
					ok(t)
					for i, v := range acc {
						row, j := i/as, i%as
						if j >= d {
							if v != guard {
								t.Fatalf("%v g=%d d=%d n=%d: gap cell %d written (%v)", l, g, d, n, i, v)
							}
							continue
						}
						want, scale := float64(base[i]), math.Abs(float64(base[i]))
						for tk := range n {
							p := float64(w[row*ws+tk]) * ref[tk][j]
							want += p
							scale += math.Abs(p)
						}
						if !closeTo(v, float32(want), float32(scale), 2e-6) {
							t.Fatalf("%v g=%d d=%d n=%d: acc[%d][%d] = %v, want %v", l, g, d, n, row, j, v, want)
						}
					}
				}
			}
		}
	}
}

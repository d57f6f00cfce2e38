package simd

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestAxpyCodesBroadcast runs AxpyCodes where the laid-out-weight kernels
// take the rows in fours (more tokens than one weight layout holds, row
// counts that leave a remainder for the per-row kernels, dimensions with a
// generic tail) and checks every accumulator against float64 sums and every
// gap cell between accumulator rows for stray writes. The result must also
// be bit-identical to the per-row kernels', which form the same products in
// the same order.
func TestAxpyCodesBroadcast(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, l := range vectorLevels(t) {
		for _, g := range []int{4, 5, 8} {
			for _, d := range []int{8, 16, 24, 100, 128} {
				for _, n := range []int{1, bcTokens - 1, bcTokens, 2*bcTokens + 3} {
					bits := 1 + r.IntN(4)
					tab := make([]float32, 1<<bits)
					for i := range tab {
						tab[i] = float32(r.NormFloat64())
					}
					cb := NewCodebook(tab, bits)
					stride := 2 + (d*bits+7)/8 + r.IntN(3)
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
					perRow := slices.Clone(acc)
					with(t, l, func() { AxpyCodes(acc, as, w, ws, g, cb, codes, stride, 2, 0, n, d, nil) })
					ok(t)
					if k := impls[l]; k.plainWeights {
						k.plainWeights = false
						with(t, l, func() { AxpyCodes(perRow, as, w, ws, g, cb, codes, stride, 2, 0, n, d, nil) })
						k.plainWeights = true
						for i := range acc {
							if math.Float32bits(acc[i]) != math.Float32bits(perRow[i]) {
								t.Fatalf("%v bits=%d g=%d d=%d n=%d: cell %d is %v, the per-row kernels' %v", l, bits, g, d, n, i, acc[i], perRow[i])
							}
						}
					}
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
							t.Fatalf("%v bits=%d g=%d d=%d n=%d: acc[%d][%d] = %v, want %v", l, bits, g, d, n, row, j, v, want)
						}
					}
				}
			}
		}
	}
}

//go:build !purego && !noasm

package simd

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/cpuid/v2"
)

// TestAxpyCodesWnZmmIsAVX2 requires the 16-lane laid-out-weight kernels
// (with the 8-lane kernel on a last group of 8) to give every accumulator
// the 8-lane kernels' bits, for every width and for dimensions that take
// the 64-coordinate passes, the 16-coordinate ones and the tail of 8.
func TestAxpyCodesWnZmmIsAVX2(t *testing.T) {
	if !cpuid.CPU.Supports(cpuid.AVX2, cpuid.FMA3, cpuid.F16C, cpuid.AVX512F) {
		t.Skip("no AVX-512F on this CPU: only the 8-lane laid-out-weight kernels run")
	}
	r := rand.New(rand.NewPCG(23, 24))
	for bits := 1; bits <= 4; bits++ {
		for _, d := range []int{16, 24, 64, 72, 80, 128, 136, 200} {
			for _, n := range []int{1, 7, bcTokens} {
				tab := make([]float32, 1<<bits)
				for i := range tab {
					tab[i] = float32(r.NormFloat64())
				}
				cb := NewCodebook(tab, bits)
				stride := 2 + (d*bits+7)/8 + r.IntN(3)
				codes := append(codesWithNorms(r, n, stride, 0), make([]byte, Slack)...)
				var wn [bcTokens * 4]float32
				w := mixed(r, 4*n)
				plainWeights(&wn, w, n, n, codes, stride, 0)
				as := d + r.IntN(3)
				base := mixed(r, 3*as+d)
				got, want := append([]float32(nil), base...), append([]float32(nil), base...)
				wnZmm = false
				axpyCodesWn(want, as, wn[:4*n], &cb.vec, cb.sh, bits, codes, stride, 2, n, d&^7, nil)
				wnZmm = true
				axpyCodesWn(got, as, wn[:4*n], &cb.vec, cb.sh, bits, codes, stride, 2, n, d&^7, make([]byte, 300))
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("bits=%d d=%d n=%d: acc[%d][%d] = %v, the 8-lane kernel's %v", bits, d, n, i/as, i%as, got[i], want[i])
					}
				}
			}
		}
	}
}

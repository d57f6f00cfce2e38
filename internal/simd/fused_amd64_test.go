//go:build !purego && !noasm

package simd

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/cpuid/v2"
)

// TestAxpyCodesWnZmmIsAVX2 requires the AVX-512 weight layout to give the
// AVX2 one's bits, and the 16-lane laid-out-weight kernels (with the 8-lane
// kernel on a last group of 8) to give every accumulator the 8-lane
// kernels' bits, for every width and for dimensions that take the
// 64-coordinate passes, the 16-coordinate ones and the tail of 8.
func TestAxpyCodesWnZmmIsAVX2(t *testing.T) {
	if !cpuid.CPU.Supports(cpuid.AVX2, cpuid.FMA3, cpuid.F16C, cpuid.AVX512F) {
		t.Skip("no AVX-512F on this CPU: only the 8-lane laid-out-weight kernels run")
	}
	r := rand.New(rand.NewPCG(23, 24))
	for bits := 1; bits <= 4; bits++ {
		for _, d := range []int{16, 24, 64, 72, 80, 128, 136, 200} {
			for _, n := range []int{1, 7, 16, 17, bcTokens} {
				tab := make([]float32, 1<<bits)
				for i := range tab {
					tab[i] = float32(r.NormFloat64())
				}
				cb := NewCodebook(tab, bits)
				stride := 2 + (d*bits+7)/8 + r.IntN(3)
				codes := append(codesWithNorms(r, n, stride, 0), make([]byte, Slack)...)
				var wn, wnAVX2 [bcTokens * 4]float32
				w := mixed(r, 4*n)
				fusedZmm = false
				plainWeights(&wnAVX2, w, n, n, codes, stride, 0)
				fusedZmm = true
				plainWeights(&wn, w, n, n, codes, stride, 0)
				for i := range 4 * n {
					if math.Float32bits(wn[i]) != math.Float32bits(wnAVX2[i]) {
						t.Fatalf("bits=%d d=%d n=%d: laid-out weight %d (token %d, row %d) = %v, the AVX2 kernel's %v", bits, d, n, i, i/4, i%4, wn[i], wnAVX2[i])
					}
				}
				as := d + r.IntN(3)
				base := mixed(r, 3*as+d)
				got, want := append([]float32(nil), base...), append([]float32(nil), base...)
				fusedZmm = false
				axpyCodesWn(want, as, wn[:4*n], &cb.vec, cb.sh, bits, codes, stride, 2, n, d&^7, nil)
				fusedZmm = true
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

// TestDotCodesZmmIsAVX2 requires the sixteen-token four-row key kernels
// to give every score the 8-lane kernels' bits, for every width, for
// dimensions of one group and many, token counts around sixteen, and the
// norm before and after the indices.
func TestDotCodesZmmIsAVX2(t *testing.T) {
	if !cpuid.CPU.Supports(cpuid.AVX2, cpuid.FMA3, cpuid.F16C, cpuid.AVX512F) {
		t.Skip("no AVX-512F on this CPU: only the 8-lane key kernels run")
	}
	r := rand.New(rand.NewPCG(25, 26))
	for bits := 1; bits <= 4; bits++ {
		for _, d := range []int{8, 16, 64, 100, 128, 136} {
			for _, n := range []int{1, 15, 16, 17, 33, 64} {
				for _, normLast := range []bool{false, true} {
					tab := make([]float32, 1<<bits)
					for i := range tab {
						tab[i] = float32(r.NormFloat64())
					}
					cb := NewCodebook(tab, bits)
					idxBytes := (d*bits + 7) / 8
					stride := 2 + idxBytes + r.IntN(3)
					idxOff, normOff := 2, 0
					if normLast {
						idxOff, normOff = 0, stride-2
					}
					codes := append(codesWithNorms(r, n, stride, normOff), make([]byte, Slack)...)[:n*stride]
					const g = 5
					q := mixed(r, g*d)
					os := n + r.IntN(3)
					base := mixed(r, (g-1)*os+n)
					got, want := append([]float32(nil), base...), append([]float32(nil), base...)
					fusedZmm = false
					DotCodes(want, os, q, d, g, cb, codes, stride, idxOff, normOff, n, d, nil)
					fusedZmm = true
					DotCodes(got, os, q, d, g, cb, codes, stride, idxOff, normOff, n, d, make([]byte, 200))
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("bits=%d d=%d n=%d norm last %v: out[%d][%d] = %v, the 8-lane kernel's %v", bits, d, n, normLast, i/os, i%os, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestAxpyCodes1ZmmIsAVX2 requires the one-row fused value kernels' AVX-512
// forms (with the 8-lane kernel on a last group of 8) to give the AVX2
// forms' bits, for every width and dimensions that take the 128-coordinate
// passes, the 16-coordinate ones and the tail of 8.
func TestAxpyCodes1ZmmIsAVX2(t *testing.T) {
	if !cpuid.CPU.Supports(cpuid.AVX2, cpuid.FMA3, cpuid.F16C, cpuid.AVX512F) {
		t.Skip("no AVX-512F on this CPU: only the 8-lane value kernels run")
	}
	r := rand.New(rand.NewPCG(27, 28))
	for bits := 1; bits <= 4; bits++ {
		for _, d := range []int{8, 16, 24, 100, 128, 136, 264} {
			for _, n := range []int{1, 9, 40} {
				tab := make([]float32, 1<<bits)
				for i := range tab {
					tab[i] = float32(r.NormFloat64())
				}
				cb := NewCodebook(tab, bits)
				stride := 2 + (d*bits+7)/8 + r.IntN(3)
				codes := append(codesWithNorms(r, n, stride, 0), make([]byte, Slack)...)[:n*stride]
				const g = 3 // one-row kernels only
				w := mixed(r, g*n)
				as := d + r.IntN(3)
				base := mixed(r, (g-1)*as+d)
				got, want := append([]float32(nil), base...), append([]float32(nil), base...)
				fusedZmm = false
				AxpyCodes(want, as, w, n, g, cb, codes, stride, 2, 0, n, d, nil)
				fusedZmm = true
				AxpyCodes(got, as, w, n, g, cb, codes, stride, 2, 0, n, d, nil)
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("bits=%d d=%d n=%d: acc[%d][%d] = %v, the 8-lane kernel's %v", bits, d, n, i/as, i%as, got[i], want[i])
					}
				}
			}
		}
	}
}

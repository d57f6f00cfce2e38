//go:build !purego && !noasm

package simd

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/cpuid/v2"
)

// avx2Values are the AVX2 integer value kernel sets a CPU without AVX-512
// VBMI may run: 3-bit indices widened by vector shuffles, or by PDEP where
// this CPU has BMI2.
func avx2Values() map[string][2][3]axpyCodes8Kernel {
	sets := map[string][2][3]axpyCodes8Kernel{"shuffles": values8AVX2}
	if cpuid.CPU.Supports(cpuid.BMI2) {
		sets["PDEP"] = values8BMI2
	}
	return sets
}

// withAVX2Values runs f at the AVX2 level with the value kernels vk and the
// AVX2 weight quantizers, as a CPU without AVX-512 VBMI has them, whatever
// this CPU has.
func withAVX2Values(t testing.TB, vk [2][3]axpyCodes8Kernel, f func()) {
	t.Helper()
	if !Available(AVX2) {
		t.Skip("no AVX2 level on this CPU/build")
	}
	k := *impls[AVX2]
	k.axpyCodesQ8, k.weightsQ8, k.weightsQ8Pair, k.weightsQ8Rows = vk, nil, nil, weightsQ8AVX2Rows
	prevK, prevL := active, cur
	active, cur = &k, AVX2
	defer func() { active, cur = prevK, prevL }()
	f()
}

// TestAxpyCodesQ8AVX2IsGeneric requires the AVX2 integer value paths (the
// weight quantizers for 1–4 rows, the 3- and 4-bit value kernels for 1, 2
// and 4 rows, 3-bit indices widened either way) to give the generic twin's
// bits: for pieces of 1–64 tokens and more, rows past four, dimensions of
// one to three passes of 64, the norm first or last, and codes with
// nothing behind them.
func TestAxpyCodesQ8AVX2IsGeneric(t *testing.T) {
	if !cpuid.CPU.Supports(cpuid.AVX2, cpuid.FMA3, cpuid.F16C) {
		t.Skip("no AVX2 on this CPU")
	}
	r := rand.New(rand.NewPCG(31, 32))
	for _, bits := range []int{4, 3} {
		for _, d := range []int{64, 128, 192} {
			for _, n := range []int{1, 2, 3, 4, 5, 7, 31, 63, 64, 65, 130} {
				for _, g := range []int{1, 2, 3, 4, 6, 8} {
					c := newValues8Case(r, bits, d, g, n)
					want := c.run(t, Generic)
					for name, vk := range avx2Values() {
						sameBits(t, fmt.Sprintf("AVX2 integer values (%s) %v: acc", name, c), c.runAVX2Values(t, vk), want)
					}
				}
			}
		}
	}
}

// runAVX2Values is run with the AVX2 integer value kernels vk forced.
func (c values8Case) runAVX2Values(t *testing.T, vk [2][3]axpyCodes8Kernel) []float32 {
	t.Helper()
	got, ok := guarded(c.g * c.d)
	copy(got, c.acc0)
	var buf WeightsQ8
	withAVX2Values(t, vk, func() {
		if !c.cb.ValuesQ8Kernels(c.d) {
			t.Fatalf("bits=%d: no AVX2 integer value kernel", c.bits)
		}
		AxpyCodesQ8(got, c.d, c.w, c.n, c.g, c.cb, c.codes, c.stride, c.idxOff, c.normOff, c.n, c.d, &buf, nil)
	})
	ok(t)
	return got
}

// TestWeightsQ8AVX2IsGeneric compares the AVX2 weight quantizers with the
// generic twin directly: the laid-out int8 weights, each row's maximum and
// sum, and zeros for the rows and tokens past the piece.
func TestWeightsQ8AVX2IsGeneric(t *testing.T) {
	if !cpuid.CPU.Supports(cpuid.AVX2, cpuid.FMA3, cpuid.F16C) {
		t.Skip("no AVX2 on this CPU")
	}
	r := rand.New(rand.NewPCG(33, 34))
	for _, m := range []int{1, 5, 8, 9, 33, 63, 64} {
		for rows := 1; rows <= 4; rows++ {
			c := newValues8Case(r, 4, 64, rows, m)
			var got, want WeightsQ8
			for i := range got.w { // garbage the kernel must overwrite
				got.w[i], want.w[i] = int8(r.IntN(256)-128), 0
			}
			got.amax, got.sums = [4]float32{1, 2, 3, 4}, [4]int32{5, 6, 7, 8}
			want.quantizeGeneric(c.w, m, rows, m, c.codes, c.stride, c.normOff)
			weightsQ8AVX2Rows[rows-1](got.w[:], &got.sums, &got.amax, c.w, m, c.codes, c.stride, c.normOff, m)
			if got.w != want.w || got.amax != want.amax || got.sums != want.sums {
				t.Fatalf("m=%d rows=%d (%v): weights %v, maxima %v, sums %v; the generic twin's %v, %v, %v",
					m, rows, c, got.w, got.amax, got.sums, want.w, want.amax, want.sums)
			}
		}
	}
}

// BenchmarkAxpyCodesAVX2Only times the values of one piece (64 codes of 3
// or 4 bits, d=128, four rows) as a CPU with AVX2 and no AVX-512 runs them:
// the float path (weights × norms laid out, the 8-lane kernels) against the
// integer ones (the AVX2 weight quantizer and value kernels, 3-bit indices
// widened by shuffles or by PDEP); and the
// AVX-512 integer kernels of this CPU, where it has them, for scale.
func BenchmarkAxpyCodesAVX2Only(b *testing.B) {
	if !Available(AVX2) {
		b.Skip("no AVX2 level on this CPU/build")
	}
	restore, _ := Use(AVX2)
	defer restore()
	r := rand.New(rand.NewPCG(97, 98))
	for _, bits := range []int{3, 4} {
		c := newValues8Case(r, bits, 128, 4, 64)
		c.codes = append(c.codes, make([]byte, Slack)...)[:len(c.codes)] // as the cache's blocks: the float kernels take the last code too
		for i := range c.w {
			c.w[i] = float32(r.Float64())
		}
		acc := make([]float32, c.g*c.d)
		var buf WeightsQ8
		report := func(b *testing.B) { b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*c.n), "ns/code") }
		b.Run(fmt.Sprintf("bits=%d/float", bits), func(b *testing.B) {
			zmm := fusedZmm
			fusedZmm = false
			defer func() { fusedZmm = zmm }()
			for b.Loop() {
				AxpyCodes(acc, c.d, c.w, c.n, c.g, c.cb, c.codes, c.stride, c.idxOff, c.normOff, c.n, c.d, nil)
			}
			report(b)
		})
		for name, vk := range avx2Values() {
			if bits == 4 && name != "shuffles" {
				continue // the same kernels
			}
			b.Run(fmt.Sprintf("bits=%d/int8-%s", bits, name), func(b *testing.B) {
				withAVX2Values(b, vk, func() {
					for b.Loop() {
						AxpyCodesQ8(acc, c.d, c.w, c.n, c.g, c.cb, c.codes, c.stride, c.idxOff, c.normOff, c.n, c.d, &buf, nil)
					}
				})
				report(b)
			})
		}
		if hasValues8() {
			b.Run(fmt.Sprintf("bits=%d/int8-avx512", bits), func(b *testing.B) {
				for b.Loop() {
					AxpyCodesQ8(acc, c.d, c.w, c.n, c.g, c.cb, c.codes, c.stride, c.idxOff, c.normOff, c.n, c.d, &buf, nil)
				}
				report(b)
			})
		}
	}
}

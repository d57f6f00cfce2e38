//go:build !purego && !noasm

package simd

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/cpuid/v2"
)

// TestExpSumAVX512SameElements requires the AVX-512 exp to give every
// element the AVX2 kernel's bits (the same operations, sixteen lanes
// instead of eight), across the range, the underflow cut-off and 0; the
// sums differ only by their order.
func TestExpSumAVX512SameElements(t *testing.T) {
	if !cpuid.CPU.Supports(cpuid.AVX2, cpuid.FMA3, cpuid.AVX512F) {
		t.Skip("no AVX-512F on this CPU: only the AVX2 exp runs, checked by TestExpSum")
	}
	r := rand.New(rand.NewPCG(11, 12))
	x := make([]float32, 4096)
	for i := range x {
		x[i] = -float32(r.ExpFloat64() * 30)
	}
	copy(x, []float32{0, -87.33654, math.Nextafter32(-87.33654, 0), math.Nextafter32(-87.33654, -100), -87.4, -103, -200, -1e-30})
	want, got := append([]float32(nil), x...), append([]float32(nil), x...)
	sumWant := expSumAVX2(want, 0)
	sumGot := expSumAVX512(got, 0)
	for i := range x {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("exp(%v): AVX-512 %v, AVX2 %v", x[i], got[i], want[i])
		}
	}
	if math.Abs(float64(sumGot-sumWant)) > 1e-6*float64(sumWant) {
		t.Fatalf("sum %v, AVX2 %v", sumGot, sumWant)
	}
}

// TestMaxAVX512 puts the largest element at each position of the first
// len&^7 (every register, lane and loop of the kernel) for lengths around
// its steps, and checks maxAVX512 against a plain loop, and Max (its
// wrapper, with the tail) against one over all of x.
func TestMaxAVX512(t *testing.T) {
	if !cpuid.CPU.Supports(cpuid.AVX2, cpuid.AVX512F) {
		t.Skip("no AVX-512F on this CPU: Max runs maxAVX2")
	}
	r := rand.New(rand.NewPCG(13, 14))
	for _, n := range []int{8, 9, 15, 16, 17, 24, 31, 63, 64, 65, 72, 80, 127, 128, 136, 200, 263} {
		x := make([]float32, n)
		for p := range n {
			for i := range x {
				x[i] = -float32(r.ExpFloat64()*10) - 1
			}
			x[r.IntN(n)] = float32(math.Inf(-1))
			x[p] = -0.5
			want := float32(math.Inf(-1))
			for _, v := range x[:n&^7] {
				want = max(want, v)
			}
			if got := maxAVX512(x); got != want {
				t.Fatalf("n=%d, largest at %d: maxAVX512 %v, want %v", n, p, got, want)
			}
			if got := Max(x); got != -0.5 {
				t.Fatalf("n=%d, largest at %d: Max %v, want -0.5", n, p, got)
			}
		}
	}
}

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

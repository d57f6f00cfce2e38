package kvcache

import (
	"math"

	"github.com/turboquant-go/tq/internal/simd"
)

// Small vector helpers of the cache's own: validation and float64 sums
// whose fixed order keeps codes and guard decisions platform-independent.

// fp16Limit is the smallest magnitude that does not fit an fp16: values
// below it round to at most 65504.
const fp16Limit = 65504 + 16

// checkFinite returns the index of the first NaN or ±Inf in x, or −1.
func checkFinite(x []float32) int {
	for i, v := range x {
		if math.Float32bits(v)&0x7f800000 == 0x7f800000 { // exponent all ones
			return i
		}
	}
	return -1
}

// norm2 is ‖x‖ accumulated in float64 in simd.SumSquares' fixed order, the
// order the quantizer measures norms in.
func norm2(x []float32) float64 { return math.Sqrt(simd.SumSquares(x)) }

// dot32 is ⟨a, b⟩ accumulated in float64.
func dot32(a, b []float32) float64 {
	b = b[:len(a)]
	var s float64
	for i, v := range a {
		s += float64(float64(v) * float64(b[i]))
	}
	return s
}

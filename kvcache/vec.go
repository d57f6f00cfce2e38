package kvcache

import (
	"math"

	"github.com/turboquant-go/tq/internal/simd"
)

// The cache's own small numeric helpers (the shared ones are in
// internal/vec).

// fp16Limit is the smallest magnitude that does not fit an fp16: values
// below it round to at most 65504.
const fp16Limit = 65504 + 16

// norm2 is ‖x‖ accumulated in float64 in simd.SumSquares' fixed order, the
// order the quantizer measures norms in.
func norm2(x []float32) float64 { return math.Sqrt(simd.SumSquares(x)) }

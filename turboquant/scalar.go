package turboquant

import (
	"encoding/binary"
	"github.com/turboquant-go/tq/internal/simd"
	"math"

	"github.com/turboquant-go/tq/internal/half"
)

const fp16Max = 65504

// putScalar stores v at the given precision, little-endian.
func putScalar(dst []byte, v float32, p Precision) {
	if p == FP32 {
		binary.LittleEndian.PutUint32(dst, math.Float32bits(v))
		return
	}
	binary.LittleEndian.PutUint16(dst, half.FromFloat32(v))
}

// getScalar reads a value stored by putScalar.
func getScalar(src []byte, p Precision) float32 {
	if p == FP32 {
		return math.Float32frombits(binary.LittleEndian.Uint32(src))
	}
	return half.ToFloat32(binary.LittleEndian.Uint16(src))
}

// fits reports whether v survives storage at precision p without overflow.
func fits(v float64, p Precision) bool {
	if p == FP32 {
		return v <= math.MaxFloat32
	}
	// Values up to the fp16 rounding midpoint above 65504 round down to 65504.
	return v < fp16Max+16
}

// norm2 is ‖x‖ accumulated in float64, so it is accurate for any dim.
func norm2(x []float32) float64 { return math.Sqrt(sumSquares(x)) }

// sumSquares is ‖x‖² accumulated in float64. Squares of finite float32
// values cannot overflow float64, so the sum is finite exactly when every
// component is: one pass both validates and measures the input. The
// summation order is fixed (see simd.SumSquares), so the norm, and every
// code derived from it, is the same on every platform and kernel level.
func sumSquares(x []float32) float64 { return simd.SumSquares(x) }

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// scale multiplies x by s in place.
func scale(x []float32, s float32) {
	for i := range x {
		x[i] *= s
	}
}

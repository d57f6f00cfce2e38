package turboquant

import (
	"encoding/binary"
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

// checkFinite returns the index of the first NaN or ±Inf in x, or −1.
func checkFinite(x []float32) int {
	for i, v := range x {
		if math.Float32bits(v)&0x7f800000 == 0x7f800000 { // exponent all ones
			return i
		}
	}
	return -1
}

// norm2 is ‖x‖ accumulated in float64, so it is accurate for any dim.
func norm2(x []float32) float64 { return math.Sqrt(sumSquares(x)) }

// sumSquares is ‖x‖² accumulated in float64. Squares of finite float32
// values cannot overflow float64, so the sum is finite exactly when every
// component is: one pass both validates and measures the input.
func sumSquares(x []float32) float64 {
	var s0, s1 float64
	n := len(x) &^ 1
	for i := 0; i < n; i += 2 {
		a, b := float64(x[i]), float64(x[i+1])
		// The explicit conversions forbid fused multiply-adds, so the norm
		// (and every code derived from it) is the same on amd64 and arm64.
		s0 += float64(a * a)
		s1 += float64(b * b)
	}
	if n < len(x) {
		a := float64(x[n])
		s0 += float64(a * a)
	}
	return s0 + s1
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// dot32 is ⟨a, b⟩ accumulated in float64.
func dot32(a, b []float32) float64 {
	b = b[:len(a)]
	var s float64
	for i, v := range a {
		s += float64(float64(v) * float64(b[i]))
	}
	return s
}

// scale multiplies x by s in place.
func scale(x []float32, s float32) {
	for i := range x {
		x[i] *= s
	}
}

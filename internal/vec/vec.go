package vec

import "math"

// NonFinite returns the index of the first NaN or ±Inf in x, or −1.
func NonFinite(x []float32) int {
	for i, v := range x {
		if math.Float32bits(v)&0x7f800000 == 0x7f800000 { // exponent all ones
			return i
		}
	}
	return -1
}

// Dot64 is ⟨a, b⟩ (len(b) ≥ len(a)) accumulated in float64, in index
// order. Each product of two float32 values is exact in float64, and the
// explicit conversion keeps the compiler from fusing it into the add.
func Dot64(a, b []float32) float64 {
	b = b[:len(a)]
	var s float64
	for i, v := range a {
		s += float64(float64(v) * float64(b[i]))
	}
	return s
}

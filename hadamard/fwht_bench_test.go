package hadamard

import (
	"fmt"
	"testing"
)

// naiveFWHT is the textbook radix-2 loop: the reference for the bit-identity
// test and the baseline for BenchmarkFWHT.
func naiveFWHT[F float](x []F) {
	n := len(x)
	for h := 1; h < n; h *= 2 {
		for i := 0; i < n; i += 2 * h {
			for j := i; j < i+h; j++ {
				a, b := x[j], x[j+h]
				x[j], x[j+h] = a+b, a-b
			}
		}
	}
}

// BenchmarkFWHT compares the exported (normalised) FWHT with the radix-2
// loop followed by the same normalising multiply.
func BenchmarkFWHT(b *testing.B) {
	for n := 64; n <= 4096; n *= 2 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i%7) - 3
		}
		k := float32(normScale(n))
		b.Run(fmt.Sprintf("n=%d/fast", n), func(b *testing.B) {
			b.SetBytes(int64(4 * n))
			b.ReportAllocs()
			for b.Loop() {
				FWHT(x)
			}
		})
		b.Run(fmt.Sprintf("n=%d/naive", n), func(b *testing.B) {
			b.SetBytes(int64(4 * n))
			b.ReportAllocs()
			for b.Loop() {
				naiveFWHT(x)
				scale(x, k)
			}
		})
	}
}

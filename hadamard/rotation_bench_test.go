package hadamard

import (
	"fmt"
	"testing"
)

func BenchmarkRotation(b *testing.B) {
	for _, d := range []int{100, 128, 1536, 2048} {
		r, err := NewRotation(d, 1, 2)
		if err != nil {
			b.Fatal(err)
		}
		x := make([]float32, d)
		y := make([]float32, d)
		for i := range x {
			x[i] = float32(i%5) - 2
		}
		b.Run(fmt.Sprintf("Forward/d=%d", d), func(b *testing.B) {
			b.SetBytes(int64(4 * d))
			b.ReportAllocs()
			for b.Loop() {
				r.Forward(y, x)
			}
		})
		b.Run(fmt.Sprintf("Inverse/d=%d", d), func(b *testing.B) {
			b.SetBytes(int64(4 * d))
			b.ReportAllocs()
			for b.Loop() {
				r.Inverse(y, x)
			}
		})
	}
}

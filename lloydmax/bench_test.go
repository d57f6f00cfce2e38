package lloydmax

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func benchInputs(n int, sigma float64) []float32 {
	rnd := rand.New(rand.NewPCG(7, 8))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rnd.NormFloat64() * sigma)
	}
	return x
}

// BenchmarkQuantize measures one value at a time (ns/op is per value) on
// Gaussian inputs, against the brute-force nearest-centroid baseline.
func BenchmarkQuantize(b *testing.B) {
	const d = 128
	x := benchInputs(4096, 1/11.3)
	for bits := 1; bits <= 8; bits++ {
		cb := mustGet(b, FamilyBeta, d, bits)
		b.Run(fmt.Sprintf("b=%d", bits), func(b *testing.B) {
			var sink uint8
			i := 0
			for b.Loop() {
				sink += cb.Quantize(x[i&4095])
				i++
			}
			_ = sink
		})
		b.Run(fmt.Sprintf("b=%d/argmin", bits), func(b *testing.B) {
			var sink int
			i := 0
			c := cb.Centroids32
			for b.Loop() {
				v := x[i&4095]
				best, bi := float32(3e38), 0
				for j, cj := range c {
					dd := v - cj
					if dd < 0 {
						dd = -dd
					}
					if dd < best {
						best, bi = dd, j
					}
				}
				sink += bi
				i++
			}
			_ = sink
		})
	}
}

func BenchmarkQuantizeSlice(b *testing.B) {
	x := benchInputs(4096, 1/11.3)
	dst := make([]uint8, len(x))
	for _, bits := range []int{1, 2, 3, 4, 8} {
		cb := mustGet(b, FamilyBeta, 128, bits)
		b.Run(fmt.Sprintf("b=%d", bits), func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				cb.QuantizeSlice(dst, x)
			}
		})
	}
}

// BenchmarkSolve solves for a dimension that is not in the tables.
func BenchmarkSolve(b *testing.B) {
	for _, bits := range []int{4, 8} {
		b.Run(fmt.Sprintf("beta1000/b=%d", bits), func(b *testing.B) {
			for b.Loop() {
				if _, err := Solve(Beta(1000), bits, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("gaussian/b=8", func(b *testing.B) {
		for b.Loop() {
			if _, err := Solve(Gaussian(1000), 8, Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

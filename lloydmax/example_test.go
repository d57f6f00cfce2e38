package lloydmax_test

import (
	"fmt"
	"math"

	"github.com/turboquant-go/tq/lloydmax"
)

func ExampleGet() {
	// The 2-bit codebook for coordinates of rotated unit vectors in R^128.
	cb, err := lloydmax.Get(lloydmax.FamilyBeta, 128, 2)
	if err != nil {
		panic(err)
	}
	scaled := make([]float64, len(cb.Centroids))
	for i, c := range cb.Centroids {
		scaled[i] = c * math.Sqrt(128) // in units of σ = 1/√128
	}
	fmt.Printf("%.5f\n", scaled)
	fmt.Printf("d·D = %.6f\n", 128*cb.Distortion)
	i := cb.Quantize(0.1)
	fmt.Println(i, cb.Value(i))
	// Output:
	// [-1.50519 -0.45245 0.45245 1.50519]
	// d·D = 0.116000
	// 3 0.13304152
}

func ExampleSolve() {
	// A caller-supplied density: PolarQuant's level-2 angles, ∝ sin(2ψ) on [0, π/2].
	den := lloydmax.FromFunc(func(psi float64) float64 { return math.Sin(2 * psi) }, 0, math.Pi/2)
	cb, err := lloydmax.Solve(den, 2, lloydmax.Options{})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%.4f\n", cb.Centroids)
	// Output:
	// [0.3098 0.6340 0.9368 1.2610]
}

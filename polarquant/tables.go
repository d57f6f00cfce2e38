package polarquant

import (
	"fmt"
	"math"
	"slices"
)

// tables holds what the hot loops need from the angle codebooks, in the
// form they need it: cos/sin of every centroid (decode and score never call
// trigonometric functions) and tan² of every level-2–4 boundary (encode
// compares squared radii instead of computing angles).
type tables struct {
	cos1, sin1 [16]float32   // level-1 centroids
	cos, sin   [3][4]float32 // levels 2, 3, 4
	tan2       [3][3]float64 // levels 2, 3, 4: tan² of the 3 boundaries

	cent, bound [Levels][]float64 // the codebooks, for reference code in tests
}

// newTables derives the tables from the four codebooks' centroids and
// boundaries. Level 1 must be the uniform 16-cell grid on [0, 2π), because
// Encode finds level-1 cells by reflections that assume it.
func newTables(cent, bound [Levels][]float64) (*tables, error) {
	t := new(tables)
	for l := range cent {
		t.cent[l], t.bound[l] = slices.Clone(cent[l]), slices.Clone(bound[l])
	}
	if len(cent[0]) != 16 || len(bound[0]) != 15 {
		return nil, fmt.Errorf("polarquant: level-1 codebook has %d centroids, want 16", len(cent[0]))
	}
	for k, c := range cent[0] {
		if math.Abs(c-(float64(k)+0.5)*math.Pi/8) > 1e-9 {
			return nil, fmt.Errorf("polarquant: level-1 centroid %d = %v is off the uniform grid", k, c)
		}
		s, co := math.Sincos(c)
		t.cos1[k], t.sin1[k] = float32(co), float32(s)
	}
	// Make opposite grid points exact negatives (they are, up to rounding),
	// so that Query.Reset can fill half its table by negation.
	for k := range 8 {
		t.cos1[k+8], t.sin1[k+8] = -t.cos1[k], -t.sin1[k]
	}
	for k, b := range bound[0] {
		if math.Abs(b-float64(k+1)*math.Pi/8) > 1e-9 {
			return nil, fmt.Errorf("polarquant: level-1 boundary %d = %v is off the uniform grid", k, b)
		}
	}
	for l := 1; l < Levels; l++ {
		if len(cent[l]) != 4 || len(bound[l]) != 3 {
			return nil, fmt.Errorf("polarquant: level-%d codebook has %d centroids, want 4", l+1, len(cent[l]))
		}
		for k, c := range cent[l] {
			s, co := math.Sincos(c)
			t.cos[l-1][k], t.sin[l-1][k] = float32(co), float32(s)
		}
		for k, b := range bound[l] {
			if !(b > 0 && b < math.Pi/2) {
				return nil, fmt.Errorf("polarquant: level-%d boundary %v outside (0, π/2)", l+1, b)
			}
			tb := math.Tan(b)
			t.tan2[l-1][k] = tb * tb
		}
	}
	return t, nil
}

// index returns the level-(l+2) cell of the angle atan2(√hi, √lo), given the
// squared radii lo and hi: ψ > β ⟺ hi > lo·tan²β on [0, π/2]. A zero pair
// maps to cell 0, like atan2(0, 0) = 0.
func (t *tables) index(l int, lo, hi float64) uint8 {
	tb := &t.tan2[l]
	return uint8(b2u(hi > lo*tb[0]) + b2u(hi > lo*tb[1]) + b2u(hi > lo*tb[2]))
}

// angleDensity returns the probability density of a level-ℓ angle of a
// Gaussian (equivalently, randomly rotated) vector: uniform 1/(2π) on
// [0, 2π) at level 1, and sin^m(2ψ)/Z on [0, π/2] at level ℓ ≥ 2 with
// m = 2^(ℓ−1)−1. The level-ℓ angle splits two radii that are each the norm
// of 2^(ℓ−1) Gaussians, so its density is ∝ (cos ψ sin ψ)^m.
// Z = ½∫₀^π sinᵐu du = √π·Γ((m+1)/2) / (2·Γ(m/2+1)).
func angleDensity(level int) func(float64) float64 {
	if level == 1 {
		return func(float64) float64 { return 1 / (2 * math.Pi) }
	}
	m := float64(int(1)<<(level-1) - 1)
	lg1, _ := math.Lgamma((m + 1) / 2)
	lg2, _ := math.Lgamma(m/2 + 1)
	z := math.Sqrt(math.Pi) / 2 * math.Exp(lg1-lg2)
	return func(x float64) float64 { return math.Pow(math.Sin(2*x), m) / z }
}

// angleRange returns the support of the level-ℓ angle.
func angleRange(level int) (lo, hi float64) {
	if level == 1 {
		return 0, 2 * math.Pi
	}
	return 0, math.Pi / 2
}

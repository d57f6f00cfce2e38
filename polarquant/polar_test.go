package polarquant

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/turboquant-go/tq/internal/rng"
)

// gaussian fills x with independent N(0, 1) draws.
func gaussian(src *rng.Source, x []float64) {
	for i := range x {
		x[i] = src.Norm()
	}
}

func newAngles(d int) *[Levels][]float64 {
	var a [Levels][]float64
	for l := range a {
		a[l] = make([]float64, d>>(l+1))
	}
	return &a
}

func TestForwardInverseRoundTrip(t *testing.T) {
	src := rng.New(1)
	for _, d := range []int{16, 64, 128, 1024} {
		y := make([]float64, d)
		back := make([]float64, d)
		radii := make([]float64, d/16)
		angles := newAngles(d)
		for trial := range 20 {
			gaussian(src, y)
			if trial == 0 {
				y[3], y[7] = 0, -0.0 // exact zeros must survive too
			}
			Forward(radii, angles, y)
			Inverse(back, radii, angles)
			for i := range y {
				require.InDelta(t, y[i], back[i], 1e-12, "d=%d i=%d", d, i)
			}
			// Each radius is the norm of its block: the transform is
			// norm-preserving per block, not just invertible.
			for b, r := range radii {
				var s float64
				for _, v := range y[16*b : 16*b+16] {
					s += v * v
				}
				require.InDelta(t, math.Sqrt(s), r, 1e-12)
			}
			for _, a := range angles[0] {
				require.True(t, a >= 0 && a < 2*math.Pi, "level-1 angle %v outside [0, 2π)", a)
			}
			for l := 1; l < Levels; l++ {
				for _, a := range angles[l] {
					require.True(t, a >= 0 && a <= math.Pi/2, "level-%d angle %v outside [0, π/2]", l+1, a)
				}
			}
		}
	}
}

func TestForwardPanicsOnBadShapes(t *testing.T) {
	require.Panics(t, func() { Forward(make([]float64, 1), newAngles(24), make([]float64, 24)) })
	require.Panics(t, func() { Forward(make([]float64, 2), newAngles(32), make([]float64, 16)) })
	require.Panics(t, func() { Inverse(make([]float64, 32), make([]float64, 2), newAngles(16)) })
}

// angleStd is the standard deviation of the level-ℓ angle density
// ∝ sin^(2^(ℓ−1)−1)(2ψ) on [0, π/2], by midpoint quadrature.
func angleStd(level int) float64 {
	const n = 200000
	h := math.Pi / 2 / n
	var z, m1, m2 float64
	for i := range n {
		x := (float64(i) + 0.5) * h
		w := angleDensity(level)(x)
		z += w
		m1 += w * x
		m2 += w * x * x
	}
	m1 /= z
	return math.Sqrt(m2/z - m1*m1)
}

// Published per-level angle standard deviations (design notes §2).
var wantAngleStd = [Levels]float64{0, 0.3418, 0.2476, 0.1763}

func TestAngleDensityStd(t *testing.T) {
	for l := 2; l <= Levels; l++ {
		assert.InDelta(t, wantAngleStd[l-1], angleStd(l), 5e-5, "level %d", l)
	}
}

func TestAngleStatisticsOfGaussianInput(t *testing.T) {
	const d = 128
	n := 4000
	if testing.Short() {
		n = 1000
	}
	src := rng.New(2)
	y := make([]float64, d)
	radii := make([]float64, d/16)
	angles := newAngles(d)
	var sum, sum2 [Levels]float64
	var cnt [Levels]int
	const bins = 32
	var hist [bins]int
	for range n {
		gaussian(src, y)
		Forward(radii, angles, y)
		for l := range angles {
			for _, a := range angles[l] {
				sum[l] += a
				sum2[l] += a * a
				cnt[l]++
			}
		}
		for _, a := range angles[0] {
			hist[int(a/(2*math.Pi)*bins)]++
		}
	}
	for l := 1; l < Levels; l++ {
		m := float64(cnt[l])
		mean := sum[l] / m
		std := math.Sqrt(sum2[l]/m - mean*mean)
		// The angles of one level are independent (disjoint coordinates;
		// angles ignore scale), and these densities have kurtosis < 3, so
		// SE(std) ≤ σ·√(2/(4m)); allow 5 SE. The mean is π/4 by symmetry.
		se := wantAngleStd[l] * math.Sqrt(2/(4*m))
		assert.InDelta(t, wantAngleStd[l], std, 5*se, "level %d std", l+1)
		assert.InDelta(t, math.Pi/4, mean, 5*wantAngleStd[l]/math.Sqrt(m), "level %d mean", l+1)
	}
	// Level 1: uniform on [0, 2π). χ² over 32 bins, 31 degrees of freedom:
	// the 99.99% quantile is about 66.6.
	exp := float64(cnt[0]) / bins
	var chi2 float64
	for _, h := range hist {
		chi2 += (float64(h) - exp) * (float64(h) - exp) / exp
	}
	assert.Less(t, chi2, 66.6, "level-1 angles not uniform: hist %v", hist)
}

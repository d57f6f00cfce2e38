package polarquant

import (
	"math"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/turboquant-go/tq/internal/rng"
)

func TestAngleCodebookLevel1IsUniformGrid(t *testing.T) {
	cb := AngleCodebook(1)
	require.Equal(t, 4, cb.Bits)
	require.Len(t, cb.Centroids, 16)
	for k, c := range cb.Centroids {
		assert.InDelta(t, (float64(k)+0.5)*math.Pi/8, c, 1e-12, "centroid %d", k)
	}
	for k, b := range cb.Boundaries {
		assert.InDelta(t, float64(k+1)*math.Pi/8, b, 1e-12, "boundary %d", k)
	}
	// Uniform cells of width π/8: distortion (π/8)²/12.
	assert.InDelta(t, math.Pi*math.Pi/64/12, cb.Distortion, 1e-12)
}

func TestAngleCodebooksSymmetric(t *testing.T) {
	for l := 2; l <= Levels; l++ {
		cb := AngleCodebook(l)
		require.Equal(t, 2, cb.Bits)
		require.Len(t, cb.Centroids, 4)
		require.True(t, sort.Float64sAreSorted(cb.Centroids))
		require.Greater(t, cb.Centroids[0], 0.0)
		require.Less(t, cb.Centroids[3], math.Pi/2)
		// The density sin^m(2ψ) is symmetric about π/4, so is the optimum.
		for k := range 2 {
			assert.InDelta(t, math.Pi/2, cb.Centroids[k]+cb.Centroids[3-k], 1e-12, "level %d", l)
		}
		assert.InDelta(t, math.Pi/4, cb.Boundaries[1], 1e-12)
		assert.InDelta(t, math.Pi/2, cb.Boundaries[0]+cb.Boundaries[2], 1e-12)
		// Lloyd–Max optimality: each centroid is its cell's conditional
		// mean under the level's density (midpoint quadrature).
		edges := append(append([]float64{0}, cb.Boundaries...), math.Pi/2)
		f := angleDensity(l)
		for k := range 4 {
			const n = 20000
			h := (edges[k+1] - edges[k]) / n
			var m0, m1 float64
			for i := range n {
				x := edges[k] + (float64(i)+0.5)*h
				m0 += f(x)
				m1 += f(x) * x
			}
			assert.InDelta(t, m1/m0, cb.Centroids[k], 1e-8, "level %d centroid %d", l, k)
		}
		// The densities get narrower with depth, and so do the codebooks.
		if l > 2 {
			assert.Less(t, cb.Distortion, AngleCodebook(l-1).Distortion)
		}
	}
	require.Panics(t, func() { AngleCodebook(0) })
	require.Panics(t, func() { AngleCodebook(Levels + 1) })
}

func TestAngleDensityIntegratesToOne(t *testing.T) {
	for l := 1; l <= Levels; l++ {
		lo, hi := angleRange(l)
		f := angleDensity(l)
		// Composite Simpson's rule; the densities are smooth on their support.
		const n = 20000
		h := (hi - lo) / n
		s := f(lo) + f(hi)
		for i := 1; i < n; i++ {
			w := 2.0
			if i%2 == 1 {
				w = 4
			}
			s += w * f(lo+float64(i)*h)
		}
		assert.InDelta(t, 1, s*h/3, 1e-10, "level %d", l)
	}
}

// TestAngleCodebookDistortionMonteCarlo quantizes the angles of Gaussian
// vectors — the real distribution, not the density the codebook was
// solved on — and compares the mean squared angle error with the
// codebook's Distortion, within 5 standard errors. It also checks the
// codebook's own Quantize against the boundary search.
func TestAngleCodebookDistortionMonteCarlo(t *testing.T) {
	const d = 128
	n := 3000
	if testing.Short() {
		n = 800
	}
	src := rng.New(21)
	y := make([]float64, d)
	radii := make([]float64, d/16)
	angles := newAngles(d)
	var sum, sum2 [Levels]float64
	var cnt [Levels]int
	var cbs [Levels]struct {
		cent, bound []float64
		q           func(float32) uint8
	}
	for l := range cbs {
		cb := AngleCodebook(l + 1)
		cbs[l].cent, cbs[l].bound, cbs[l].q = cb.Centroids, cb.Boundaries, cb.Quantize
	}
	for range n {
		gaussian(src, y)
		Forward(radii, angles, y)
		for l := range angles {
			for _, a := range angles[l] {
				k := sort.SearchFloat64s(cbs[l].bound, a)
				e := a - cbs[l].cent[k]
				sum[l] += e * e
				sum2[l] += e * e * e * e
				cnt[l]++
				if near(a, cbs[l].bound, 1e-6) {
					continue // float32 rounding of a may cross
				}
				require.Equal(t, uint8(k), cbs[l].q(float32(a)), "level %d angle %v", l+1, a)
			}
		}
	}
	for l := range sum {
		m := float64(cnt[l])
		mean := sum[l] / m
		se := math.Sqrt((sum2[l]/m - mean*mean) / m)
		assert.InDelta(t, AngleCodebook(l+1).Distortion, mean, 5*se, "level %d", l+1)
	}
}

func near(a float64, bound []float64, eps float64) bool {
	for _, b := range bound {
		if math.Abs(a-b) < eps {
			return true
		}
	}
	return false
}

package qjl

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/turboquant-go/tq/internal/rng"
)

// moments returns the mean, the sample variance and their standard errors.
func moments(x []float64) (mean, seMean, variance, seVar float64) {
	n := float64(len(x))
	for _, v := range x {
		mean += v
	}
	mean /= n
	var m2, m4 float64
	for _, v := range x {
		d := (v - mean) * (v - mean)
		m2 += d
		m4 += d * d
	}
	variance = m2 / (n - 1)
	m4 /= n
	return mean, math.Sqrt(variance / n), variance, math.Sqrt((m4 - variance*variance) / n)
}

// estimates returns Estimate(code(k), ‖k‖) for query q over n sketches drawn
// with fresh seeds.
func estimates(t *testing.T, kind Kind, rows, n int, q, k []float32) []float64 {
	d := len(q)
	out := make([]float64, n)
	code := make([]byte, (rows+7)/8)
	var scratch []float32
	for i := range out {
		s, err := New(d, rows, kind, rng.Derive(2025, uint64(i)))
		require.NoError(t, err)
		if len(scratch) < s.ScratchLen() {
			scratch = make([]float32, s.ScratchLen())
		}
		s.Encode(code, k, scratch)
		qq := s.NewQuery()
		qq.Reset(q)
		out[i] = float64(qq.Estimate(code, float32(norm(k))))
	}
	return out
}

// pairs returns an (almost) independent pair and a strongly correlated one
// (cosine 0.8), with norms other than 1 so the norm factors are exercised.
func pairs(d int) map[string][2][]float32 {
	s := rng.New(12)
	k := randomVector(s, d)
	u := randomVector(s, d)
	kn := norm(k)
	// u ⟂ k, then the correlated q = 2·(0.8·k̂ + 0.6·û).
	c := dot(u, k) / (kn * kn)
	for i := range u {
		u[i] -= float32(c) * k[i]
	}
	un := norm(u)
	corr := make([]float32, d)
	for i := range corr {
		corr[i] = 2 * (0.8*k[i]/float32(kn) + 0.6*u[i]/float32(un))
	}
	half := make([]float32, d)
	for i := range half {
		half[i] = 0.5 * k[i] / float32(kn)
	}
	return map[string][2][]float32{
		"independent": {randomVector(s, d), half},
		"correlated":  {corr, half},
	}
}

// For Gaussian S the estimator is unbiased and its variance is exactly
// ((π/2)‖q‖²‖k‖² − ⟨q,k⟩²)/m. Both are checked by Monte Carlo over seeds:
// the mean within 4 standard errors of ⟨q,k⟩, the sample variance within 5
// standard errors (from the sample's fourth moment) of the formula. For the
// correlated pair the ⟨q,k⟩² term is 41% of the variance, far outside that
// tolerance, so the test does tell the exact formula from (π/2)‖q‖²‖k‖²/m.
func TestGaussianEstimatorUnbiasedWithExactVariance(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 6000
	}
	const d, m = 24, 37 // m not a multiple of 8: the tail byte is in play
	for name, p := range pairs(d) {
		q, k := p[0], p[1]
		ip := dot(q, k)
		want := (math.Pi/2*dot(q, q)*dot(k, k) - ip*ip) / m
		mean, seMean, variance, seVar := moments(estimates(t, Gaussian, m, n, q, k))
		t.Logf("%s: ⟨q,k⟩ %.4f mean %.4f ± %.4f; variance %.5f ± %.5f, formula %.5f", name, ip, mean, seMean, variance, seVar, want)
		require.InDelta(t, ip, mean, 4*seMean, name)
		require.InDelta(t, want, variance, 5*seVar, name)
		if name == "correlated" {
			require.Less(t, 5*seVar, ip*ip/m/2, "tolerance too loose to see the ⟨q,k⟩² term")
		}
	}
}

// Hadamard rows are ±1, and E[SᵀS] = m·I: the diagonal is exactly m, a
// whole block of P rows gives exactly P·I (H_P is orthogonal), and the
// off-diagonal of a partial block averages to zero over seeds.
func TestHadamardStructure(t *testing.T) {
	for _, sh := range []struct{ dim, rows int }{{5, 8}, {5, 24}, {100, 128}, {100, 256}, {100, 50}, {7, 5}} {
		d := sh.dim
		seeds := 400
		if d > 8 {
			seeds = 30
		}
		mean := make([]float64, d*d)
		for seed := range seeds {
			s := mustNew(t, d, sh.rows, Hadamard, uint64(seed))
			m := s.AppendMatrix(nil)
			for _, v := range m {
				require.True(t, v == 1 || v == -1, "entry %v", v)
			}
			full := sh.rows%s.pad == 0
			for j := range d {
				for k := range d {
					g := 0.0
					for i := 0; i < sh.rows; i++ {
						g += float64(m[i*d+j] * m[i*d+k])
					}
					switch {
					case j == k:
						require.Equal(t, float64(sh.rows), g)
					case full:
						require.Zero(t, g, "%+v (%d,%d)", sh, j, k)
					}
					mean[j*d+k] += g / float64(seeds)
				}
			}
		}
		// Each off-diagonal Gram entry is ±(a fixed sum of ≤ m terms ±1)
		// with a random sign, so its mean over seeds has SE ≤ m/√seeds
		// (meaningful for the small dims, which use 400 seeds).
		for j := range d {
			if d > 8 {
				break
			}
			for k := range d {
				if j != k {
					require.InDelta(t, 0, mean[j*d+k], 5*float64(sh.rows)/math.Sqrt(float64(seeds)), "%+v (%d,%d)", sh, j, k)
				}
			}
		}
	}
}

// E‖S·x‖² = m‖x‖² for a fixed x over seeds (the quadratic form of
// E[SᵀS] = m·I), for partial blocks where SᵀS itself is not m·I.
func TestHadamardNormPreservedInExpectation(t *testing.T) {
	src := rng.New(4)
	for _, sh := range []struct{ dim, rows int }{{100, 50}, {100, 200}, {7, 5}, {128, 64}} {
		x := randomVector(src, sh.dim)
		want := float64(sh.rows) * dot(x, x)
		n := 3000
		v := make([]float64, n)
		p := make([]float32, sh.rows)
		for i := range v {
			s := mustNew(t, sh.dim, sh.rows, Hadamard, uint64(i))
			s.Project(p, x, make([]float32, s.ScratchLen()))
			v[i] = dot(p, p)
		}
		mean, se, _, _ := moments(v)
		require.InDelta(t, want, mean, 4*se, "%+v", sh)
	}
}

// With ±1 rows the estimator is unbiased only in the limit where S·k is
// Gaussian, i.e. for keys whose energy is spread over many coordinates (as
// after a random rotation). Measured relative bias for a random key, d = 128,
// m = 128, correlated query: +0.2% ± 0.07% (N = 4000); d = 16: +1.3%. The
// test allows 1% + 4 SE at d = 128. For a basis-vector key the bias is the
// full √(π/2): the estimate is exactly 1.2533·q_0 whatever the seed.
func TestHadamardEstimatorApproximatelyUnbiased(t *testing.T) {
	n := 4000
	if testing.Short() {
		n = 1500
	}
	const d, m = 128, 128
	p := pairs(d)["correlated"]
	q, k := p[0], p[1]
	ip := dot(q, k)
	mean, se, _, _ := moments(estimates(t, Hadamard, m, n, q, k))
	t.Logf("Hadamard: ⟨q,k⟩ %.4f mean %.4f ± %.4f (relative bias %.4f)", ip, mean, se, mean/ip-1)
	require.InDelta(t, ip, mean, 0.01*math.Abs(ip)+4*se)

	e0 := make([]float32, d)
	e0[0] = 1
	for _, est := range estimates(t, Hadamard, m, 20, q, e0) {
		require.InDelta(t, math.Sqrt(math.Pi/2)*float64(q[0]), est, 1e-5)
	}
}

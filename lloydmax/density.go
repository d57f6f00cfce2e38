package lloydmax

import (
	"errors"
	"fmt"
	"math"
)

// Sentinel errors; test with errors.Is.
var (
	ErrBits          = errors.New("lloydmax: bits must be 1–8")
	ErrDim           = errors.New("lloydmax: unsupported dimension")
	ErrDensity       = errors.New("lloydmax: invalid density")
	ErrNoConvergence = errors.New("lloydmax: solver did not converge")
)

// Density is a probability density on a finite interval. It need not be
// normalized: the solver only uses ratios of its integrals.
type Density interface {
	PDF(x float64) float64
	// Support returns the finite interval [lo, hi] outside which PDF is 0.
	Support() (lo, hi float64)
}

// gaussianSpan is the half-width, in standard deviations, of the interval
// Gaussian reports as its support: φ(40) = e^-800/√(2π) underflows to 0, so
// truncating there changes nothing in float64.
const gaussianSpan = 40

// Beta returns the density of one coordinate of a point drawn uniformly from
// the unit sphere S^(d−1) in R^d:
//
//	f(x) = Γ(d/2) / (√π Γ((d−1)/2)) · (1−x²)^((d−3)/2)  on [−1, 1].
//
// d = 2 is the arcsine density (integrable singularities at ±1) and d = 3 the
// uniform density; both are supported. For d < 2 the returned density is
// invalid and Solve reports ErrDim.
func Beta(d int) Density {
	b := &betaDensity{d: d}
	if d < 2 {
		b.err = fmt.Errorf("%w: Beta needs d ≥ 2, got %d", ErrDim, d)
		return b
	}
	fd := float64(d)
	b.k = (fd - 1) / 2
	b.sigma = 1 / math.Sqrt(fd)
	b.c = gammaHalfRatio(b.k) / math.SqrtPi
	return b
}

// Gaussian returns the normal density N(0, 1/d), the large-d limit of
// Beta(d). Its Support is ±40σ (the density underflows to 0 there); the
// solver integrates its tails in closed form. For d < 1 the returned density
// is invalid and Solve reports ErrDim.
func Gaussian(d int) Density {
	g := &gaussianDensity{d: d}
	if d < 1 {
		g.err = fmt.Errorf("%w: Gaussian needs d ≥ 1, got %d", ErrDim, d)
		return g
	}
	g.sigma = 1 / math.Sqrt(float64(d))
	return g
}

// FromFunc returns the density proportional to pdf on [lo, hi]. pdf must be
// non-negative, finite at every interior point and have positive mass;
// Solve checks this at its quadrature nodes and reports ErrDensity otherwise.
// The solver integrates pdf with adaptive Gauss–Legendre quadrature, so pdf
// should be smooth within [lo, hi] (kinks and integrable end-point
// singularities cost accuracy and time, not correctness).
func FromFunc(pdf func(float64) float64, lo, hi float64) Density {
	return &funcDensity{pdf: pdf, lo: lo, hi: hi}
}

type funcDensity struct {
	pdf    func(float64) float64
	lo, hi float64
}

func (f *funcDensity) PDF(x float64) float64 {
	if x < f.lo || x > f.hi || f.pdf == nil {
		return 0
	}
	return f.pdf(x)
}

func (f *funcDensity) Support() (lo, hi float64) { return f.lo, f.hi }

// betaDensity implements the cells of Beta(d).
//
// Nothing here takes differences of the incomplete beta function: every way
// of evaluating I_x(½, k) from a rounded 1−x² loses about d/16 ulps in the
// tails (the value is that sensitive to its argument), which at d = 4096
// shows up as 1e-11σ of noise in the Lloyd map. Instead each cell is
// integrated directly, in θ with x = sin θ, where f(x)dx = c·cos^(d−2)θ dθ is
// smooth even for d = 2, and with the weight normalized to 1 at the cell's
// lower end, so that the large factor cos^(d−2)θ_lo — whose rounding d
// amplifies — cancels out of the centroid analytically.
type betaDensity struct {
	d     int
	err   error
	k     float64 // (d−1)/2: X² ~ Beta(1/2, k)
	sigma float64 // 1/√d, the standard deviation
	c     float64 // normalizing constant of the pdf
}

func (b *betaDensity) PDF(x float64) float64 {
	if b.err != nil || !(x > -1 && x < 1) {
		return 0
	}
	return b.c * math.Exp((b.k-1)*logOneMinusSq(x))
}

func (b *betaDensity) Support() (lo, hi float64) { return -1, 1 }

func (b *betaDensity) pdf(x float64) float64 { return b.PDF(x) }

// betaCell is the cell [sin θa, sin(θa+w)], 0 ≤ θa, with its weight
// cos^(d−2)(θa+u)/cos^(d−2)θa on u ∈ [0, w].
type betaCell struct {
	p       float64 // (d−2)/2
	ta, w   float64
	s2a     float64 // sin 2θa
	c2a     float64 // cos 2θa
	cos2    float64 // cos²θa = 1 − lo²
	logCos2 float64
}

func (b *betaDensity) newCell(lo, hi float64) betaCell {
	ta := math.Asin(lo)
	s2, c2 := math.Sincos(2 * ta)
	cos2 := (1 - lo) * (1 + lo)
	// w = asin hi − asin lo. The difference of two rounded arcsines would
	// carry θ/w ulps of error into a narrow cell's width (and its centroid);
	// sin w = hi·cos θa − lo·cos θb = (hi−lo)(hi+lo)/(hi·cos θa + lo·cos θb)
	// has none.
	var w float64
	if sw := (hi - lo) * (hi + lo) / (hi*math.Sqrt(cos2) + lo*math.Sqrt((1-hi)*(1+hi))); sw < 0.5 {
		w = math.Asin(sw)
	} else {
		w = math.Asin(hi) - ta
	}
	return betaCell{p: b.k - 0.5, ta: ta, w: w, s2a: s2, c2a: c2, cos2: cos2, logCos2: logOneMinusSq(lo)}
}

// rho returns cos^(d−2)(θa+u)/cos^(d−2)θa, from the exact identity
// cos²(θa+u) = cos²θa − sin u·sin(2θa+u).
func (bc *betaCell) rho(u float64) float64 {
	if bc.p == 0 {
		return 1
	}
	su, cu := math.Sincos(u)
	r := su * (bc.s2a*cu + bc.c2a*su) / bc.cos2 // sin u·sin(2θa+u)/cos²θa
	if r < 0.5 {
		return math.Exp(bc.p * math.Log1p(-r))
	}
	// Near θ = π/2, 1 − r would cancel; cos(θa+u) is accurate there.
	c := math.Cos(bc.ta + u)
	if !(c > 0) {
		return 0
	}
	return math.Exp(bc.p * (2*math.Log(c) - bc.logCos2))
}

// cell returns the mass and centroid of [lo, hi].
func (b *betaDensity) cell(lo, hi float64) (m0, c float64) {
	if hi <= 0 {
		m0, c = b.cell(-hi, -lo)
		return m0, -c
	}
	if lo < 0 {
		return mergeCells(b.cell(lo, 0))(b.cell(0, hi))
	}
	bc := b.newCell(lo, hi)
	a := integrate(bc.rho, 0, bc.w, 1e-14, 0)
	m0 = b.c * math.Exp((b.k-0.5)*logOneMinusSq(lo)) * a
	// c = ∫x f / ∫f with ∫_lo^hi x f(x) dx = c/(d−1)·((1−lo²)^k − (1−hi²)^k):
	// dividing by the mass leaves √(1−lo²)·(1 − ((1−hi²)/(1−lo²))^k)/((d−1)·a),
	// where log((1−lo²)/(1−hi²)) = log1p((hi−lo)(hi+lo)/((1−hi)(1+hi))).
	r := math.Inf(1)
	if hi < 1 {
		r = math.Log1p((hi - lo) * (hi + lo) / ((1 - hi) * (1 + hi)))
	}
	c = math.Sqrt(bc.cos2) * -math.Expm1(-b.k*r) / (2 * b.k * a)
	return m0, c
}

// centered2 returns ∫_lo^hi (x−c)² f(x) dx, integrated directly: forming it
// from raw moments (M2 − 2cM1 + c²M0) would cancel about five digits for
// 8-bit cells.
func (b *betaDensity) centered2(lo, hi, c float64) float64 {
	if hi <= 0 {
		return b.centered2(-hi, -lo, -c)
	}
	if lo < 0 {
		return b.centered2(lo, 0, c) + b.centered2(0, hi, c)
	}
	bc := b.newCell(lo, hi)
	f := func(u float64) float64 {
		x := math.Sin(bc.ta+u) - c
		return x * x * bc.rho(u)
	}
	return b.c * math.Exp((b.k-0.5)*logOneMinusSq(lo)) * integrate(f, 0, bc.w, 1e-14, 0)
}

// mergeCells combines the (mass, centroid) pairs of two adjacent cells.
func mergeCells(m0a, ca float64) func(m0b, cb float64) (float64, float64) {
	return func(m0b, cb float64) (float64, float64) {
		m := m0a + m0b
		return m, (m0a*ca + m0b*cb) / m
	}
}

// logOneMinusSq returns log(1−x²) for |x| ≤ 1 without the cancellation of
// 1−x² near |x| = 1.
func logOneMinusSq(x float64) float64 {
	x = math.Abs(x)
	if x < 0.5 {
		return math.Log1p(-x * x)
	}
	return math.Log((1 - x) * (1 + x))
}

// gammaHalfRatio returns Γ(k+½)/Γ(k) for k ≥ ½ to full precision. Through
// log-gamma the ratio would lose ~|lnΓ(k)|·ε, i.e. 1e-12 relative at k ≈ 2000.
func gammaHalfRatio(k float64) float64 {
	if k < 32 {
		return math.Gamma(k+0.5) / math.Gamma(k)
	}
	// ln Γ(k+½) − ln Γ(k) = ½ ln k + Σ (2^(1−2n) − 2) B_2n / ((2n−1)(2n) k^(2n−1)),
	// from the Stirling series with Bernoulli polynomials B_m(½) = (2^(1−m)−1)B_m.
	// At k ≥ 32 the first omitted term is below 1e-19.
	x := 1 / k
	x2 := x * x
	s := x * (-1.0/8 + x2*(1.0/192+x2*(-1.0/640+x2*(17.0/14336+x2*(-31.0/18432)))))
	return math.Sqrt(k) * math.Exp(s)
}

// gaussianDensity is N(0, σ²) with σ = 1/√d; the solver works on the unit
// normal and scales the result.
type gaussianDensity struct {
	d     int
	err   error
	sigma float64
}

func (g *gaussianDensity) PDF(x float64) float64 {
	if g.err != nil {
		return 0
	}
	return phi(x/g.sigma) / g.sigma
}

func (g *gaussianDensity) Support() (lo, hi float64) {
	return -gaussianSpan * g.sigma, gaussianSpan * g.sigma
}

const invSqrt2Pi = 0.3989422804014327 // 1/√(2π)

func phi(z float64) float64 { return invSqrt2Pi * math.Exp(-z*z/2) }

// unitNormal is N(0, 1). Cells may have infinite ends. As for Beta, each
// cell's weight is normalized to 1 at its lower end,
// φ(lo+u)/φ(lo) = exp(−u(lo+u/2)), so the rounding of φ(lo) itself never
// reaches the centroid.
type unitNormal struct{}

func (unitNormal) pdf(z float64) float64 { return phi(z) }

// span returns the length of [lo, hi] that matters: beyond gaussianSpan
// the weight exp(−u(lo+u/2)) is below e^−800 for lo ≥ 0.
func span(lo, hi float64) float64 { return math.Min(hi-lo, gaussianSpan) }

func (g unitNormal) cell(lo, hi float64) (m0, c float64) {
	if hi <= 0 {
		m0, c = g.cell(-hi, -lo)
		return m0, -c
	}
	if lo < 0 {
		return mergeCells(g.cell(lo, 0))(g.cell(0, hi))
	}
	a := integrate(func(u float64) float64 { return math.Exp(-u * (lo + u/2)) }, 0, span(lo, hi), 1e-14, 0)
	// ∫ z φ = φ(lo) − φ(hi) = φ(lo)·−expm1(−(hi−lo)(hi+lo)/2); the mass is φ(lo)·a.
	e := 1.0
	if !math.IsInf(hi, 1) {
		e = -math.Expm1(-(hi - lo) * (hi + lo) / 2)
	}
	return phi(lo) * a, e / a
}

func (g unitNormal) centered2(lo, hi, c float64) float64 {
	if hi <= 0 {
		return g.centered2(-hi, -lo, -c)
	}
	if lo < 0 {
		return g.centered2(lo, 0, c) + g.centered2(0, hi, c)
	}
	f := func(u float64) float64 {
		x := lo + u - c
		return x * x * math.Exp(-u*(lo+u/2))
	}
	return phi(lo) * integrate(f, 0, span(lo, hi), 1e-14, 0)
}

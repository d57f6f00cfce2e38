package lloydmax

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mathext"
)

// Options tunes Solve. The zero value selects the defaults.
type Options struct {
	// Tol is the convergence threshold: Solve stops when one Lloyd step
	// moves no centroid by more than Tol·σ (σ the density's standard
	// deviation) plus 4 ulps of the centroid itself, the floor set by
	// rounding in the cell integrals. Default 1e-15.
	Tol float64
	// MaxIter bounds the number of iterations (Newton and Lloyd steps
	// together). Default 10000; a typical solve needs fewer than 30.
	MaxIter int
}

const (
	defaultTol     = 1e-15
	defaultMaxIter = 10000
	// ulpSlack is the rounding floor of a computed centroid relative to its
	// magnitude: the cell moments carry a few ulps of error, so a Lloyd
	// step cannot settle any closer than that.
	ulpSlack = 0x1p-50
)

// model is what the solver needs from a density: the pdf and, for a cell
// [lo, hi], its mass, its centroid (to full precision: it is what the Lloyd
// map iterates) and its centered second moment, with masses and pdf in the
// same (not necessarily unit) normalization.
type model interface {
	pdf(x float64) float64
	cell(lo, hi float64) (mass, centroid float64)
	centered2(lo, hi, c float64) float64
}

// Solve computes the Lloyd–Max quantizer with 2^bits levels for den: the
// fixed point of the Lloyd map (centroids = conditional means of the cells,
// boundaries = midpoints of adjacent centroids), iterated to convergence.
//
// Beta and Gaussian densities are solved on the positive half (they are
// symmetric), so their codebooks are exactly antisymmetric, with cell
// integrals in forms whose rounding error does not grow with d or with the
// distance from 0 (see betaDensity and unitNormal); other densities are
// integrated by adaptive Gauss–Legendre quadrature. Distortion is
// integrated directly as ∫(x−c)²f per cell. The iteration starts from the companding point density
// ∝ f^(1/3) (asymptotically optimal) and takes safeguarded Newton steps on
// the fixed-point equations — the Jacobian is tridiagonal — falling back to
// plain Lloyd steps when a Newton step does not reduce the residual; it ends
// with Lloyd steps until the centroids stop moving (see Options.Tol).
func Solve(den Density, bits int, opts Options) (*Codebook, error) {
	if bits < 1 || bits > 8 {
		return nil, fmt.Errorf("%w (got %d)", ErrBits, bits)
	}
	if opts.Tol <= 0 {
		opts.Tol = defaultTol
	}
	if opts.MaxIter <= 0 {
		opts.MaxIter = defaultMaxIter
	}
	if den == nil {
		return nil, fmt.Errorf("%w: nil density", ErrDensity)
	}
	levels := 1 << bits
	switch d := den.(type) {
	case *betaDensity:
		if d.err != nil {
			return nil, d.err
		}
		t := betaStart(d, levels/2)
		return solveSymmetric(d, t, bits, d.sigma, opts)
	case *gaussianDensity:
		if d.err != nil {
			return nil, d.err
		}
		unit, err := solveUnitNormal(bits, opts)
		if err != nil {
			return nil, err
		}
		return scaleCodebook(unit, d.d), nil
	}
	fm, err := newFuncModel(den)
	if err != nil {
		return nil, err
	}
	c, iters, err := iterate(fm, fm.start(levels), fm.std, opts)
	if err == nil && fm.bad {
		err = fmt.Errorf("%w: pdf is negative, infinite or NaN inside the support", ErrDensity)
	}
	if err != nil {
		return nil, err
	}
	return newCodebook(bits, c, distortion(fm, c, fm.lo, fm.hi)/fm.total, iters), nil
}

// distortion returns Σ ∫_cell (x−c_i)² f over the cells of the codebook as
// used — boundaries at the midpoints of c — between lo and hi.
func distortion(m model, c []float64, lo, hi float64) float64 {
	var sum float64
	for i, ci := range c {
		a, b := lo, hi
		if i > 0 {
			a = (c[i-1] + ci) / 2
		}
		if i+1 < len(c) {
			b = (ci + c[i+1]) / 2
		}
		sum += m.centered2(a, b, ci)
	}
	return sum
}

func solveUnitNormal(bits int, opts Options) (*Codebook, error) {
	return solveSymmetric(unitNormal{}, normalStart(1<<(bits-1)), bits, 1, opts)
}

// solveSymmetric solves the half problem on [0, t[len(t)−1]] — for a density
// symmetric about 0, the optimal quantizer with 2M levels has a boundary at 0
// and its positive half is the optimal M-level quantizer of the folded
// density — and mirrors the result.
func solveSymmetric(m model, t []float64, bits int, sigma float64, opts Options) (*Codebook, error) {
	pos, iters, err := iterate(m, t, sigma, opts)
	if err != nil {
		return nil, err
	}
	dist := distortion(m, pos, 0, t[len(t)-1])
	half := len(pos)
	c := make([]float64, 2*half)
	for i, v := range pos {
		c[half+i] = v
		c[half-1-i] = -v
	}
	return newCodebook(bits, c, 2*dist, iters), nil
}

// normalStart returns the companding boundaries of the positive half of N(0,1)
// with 2M levels: f^(1/3) is N(0, 3), so t_i = √3·Φ⁻¹(½ + i/2M).
func normalStart(m int) []float64 {
	t := make([]float64, m+1)
	for i := 1; i < m; i++ {
		t[i] = math.Sqrt(6) * math.Erfinv(float64(i)/float64(m))
	}
	t[m] = math.Inf(1)
	return t
}

// betaStart returns the companding boundaries of the positive half of
// Beta(d): f^(1/3) ∝ (1−x²)^((d−3)/6) is the coordinate density for
// d′ = (d+6)/3, whose |x|² is Beta(½, (d+3)/6).
func betaStart(b *betaDensity, m int) []float64 {
	t := make([]float64, m+1)
	kk := float64(b.d+3) / 6
	for i := 1; i < m; i++ {
		t[i] = math.Sqrt(mathext.InvRegIncBeta(0.5, kk, float64(i)/float64(m)))
	}
	t[m] = 1
	return t
}

// iterate solves the Lloyd–Max fixed point for the cells between t[0] and
// t[len(t)−1] (fixed ends), starting from the interior boundaries in t. It
// returns the centroids and the number of iterations.
func iterate(m model, t []float64, scale float64, opts Options) ([]float64, int, error) {
	s := newSolver(m, len(t)-1)
	copy(s.t, t)
	s.eval(s.t, s.c, s.m0)
	if s.n == 1 {
		return s.c, 0, nil
	}
	tolAbs := opts.Tol * scale
	res := s.residual(s.t, s.c)
	iters := 0
	// Newton phase: quadratic convergence from the companding start.
	var floor float64
	for iters < opts.MaxIter && res > tolAbs {
		iters++
		if !s.newton(res) {
			s.lloydStep()
		}
		next := s.residual(s.t, s.c)
		if next >= res && next <= 16*ulpSlack*s.maxAbs() {
			// Stalled at the rounding floor of the cell integrals (a few
			// ulps; more for a pdf with jumps, whose cells quadrature
			// cannot integrate exactly): the Lloyd check below allows for
			// it, the floor itself being at most 16 ulps of the largest
			// centroid.
			floor = math.Max(res, next)
			break
		}
		res = next
	}
	// Lloyd phase: confirm the fixed point with the plain map.
	for iters < opts.MaxIter {
		iters++
		copy(s.prev, s.c)
		s.lloydStep()
		moved := false
		for i, c := range s.c {
			if math.Abs(c-s.prev[i]) > tolAbs+ulpSlack*math.Abs(c)+4*floor {
				moved = true
				break
			}
		}
		if !moved {
			return s.c, iters, nil
		}
	}
	return nil, iters, fmt.Errorf("%w in %d iterations", ErrNoConvergence, opts.MaxIter)
}

type solver struct {
	m    model
	n    int       // number of cells
	t    []float64 // boundaries, n+1 (ends fixed)
	c    []float64 // centroids, n
	m0   []float64 // cell masses, n
	prev []float64
	// Newton workspace
	tn, cn, m0n []float64
	dl, dd, du  []float64
	rhs, step   []float64
	up, lw      []float64 // ∂c_(j−1)/∂t_j and ∂c_j/∂t_j
}

func newSolver(m model, n int) *solver {
	buf := make([]float64, 14*n+2)
	take := func(k int) []float64 {
		s := buf[:k:k]
		buf = buf[k:]
		return s
	}
	return &solver{
		m: m, n: n,
		t: take(n + 1), c: take(n), m0: take(n), prev: take(n),
		tn: take(n + 1), cn: take(n), m0n: take(n),
		dl: take(n), dd: take(n), du: take(n), rhs: take(n), step: take(n), up: take(n), lw: take(n),
	}
}

// eval computes the centroids and masses of the cells of t.
func (s *solver) eval(t, c, m0 []float64) {
	for i := range c {
		lo, hi := t[i], t[i+1]
		a, b := s.m.cell(lo, hi)
		m0[i] = a
		if a > 0 && !math.IsNaN(b) && !math.IsInf(b, 0) {
			// The conditional mean lies in the cell; clamp away rounding.
			c[i] = math.Min(math.Max(b, lo), hi)
		} else {
			c[i] = lo + (hi-lo)/2 // empty cell: keep it between its ends
		}
	}
}

// residual returns max_j |t_j − (c_(j−1) + c_j)/2| over interior boundaries.
func (s *solver) residual(t, c []float64) float64 {
	var r float64
	for j := 1; j < s.n; j++ {
		r = math.Max(r, math.Abs(t[j]-(c[j-1]+c[j])/2))
	}
	return r
}

func (s *solver) maxAbs() float64 {
	var v float64
	for _, c := range s.c {
		v = math.Max(v, math.Abs(c))
	}
	return v
}

func (s *solver) lloydStep() {
	for j := 1; j < s.n; j++ {
		s.t[j] = (s.c[j-1] + s.c[j]) / 2
	}
	s.eval(s.t, s.c, s.m0)
}

// newton takes one Newton step on G(t) = t − T(t) = 0, T the Lloyd map,
// halving it until the residual falls below res. It reports whether a step
// was taken.
//
// With c_i the centroid of [t_i, t_(i+1)] and f the pdf,
// ∂c_i/∂t_i = f(t_i)(c_i − t_i)/m0_i and ∂c_i/∂t_(i+1) = f(t_(i+1))(t_(i+1) − c_i)/m0_i,
// so the Jacobian of G is tridiagonal.
func (s *solver) newton(res float64) bool {
	n := s.n
	t, c, m0 := s.t, s.c, s.m0
	// Unknowns are t_1 … t_(n−1); row j−1 holds the equation of boundary j.
	// up[j−1] = ∂c_(j−1)/∂t_j and lw[j−1] = ∂c_j/∂t_j.
	// An empty cell's "centroid" is its midpoint, which moves by ½ per end.
	up, lw := s.up, s.lw
	for j := 1; j < n; j++ {
		f := s.m.pdf(t[j])
		if !(f >= 0) || math.IsInf(f, 0) {
			return false
		}
		up[j-1], lw[j-1] = 0.5, 0.5
		if m0[j-1] > 0 {
			up[j-1] = f * (t[j] - c[j-1]) / m0[j-1]
		}
		if m0[j] > 0 {
			lw[j-1] = f * (c[j] - t[j]) / m0[j]
		}
		s.rhs[j-1] = (c[j-1]+c[j])/2 - t[j]
	}
	for r := 0; r < n-1; r++ {
		s.dd[r] = 1 - (up[r]+lw[r])/2
		s.dl[r], s.du[r] = 0, 0
		if r > 0 {
			s.dl[r] = -lw[r-1] / 2 // −½ ∂c_(j−1)/∂t_(j−1)
		}
		if r+1 < n-1 {
			s.du[r] = -up[r+1] / 2 // −½ ∂c_j/∂t_(j+1)
		}
	}
	if !thomas(s.dl[:n-1], s.dd[:n-1], s.du[:n-1], s.rhs[:n-1], s.step[:n-1]) {
		return false
	}
	lambda := 1.0
	for try := 0; try < 12; try, lambda = try+1, lambda/2 { // then a Lloyd step does better
		s.tn[0], s.tn[n] = t[0], t[n]
		ok := true
		for j := 1; j < n; j++ {
			s.tn[j] = t[j] + lambda*s.step[j-1]
			if !(s.tn[j] > s.tn[j-1]) {
				ok = false
				break
			}
		}
		if !ok || !(s.tn[n-1] < s.tn[n]) {
			continue
		}
		s.eval(s.tn, s.cn, s.m0n)
		if s.residual(s.tn, s.cn) < res {
			s.t, s.tn = s.tn, s.t
			s.c, s.cn = s.cn, s.c
			s.m0, s.m0n = s.m0n, s.m0
			return true
		}
	}
	return false
}

// thomas solves the tridiagonal system with sub-diagonal a (a[0] unused),
// diagonal b and super-diagonal c (c[len−1] unused) for right-hand side d,
// into x. It overwrites c and d. It reports false for a zero pivot.
func thomas(a, b, c, d, x []float64) bool {
	n := len(b)
	for i := 0; i < n; i++ {
		p := b[i]
		if i > 0 {
			p -= a[i] * c[i-1]
			d[i] -= a[i] * d[i-1]
		}
		if p == 0 || math.IsNaN(p) {
			return false
		}
		c[i] /= p
		d[i] /= p
	}
	x[n-1] = d[n-1]
	for i := n - 2; i >= 0; i-- {
		x[i] = d[i] - c[i]*x[i+1]
	}
	return true
}

package lloydmax

import (
	"math"
	"sync"

	"gonum.org/v1/gonum/integrate/quad"
)

// glPoints is the order of the Gauss–Legendre panel rule. Twenty points
// integrate polynomials of degree 39 exactly; adaptive bisection takes care
// of the rest.
const glPoints = 20

// maxLeaves bounds the partition of one integral. Smooth cells need one
// leaf; a tail cell whose mass sits in a sliver at one end needs about
// log2(width/sliver) more.
const maxLeaves = 128

var (
	glOnce    sync.Once
	glNodes   [glPoints]float64 // on [−1, 1]
	glWeights [glPoints]float64
)

// legendre returns the Gauss–Legendre rule on [−1, 1], computed once by
// gonum (quad.Fixed would recompute the nodes on every call).
func legendre() (*[glPoints]float64, *[glPoints]float64) {
	glOnce.Do(func() {
		quad.Legendre{}.FixedLocations(glNodes[:], glWeights[:], -1, 1)
	})
	return &glNodes, &glWeights
}

// pair holds a cell's mass and its first moment about a reference point.
type pair struct{ m0, m1 float64 }

func (p pair) add(q pair) pair { return pair{p.m0 + q.m0, p.m1 + q.m1} }

// panel applies the Gauss–Legendre rule to f and, if moment, to (x−ref)·f
// on [a, b]; moments about a point near the mass keep the first moment free
// of cancellation. bad reports a negative, infinite or NaN value of f.
func panel(f func(float64) float64, a, b, ref float64, moment bool) (p pair, bad bool) {
	x, w := legendre()
	h, m := (b-a)/2, (b+a)/2
	for i := range x {
		t := m + h*x[i]
		v := f(t)
		if !(v >= 0) || v > math.MaxFloat64 {
			bad = true
		}
		p.m0 += w[i] * v
		if moment {
			p.m1 += w[i] * (t - ref) * v
		}
	}
	p.m0 *= h
	p.m1 *= h
	return p, bad
}

// leaf is one interval of the partition with its two half-panel estimates
// and their deviation from the one-panel estimate of the whole interval.
type leaf struct {
	a, b float64
	l, r pair
	err  float64
}

// adapt integrates f (and (x−ref)·f if moment) over [a, b] with global
// error control: it bisects the leaf whose halves disagree most with their
// parent until the disagreements sum to at most rtol times the current total
// mass, or absTol. Tolerances relative to the current total, not to a first
// one-panel guess, keep a mass hiding in a sliver of the interval from
// making them unreachable. The sum of the halves is returned; it is far more
// accurate than the test it passed.
func adapt(f func(float64) float64, a, b, ref, rtol, absTol float64, moment bool) (pair, bool) {
	if !(a < b) {
		return pair{}, false
	}
	scale1 := 1 / (b - a) // weighs moment errors against mass errors
	var leaves [maxLeaves]leaf
	var anyBad bool
	mk := func(a, b float64, whole pair) leaf {
		m := a + (b-a)/2
		l, bl := panel(f, a, m, ref, moment)
		r, br := panel(f, m, b, ref, moment)
		anyBad = anyBad || bl || br
		s := l.add(r)
		e := math.Abs(s.m0-whole.m0) + math.Abs(s.m1-whole.m1)*scale1
		if !(a < m && m < b) || math.IsNaN(e) {
			e = 0 // cannot split further
		}
		return leaf{a: a, b: b, l: l, r: r, err: e}
	}
	whole, bad := panel(f, a, b, ref, moment)
	leaves[0] = mk(a, b, whole)
	n := 1
	for {
		var total pair
		var errSum, worst float64
		wi := 0
		for i := range n {
			total = total.add(leaves[i].l.add(leaves[i].r))
			errSum += leaves[i].err
			if leaves[i].err > worst {
				worst, wi = leaves[i].err, i
			}
		}
		if anyBad || bad || errSum <= math.Max(rtol*math.Abs(total.m0), absTol) || worst == 0 || n == maxLeaves {
			return total, anyBad || bad
		}
		p := leaves[wi]
		m := p.a + (p.b-p.a)/2
		leaves[wi] = mk(p.a, m, p.l)
		leaves[n] = mk(m, p.b, p.r)
		n++
	}
}

// integrate returns ∫_a^b f to relative accuracy rtol (see adapt).
func integrate(f func(float64) float64, a, b, rtol, absTol float64) float64 {
	p, _ := adapt(f, a, b, 0, rtol, absTol, false)
	return p.m0
}

// integrate2 returns the mass and the first moment about ref of f on
// [a, b]; bad reports a negative, infinite or NaN value of f at some node.
func integrate2(f func(float64) float64, a, b, ref, rtol, absTol float64) (pair, bool) {
	return adapt(f, a, b, ref, rtol, absTol, true)
}

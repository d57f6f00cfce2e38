package lloydmax

import (
	"fmt"
	"math"
)

// funcPanels is the number of equal panels a caller-supplied density is
// first sampled on, to validate it, measure its mass and scale, and place
// the companding start.
const funcPanels = 256

// funcModel integrates an arbitrary density by adaptive Gauss–Legendre
// quadrature.
type funcModel struct {
	f      func(float64) float64
	lo, hi float64
	total  float64 // mass on [lo, hi]
	std    float64
	absTol float64                 // mass below which a cell's integral need not be refined
	bad    bool                    // a negative, infinite or NaN pdf value was seen
	cum    [funcPanels + 1]float64 // cumulative ∫ f^(1/3) at panel ends
}

func newFuncModel(den Density) (*funcModel, error) {
	lo, hi := den.Support()
	if !(lo < hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return nil, fmt.Errorf("%w: support [%v, %v] is not a finite interval", ErrDensity, lo, hi)
	}
	m := &funcModel{lo: lo, hi: hi}
	if fd, ok := den.(*funcDensity); ok {
		if fd.pdf == nil {
			return nil, fmt.Errorf("%w: nil pdf", ErrDensity)
		}
		m.f = fd.pdf
	} else {
		m.f = den.PDF
	}
	h := (hi - lo) / funcPanels
	edge := func(i int) float64 {
		if i == funcPanels {
			return hi
		}
		return lo + float64(i)*h
	}
	// Coarse pass: validity and a mass estimate to set the refinement floor.
	var rough float64
	for i := range funcPanels {
		p, bad := panel(m.f, edge(i), edge(i+1), 0, false)
		if bad {
			return nil, fmt.Errorf("%w: pdf is negative, infinite or NaN near x = %v", ErrDensity, edge(i))
		}
		rough += p.m0
	}
	if !(rough > 0) || math.IsInf(rough, 0) {
		return nil, fmt.Errorf("%w: zero or infinite mass on [%v, %v]", ErrDensity, lo, hi)
	}
	m.absTol = 1e-17 * rough
	// Fine pass: mass and mean (moments about each panel's midpoint), and
	// the cumulative companding density f^(1/3).
	var mean float64
	cbrt := func(x float64) float64 { return math.Cbrt(m.f(x)) }
	for i := range funcPanels {
		a, b := edge(i), edge(i+1)
		mid := a + (b-a)/2
		p, bad := integrate2(m.f, a, b, mid, 1e-14, m.absTol)
		if bad {
			return nil, fmt.Errorf("%w: pdf is negative, infinite or NaN in [%v, %v]", ErrDensity, a, b)
		}
		m.total += p.m0
		mean += p.m1 + mid*p.m0
		c, _ := panel(cbrt, a, b, 0, false)
		m.cum[i+1] = m.cum[i] + c.m0
	}
	mean /= m.total
	var v float64
	for i := range funcPanels {
		v += integrate(func(x float64) float64 { return (x - mean) * (x - mean) * m.f(x) },
			edge(i), edge(i+1), 1e-12, 1e-17*rough*h*h)
	}
	m.std = math.Sqrt(v / m.total)
	if !(m.std > 0) {
		return nil, fmt.Errorf("%w: zero variance", ErrDensity)
	}
	return m, nil
}

func (m *funcModel) pdf(x float64) float64 { return m.f(x) }

// cell integrates the mass and the first moment about a reference point r,
// so the centroid r + ∫(x−r)f/∫f carries rounding of order ε·|c−r|. The
// midpoint serves unless the mass sits far from it (a wide tail cell); then
// the moment is recomputed about the first estimate.
func (m *funcModel) cell(lo, hi float64) (m0, c float64) {
	ref := lo + (hi-lo)/2
	p, bad := integrate2(m.f, lo, hi, ref, 1e-14, m.absTol)
	c = ref + p.m1/p.m0
	if p.m0 > 0 && !bad && math.Abs(c-ref) > (hi-lo)/16 {
		ref = c
		p, bad = integrate2(m.f, lo, hi, ref, 1e-14, m.absTol)
		c = ref + p.m1/p.m0
	}
	if bad {
		m.bad = true
	}
	return p.m0, c
}

func (m *funcModel) centered2(lo, hi, c float64) float64 {
	f := func(x float64) float64 { return (x - c) * (x - c) * m.f(x) }
	return integrate(f, lo, hi, 1e-14, m.absTol*m.std*m.std)
}

// start returns the boundaries (ends included) that split the companding
// density f^(1/3) into n equal parts. The panels of its cumulative integral
// are bisected until none holds more than 1/(8n) of it, so that linear
// interpolation within a panel misplaces a boundary by at most an eighth of
// a cell even when the mass sits in a sliver of the support.
func (m *funcModel) start(n int) []float64 {
	cbrt := func(x float64) float64 { return math.Cbrt(m.f(x)) }
	limit := m.cum[funcPanels] / (8 * float64(n))
	edges := make([]float64, 1, 2*funcPanels+1)
	cum := make([]float64, 1, 2*funcPanels+1)
	edges[0] = m.lo
	var split func(a, b, mass float64, depth int)
	split = func(a, b, mass float64, depth int) {
		mid := a + (b-a)/2
		if mass <= limit || depth == 0 || !(a < mid && mid < b) {
			edges = append(edges, b)
			cum = append(cum, cum[len(cum)-1]+mass)
			return
		}
		l, _ := panel(cbrt, a, mid, 0, false)
		r, _ := panel(cbrt, mid, b, 0, false)
		split(a, mid, l.m0, depth-1)
		split(mid, b, r.m0, depth-1)
	}
	h := (m.hi - m.lo) / funcPanels
	for i := range funcPanels {
		b := m.hi
		if i+1 < funcPanels {
			b = m.lo + float64(i+1)*h
		}
		split(edges[len(edges)-1], b, m.cum[i+1]-m.cum[i], 40)
	}
	t := make([]float64, n+1)
	t[0], t[n] = m.lo, m.hi
	total := cum[len(cum)-1]
	p := 0
	for j := 1; j < n; j++ {
		target := total * float64(j) / float64(n)
		for p < len(cum)-2 && cum[p+1] < target {
			p++
		}
		frac := 0.5
		if w := cum[p+1] - cum[p]; w > 0 {
			frac = math.Min(math.Max((target-cum[p])/w, 0), 1)
		}
		t[j] = edges[p] + frac*(edges[p+1]-edges[p])
	}
	// Guard against ties from rounding: fall back to an even split.
	for j := 1; j <= n; j++ {
		if !(t[j] > t[j-1]) {
			for i := 1; i < n; i++ {
				t[i] = m.lo + (m.hi-m.lo)*float64(i)/float64(n)
			}
			break
		}
	}
	return t
}

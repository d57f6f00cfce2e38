package lloydmax

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"gonum.org/v1/gonum/mathext"
)

// Reference values from design.md §2.
var (
	// Unit-variance Gaussian Lloyd–Max centroids (positive half) and
	// per-coordinate distortion, b = 1…4.
	gaussRef = [][]float64{
		{0.7978845608},
		{0.4527800, 1.5104176},
		{0.2450942, 0.7560052, 1.3439093, 2.1519457},
		{0.1283950, 0.3880482, 0.6567590, 0.9423403, 1.2562309, 1.6180461, 2.0690167, 2.7325888},
	}
	gaussRefD = []float64{0.363380, 0.117482, 0.034548, 0.009501}
	// Exact Beta(128) optimum: centroids ×√d (positive half) and d·D.
	beta128Ref = [][]float64{
		{0.79944},
		{0.45245, 1.50519},
		{0.24442, 0.75333, 1.33660, 2.13147},
	}
	beta128RefD = []float64{0.360889, 0.116000, 0.033966, 0.009315}
)

func mustGet(t testing.TB, f Family, dim, bits int) *Codebook {
	t.Helper()
	cb, err := Get(f, dim, bits)
	if err != nil {
		t.Fatalf("Get(%v, %d, %d): %v", f, dim, bits, err)
	}
	return cb
}

func mustSolve(t testing.TB, den Density, bits int) *Codebook {
	t.Helper()
	cb, err := Solve(den, bits, Options{})
	if err != nil {
		t.Fatalf("Solve(%d bits): %v", bits, err)
	}
	return cb
}

func TestGaussianReference(t *testing.T) {
	for i, want := range gaussRef {
		bits := i + 1
		for name, cb := range map[string]*Codebook{
			"Solve": mustSolve(t, Gaussian(1), bits),
			"Get":   mustGet(t, FamilyGaussian, 1, bits),
		} {
			pos := cb.Centroids[len(cb.Centroids)/2:]
			for j, w := range want {
				if math.Abs(pos[j]-w) > 1e-6 {
					t.Errorf("%s b=%d: centroid %d = %.10f, want %.10f ±1e-6", name, bits, j, pos[j], w)
				}
			}
			if math.Abs(cb.Distortion-gaussRefD[i]) > 5e-7 {
				t.Errorf("%s b=%d: distortion %.8f, want %.6f", name, bits, cb.Distortion, gaussRefD[i])
			}
		}
	}
	// The 1-bit centroid is E|Z| = √(2/π) exactly.
	if c := mustSolve(t, Gaussian(1), 1).Centroids[1]; math.Abs(c-math.Sqrt(2/math.Pi)) > 1e-15 {
		t.Errorf("1-bit centroid %.17g, want √(2/π)", c)
	}
}

func TestBeta128Reference(t *testing.T) {
	s := math.Sqrt(128)
	for i, wantD := range beta128RefD {
		bits := i + 1
		for name, cb := range map[string]*Codebook{
			"Solve": mustSolve(t, Beta(128), bits),
			"Get":   mustGet(t, FamilyBeta, 128, bits),
		} {
			pos := cb.Centroids[len(cb.Centroids)/2:]
			if i < len(beta128Ref) {
				for j, w := range beta128Ref[i] {
					if math.Abs(pos[j]*s-w) > 5e-6 {
						t.Errorf("%s b=%d: centroid %d ×√d = %.7f, want %.5f", name, bits, j, pos[j]*s, w)
					}
				}
			}
			if math.Abs(128*cb.Distortion-wantD) > 5e-7 {
				t.Errorf("%s b=%d: d·D = %.8f, want %.6f", name, bits, 128*cb.Distortion, wantD)
			}
		}
	}
}

// TestPaperBounds checks 4^−b ≤ d·D ≤ (√3π/2)·4^−b (TurboQuant, Thm. 1).
func TestPaperBounds(t *testing.T) {
	upper := math.Sqrt(3) * math.Pi / 2
	for _, d := range []int{16, 100, 128, 1000, 4096} {
		for bits := 1; bits <= 8; bits++ {
			for _, f := range []Family{FamilyBeta, FamilyGaussian} {
				cb := mustGet(t, f, d, bits)
				q := math.Pow(4, -float64(bits))
				if dd := float64(d) * cb.Distortion; dd < q || dd > upper*q {
					t.Errorf("%v d=%d b=%d: d·D = %g outside [%g, %g]", f, d, bits, dd, q, upper*q)
				}
			}
		}
	}
}

// TestCodebookStructure checks what every codebook promises: ascending,
// exactly antisymmetric for the symmetric families, boundaries the exact
// midpoints, float32 copies rounded to nearest, and the Lloyd condition.
func TestCodebookStructure(t *testing.T) {
	type named struct {
		name string
		cb   *Codebook
	}
	var cbs []named
	for bits := 1; bits <= 8; bits++ {
		cbs = append(cbs,
			named{"beta2", mustSolve(t, Beta(2), bits)},
			named{"beta3", mustSolve(t, Beta(3), bits)},
			named{"beta128", mustGet(t, FamilyBeta, 128, bits)},
			named{"beta1000", mustGet(t, FamilyBeta, 1000, bits)},
			named{"gauss96", mustGet(t, FamilyGaussian, 96, bits)})
	}
	for _, nc := range cbs {
		cb := nc.cb
		n := 1 << cb.Bits
		if len(cb.Centroids) != n || len(cb.Boundaries) != n-1 || len(cb.Centroids32) != n || len(cb.Boundaries32) != n-1 {
			t.Fatalf("%s b=%d: wrong lengths", nc.name, cb.Bits)
		}
		for i := range n {
			if cb.Centroids[i] != -cb.Centroids[n-1-i] {
				t.Errorf("%s b=%d: centroid %d not antisymmetric: %v vs %v", nc.name, cb.Bits, i, cb.Centroids[i], cb.Centroids[n-1-i])
			}
			if i > 0 && !(cb.Centroids[i] > cb.Centroids[i-1]) {
				t.Errorf("%s b=%d: centroids not ascending at %d", nc.name, cb.Bits, i)
			}
			if cb.Centroids32[i] != float32(cb.Centroids[i]) {
				t.Errorf("%s b=%d: Centroids32[%d] not rounded", nc.name, cb.Bits, i)
			}
		}
		for i, b := range cb.Boundaries {
			if b != (cb.Centroids[i]+cb.Centroids[i+1])/2 {
				t.Errorf("%s b=%d: boundary %d = %v is not the midpoint", nc.name, cb.Bits, i, b)
			}
			if cb.Boundaries32[i] != float32(b) {
				t.Errorf("%s b=%d: Boundaries32[%d] not rounded", nc.name, cb.Bits, i)
			}
		}
		if cb.Boundaries[n/2-1] != 0 {
			t.Errorf("%s b=%d: middle boundary %v, want 0", nc.name, cb.Bits, cb.Boundaries[n/2-1])
		}
	}
}

// TestLloydCondition re-derives each centroid as the conditional mean of its
// cell with an independent method (quadrature of the pdf through FromFunc)
// and checks the codebook is a fixed point of the Lloyd map.
func TestLloydCondition(t *testing.T) {
	for _, d := range []int{16, 128, 4096} {
		fm, err := newFuncModel(FromFunc(Beta(d).PDF, -1, 1))
		if err != nil {
			t.Fatal(err)
		}
		sigma := 1 / math.Sqrt(float64(d))
		for bits := 1; bits <= 8; bits++ {
			cb := mustGet(t, FamilyBeta, d, bits)
			// The map's sensitivity grows about 4× per bit (the slowest
			// Lloyd mode contracts by 1 − O(4^−b)); the tolerance follows.
			tol := 1e-14 * sigma * math.Max(1, math.Pow(2, float64(bits-4)))
			for i, c := range cb.Centroids {
				lo, hi := -1.0, 1.0
				if i > 0 {
					lo = cb.Boundaries[i-1]
				}
				if i < len(cb.Boundaries) {
					hi = cb.Boundaries[i]
				}
				_, q := fm.cell(lo, hi)
				if math.Abs(q-c) > tol {
					t.Errorf("d=%d b=%d: cell %d conditional mean %.17g, centroid %.17g (Δ=%.2gσ)", d, bits, i, q, c, (q-c)/sigma)
				}
			}
		}
	}
}

// betaClosedForm returns the mass and centroid of [lo, hi] ⊂ [0, 1] under
// Beta(d) from the regularized incomplete beta function and the closed-form
// first moment (accurate to ~1e-13 for d ≤ 1024).
func betaClosedForm(d int, lo, hi float64) (m0, c float64) {
	k := float64(d-1) / 2
	tail := func(x float64) float64 { // P(|X| > x)
		if x >= 1 {
			return 0
		}
		return mathext.RegIncBeta(k, 0.5, (1-x)*(1+x))
	}
	inner := func(x float64) float64 { return mathext.RegIncBeta(0.5, k, x*x) } // P(|X| ≤ x)
	if lo*lo < 1.0/float64(d) {
		m0 = (inner(hi) - inner(lo)) / 2
	} else {
		m0 = (tail(lo) - tail(hi)) / 2
	}
	norm := math.Gamma(float64(d)/2) / math.Gamma(k) / math.SqrtPi
	if d > 300 {
		norm = math.Exp(lgamma(float64(d)/2)-lgamma(k)) / math.SqrtPi
	}
	pw := func(x float64) float64 { return math.Pow((1-x)*(1+x), k) }
	m1 := norm / float64(d-1) * (pw(lo) - pw(hi))
	return m0, m1 / m0
}

func lgamma(x float64) float64 { v, _ := math.Lgamma(x); return v }

// TestClosedFormsAgreeWithQuadrature checks the solver's cell integrals for
// Beta and Gaussian against textbook closed forms (regularized incomplete
// beta, erf/erfc, φ) and against generic Gauss–Legendre quadrature of the
// pdf, to 1e-12.
func TestClosedFormsAgreeWithQuadrature(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, d := range []int{3, 16, 128, 1024, 4096} {
		b := Beta(d).(*betaDensity)
		fm, err := newFuncModel(FromFunc(b.PDF, -1, 1))
		if err != nil {
			t.Fatal(err)
		}
		sigma := b.sigma
		cells := [][2]float64{{0, 1}, {0, sigma / 10}, {math.Min(3*sigma, 0.9), 1}}
		for _, bits := range []int{3, 5} {
			cb := mustGet(t, FamilyBeta, d, bits)
			bd := append(cb.Boundaries[len(cb.Boundaries)/2:], 1)
			for i := 1; i < len(bd); i++ {
				cells = append(cells, [2]float64{bd[i-1], bd[i]})
			}
		}
		for range 20 {
			lo := math.Min(math.Abs(rnd.NormFloat64())*2*sigma, 0.99)
			cells = append(cells, [2]float64{lo, math.Min(1, lo+rnd.Float64()*sigma)})
		}
		for _, cl := range cells {
			lo, hi := cl[0], cl[1]
			m0, c := b.cell(lo, hi)
			qm0, qc := fm.cell(lo, hi)
			cm0, cc := betaClosedForm(d, lo, hi)
			if math.Abs(m0/qm0-1) > 1e-12 || math.Abs(c-qc) > 1e-12*sigma {
				t.Errorf("Beta(%d) [%g, %g]: cell (%.17g, %.17g), quadrature (%.17g, %.17g)", d, lo, hi, m0, c, qm0, qc)
			}
			// RegIncBeta normalizes through log-gamma differences, good to
			// about 1e-13 up to d = 128 but 1e-12 at d = 1024; skip beyond.
			if d <= 128 && (math.Abs(m0/cm0-1) > 1e-12 || math.Abs(c-cc) > 1e-12*sigma) {
				t.Errorf("Beta(%d) [%g, %g]: cell (%.17g, %.17g), closed form (%.17g, %.17g)", d, lo, hi, m0, c, cm0, cc)
			}
			// Mirrored and straddling cells.
			if nm0, nc := b.cell(-hi, -lo); nm0 != m0 || nc != -c {
				t.Errorf("Beta(%d) [%g, %g]: mirrored cell differs", d, lo, hi)
			}
			sm0, sc := b.cell(-lo, hi)
			qm0, qc = fm.cell(-lo, hi)
			if math.Abs(sm0/qm0-1) > 1e-12 || math.Abs(sc-qc) > 1e-12*sigma {
				t.Errorf("Beta(%d) [%g, %g]: straddling cell (%.17g, %.17g), quadrature (%.17g, %.17g)", d, -lo, hi, sm0, sc, qm0, qc)
			}
		}
	}

	g := unitNormal{}
	fm, err := newFuncModel(Gaussian(1))
	if err != nil {
		t.Fatal(err)
	}
	cells := [][2]float64{{0, math.Inf(1)}, {0, 1e-3}, {4, math.Inf(1)}, {-0.3, 0.7}}
	for _, bits := range []int{3, 5} {
		cb := mustGet(t, FamilyGaussian, 1, bits)
		bd := append(cb.Boundaries[len(cb.Boundaries)/2:], math.Inf(1))
		for i := 1; i < len(bd); i++ {
			cells = append(cells, [2]float64{bd[i-1], bd[i]})
		}
	}
	for range 20 {
		lo := math.Abs(rnd.NormFloat64()) * 2
		cells = append(cells, [2]float64{lo, lo + rnd.Float64()})
	}
	const r2 = 1 / math.Sqrt2
	for _, cl := range cells {
		lo, hi := cl[0], cl[1]
		m0, c := g.cell(lo, hi)
		var cm0 float64
		if lo > 0.5 {
			cm0 = (math.Erfc(lo*r2) - math.Erfc(hi*r2)) / 2
		} else {
			cm0 = (math.Erf(hi*r2) - math.Erf(lo*r2)) / 2
		}
		cc := (phi(lo) - phi(hi)) / cm0
		qm0, qc := fm.cell(math.Max(lo, -gaussianSpan), math.Min(hi, gaussianSpan))
		if math.Abs(m0/cm0-1) > 1e-12 || math.Abs(c-cc) > 1e-12 {
			t.Errorf("N(0,1) [%g, %g]: cell (%.17g, %.17g), closed form (%.17g, %.17g)", lo, hi, m0, c, cm0, cc)
		}
		if math.Abs(m0/qm0-1) > 1e-12 || math.Abs(c-qc) > 1e-12 {
			t.Errorf("N(0,1) [%g, %g]: cell (%.17g, %.17g), quadrature (%.17g, %.17g)", lo, hi, m0, c, qm0, qc)
		}
	}
}

// TestDistortionClosedForm compares the directly integrated distortion with
// Σ (M2 − 2cM1 + c²M0) from closed-form moments (which cancels, hence the
// looser tolerance).
func TestDistortionClosedForm(t *testing.T) {
	const r2 = 1 / math.Sqrt2
	for bits := 1; bits <= 4; bits++ {
		cb := mustGet(t, FamilyGaussian, 1, bits)
		var sum float64
		bd := append(append([]float64{math.Inf(-1)}, cb.Boundaries...), math.Inf(1))
		for i, c := range cb.Centroids {
			lo, hi := bd[i], bd[i+1]
			m0 := (math.Erf(hi*r2) - math.Erf(lo*r2)) / 2
			xphi := func(x float64) float64 {
				if math.IsInf(x, 0) {
					return 0
				}
				return x * phi(x)
			}
			m1 := phi(lo) - phi(hi)
			m2 := m0 + xphi(lo) - xphi(hi)
			sum += m2 - 2*c*m1 + c*c*m0
		}
		if math.Abs(sum/cb.Distortion-1) > 1e-9 {
			t.Errorf("N(0,1) b=%d: distortion %.15g, closed form %.15g", bits, cb.Distortion, sum)
		}

		const d = 128
		k := float64(d-1) / 2
		cbb := mustGet(t, FamilyBeta, d, bits)
		n := len(cbb.Centroids)
		bd = append(append([]float64{}, cbb.Boundaries[n/2-1:]...), 1)
		sum = 0
		for i, c := range cbb.Centroids[n/2:] {
			lo, hi := bd[i], bd[i+1]
			m0, cc := betaClosedForm(d, lo, hi)
			m2 := (mathext.RegIncBeta(1.5, k, hi*hi) - mathext.RegIncBeta(1.5, k, lo*lo)) / (2 * d)
			sum += 2 * (m2 - 2*c*cc*m0 + c*c*m0)
		}
		if math.Abs(sum/cbb.Distortion-1) > 1e-9 {
			t.Errorf("Beta(%d) b=%d: distortion %.15g, closed form %.15g", d, bits, cbb.Distortion, sum)
		}
	}
}

func TestBetaTendsToGaussian(t *testing.T) {
	for bits := 1; bits <= 8; bits++ {
		g := mustGet(t, FamilyGaussian, 1, bits)
		prev := math.Inf(1)
		for _, d := range []int{16, 128, 1024, 4096} {
			cb := mustGet(t, FamilyBeta, d, bits)
			s := math.Sqrt(float64(d))
			var gap float64
			for i, c := range cb.Centroids {
				gap = math.Max(gap, math.Abs(c*s-g.Centroids[i]))
			}
			gap = math.Max(gap, math.Abs(float64(d)*cb.Distortion-g.Distortion)/g.Distortion)
			if !(gap < prev) || (d == 4096 && gap > prev/3) {
				t.Errorf("b=%d d=%d: gap to the Gaussian %g did not shrink (was %g)", bits, d, gap, prev)
			}
			prev = gap
		}
		// The gap is O(1/d) (the outermost centroid moves most): 4× from
		// d = 1024 to 4096, at least 3× here.
		if prev > 1e-2 {
			t.Errorf("b=%d: Beta(4096) is %g from the Gaussian", bits, prev)
		}
	}
}

func TestSmallDimensions(t *testing.T) {
	// d = 3 is uniform on [−1, 1]: the optimum is the uniform grid.
	for bits := 1; bits <= 8; bits++ {
		cb := mustSolve(t, Beta(3), bits)
		n := float64(int(1) << bits)
		for i, c := range cb.Centroids {
			if want := (2*float64(i)+1)/n - 1; math.Abs(c-want) > 1e-14 {
				t.Errorf("Beta(3) b=%d: centroid %d = %.17g, want %.17g", bits, i, c, want)
			}
		}
		if want := 1 / (3 * n * n); math.Abs(cb.Distortion/want-1) > 1e-13 {
			t.Errorf("Beta(3) b=%d: distortion %.17g, want %.17g", bits, cb.Distortion, want)
		}
	}
	// d = 2 is the arcsine density: the 1-bit centroid is E|X| = 2/π.
	if c := mustSolve(t, Beta(2), 1).Centroids[1]; math.Abs(c-2/math.Pi) > 1e-15 {
		t.Errorf("Beta(2) 1-bit centroid %.17g, want 2/π", c)
	}
}

func TestFromFuncUniform(t *testing.T) {
	for _, iv := range [][2]float64{{0, 1}, {0, 2 * math.Pi}, {-3, 5}} {
		lo, hi := iv[0], iv[1]
		den := FromFunc(func(float64) float64 { return 7 }, lo, hi) // unnormalized on purpose
		for bits := 1; bits <= 8; bits++ {
			cb := mustSolve(t, den, bits)
			n := float64(int(1) << bits)
			w := (hi - lo) / n
			for i, c := range cb.Centroids {
				if want := lo + (float64(i)+0.5)*w; math.Abs(c-want) > 1e-13*(hi-lo) {
					t.Errorf("uniform[%g,%g] b=%d: centroid %d = %.17g, want %.17g", lo, hi, bits, i, c, want)
				}
			}
			if want := w * w / 12; math.Abs(cb.Distortion/want-1) > 1e-12 {
				t.Errorf("uniform[%g,%g] b=%d: distortion %.17g, want %.17g", lo, hi, bits, cb.Distortion, want)
			}
		}
	}
}

func TestFromFuncMatchesClosedForms(t *testing.T) {
	for _, d := range []int{16, 128, 4096} {
		for bits := 1; bits <= 4; bits++ {
			a := mustSolve(t, FromFunc(Beta(d).PDF, -1, 1), bits)
			b := mustGet(t, FamilyBeta, d, bits)
			sigma := 1 / math.Sqrt(float64(d))
			for i := range a.Centroids {
				if math.Abs(a.Centroids[i]-b.Centroids[i]) > 1e-12*sigma {
					t.Errorf("d=%d b=%d: FromFunc centroid %d = %.17g, Beta %.17g", d, bits, i, a.Centroids[i], b.Centroids[i])
				}
			}
			if math.Abs(a.Distortion/b.Distortion-1) > 1e-12 {
				t.Errorf("d=%d b=%d: FromFunc distortion %.17g, Beta %.17g", d, bits, a.Distortion, b.Distortion)
			}
		}
	}
}

func TestInvalidDensities(t *testing.T) {
	cases := map[string]Density{
		"negative pdf":   FromFunc(func(x float64) float64 { return x }, -1, 1),
		"NaN pdf":        FromFunc(func(x float64) float64 { return math.NaN() }, 0, 1),
		"infinite pdf":   FromFunc(func(x float64) float64 { return math.Inf(1) }, 0, 1),
		"zero mass":      FromFunc(func(x float64) float64 { return 0 }, 0, 1),
		"lo = hi":        FromFunc(func(x float64) float64 { return 1 }, 1, 1),
		"lo > hi":        FromFunc(func(x float64) float64 { return 1 }, 2, 1),
		"infinite lo":    FromFunc(func(x float64) float64 { return 1 }, math.Inf(-1), 1),
		"NaN hi":         FromFunc(func(x float64) float64 { return 1 }, 0, math.NaN()),
		"nil pdf":        FromFunc(nil, 0, 1),
		"nil density":    nil,
		"negative spike": FromFunc(func(x float64) float64 { return 1 - 2*math.Exp(-1e4*(x-0.3)*(x-0.3)) }, 0, 1),
	}
	for name, den := range cases {
		for _, bits := range []int{1, 4} {
			if _, err := Solve(den, bits, Options{}); !errors.Is(err, ErrDensity) {
				t.Errorf("%s, %d bits: err = %v, want ErrDensity", name, bits, err)
			}
		}
	}
}

func TestArgumentErrors(t *testing.T) {
	for _, bits := range []int{-1, 0, 9} {
		if _, err := Solve(Beta(128), bits, Options{}); !errors.Is(err, ErrBits) {
			t.Errorf("Solve bits=%d: err = %v, want ErrBits", bits, err)
		}
		if _, err := Get(FamilyBeta, 128, bits); !errors.Is(err, ErrBits) {
			t.Errorf("Get bits=%d: err = %v, want ErrBits", bits, err)
		}
	}
	for _, d := range []int{-5, 0, 1} {
		if _, err := Solve(Beta(d), 2, Options{}); !errors.Is(err, ErrDim) {
			t.Errorf("Solve Beta(%d): err = %v, want ErrDim", d, err)
		}
		if _, err := Get(FamilyBeta, d, 2); !errors.Is(err, ErrDim) {
			t.Errorf("Get Beta %d: err = %v, want ErrDim", d, err)
		}
	}
	for _, d := range []int{-1, 0} {
		if _, err := Solve(Gaussian(d), 2, Options{}); !errors.Is(err, ErrDim) {
			t.Errorf("Solve Gaussian(%d): err = %v, want ErrDim", d, err)
		}
		if _, err := Get(FamilyGaussian, d, 2); !errors.Is(err, ErrDim) {
			t.Errorf("Get Gaussian %d: err = %v, want ErrDim", d, err)
		}
	}
	if _, err := Get(Family(9), 128, 2); err == nil {
		t.Error("Get with an unknown family succeeded")
	}
}

func TestOptions(t *testing.T) {
	if _, err := Solve(Beta(1000), 8, Options{MaxIter: 2}); !errors.Is(err, ErrNoConvergence) {
		t.Errorf("MaxIter 2: err = %v, want ErrNoConvergence", err)
	}
	loose, err := Solve(Beta(1000), 8, Options{Tol: 1e-6})
	if err != nil {
		t.Fatal(err)
	}
	tight := mustSolve(t, Beta(1000), 8)
	if loose.Iterations > tight.Iterations {
		t.Errorf("Tol 1e-6 took %d iterations, default %d", loose.Iterations, tight.Iterations)
	}
	for i := range tight.Centroids {
		if math.Abs(loose.Centroids[i]-tight.Centroids[i]) > 1e-6/math.Sqrt(1000) {
			t.Fatalf("Tol 1e-6: centroid %d off by %g", i, loose.Centroids[i]-tight.Centroids[i])
		}
	}
}

// TestTablesMatchSolve checks the committed tables against fresh solves
// (all of them unless -short) and that they cover what gentables promises.
func TestTablesMatchSolve(t *testing.T) {
	if len(betaTables) == 0 || gaussianTable == nil {
		t.Fatal("no committed tables: run go generate ./lloydmax")
	}
	check := func(name string, den Density, sigma float64, e tableEntry, bits int) (exact bool) {
		got := fromTable(bits, e)
		want := mustSolve(t, den, bits)
		exact = got.Distortion == want.Distortion
		for i := range want.Centroids {
			if d := math.Abs(got.Centroids[i] - want.Centroids[i]); d > 1e-12*sigma {
				t.Errorf("%s b=%d: table centroid %d = %.17g, Solve %.17g", name, bits, i, got.Centroids[i], want.Centroids[i])
			} else if d != 0 {
				exact = false
			}
		}
		if math.Abs(got.Distortion/want.Distortion-1) > 1e-12 {
			t.Errorf("%s b=%d: table distortion %.17g, Solve %.17g", name, bits, got.Distortion, want.Distortion)
		}
		return exact
	}
	total, exact := 0, 0
	count := func(ok bool) {
		total++
		if ok {
			exact++
		}
	}
	for bits := 1; bits <= 8; bits++ {
		count(check("N(0,1)", Gaussian(1), 1, gaussianTable[bits-1], bits))
	}
	for i, td := range betaTables {
		if i > 0 && td.dim <= betaTables[i-1].dim {
			t.Fatalf("betaTables not ascending at %d", td.dim)
		}
		if testing.Short() && td.dim != 16 && td.dim != 128 && td.dim != 4096 {
			continue
		}
		for bits := 1; bits <= 8; bits++ {
			if len(td.entries[bits-1].pos) != 1<<(bits-1) {
				t.Fatalf("dim %d b=%d: %d stored centroids", td.dim, bits, len(td.entries[bits-1].pos))
			}
			count(check("Beta", Beta(td.dim), 1/math.Sqrt(float64(td.dim)), td.entries[bits-1], bits))
		}
	}
	// Bit-exact on the platform that generated them (amd64); other
	// platforms may differ in the last bits (FMA contraction, math asm).
	t.Logf("%d of %d table entries equal a fresh Solve bit for bit", exact, total)
	for _, d := range []int{16, 32, 48, 64, 80, 96, 100, 112, 128, 192, 200, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096} {
		if _, ok := lookupBeta(d, 1); !ok {
			t.Errorf("dim %d missing from the tables", d)
		}
	}
}

func TestGetSharedAndConsistent(t *testing.T) {
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-14*math.Abs(b) }
	a := mustGet(t, FamilyBeta, 128, 3)
	if b := mustGet(t, FamilyBeta, 128, 3); a != b {
		t.Error("Get returned different pointers for the same key")
	}
	if a.Iterations != 0 {
		t.Errorf("table entry has Iterations = %d", a.Iterations)
	}
	// An uncommitted dimension is solved, and equals Solve.
	g := mustGet(t, FamilyBeta, 777, 5)
	s := mustSolve(t, Beta(777), 5)
	if g.Iterations == 0 || !slices.EqualFunc(g.Centroids, s.Centroids, near) {
		t.Error("Get(777) differs from Solve(Beta(777))")
	}
	// Gaussian codebooks are the unit table scaled by 1/√d, and equal Solve
	// (to the last few ulps: a fresh Solve on a machine whose math fuses
	// multiply-adds, such as arm64, can differ from the committed table
	// there).
	for _, d := range []int{1, 2, 128, 333} {
		gg := mustGet(t, FamilyGaussian, d, 4)
		sg := mustSolve(t, Gaussian(d), 4)
		unit := mustGet(t, FamilyGaussian, 1, 4)
		for i, c := range gg.Centroids {
			if !near(c, sg.Centroids[i]) || c != unit.Centroids[i]/math.Sqrt(float64(d)) {
				t.Fatalf("Gaussian d=%d: centroid %d = %v, Solve %v, unit/√d %v", d, i, c, sg.Centroids[i], unit.Centroids[i]/math.Sqrt(float64(d)))
			}
		}
		if gg.Distortion != unit.Distortion/float64(d) || !near(gg.Distortion, sg.Distortion) {
			t.Errorf("Gaussian d=%d: distortion %v, want %v", d, gg.Distortion, unit.Distortion/float64(d))
		}
	}
}

func TestGetConcurrent(t *testing.T) {
	dims := []int{128, 131, 257, 1000}
	const workers = 8
	results := make([][]*Codebook, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, d := range dims {
				for bits := 1; bits <= 8; bits++ {
					for _, f := range []Family{FamilyBeta, FamilyGaussian} {
						cb, err := Get(f, d, bits)
						if err != nil {
							t.Error(err)
							return
						}
						results[w] = append(results[w], cb)
					}
				}
			}
		}()
	}
	wg.Wait()
	for w := 1; w < workers; w++ {
		for i, cb := range results[w] {
			if cb != results[0][i] {
				t.Fatalf("worker %d got a different codebook for key %d", w, i)
			}
		}
	}
}

func TestFingerprint(t *testing.T) {
	a := mustGet(t, FamilyBeta, 128, 4)
	if a.Fingerprint() != fingerprint(a.Bits, a.Centroids) {
		t.Error("cached fingerprint differs from a recomputed one")
	}
	// Golden: serialized quantizers store this value; it changes only if
	// the committed table for (Beta, 128, 4 bits) changes.
	const golden = 0xee1350d1a6c414cf
	if a.Fingerprint() != golden {
		t.Errorf("Fingerprint = %#x, want %#x", a.Fingerprint(), uint64(golden))
	}
	seen := map[uint64]string{}
	for _, d := range []int{64, 128, 129} {
		for bits := 1; bits <= 8; bits++ {
			for _, f := range []Family{FamilyBeta, FamilyGaussian} {
				fp := mustGet(t, f, d, bits).Fingerprint()
				key := f.String()
				if prev, dup := seen[fp]; dup {
					t.Errorf("fingerprint collision: %s and %s/%d/%d", prev, key, d, bits)
				}
				seen[fp] = key
			}
		}
	}
	var lit Codebook // a codebook built by hand still fingerprints
	lit.Bits, lit.Centroids = a.Bits, a.Centroids
	if lit.Fingerprint() != a.Fingerprint() {
		t.Error("fingerprint of a copied codebook differs")
	}
}

func TestDeterministic(t *testing.T) {
	for _, den := range []Density{Beta(321), Gaussian(7), FromFunc(func(x float64) float64 { return math.Pow(math.Sin(2*x), 3) }, 0, math.Pi/2)} {
		a, b := mustSolve(t, den, 6), mustSolve(t, den, 6)
		if a.Fingerprint() != b.Fingerprint() || a.Distortion != b.Distortion || a.Iterations != b.Iterations {
			t.Error("two solves of the same density differ")
		}
	}
}

// TestAwkwardDensities: caller densities with jumps, gaps, a narrow peak,
// two modes or a long tail still converge to a Lloyd fixed point.
func TestAwkwardDensities(t *testing.T) {
	cases := map[string]Density{
		"narrow peak": FromFunc(func(x float64) float64 { return math.Exp(-1e6 * x * x) }, -1, 1),
		"bimodal": FromFunc(func(x float64) float64 {
			return math.Exp(-50*(x-0.3)*(x-0.3)) + 0.5*math.Exp(-200*(x+0.4)*(x+0.4))
		}, -1, 1),
		"step": FromFunc(func(x float64) float64 {
			if x < 0.3 {
				return 1
			}
			return 5
		}, 0, 1),
		"gap": FromFunc(func(x float64) float64 {
			if x > 0.4 && x < 0.6 {
				return 0
			}
			return 1
		}, 0, 1),
		"exponential": FromFunc(func(x float64) float64 { return math.Exp(-x) }, 0, 50),
		"sin^7(2ψ)":   FromFunc(func(x float64) float64 { return math.Pow(math.Sin(2*x), 7) }, 0, math.Pi/2),
	}
	for name, den := range cases {
		fm, err := newFuncModel(den)
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := den.Support()
		for _, bits := range []int{1, 2, 3, 5, 8} {
			if testing.Short() && bits > 3 {
				continue
			}
			cb, err := Solve(den, bits, Options{})
			if err != nil {
				t.Errorf("%s b=%d: %v", name, bits, err)
				continue
			}
			for i, c := range cb.Centroids {
				a, b := lo, hi
				if i > 0 {
					a = cb.Boundaries[i-1]
				}
				if i < len(cb.Boundaries) {
					b = cb.Boundaries[i]
				}
				if _, q := fm.cell(a, b); math.Abs(q-c) > 1e-9*fm.std {
					t.Errorf("%s b=%d: cell %d mean %.17g, centroid %.17g", name, bits, i, q, c)
				}
			}
		}
	}
}

// TestHugeDimensions: the Beta cells stay accurate and cheap where the
// density is a sliver of [−1, 1].
func TestHugeDimensions(t *testing.T) {
	g := mustGet(t, FamilyGaussian, 1, 8)
	for _, d := range []int{1 << 16, 1 << 24} {
		cb := mustSolve(t, Beta(d), 8)
		s := math.Sqrt(float64(d))
		for i, c := range cb.Centroids {
			if math.Abs(c*s-g.Centroids[i]) > 50/float64(d)+1e-9 {
				t.Errorf("d=%d: centroid %d ×√d = %.12g, Gaussian %.12g", d, i, c*s, g.Centroids[i])
			}
		}
	}
}

// TestGammaHalfRatio checks Γ(k+½)/Γ(k) on both sides of the switch from the
// direct ratio to the asymptotic series, where both are accurate.
func TestGammaHalfRatio(t *testing.T) {
	for k := 0.5; k <= 80; k += 0.5 {
		direct := math.Gamma(k+0.5) / math.Gamma(k)
		if got := gammaHalfRatio(k); math.Abs(got/direct-1) > 4e-15 {
			t.Errorf("k=%v: %.17g, Γ ratio %.17g", k, got, direct)
		}
	}
	// Large k: against log-gamma (itself good to ~|lnΓ|·ε).
	for _, k := range []float64{100, 1023.5, 2047.5, 1e6} {
		want := math.Exp(lgamma(k+0.5) - lgamma(k))
		tol := 4 * lgamma(k) * 0x1p-52
		if got := gammaHalfRatio(k); math.Abs(got/want-1) > tol {
			t.Errorf("k=%v: %.17g, via Lgamma %.17g", k, got, want)
		}
	}
}

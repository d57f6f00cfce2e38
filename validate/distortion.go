package validate

import (
	"fmt"
	"math"

	"github.com/turboquant-go/tq/internal/rng"
	"github.com/turboquant-go/tq/turboquant"
)

// UnitVectors returns n independent uniform random unit vectors of dim d,
// row-major, determined by seed.
func UnitVectors(n, d int, seed uint64) []float32 {
	r := rng.New(seed)
	out := make([]float32, n*d)
	for i := range n {
		v := out[i*d : (i+1)*d]
		var ss float64
		for j := range v {
			g := r.Norm()
			v[j] = float32(g)
			ss += g * g
		}
		inv := 1 / math.Sqrt(ss)
		for j := range v {
			v[j] = float32(float64(v[j]) * inv)
		}
	}
	return out
}

// Distortion is a Monte Carlo measurement over random unit vectors x with
// independent random unit queries y.
type Distortion struct {
	Dim    int    `json:"dim"`
	Bits   int    `json:"bits"`
	Method string `json:"method"`
	N      int    `json:"n"`
	// MSE is E‖x − x̃‖².
	MSE float64 `json:"mse"`
	// IPShrink is E⟨x, x̃⟩ (y = x: the multiplicative bias of MSE codes).
	IPShrink float64 `json:"ip_shrink"`
	// IPBias is the mean of ⟨y, x̃⟩ − ⟨y, x⟩ as scored from the code.
	IPBias float64 `json:"ip_bias"`
	// IPVarD is d · Var(⟨y, x̃⟩ − ⟨y, x⟩).
	IPVarD float64 `json:"ip_var_d"`
	// BytesPerVector is the code size.
	BytesPerVector int `json:"bytes_per_vector"`
}

// MeasureDistortion encodes n random unit vectors with q and measures the
// reconstruction and inner-product errors. Bits is reported as the
// configured bits (0 for PolarQuant, whose rate is fixed).
func MeasureDistortion(q *turboquant.Quantizer, n int, seed uint64) (Distortion, error) {
	if n < 2 {
		return Distortion{}, fmt.Errorf("validate: need at least 2 samples, got %d", n)
	}
	d := q.Dim()
	cfg := q.Config()
	xs := UnitVectors(n, d, seed)
	ys := UnitVectors(n, d, rng.Derive(seed, 1))
	code := make([]byte, q.CodeSize())
	rec := make([]float32, d)
	query := q.NewQuery()
	var mse, shrink float64
	var ip meanVar
	for i := range n {
		x, y := xs[i*d:(i+1)*d], ys[i*d:(i+1)*d]
		if err := q.Encode(code, x); err != nil {
			return Distortion{}, err
		}
		if err := q.Decode(rec, code); err != nil {
			return Distortion{}, err
		}
		if err := query.Reset(y); err != nil {
			return Distortion{}, err
		}
		s, err := query.Score(code)
		if err != nil {
			return Distortion{}, err
		}
		mse += SquaredDistance(x, rec)
		shrink += Dot(x, rec)
		ip.add(float64(s) - Dot(x, y))
	}
	return Distortion{
		Dim: d, Bits: cfg.Bits, Method: cfg.Method.String(), N: n,
		MSE: mse / float64(n), IPShrink: shrink / float64(n),
		IPBias: ip.mean, IPVarD: ip.variance() * float64(d),
		BytesPerVector: q.CodeSize(),
	}, nil
}

// MSEBounds returns the paper's bounds on D_mse for b bits per coordinate:
// 4^−b ≤ D_mse ≤ (√3·π/2)·4^−b (Zandieh et al., TurboQuant, Theorem 1 and
// the information-theoretic lower bound).
func MSEBounds(bits int) (lo, hi float64) {
	p := math.Pow(4, -float64(bits))
	return p, math.Sqrt(3) * math.Pi / 2 * p
}

// ProdBounds returns the paper's bounds on d·D_prod for unit vectors x and
// y and b bits: 4^−b ≤ d·D_prod ≤ √3·π²·4^−b (TurboQuant, Theorem 2 and the
// lower bound), where D_prod = E[(⟨y, x̃⟩ − ⟨y, x⟩)²] for the inner-product
// (Prod) quantizer. Compare with MeasureDistortion's IPVarD, which is
// d·Var of the same error (the estimator is unbiased).
func ProdBounds(bits int) (lo, hi float64) {
	p := math.Pow(4, -float64(bits))
	return p, math.Sqrt(3) * math.Pi * math.Pi * p
}

// Dot is ⟨a, b⟩ accumulated in float64.
func Dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// SquaredDistance is ‖a − b‖² accumulated in float64.
func SquaredDistance(a, b []float32) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return s
}

// meanVar accumulates a mean and variance in one pass (Welford).
type meanVar struct {
	n        int
	mean, m2 float64
}

func (m *meanVar) add(x float64) {
	m.n++
	d := x - m.mean
	m.mean += d / float64(m.n)
	m.m2 += d * (x - m.mean)
}

func (m *meanVar) variance() float64 { return m.m2 / float64(m.n-1) }

package validate

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/turboquant-go/tq/internal/rng"
)

// ErrSynth is wrapped by the errors of the synthetic K/V generator.
var ErrSynth = errors.New("validate: synthetic K/V")

// VectorModel is a fitted distribution of one kind of attention vector
// (keys, values or queries of one head): x = μ + s·(B·z + r∘z′) with z, z′
// standard normal, B the leading principal directions of the real
// covariance scaled by the square roots of their variances, r the per-channel
// standard deviation the leading directions leave unexplained, and s a
// per-token log-normal scale (E s² = 1) that reproduces the spread of the
// real vectors' norms. It keeps the real data's channel means (which carry
// the outlier channels: real key means are a large fraction of the key
// norm), per-channel variances, channel correlations and norm spread.
type VectorModel struct {
	Dim   int
	Mean  []float64
	Basis [][]float64 // rank × Dim
	Resid []float64
	// NormSigma is the standard deviation of log s.
	NormSigma float64
}

// VectorStats describes a set of vectors by the features that make
// quantization hard.
type VectorStats struct {
	N int `json:"n"`
	// OutlierRatio is the largest per-channel mean |x| over the median
	// one (≈1 for isotropic data, ≈3 for real keys).
	OutlierRatio float64 `json:"outlier_ratio"`
	// NormMean and NormCV are the mean and coefficient of variation of ‖x‖.
	NormMean float64 `json:"norm_mean"`
	NormCV   float64 `json:"norm_cv"`
	// MeanFraction is ‖mean x‖ / mean ‖x‖: how far the vectors are from
	// centred.
	MeanFraction float64 `json:"mean_fraction"`
}

// DescribeVectors measures rows (all of one dimension).
func DescribeVectors(rows [][]float32) VectorStats {
	st := VectorStats{N: len(rows)}
	if len(rows) == 0 {
		return st
	}
	d := len(rows[0])
	absMean, mean := make([]float64, d), make([]float64, d)
	var norms meanVar
	for _, x := range rows {
		for j, v := range x {
			absMean[j] += math.Abs(float64(v))
			mean[j] += float64(v)
		}
		norms.add(math.Sqrt(Dot(x, x)))
	}
	var mm float64
	for j := range mean {
		mean[j] /= float64(len(rows))
		mm += mean[j] * mean[j]
	}
	sorted := slices.Clone(absMean)
	slices.Sort(sorted)
	if med := sorted[d/2]; med > 0 {
		st.OutlierRatio = sorted[d-1] / med
	}
	st.NormMean = norms.mean
	if norms.n > 1 && norms.mean > 0 {
		st.NormCV = math.Sqrt(norms.variance()) / norms.mean
	}
	if norms.mean > 0 {
		st.MeanFraction = math.Sqrt(mm) / norms.mean
	}
	return st
}

// fitExplained is the share of the centred variance the principal
// directions of a VectorModel carry; the rest is modelled per channel.
const fitExplained = 0.8

// FitVectors fits a VectorModel to rows (at least 2 of one dimension).
func FitVectors(rows [][]float32) (VectorModel, error) {
	n := len(rows)
	if n < 2 {
		return VectorModel{}, fmt.Errorf("%w: need at least 2 vectors to fit, got %d", ErrSynth, n)
	}
	d := len(rows[0])
	m := VectorModel{Dim: d, Mean: make([]float64, d)}
	for _, x := range rows {
		if len(x) != d {
			return VectorModel{}, fmt.Errorf("%w: vectors of %d and %d values", ErrSynth, d, len(x))
		}
		for j, v := range x {
			m.Mean[j] += float64(v)
		}
	}
	for j := range m.Mean {
		m.Mean[j] /= float64(n)
	}
	sums := make([]float64, d*d) // upper triangle used
	c := make([]float64, d)
	for _, x := range rows {
		for j := range c {
			c[j] = float64(x[j]) - m.Mean[j]
		}
		for i := range d {
			row, ci := sums[i*d:(i+1)*d], c[i]
			for j := i; j < d; j++ {
				row[j] += ci * c[j]
			}
		}
	}
	for i := range d {
		for j := i; j < d; j++ {
			sums[i*d+j] /= float64(n - 1)
			sums[j*d+i] = sums[i*d+j]
		}
	}
	cov := mat.NewSymDense(d, sums)
	var eig mat.EigenSym
	if !eig.Factorize(cov, true) {
		return VectorModel{}, fmt.Errorf("%w: eigendecomposition failed", ErrSynth)
	}
	vals := eig.Values(nil) // ascending
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	var total float64
	for _, v := range vals {
		total += max(v, 0)
	}
	order := make([]int, d)
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return vals[order[a]] > vals[order[b]] })
	m.Resid = make([]float64, d)
	for j := range d {
		m.Resid[j] = cov.At(j, j)
	}
	var kept float64
	for _, i := range order {
		if total == 0 || kept >= fitExplained*total {
			break
		}
		lam := max(vals[i], 0)
		kept += lam
		b := make([]float64, d)
		for j := range d {
			u := vecs.At(j, i)
			b[j] = u * math.Sqrt(lam)
			m.Resid[j] -= lam * u * u
		}
		m.Basis = append(m.Basis, b)
	}
	for j := range m.Resid {
		m.Resid[j] = math.Sqrt(max(m.Resid[j], 0))
	}
	m.NormSigma = m.fitNormSigma(DescribeVectors(rows).NormCV)
	return m, nil
}

// fitNormSigma finds the log-normal spread whose samples have the norm
// coefficient of variation want: bisection over one fixed sample of the
// centred Gaussian part y, whose norms under a scale s follow from
// ‖μ + s·y‖² = ‖μ‖² + 2s·⟨μ, y⟩ + s²·‖y‖² (so the search is monotone,
// deterministic and cheap).
func (m *VectorModel) fitNormSigma(want float64) float64 {
	const n = 4096
	muY, yy, g := make([]float64, n), make([]float64, n), make([]float64, n)
	var mm float64
	for _, v := range m.Mean {
		mm += v * v
	}
	r := rng.New(0x5eed)
	z := make([]float64, len(m.Basis)+m.Dim)
	y := make([]float32, m.Dim)
	for i := range n {
		for j := range z {
			z[j] = r.Norm()
		}
		g[i] = r.Norm()
		m.centred(y, z)
		for j, v := range y {
			muY[i] += m.Mean[j] * float64(v)
			yy[i] += float64(v) * float64(v)
		}
	}
	cv := func(sigma float64) float64 {
		var norms meanVar
		for i := range n {
			s := math.Exp(sigma*g[i] - sigma*sigma)
			norms.add(math.Sqrt(max(mm+2*s*muY[i]+s*s*yy[i], 0)))
		}
		return math.Sqrt(norms.variance()) / norms.mean
	}
	lo, hi := 0.0, 2.0
	if cv(lo) >= want {
		return 0
	}
	for range 50 {
		mid := (lo + hi) / 2
		if cv(mid) < want {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// centred writes B·z[:rank] + r∘z[rank:] into y.
func (m *VectorModel) centred(y []float32, z []float64) {
	rank := len(m.Basis)
	acc := make([]float64, len(y))
	for j := range acc {
		acc[j] = m.Resid[j] * z[rank+j]
	}
	for i, b := range m.Basis {
		zi := z[i]
		for j, bj := range b {
			acc[j] += bj * zi
		}
	}
	for j := range y {
		y[j] = float32(acc[j])
	}
}

// compose writes μ + e^logS·(B·z[:rank] + r∘z[rank:]) into x, using acc
// (len Dim) as scratch.
func (m *VectorModel) compose(x []float32, z []float64, logS float64, acc []float64) {
	s := math.Exp(logS)
	rank := len(m.Basis)
	for j := range acc {
		acc[j] = m.Resid[j] * z[rank+j]
	}
	for i, b := range m.Basis {
		zi := z[i]
		for j, bj := range b {
			acc[j] += bj * zi
		}
	}
	for j := range x {
		x[j] = float32(m.Mean[j] + s*acc[j])
	}
}

// sample draws one vector into x.
func (m *VectorModel) sample(x []float32, r *rng.Source, z, acc []float64) {
	for j := range z {
		z[j] = r.Norm()
	}
	g := r.Norm()
	m.compose(x, z, m.NormSigma*g-m.NormSigma*m.NormSigma, acc)
}

// HeadModel is the fitted keys, values and queries of one attention head.
type HeadModel struct {
	K, V, Q VectorModel
}

// SynthKV generates keys, values and queries with the structure of real
// K/V: each KV head h follows the fitted model of real head h mod
// len(Heads). Output is deterministic for a seed, on every platform.
type SynthKV struct {
	Dim   int
	Heads []HeadModel
}

// FitSynthKV fits one HeadModel per head of a layer of real K/V (keys,
// values and queries of every chunk).
func FitSynthKV(kv *RealKV, layer int) (*SynthKV, error) {
	if len(kv.Chunks) == 0 {
		return nil, fmt.Errorf("%w: no chunks", ErrSynth)
	}
	l0 := kv.Chunks[0].layerAt(layer)
	if l0 == nil {
		return nil, fmt.Errorf("%w: no layer %d", ErrSynth, layer)
	}
	s := &SynthKV{Dim: l0.HeadDim}
	for h := range l0.Heads {
		var hm HeadModel
		for _, which := range []struct {
			m   *VectorModel
			get func(*RealKVLayer) [][][]float32
		}{
			{&hm.K, func(l *RealKVLayer) [][][]float32 { return l.K }},
			{&hm.V, func(l *RealKVLayer) [][][]float32 { return l.V }},
			{&hm.Q, func(l *RealKVLayer) [][][]float32 { return l.Q }},
		} {
			var rows [][]float32
			for ci := range kv.Chunks {
				rows = append(rows, which.get(kv.Chunks[ci].layerAt(layer))[h]...)
			}
			m, err := FitVectors(rows)
			if err != nil {
				return nil, fmt.Errorf("layer %d head %d: %w", layer, h, err)
			}
			*which.m = m
		}
		s.Heads = append(s.Heads, hm)
	}
	return s, nil
}

var (
	defaultSynthOnce sync.Once
	defaultSynth     *SynthKV
	defaultSynthErr  error
)

// DefaultSynthKV is FitSynthKV on layer 1 of the embedded real fixture
// (4 heads × d=128), fitted once per process.
func DefaultSynthKV() (*SynthKV, error) {
	defaultSynthOnce.Do(func() {
		kv, err := LoadEmbeddedRealKV()
		if err != nil {
			defaultSynthErr = err
			return
		}
		defaultSynth, defaultSynthErr = FitSynthKV(kv, 1)
	})
	return defaultSynth, defaultSynthErr
}

// Kind selects keys, values or queries.
type Kind int

const (
	Keys Kind = iota
	Values
	Queries
)

func (hm *HeadModel) model(k Kind) *VectorModel {
	switch k {
	case Values:
		return &hm.V
	case Queries:
		return &hm.Q
	}
	return &hm.K
}

// Sample returns n vectors of one kind for KV head h, [n][Dim], from the
// stream (seed, h, kind): the same arguments give the same vectors.
func (s *SynthKV) Sample(kind Kind, h, n int, seed uint64) []float32 {
	m := s.Heads[h%len(s.Heads)].model(kind)
	r := rng.New(rng.Derive(rng.Derive(seed, uint64(h)), uint64(kind)))
	z, acc := make([]float64, len(m.Basis)+m.Dim), make([]float64, m.Dim)
	out := make([]float32, n*s.Dim)
	for i := range n {
		m.sample(out[i*s.Dim:(i+1)*s.Dim], r, z, acc)
	}
	return out
}

// Generate returns the keys and values of tokens tokens for kvHeads heads,
// each [tokens][kvHeads][Dim] as the cache's Append takes them. Heads are
// generated in parallel.
func (s *SynthKV) Generate(tokens, kvHeads int, seed uint64) (keys, values []float32) {
	d := s.Dim
	keys, values = make([]float32, tokens*kvHeads*d), make([]float32, tokens*kvHeads*d)
	var wg sync.WaitGroup
	for h := range kvHeads {
		for _, kind := range []Kind{Keys, Values} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dst := keys
				if kind == Values {
					dst = values
				}
				x := s.Sample(kind, h, tokens, seed)
				for t := range tokens {
					copy(dst[(t*kvHeads+h)*d:(t*kvHeads+h+1)*d], x[t*d:(t+1)*d])
				}
			}()
		}
	}
	wg.Wait()
	return keys, values
}

// Queries returns n query tokens for kvHeads·group query heads,
// [n][kvHeads·group][Dim]: query head q belongs to KV head q/group and is
// drawn from that head's query model.
func (s *SynthKV) Queries(n, kvHeads, group int, seed uint64) []float32 {
	d, qHeads := s.Dim, kvHeads*group
	out := make([]float32, n*qHeads*d)
	for h := range kvHeads {
		x := s.Sample(Queries, h, n*group, seed)
		for t := range n {
			for g := range group {
				q := h*group + g
				copy(out[(t*qHeads+q)*d:], x[(t*group+g)*d:(t*group+g+1)*d])
			}
		}
	}
	return out
}

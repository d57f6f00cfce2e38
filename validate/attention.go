package validate

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/turboquant-go/tq/internal/rng"
	"github.com/turboquant-go/tq/kvcache"
)

// ErrShape is wrapped by errors about mismatched lengths and shapes of the
// data given to the attention measurements.
var ErrShape = errors.New("validate: shape mismatch")

// Attention is the part of a KV cache the measurements use;
// *kvcache.Sequence implements it. Keys and values are [T][KVHeads][d],
// queries and outputs [T][QHeads][d], as kvcache.Cache documents.
type Attention interface {
	Append(layer int, keys, values []float32) error
	Logits(layer, qHead int, query, dst []float32) error
	Attend(layer int, queries, out []float32) error
	Close() error
}

// Builder makes an empty one-layer Attention of a shape.
type Builder func(kvHeads, qHeads, headDim int) (Attention, error)

// PresetBuilder builds turboquant sequences of a named preset (one layer),
// adjusted by adjust when it is not nil.
func PresetBuilder(preset string, adjust func(*kvcache.Config)) Builder {
	return func(kvHeads, qHeads, headDim int) (Attention, error) {
		cfg, err := kvcache.Preset(preset, 1, kvHeads, qHeads, headDim)
		if err != nil {
			return nil, err
		}
		if adjust != nil {
			adjust(&cfg)
		}
		pool, err := kvcache.NewPool(cfg, 0)
		if err != nil {
			return nil, err
		}
		return pool.NewSequence(), nil
	}
}

// RoundTripBuilder builds an attention that stores every key and value as
// quantize reconstructs it (quantize(dst, x) writes x's reconstruction into
// dst, both one head vector) and attends exactly in float64 over the
// reconstructions: a reference for quantizers outside the library, such as
// NaiveUniform.
func RoundTripBuilder(quantize func(dst, x []float32)) Builder {
	return func(kvHeads, qHeads, headDim int) (Attention, error) {
		if kvHeads < 1 || headDim < 1 || qHeads < kvHeads || qHeads%kvHeads != 0 {
			return nil, fmt.Errorf("%w: %d KV heads, %d query heads, head dim %d", ErrShape, kvHeads, qHeads, headDim)
		}
		both := func(dst, x []float32, _ int) { quantize(dst, x) }
		return &roundTrip{keyQ: both, valQ: both, h: kvHeads, qh: qHeads, d: headDim, scale: 1 / math.Sqrt(float64(headDim))}, nil
	}
}

// IdealValueBuilder builds an attention that keeps keys exactly and passes
// each value through the Gaussian rate–distortion test channel of an ideal
// code at bits per coordinate: centred on its KV head's mean over the first
// append (as kvcache's Center), x̂ = μ + (1−D)·r + sqrt(D(1−D))·σ·n for the
// centred value r, σ² = ‖r‖²/d, n standard normal (seeded), D = 2^(−2·bits).
// Its mean squared error is D·‖r‖², the least any code of that rate reaches
// on Gaussian coordinates (rotated values are close to Gaussian), against
// Lloyd–Max's 0.0345 at 3 bits. It is a reference for the NIAH grid: what
// the value side could reach at a rate, with nothing lost on the keys.
func IdealValueBuilder(bits float64, seed uint64) Builder {
	D := math.Exp2(-2 * bits)
	var calls atomic.Uint64
	return func(kvHeads, qHeads, headDim int) (Attention, error) {
		if kvHeads < 1 || headDim < 1 || qHeads < kvHeads || qHeads%kvHeads != 0 || !(bits > 0) {
			return nil, fmt.Errorf("%w: %d KV heads, %d query heads, head dim %d, %v bits", ErrShape, kvHeads, qHeads, headDim, bits)
		}
		r := rng.New(rng.Derive(seed, calls.Add(1)))
		rt := &roundTrip{h: kvHeads, qh: qHeads, d: headDim, scale: 1 / math.Sqrt(float64(headDim))}
		var means []float64 // [h][d]
		rt.keyQ = func(dst, x []float32, _ int) { copy(dst, x) }
		rt.first = func(values []float32) { means = headMeans(values, kvHeads, headDim) }
		rt.valQ = func(dst, x []float32, h int) {
			mu := means[h*headDim : (h+1)*headDim]
			var e float64
			for j, v := range x {
				e += (float64(v) - mu[j]) * (float64(v) - mu[j])
			}
			sd := math.Sqrt(D * (1 - D) * e / float64(headDim))
			for j, v := range x {
				dst[j] = float32(mu[j] + (1-D)*(float64(v)-mu[j]) + sd*r.Norm())
			}
		}
		return rt, nil
	}
}

// headMeans is the mean of each KV head's vectors in xs ([T][h][d]).
func headMeans(xs []float32, h, d int) []float64 {
	mu := make([]float64, h*d)
	T := len(xs) / (h * d)
	for t := range T {
		for i, x := range xs[t*h*d : (t+1)*h*d] {
			mu[i] += float64(x)
		}
	}
	for i := range mu {
		mu[i] /= float64(T)
	}
	return mu
}

// roundTrip stores keys and values as keyQ and valQ reconstruct them
// (dst, x: one head vector of KV head h) and attends exactly on them.
type roundTrip struct {
	keyQ, valQ func(dst, x []float32, h int)
	first      func(values []float32) // called with the first append's values (nil: nothing)
	h, qh, d   int
	scale      float64
	keys, vals []float32 // [T][h][d] reconstructions
}

func (r *roundTrip) len() int { return len(r.keys) / (r.h * r.d) }

func (r *roundTrip) Append(layer int, keys, values []float32) error {
	row := r.h * r.d
	if layer != 0 || len(keys) == 0 || len(keys)%row != 0 || len(values) != len(keys) {
		return fmt.Errorf("%w: layer %d, %d keys and %d values of rows of %d", ErrShape, layer, len(keys), len(values), row)
	}
	if r.first != nil && len(r.keys) == 0 {
		r.first(values)
	}
	for i := 0; i < len(keys); i += r.d {
		h := i / r.d % r.h
		r.keys = append(r.keys, make([]float32, r.d)...)
		r.keyQ(r.keys[len(r.keys)-r.d:], keys[i:i+r.d], h)
		r.vals = append(r.vals, make([]float32, r.d)...)
		r.valQ(r.vals[len(r.vals)-r.d:], values[i:i+r.d], h)
	}
	return nil
}

func (r *roundTrip) Logits(layer, qHead int, query, dst []float32) error {
	n := r.len()
	if layer != 0 || qHead < 0 || qHead >= r.qh || len(query) != r.d || len(dst) < n {
		return fmt.Errorf("%w: logits of layer %d query head %d", ErrShape, layer, qHead)
	}
	h := qHead / (r.qh / r.h)
	for t := range n {
		dst[t] = float32(Dot(query, r.keys[(t*r.h+h)*r.d:(t*r.h+h+1)*r.d]) * r.scale)
	}
	return nil
}

func (r *roundTrip) Attend(layer int, queries, out []float32) error {
	row, n := r.qh*r.d, r.len()
	if layer != 0 || len(queries) == 0 || len(queries)%row != 0 || len(out) != len(queries) || len(queries)/row > n {
		return fmt.Errorf("%w: attend on layer %d with %d queries", ErrShape, layer, len(queries))
	}
	T := len(queries) / row
	for i := range T {
		limit := n - T + i + 1
		for qh := range r.qh {
			h := qh / (r.qh / r.h)
			ks, vs := make([][]float32, limit), make([][]float32, limit)
			for t := range limit {
				ks[t] = r.keys[(t*r.h+h)*r.d : (t*r.h+h+1)*r.d]
				vs[t] = r.vals[(t*r.h+h)*r.d : (t*r.h+h+1)*r.d]
			}
			o := (i*r.qh + qh) * r.d
			attendExact(out[o:o+r.d], queries[o:o+r.d], ks, vs, r.scale)
		}
	}
	return nil
}

// Truncate keeps the first n tokens, as kvcache.Sequence.Truncate does.
func (r *roundTrip) Truncate(n int) error {
	if n < 0 || n > r.len() {
		return fmt.Errorf("%w: truncate to %d of %d tokens", ErrShape, n, r.len())
	}
	r.keys, r.vals = r.keys[:n*r.h*r.d], r.vals[:n*r.h*r.d]
	return nil
}

func (r *roundTrip) Close() error { r.keys, r.vals = nil, nil; return nil }

// NaiveUniform is plain low-bit rounding, the baseline TurboQuant improves
// on: each vector is rounded on its own to 2^bits evenly spaced levels
// between its smallest and largest coordinate (no rotation, no codebook;
// the min and max kept exactly). With real keys' outlier channels most
// coordinates fall into one or two levels.
func NaiveUniform(bits int) func(dst, x []float32) {
	levels := float64(int(1)<<bits - 1)
	return func(dst, x []float32) {
		lo, hi := float64(x[0]), float64(x[0])
		for _, v := range x {
			lo, hi = min(lo, float64(v)), max(hi, float64(v))
		}
		step := (hi - lo) / levels
		for i, v := range x {
			if step == 0 {
				dst[i] = v
				continue
			}
			dst[i] = float32(lo + math.Round((float64(v)-lo)/step)*step)
		}
	}
}

// AttentionReference is exact float64 decode attention of a set of query
// tokens over the first Tokens keys and values of one layer: the logits of
// every (query token, query head) row and the attention outputs. Build it
// once and Measure every cache configuration against it.
type AttentionReference struct {
	KVHeads, QHeads, Dim, Tokens int
	Scale                        float64
	queries                      []float32   // [n][QHeads][Dim]
	logits                       [][]float64 // [n·QHeads][Tokens]
	outputs                      []float32   // [n][QHeads][Dim]
}

// NewAttentionReference computes the reference for queries
// ([n][qHeads][d]) over the first tokens of keys and values ([T][kvHeads][d],
// T ≥ tokens), with the default scale 1/√d. Rows are computed in parallel.
func NewAttentionReference(keys, values []float32, kvHeads, qHeads, d, tokens int, queries []float32) (*AttentionReference, error) {
	switch {
	case kvHeads < 1 || d < 1 || qHeads < kvHeads || qHeads%kvHeads != 0:
		return nil, fmt.Errorf("%w: %d KV heads, %d query heads, head dim %d", ErrShape, kvHeads, qHeads, d)
	case tokens < 1 || len(keys) != len(values) || len(keys) < tokens*kvHeads*d || len(keys)%(kvHeads*d) != 0:
		return nil, fmt.Errorf("%w: %d keys and %d values for %d tokens of %d×%d", ErrShape, len(keys), len(values), tokens, kvHeads, d)
	case len(queries) == 0 || len(queries)%(qHeads*d) != 0:
		return nil, fmt.Errorf("%w: %d query values are not whole [%d][%d] rows", ErrShape, len(queries), qHeads, d)
	}
	r := &AttentionReference{KVHeads: kvHeads, QHeads: qHeads, Dim: d, Tokens: tokens,
		Scale: 1 / math.Sqrt(float64(d)), queries: queries}
	rows := len(queries) / d
	r.logits = make([][]float64, rows)
	r.outputs = make([]float32, len(queries))
	group := qHeads / kvHeads
	parallelFor(rows, func(row int) {
		h := (row % qHeads) / group
		q := queries[row*d : (row+1)*d]
		lg := make([]float64, tokens)
		for t := range tokens {
			lg[t] = Dot(q, keys[(t*kvHeads+h)*d:(t*kvHeads+h+1)*d]) * r.Scale
		}
		p := Softmax(lg)
		acc := make([]float64, d)
		for t := range tokens {
			v := values[(t*kvHeads+h)*d : (t*kvHeads+h+1)*d]
			for j := range acc {
				acc[j] += p[t] * float64(v[j])
			}
		}
		for j := range acc {
			r.outputs[row*d+j] = float32(acc[j])
		}
		r.logits[row] = lg
	})
	return r, nil
}

// Measure compares a, which must hold exactly the reference's tokens in
// layer, with the reference: the logit rows from a.Logits and one decode
// step (a.Attend with a single query token) per query token.
func (r *AttentionReference) Measure(a Attention, layer int) (Fidelity, error) {
	acc := newFidelityAcc()
	d, row := r.Dim, r.QHeads*r.Dim
	buf := make([]float32, r.Tokens)
	got := make([]float64, r.Tokens)
	out := make([]float32, row)
	for i, lg := range r.logits {
		if err := a.Logits(layer, i%r.QHeads, r.queries[i*d:(i+1)*d], buf); err != nil {
			return Fidelity{}, err
		}
		for t := range got {
			got[t] = float64(buf[t])
		}
		acc.addRow(lg, got)
	}
	for n := 0; n < len(r.queries); n += row {
		if err := a.Attend(layer, r.queries[n:n+row], out); err != nil {
			return Fidelity{}, err
		}
		acc.addOutput(out, r.outputs[n:n+row])
	}
	f := Fidelity{Workload: "synthetic", Tokens: r.Tokens}
	acc.fill(&f)
	return f, nil
}

// parallelFor runs f(0..n-1) on GOMAXPROCS goroutines.
func parallelFor(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	wg.Wait()
}

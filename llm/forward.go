package llm

import (
	"fmt"
	"math"
	"sync"

	"github.com/turboquant-go/tq/internal/simd"
	"github.com/turboquant-go/tq/llm/tokenizer"
)

// Cache is what the engine needs of a KV cache: kvcache.Sequence (every
// preset and configuration) implements it. Keys and values are appended
// [T][KVHeads][HeadDim] after RoPE; attention takes queries
// [T][Heads][HeadDim] and writes outputs of the same shape.
type Cache interface {
	Append(layer int, keys, values []float32) error
	Attend(layer int, queries, out []float32) error
	Len() int
	Truncate(n int) error
}

// Reserver is a Cache that can set aside, before a step, everything that
// appending tokens to each layer may take (kvcache.Sequence is one). Forward
// and DecodeBatch reserve first, so a step the cache cannot hold is refused
// before any layer changes.
type Reserver interface {
	Reserve(tokens int) (release func(), err error)
}

// reserve reserves T tokens in c if it is a Reserver; release is never nil.
func reserve(c Cache, T int) (release func(), err error) {
	r, ok := c.(Reserver)
	if !ok {
		return func() {}, nil
	}
	return r.Reserve(T)
}

// layer holds one decoder block's weights.
type layer struct {
	attnNorm, ffnNorm   []float32
	q, k, v, o          *Matrix
	qBias, kBias, vBias []float32
	gate, up, down      *Matrix
}

// Model is a loaded decoder. It is safe for concurrent use: the weights are
// read-only and each forward pass takes its own activation buffers from a
// pool, so a decode step does not allocate them anew.
type Model struct {
	Config Config
	// Tokenizer is the file's tokenizer (nil for models built in memory).
	Tokenizer  *tokenizer.Tokenizer
	embed      *Matrix
	output     *Matrix
	outputNorm []float32
	layers     []layer
	invFreq    []float64 // θ_i per rotated pair, factors and scaling applied
	close      func() error
	acts       sync.Pool // *activations
}

// activations are one forward pass's buffers, grown to the largest batch
// seen and reused.
type activations struct {
	x, xb, q, att, k, v, gate, up, proj []float32
	e                                   []float32 // siluMul's exponentials
	cos, sin                            []float32
}

// take returns the buffers sized for T tokens.
func (a *activations) take(c Config, T int) {
	grow := func(b *[]float32, n int) {
		if cap(*b) < n {
			*b = make([]float32, n)
		}
		*b = (*b)[:n]
	}
	d, qDim, kvDim := c.Dim, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	for _, b := range []struct {
		p *[]float32
		n int
	}{{&a.x, T * d}, {&a.xb, T * d}, {&a.proj, T * d}, {&a.q, T * qDim}, {&a.att, T * qDim},
		{&a.k, T * kvDim}, {&a.v, T * kvDim}, {&a.gate, T * c.FFNDim}, {&a.up, T * c.FFNDim}, {&a.e, T * c.FFNDim},
		{&a.cos, c.RopeDim / 2}, {&a.sin, c.RopeDim / 2}} {
		grow(b.p, b.n)
	}
}

// Close releases the model's file mapping; the model must not be used after.
func (m *Model) Close() error {
	if m.close == nil {
		return nil
	}
	err := m.close()
	m.close = nil
	return err
}

// WeightBytes is the bytes of weights one token's forward pass reads: every
// matrix once (the embedding contributes one row, and the output head the
// whole vocabulary).
func (m *Model) WeightBytes() int64 {
	n := m.output.Bytes()
	if m.embed != m.output {
		n += m.embed.Bytes() / int64(m.embed.Rows)
	}
	for _, l := range m.layers {
		for _, w := range []*Matrix{l.q, l.k, l.v, l.o, l.gate, l.up, l.down} {
			n += w.Bytes()
		}
	}
	return n
}

func (m *Model) initRope() {
	c := m.Config
	m.invFreq = make([]float64, c.RopeDim/2)
	for i := range m.invFreq {
		f := math.Pow(float64(c.RopeBase), -2*float64(i)/float64(c.RopeDim)) / float64(c.RopeLinear)
		if c.RopeFreqFactors != nil {
			f /= float64(c.RopeFreqFactors[i])
		}
		m.invFreq[i] = f
	}
}

// rope rotates every head of x (rows of heads·HeadDim, one per position
// from pos0) in place; cos and sin are RopeDim/2 scratch values.
func (m *Model) rope(x []float32, heads, pos0 int, cos, sin []float32) {
	c := m.Config
	row := heads * c.HeadDim
	half := c.RopeDim / 2
	for t := 0; t < len(x)/row; t++ {
		p := float64(pos0 + t)
		for i, f := range m.invFreq {
			s, co := math.Sincos(p * f)
			cos[i], sin[i] = float32(co), float32(s)
		}
		for h := range heads {
			v := x[t*row+h*c.HeadDim : t*row+(h+1)*c.HeadDim]
			for i := range half {
				a, b := 2*i, 2*i+1
				if c.RopeStyle == RopeNeoX {
					a, b = i, i+half
				}
				x0, x1 := v[a], v[b]
				v[a] = x0*cos[i] - x1*sin[i]
				v[b] = x0*sin[i] + x1*cos[i]
			}
		}
	}
}

// rmsNorm writes x/√(mean(x²)+ε)·w for each row of len(w).
func rmsNorm(dst, x, w []float32, eps float32) {
	d := len(w)
	for r := 0; r < len(x)/d; r++ {
		xs := x[r*d : (r+1)*d]
		var ss float64
		for _, v := range xs {
			ss += float64(v) * float64(v)
		}
		scale := float32(1 / math.Sqrt(ss/float64(d)+float64(eps)))
		out := dst[r*d : (r+1)*d]
		for j, v := range xs {
			out[j] = v * scale * w[j]
		}
	}
}

func addBias(x, b []float32) {
	if b == nil {
		return
	}
	d := len(b)
	for r := 0; r < len(x)/d; r++ {
		row := x[r*d : (r+1)*d]
		for j := range row {
			row[j] += b[j]
		}
	}
}

// Forward runs tokens through the model at positions c.Len(), c.Len()+1, …:
// each layer appends the tokens' keys and values to c with one Append and
// takes attention from c. It writes the logits of the last len(logits)/Vocab
// positions (1 for decoding, len(tokens) to score every token) into logits.
//
// Tokens that would not fit the model's context are refused before anything
// is appended, and so is a step a Reserver cannot reserve (its budget is
// spent), with an error wrapping the cache's. If a cache that is not a
// Reserver refuses an append, the tokens appended to earlier layers are
// truncated away.
func (m *Model) Forward(c Cache, tokens []int32, logits []float32) error {
	cfg := m.Config
	T := len(tokens)
	outputs := len(logits) / cfg.Vocab
	if T == 0 || len(logits) != outputs*cfg.Vocab || outputs == 0 || outputs > T {
		return fmt.Errorf("%w: %d tokens with %d logits (vocab %d)", ErrArgument, T, len(logits), cfg.Vocab)
	}
	pos0 := c.Len()
	if pos0+T > cfg.Context {
		return fmt.Errorf("%w: %d cached + %d new tokens > context %d", ErrContext, pos0, T, cfg.Context)
	}
	for _, t := range tokens {
		if t < 0 || int(t) >= cfg.Vocab {
			return fmt.Errorf("%w: token %d (vocab %d)", ErrToken, t, cfg.Vocab)
		}
	}
	release, err := reserve(c, T)
	if err != nil {
		return fmt.Errorf("llm: %w", err)
	}
	defer release()
	d := cfg.Dim
	a, _ := m.acts.Get().(*activations)
	if a == nil {
		a = new(activations)
	}
	defer m.acts.Put(a)
	a.take(cfg, T)
	x, q, att, k, v := a.x, a.q, a.att, a.k, a.v
	for i, t := range tokens {
		if err := m.embed.Row(int(t), x[i*d:(i+1)*d]); err != nil {
			return err
		}
	}
	for li := range m.layers {
		l := &m.layers[li]
		if err := m.projectQKV(l, a); err != nil {
			return err
		}
		m.rope(q, cfg.Heads, pos0, a.cos, a.sin)
		m.rope(k, cfg.KVHeads, pos0, a.cos, a.sin)
		if err := c.Append(li, k, v); err != nil {
			if li > 0 {
				_ = c.Truncate(pos0) // layers < li hold the tokens; drop them
			}
			return fmt.Errorf("llm: layer %d: %w", li, err)
		}
		if err := c.Attend(li, q, att); err != nil {
			_ = c.Truncate(pos0)
			return fmt.Errorf("llm: layer %d: %w", li, err)
		}
		if err := m.outputAndFFN(l, a); err != nil {
			return err
		}
	}
	last := x[(T-outputs)*d:]
	rmsNorm(last, last, m.outputNorm, cfg.RMSEps)
	return m.output.MulT(logits, last)
}

// projectQKV writes the normed input's query, key and value projections
// (biases added) of every token in a into a.q, a.k, a.v.
func (m *Model) projectQKV(l *layer, a *activations) error {
	rmsNorm(a.xb, a.x, l.attnNorm, m.Config.RMSEps)
	for _, p := range [3]struct {
		w      *Matrix
		b, dst []float32
	}{{l.q, l.qBias, a.q}, {l.k, l.kBias, a.k}, {l.v, l.vBias, a.v}} {
		if err := p.w.MulT(p.dst, a.xb); err != nil {
			return err
		}
		addBias(p.dst, p.b)
	}
	return nil
}

// siluMul sets gate[i] = silu(gate[i])·up[i], silu(g) = g·σ(g). The
// exponentials e^−|g| (never overflowing) come from the vector kernel into
// e, then σ(g) = 1/(1+e) for g ≥ 0 and e/(1+e) below.
func siluMul(gate, up, e []float32) {
	e = e[:len(gate)]
	for i, g := range gate {
		e[i] = -abs32(g)
	}
	simd.ExpSum(e, 0)
	for i, g := range gate {
		s := 1 / (1 + e[i])
		if g < 0 {
			s *= e[i]
		}
		gate[i] = float32(g*s) * up[i]
	}
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// outputAndFFN adds the attention output's projection (a.att) and then the
// SwiGLU feed-forward block to the residual stream a.x.
func (m *Model) outputAndFFN(l *layer, a *activations) error {
	x, xb, gate, up, proj := a.x, a.xb, a.gate, a.up, a.proj
	if err := l.o.MulT(proj, a.att); err != nil {
		return err
	}
	for i := range x {
		x[i] += proj[i]
	}
	rmsNorm(xb, x, l.ffnNorm, m.Config.RMSEps)
	if err := l.gate.MulT(gate, xb); err != nil {
		return err
	}
	if err := l.up.MulT(up, xb); err != nil {
		return err
	}
	siluMul(gate, up, a.e)
	if err := l.down.MulT(proj, gate); err != nil {
		return err
	}
	for i := range x {
		x[i] += proj[i]
	}
	return nil
}

package llm

import (
	"fmt"
	"math"

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

// layer holds one decoder block's weights.
type layer struct {
	attnNorm, ffnNorm   []float32
	q, k, v, o          *Matrix
	qBias, kBias, vBias []float32
	gate, up, down      *Matrix
}

// Model is a loaded decoder. It is safe for concurrent use: every forward
// pass allocates its own activations (or takes them from a Scratch), and the
// weights are read-only.
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
// from pos0) in place.
func (m *Model) rope(x []float32, heads, pos0 int) {
	c := m.Config
	row := heads * c.HeadDim
	half := c.RopeDim / 2
	cos, sin := make([]float32, half), make([]float32, half)
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
// is appended. If the cache refuses an append (its budget is spent), the
// tokens appended to earlier layers are truncated away and the error is
// returned wrapping the cache's.
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
	d, qDim, kvDim := cfg.Dim, cfg.Heads*cfg.HeadDim, cfg.KVHeads*cfg.HeadDim
	x := make([]float32, T*d)
	for i, t := range tokens {
		if err := m.embed.Row(int(t), x[i*d:(i+1)*d]); err != nil {
			return err
		}
	}
	xb := make([]float32, T*d)
	q, att := make([]float32, T*qDim), make([]float32, T*qDim)
	k, v := make([]float32, T*kvDim), make([]float32, T*kvDim)
	gate, up := make([]float32, T*cfg.FFNDim), make([]float32, T*cfg.FFNDim)
	proj := make([]float32, T*d)
	for li := range m.layers {
		l := &m.layers[li]
		rmsNorm(xb, x, l.attnNorm, cfg.RMSEps)
		for _, p := range []struct {
			w   *Matrix
			b   []float32
			out []float32
		}{{l.q, l.qBias, q}, {l.k, l.kBias, k}, {l.v, l.vBias, v}} {
			if err := p.w.MulT(p.out, xb); err != nil {
				return err
			}
			addBias(p.out, p.b)
		}
		m.rope(q, cfg.Heads, pos0)
		m.rope(k, cfg.KVHeads, pos0)
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
		if err := l.o.MulT(proj, att); err != nil {
			return err
		}
		for i := range x {
			x[i] += proj[i]
		}
		rmsNorm(xb, x, l.ffnNorm, cfg.RMSEps)
		if err := l.gate.MulT(gate, xb); err != nil {
			return err
		}
		if err := l.up.MulT(up, xb); err != nil {
			return err
		}
		for i, g := range gate {
			gate[i] = g / (1 + float32(math.Exp(float64(-g)))) * up[i]
		}
		if err := l.down.MulT(proj, gate); err != nil {
			return err
		}
		for i := range x {
			x[i] += proj[i]
		}
	}
	last := x[(T-outputs)*d:]
	rmsNorm(last, last, m.outputNorm, cfg.RMSEps)
	return m.output.MulT(logits, last)
}

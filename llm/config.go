package llm

import (
	"fmt"
	"math"
)

// RopeStyle says which coordinates RoPE rotates together.
type RopeStyle uint8

const (
	// RopeAdjacent rotates (x[2i], x[2i+1]): GGUF `llama` weights (the
	// converter permutes Hugging Face's Q/K rows for it).
	RopeAdjacent RopeStyle = iota
	// RopeNeoX rotates (x[i], x[i+d/2]): `qwen2`.
	RopeNeoX
)

func (r RopeStyle) String() string {
	if r == RopeNeoX {
		return "neox"
	}
	return "adjacent"
}

// Config is a model's shape and its numerical hyperparameters, read from the
// GGUF metadata.
type Config struct {
	Arch      string // "llama" or "qwen2"
	Name      string
	Layers    int
	Dim       int // embedding width
	FFNDim    int
	Heads     int // query heads
	KVHeads   int
	HeadDim   int
	Vocab     int
	Context   int // trained context length
	RMSEps    float32
	RopeBase  float32
	RopeStyle RopeStyle
	// RopeDim is the number of rotated coordinates per head (≤ HeadDim).
	RopeDim int
	// RopeLinear divides positions by this factor (rope.scaling.type
	// "linear"); 1 when absent.
	RopeLinear float32
	// RopeFreqFactors, when present (llama3 scaling: GGUF's
	// rope_freqs.weight), divides each rotation frequency θ_i.
	RopeFreqFactors []float32
	// QKVBias: the attention projections carry biases (qwen2).
	QKVBias bool
	// TiedOutput: the output head reuses the token embedding.
	TiedOutput bool
}

// Params is the number of parameters of the weight matrices and vectors the
// engine reads.
func (c Config) Params() int64 {
	d, f, kv := int64(c.Dim), int64(c.FFNDim), int64(c.KVHeads*c.HeadDim)
	q := int64(c.Heads * c.HeadDim)
	layer := d*q + 2*d*kv + q*d + 3*d*f + 2*d
	if c.QKVBias {
		layer += q + 2*kv
	}
	n := int64(c.Layers)*layer + int64(c.Vocab)*d + d
	if !c.TiedOutput {
		n += int64(c.Vocab) * d
	}
	return n
}

func (c Config) validate() error {
	switch {
	case c.Layers <= 0 || c.Dim <= 0 || c.FFNDim <= 0 || c.Heads <= 0 || c.KVHeads <= 0 || c.Vocab <= 0:
		return fmt.Errorf("%w: non-positive shape (layers %d, dim %d, ffn %d, heads %d, kv heads %d, vocab %d)",
			ErrModel, c.Layers, c.Dim, c.FFNDim, c.Heads, c.KVHeads, c.Vocab)
	case c.Layers > 1<<12 || c.Dim > 1<<16 || c.FFNDim > 1<<18 || c.Heads > 1<<10 || c.Vocab > 1<<22:
		return fmt.Errorf("%w: implausible shape (layers %d, dim %d, ffn %d, heads %d, vocab %d)",
			ErrModel, c.Layers, c.Dim, c.FFNDim, c.Heads, c.Vocab)
	case c.Heads%c.KVHeads != 0:
		return fmt.Errorf("%w: %d query heads are not a multiple of %d KV heads", ErrModel, c.Heads, c.KVHeads)
	case c.HeadDim <= 0 || c.HeadDim%2 != 0 || c.HeadDim > 1024:
		return fmt.Errorf("%w: head dim %d", ErrModel, c.HeadDim)
	case c.RopeDim <= 0 || c.RopeDim > c.HeadDim || c.RopeDim%2 != 0:
		return fmt.Errorf("%w: rope dimension %d with head dim %d", ErrModel, c.RopeDim, c.HeadDim)
	case c.Context <= 0:
		return fmt.Errorf("%w: context length %d", ErrModel, c.Context)
	case !(c.RMSEps > 0) || !(c.RopeBase > 0) || !(c.RopeLinear > 0) || math.IsInf(float64(c.RopeBase), 0):
		return fmt.Errorf("%w: rms eps %g, rope base %g, rope scale %g", ErrModel, c.RMSEps, c.RopeBase, c.RopeLinear)
	case c.RopeFreqFactors != nil && len(c.RopeFreqFactors) != c.RopeDim/2:
		return fmt.Errorf("%w: %d rope frequency factors for rope dimension %d", ErrModel, len(c.RopeFreqFactors), c.RopeDim)
	}
	for i, f := range c.RopeFreqFactors {
		if !(f > 0) || math.IsInf(float64(f), 0) {
			return fmt.Errorf("%w: rope frequency factor %d is %g", ErrModel, i, f)
		}
	}
	return nil
}

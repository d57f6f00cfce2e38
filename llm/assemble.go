package llm

import (
	"errors"
	"fmt"
)

// errMissing is wrapped (with ErrModel) by tensor sources for absent tensors,
// so that optional tensors can be told from malformed ones.
var errMissing = errors.New("missing tensor")

// tensorSource finds a model's tensors by their GGUF names: matrix returns a
// Rows × Cols matrix (GGUF dims [cols, rows]); vector a 1-D tensor of n
// values as float32. Both wrap errMissing when the name is absent.
type tensorSource interface {
	matrix(name string, rows, cols int) (*Matrix, error)
	vector(name string, n int) ([]float32, error)
}

// assemble builds a Model of shape cfg from src: GGUF's tensor names, with
// the output head tied to the embedding when output.weight is absent.
func assemble(cfg Config, src tensorSource) (*Model, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := &Model{Config: cfg}
	var err error
	if m.embed, err = src.matrix("token_embd.weight", cfg.Vocab, cfg.Dim); err != nil {
		return nil, err
	}
	m.output, err = src.matrix("output.weight", cfg.Vocab, cfg.Dim)
	switch {
	case errors.Is(err, errMissing):
		m.output = m.embed
		m.Config.TiedOutput = true
	case err != nil:
		return nil, err
	}
	if m.outputNorm, err = src.vector("output_norm.weight", cfg.Dim); err != nil {
		return nil, err
	}
	qDim, kvDim := cfg.Heads*cfg.HeadDim, cfg.KVHeads*cfg.HeadDim
	m.layers = make([]layer, cfg.Layers)
	for i := range m.layers {
		l := &m.layers[i]
		name := func(s string) string { return fmt.Sprintf("blk.%d.%s", i, s) }
		for _, w := range []struct {
			dst        **Matrix
			name       string
			rows, cols int
		}{
			{&l.q, "attn_q.weight", qDim, cfg.Dim},
			{&l.k, "attn_k.weight", kvDim, cfg.Dim},
			{&l.v, "attn_v.weight", kvDim, cfg.Dim},
			{&l.o, "attn_output.weight", cfg.Dim, qDim},
			{&l.gate, "ffn_gate.weight", cfg.FFNDim, cfg.Dim},
			{&l.up, "ffn_up.weight", cfg.FFNDim, cfg.Dim},
			{&l.down, "ffn_down.weight", cfg.Dim, cfg.FFNDim},
		} {
			if *w.dst, err = src.matrix(name(w.name), w.rows, w.cols); err != nil {
				return nil, err
			}
		}
		if l.attnNorm, err = src.vector(name("attn_norm.weight"), cfg.Dim); err != nil {
			return nil, err
		}
		if l.ffnNorm, err = src.vector(name("ffn_norm.weight"), cfg.Dim); err != nil {
			return nil, err
		}
		if cfg.QKVBias {
			for _, b := range []struct {
				dst  *[]float32
				name string
				n    int
			}{{&l.qBias, "attn_q.bias", qDim}, {&l.kBias, "attn_k.bias", kvDim}, {&l.vBias, "attn_v.bias", kvDim}} {
				if *b.dst, err = src.vector(name(b.name), b.n); err != nil {
					return nil, err
				}
			}
		}
	}
	m.initRope()
	return m, nil
}

// mapSource is a tensorSource over float32 tensors held in memory (tests and
// synthetic models).
type mapSource map[string][]float32

func (s mapSource) matrix(name string, rows, cols int) (*Matrix, error) {
	v, ok := s[name]
	if !ok {
		return nil, fmt.Errorf("%w: %w %s", ErrModel, errMissing, name)
	}
	return NewMatrixF32(name, rows, cols, v)
}

func (s mapSource) vector(name string, n int) ([]float32, error) {
	v, ok := s[name]
	if !ok {
		return nil, fmt.Errorf("%w: %w %s", ErrModel, errMissing, name)
	}
	if len(v) != n {
		return nil, fmt.Errorf("%w: %s has %d values, want %d", ErrModel, name, len(v), n)
	}
	return v, nil
}

package llm

import (
	"errors"
	"fmt"
	"math"

	"github.com/turboquant-go/tq/llm/gguf"
	"github.com/turboquant-go/tq/llm/tokenizer"
)

// Open memory-maps a GGUF file and loads the model in it; the weights stay
// in the mapping (a model costs its file size plus the KV cache). Close the
// model to unmap it.
func Open(path string) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	m, err := Load(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	m.close = f.Close
	return m, nil
}

// Load builds a model over a parsed GGUF file (gguf.Parse for bytes already
// in memory, such as an embedded model). The model aliases the file's tensor
// data.
func Load(f *gguf.File) (*Model, error) {
	cfg, err := configFromGGUF(f)
	if err != nil {
		return nil, err
	}
	src := ggufSource{f}
	if t, ok := f.Tensor("rope_freqs.weight"); ok { // llama3 frequency factors
		if cfg.RopeFreqFactors, err = src.vector(t.Name, cfg.RopeDim/2); err != nil {
			return nil, err
		}
	}
	m, err := assemble(cfg, src)
	if err != nil {
		return nil, err
	}
	if m.Tokenizer, err = tokenizerFromGGUF(f, cfg.Vocab); err != nil {
		return nil, err
	}
	return m, nil
}

// configFromGGUF reads the hyperparameters of a `llama` or `qwen2` file.
func configFromGGUF(f *gguf.File) (Config, error) {
	arch, err := f.String("general.architecture")
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrModel, err)
	}
	c := Config{Arch: arch, RopeLinear: 1}
	switch arch {
	case "llama":
		c.RopeStyle = RopeAdjacent
	case "qwen2":
		c.RopeStyle, c.QKVBias = RopeNeoX, true
	default:
		return Config{}, fmt.Errorf("%w: %q (the engine runs llama and qwen2)", ErrArchitecture, arch)
	}
	c.Name, _ = f.String("general.name")
	key := func(k string) string { return arch + "." + k }
	need := func(k string, dst *int) {
		if err != nil {
			return
		}
		var v uint64
		if v, err = f.Uint(key(k)); err == nil && v > math.MaxInt32 {
			err = fmt.Errorf("%s is %d", key(k), v)
		}
		*dst = int(v)
	}
	opt := func(k string, dst *int) {
		if err == nil && f.Has(key(k)) {
			need(k, dst)
		}
	}
	need("block_count", &c.Layers)
	need("embedding_length", &c.Dim)
	need("feed_forward_length", &c.FFNDim)
	need("attention.head_count", &c.Heads)
	need("context_length", &c.Context)
	c.KVHeads = c.Heads
	opt("attention.head_count_kv", &c.KVHeads)
	if c.Heads > 0 {
		c.HeadDim = c.Dim / c.Heads
	}
	opt("attention.key_length", &c.HeadDim)
	valueDim := c.HeadDim
	opt("attention.value_length", &valueDim)
	c.RopeDim = c.HeadDim
	opt("rope.dimension_count", &c.RopeDim)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrModel, err)
	}
	if valueDim != c.HeadDim {
		return Config{}, fmt.Errorf("%w: value head dim %d differs from key head dim %d", ErrModel, valueDim, c.HeadDim)
	}
	eps, err := f.Float(key("attention.layer_norm_rms_epsilon"))
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrModel, err)
	}
	c.RMSEps = float32(eps)
	c.RopeBase = 10000
	if f.Has(key("rope.freq_base")) {
		b, err := f.Float(key("rope.freq_base"))
		if err != nil {
			return Config{}, fmt.Errorf("%w: %w", ErrModel, err)
		}
		c.RopeBase = float32(b)
	}
	if f.Has(key("rope.scaling.type")) {
		typ, err := f.String(key("rope.scaling.type"))
		if err != nil {
			return Config{}, fmt.Errorf("%w: %w", ErrModel, err)
		}
		switch typ {
		case "none":
		case "linear":
			factor, err := f.Float(key("rope.scaling.factor"))
			if err != nil {
				return Config{}, fmt.Errorf("%w: %w", ErrModel, err)
			}
			c.RopeLinear = float32(factor)
		default:
			return Config{}, fmt.Errorf("%w: rope scaling %q (the engine knows none, linear and llama3's rope_freqs)", ErrModel, typ)
		}
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok {
		return Config{}, fmt.Errorf("%w: %w token_embd.weight", ErrModel, errMissing)
	}
	if len(emb.Dims) == 2 {
		c.Vocab = emb.Dims[1]
	}
	return c, nil
}

// ggufSource reads matrices and vectors from a GGUF file, in place where
// the type allows.
type ggufSource struct{ f *gguf.File }

func (s ggufSource) tensor(name string, dims ...int) (*gguf.Tensor, error) {
	t, ok := s.f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("%w: %w %s", ErrModel, errMissing, name)
	}
	shapeOK := len(t.Dims) == len(dims)
	for i := 0; shapeOK && i < len(dims); i++ {
		shapeOK = t.Dims[i] == dims[i]
	}
	if !shapeOK {
		return nil, fmt.Errorf("%w: %s has dims %v, want %v", ErrModel, name, t.Dims, dims)
	}
	return t, nil
}

func (s ggufSource) matrix(name string, rows, cols int) (*Matrix, error) {
	t, err := s.tensor(name, cols, rows)
	if err != nil {
		return nil, err
	}
	rb := t.RowBytes()
	switch t.Type {
	case gguf.F32:
		return newMatrixRaw(name, rows, cols, storeF32, t.Data, rb, nil)
	case gguf.F16:
		return newMatrixRaw(name, rows, cols, storeF16, t.Data, rb, nil)
	}
	typ := t.Type
	// Probe one row so that a type the package cannot expand fails at load,
	// not in the middle of a forward pass.
	if err := gguf.DequantizeRow(make([]float32, cols), typ, t.Data[:rb]); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrModel, name, err)
	}
	st := storeBlocks
	switch typ { // fused SIMD kernels read these in place
	case gguf.Q8_0:
		st = storeQ8_0
	case gguf.Q4_0:
		st = storeQ4_0
	}
	return newMatrixRaw(name, rows, cols, st, t.Data, rb, func(dst []float32, src []byte) error {
		return gguf.DequantizeRow(dst, typ, src)
	})
}

func (s ggufSource) vector(name string, n int) ([]float32, error) {
	t, err := s.tensor(name, n)
	if err != nil {
		return nil, err
	}
	v := make([]float32, n)
	if err := t.DequantizeRow(0, v); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrModel, name, err)
	}
	return v, nil
}

// tokenizerFromGGUF builds the tokenizer the file's metadata describes,
// starting from llama.cpp's defaults for its model and pre-tokenizer and
// overwriting what the file sets.
func tokenizerFromGGUF(f *gguf.File, vocab int) (*tokenizer.Tokenizer, error) {
	wrap := func(err error) error { return fmt.Errorf("%w: tokenizer: %w", ErrModel, err) }
	model, err := f.String("tokenizer.ggml.model")
	if err != nil {
		return nil, wrap(err)
	}
	pre, err := optional(f.String, "tokenizer.ggml.pre", "")
	if err != nil {
		return nil, wrap(err)
	}
	v := tokenizer.Defaults(model, pre)
	if v.Tokens, err = f.Strings("tokenizer.ggml.tokens"); err != nil {
		return nil, wrap(err)
	}
	if len(v.Tokens) > vocab {
		return nil, fmt.Errorf("%w: %d tokens for an embedding of %d rows", ErrModel, len(v.Tokens), vocab)
	}
	if v.Scores, err = optional(f.Float32s, "tokenizer.ggml.scores", nil); err != nil {
		return nil, wrap(err)
	}
	if v.Types, err = optional(f.Int32s, "tokenizer.ggml.token_type", nil); err != nil {
		return nil, wrap(err)
	}
	if v.Merges, err = optional(f.Strings, "tokenizer.ggml.merges", nil); err != nil {
		return nil, wrap(err)
	}
	for key, dst := range map[string]*int32{
		"tokenizer.ggml.bos_token_id": &v.BOS, "tokenizer.ggml.eos_token_id": &v.EOS,
		"tokenizer.ggml.unknown_token_id": &v.UNK, "tokenizer.ggml.padding_token_id": &v.PAD,
	} {
		id, err := optional(f.Uint, key, uint64(*dst))
		if err != nil {
			return nil, wrap(err)
		}
		if *dst >= 0 || f.Has(key) {
			if id >= uint64(len(v.Tokens)) {
				return nil, fmt.Errorf("%w: %s %d of %d tokens", ErrModel, key, id, len(v.Tokens))
			}
			*dst = int32(id)
		}
	}
	for key, dst := range map[string]*bool{
		"tokenizer.ggml.add_bos_token": &v.AddBOS, "tokenizer.ggml.add_eos_token": &v.AddEOS,
		"tokenizer.ggml.add_space_prefix": &v.AddSpacePrefix,
	} {
		if *dst, err = optional(f.Bool, key, *dst); err != nil {
			return nil, wrap(err)
		}
	}
	t, err := tokenizer.New(v)
	if err != nil {
		return nil, wrap(err)
	}
	return t, nil
}

// optional reads a metadata key with get, or returns def when it is absent.
func optional[T any](get func(string) (T, error), key string, def T) (T, error) {
	v, err := get(key)
	if errors.Is(err, gguf.ErrKeyNotFound) {
		return def, nil
	}
	return v, err
}

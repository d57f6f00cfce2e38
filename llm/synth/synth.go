package synth

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/turboquant-go/tq/internal/rng"
	"github.com/turboquant-go/tq/llm/gguf"
)

// ErrOptions: the options describe no valid model.
var ErrOptions = errors.New("synth: bad options")

// Options describes a synthetic model.
type Options struct {
	Arch                string // "llama" (adjacent RoPE) or "qwen2" (NeoX RoPE, Q/K/V biases)
	Layers, Dim, FFNDim int
	Heads, KVHeads      int
	HeadDim, Context    int
	// Type is the type of the 2-D weight matrices; norms and biases are F32.
	Type gguf.Type
	// Tokenizer is "gpt2" (byte-level BPE, pre-tokenizer Pre) or "llama"
	// (SentencePiece).
	Tokenizer, Pre string
	// Tied leaves output.weight out (the head reuses token_embd).
	Tied bool
	// RopeFreqs adds llama3-style rope_freqs.weight frequency factors.
	RopeFreqs bool
	// KeyBias is the standard deviation of qwen2's key bias (Qwen2/2.5
	// carry large key offsets at some layers); 0 means 1.
	KeyBias float64
	Seed    uint64
}

// corpus is the text the vocabulary's merges and pieces are learned from.
const corpus = `In the beginning God created the heaven and the earth. And the earth was without form,
and void; and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the
waters. And God said, Let there be light: and there was light. The pass key is 12345. Remember it.
What is the pass key? 2024-12-05: it's 3.14, they'll say; we've been there. Ünïcödé — naïve café.`

// Build returns the bytes of a GGUF file for o.
func Build(o Options) ([]byte, error) {
	if o.Arch != "llama" && o.Arch != "qwen2" {
		return nil, fmt.Errorf("%w: arch %q", ErrOptions, o.Arch)
	}
	if o.Layers <= 0 || o.Dim <= 0 || o.FFNDim <= 0 || o.Heads <= 0 || o.KVHeads <= 0 || o.HeadDim <= 0 ||
		o.Heads%o.KVHeads != 0 || o.Context <= 0 {
		return nil, fmt.Errorf("%w: shape %+v", ErrOptions, o)
	}
	w := gguf.NewWriter()
	a := func(k string) string { return o.Arch + "." + k }
	w.SetString("general.architecture", o.Arch)
	w.SetString("general.name", fmt.Sprintf("synthetic %s %v", o.Arch, o.Type))
	w.SetUint32("general.alignment", 32)
	w.SetUint32(a("context_length"), uint32(o.Context))
	w.SetUint32(a("embedding_length"), uint32(o.Dim))
	w.SetUint32(a("block_count"), uint32(o.Layers))
	w.SetUint32(a("feed_forward_length"), uint32(o.FFNDim))
	w.SetUint32(a("attention.head_count"), uint32(o.Heads))
	w.SetUint32(a("attention.head_count_kv"), uint32(o.KVHeads))
	w.SetUint32(a("attention.key_length"), uint32(o.HeadDim))
	w.SetUint32(a("attention.value_length"), uint32(o.HeadDim))
	w.SetUint32(a("rope.dimension_count"), uint32(o.HeadDim))
	w.SetFloat32(a("rope.freq_base"), map[string]float32{"llama": 10000, "qwen2": 1000000}[o.Arch])
	w.SetFloat32(a("attention.layer_norm_rms_epsilon"), 1e-5)
	vocab, err := addTokenizer(w, o)
	if err != nil {
		return nil, err
	}
	w.SetUint32(a("vocab_size"), uint32(vocab))
	r := rng.New(o.Seed)
	fill := func(n int, std, mean float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(mean + std*r.Norm())
		}
		return v
	}
	add := func(name string, t gguf.Type, vals []float32, dims ...int) error {
		rb, err := gguf.RowBytes(t, dims[0])
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrOptions, name, err)
		}
		rows := len(vals) / dims[0]
		data := make([]byte, rb*rows)
		for i := range rows {
			if err := gguf.Quantize(t, data[i*rb:(i+1)*rb], vals[i*dims[0]:(i+1)*dims[0]]); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return w.AddTensor(name, dims, t, data)
	}
	qDim, kvDim := o.Heads*o.HeadDim, o.KVHeads*o.HeadDim
	sd := func(n int) float64 { return 1 / math.Sqrt(float64(n)) }
	type tensor struct {
		name       string
		t          gguf.Type
		vals       []float32
		cols, rows int
	}
	// Head weights of std 4/√Dim give logits of std ≈ 4: next-token
	// probabilities are neither flat nor all 0 or 1, so comparing them means
	// something, and the top token leads the next by a margin far above
	// rounding, so greedy continuations are stable across engines.
	ts := []tensor{{"token_embd.weight", o.Type, fill(vocab*o.Dim, 4*sd(o.Dim), 0), o.Dim, vocab}}
	if o.RopeFreqs {
		f := make([]float32, o.HeadDim/2)
		for i := range f {
			f[i] = 1 + 7*float32(i)/float32(len(f)) // longer wavelengths slowed, as llama3 scaling does
		}
		ts = append(ts, tensor{"rope_freqs.weight", gguf.F32, f, len(f), 1})
	}
	for l := range o.Layers {
		p := fmt.Sprintf("blk.%d.", l)
		ts = append(ts,
			tensor{p + "attn_norm.weight", gguf.F32, fill(o.Dim, 0.1, 1), o.Dim, 1},
			tensor{p + "attn_q.weight", o.Type, fill(qDim*o.Dim, 2*sd(o.Dim), 0), o.Dim, qDim},
			tensor{p + "attn_k.weight", o.Type, fill(kvDim*o.Dim, 2*sd(o.Dim), 0), o.Dim, kvDim},
			tensor{p + "attn_v.weight", o.Type, fill(kvDim*o.Dim, sd(o.Dim), 0), o.Dim, kvDim},
			tensor{p + "attn_output.weight", o.Type, fill(o.Dim*qDim, 0.5*sd(qDim), 0), qDim, o.Dim},
			tensor{p + "ffn_norm.weight", gguf.F32, fill(o.Dim, 0.1, 1), o.Dim, 1},
			tensor{p + "ffn_gate.weight", o.Type, fill(o.FFNDim*o.Dim, sd(o.Dim), 0), o.Dim, o.FFNDim},
			tensor{p + "ffn_up.weight", o.Type, fill(o.FFNDim*o.Dim, sd(o.Dim), 0), o.Dim, o.FFNDim},
			tensor{p + "ffn_down.weight", o.Type, fill(o.Dim*o.FFNDim, 0.5*sd(o.FFNDim), 0), o.FFNDim, o.Dim},
		)
		if o.Arch == "qwen2" {
			kb := o.KeyBias
			if kb == 0 {
				kb = 1
			}
			ts = append(ts,
				tensor{p + "attn_q.bias", gguf.F32, fill(qDim, 0.5, 0), qDim, 1},
				tensor{p + "attn_k.bias", gguf.F32, fill(kvDim, kb, 0), kvDim, 1},
				tensor{p + "attn_v.bias", gguf.F32, fill(kvDim, 0.2, 0), kvDim, 1})
		}
	}
	ts = append(ts, tensor{"output_norm.weight", gguf.F32, fill(o.Dim, 0.1, 1), o.Dim, 1})
	if !o.Tied {
		ts = append(ts, tensor{"output.weight", o.Type, fill(vocab*o.Dim, 4*sd(o.Dim), 0), o.Dim, vocab})
	}
	for _, t := range ts {
		dims := []int{t.cols, t.rows}
		if t.rows == 1 {
			dims = dims[:1]
		}
		if err := add(t.name, t.t, t.vals, dims...); err != nil {
			return nil, err
		}
	}
	return w.Bytes()
}

// addTokenizer writes a vocabulary learned from corpus and returns its size.
func addTokenizer(w *gguf.Writer, o Options) (int, error) {
	switch o.Tokenizer {
	case "gpt2":
		tokens, merges := bpeVocab(corpus, 96)
		types := make([]int32, len(tokens))
		for i := range types {
			types[i] = 1
		}
		tokens = append(tokens, "<|bos|>", "<|eos|>")
		types = append(types, 3, 3)
		w.SetString("tokenizer.ggml.model", "gpt2")
		pre := o.Pre
		if pre == "" {
			pre = "default"
		}
		w.SetString("tokenizer.ggml.pre", pre)
		w.SetStrings("tokenizer.ggml.tokens", tokens)
		w.SetInt32s("tokenizer.ggml.token_type", types)
		w.SetStrings("tokenizer.ggml.merges", merges)
		w.SetUint32("tokenizer.ggml.bos_token_id", uint32(len(tokens)-2))
		w.SetUint32("tokenizer.ggml.eos_token_id", uint32(len(tokens)-1))
		w.SetBool("tokenizer.ggml.add_bos_token", true)
		w.SetBool("tokenizer.ggml.add_eos_token", false)
		return len(tokens), nil
	case "llama":
		tokens, scores, types := spmVocab(corpus, 160)
		w.SetString("tokenizer.ggml.model", "llama")
		w.SetStrings("tokenizer.ggml.tokens", tokens)
		w.SetFloat32s("tokenizer.ggml.scores", scores)
		w.SetInt32s("tokenizer.ggml.token_type", types)
		w.SetUint32("tokenizer.ggml.unknown_token_id", 0)
		w.SetUint32("tokenizer.ggml.bos_token_id", 1)
		w.SetUint32("tokenizer.ggml.eos_token_id", 2)
		w.SetBool("tokenizer.ggml.add_bos_token", true)
		w.SetBool("tokenizer.ggml.add_eos_token", false)
		return len(tokens), nil
	}
	return 0, fmt.Errorf("%w: tokenizer %q", ErrOptions, o.Tokenizer)
}

// byteUnicode is GPT-2's map from bytes to printable runes.
func byteUnicode() [256]rune {
	var m [256]rune
	n := 0
	for b := range 256 {
		if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE {
			m[b] = rune(b)
		} else {
			m[b] = rune(256 + n)
			n++
		}
	}
	return m
}

// bpeVocab learns n merges over the corpus's space-prefixed words (GPT-2
// style, byte-mapped) and returns the 256 byte tokens plus the merged
// tokens, and the merges.
func bpeVocab(text string, n int) ([]string, []string) {
	bu := byteUnicode()
	var words [][]string
	for i, f := range strings.Fields(text) {
		if i > 0 {
			f = " " + f
		}
		var w []string
		for _, b := range []byte(f) {
			w = append(w, string(bu[b]))
		}
		words = append(words, w)
	}
	tokens := make([]string, 256)
	for b := range 256 {
		tokens[b] = string(bu[b])
	}
	var merges []string
	for range n {
		count := map[[2]string]int{}
		for _, w := range words {
			for i := 0; i+1 < len(w); i++ {
				count[[2]string{w[i], w[i+1]}]++
			}
		}
		if len(count) == 0 {
			break
		}
		pairs := make([][2]string, 0, len(count))
		for p := range count {
			pairs = append(pairs, p)
		}
		sort.Slice(pairs, func(i, j int) bool {
			if count[pairs[i]] != count[pairs[j]] {
				return count[pairs[i]] > count[pairs[j]]
			}
			return pairs[i][0]+" "+pairs[i][1] < pairs[j][0]+" "+pairs[j][1]
		})
		best := pairs[0]
		merged := best[0] + best[1]
		merges = append(merges, best[0]+" "+best[1])
		if !slices.Contains(tokens, merged) {
			tokens = append(tokens, merged)
		}
		for wi, w := range words {
			var out []string
			for i := 0; i < len(w); i++ {
				if i+1 < len(w) && w[i] == best[0] && w[i+1] == best[1] {
					out = append(out, merged)
					i++
				} else {
					out = append(out, w[i])
				}
			}
			words[wi] = out
		}
	}
	return tokens, merges
}

// spmVocab returns a SentencePiece vocabulary: <unk>, <s>, </s>, the 256
// byte-fallback tokens, then the corpus's ▁-prefixed words and their
// prefixes of length ≥ 2 (and single characters), scored so that longer,
// more frequent pieces win.
func spmVocab(text string, n int) ([]string, []float32, []int32) {
	tokens := []string{"<unk>", "<s>", "</s>"}
	types := []int32{2, 3, 3}
	for b := range 256 {
		tokens = append(tokens, fmt.Sprintf("<0x%02X>", b))
		types = append(types, 6)
	}
	scores := make([]float32, len(tokens))
	freq := map[string]int{}
	for _, f := range strings.Fields(text) {
		r := []rune("▁" + f)
		for i := range r {
			freq[string(r[i:i+1])]++
		}
		for l := 2; l <= len(r); l++ {
			freq[string(r[:l])] += l
		}
	}
	pieces := make([]string, 0, len(freq))
	for p := range freq {
		pieces = append(pieces, p)
	}
	sort.Slice(pieces, func(i, j int) bool {
		if freq[pieces[i]] != freq[pieces[j]] {
			return freq[pieces[i]] > freq[pieces[j]]
		}
		return pieces[i] < pieces[j]
	})
	for i, p := range pieces[:min(n, len(pieces))] {
		tokens = append(tokens, p)
		scores = append(scores, -float32(i))
		types = append(types, 1)
	}
	return tokens, scores, types
}

// Named is a model of the cross-check set.
type Named struct {
	Name    string
	Options Options
}

// Bench123M is a 123M-parameter Llama shape (246 MB at fp16) with weights
// of type t: 8 layers, 1024 wide, FFN 2816, 16 query and 4 KV heads of 64.
// Its weights are far beyond L3, so a decode step streams them from
// memory: the model the engine's and the server's batching benchmarks run.
func Bench123M(t gguf.Type) Options {
	return Options{Arch: "llama", Layers: 8, Dim: 1024, FFNDim: 2816, Heads: 16, KVHeads: 4, HeadDim: 64,
		Context: 2048, Type: t, Tokenizer: "gpt2", Seed: 1}
}

// CrossCheckSet is the set of synthetic models compared with llama.cpp
// (tools/llamacpp-ref): every weight type the engine reads, both
// architectures, both tokenizer kinds, tied and separate output heads.
func CrossCheckSet() []Named {
	base := Options{Layers: 2, Dim: 256, FFNDim: 512, Heads: 4, KVHeads: 2, HeadDim: 64, Context: 256, Seed: 7}
	var set []Named
	for i, t := range []gguf.Type{gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0, gguf.Q4_0, gguf.Q4_K, gguf.Q6_K} {
		o := base
		o.Type = t
		switch i % 3 {
		case 0:
			o.Arch, o.Tokenizer, o.Pre, o.Tied = "llama", "gpt2", "llama-bpe", true
		case 1:
			o.Arch, o.Tokenizer, o.Pre = "qwen2", "gpt2", "qwen2"
		case 2:
			o.Arch, o.Tokenizer, o.RopeFreqs = "llama", "llama", true
		}
		set = append(set, Named{fmt.Sprintf("%s-%s-%s", o.Arch, o.Tokenizer, t), o})
	}
	return set
}

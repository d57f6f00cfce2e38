package llm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/turboquant-go/tq/llm/gguf"
	"github.com/turboquant-go/tq/llm/synth"
)

func synthOptions(arch string, t gguf.Type) synth.Options {
	o := synth.Options{Arch: arch, Layers: 2, Dim: 256, FFNDim: 512, Heads: 4, KVHeads: 2, HeadDim: 64,
		Context: 128, Type: t, Tokenizer: "gpt2", Pre: "llama-bpe", Seed: 1, Tied: true, RopeFreqs: true}
	if arch == "qwen2" {
		o.Tokenizer, o.Pre, o.Tied, o.RopeFreqs = "gpt2", "qwen2", false, false
	}
	return o
}

// dequantized reads every tensor of f as float32: the weights the file
// really holds, for the oracle.
func dequantized(t *testing.T, f *gguf.File) mapSource {
	s := mapSource{}
	for _, tn := range f.Tensors {
		v := make([]float32, tn.Elements())
		if err := tn.Dequantize(v); err != nil {
			t.Fatal(err)
		}
		s[tn.Name] = v
	}
	return s
}

// TestLoadEveryTensorType loads synthetic GGUF files of every weight type and
// both architectures and checks the logits against the float64 oracle run
// on the file's dequantized weights.
func TestLoadEveryTensorType(t *testing.T) {
	types := []gguf.Type{gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0, gguf.Q4_0, gguf.Q4_K, gguf.Q6_K}
	for i, typ := range types {
		arch := []string{"llama", "qwen2"}[i%2]
		t.Run(fmt.Sprintf("%s/%v", arch, typ), func(t *testing.T) {
			o := synthOptions(arch, typ)
			if arch == "llama" && i%4 == 2 {
				o.Tokenizer, o.Tied = "llama", false
			}
			data, err := synth.Build(o)
			if err != nil {
				t.Fatal(err)
			}
			f, err := gguf.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			c := m.Config
			if c.Arch != arch || c.Layers != 2 || c.Heads != 4 || c.KVHeads != 2 || c.HeadDim != 64 || c.TiedOutput != o.Tied ||
				(c.RopeFreqFactors != nil) != o.RopeFreqs || c.QKVBias != (arch == "qwen2") {
				t.Fatalf("config %+v from options %+v", c, o)
			}
			if m.Tokenizer == nil || m.Tokenizer.VocabSize() != c.Vocab {
				t.Fatalf("tokenizer of %d tokens for vocab %d", m.Tokenizer.VocabSize(), c.Vocab)
			}
			toks := m.Tokenizer.Encode("In the beginning God created the heaven and the earth.", true, false)
			if len(toks) < 5 || toks[0] != m.Tokenizer.BOS() {
				t.Fatalf("encoded %v", toks)
			}
			if got := m.Tokenizer.Decode(toks[1:]); got != "In the beginning God created the heaven and the earth." &&
				got != " In the beginning God created the heaven and the earth." {
				t.Fatalf("round trip gave %q", got)
			}
			var int8Inputs []string // the products the engine runs on int8 activations
			for _, tn := range f.Tensors {
				if tn.Type == gguf.Q8_0 || tn.Type == gguf.Q4_0 {
					int8Inputs = append(int8Inputs, tn.Name)
				}
			}
			ref := referenceLogits(c, dequantized(t, f), toks, int8Inputs...)
			seq := newTestCache(t, c, "fp32", 1<<24)
			logits := make([]float32, len(toks)*c.Vocab)
			if err := m.Forward(seq, toks, logits); err != nil {
				t.Fatal(err)
			}
			// With int8 inputs the oracle rounds its float64 activations, the
			// engine its float32 ones: an element at a rounding boundary can go
			// either way (one step, amax/127) and, once in a key or value, the
			// difference reaches every later position. Position 0 has no
			// history and is held to the float tolerance.
			tol := 1e-4
			if len(int8Inputs) > 0 {
				tol = 1e-2
			}
			for p := range toks {
				if d := maxRelDiff(logits[p*c.Vocab:(p+1)*c.Vocab], ref[p]); d > tol || (p == 0 && d > 1e-4) {
					t.Fatalf("position %d: max |Δ| %.2g of the logit range", p, d)
				}
			}
		})
	}
}

func TestOpenMapsTheFile(t *testing.T) {
	data, err := synth.Build(synthOptions("llama", gguf.F16))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := NewSampler(SampleOptions{})
	out, err := m.Generate(newTestCache(t, m.Config, "tq3", 1<<24), m.Tokenizer.Encode("And God said", true, false), 4, g, nil)
	if err != nil || len(out) != 4 {
		t.Fatalf("generate: %v %v", out, err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "absent.gguf")); err == nil {
		t.Fatal("opening an absent file succeeded")
	}
}

// TestLoadBadModels: an unknown architecture, a missing tensor, a shape
// mismatch, a missing hyperparameter and a truncated file each give a clear
// error.
func TestLoadBadModels(t *testing.T) {
	good, err := synth.Build(synthOptions("llama", gguf.F16))
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	// rewrite copies f's metadata and tensors through edit.
	rewrite := func(edit func(w *gguf.Writer, key string, v gguf.Value) bool, skip string, reshape string) []byte {
		w := gguf.NewWriter()
		for _, kv := range f.Meta {
			if edit == nil || edit(w, kv.Key, kv.Value) {
				w.Set(kv.Key, kv.Value)
			}
		}
		for _, tn := range f.Tensors {
			switch tn.Name {
			case skip:
				continue
			case reshape:
				if err := w.AddTensor(tn.Name, []int{tn.Dims[0] / 2, tn.Dims[1] * 2}, tn.Type, tn.Data); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := w.AddTensor(tn.Name, tn.Dims, tn.Type, tn.Data); err != nil {
				t.Fatal(err)
			}
		}
		b, err := w.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct {
		name string
		data []byte
		want error
	}{
		{"unknown arch", rewrite(func(w *gguf.Writer, k string, v gguf.Value) bool {
			if k == "general.architecture" {
				w.SetString(k, "mamba")
				return false
			}
			return true
		}, "", ""), ErrArchitecture},
		{"missing tensor", rewrite(nil, "blk.1.ffn_up.weight", ""), ErrModel},
		{"shape mismatch", rewrite(nil, "", "blk.0.attn_q.weight"), ErrModel},
		{"missing hyperparameter", rewrite(func(w *gguf.Writer, k string, v gguf.Value) bool {
			return k != "llama.block_count"
		}, "", ""), ErrModel},
	} {
		g, err := gguf.Parse(c.data)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if _, err := Load(g); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	for _, n := range []int{0, 10, len(good) / 3, len(good) - 1} {
		if _, err := gguf.Parse(good[:n]); err == nil {
			t.Errorf("a file truncated to %d bytes parsed", n)
		}
	}
}

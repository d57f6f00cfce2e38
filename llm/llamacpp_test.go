package llm

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/turboquant-go/tq/llm/gguf"
	"github.com/turboquant-go/tq/llm/synth"
)

// llamaCppSynth is llm/testdata/llamacpp_synth.json: llama.cpp's answers on
// the synthetic cross-check models (tools/llamacpp-ref/synth.mjs).
type llamaCppSynth struct {
	NPredict int `json:"n_predict"`
	Models   []struct {
		Name   string `json:"name"`
		Probes []struct {
			Text       string  `json:"text"`
			IDs        []int32 `json:"ids"`
			GreedyText string  `json:"greedy_text"`
			Top        []struct {
				Tok  string  `json:"tok_str"`
				Prob float64 `json:"prob"`
			} `json:"top"`
		} `json:"probes"`
	} `json:"models"`
}

// pieceName is how llama.cpp's completion names a token in its
// probabilities: the token's text as it reads after other text (an SPM
// word keeps its leading space), or "byte: \xNN" for a lone byte that is
// not valid UTF-8.
func pieceName(m *Model, id int32) string {
	pre := m.Tokenizer.Encode("x", false, false)
	s := strings.TrimPrefix(m.Tokenizer.Decode(append(append([]int32(nil), pre...), id)), m.Tokenizer.Decode(pre))
	if len(s) == 1 && !utf8.ValidString(s) {
		return fmt.Sprintf(`byte: \x%02x`, s[0])
	}
	return s
}

// llamaCppTolerance is the largest |Δp| allowed between the engine and
// llama.cpp per weight type. The engine computes in float32 from the
// weights; llama.cpp's CPU path rounds activations to the weight's dot type
// before each product (fp16 for F16/BF16 weights, 8-bit blocks for Q8_0,
// Q4_0 and the K-quants) and keeps its KV cache in fp16, so it can only agree
// exactly where it computes exactly: F32 weights. Both engines are compared
// with the float64 oracle elsewhere (TestLoadEveryTensorType: the engine is
// within 1e-4 of the logit range of it).
var llamaCppTolerance = map[gguf.Type]float64{
	gguf.F32: 1e-3, gguf.F16: 5e-3, gguf.BF16: 2e-2, // bf16 activations keep 8 mantissa bits
	gguf.Q8_0: 1e-2, gguf.Q6_K: 1e-2, gguf.Q4_0: 5e-2, gguf.Q4_K: 5e-2,
}

// llamaCppText renders bytes as llama.cpp's completion text does: each
// byte that is not part of valid UTF-8 becomes U+FFFD.
func llamaCppText(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

// TestLlamaCppSynth compares the engine with llama.cpp on every synthetic
// cross-check model: token ids (exactly), the top next-token probabilities
// (within llamaCppTolerance) and greedy continuations (exactly where
// llama.cpp computes exactly; elsewhere the first token whenever the top two
// are 0.05 apart).
func TestLlamaCppSynth(t *testing.T) {
	raw, err := os.ReadFile("testdata/llamacpp_synth.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref llamaCppSynth
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	byName := map[string]synth.Options{}
	for _, c := range synth.CrossCheckSet() {
		byName[c.Name] = c.Options
	}
	if len(ref.Models) != len(byName) {
		t.Fatalf("llama.cpp answered for %d models, the cross-check set has %d: regenerate the file", len(ref.Models), len(byName))
	}
	for _, rm := range ref.Models {
		t.Run(rm.Name, func(t *testing.T) {
			o, ok := byName[rm.Name]
			if !ok {
				t.Fatalf("no synthetic model %s", rm.Name)
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
			V := m.Config.Vocab
			names := map[string][]int32{}
			for id := range int32(V) {
				names[pieceName(m, id)] = append(names[pieceName(m, id)], id)
			}
			greedy, _ := NewSampler(SampleOptions{})
			tol := llamaCppTolerance[o.Type]
			worst, same := 0.0, 0
			for _, p := range rm.Probes {
				ids := m.Tokenizer.Encode(p.Text, false, false)
				if fmt.Sprint(ids) != fmt.Sprint(p.IDs) {
					t.Errorf("%q: ids %v, llama.cpp %v", p.Text, ids, p.IDs)
					continue
				}
				prompt := m.Tokenizer.Encode(p.Text, true, false)
				seq := newTestCache(t, m.Config, "fp32", 1<<24)
				logits := make([]float32, V)
				if err := m.Forward(seq, prompt, logits); err != nil {
					t.Fatal(err)
				}
				lp := make([]float64, V)
				logSoftmax(lp, logits)
				matched := 0
				for _, top := range p.Top {
					cands := names[top.Tok]
					if len(cands) != 1 {
						continue // a name several tokens share, or none
					}
					matched++
					d := math.Abs(math.Exp(lp[cands[0]]) - top.Prob)
					worst = max(worst, d)
					if d > tol {
						t.Errorf("%q: p(%q) = %.6f, llama.cpp %.6f", p.Text, top.Tok, math.Exp(lp[cands[0]]), top.Prob)
					}
				}
				if matched < len(p.Top)/2 {
					t.Errorf("%q: only %d of llama.cpp's %d top tokens could be named", p.Text, matched, len(p.Top))
				}
				out, err := m.Generate(newTestCache(t, m.Config, "fp32", 1<<24), prompt, ref.NPredict, greedy, m.Tokenizer.IsEOG)
				if err != nil {
					t.Fatal(err)
				}
				if len(out) > 0 && m.Tokenizer.IsEOG(out[len(out)-1]) {
					out = out[:len(out)-1]
				}
				// Decoded after the prompt, as llama.cpp's completion is (an
				// SPM word's leading space is kept).
				full := m.Tokenizer.Decode(append(append([]int32(nil), prompt...), out...))
				got := llamaCppText(strings.TrimPrefix(full, m.Tokenizer.Decode(prompt)))
				if got == p.GreedyText {
					same++
					continue
				}
				second := math.Inf(-1)
				for id, l := range lp {
					if int32(id) != Argmax(logits) {
						second = max(second, l)
					}
				}
				margin := math.Exp(lp[Argmax(logits)]) - math.Exp(second)
				first := llamaCppText(strings.TrimPrefix(m.Tokenizer.Decode(append(append([]int32(nil), prompt...), out[:1]...)), m.Tokenizer.Decode(prompt)))
				if o.Type == gguf.F32 || margin > 0.05 && !strings.HasPrefix(p.GreedyText, first) {
					t.Errorf("%q: greedy %q, llama.cpp %q (top-two margin %.3f)", p.Text, got, p.GreedyText, margin)
				}
			}
			t.Logf("%s: max |Δp| %.2e (allowed %.0e), greedy continuations equal %d/%d", rm.Name, worst, tol, same, len(rm.Probes))
		})
	}
}

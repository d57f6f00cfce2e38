package llm

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/turboquant-go/tq/internal/rng"
	"github.com/turboquant-go/tq/internal/simd"
	"github.com/turboquant-go/tq/kvcache"
)

// randomSource builds a model's tensors with Gaussian weights scaled so that
// activations stay O(1) through the layers.
func randomSource(cfg Config, seed uint64) mapSource {
	r := rng.New(seed)
	fill := func(n int, scale float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.Norm() * scale)
		}
		return v
	}
	norm := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(1 + 0.1*r.Norm())
		}
		return v
	}
	qDim, kvDim := cfg.Heads*cfg.HeadDim, cfg.KVHeads*cfg.HeadDim
	s := mapSource{
		"token_embd.weight":  fill(cfg.Vocab*cfg.Dim, 1),
		"output_norm.weight": norm(cfg.Dim),
	}
	if !cfg.TiedOutput {
		s["output.weight"] = fill(cfg.Vocab*cfg.Dim, 1/math.Sqrt(float64(cfg.Dim)))
	}
	for i := range cfg.Layers {
		p := fmt.Sprintf("blk.%d.", i)
		s[p+"attn_norm.weight"] = norm(cfg.Dim)
		s[p+"ffn_norm.weight"] = norm(cfg.Dim)
		s[p+"attn_q.weight"] = fill(qDim*cfg.Dim, 2/math.Sqrt(float64(cfg.Dim)))
		s[p+"attn_k.weight"] = fill(kvDim*cfg.Dim, 2/math.Sqrt(float64(cfg.Dim)))
		s[p+"attn_v.weight"] = fill(kvDim*cfg.Dim, 1/math.Sqrt(float64(cfg.Dim)))
		s[p+"attn_output.weight"] = fill(cfg.Dim*qDim, 0.5/math.Sqrt(float64(qDim)))
		s[p+"ffn_gate.weight"] = fill(cfg.FFNDim*cfg.Dim, 1/math.Sqrt(float64(cfg.Dim)))
		s[p+"ffn_up.weight"] = fill(cfg.FFNDim*cfg.Dim, 1/math.Sqrt(float64(cfg.Dim)))
		s[p+"ffn_down.weight"] = fill(cfg.Dim*cfg.FFNDim, 0.5/math.Sqrt(float64(cfg.FFNDim)))
		if cfg.QKVBias {
			s[p+"attn_q.bias"] = fill(qDim, 0.5)
			s[p+"attn_k.bias"] = fill(kvDim, 3) // Qwen-like key offsets
			s[p+"attn_v.bias"] = fill(kvDim, 0.2)
		}
	}
	return s
}

func testConfig(arch string) Config {
	c := Config{Arch: arch, Layers: 3, Dim: 64, FFNDim: 96, Heads: 4, KVHeads: 2, HeadDim: 16, Vocab: 50,
		Context: 256, RMSEps: 1e-5, RopeBase: 10000, RopeDim: 16, RopeLinear: 1, TiedOutput: true}
	if arch == "qwen2" {
		c.RopeStyle, c.QKVBias, c.TiedOutput = RopeNeoX, true, false
		c.RopeBase = 1e6
	}
	return c
}

// int8Rounded is x as the engine quantizes an input row for Q8_0 and Q4_0
// weights: float32, then int8 in blocks of 32 with an fp16 scale each.
func int8Rounded(x []float64) []float64 {
	x32 := make([]float32, len(x))
	for i, v := range x {
		x32[i] = float32(v)
	}
	var a simd.Q8Rows
	a.Quantize(x32, len(x32))
	y := make([]float64, len(x))
	for i := range y {
		y[i] = float64(a.Vals[i]) * float64(a.Scales[i/simd.QuantBlock*4])
	}
	return y
}

// referenceLogits recomputes every position's logits from scratch in
// float64, with full causal attention and no cache: an oracle written
// independently of Forward. The products with the matrices named in
// int8Inputs take their input rounded as the engine rounds it for Q8_0 and
// Q4_0 weights (simd.Q8Rows, tested on its own), the rest exact inputs.
func referenceLogits(cfg Config, s mapSource, tokens []int32, int8Inputs ...string) [][]float64 {
	T, d, hd := len(tokens), cfg.Dim, cfg.HeadDim
	mat := func(name string, x []float64, rows int) []float64 {
		w := s[name]
		cols := len(x)
		if slices.Contains(int8Inputs, name) {
			x = int8Rounded(x)
		}
		y := make([]float64, rows)
		for r := range rows {
			for c := range cols {
				y[r] += float64(w[r*cols+c]) * x[c]
			}
		}
		return y
	}
	norm := func(x []float64, w []float32) []float64 {
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		sc := 1 / math.Sqrt(ss/float64(len(x))+float64(cfg.RMSEps))
		y := make([]float64, len(x))
		for i := range x {
			y[i] = x[i] * sc * float64(w[i])
		}
		return y
	}
	rope := func(v []float64, pos int) {
		for h := 0; h < len(v)/hd; h++ {
			x := v[h*hd : (h+1)*hd]
			for i := range cfg.RopeDim / 2 {
				theta := float64(pos) * math.Pow(float64(cfg.RopeBase), -2*float64(i)/float64(cfg.RopeDim)) / float64(cfg.RopeLinear)
				if cfg.RopeFreqFactors != nil {
					theta /= float64(cfg.RopeFreqFactors[i])
				}
				a, b := 2*i, 2*i+1
				if cfg.RopeStyle == RopeNeoX {
					a, b = i, i+cfg.RopeDim/2
				}
				c, sn := math.Cos(theta), math.Sin(theta)
				x[a], x[b] = x[a]*c-x[b]*sn, x[a]*sn+x[b]*c
			}
		}
	}
	x := make([][]float64, T)
	for t, tok := range tokens {
		x[t] = make([]float64, d)
		for j := range d {
			x[t][j] = float64(s["token_embd.weight"][int(tok)*d+j])
		}
	}
	for l := range cfg.Layers {
		p := fmt.Sprintf("blk.%d.", l)
		qs, ks, vs := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for t := range T {
			xn := norm(x[t], s[p+"attn_norm.weight"])
			qs[t] = mat(p+"attn_q.weight", xn, cfg.Heads*hd)
			ks[t] = mat(p+"attn_k.weight", xn, cfg.KVHeads*hd)
			vs[t] = mat(p+"attn_v.weight", xn, cfg.KVHeads*hd)
			if cfg.QKVBias {
				for i := range qs[t] {
					qs[t][i] += float64(s[p+"attn_q.bias"][i])
				}
				for i := range ks[t] {
					ks[t][i] += float64(s[p+"attn_k.bias"][i])
					vs[t][i] += float64(s[p+"attn_v.bias"][i])
				}
			}
			rope(qs[t], t)
			rope(ks[t], t)
		}
		for t := range T {
			att := make([]float64, cfg.Heads*hd)
			for h := range cfg.Heads {
				kv := h / (cfg.Heads / cfg.KVHeads)
				sc := make([]float64, t+1)
				mx := math.Inf(-1)
				for u := 0; u <= t; u++ {
					for j := range hd {
						sc[u] += qs[t][h*hd+j] * ks[u][kv*hd+j]
					}
					sc[u] /= math.Sqrt(float64(hd))
					mx = max(mx, sc[u])
				}
				var sum float64
				for u := range sc {
					sc[u] = math.Exp(sc[u] - mx)
					sum += sc[u]
				}
				for u := range sc {
					for j := range hd {
						att[h*hd+j] += sc[u] / sum * vs[u][kv*hd+j]
					}
				}
			}
			o := mat(p+"attn_output.weight", att, d)
			for j := range d {
				x[t][j] += o[j]
			}
			xn := norm(x[t], s[p+"ffn_norm.weight"])
			g := mat(p+"ffn_gate.weight", xn, cfg.FFNDim)
			u := mat(p+"ffn_up.weight", xn, cfg.FFNDim)
			for i := range g {
				g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
			}
			dn := mat(p+"ffn_down.weight", g, d)
			for j := range d {
				x[t][j] += dn[j]
			}
		}
	}
	out := make([][]float64, T)
	head := "output.weight"
	if cfg.TiedOutput {
		head = "token_embd.weight"
	}
	for t := range T {
		out[t] = mat(head, norm(x[t], s["output_norm.weight"]), cfg.Vocab)
	}
	return out
}

func newTestCache(t testing.TB, cfg Config, preset string, budget int64) *kvcache.Sequence {
	t.Helper()
	cc, err := kvcache.Preset(preset, cfg.Layers, cfg.KVHeads, cfg.Heads, cfg.HeadDim)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := kvcache.NewPool(cc, budget)
	if err != nil {
		t.Fatal(err)
	}
	seq := pool.NewSequence()
	t.Cleanup(func() { seq.Close() })
	return seq
}

func testTokens(n, vocab int, seed uint64) []int32 {
	r := rng.New(seed)
	toks := make([]int32, n)
	for i := range toks {
		toks[i] = int32(r.Intn(vocab))
	}
	return toks
}

// maxRelDiff is max |a−b| over the range of b.
func maxRelDiff(a []float32, b []float64) float64 {
	lo, hi, worst := math.Inf(1), math.Inf(-1), 0.0
	for i := range b {
		lo, hi = min(lo, b[i]), max(hi, b[i])
		worst = max(worst, math.Abs(float64(a[i])-b[i]))
	}
	return worst / (hi - lo)
}

func TestForwardMatchesReference(t *testing.T) {
	for _, arch := range []string{"llama", "qwen2"} {
		t.Run(arch, func(t *testing.T) {
			cfg := testConfig(arch)
			if arch == "llama" {
				cfg.RopeFreqFactors = make([]float32, cfg.RopeDim/2)
				for i := range cfg.RopeFreqFactors {
					cfg.RopeFreqFactors[i] = 1 + float32(i)/4
				}
			}
			src := randomSource(cfg, 7)
			m, err := assemble(cfg, src)
			if err != nil {
				t.Fatal(err)
			}
			toks := testTokens(40, cfg.Vocab, 3)
			ref := referenceLogits(cfg, src, toks)
			// Prefill 30 tokens with every position's logits, then decode 10.
			seq := newTestCache(t, cfg, "fp32", 1<<24)
			logits := make([]float32, 30*cfg.Vocab)
			if err := m.Forward(seq, toks[:30], logits); err != nil {
				t.Fatal(err)
			}
			for p := range 30 {
				if d := maxRelDiff(logits[p*cfg.Vocab:(p+1)*cfg.Vocab], ref[p]); d > 1e-4 {
					t.Fatalf("prefill position %d: max |Δ| %.2g of the logit range", p, d)
				}
			}
			one := make([]float32, cfg.Vocab)
			for p := 30; p < 40; p++ {
				if err := m.Forward(seq, toks[p:p+1], one); err != nil {
					t.Fatal(err)
				}
				if d := maxRelDiff(one, ref[p]); d > 1e-4 {
					t.Fatalf("decode position %d: max |Δ| %.2g of the logit range", p, d)
				}
			}
			if seq.Len() != 40 {
				t.Fatalf("cache holds %d tokens, want 40", seq.Len())
			}
		})
	}
}

func TestForwardBadInput(t *testing.T) {
	cfg := testConfig("llama")
	m, err := assemble(cfg, randomSource(cfg, 1))
	if err != nil {
		t.Fatal(err)
	}
	seq := newTestCache(t, cfg, "fp16", 1<<24)
	logits := make([]float32, cfg.Vocab)
	for _, c := range []struct {
		name   string
		toks   []int32
		logits []float32
		want   error
	}{
		{"empty", nil, logits, ErrArgument},
		{"bad logits", []int32{1}, logits[:3], ErrArgument},
		{"more outputs than tokens", []int32{1}, make([]float32, 2*cfg.Vocab), ErrArgument},
		{"token", []int32{1, int32(cfg.Vocab)}, logits, ErrToken},
		{"negative token", []int32{-1}, logits, ErrToken},
		{"context", make([]int32, cfg.Context+1), logits, ErrContext},
	} {
		if err := m.Forward(seq, c.toks, c.logits); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
		if seq.Len() != 0 {
			t.Fatalf("%s: a refused step left %d tokens in the cache", c.name, seq.Len())
		}
	}
}

// TestForwardCacheFullLeavesCacheUnchanged fills a small budget: the step
// that does not fit is refused and the cache still holds what it held.
func TestForwardCacheFullLeavesCacheUnchanged(t *testing.T) {
	cfg := testConfig("llama")
	m, err := assemble(cfg, randomSource(cfg, 1))
	if err != nil {
		t.Fatal(err)
	}
	cc, _ := kvcache.Preset("fp16", cfg.Layers, cfg.KVHeads, cfg.Heads, cfg.HeadDim)
	need, err := cc.PlanBytes(64)
	if err != nil {
		t.Fatal(err)
	}
	seq := newTestCache(t, cfg, "fp16", need)
	logits := make([]float32, cfg.Vocab)
	toks := testTokens(80, cfg.Vocab, 5)
	if err := m.Forward(seq, toks[:60], logits); err != nil {
		t.Fatal(err)
	}
	err = m.Forward(seq, toks[60:], logits)
	if !errors.Is(err, kvcache.ErrCacheFull) {
		t.Fatalf("got %v, want ErrCacheFull", err)
	}
	if seq.Len() != 60 {
		t.Fatalf("after a refused step the cache holds %d tokens, want 60", seq.Len())
	}
	for l := range cfg.Layers {
		if n := seq.LayerLen(l); n != 60 {
			t.Fatalf("layer %d holds %d tokens, want 60", l, n)
		}
	}
}

// TestForwardCacheFullKeepsCompressedCacheExact: with a compressed preset a
// step that pushes tokens out of the fp16 window is refused, when a later
// layer would not fit, before layer 0 compresses anything, so the cache's
// snapshot is byte-for-byte what it was. Through a cache that hides Reserve
// (truncation only) the same refusal leaves layer 0's pushed-out tokens
// compressed, which is what the reservation is for.
func TestForwardCacheFullKeepsCompressedCacheExact(t *testing.T) {
	cfg := testConfig("llama")
	m, err := assemble(cfg, randomSource(cfg, 4))
	if err != nil {
		t.Fatal(err)
	}
	toks := testTokens(200, cfg.Vocab, 6)
	const n0 = 140 // past tq3's 4 sinks and 128-token window
	logits := make([]float32, cfg.Vocab)
	roomy := newTestCache(t, cfg, "tq3", 0)
	if err := m.Forward(roomy, toks[:n0], logits); err != nil {
		t.Fatal(err)
	}
	used0 := roomy.Stats().StoredBytes
	if err := m.Forward(roomy, toks[n0:], logits); err != nil {
		t.Fatal(err)
	}
	// A budget that holds the step's first layer but not all of them.
	budget := used0 + (roomy.Stats().StoredBytes-used0)/int64(cfg.Layers)
	snapshot := func(s *kvcache.Sequence) string {
		var b strings.Builder
		if _, err := s.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	for _, reserving := range []bool{true, false} {
		seq := newTestCache(t, cfg, "tq3", budget)
		if err := m.Forward(seq, toks[:n0], logits); err != nil {
			t.Fatal(err)
		}
		before := snapshot(seq)
		var c Cache = seq
		if !reserving {
			c = truncatingOnly{seq}
		}
		if err := m.Forward(c, toks[n0:], logits); !errors.Is(err, kvcache.ErrCacheFull) {
			t.Fatalf("reserving %v: got %v, want ErrCacheFull", reserving, err)
		}
		if exact := snapshot(seq) == before; exact != reserving {
			t.Errorf("reserving %v: after the refused step the cache is unchanged: %v", reserving, exact)
		}
		if seq.Len() != n0 {
			t.Errorf("reserving %v: %d tokens after the refused step, want %d", reserving, seq.Len(), n0)
		}
	}
}

// truncatingOnly is a Cache without Reserve.
type truncatingOnly struct{ s *kvcache.Sequence }

func (c truncatingOnly) Append(layer int, keys, values []float32) error {
	return c.s.Append(layer, keys, values)
}
func (c truncatingOnly) Attend(layer int, queries, out []float32) error {
	return c.s.Attend(layer, queries, out)
}
func (c truncatingOnly) Len() int             { return c.s.Len() }
func (c truncatingOnly) Truncate(n int) error { return c.s.Truncate(n) }

package validate

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/llm"
)

// LMOptions configures a model-level fidelity run (MeasureLM).
type LMOptions struct {
	// Ctx is the window length in tokens (BOS included when BOS ≥ 0).
	Ctx int
	// Windows caps the number of windows (0: every whole window of the text).
	Windows int
	// Chunk is the tokens per forward step after each window's first half;
	// 1 decodes token by token, as generation does.
	Chunk int
	// BOS starts every window when ≥ 0.
	BOS int32
	// Reference is the preset ΔPPL, KLD and agreement are measured
	// against (default "fp16").
	Reference string
	// Adjust, if not nil, changes each preset's cache configuration.
	Adjust func(*kvcache.Config)
	// Progress, if not nil, is called after each window.
	Progress func(done, total int)
}

// LMRow is one preset's model-level fidelity over a text.
type LMRow struct {
	Preset       string  `json:"preset"`
	BitsPerValue float64 `json:"bits_per_value"`
	// Tokens is the number of predictions scored.
	Tokens int     `json:"tokens"`
	PPL    float64 `json:"ppl"`
	// DeltaPPLPct is 100·(PPL/PPL_ref − 1).
	DeltaPPLPct float64 `json:"delta_ppl_pct"`
	// KLDMean and KLDP99 are the mean and 99th percentile over scored
	// tokens of KL(p_ref ‖ p) over the vocabulary, nats.
	KLDMean float64 `json:"kld_mean"`
	KLDP99  float64 `json:"kld_p99"`
	// Top1Agree is the fraction of scored tokens whose most likely next
	// token equals the reference's.
	Top1Agree float64 `json:"top1_agree"`
	// KVBytesPerToken is the cache's bytes per token over all layers with a
	// full window of Ctx tokens (PlanBytes(Ctx)/Ctx: the fp16 window and
	// sinks included).
	KVBytesPerToken float64 `json:"kv_bytes_per_token"`
	PrefillTokS     float64 `json:"prefill_tok_s"`
	DecodeTokS      float64 `json:"decode_tok_s"`
}

// modelPreset is a preset for the model's cache shape, adjusted, with the
// bytes it plans for n tokens.
func modelPreset(m *llm.Model, name string, n int, adjust func(*kvcache.Config)) (kvcache.Config, int64, error) {
	c := m.Config
	cfg, err := kvcache.Preset(name, c.Layers, c.KVHeads, c.Heads, c.HeadDim)
	if err != nil {
		return cfg, 0, err
	}
	if adjust != nil {
		adjust(&cfg)
	}
	plan, err := cfg.PlanBytes(n)
	return cfg, plan, err
}

// baselineShape is the cache shape a baseline codec runs in for model m:
// the model's heads, and the fp16 sinks and window of the compressed
// presets, so that baselines and presets differ only in the codec.
func baselineShape(m *llm.Model, n int) (kvcache.Config, error) {
	c, _, err := modelPreset(m, "tq4", n, nil)
	if err != nil {
		return c, err
	}
	return kvcache.Config{Layers: c.Layers, KVHeads: c.KVHeads, QHeads: c.QHeads, HeadDim: c.HeadDim,
		Window: c.Window, Sinks: c.Sinks, Scale: c.Scale}, nil
}

// lmWindows cuts tokens into non-overlapping windows of ctx tokens, each
// starting with bos when bos ≥ 0.
func lmWindows(tokens []int32, ctx int, bos int32, limit int) [][]int32 {
	body := ctx
	if bos >= 0 {
		body--
	}
	var out [][]int32
	for lo := 0; lo+body <= len(tokens) && (limit <= 0 || len(out) < limit); lo += body {
		w := make([]int32, 0, ctx)
		if bos >= 0 {
			w = append(w, bos)
		}
		out = append(out, append(w, tokens[lo:lo+body]...))
	}
	return out
}

// MeasureLM runs model over tokens in windows of opt.Ctx, as llama.cpp's
// perplexity tool does: each window starts fresh, its first half is one
// prefill, and the prediction of every token of its second half is scored.
// Every preset runs side by side with the reference on the same tokens.
// A name of a baseline codec (Baselines' Names: "kivi4-g32",
// "int4-asym-g32", …) runs that codec on a BaselineCache with the
// presets' fp16 sinks and window.
// Rows come in the order of presets (the reference's row, ΔPPL 0, where it
// is listed).
func MeasureLM(m *llm.Model, tokens []int32, presets []string, opt LMOptions) ([]LMRow, error) {
	cfg := m.Config
	if opt.Reference == "" {
		opt.Reference = "fp16"
	}
	if opt.Chunk <= 0 {
		opt.Chunk = 1
	}
	if opt.Ctx < 4 || opt.Ctx > cfg.Context {
		return nil, fmt.Errorf("%w: window of %d tokens for a model of context %d", llm.ErrArgument, opt.Ctx, cfg.Context)
	}
	windows := lmWindows(tokens, opt.Ctx, opt.BOS, opt.Windows)
	if len(windows) == 0 {
		return nil, fmt.Errorf("%w: %d tokens do not fill one window of %d", llm.ErrArgument, len(tokens), opt.Ctx)
	}
	names := append([]string{opt.Reference}, slices.DeleteFunc(slices.Clone(presets), func(p string) bool {
		return strings.TrimSpace(p) == opt.Reference
	})...)
	cfgs := make([]kvcache.Config, len(names))
	codecs := make([]*Baseline, len(names)) // non-nil: a baseline codec on a BaselineCache
	rows := make([]LMRow, len(names))
	for i, name := range names {
		name = strings.TrimSpace(name)
		if b, ok := BaselineByName(name); ok {
			c, err := baselineShape(m, opt.Ctx)
			if err != nil {
				return nil, err
			}
			bc, err := NewBaselineCache(b, c)
			if err != nil {
				return nil, err
			}
			cfgs[i], codecs[i] = c, &b
			rows[i] = LMRow{Preset: name, BitsPerValue: b.NominalBits(), KVBytesPerToken: bc.BytesPerToken(opt.Ctx)}
			continue
		}
		c, plan, err := modelPreset(m, name, opt.Ctx, opt.Adjust)
		if err != nil {
			return nil, err
		}
		cfgs[i] = c
		rows[i] = LMRow{Preset: name, BitsPerValue: 16, KVBytesPerToken: float64(plan) / float64(opt.Ctx)}
		if c.Keys.Kind == kvcache.Float32 {
			rows[i].BitsPerValue = 32
		} else if c.Keys.Kind == kvcache.Quantized || c.Values.Kind == kvcache.Quantized {
			rows[i].BitsPerValue, _ = presetStorage(c)
		}
	}
	nll := make([]float64, len(names))
	klds := make([][]float64, len(names))
	agree := make([]int, len(names))
	prefill, steps := make([]time.Duration, len(names)), make([]time.Duration, len(names))
	var prefillTokens, stepTokens int
	from := opt.Ctx / 2
	for wi, w := range windows {
		var err error
		caches := make([]llm.Cache, len(names))
		var seqs []*kvcache.Sequence
		for i, c := range cfgs {
			if codecs[i] != nil {
				if caches[i], err = NewBaselineCache(*codecs[i], c); err != nil {
					return nil, err
				}
				continue
			}
			plan, _ := c.PlanBytes(opt.Ctx)
			pool, err := kvcache.NewPool(c, 2*plan+1<<20) // deferred prefills hold the prompt in fp16
			if err != nil {
				return nil, err
			}
			s := pool.NewSequence()
			seqs = append(seqs, s)
			caches[i] = s
		}
		res, err := m.ScoreWindow(caches, w, from, opt.Chunk)
		for _, s := range seqs {
			s.Close()
		}
		if err != nil {
			return nil, fmt.Errorf("window %d: %w", wi, err)
		}
		prefillTokens += from
		stepTokens += len(w) - 1 - from
		for i, r := range res {
			prefill[i] += r.Prefill
			steps[i] += r.Steps
			for j, s := range r.Scores {
				nll[i] += s.NLL
				klds[i] = append(klds[i], s.KLD)
				if s.Top1 == res[0].Scores[j].Top1 {
					agree[i]++
				}
			}
		}
		if opt.Progress != nil {
			opt.Progress(wi+1, len(windows))
		}
	}
	n := len(klds[0])
	for i := range rows {
		r := &rows[i]
		r.Tokens = n
		r.PPL = math.Exp(nll[i] / float64(n))
		r.DeltaPPLPct = 100 * (math.Exp((nll[i]-nll[0])/float64(n)) - 1)
		slices.Sort(klds[i])
		var sum float64
		for _, k := range klds[i] {
			sum += k
		}
		r.KLDMean = sum / float64(n)
		r.KLDP99 = klds[i][min(n-1, int(math.Ceil(0.99*float64(n)))-1)]
		r.Top1Agree = float64(agree[i]) / float64(n)
		r.PrefillTokS = float64(prefillTokens) / prefill[i].Seconds()
		r.DecodeTokS = float64(stepTokens) / steps[i].Seconds()
	}
	// Rows in the caller's order.
	out := make([]LMRow, 0, len(presets))
	for _, p := range presets {
		for _, r := range rows {
			if r.Preset == strings.TrimSpace(p) {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

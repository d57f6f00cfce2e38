package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/llm"
	"github.com/turboquant-go/tq/models/kjv"
	"github.com/turboquant-go/tq/validate"
)

// lmPresets are the presets the model-level table runs by default.
var lmPresets = []string{"fp32", "fp16", "k8v4", "tq4", "tq3.5", "tq3", "tq2.5", "tq3-guard", "tq4+i8", "tq3+i8"}

// runLMTable is the main job's model-level table: the committed model over
// its held-out text (4 windows decoded token by token; --quick: 1 window in
// chunks) with every lmPresets preset, and a small passkey grid.
func runLMTable(quick bool) (lmReport, error) {
	m, file, err := openLM("")
	if err != nil {
		return lmReport{}, err
	}
	defer m.Close()
	tokens := textCodec{m}.Encode(kjv.Heldout)
	opt := validate.LMOptions{Ctx: m.Config.Context, Windows: 4, Chunk: 1, BOS: m.Tokenizer.BOS()}
	pk := validate.PasskeyOptions{Depths: 3, Trials: 1, Seed: 1, BOS: m.Tokenizer.BOS()}
	pk.Lengths = []int{256, pk.MaxLength(m.Config.Context)}
	if quick {
		opt.Windows, opt.Chunk = 1, 64
		pk.Lengths = pk.Lengths[:1]
	}
	rep := lmReport{Model: modelInfo(m, file, "held-out KJV ("+kjv.HeldoutName+")", len(tokens))}
	if rep.Presets, err = validate.MeasureLM(m, tokens, lmPresets, opt); err != nil {
		return rep, err
	}
	rep.Passkey, err = validate.MeasurePasskey(m, textCodec{m}, tokens, lmPresets, pk)
	return rep, err
}

// lmModelInfo is the "model" object of `lm --json`.
type lmModelInfo struct {
	Name        string `json:"name"`
	File        string `json:"file"`
	Arch        string `json:"arch"`
	Params      int64  `json:"params"`
	Layers      int    `json:"layers"`
	Heads       int    `json:"heads"`
	KVHeads     int    `json:"kv_heads"`
	HeadDim     int    `json:"head_dim"`
	Vocab       int    `json:"vocab"`
	Context     int    `json:"context"`
	WeightBytes int64  `json:"weight_bytes"`
	Text        string `json:"text"`
	TextTokens  int    `json:"text_tokens"`
}

type lmReport struct {
	Model   lmModelInfo           `json:"model"`
	Presets []validate.LMRow      `json:"presets"`
	Passkey []validate.PasskeyRow `json:"passkey,omitempty"`
}

// openLM opens a GGUF model, or the committed KJV model when path is "".
func openLM(path string) (*llm.Model, string, error) {
	if path == "" {
		m, err := kjv.Model()
		return m, "embedded " + kjv.FileName, err
	}
	m, err := llm.Open(path)
	return m, path, err
}

// textCodec adapts the model's tokenizer to validate.TextCodec: raw text,
// no special tokens.
type textCodec struct{ m *llm.Model }

func (c textCodec) Encode(s string) []int32   { return c.m.Tokenizer.Encode(s, false, false) }
func (c textCodec) Decode(ids []int32) string { return c.m.Tokenizer.Decode(ids) }

// ladderPresets is fp16 and every fixed-rate compressed preset (tuned and
// ladder), most bits per value first.
func ladderPresets() []string {
	type rung struct {
		name string
		bits int64
	}
	var rungs []rung
	for _, name := range slices.Concat(kvcache.PresetNames, kvcache.LadderPresetNames, kvcache.UnbiasedKeyPresetNames) {
		cfg, err := kvcache.Preset(name, 1, 1, 1, 128)
		if err != nil || name == "fp32" || name == "fp16" {
			continue
		}
		cfg.Window, cfg.Sinks, cfg.BlockTokens = 0, 0, 1
		if b, err := cfg.PlanBytes(1); err == nil {
			rungs = append(rungs, rung{name, b})
		}
	}
	slices.SortStableFunc(rungs, func(a, b rung) int { return cmp.Compare(b.bits, a.bits) })
	out := []string{"fp16"}
	for _, r := range rungs {
		out = append(out, r.name)
	}
	return out
}

func runLM(args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "gen" {
		return runLMGen(args[1:], stdout)
	}
	fs := newFlags("lm")
	modelFlag := fs.String("model", "", "a GGUF model (default: the committed KJV model)")
	textFlag := fs.String("text", "", "text to score (default: the committed model's held-out text)")
	ctx := fs.Int("ctx", 0, "window tokens (default: the model's context, at most 1024)")
	windows := fs.Int("windows", 0, "at most this many windows (0: all)")
	chunk := fs.Int("chunk", 1, "tokens per step in each window's second half (1: decode token by token)")
	presetsFlag := fs.String("presets", strings.Join(lmPresets, ","), `comma-separated cache presets, or baseline codecs by name (kivi4-g32, int4-asym-g32, int4-sym-g32, …); "ladder": every fixed-rate preset from 8 to 2 bits, unbiased-key ones included`)
	ref := fs.String("reference", "fp16", "the preset ΔPPL, KLD and agreement are measured against")
	passkey := fs.Bool("passkey", false, "also measure passkey retrieval by depth × context")
	lengths := fs.String("lengths", "", "passkey prompt lengths in tokens (default: 256, 512, … and the context less the answer)")
	depths := fs.Int("depths", 5, "passkey depths")
	trials := fs.Int("trials", 2, "passkey keys per (length, depth)")
	asJSON := fs.Bool("json", false, "print JSON")
	quiet := fs.Bool("quiet", false, "no progress bar")
	plotFile := fs.String("plot", "", "write ΔPPL and KLD against bits per value to this PNG")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	m, file, err := openLM(*modelFlag)
	if err != nil {
		return err
	}
	defer m.Close()
	if m.Tokenizer == nil {
		return fmt.Errorf("%s has no tokenizer", file)
	}
	text, textName := kjv.Heldout, "held-out KJV ("+kjv.HeldoutName+")"
	if *textFlag != "" {
		b, err := os.ReadFile(*textFlag)
		if err != nil {
			return err
		}
		text, textName = string(b), *textFlag
	}
	if *ctx == 0 {
		*ctx = min(m.Config.Context, 1024)
	}
	tokens := textCodec{m}.Encode(text)
	bos := int32(-1)
	if m.Tokenizer.AddBOS() {
		bos = m.Tokenizer.BOS()
	}
	presets := splitList(*presetsFlag)
	if *presetsFlag == "ladder" {
		presets = ladderPresets()
	}
	rep := lmReport{Model: modelInfo(m, file, textName, len(tokens))}
	bar := newProgress(os.Stderr, 1, "lm", *quiet)
	rep.Presets, err = validate.MeasureLM(m, tokens, presets, validate.LMOptions{
		Ctx: *ctx, Windows: *windows, Chunk: *chunk, BOS: bos, Reference: *ref,
		Progress: func(done, total int) { bar.describe(fmt.Sprintf("lm windows %d/%d", done, total)) },
	})
	bar.finish()
	if err != nil {
		return err
	}
	if *passkey {
		ls, err := passkeyLengths(*lengths, m.Config.Context)
		if err != nil {
			return err
		}
		bar := newProgress(os.Stderr, 1, "passkey", *quiet)
		rep.Passkey, err = validate.MeasurePasskey(m, textCodec{m}, tokens, presets, validate.PasskeyOptions{
			Lengths: ls, Depths: *depths, Trials: *trials, Seed: 1, BOS: bos,
			Progress: func(done, total int) { bar.describe(fmt.Sprintf("passkey %d/%d", done, total)) },
		})
		bar.finish()
		if err != nil {
			return err
		}
	}
	if *plotFile != "" {
		if err := plotLM(*plotFile, rep); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	return printLM(stdout, rep)
}

func passkeyLengths(flag string, context int) ([]int, error) {
	if flag != "" {
		return intList(flag)
	}
	var ls []int
	for l := 256; l < context; l *= 2 {
		ls = append(ls, l)
	}
	return append(ls, validate.PasskeyOptions{}.MaxLength(context)), nil
}

func modelInfo(m *llm.Model, file, text string, tokens int) lmModelInfo {
	c := m.Config
	return lmModelInfo{Name: c.Name, File: file, Arch: c.Arch, Params: c.Params(), Layers: c.Layers, Heads: c.Heads,
		KVHeads: c.KVHeads, HeadDim: c.HeadDim, Vocab: c.Vocab, Context: c.Context, WeightBytes: m.WeightBytes(),
		Text: text, TextTokens: tokens}
}

func printLM(w io.Writer, rep lmReport) error {
	mi := rep.Model
	fmt.Fprintf(w, "model %s (%s, %s): %d layers, %d/%d heads × %d, vocab %d, context %d, %.1fM params; text %s, %d tokens\n\n",
		mi.Name, mi.File, mi.Arch, mi.Layers, mi.Heads, mi.KVHeads, mi.HeadDim, mi.Vocab, mi.Context,
		float64(mi.Params)/1e6, mi.Text, mi.TextTokens)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "preset\tbits/value\tKV bytes/token\tPPL\tΔPPL\tKLD mean\tKLD p99\ttop-1 agree\tprefill tok/s\tdecode tok/s\t\n")
	for _, r := range rep.Presets {
		fmt.Fprintf(tw, "%s\t%.3f\t%.0f\t%.4f\t%+.2f%%\t%.2e\t%.2e\t%.4f\t%.0f\t%.0f\t\n", r.Preset, r.BitsPerValue,
			r.KVBytesPerToken, r.PPL, r.DeltaPPLPct, r.KLDMean, r.KLDP99, r.Top1Agree, r.PrefillTokS, r.DecodeTokS)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.Passkey) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\npasskey retrieval (greedy), passed/trials by prompt tokens × needle depth:")
	for _, r := range rep.Passkey {
		fmt.Fprintf(w, "%-10s %.3f  ", r.Preset, r.Accuracy)
		for _, c := range r.Cells {
			fmt.Fprintf(w, " %d@%.2f:%d/%d", c.Tokens, c.Depth, c.Passed, c.Trials)
		}
		fmt.Fprintln(w)
	}
	return nil
}

// plotLM plots ΔPPL and mean KLD against bits per value for the compressed
// presets, one colour per family (TurboQuant, KIVI-like, int-N).
func plotLM(file string, rep lmReport) error {
	dppl, kld := plot.New(), plot.New()
	dppl.Title.Text = "Model-level: ΔPPL vs the fp16 cache"
	dppl.Y.Label.Text = "ΔPPL (%)"
	kld.Title.Text = "Model-level: mean KLD vs the fp16 cache"
	kld.Y.Label.Text = "mean KL divergence (nats, log)"
	kld.Y.Scale = plot.LogScale{}
	kld.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	families := []string{"turboquant", "kivi", "int"}
	a, b := make([]plotter.XYLabels, len(families)), make([]plotter.XYLabels, len(families))
	for _, r := range rep.Presets {
		if r.BitsPerValue >= 16 {
			continue
		}
		f := 0
		if b, ok := validate.BaselineByName(r.Preset); ok {
			f = 2
			if b.Kind == validate.KIVI {
				f = 1
			}
		}
		a[f].XYs = append(a[f].XYs, plotter.XY{X: r.BitsPerValue, Y: r.DeltaPPLPct})
		a[f].Labels = append(a[f].Labels, r.Preset)
		if r.KLDMean > 0 {
			b[f].XYs = append(b[f].XYs, plotter.XY{X: r.BitsPerValue, Y: r.KLDMean})
			b[f].Labels = append(b[f].Labels, r.Preset)
		}
	}
	for _, p := range []struct {
		p *plot.Plot
		d []plotter.XYLabels
	}{{dppl, a}, {kld, b}} {
		p.p.X.Label.Text = "bits per stored value (norms, scales and zero points included)"
		p.p.Add(plotter.NewGrid())
		p.p.Legend.Top = true
		for f, d := range p.d {
			if len(d.XYs) == 0 {
				continue
			}
			s, err := plotter.NewScatter(d)
			if err != nil {
				return err
			}
			s.GlyphStyle.Color = plotutil.Color(f)
			s.GlyphStyle.Shape = plotutil.Shape(f)
			l, err := plotter.NewLabels(d)
			if err != nil {
				return err
			}
			p.p.Add(s, l)
			p.p.Legend.Add(families[f], s)
		}
	}
	return savePNG(file, [][]*plot.Plot{{dppl, kld}}, 26*vg.Centimeter, 10*vg.Centimeter)
}

// lmGenOutput is `lm gen --json`.
type lmGenOutput struct {
	Text   string  `json:"text"`
	Tokens []int32 `json:"tokens"`
}

func runLMGen(args []string, stdout io.Writer) error {
	fs := newFlags("lm gen")
	modelFlag := fs.String("model", "", "a GGUF model (default: the committed KJV model)")
	prompt := fs.String("prompt", "In the beginning", "the prompt")
	maxTokens := fs.Int("max-tokens", 64, "tokens to generate")
	preset := fs.String("preset", "tq3", "cache preset")
	temp := fs.Float64("temperature", 0, "sampling temperature (0: greedy)")
	topK := fs.Int("top-k", 0, "sample from the k most likely tokens (0: all)")
	topP := fs.Float64("top-p", 0, "sample from the smallest set of this probability (0: all)")
	seed := fs.Uint64("seed", 1, "sampling seed")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	m, _, err := openLM(*modelFlag)
	if err != nil {
		return err
	}
	defer m.Close()
	if m.Tokenizer == nil {
		return fmt.Errorf("the model has no tokenizer")
	}
	c := m.Config
	cfg, err := kvcache.Preset(*preset, c.Layers, c.KVHeads, c.Heads, c.HeadDim)
	if err != nil {
		return err
	}
	plan, err := cfg.PlanBytes(c.Context)
	if err != nil {
		return err
	}
	pool, err := kvcache.NewPool(cfg, 2*plan+1<<20)
	if err != nil {
		return err
	}
	seq := pool.NewSequence()
	defer seq.Close()
	sampler, err := llm.NewSampler(llm.SampleOptions{Temperature: float32(*temp), TopK: *topK, TopP: float32(*topP), Seed: *seed})
	if err != nil {
		return err
	}
	ids := m.Tokenizer.Encode(*prompt, true, false)
	out, err := m.Generate(seq, ids, *maxTokens, sampler, m.Tokenizer.IsEOG)
	if err != nil {
		return err
	}
	res := lmGenOutput{Text: m.Tokenizer.Decode(out), Tokens: out}
	if *asJSON {
		return writeJSON(stdout, res)
	}
	_, err = fmt.Fprintln(stdout, *prompt+res.Text)
	return err
}

package main

import (
	"fmt"
	"io"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
)

type planRow struct {
	Preset     string  `json:"preset"`
	Layers     int     `json:"model_layers"`
	KVHeads    int     `json:"kv_heads"`
	HeadDim    int     `json:"head_dim"`
	Tokens     int     `json:"tokens"`
	Window     int     `json:"window"`
	Sinks      int     `json:"sinks"`
	Bytes      int64   `json:"bytes"`
	FP16Bytes  int64   `json:"fp16_bytes"`
	RatioFP16  float64 `json:"ratio_vs_fp16"`
	PerToken   float64 `json:"bytes_per_token"`
	Sequences  int64   `json:"sequences_in_budget,omitempty"`
	BudgetByte int64   `json:"budget_bytes,omitempty"`
}

func runPlan(args []string, stdout io.Writer) error {
	fs := newFlags("plan")
	layers := fs.Int("model-layers", 32, "model layers")
	kvHeads := fs.Int("kv-heads", 8, "KV heads")
	headDim := fs.Int("head-dim", 128, "head dimension")
	tokens := fs.Int("tokens", 131072, "tokens per sequence")
	presets := fs.String("preset", "tq3", "comma-separated presets")
	window := fs.Int("window", -1, "fp16 window tokens (-1: the preset's)")
	sinks := fs.Int("sinks", -1, "fp16 sink tokens (-1: the preset's)")
	budget := fs.Int64("budget-gib", 0, "also say how many such sequences fit in this many GiB")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *tokens < 0 || *budget < 0 {
		return fmt.Errorf("%w: tokens %d and budget %d must not be negative", turboquant.ErrConfig, *tokens, *budget)
	}
	var rows []planRow
	for _, name := range splitList(*presets) {
		cfg, err := kvcache.Preset(name, *layers, *kvHeads, *kvHeads, *headDim)
		if err != nil {
			return err
		}
		if *window >= 0 {
			cfg.Window = *window
		}
		if *sinks >= 0 {
			cfg.Sinks = *sinks
		}
		b, err := cfg.PlanBytes(*tokens)
		if err != nil {
			return err
		}
		fp16 := int64(*layers) * int64(*kvHeads) * int64(*headDim) * 4 * int64(*tokens)
		r := planRow{Preset: name, Layers: *layers, KVHeads: *kvHeads, HeadDim: *headDim, Tokens: *tokens,
			Window: cfg.Window, Sinks: cfg.Sinks, Bytes: b, FP16Bytes: fp16}
		if b > 0 {
			r.RatioFP16 = float64(fp16) / float64(b)
		}
		if *tokens > 0 {
			r.PerToken = float64(b) / float64(*tokens)
		}
		if *budget > 0 && b > 0 {
			r.BudgetByte = *budget << 30
			r.Sequences = r.BudgetByte / b
		}
		rows = append(rows, r)
	}
	if *asJSON {
		return writeJSON(stdout, rows)
	}
	for _, r := range rows {
		fmt.Fprintf(stdout, "%s: %d layers × %d KV heads × d=%d, %d tokens (fp16 window %d, sinks %d): %d bytes (%.2f GiB); fp16 %d bytes (%.2f GiB), %.2f× smaller; %.1f bytes/token",
			r.Preset, r.Layers, r.KVHeads, r.HeadDim, r.Tokens, r.Window, r.Sinks, r.Bytes, float64(r.Bytes)/(1<<30),
			r.FP16Bytes, float64(r.FP16Bytes)/(1<<30), r.RatioFP16, r.PerToken)
		if r.Sequences > 0 || r.BudgetByte > 0 {
			fmt.Fprintf(stdout, "; %d such sequences fit in %d GiB", r.Sequences, r.BudgetByte>>30)
		}
		fmt.Fprintln(stdout)
	}
	return nil
}

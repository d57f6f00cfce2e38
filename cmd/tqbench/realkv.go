package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/validate"
)

func runRealKV(args []string, stdout io.Writer) error {
	fs := newFlags("realkv")
	presetsFlag := fs.String("presets", strings.Join(kvcache.PresetNames[1:], ","), "comma-separated cache presets")
	center := fs.Bool("center", false, "subtract per-head key/value means (kvcache.Config.Center)")
	window := fs.Int("window", 0, "fp16 window tokens (0: every token compressed)")
	data := fs.String("data", "", "a TQKV1 file from tools/capturekv (default: the embedded KJV fixture)")
	asJSON := fs.Bool("json", false, "print JSON")
	plotFile := fs.String("plot", "", "write attention cosine vs bits per value to this PNG")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	kv, err := loadRealKV(*data)
	if err != nil {
		return err
	}
	rows, err := realKVRows(kv, strings.Split(*presetsFlag, ","), []bool{*center}, *window)
	if err != nil {
		return err
	}
	if *plotFile != "" {
		if err := plotFidelity(*plotFile, "Real K/V (USE-lite over KJV): attention fidelity vs bits", rows); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(stdout, rows)
	}
	return printRealKV(stdout, rows)
}

func loadRealKV(path string) (*validate.RealKV, error) {
	if path == "" {
		return validate.LoadEmbeddedRealKV()
	}
	return validate.LoadRealKVFile(path)
}

func realKVRows(kv *validate.RealKV, presets []string, centers []bool, window int) ([]validate.Fidelity, error) {
	var rows []validate.Fidelity
	for _, layer := range kv.LayerIndices() {
		for _, c := range centers {
			for _, p := range presets {
				f, err := validate.MeasureRealKV(kv, layer, strings.TrimSpace(p), func(cfg *kvcache.Config) {
					cfg.Window, cfg.Sinks, cfg.Center = window, 0, c
				})
				if err != nil {
					return nil, err
				}
				rows = append(rows, f)
			}
		}
	}
	return rows, nil
}

func printRealKV(w io.Writer, rows []validate.Fidelity) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "layer\tpreset\tcenter\ttokens\tbits/value\tbytes/token/head\tvs fp16\tattn cos\tcos min\tKLD\ttop-1\ttop-5\tout err\tlogit cos\t\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%v\t%d\t%.3f\t%.1f\t%.2f×\t%.5f\t%.4f\t%.2e\t%.3f\t%.3f\t%.4f\t%.5f\t\n",
			r.Layer, r.Preset, r.Center, r.Tokens, r.BitsPerValue, r.BytesPerTokenHead, r.RatioFP16,
			r.AttnCosine, r.AttnCosineMin, r.KLD, r.Top1, r.Top5, r.OutRelErr, r.LogitCosine)
	}
	return tw.Flush()
}

package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
	"github.com/turboquant-go/tq/validate"
)

// workloadFlags registers the flags kv and speed share.
func workloadFlags(fs *flag.FlagSet, lengths string) (*workload, func() error) {
	w := &workload{}
	presets := fs.String("presets", strings.Join(kvcache.PresetNames, ","), "comma-separated presets (or naiveN: plain N-bit rounding, kv only)")
	lens := fs.String("lengths", lengths, "comma-separated context lengths (one sequence built at the longest, truncated for the others)")
	fs.IntVar(&w.Layers, "layers", 32, "model layers the per-token bytes and step times are scaled to (one layer is built)")
	fs.IntVar(&w.KVHeads, "kv-heads", 8, "KV heads")
	fs.IntVar(&w.QHeads, "q-heads", 32, "query heads (a multiple of kv-heads)")
	fs.IntVar(&w.Queries, "queries", 2, "decode query tokens compared with exact attention (each gives q-heads rows)")
	fs.BoolVar(&w.Center, "center", false, "kvcache.Config.Center for compressed presets")
	fs.IntVar(&w.Window, "window", 0, "fp16 window tokens for compressed presets (0: every token compressed)")
	fs.IntVar(&w.Sinks, "sinks", 0, "fp16 sink tokens for compressed presets")
	fs.Uint64Var(&w.Seed, "seed", 1, "random seed of the synthetic data")
	fs.IntVar(&w.Reps, "reps", 7, "timing rounds per length, each one decode step of every preset (median reported)")
	bw := fs.Int("bandwidth-mib", 256, "size of the copy that measures memory bandwidth, MiB")
	selectBackend := backendFlag(fs)
	return w, func() error {
		restore, err := selectBackend()
		if err != nil {
			return err
		}
		w.restoreBackend = restore
		w.Presets = splitList(*presets)
		if w.Lengths, err = intList(*lens); err != nil {
			return err
		}
		for _, L := range w.Lengths {
			if L < 1 || L > 1<<20 {
				return fmt.Errorf("%w: context length %d outside [1, 2^20]", turboquant.ErrConfig, L)
			}
		}
		if w.KVHeads < 1 || w.QHeads < w.KVHeads || w.QHeads%w.KVHeads != 0 || w.Queries < 1 || w.Layers < 1 {
			return fmt.Errorf("%w: kv-heads %d, q-heads %d, queries %d, layers %d", turboquant.ErrConfig, w.KVHeads, w.QHeads, w.Queries, w.Layers)
		}
		if *bw < 1 || *bw > 4096 {
			return fmt.Errorf("%w: bandwidth-mib %d outside [1, 4096]", turboquant.ErrConfig, *bw)
		}
		w.BandwidthBytes = *bw << 20
		return nil
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func runKV(args []string, stdout io.Writer) error {
	fs := newFlags("kv")
	w, finish := workloadFlags(fs, "8192,32768")
	asJSON := fs.Bool("json", false, "print JSON")
	plotFile := fs.String("plot", "", "write attention fidelity vs bits per value to this PNG")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := finish(); err != nil {
		return err
	}
	defer w.restoreBackend()
	w.Fidelity = true
	w.progress = newProgress(os.Stderr, w.steps(), "kv", *quiet)
	rows, err := w.run()
	w.progress.finish()
	if err != nil {
		return err
	}
	if *plotFile != "" {
		fid := make([]validate.Fidelity, len(rows))
		for i, r := range rows {
			fid[i] = r.Fidelity
		}
		if err := plotFidelity(*plotFile, "Synthetic K/V fitted to real statistics: attention fidelity vs bits", fid); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(stdout, rows)
	}
	fmt.Fprintf(stdout, "Synthetic decode workload: %d KV heads × d=128, %d query heads, %d decode queries per length,\n"+
		"keys/values/queries fitted to the real fixture; compared with exact float64 attention.\n", w.KVHeads, w.QHeads, w.Queries)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "tokens\tpreset\tbits/value\tbytes/token\tvs fp16\tattn cos\tcos min\tKLD\ttop-1\ttop-5\ttop-5 set\tout err\tlogit bias\tlogit std\tlogit cos\t\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%.3f\t%.0f\t%.2f×\t%.5f\t%.4f\t%.2e\t%.3f\t%.3f\t%.3f\t%.4f\t%+.3f\t%.3f\t%.5f\t\n",
			r.Tokens, r.Preset, r.BitsPerValue, r.BytesPerToken, r.RatioFP16, r.AttnCosine, r.AttnCosineMin, r.KLD,
			r.Top1, r.Top5, r.Top5Set, r.OutRelErr, r.LogitBias, r.LogitStd, r.LogitCosine)
	}
	fmt.Fprintf(tw, "\nbytes/token: whole model (%d layers × %d KV heads, keys and values).\n", w.Layers, w.KVHeads)
	return tw.Flush()
}

func runSpeed(args []string, stdout io.Writer) error {
	fs := newFlags("speed")
	w, finish := workloadFlags(fs, "1024,4096,16384,32768")
	asJSON := fs.Bool("json", false, "print JSON")
	plotFile := fs.String("plot", "", "write step time vs context length to this PNG")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := finish(); err != nil {
		return err
	}
	defer w.restoreBackend()
	for _, p := range w.Presets {
		if strings.HasPrefix(p, "naive") {
			return fmt.Errorf("%w: speed times library presets only, not %s", turboquant.ErrConfig, p)
		}
	}
	w.Speed = true
	w.progress = newProgress(os.Stderr, w.steps(), "speed", *quiet)
	rows, err := w.run()
	w.progress.finish()
	if err != nil {
		return err
	}
	if *plotFile != "" {
		if err := plotSpeed(*plotFile, rows, w.Layers); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(stdout, rows)
	}
	return printSpeed(stdout, rows, w)
}

func printSpeed(stdout io.Writer, rows []benchRow, w *workload) error {
	var bw []string
	for i, r := range rows {
		if i == 0 || r.Tokens != rows[i-1].Tokens {
			bw = append(bw, fmt.Sprintf("%.1f GB/s at %d tokens", r.BandwidthGBs, r.Tokens))
		}
	}
	fmt.Fprintf(stdout, "Decode step: Attend with 1 query token (%d query heads) over %d KV heads × d=128, one layer built and timed\n"+
		"(median of %d rounds, each timing one step of every preset); model ms = one layer × %d (extrapolated).\n"+
		"Memory bandwidth (copy of %d MiB, read+write, median between the rounds): %s.\n",
		w.QHeads, w.KVHeads, w.Reps, w.Layers, w.BandwidthBytes>>20, strings.Join(bw, ", "))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "tokens\tpreset\tbytes read\tµs/step (1 layer)\tms/token (%d layers)\t×fp16\t×fp32\tfloor fraction\t\n", w.Layers)
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%.1f MiB\t%.0f\t%.2f\t%s\t%s\t%.2f\t\n", r.Tokens, r.Preset, float64(r.StepBytes)/(1<<20),
			r.NsPerStep/1e3, r.ModelMsPerStep, speedup(r.SpeedupVsFP16), speedup(r.SpeedupVsFP32), r.FloorFraction)
	}
	return tw.Flush()
}

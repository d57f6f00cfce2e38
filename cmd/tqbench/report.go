package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/validate"
)

// reportOptions sizes the default job; --quick shrinks it for CI.
type reportOptions struct {
	quick   bool
	quiet   bool
	asJSON  bool
	plotDir string
	backend func() (restore func(), err error)
}

func parseReport(args []string) (reportOptions, error) {
	fs := newFlags("")
	var o reportOptions
	fs.BoolVar(&o.quick, "quick", false, "a reduced run (short contexts, small copy) for smoke tests")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	fs.BoolVar(&o.asJSON, "json", false, "print JSON rows instead of the table")
	fs.StringVar(&o.plotDir, "plot-dir", "", "also write fidelity.png, niah.png and speed.png into this directory")
	o.backend = backendFlag(fs)
	return o, parseFlags(fs, args)
}

// reportPresets are the main job's presets: the library's, then the
// integer forms (IntScoresSuffix) of tq4 and tq3, the fast path on CPUs
// with AVX-512 VBMI and VNNI (elsewhere they run the float kernels).
var reportPresets = append(slices.Clone(kvcache.PresetNames), "tq4"+kvcache.IntScoresSuffix, "tq3"+kvcache.IntScoresSuffix)

// runReport is the default job: every preset on a realistic decode workload
// (synthetic K/V fitted to the real fixture, 8 KV heads × d=128 with 32
// query heads, at 8K and 32K tokens; one layer built, scaled to 32), on the
// real K/V fixture, and in the needle-in-a-haystack grid, with decode speed
// against fp16 and fp32 measured in the same run.
func runReport(args []string, stdout, stderr io.Writer) error {
	o, err := parseReport(args)
	if err != nil {
		return err
	}
	restore, err := o.backend()
	if err != nil {
		return err
	}
	defer restore()
	start := time.Now()
	w := &workload{
		Presets: reportPresets, Lengths: []int{8192, 32768}, Layers: 32, KVHeads: 8, QHeads: 32,
		Queries: 2, Seed: 1, Reps: 5, Speed: true, Fidelity: true, BandwidthBytes: 256 << 20,
	}
	niah := niahOptions{presets: reportPresets,
		cfg: validate.NIAHConfig{Lengths: []int{1024, 4096, 16384}, Depths: validate.NIAHDepths(6), Seed: 1}}
	if o.quick {
		w.Lengths, w.Reps, w.BandwidthBytes = []int{1024, 4096}, 3, 64<<20
		niah.cfg.Lengths, niah.cfg.Depths = []int{512, 2048}, validate.NIAHDepths(4)
	}
	kv, err := validate.LoadEmbeddedRealKV()
	if err != nil {
		return err
	}
	p := newProgress(stderr, w.steps()+niahSteps(niah)+len(w.Presets), "tqbench", o.quiet || o.asJSON && stderr != os.Stderr)
	w.progress = p
	rows, err := w.run()
	if err != nil {
		p.finish()
		return err
	}
	nrows, err := runNIAHGrid(niah, p)
	if err != nil {
		p.finish()
		return err
	}
	var real []validate.Fidelity
	for _, name := range w.Presets {
		p.describe("real K/V " + name)
		f, err := validate.MeasureRealKV(kv, 1, name, func(c *kvcache.Config) { c.Window, c.Sinks = 0, 0 })
		if err != nil {
			p.finish()
			return err
		}
		real = append(real, f)
		p.add(1)
	}
	p.describe("language model")
	lm, err := runLMTable(o.quick)
	p.finish()
	if err != nil {
		return err
	}
	for i := range rows {
		for j := range nrows {
			if nrows[j].Preset == rows[i].Preset {
				rows[i].NIAHPassRate, rows[i].NIAHRetrievalRate = &nrows[j].PassRate, &nrows[j].RetrievalRate
			}
		}
	}
	if o.plotDir != "" {
		if err := reportPlots(o.plotDir, rows, real, nrows, w); err != nil {
			return err
		}
	}
	if o.asJSON {
		all := rows
		for _, f := range real {
			bits, perHead := storage(f.Preset, 128)
			all = append(all, benchRow{Fidelity: f, ModelLayers: w.Layers, ModelKVHeads: w.KVHeads,
				BytesPerToken: perHead * float64(w.Layers*w.KVHeads)})
			_ = bits
		}
		return writeJSON(stdout, all)
	}
	if err := printReport(stdout, rows, real, nrows, w, niah, time.Since(start)); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\nModel level: the committed KJV Llama (tools/trainlm) on its held-out text through each cache preset;"+
		"\nΔPPL, KLD and top-1 agreement against the fp16 cache on the same tokens (tqbench lm for more; --json there).")
	return printLM(stdout, lm)
}

func reportPlots(dir string, rows []benchRow, real []validate.Fidelity, nrows []niahRow, w *workload) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	fid := append([]validate.Fidelity(nil), real...)
	for _, r := range rows {
		fid = append(fid, r.Fidelity)
	}
	if err := plotFidelity(filepath.Join(dir, "fidelity.png"), "Attention fidelity vs bits (synthetic fitted K/V and real K/V)", fid); err != nil {
		return err
	}
	names := make([]string, len(nrows))
	res := make([]validate.NIAHResult, len(nrows))
	for i := range nrows {
		names[i], res[i] = nrows[i].Preset, nrows[i].NIAHResult
	}
	if err := plotNIAH(filepath.Join(dir, "niah.png"), names, res); err != nil {
		return err
	}
	return plotSpeed(filepath.Join(dir, "speed.png"), rows, w.Layers)
}

func printReport(out io.Writer, rows []benchRow, real []validate.Fidelity, nrows []niahRow, w *workload, niah niahOptions, took time.Duration) error {
	longest := rows[0].Tokens
	fmt.Fprintf(out, "tqbench: KV-cache compression against exact attention, %s/%s, %d CPUs, %s\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(out, "Decode workload: %d layers × %d KV heads × d=128, %d query heads, %d tokens. Keys, values and queries are synthetic,\n"+
		"fitted to the real fixture (channel means and outliers, principal directions, norm spread); every token compressed\n"+
		"(no fp16 window). One layer is built and timed; bytes and ms are for all %d layers (time extrapolated ×%d).\n"+
		"Fidelity: %d decode queries × %d heads against float64 attention. Real: USE-lite layer 1 over KJV text (4 heads × d=128).\n"+
		"NIAH: needle pass rate over %d depths × contexts %v (see `tqbench niah`). Copy bandwidth %.1f GB/s.\n\n",
		w.Layers, w.KVHeads, w.QHeads, longest, w.Layers, w.Layers, w.Queries, w.QHeads, len(niah.cfg.Depths), niah.cfg.Lengths,
		rows[0].BandwidthGBs)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "preset\tbits/val\tKV bytes/token\tvs fp16\tattn cos\tcos min\tKLD\ttop-1\ttop-5\treal cos\treal top-1\tNIAH\tms/token\t×fp16\t×fp32\tfloor\t\n")
	for i, r := range rows {
		if r.Tokens != longest {
			continue
		}
		rf := real[i%len(real)]
		var niahRate float64
		if r.NIAHPassRate != nil {
			niahRate = *r.NIAHPassRate
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%.0f\t%.2f×\t%.5f\t%.4f\t%.1e\t%.3f\t%.3f\t%.5f\t%.3f\t%.3f\t%.2f\t%s\t%s\t%.2f\t\n",
			r.Preset, r.BitsPerValue, r.BytesPerToken, r.RatioFP16, r.AttnCosine, r.AttnCosineMin, r.KLD, r.Top1, r.Top5,
			rf.AttnCosine, rf.Top1, niahRate, r.ModelMsPerStep, speedup(r.SpeedupVsFP16), speedup(r.SpeedupVsFP32), r.FloorFraction)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nAt the other lengths:\n")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "tokens\tpreset\tattn cos\tKLD\ttop-1\ttop-5\tms/token\t×fp16\t×fp32\tfloor\t\n")
	for _, r := range rows {
		if r.Tokens == longest {
			continue
		}
		fmt.Fprintf(tw, "%d\t%s\t%.5f\t%.1e\t%.3f\t%.3f\t%.2f\t%s\t%s\t%.2f\t\n",
			r.Tokens, r.Preset, r.AttnCosine, r.KLD, r.Top1, r.Top5, r.ModelMsPerStep, speedup(r.SpeedupVsFP16), speedup(r.SpeedupVsFP32), r.FloorFraction)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\ntop-5: the exact top key is in the cache's top 5. floor: (bytes read / copy bandwidth) / step time.\n"+
		"Subcommands give more: kv, niah, speed, realkv, plan, codebook, distortion (tqbench help). (%.1fs)\n", took.Seconds())
	return nil
}

// speedup formats a speed-up over a baseline, or "-" where the run did not
// measure the baseline.
func speedup(x float64) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", x)
}

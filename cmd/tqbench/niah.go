package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
	"github.com/turboquant-go/tq/validate"
)

type niahRow struct {
	Preset string `json:"preset"`
	validate.NIAHResult
}

type niahOptions struct {
	presets       []string
	cfg           validate.NIAHConfig
	center        bool
	window, sinks int
}

func (o niahOptions) adjust(cfg *kvcache.Config) {
	if cfg.Keys.Kind == kvcache.Quantized || cfg.Values.Kind == kvcache.Quantized {
		cfg.Window, cfg.Sinks, cfg.Center = o.window, o.sinks, o.center
	}
}

// idealValuesPrefix names the NIAH reference of exact keys and values
// through an ideal code (validate.IdealValueBuilder) at the rate after it.
const idealValuesPrefix = "ideal-v"

// runNIAHGrid runs every preset over the grid, ticking p once per cell
// group and preset.
func runNIAHGrid(o niahOptions, p *progress) ([]niahRow, error) {
	s, err := validate.DefaultSynthKV()
	if err != nil {
		return nil, err
	}
	var builders []validate.Builder
	for _, name := range o.presets {
		if codec, ok := validate.BaselineByName(name); ok {
			builders = append(builders, validate.BaselineBuilder(codec, o.window, o.sinks))
			continue
		}
		if rate, ok := strings.CutPrefix(name, idealValuesPrefix); ok {
			bits, err := strconv.ParseFloat(rate, 64)
			if err != nil || !(bits > 0 && bits <= 16) {
				return nil, fmt.Errorf("%w: %q (ideal values take a rate in bits, e.g. %s3)", turboquant.ErrConfig, name, idealValuesPrefix)
			}
			builders = append(builders, validate.IdealValueBuilder(bits, o.cfg.Seed))
			continue
		}
		b, err := builderFor(name, o.adjust)
		if err != nil {
			return nil, err
		}
		builders = append(builders, b)
	}
	p.describe("needle in a haystack")
	res, err := validate.RunNIAH(s, o.cfg, builders, func() { p.add(1) })
	if err != nil {
		return nil, err
	}
	rows := make([]niahRow, len(res))
	for i := range res {
		rows[i] = niahRow{Preset: o.presets[i], NIAHResult: res[i]}
	}
	return rows, nil
}

func niahSteps(o niahOptions) int {
	s, err := validate.DefaultSynthKV()
	if err != nil {
		return 0
	}
	return validate.NIAHGroups(s, o.cfg) * len(o.presets)
}

func runNIAH(args []string, stdout io.Writer) error {
	fs := newFlags("niah")
	presets := fs.String("presets", "fp32,fp16,k8v4,tq4,tq3.5,tq3,k4v2,tq2.5,tq2,naive4,naive3,naive2",
		"comma-separated presets (naiveN: plain per-vector N-bit rounding; baseline codecs by name: kivi3-g32, int4-sym-g32, …; "+
			idealValuesPrefix+"R: exact keys, values through an ideal R-bit code at the Gaussian rate–distortion bound)")
	lengths := fs.String("lengths", "1024,4096,16384", "comma-separated context lengths (up to 131072 and beyond)")
	depths := fs.Int("depths", 11, "needle depths, evenly spaced over 0–100%")
	weight := fs.Float64("needle-weight", 0.8, "the needle's exact attention weight")
	margin := fs.Float64("top-margin", 1, "least exact logit margin over the strongest distractor, nats")
	pass := fs.Float64("pass-fraction", 0.5, "attention share whose output cosine the cache must reach")
	center := fs.Bool("center", false, "kvcache.Config.Center for compressed presets")
	window := fs.Int("window", 0, "fp16 window tokens for compressed presets (0: every token compressed)")
	sinks := fs.Int("sinks", 0, "fp16 sink tokens for compressed presets")
	seed := fs.Uint64("seed", 1, "random seed")
	asJSON := fs.Bool("json", false, "print JSON (every cell)")
	plotFile := fs.String("plot", "", "write depth × length heat maps to this PNG")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	lens, err := intList(*lengths)
	if err != nil {
		return err
	}
	if *depths < 2 || *depths > 101 {
		return fmt.Errorf("%w: depths %d outside [2, 101]", turboquant.ErrConfig, *depths)
	}
	o := niahOptions{presets: splitList(*presets), center: *center, window: *window, sinks: *sinks,
		cfg: validate.NIAHConfig{Lengths: lens, Depths: validate.NIAHDepths(*depths), NeedleWeight: *weight,
			TopMargin: *margin, PassFraction: *pass, Seed: *seed}}
	p := newProgress(os.Stderr, niahSteps(o), "niah", *quiet)
	rows, err := runNIAHGrid(o, p)
	p.finish()
	if err != nil {
		return err
	}
	if *plotFile != "" {
		res := make([]validate.NIAHResult, len(rows))
		for i := range rows {
			res[i] = rows[i].NIAHResult
		}
		if err := plotNIAH(*plotFile, o.presets, res); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(stdout, rows)
	}
	return printNIAH(stdout, rows, o)
}

func printNIAH(w io.Writer, rows []niahRow, o niahOptions) error {
	fmt.Fprintf(w, "Needle in a haystack (attention level, synthetic K/V fitted to real statistics, %d depths 0–100%%):\n"+
		"pass = needle is the top key and the output's cosine to the needle value is at least that of an output giving\n"+
		"the needle %.0f%% of the attention (exact attention gives it %.0f%%). Per length: pass rate (needle on top).\n",
		len(o.cfg.Depths), 100*o.cfg.PassFraction, 100*o.cfg.NeedleWeight)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "preset\t")
	for _, L := range o.cfg.Lengths {
		fmt.Fprintf(tw, "%s\t", kTokens(L))
	}
	fmt.Fprintf(tw, "all\t\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t", r.Preset)
		for _, L := range o.cfg.Lengths {
			var pass, top, n int
			for _, c := range r.Cells {
				if c.Tokens == L {
					n++
					if c.Pass {
						pass++
					}
					if c.Retrieved {
						top++
					}
				}
			}
			fmt.Fprintf(tw, "%.2f (%.2f)\t", float64(pass)/float64(n), float64(top)/float64(n))
		}
		fmt.Fprintf(tw, "%.3f (%.3f)\t\n", r.PassRate, r.RetrievalRate)
	}
	return tw.Flush()
}

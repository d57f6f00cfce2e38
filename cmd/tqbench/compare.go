package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/turboquant-go/tq/validate"
)

// compareReport is the --json form of tqbench compare.
type compareReport struct {
	Rows    []validate.CompareRow  `json:"rows"`
	Targets []validate.TargetCheck `json:"targets"`
	// KIVI5 is the 4-bit-class preset (tq4) against the 5-bit KIVI-like
	// codec.
	KIVI5 []validate.TargetCheck `json:"tq4_vs_kivi4"`
	// Guard is what each simulated guardrail upgraded (--study guard).
	Guard []validate.GuardStats `json:"guard,omitempty"`
}

func runCompare(args []string, stdout io.Writer) error {
	fs := newFlags("compare")
	data := fs.String("data", "", "a TQKV1 file from tools/capturekv (default: the embedded KJV fixture)")
	synthetic := fs.Bool("synthetic", false, "use synthetic uncentred K/V with outlier channels instead of real data")
	study := fs.String("study", "", "instead of the baselines: 'outliers' (mixed-precision channels by norm, by centred norm, or left to the rotation, at equal bits) or 'guard' (the cache's tq3-guard preset against tq3 and tq4, streamed token by token through the real cache)")
	guardBudgets := fs.String("budgets", "0.1,0.2,0.3,0.5,0.8", "guard study: budgets, RMS logit error in nats")
	guardBlock := fs.Int("guard-block", validate.DefaultGuardStream.Block, "guard study: tokens per block")
	guardWindow := fs.Int("guard-window", validate.DefaultGuardStream.Window, "guard study: fp16 window tokens")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	budgets, err := floatList(*guardBudgets)
	if err != nil {
		return err
	}
	var guards []*validate.GuardStats
	contenders := func() []validate.Contender { return validate.ComparisonContenders() }
	switch *study {
	case "":
	case "outliers":
		contenders = validate.OutlierStudyContenders
	case "guard":
		contenders = func() []validate.Contender {
			cs, st := validate.GuardStudyContenders(budgets, validate.GuardStream{Block: *guardBlock, Window: *guardWindow})
			guards = st
			return cs
		}
	default:
		return fmt.Errorf("unknown study %q (have: outliers, guard)", *study)
	}
	var kv *validate.RealKV
	if *synthetic {
		kv = validate.SyntheticKV(validate.DefaultSynthetic)
	} else if kv, err = loadRealKV(*data); err != nil {
		return err
	}
	var rep compareReport
	for _, layer := range kv.LayerIndices() {
		guards = guards[:0]
		rows, err := validate.Compare(kv, layer, contenders())
		if err != nil {
			return err
		}
		for _, g := range guards {
			g.Layer = layer
			rep.Guard = append(rep.Guard, *g)
		}
		slices.SortStableFunc(rows, func(a, b validate.CompareRow) int {
			switch {
			case a.Bits < b.Bits:
				return -1
			case a.Bits > b.Bits:
				return 1
			}
			return 0
		})
		rep.Rows = append(rep.Rows, rows...)
	}
	rep.Targets = validate.CheckEqualBits(rep.Rows, "")
	for _, t := range validate.CheckEqualBits(rep.Rows, "tq4") {
		if strings.HasPrefix(t.Baseline, "kivi4-") {
			rep.KIVI5 = append(rep.KIVI5, t)
		}
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	return printCompare(stdout, rep)
}

func printCompare(w io.Writer, rep compareReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "layer\td\tcodec\tfamily\tcenter\tbits/elt\tbits(data)\tprob cos mean\tprob cos worst\ttop-1\ttop-5\tKLD\tout err (last)\tout err (all)\tlogit cos mean\tlogit cos worst\t")
	for _, r := range rep.Rows {
		center := ""
		if r.Center {
			center = "yes"
		}
		if r.Family == "turboquant" && r.Default {
			center += "*"
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%.3f\t%.3f\t%.5f\t%.4f\t%.3f\t%.3f\t%.2e\t%.4f\t%.4f\t%.5f\t%.4f\t\n",
			r.Layer, r.Dim, r.Name, r.Family, center, r.Bits, r.BitsFixture, r.CosMean, r.CosWorst, r.Top1, r.Top5,
			r.KLD, r.OutErr, r.OutErrAll, r.LogitCosMean, r.LogitCosWorst)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\n* the preset as shipped. bits/elt: steady state, every norm/scale/zero counted; bits(data): exact on this data,")
	fmt.Fprintln(w, "  with Center's per-sequence fp32 means and partial groups spread over its short chunks.")
	fmt.Fprintln(w, "  prob cos: cosine of attention-probability rows; logit cos: cosine of raw logit rows (far more forgiving).")
	fmt.Fprintln(w, "  out err (last): each chunk's last query (one sample per chunk); (all): every query, used by the targets.")
	fmt.Fprintln(w, "\nEqual-bits targets (a shipped preset at ≤ the baseline's bits beats it on prob cos, top-1 and out err (all)):")
	printTargets(w, rep.Targets)
	fmt.Fprintln(w, "\ntq4 against the 5-bit KIVI-like codec:")
	if err := printTargets(w, rep.KIVI5); err != nil {
		return err
	}
	if len(rep.Guard) > 0 {
		fmt.Fprintln(w, "\nGuard study (real cache, token by token): code bits = bits per element of the compressed tokens;")
		fmt.Fprintln(w, "upgraded = (chunk, head, block)s stored at 4 bits:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "layer\tcontender\tcode bits\tupgraded\tper head\textra bytes\t")
		for _, g := range rep.Guard {
			fmt.Fprintf(tw, "%d\t%s\t%.3f\t%d of %d\t%v\t%d\t\n", g.Layer, g.Name, g.CodeBits, g.Upgraded, g.Blocks, g.HeadUpgrades, g.ExtraBytes)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// floatList parses a comma-separated list of numbers.
func floatList(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("bad number list %q: %w", s, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func printTargets(w io.Writer, ts []validate.TargetCheck) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "layer\tbaseline\tbits\tpreset\tbits\tmet\tΔcos\tΔtop-1\tout err ratio\t")
	for _, t := range ts {
		preset := t.Preset
		if preset == "" {
			preset = "(none fits)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%.3f\t%s\t%.3f\t%v\t%+.5f\t%+.3f\t%.3f\t\n",
			t.Layer, t.Baseline, t.BaselineBits, preset, t.PresetBits, t.Met, t.DCos, t.DTop1, t.OutErrRatio)
	}
	return tw.Flush()
}

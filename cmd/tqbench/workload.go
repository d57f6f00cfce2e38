package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
	"github.com/turboquant-go/tq/validate"
)

// workload is a synthetic decode workload: one layer of KVHeads heads
// (QHeads query heads) holding the longest of Lengths tokens of SynthKV
// keys and values (fitted to the real fixture), measured at every length by
// truncating the same sequence. Per preset it measures fidelity against
// exact float64 attention (Queries decode query tokens) and the time of one
// decode step (Attend with one query token).
type workload struct {
	Presets          []string
	Lengths          []int
	Layers           int // the model the per-token bytes and times are scaled to
	KVHeads, QHeads  int
	Queries          int
	Center           bool
	Window, Sinks    int
	Seed             uint64
	Reps             int
	Speed, Fidelity  bool
	BandwidthBytes   int
	progress         *progress
	measuredBandwith float64
	restoreBackend   func() // undoes --backend
}

// benchRow is one (preset, workload, length) result; JSON keys are
// documented in the README and kept stable.
type benchRow struct {
	validate.Fidelity
	// Model is the shape the per-token bytes refer to.
	ModelLayers  int `json:"model_layers"`
	ModelKVHeads int `json:"model_kv_heads"`
	// BytesPerToken is the stored bytes of one token over the whole model
	// (every layer and KV head, keys and values, every token compressed).
	BytesPerToken float64 `json:"bytes_per_token"`
	// NsPerStep is the median time of one decode step (Attend, one query
	// token) on the one built layer; ModelMsPerStep scales it to
	// ModelLayers layers (extrapolated, not measured).
	NsPerStep      float64 `json:"ns_per_step,omitempty"`
	ModelMsPerStep float64 `json:"model_ms_per_step,omitempty"`
	SpeedupVsFP16  float64 `json:"speedup_vs_fp16,omitempty"`
	SpeedupVsFP32  float64 `json:"speedup_vs_fp32,omitempty"`
	// FloorFraction is (bytes read / measured copy bandwidth) / NsPerStep:
	// 1 would be a step as fast as streaming its bytes once.
	FloorFraction float64 `json:"floor_fraction,omitempty"`
	// StepBytes is the stored bytes the step reads (the layer's live
	// bytes).
	StepBytes int64 `json:"step_bytes,omitempty"`
	// BandwidthGBs is the copy bandwidth measured in the same run.
	BandwidthGBs float64 `json:"bandwidth_gb_s,omitempty"`
	// NIAHPassRate and NIAHRetrievalRate, when present, are the
	// needle-in-a-haystack rates of the preset (see `tqbench niah`).
	NIAHPassRate      *float64 `json:"niah_pass_rate,omitempty"`
	NIAHRetrievalRate *float64 `json:"niah_retrieval_rate,omitempty"`
}

func (w *workload) adjust(cfg *kvcache.Config) {
	if cfg.Keys.Kind == kvcache.Quantized || cfg.Values.Kind == kvcache.Quantized {
		cfg.Window, cfg.Sinks = w.Window, w.Sinks
		cfg.Center = w.Center
	}
}

// builderFor resolves a preset name, or naiveN for NaiveUniform(N)
// rounding (measured with exact attention over its reconstructions).
func builderFor(name string, adjust func(*kvcache.Config)) (validate.Builder, error) {
	if b, ok := strings.CutPrefix(name, "naive"); ok {
		bits, err := strconv.Atoi(b)
		if err != nil || bits < 1 || bits > 16 {
			return nil, fmt.Errorf("%w: %q (naive rounding takes 1–16 bits, e.g. naive3)", turboquant.ErrConfig, name)
		}
		return validate.RoundTripBuilder(validate.NaiveUniform(bits)), nil
	}
	if _, err := kvcache.Preset(name, 1, 1, 1, 128); err != nil {
		return nil, err
	}
	return validate.PresetBuilder(name, adjust), nil
}

// storage returns bits per value and bytes per token per KV head of a
// preset at d (naiveN: N bits plus an fp32 min and max per vector).
func storage(name string, d int) (bits, bytesPerTokenHead float64) {
	if b, ok := strings.CutPrefix(name, "naive"); ok {
		n, _ := strconv.Atoi(b)
		bits = float64(n) + 64/float64(d)
		return bits, 2 * bits * float64(d) / 8
	}
	if codec, ok := validate.BaselineByName(name); ok {
		bits = codec.NominalBits()
		return bits, 2 * bits * float64(d) / 8
	}
	cfg, err := kvcache.Preset(name, 1, 1, 1, d)
	if err != nil {
		return 0, 0
	}
	bk, bv := cfg.Keys.BitsPerValue(d), cfg.Values.BitsPerValue(d)
	return (bk + bv) / 2, (bk + bv) * float64(d) / 8
}

func (w *workload) steps() int {
	return len(w.Presets) * (1 + len(w.Lengths))
}

// run measures every preset; rows are ordered by length (longest first),
// then preset.
func (w *workload) run() ([]benchRow, error) {
	s, err := validate.DefaultSynthKV()
	if err != nil {
		return nil, err
	}
	lengths := slices.Clone(w.Lengths)
	slices.Sort(lengths)
	slices.Reverse(lengths)
	T, H, QH, d := lengths[0], w.KVHeads, w.QHeads, s.Dim
	w.progress.describe(fmt.Sprintf("generating %d tokens × %d heads", T, H))
	keys, values := s.Generate(T, H, w.Seed)
	refs := map[int]*validate.AttentionReference{}
	if w.Fidelity {
		queries := s.Queries(w.Queries, H, QH/H, w.Seed+1)
		for _, L := range lengths {
			w.progress.describe(fmt.Sprintf("exact attention at %d tokens", L))
			if refs[L], err = validate.NewAttentionReference(keys, values, H, QH, d, L, queries); err != nil {
				return nil, err
			}
		}
	}
	if w.Speed {
		w.measuredBandwith = copyBandwidth(w.BandwidthBytes)
	}
	in := &workloadInput{keys: keys, values: values, lengths: lengths, refs: refs, d: d,
		stepQuery: s.Queries(1, H, QH/H, w.Seed+2)}
	byKey := map[[2]int]*benchRow{} // (length, preset index)
	for pi, name := range w.Presets {
		if err := w.measurePreset(pi, name, in, byKey); err != nil {
			return nil, err
		}
	}
	var rows []benchRow
	for _, L := range lengths {
		var fp16, fp32 float64
		for pi, name := range w.Presets {
			switch name {
			case "fp16":
				fp16 = byKey[[2]int{L, pi}].NsPerStep
			case "fp32":
				fp32 = byKey[[2]int{L, pi}].NsPerStep
			}
		}
		for pi := range w.Presets {
			r := byKey[[2]int{L, pi}]
			if r.NsPerStep > 0 && fp16 > 0 {
				r.SpeedupVsFP16 = fp16 / r.NsPerStep
			}
			if r.NsPerStep > 0 && fp32 > 0 {
				r.SpeedupVsFP32 = fp32 / r.NsPerStep
			}
			rows = append(rows, *r)
		}
	}
	return rows, nil
}

// timeStep returns the median time of one decode step over reps runs
// (after one warm-up).
func timeStep(seq *kvcache.Sequence, query []float32, reps int) (float64, error) {
	out := make([]float32, len(query))
	if err := seq.Attend(0, query, out); err != nil {
		return 0, err
	}
	times := make([]float64, max(reps, 1))
	for i := range times {
		start := time.Now()
		if err := seq.Attend(0, query, out); err != nil {
			return 0, err
		}
		times[i] = float64(time.Since(start).Nanoseconds())
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}

// copyBandwidth measures memory bandwidth with a copy of n bytes (best of
// three after a warm-up), counting bytes read plus bytes written.
func copyBandwidth(n int) float64 {
	src, dst := make([]byte, n), make([]byte, n)
	for i := range src {
		src[i] = byte(i)
	}
	copy(dst, src)
	best := time.Duration(1 << 62)
	for range 3 {
		start := time.Now()
		copy(dst, src)
		best = min(best, time.Since(start))
	}
	return 2 * float64(n) / best.Seconds()
}

// workloadInput is what every preset of a run is measured on.
type workloadInput struct {
	keys, values []float32 // lengths[0] tokens
	lengths      []int     // longest first
	refs         map[int]*validate.AttentionReference
	stepQuery    []float32
	d            int
}

// measurePreset builds one preset's cache, appends the workload's tokens
// and measures it at every length, longest first (truncating between), into
// byKey[(length, pi)]. The cache is closed however it ends; its Close error
// is returned when nothing else failed.
func (w *workload) measurePreset(pi int, name string, in *workloadInput, byKey map[[2]int]*benchRow) (err error) {
	H, QH, d, T := w.KVHeads, w.QHeads, in.d, in.lengths[0]
	keys, values := in.keys, in.values
	b, err := builderFor(name, w.adjust)
	if err != nil {
		return err
	}
	w.progress.describe("building " + name)
	a, err := b(H, QH, d)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := a.Close(); err == nil {
			err = cerr
		}
	}()
	// A prefill of T−1 tokens, one attention, then the last token as a
	// decode step, as in an engine: a deferred prefill (the guard presets)
	// is compressed then, against the query attended, so the steps below
	// time the compressed cache, not its fp16 prefill.
	const chunk = 4096
	appendRange := func(t, e int) error { return a.Append(0, keys[t*H*d:e*H*d], values[t*H*d:e*H*d]) }
	for t := 0; t < T-1; t += chunk {
		if err := appendRange(t, min(T-1, t+chunk)); err != nil {
			return err
		}
	}
	if at, ok := a.(interface {
		Attend(layer int, queries, out []float32) error
	}); ok && T > 1 {
		if err := at.Attend(0, in.stepQuery, make([]float32, len(in.stepQuery))); err != nil {
			return err
		}
	}
	if err := appendRange(T-1, T); err != nil {
		return err
	}
	w.progress.add(1)
	for _, L := range in.lengths {
		if L < T {
			tr, ok := a.(interface{ Truncate(int) error })
			if !ok {
				return fmt.Errorf("%s cannot be truncated to %d tokens; give one length", name, L)
			}
			if err := tr.Truncate(L); err != nil {
				return err
			}
		}
		w.progress.describe(fmt.Sprintf("%s at %d tokens", name, L))
		row := &benchRow{ModelLayers: w.Layers, ModelKVHeads: H}
		if w.Fidelity {
			f, err := in.refs[L].Measure(a, 0)
			if err != nil {
				return err
			}
			row.Fidelity = f
		}
		row.Preset, row.Workload, row.Tokens, row.Center = name, "synthetic", L, w.Center
		row.BitsPerValue, row.BytesPerTokenHead = storage(name, d)
		row.RatioFP16 = float64(4*d) / row.BytesPerTokenHead
		row.BytesPerToken = row.BytesPerTokenHead * float64(w.Layers*H)
		if seq, ok := a.(*kvcache.Sequence); ok && w.Speed {
			ns, err := timeStep(seq, in.stepQuery, w.Reps)
			if err != nil {
				return err
			}
			row.NsPerStep = ns
			row.ModelMsPerStep = ns * float64(w.Layers) / 1e6
			row.StepBytes = seq.Stats().LiveBytes
			row.BandwidthGBs = w.measuredBandwith / 1e9
			row.FloorFraction = float64(row.StepBytes) / w.measuredBandwith * 1e9 / ns
		}
		byKey[[2]int{L, pi}] = row
		w.progress.add(1)
	}
	return nil
}

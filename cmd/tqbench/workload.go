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
	Presets         []string
	Lengths         []int
	Layers          int // the model the per-token bytes and times are scaled to
	KVHeads, QHeads int
	Queries         int
	Center          bool
	Window, Sinks   int
	Seed            uint64
	Reps            int
	Speed, Fidelity bool
	BandwidthBytes  int
	progress        *progress
	restoreBackend  func() // undoes --backend
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
	// token) on the one built layer, over rounds that time every preset of
	// the run once each (timeSteps); ModelMsPerStep scales it to
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
	// BandwidthGBs is the copy bandwidth measured between the timing
	// rounds at this length (median).
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
func (w *workload) run() (_ []benchRow, err error) {
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
	in := &workloadInput{keys: keys, values: values, lengths: lengths, refs: refs, d: d,
		stepQuery: s.Queries(1, H, QH/H, w.Seed+2)}
	if w.Speed && w.BandwidthBytes > 0 {
		in.probe = newCopyProbe(w.BandwidthBytes)
	}
	// Every preset's cache is built first and kept, so that at each length
	// the decode steps are timed in rounds, one step of every preset a
	// round: on a shared host the load moves from minute to minute, and
	// presets timed one after another compared their own minutes.
	caches := make([]validate.Attention, 0, len(w.Presets))
	defer func() {
		for _, a := range caches {
			if cerr := a.Close(); err == nil {
				err = cerr
			}
		}
	}()
	for _, name := range w.Presets {
		a, err := w.buildPreset(name, in)
		if err != nil {
			return nil, err
		}
		caches = append(caches, a)
	}
	byKey := map[[2]int]*benchRow{} // (length, preset index)
	for _, L := range lengths {
		if err := w.measureAt(L, caches, in, byKey); err != nil {
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

// timeSteps returns the median time of one decode step of each sequence
// over reps rounds (after one warm-up round), a round timing one step of
// each, starting one further along each round, and the median copy
// bandwidth measured between rounds (by probe; nil: none).
func timeSteps(seqs []*kvcache.Sequence, query []float32, reps int, probe *copyProbe) (ns []float64, bandwidth float64, err error) {
	out := make([]float32, len(query))
	for _, seq := range seqs {
		if err := seq.Attend(0, query, out); err != nil {
			return nil, 0, err
		}
	}
	reps = max(reps, 1)
	times := make([][]float64, len(seqs))
	var bws []float64
	for r := range reps {
		for k := range seqs {
			i := (r + k) % len(seqs)
			start := time.Now()
			if err := seqs[i].Attend(0, query, out); err != nil {
				return nil, 0, err
			}
			times[i] = append(times[i], float64(time.Since(start).Nanoseconds()))
		}
		if probe != nil {
			bws = append(bws, probe.bandwidth())
		}
	}
	ns = make([]float64, len(seqs))
	for i, t := range times {
		ns[i] = median(t)
	}
	if len(bws) > 0 {
		bandwidth = median(bws)
	}
	return ns, bandwidth, nil
}

// median returns the median of x (the upper one of an even count); it
// sorts x.
func median(x []float64) float64 {
	slices.Sort(x)
	return x[len(x)/2]
}

// copyProbe measures memory bandwidth with a copy between two buffers,
// allocated and touched once.
type copyProbe struct{ src, dst []byte }

func newCopyProbe(n int) *copyProbe {
	c := &copyProbe{make([]byte, n), make([]byte, n)}
	for i := range c.src {
		c.src[i] = byte(i)
	}
	copy(c.dst, c.src)
	return c
}

// bandwidth is the best of three copies, counting bytes read plus bytes
// written.
func (c *copyProbe) bandwidth() float64 {
	best := time.Duration(1 << 62)
	for range 3 {
		start := time.Now()
		copy(c.dst, c.src)
		best = min(best, time.Since(start))
	}
	return 2 * float64(len(c.src)) / best.Seconds()
}

// workloadInput is what every preset of a run is measured on.
type workloadInput struct {
	keys, values []float32 // lengths[0] tokens
	lengths      []int     // longest first
	refs         map[int]*validate.AttentionReference
	stepQuery    []float32
	d            int
	probe        *copyProbe // Speed: the bandwidth measure
}

// buildPreset builds one preset's cache and appends the workload's tokens
// (the longest length); it is closed if that fails.
func (w *workload) buildPreset(name string, in *workloadInput) (_ validate.Attention, err error) {
	H, QH, d, T := w.KVHeads, w.QHeads, in.d, in.lengths[0]
	keys, values := in.keys, in.values
	b, err := builderFor(name, w.adjust)
	if err != nil {
		return nil, err
	}
	w.progress.describe("building " + name)
	a, err := b(H, QH, d)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			a.Close()
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
			return nil, err
		}
	}
	if at, ok := a.(interface {
		Attend(layer int, queries, out []float32) error
	}); ok && T > 1 {
		if err := at.Attend(0, in.stepQuery, make([]float32, len(in.stepQuery))); err != nil {
			return nil, err
		}
	}
	if err := appendRange(T-1, T); err != nil {
		return nil, err
	}
	w.progress.add(1)
	return a, nil
}

// measureAt truncates every preset's cache to L tokens and measures it
// there into byKey[(L, preset index)]: fidelity, then (Speed) the decode
// step, timed in rounds across the presets (timeSteps).
func (w *workload) measureAt(L int, caches []validate.Attention, in *workloadInput, byKey map[[2]int]*benchRow) error {
	H, d, T := w.KVHeads, in.d, in.lengths[0]
	var seqs []*kvcache.Sequence
	var timed []*benchRow
	for pi, a := range caches {
		name := w.Presets[pi]
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
			seqs, timed = append(seqs, seq), append(timed, row)
		}
		byKey[[2]int{L, pi}] = row
		w.progress.add(1)
	}
	if len(seqs) == 0 {
		return nil
	}
	w.progress.describe(fmt.Sprintf("timing %d presets at %d tokens", len(seqs), L))
	ns, bw, err := timeSteps(seqs, in.stepQuery, w.Reps, in.probe)
	if err != nil {
		return err
	}
	for i, row := range timed {
		row.NsPerStep = ns[i]
		row.ModelMsPerStep = ns[i] * float64(w.Layers) / 1e6
		row.StepBytes = seqs[i].Stats().LiveBytes
		row.BandwidthGBs = bw / 1e9
		row.FloorFraction = float64(row.StepBytes) / bw * 1e9 / ns[i]
	}
	return nil
}

package validate

import (
	"fmt"
	"math"
	"slices"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
)

// CompareRow is one codec's attention fidelity on one layer of real (or
// synthetic) K/V, measured like MeasureRealKV: every token of a chunk
// compressed, every query of the chunk scored against every key, exact
// float64 attention as the reference.
type CompareRow struct {
	Name   string `json:"name"`
	Family string `json:"family"` // "turboquant", "int-sym", "int-asym", "kivi", or a study's label
	Layer  int    `json:"layer"`
	Dim    int    `json:"head_dim"`
	Center bool   `json:"center"`
	// Default is true when the row is the preset as shipped (its Center
	// setting is the preset's default); baselines are always Default.
	Default bool `json:"default"`
	// Bits is the steady-state storage per key/value element, every norm,
	// scale and zero point included: what a long sequence costs.
	// BitsFixture is the exact storage on this data, which also counts the
	// per-sequence constants (Center's fp32 means) and a baseline's partial
	// groups, spread over the data's short chunks.
	Bits        float64 `json:"bits_per_element"`
	BitsFixture float64 `json:"bits_fixture"`
	Tokens      int     `json:"tokens"`
	// Attention-probability metrics (softmax rows against the exact ones):
	// CosMean and CosWorst are the mean and smallest row cosine, KLD the
	// mean KL(exact ‖ codec), Top1 and Top5 the fractions of rows whose
	// top-1 key, and top-5 key set, match.
	CosMean  float64 `json:"cos_mean"`
	CosWorst float64 `json:"cos_worst"`
	KLD      float64 `json:"kld"`
	Top1     float64 `json:"top1"`
	Top5     float64 `json:"top5"`
	// LogitCosMean and LogitCosWorst are the cosine between raw logit
	// vectors (pre-softmax) — the metric of the PyTorch reference, far more
	// forgiving than the probability cosine because a logit row's common
	// offset dominates it.
	LogitCosMean  float64 `json:"logit_cos_mean"`
	LogitCosWorst float64 `json:"logit_cos_worst"`
	// OutErr is the mean relative error of the attention output of each
	// chunk's last query (as MeasureRealKV reports it: one sample per
	// chunk). OutErrAll is the mean over every query of the chunk, each
	// attending to every key as the bidirectional encoder does: the same
	// quantity with 100× the samples, which the targets use.
	OutErr    float64 `json:"out_err"`
	OutErrAll float64 `json:"out_err_all"`
}

// Contender is one way of storing a chunk's keys and values that Compare
// measures: a cache preset, a baseline codec or a study configuration.
type Contender struct {
	Name   string
	Family string
	// build stores one chunk's layer and returns what attention sees.
	build func(l *RealKVLayer) (*chunkModel, error)
	// nominal is the steady-state bits per element at a head dim.
	nominal func(dim int) (bits float64, center, isDefault bool, err error)
}

// chunkModel is one contender holding one chunk of one layer.
type chunkModel struct {
	// logits writes the scaled logits of query q of head h against every
	// key of the chunk.
	logits func(h int, q []float32, dst []float64) error
	// output writes the attention output of the queries qs ([H][d]) over
	// every key.
	output func(qs, out []float32) error
	bits   int64 // stored bits, per-sequence constants included
	close  func()
}

// PresetContender runs a cache preset through turboquant's KV cache with no
// fp16 window or sinks (every token compressed); adjust, if not nil, edits
// the configuration after that (e.g. to set Center).
func PresetContender(preset string, adjust func(*kvcache.Config)) Contender {
	config := func(heads, dim int) (kvcache.Config, bool, error) {
		cfg, err := kvcache.Preset(preset, 1, heads, heads, dim)
		if err != nil {
			return cfg, false, err
		}
		shipped := cfg.Center
		cfg.Window, cfg.Sinks = 0, 0
		if adjust != nil {
			adjust(&cfg)
		}
		return cfg, cfg.Center == shipped, nil
	}
	return Contender{
		Name:   preset,
		Family: "turboquant",
		nominal: func(dim int) (float64, bool, bool, error) {
			cfg, def, err := config(1, dim)
			if err != nil {
				return 0, false, false, err
			}
			return (cfg.Keys.BitsPerValue(dim) + cfg.Values.BitsPerValue(dim)) / 2, cfg.Center, def, nil
		},
		build: func(l *RealKVLayer) (*chunkModel, error) {
			H, T, d := l.Heads, l.Tokens, l.HeadDim
			cfg, _, err := config(H, d)
			if err != nil {
				return nil, err
			}
			seq, err := l.prefill(cfg)
			if err != nil {
				return nil, err
			}
			bits := 8 * seq.Stats().LiveBytes
			if cfg.Center { // one fp32 mean per quantized codec and head
				for _, cd := range []kvcache.Storage{cfg.Keys, cfg.Values} {
					if cd.Kind == kvcache.Quantized {
						bits += int64(32 * H * d)
					}
				}
			}
			buf := make([]float32, T)
			return &chunkModel{
				logits: func(h int, q []float32, dst []float64) error {
					if err := seq.Logits(0, h, q, buf); err != nil {
						return err
					}
					for i, x := range buf {
						dst[i] = float64(x)
					}
					return nil
				},
				output: func(qs, out []float32) error { return seq.Attend(0, qs, out) },
				bits:   bits,
				close:  func() { _ = seq.Close() },
			}, nil
		},
	}
}

// BaselineContender measures a baseline codec.
func BaselineContender(b Baseline) Contender {
	return Contender{
		Name:   b.Name(),
		Family: b.Kind.String(),
		nominal: func(int) (float64, bool, bool, error) {
			return b.NominalBits(), false, true, b.validate()
		},
		build: func(l *RealKVLayer) (*chunkModel, error) {
			ks, vs := make([][][]float32, l.Heads), make([][][]float32, l.Heads)
			var bits int64
			for h := range l.Heads {
				k, v, n, err := b.Quantize(l.K[h], l.V[h])
				if err != nil {
					return nil, err
				}
				ks[h], vs[h], bits = k, v, bits+n
			}
			return dequantizedModel(ks, vs, bits), nil
		},
	}
}

// QuantizerConfigs chooses the key and value quantizer configurations of one
// head of a chunk, given its keys and values as captured (rawK, rawV) and as
// they will be stored (keys, values: minus their mean when the study
// centres).
type QuantizerConfigs func(dim, head int, rawK, rawV, keys, values [][]float32) (k, v turboquant.Config, err error)

// QuantizerContender is a study: each head's keys and values (minus their
// chunk mean when center is set) are encoded and decoded with the quantizers
// configs chooses, and attention runs on the reconstruction (equal to the
// cache's attention on the codes up to float rounding). nominalBits is the
// steady-state bits per element at a head dim, for the table.
func QuantizerContender(name, family string, center bool, nominalBits func(dim int) float64, configs QuantizerConfigs) Contender {
	return Contender{
		Name:   name,
		Family: family,
		nominal: func(dim int) (float64, bool, bool, error) {
			return nominalBits(dim), center, true, nil
		},
		build: func(l *RealKVLayer) (*chunkModel, error) {
			ks, vs := make([][][]float32, l.Heads), make([][][]float32, l.Heads)
			var bits int64
			for h := range l.Heads {
				k, v := cloneRows(l.K[h]), cloneRows(l.V[h])
				var muK, muV []float32
				if center {
					muK, muV = rowMean(k), rowMean(v)
					subtractRows(k, muK)
					subtractRows(v, muV)
					bits += int64(2 * 32 * l.HeadDim)
				}
				kc, vc, err := configs(l.HeadDim, h, l.K[h], l.V[h], k, v)
				if err != nil {
					return nil, err
				}
				for _, p := range []struct {
					x   [][]float32
					cfg turboquant.Config
					mu  []float32
				}{{k, kc, muK}, {v, vc, muV}} {
					n, err := reconstructRows(p.x, p.cfg)
					if err != nil {
						return nil, err
					}
					bits += n
					if p.mu != nil {
						subtractRows(p.x, negate(p.mu))
					}
				}
				ks[h], vs[h] = k, v
			}
			return dequantizedModel(ks, vs, bits), nil
		},
	}
}

// reconstructRows replaces every row of x by its reconstruction under cfg and
// returns the bits stored.
func reconstructRows(x [][]float32, cfg turboquant.Config) (int64, error) {
	q, err := turboquant.New(cfg)
	if err != nil {
		return 0, err
	}
	code := make([]byte, q.CodeSize())
	for _, r := range x {
		if err := q.Encode(code, r); err != nil {
			return 0, err
		}
		if err := q.Decode(r, code); err != nil {
			return 0, err
		}
	}
	return int64(8 * len(code) * len(x)), nil
}

func rowMean(x [][]float32) []float32 {
	acc := make([]float64, len(x[0]))
	for _, r := range x {
		for i, v := range r {
			acc[i] += float64(v)
		}
	}
	mu := make([]float32, len(acc))
	for i, v := range acc {
		mu[i] = float32(v / float64(len(x)))
	}
	return mu
}

func subtractRows(x [][]float32, mu []float32) {
	for _, r := range x {
		for i := range r {
			r[i] -= mu[i]
		}
	}
}

func negate(x []float32) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = -v
	}
	return out
}

// dequantizedModel attends over reconstructed keys and values ([H][T][d]).
func dequantizedModel(ks, vs [][][]float32, bits int64) *chunkModel {
	d := len(ks[0][0])
	scale := 1 / math.Sqrt(float64(d))
	logits := func(h int, q []float32, dst []float64) error {
		for t, k := range ks[h] {
			dst[t] = Dot(q, k) * scale
		}
		return nil
	}
	return &chunkModel{
		logits: logits,
		output: func(qs, out []float32) error {
			T := len(ks[0])
			lg := make([]float64, T)
			for h := range ks {
				_ = logits(h, qs[h*d:(h+1)*d], lg)
				p := Softmax(lg)
				for j := range d {
					var s float64
					for t := range T {
						s += p[t] * float64(vs[h][t][j])
					}
					out[h*d+j] = float32(s)
				}
			}
			return nil
		},
		bits:  bits,
		close: func() {},
	}
}

// exactOutput is the float64 attention output, [H][d] flattened, of query
// position qi over every key of the chunk, from its exact logits ref
// ([h][query][key]).
func exactOutput(l *RealKVLayer, ref [][][]float64, qi int) []float32 {
	H, T, d := l.Heads, l.Tokens, l.HeadDim
	out := make([]float32, H*d)
	for h := range H {
		p := Softmax(ref[h][qi])
		for j := range d {
			var s float64
			for t := range T {
				s += p[t] * float64(l.V[h][t][j])
			}
			out[h*d+j] = float32(s)
		}
	}
	return out
}

// compareAcc accumulates one contender's metrics over the chunks of a layer;
// the row metrics are Fidelity's (one definition of each).
type compareAcc struct {
	row             CompareRow
	fid             fidelityAcc
	chunks, outputs int
	bits, elements  int64
}

func (a *compareAcc) addRow(ref, got []float64) { a.fid.addRow(ref, got) }

func (a *compareAcc) finish() CompareRow {
	r := a.row
	var f Fidelity
	a.fid.fill(&f)
	r.CosMean, r.CosWorst, r.KLD, r.Top1, r.Top5 = f.AttnCosine, f.AttnCosineMin, f.KLD, f.Top1, f.Top5
	r.LogitCosMean, r.LogitCosWorst = f.LogitCosine, a.fid.lcosMin
	r.OutErr /= float64(a.chunks)
	r.OutErrAll /= float64(a.outputs)
	r.BitsFixture = float64(a.bits) / float64(a.elements)
	return r
}

// Compare measures every contender on one layer of kv. Each chunk is one
// sequence; all contenders see the same queries and the same exact
// reference.
func Compare(kv *RealKV, layer int, contenders []Contender) ([]CompareRow, error) {
	if len(kv.Chunks) == 0 {
		return nil, fmt.Errorf("%w: no chunks", ErrRealKV)
	}
	first := kv.Chunks[0].layerAt(layer)
	if first == nil {
		return nil, fmt.Errorf("%w: no layer %d", ErrRealKV, layer)
	}
	accs := make([]compareAcc, len(contenders))
	for i, c := range contenders {
		bits, center, def, err := c.nominal(first.HeadDim)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Name, err)
		}
		accs[i].fid = *newFidelityAcc()
		accs[i].row = CompareRow{Name: c.Name, Family: c.Family, Layer: layer, Dim: first.HeadDim,
			Center: center, Default: def, Bits: bits}
	}
	for ci := range kv.Chunks {
		l := kv.Chunks[ci].layerAt(layer)
		if l == nil {
			return nil, fmt.Errorf("%w: chunk %d has no layer %d", ErrRealKV, ci, layer)
		}
		H, T, d := l.Heads, l.Tokens, l.HeadDim
		scale := 1 / math.Sqrt(float64(d))
		ref := make([][][]float64, H) // [h][query][key]
		for h := range H {
			ref[h] = make([][]float64, T)
			for qi := range T {
				ref[h][qi] = make([]float64, T)
				for k := range T {
					ref[h][qi][k] = Dot(l.Q[h][qi], l.K[h][k]) * scale
				}
			}
		}
		exact := exactAttention(l, scale)
		queries := make([][]float32, T) // [query][H·d], every head's query of one position
		exactAll := make([][]float32, T)
		for qi := range T {
			queries[qi] = make([]float32, H*d)
			for h := range H {
				copy(queries[qi][h*d:], l.Q[h][qi])
			}
			exactAll[qi] = exactOutput(l, ref, qi)
		}
		last := queries[T-1]
		got := make([]float64, T)
		out := make([]float32, H*d)
		for i, c := range contenders {
			m, err := c.build(l)
			if err != nil {
				return nil, fmt.Errorf("%s, chunk %d: %w", c.Name, ci, err)
			}
			a := &accs[i]
			for h := range H {
				for qi := range T {
					if err := m.logits(h, l.Q[h][qi], got); err != nil {
						m.close()
						return nil, fmt.Errorf("%s, chunk %d: %w", c.Name, ci, err)
					}
					a.addRow(ref[h][qi], got)
				}
			}
			if err := m.output(last, out); err != nil {
				m.close()
				return nil, fmt.Errorf("%s, chunk %d: %w", c.Name, ci, err)
			}
			a.row.OutErr += relativeError(out, exact)
			for qi := range T {
				if err := m.output(queries[qi], out); err != nil {
					m.close()
					return nil, fmt.Errorf("%s, chunk %d: %w", c.Name, ci, err)
				}
				a.row.OutErrAll += relativeError(out, exactAll[qi])
				a.outputs++
			}
			m.close()
			a.chunks++
			a.row.Tokens += T
			a.bits += m.bits
			a.elements += int64(2 * H * T * d)
		}
	}
	rows := make([]CompareRow, len(accs))
	for i := range accs {
		rows[i] = accs[i].finish()
	}
	return rows, nil
}

// ComparisonContenders is the standard comparison: every compressed cache
// preset up to 5.125 bits (the tuned ones and the ladder's), plain and
// centred, and every baseline of Baselines.
func ComparisonContenders() []Contender {
	var out []Contender
	ladder := []string{"k5v4.5", "k5v4", "tq5", "k4v4.5", "k4v3.5", "k4v3", "k3v4", "k3v3.5", "k3.5v3", "k2.5v3", "k3v2"}
	for _, p := range slices.Concat(kvcache.PresetNames, ladder, kvcache.UnbiasedKeyPresetNames) {
		if p == "fp32" || p == "fp16" {
			continue
		}
		for _, c := range []bool{false, true} {
			out = append(out, PresetContender(p, func(cfg *kvcache.Config) { cfg.Center = c }))
		}
	}
	for _, b := range Baselines() {
		out = append(out, BaselineContender(b))
	}
	return out
}

// TargetCheck is one of the equal-bits targets evaluated on Compare rows:
// a TurboQuant preset (as shipped) at no more bits than a baseline must beat
// it on attention-probability cosine, top-1 and output error.
type TargetCheck struct {
	Layer        int     `json:"layer"`
	Baseline     string  `json:"baseline"`
	BaselineBits float64 `json:"baseline_bits"`
	// Preset is the preset within the budget that is better on the most of
	// the three metrics (ties: the best cosine, then the lowest output
	// error); Met when that is all three.
	// Empty when no preset fits the budget.
	Preset     string  `json:"preset"`
	PresetBits float64 `json:"preset_bits"`
	Met        bool    `json:"met"`
	// DCos and DTop1 are the preset's cosine and top-1 minus the
	// baseline's; OutErrRatio is the preset's output error (OutErrAll) over
	// the baseline's (< 1: better).
	DCos        float64 `json:"d_cos"`
	DTop1       float64 `json:"d_top1"`
	OutErrRatio float64 `json:"out_err_ratio"`
}

func isBaseline(family string) bool {
	return family == TokenSymmetric.String() || family == TokenAsymmetric.String() || family == KIVI.String()
}

// wins counts on how many of cosine, top-1 and output error (every query's)
// a is better than b.
func wins(a, b CompareRow) int {
	n := 0
	for _, w := range []bool{a.CosMean > b.CosMean, a.Top1 > b.Top1, a.OutErrAll < b.OutErrAll} {
		if w {
			n++
		}
	}
	return n
}

// CheckEqualBits evaluates, for every baseline row with 2 to 5 bits per
// element, whether a shipped TurboQuant preset of the same layer at the same
// or fewer bits beats it. pinned, if not empty, restricts the presets to
// that name (e.g. "tq4" against "kivi4-g32" at 5 bits).
func CheckEqualBits(rows []CompareRow, pinned string) []TargetCheck {
	const eps = 1e-9
	var out []TargetCheck
	for _, b := range rows {
		if !isBaseline(b.Family) || b.Bits < 2-eps || b.Bits > 5+eps {
			continue
		}
		tc := TargetCheck{Layer: b.Layer, Baseline: b.Name, BaselineBits: b.Bits}
		// The preset that wins on the most of the three metrics, then the
		// best cosine.
		var best *CompareRow
		bestWins := -1
		for i := range rows {
			p := &rows[i]
			if p.Family != "turboquant" || !p.Default || p.Layer != b.Layer || p.Bits > b.Bits+eps {
				continue
			}
			if pinned != "" && p.Name != pinned {
				continue
			}
			w := wins(*p, b)
			// Presets with the same keys attend with the same probabilities
			// (k4v2, k4v3, tq4): among equal cosines the lower output error
			// decides.
			if w > bestWins || (w == bestWins && (p.CosMean > best.CosMean ||
				p.CosMean == best.CosMean && p.OutErrAll < best.OutErrAll)) {
				best, bestWins = p, w
			}
		}
		if best != nil {
			tc.Preset, tc.PresetBits, tc.Met = best.Name, best.Bits, bestWins == 3
			tc.DCos, tc.DTop1 = best.CosMean-b.CosMean, best.Top1-b.Top1
			tc.OutErrRatio = best.OutErrAll / b.OutErrAll
		}
		out = append(out, tc)
	}
	return out
}

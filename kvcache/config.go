package kvcache

import (
	"github.com/turboquant-go/tq/turboquant"

	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// StorageKind selects how a cache stores keys or values.
type StorageKind uint8

const (
	// Quantized stores TurboQuant codes (the Storage's Method and Bits).
	Quantized StorageKind = iota
	// Float16 stores IEEE half floats: the uncompressed baseline.
	Float16
	// Float32 stores float32: the exact reference.
	Float32
)

// Storage is how a cache stores one of keys or values.
type Storage struct {
	Kind       StorageKind
	Method     turboquant.Method // Quantized only
	Bits       int               // Quantized only; 0 for Polar
	Norm       turboquant.Precision
	Correction turboquant.Correction
	// Outliers is the number of channels per (layer, KV head) split off
	// and quantized at OutlierBits; they are the channels with the largest
	// norm over the first prefill, chosen once and recorded.
	Outliers    int
	OutlierBits int
	// Split is the number of rotated coordinates quantized at SplitBits
	// instead of Bits (turboquant.Split: mixed precision at one rotation
	// and one norm, data-oblivious). MSE only; not with Outliers.
	Split     int
	SplitBits int
}

// LayerStorage overrides the key and value storages of one layer.
type LayerStorage struct{ Keys, Values Storage }

// Config describes the caches of one model.
type Config struct {
	Layers, KVHeads, QHeads, HeadDim int
	Keys, Values                     Storage
	// Overrides replaces Keys and Values for the listed layers (e.g. the
	// first and last layers at higher precision).
	Overrides map[int]LayerStorage
	// Window is the number of most recent tokens kept in fp16 before they
	// are compressed, one token at a time as the window slides (0: compress
	// on arrival). Tokens are never re-quantized.
	Window int
	// Sinks is the number of leading tokens kept in fp16 for good
	// (attention sinks).
	Sinks int
	// DeferPrefill keeps a prefill (appends of more than one token before
	// the layer's first single-token append) wholly in the fp16 window, so
	// attention within the prompt runs on fp16 keys and values; the first
	// decode step then compresses everything beyond Window. While deferred,
	// the window grows to hold the prompt, counted against the budget;
	// PlanBytes gives the steady state after the first decode step.
	DeferPrefill bool
	// Center stores quantized keys and values minus their mean per (layer,
	// KV head), estimated from the layer's first append and kept in fp32.
	// Attention adds the means back exactly (q·μ_k to every compressed
	// logit, Σw·μ_v to the output), so only the quantization error changes:
	// real keys are far from centred (their mean is 0.5–0.8 of their
	// length), and the error scales with the stored norm. The means come
	// from the first append, so codes depend on what it held: a prompt
	// appended whole and token by token, or a fork of a longer prompt and
	// a fresh sequence of its prefix, store different codes (and a first
	// append of one token centres on that token).
	Center bool
	// BlockCenter centres each block's quantized keys and values on the
	// mean of the previous block's reconstructions as well (causal block
	// centring; docs/notes/blockcenter.md): slowly drifting channels then
	// stop sharing one quantization error over a stretch of tokens. Each
	// block stores its drift (that mean less Center's) as one more code of
	// each quantized side per KV head, and attention adds it back exactly
	// (a logit offset and a value term per block). Not with Guard.
	BlockCenter bool
	// BlockTokens is the number of tokens per allocation block (default 64).
	BlockTokens int
	// Scale multiplies the attention logits (0: 1/√HeadDim).
	Scale float32
	// Seed seeds the rotations and sketches of every quantizer.
	Seed uint64
	// Guard is the fidelity guardrail (guard.go): off by default, on
	// in the guard presets.
	Guard GuardConfig
	// IntScores scores 3- and 4-bit keys (whole parts of a dimension that
	// is a multiple of 32) with int8 queries and 7-bit centroid tables
	// where the CPU has the integer kernels (AVX2; VNNI where present),
	// and 8-bit keys (a multiple of 64) with 8-bit tables where it has
	// the AVX-512 ones (VBMI and VNNI), instead of float tables: each
	// logit within
	// norm·scale·(Σ|q_j|·εc + Σ|c_j|·εq + d·εq·εc) of the float one, εq and
	// εc the half-steps of the query's and the codebook's integer scales
	// (simd.DotCodesQ8). It changes no stored byte. Other backends (CUDA,
	// Metal) score in float and ignore it.
	IntScores bool
	// IntValues sums 3- and 4-bit values (whole parts of a dimension that
	// is a multiple of 64) with each token's softmax weight times norm
	// quantized to int8 per block (per 64 tokens of longer runs) and the
	// same 7-bit centroid tables, where the CPU has the integer value
	// kernels (AVX-512 with VBMI and VNNI, or AVX2), instead of float
	// FMAs: each
	// output coordinate, before the softmax division, within
	// Σ_t (|w_t·norm_t|·εc + |c_t|·εw + εw·εc) of the float sum, εw and εc
	// the half-steps of the weights' and the codebook's integer scales
	// (simd.AxpyCodesQ8). It changes no stored byte; other backends ignore
	// it.
	IntValues bool
}

// Preset returns the configuration of a named preset for a model shape.
// Presets and their exact bits per value at head dim 128 (fp16 norms
// included):
//
//	fp16    keys fp16, values fp16                     16 bits
//	k8v4    keys 8-bit MSE, values 4-bit MSE            8.125 / 4.125
//	tq4     4-bit MSE                                   4.125
//	tq3.5   64 outlier channels at 4 bits + 64 at 3     3.5 + 2 norms = 3.75
//	tq3     3-bit MSE                                   3.125
//	k4v2    keys 4-bit, values 2-bit MSE                4.125 / 2.125
//	tq2.5   32 outlier channels at 4 bits + 96 at 2     2.5 + 2 norms = 2.75
//	tq2     2-bit MSE                                   2.125
//
// The ladder presets (LadderPresetNames) fill the gaps between them, so
// that every budget from 2 to 8 bits per value has a preset within half a
// bit: tqN is N-bit MSE keys and values, kNvM N-bit keys and M-bit values
// (k3v4 spends the extra bit on values, which set the output error).
//
// Compressed presets keep a 128-token fp16 window and 4 fp16 sink tokens,
// and set Center: on the real encoder K/V of validate's KJV fixture it
// raised the attention-probability cosine and top-1 of every compressed
// preset at both head dims (e.g. tq3 1−cos 0.052 → 0.027 at d=64, 0.019 →
// 0.015 at d=128), for 2·HeadDim fp32 means per (layer, KV head).
//
// Guard presets (GuardPresetNames) add the fidelity guardrail
// (guard.go) to a base preset and defer the prefill, so that the
// prompt's blocks are measured against the prompt's queries:
//
//	tq3-guard  tq3; a (layer, KV head) whose 3-bit keys move a new block's
//	           logits by more than 0.5 nats RMS against its recent queries
//	           stores that block and later ones at 4 bits (keys and values)
//
// On validate's KJV fixture (streamed token by token, blocks of 16) the
// 0.5-nat budget stored 3.47 code bits per element over both layers (4.09
// at d=64, where 3-bit keys are poor, 3.16 at d=128) and did not reach
// tq4's fidelity; see docs/notes/guard.md.
//
// A compressed preset's name followed by "+bc" (for example "k5v4.5+bc")
// also sets BlockCenter (not with the guard presets). A preset whose keys
// are whole-rate MSE codes, followed by "+uk" (UnbiasedKeysSuffix, e.g.
// "k5v4.25+uk"), stores each key with a correction scalar that makes its
// inner products unbiased (turboquant.Unbiased): one more fp16 per key
// vector, 0.25 bit per value at head dim 64. On the fixture's d=64 layer it
// halves the attention KLD of 4- and 5-bit keys (0.0146 → 0.0080, 0.0044 →
// 0.0023), where per-channel KIVI keys had been ahead. Both suffixes may
// follow one name ("k5v4+uk+bc"). Any preset followed by "+i8"
// (IntScoresSuffix, last) also sets IntScores and IntValues.
func Preset(name string, layers, kvHeads, qHeads, headDim int) (Config, error) {
	if base, ok := strings.CutSuffix(name, IntScoresSuffix); ok {
		cfg, err := Preset(base, layers, kvHeads, qHeads, headDim)
		if err != nil {
			return cfg, err
		}
		cfg.IntScores, cfg.IntValues = true, true
		return cfg, nil
	}
	if base, ok := strings.CutSuffix(name, UnbiasedKeysSuffix); ok && !strings.Contains(base, UnbiasedKeysSuffix) {
		cfg, err := Preset(base, layers, kvHeads, qHeads, headDim)
		if err != nil {
			return cfg, err
		}
		if cfg.Keys.Kind != Quantized || cfg.Keys.Method != turboquant.MSE || cfg.Keys.Split != 0 || cfg.Keys.Outliers != 0 {
			return Config{}, fmt.Errorf("%w: %q: unbiased keys need whole-rate MSE key codes", ErrConfig, name)
		}
		cfg.Keys.Correction = turboquant.Unbiased
		return cfg, cfg.validate()
	}
	if base, ok := strings.CutSuffix(name, BlockCenterSuffix); ok && !strings.Contains(base, BlockCenterSuffix) {
		cfg, err := Preset(base, layers, kvHeads, qHeads, headDim)
		if err != nil {
			return cfg, err
		}
		if !cfg.Center {
			return Config{}, fmt.Errorf("%w: %q: block centring needs a compressed preset", ErrConfig, name)
		}
		cfg.BlockCenter = true
		return cfg, cfg.validate()
	}
	mse := func(b int) Storage { return Storage{Kind: Quantized, Method: turboquant.MSE, Bits: b} }
	split := func(outliers, ob, b int) Storage {
		return Storage{Kind: Quantized, Method: turboquant.MSE, Bits: b, Outliers: outliers * headDim / 128, OutlierBits: ob}
	}
	cfg := Config{Layers: layers, KVHeads: kvHeads, QHeads: qHeads, HeadDim: headDim, Window: 128, Sinks: 4}
	switch name {
	case "fp16":
		cfg.Keys, cfg.Values = Storage{Kind: Float16}, Storage{Kind: Float16}
		cfg.Window, cfg.Sinks = 0, 0
	case "fp32":
		cfg.Keys, cfg.Values = Storage{Kind: Float32}, Storage{Kind: Float32}
		cfg.Window, cfg.Sinks = 0, 0
	case "k8v4":
		cfg.Keys, cfg.Values = mse(8), mse(4)
	case "tq4":
		cfg.Keys, cfg.Values = mse(4), mse(4)
	case "tq3.5":
		cfg.Keys, cfg.Values = split(64, 4, 3), split(64, 4, 3)
	case "tq3":
		cfg.Keys, cfg.Values = mse(3), mse(3)
	case "k4v2":
		cfg.Keys, cfg.Values = mse(4), mse(2)
	case "tq2.5":
		cfg.Keys, cfg.Values = split(32, 4, 2), split(32, 4, 2)
	case "tq2":
		cfg.Keys, cfg.Values = mse(2), mse(2)
	case "tq3-guard":
		cfg.Keys, cfg.Values = mse(3), mse(3)
		cfg.Guard = GuardConfig{Budget: GuardPresetBudget, Keys: mse(4), Values: mse(4)}
		cfg.DeferPrefill = true
	default:
		k, v, ok := ladderStorages(name, headDim)
		if !ok {
			return Config{}, fmt.Errorf("%w: unknown preset %q (have %s)", ErrConfig, name, strings.Join(AllPresetNames(), ", "))
		}
		cfg.Keys, cfg.Values = k, v
	}
	cfg.Center = cfg.Keys.Kind == Quantized || cfg.Values.Kind == Quantized
	return cfg, cfg.validate()
}

// BlockCenterSuffix turns a compressed preset's name into the same preset
// with BlockCenter.
const BlockCenterSuffix = "+bc"

// IntScoresSuffix turns a preset into the same preset with IntScores and
// IntValues.
const IntScoresSuffix = "+i8"

// UnbiasedKeysSuffix turns a preset whose keys are whole-rate MSE codes
// into the same preset with unbiased keys (a correction scalar per key).
const UnbiasedKeysSuffix = "+uk"

// UnbiasedKeyPresetNames are the ladder presets with unbiased keys that
// spend exactly 5, 4.5, 4, 3.5 and 3 bits per value at head dim 64, the
// budgets of the int-N and KIVI-like baselines.
var UnbiasedKeyPresetNames = []string{"k5v4.25+uk", "k4v4.25+uk", "k4v3.25+uk", "k3v3.25+uk", "k3v2.25+uk"}

// ladderStorages parses a ladder preset name ("tq6", "k5v4", "k4v3.5")
// into its key and value storages; only the names in LadderPresetNames
// are accepted. A rate of b.5 bits is b-bit MSE with half the rotated
// coordinates at b+1 bits (Storage.Split; b.25 a quarter of them): one
// norm, as for whole rates.
func ladderStorages(name string, headDim int) (keys, values Storage, ok bool) {
	if !slices.Contains(LadderPresetNames, name) {
		return keys, values, false
	}
	storage := func(rate string) (Storage, bool) {
		whole, frac, _ := strings.Cut(rate, ".")
		b, err := strconv.Atoi(whole)
		if err != nil {
			return Storage{}, false
		}
		s := Storage{Kind: Quantized, Method: turboquant.MSE, Bits: b}
		if frac != "" {
			q := map[string]int{"25": 1, "5": 2, "75": 3}[frac] // quarters
			if q == 0 {
				return Storage{}, false
			}
			s.Split, s.SplitBits = headDim*q/4, b+1
		}
		return s, true
	}
	k, v, isKV := strings.Cut(strings.TrimPrefix(name, "k"), "v")
	if !isKV {
		k, v = strings.TrimPrefix(name, "tq"), strings.TrimPrefix(name, "tq")
	}
	keys, okK := storage(k)
	values, okV := storage(v)
	return keys, values, okK && okV
}

// LadderPresetNames lists the fixed-rate presets that complete the ladder
// from 2 to 8 bits per value (PresetNames holds the tuned ones), all MSE,
// by bits per value at head dim 128: k3v2 2.625, k2.5v3 2.875, k3.5v3 and
// k3v3.5 3.375, k4v3 and k3v4 3.625, k4v3.5 3.875, k4v4.5 4.375, k5v4
// 4.625, k5v4.25 4.75, k5v4.5 4.875, tq5 5.125, k6v5 5.625, tq6 6.125,
// k7v6 6.625, tq7 7.125, k8v7 7.625, tq8 8.125. The half-bit rates
// (k4v3.5: half the value coordinates at 4 bits) fill the budgets of 3,
// 3.5, 4, 4.5 and 5 bits per value at head dim 64 exactly, where the norm
// costs 0.25 bit: k2.5v3, k3.5v3 (or k3v3.5, which spends the half bit on
// values: NIAH 0.945 against 0.764, KLD 1.1e-4 against 9.0e-5 on the
// committed model), k4v3.5, k4v4.5 and k5v4.5; k5v4.25+bc (BlockCenter,
// whose drift codes cost 1/64 more) fits 5 bits at 4.95. With unbiased keys
// ("+uk", a quarter bit at head dim 64) k3v2.25, k3v3.25, k4v3.25, k4v4.25
// and k5v4.25 fill 3, 3.5, 4, 4.5 and 5 bits exactly (k4v4.25 4.25, k4v3.25
// 3.75, k3v3.25 3.25 and k3v2.25 2.75 at head dim 128 without it).
var LadderPresetNames = []string{"tq8", "k8v7", "tq7", "k7v6", "tq6", "k6v5", "tq5", "k5v4.5", "k5v4.25", "k5v4",
	"k4v4.5", "k4v4.25", "k4v3.5", "k4v3.25", "k4v3", "k3v4", "k3v3.5", "k3.5v3", "k3v3.25", "k2.5v3", "k3v2.25", "k3v2"}

// PresetNames lists the fixed-rate presets Preset knows, least compressed
// first.
var PresetNames = []string{"fp32", "fp16", "k8v4", "tq4", "tq3.5", "tq3", "k4v2", "tq2.5", "tq2"}

// AllPresetNames lists every name Preset knows: the tuned fixed-rate
// presets, the guard presets and the ladder.
func AllPresetNames() []string {
	return slices.Concat(PresetNames, GuardPresetNames, LadderPresetNames)
}

// GuardPresetNames lists the presets with the fidelity guardrail, whose
// stored bits depend on the data and on the queries attended.
var GuardPresetNames = []string{"tq3-guard"}

// GuardPresetBudget is the guard presets' budget: RMS logit error, nats.
const GuardPresetBudget = 0.5

func (c Config) withDefaults() Config {
	if c.BlockTokens == 0 {
		c.BlockTokens = 64
	}
	if c.Scale == 0 {
		c.Scale = float32(1 / math.Sqrt(float64(c.HeadDim)))
	}
	if c.Guard.enabled() && c.Guard.Queries == 0 && c.KVHeads > 0 {
		c.Guard.Queries = 8 * max(1, c.QHeads/c.KVHeads)
	}
	return c
}

func (c Config) validate() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	switch {
	case c.Layers < 1 || c.Layers > 1<<12:
		return bad("layers %d outside [1, 4096]", c.Layers)
	case c.KVHeads < 1 || c.KVHeads > 1<<12:
		return bad("kv heads %d outside [1, 4096]", c.KVHeads)
	case c.QHeads < c.KVHeads || c.QHeads%c.KVHeads != 0:
		return bad("query heads %d are not a multiple of kv heads %d", c.QHeads, c.KVHeads)
	case c.HeadDim < 2 || c.HeadDim > maxHeadDim:
		return bad("head dim %d outside [2, %d]", c.HeadDim, maxHeadDim)
	case c.Window < 0 || c.Sinks < 0 || c.Window > 1<<20 || c.Sinks > 1<<20:
		return bad("window %d and sinks %d must be in [0, 2^20]", c.Window, c.Sinks)
	case c.BlockTokens < 1 || c.BlockTokens > 1<<16:
		return bad("block tokens %d outside [1, 65536]", c.BlockTokens)
	case math.IsNaN(float64(c.Scale)) || math.IsInf(float64(c.Scale), 0):
		return bad("scale %v", c.Scale)
	}
	checked := map[Storage]bool{} // layers mostly share their codecs
	for l := range c.Layers {
		k, v := c.storages(l)
		for _, cd := range []Storage{k, v} {
			if checked[cd] {
				continue
			}
			if _, err := cd.quantizerConfig(c.HeadDim, 0, nil); err != nil {
				return fmt.Errorf("layer %d: %w", l, err)
			}
			checked[cd] = true
		}
	}
	for l := range c.Overrides {
		if l < 0 || l >= c.Layers {
			return bad("override for layer %d of %d", l, c.Layers)
		}
	}
	if c.BlockCenter && c.Guard.enabled() {
		return bad("block centring and the guard do not combine (upgraded heads would need drift codes of their own codecs)")
	}
	return c.validateGuard()
}

// maxHeadDim is the largest head dim: turboquant's largest vector.
const maxHeadDim = 1 << 16

// storages returns the key and value storages of a layer.
func (c Config) storages(layer int) (keys, values Storage) {
	if o, ok := c.Overrides[layer]; ok {
		return o.Keys, o.Values
	}
	return c.Keys, c.Values
}

// quantizerConfig maps a Quantized storage to a quantizer Config, defaults
// filled in as turboquant.New fills them (so that configs compare equal to
// a Quantizer's own); channels are its outlier channels (nil: placeholder
// channels, to validate and size).
func (cd Storage) quantizerConfig(dim int, seed uint64, channels []int) (turboquant.Config, error) {
	switch cd.Kind {
	case Float16, Float32:
		return turboquant.Config{}, nil
	case Quantized:
	default:
		return turboquant.Config{}, fmt.Errorf("%w: unknown storage kind %d", ErrConfig, cd.Kind)
	}
	cfg := turboquant.Config{Dim: dim, Bits: cd.Bits, Method: cd.Method, Seed: seed, Norm: cd.Norm, Correction: cd.Correction}
	if cd.Split != 0 || cd.SplitBits != 0 {
		cfg.Split = &turboquant.Split{Coords: cd.Split, Bits: cd.SplitBits}
	}
	if cd.Outliers != 0 {
		if cd.Outliers < 0 {
			return turboquant.Config{}, fmt.Errorf("%w: %d outlier channels", ErrConfig, cd.Outliers)
		}
		if channels == nil {
			channels = make([]int, min(cd.Outliers, dim))
			for i := range channels {
				channels[i] = i
			}
		}
		cfg.Outliers = &turboquant.Outliers{Channels: channels, Bits: cd.OutlierBits}
	}
	cfg = cfg.WithDefaults()
	if _, err := cfg.CodeSize(); err != nil { // validates
		return turboquant.Config{}, err
	}
	return cfg, nil
}

// codeSize is the bytes one vector of dim takes with this storage (0 for
// an invalid one).
func (cd Storage) codeSize(dim int) int {
	switch cd.Kind {
	case Float16:
		return 2 * dim
	case Float32:
		return 4 * dim
	}
	cfg, err := cd.quantizerConfig(dim, 0, nil)
	if err != nil {
		return 0
	}
	n, _ := cfg.CodeSize()
	return n
}

// BitsPerValue is the storage cost of one coordinate with this storage at dim,
// every stored scalar included.
func (cd Storage) BitsPerValue(dim int) float64 { return float64(8*cd.codeSize(dim)) / float64(dim) }

// BitsPerValue is the stored bits per key and value coordinate of a
// layer's compressed tokens, the mean of the two storages', with
// BlockCenter's drift codes spread over their block (the fp16 window and
// sinks excluded).
func (c Config) BitsPerValue(layer int) float64 {
	c = c.withDefaults()
	k, v := c.storages(layer)
	bits := func(cd Storage) float64 {
		b := cd.BitsPerValue(c.HeadDim)
		if c.BlockCenter && cd.Kind == Quantized {
			b *= 1 + 1/float64(c.BlockTokens)
		}
		return b
	}
	return (bits(k) + bits(v)) / 2
}

// tokenBytes is the stored bytes of one token of one layer (all KV heads,
// keys and values) with the given storages.
func (c Config) tokenBytes(keys, values Storage) int64 {
	return int64(c.KVHeads) * int64(keys.codeSize(c.HeadDim)+values.codeSize(c.HeadDim))
}

// fp16TokenStride is the bytes of one token of one layer in fp16, the
// stride of the sink and window buffers: [KVHeads][key, value][HeadDim]
// halves.
func (c Config) fp16TokenStride() int { return c.KVHeads * 2 * c.HeadDim * 2 }

// fp16TokenBytes is fp16TokenStride as the budget counts bytes.
func (c Config) fp16TokenBytes() int64 { return int64(c.fp16TokenStride()) }

// PlanBytes returns the exact bytes a sequence of this configuration holds
// after n tokens have been appended to every layer, before allocating any.
// Per layer: the fp16 sink and window buffers (allocated whole on the first
// append) and the compressed blocks for the tokens past them. With a guard
// it is an upper bound: the recent-query rings are counted exactly and
// every block at the larger of the base and the upgraded storages' sizes
// (every head upgraded from the first block), since which heads upgrade
// depends on the data.
func (c Config) PlanBytes(n int) (int64, error) {
	if err := c.validate(); err != nil {
		return 0, err
	}
	c = c.withDefaults()
	if n <= 0 {
		return 0, nil
	}
	var total int64
	compressed := max(0, n-c.Sinks-c.Window)
	blocks := int64((compressed + c.BlockTokens - 1) / c.BlockTokens)
	for l := range c.Layers {
		k, v := c.storages(l)
		tb := c.tokenBytes(k, v)
		if c.Guard.enabled() {
			tb = max(tb, c.tokenBytes(c.Guard.Keys, c.Guard.Values))
		}
		total += c.layerFixedBytes() + blocks*int64(c.BlockTokens)*tb
		if c.BlockCenter { // each block's drift codes
			d := c.HeadDim
			total += blocks * int64(c.KVHeads) * int64(driftSize(k, k.codeSize(d))+driftSize(v, v.codeSize(d)))
		}
	}
	return total, nil
}

// layerFixedBytes is the fp16 sink and window storage of one layer in the
// steady state.
func (c Config) layerFixedBytes() int64 {
	return int64(c.Sinks+c.Window)*c.fp16TokenBytes() + c.guardRingBytes()
}

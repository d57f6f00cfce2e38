package metal

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/turboquant-go/tq/internal/half"
	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
)

// Tolerances against the CPU path. The kernels sum in another order than
// the CPU's SIMD loops (and Apple's simd_sum in an unspecified one), and
// softmax uses exp, so results agree to float32 rounding of the sums, not
// bit for bit. Measured in the C++ harness over every preset (2026-12-05):
// logits ≤ 3.4e-7 × (row max |logit| + 1), outputs ≤ 1.2e-6 × row max
// |output|. The bounds leave ~6× and ~8× of that for the GPU's orders and
// exp (float32 ulp is 1.2e-7 relative: about 17 and 84 ulps):
//   - logits: |Δ| ≤ 2e-6 × (the row's max |logit| + 1);
//   - attention outputs: |Δ| ≤ 1e-5 × the row's max |output|.
const (
	logitTol  = 2e-6
	attendTol = 1e-5
)

// poolConfig is a small layer that still has sinks, several compressed
// blocks, a window ring that wraps, and g = 4 query heads per KV head.
func poolConfig(t *testing.T, preset string) kvcache.Config {
	t.Helper()
	cfg, err := kvcache.Preset(preset, 2, 2, 8, 64)
	if err != nil {
		t.Fatal(err)
	}
	cfg.BlockTokens = 16
	if cfg.Window > 0 {
		cfg.Window = 24
	}
	return cfg
}

func randVec(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// fill appends the same tokens to both caches in uneven batches, through
// the fp32, fp16 and bf16 entry points.
func fill(t *testing.T, rng *rand.Rand, caches []kvcache.Cache, cfg kvcache.Config, batches []int) {
	t.Helper()
	row := cfg.KVHeads * cfg.HeadDim
	for bi, T := range batches {
		for layer := range cfg.Layers {
			k, v := randVec(rng, T*row), randVec(rng, T*row)
			if cfg.Guard.Budget > 0 {
				// Keys of KV head h scaled by 4^h: logit errors differ
				// by head, so a budget can upgrade some heads only.
				for i := range k {
					k[i] *= float32(int(1) << (2 * (i / cfg.HeadDim % cfg.KVHeads)))
				}
			}
			for _, c := range caches {
				var err error
				switch bi % 3 {
				case 0:
					err = c.Append(layer, k, v)
				case 1:
					err = c.AppendFP16(layer, toBits(k, half.FromFloat32), toBits(v, half.FromFloat32))
				default:
					err = c.AppendBF16(layer, toBits(k, half.BF16FromFloat32), toBits(v, half.BF16FromFloat32))
				}
				if err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func toBits(xs []float32, f func(float32) uint16) []uint16 {
	out := make([]uint16, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// closeRows reports the first row of [rows][width] where got and want
// differ by more than tol × (the row's max |want| + extra).
func closeRows(got, want []float32, width int, tol, extra float64) error {
	for r := 0; r < len(want)/width; r++ {
		var peak float64
		for _, w := range want[r*width : (r+1)*width] {
			if !math.IsInf(float64(w), 0) {
				peak = max(peak, math.Abs(float64(w)))
			}
		}
		for j := r * width; j < (r+1)*width; j++ {
			g, w := float64(got[j]), float64(want[j])
			if math.IsInf(w, 0) && g == w {
				continue
			}
			if d := math.Abs(g - w); !(d <= tol*(peak+extra)) {
				return fmt.Errorf("row %d col %d: %v, want %v (|Δ| %.3g, row peak %.3g)", r, j-r*width, g, w, d, peak)
			}
		}
	}
	return nil
}

// checkAgainstHost compares the device sequence with the CPU one: every
// head's logits (tq_logits) and attention for a single query and a causal
// batch of three, over several split sizes (tq_attend_partial and
// tq_attend_reduce).
func checkAgainstHost(t *testing.T, rng *rand.Rand, p *Pool, s *Sequence, ref *kvcache.Sequence) {
	t.Helper()
	cfg := p.Config()
	n := ref.Len()
	QH, d := cfg.QHeads, cfg.HeadDim
	for layer := range cfg.Layers {
		q := randVec(rng, QH*d)
		got := make([]float32, QH*n)
		if err := s.GroupLogits(layer, q, got); err != nil {
			t.Fatal(err)
		}
		want := make([]float32, QH*n)
		for h := range QH {
			if err := ref.Logits(layer, h, q[h*d:(h+1)*d], want[h*n:(h+1)*n]); err != nil {
				t.Fatal(err)
			}
		}
		if err := closeRows(got, want, n, logitTol, 1); err != nil {
			t.Errorf("layer %d logits: %v", layer, err)
		}
		for _, chunk := range []int{0, 32} {
			p.Chunk = chunk
			for _, T := range []int{1, 3} {
				qs := randVec(rng, T*QH*d)
				out, wantOut := make([]float32, len(qs)), make([]float32, len(qs))
				if err := s.Attend(layer, qs, out); err != nil {
					t.Fatal(err)
				}
				if err := ref.Attend(layer, qs, wantOut); err != nil {
					t.Fatal(err)
				}
				if err := closeRows(out, wantOut, d, attendTol, 0); err != nil {
					t.Errorf("layer %d, %d queries, chunk %d: %v", layer, T, chunk, err)
				}
			}
		}
		p.Chunk = 0
	}
}

// TestPoolMatchesCPU runs every kernel over every fixed-rate preset (and
// extraConfigs) through the Pool: appends in fp32, fp16 and bf16, then logits and attention
// against the CPU path; then truncation, a fork, and a snapshot that
// restores into a CPU pool byte for byte and back into a device pool.
func TestPoolMatchesCPU(t *testing.T) {
	for _, td := range testDevices(t) {
		t.Run(td.name, func(t *testing.T) { testPoolMatchesCPU(t, td.dev) })
	}
}

// extraConfigs cover what the presets do not: Prod keys (the QJL term of
// score_code), correction scalars and fp32 norms, per-layer overrides, no
// centring, and GQA groups of 1 and 16.
var extraConfigs = []struct {
	name string
	edit func(*kvcache.Config)
}{
	{"prod-keys", func(c *kvcache.Config) {
		c.Keys = kvcache.Storage{Kind: kvcache.Quantized, Method: turboquant.Prod, Bits: 4}
	}},
	{"corrected-fp32-norms", func(c *kvcache.Config) {
		c.Keys = kvcache.Storage{Kind: kvcache.Quantized, Method: turboquant.MSE, Bits: 3, Norm: turboquant.FP32, Correction: turboquant.Unbiased}
		c.Values = kvcache.Storage{Kind: kvcache.Quantized, Method: turboquant.MSE, Bits: 3, Correction: turboquant.Renormalize}
	}},
	{"override-layer1", func(c *kvcache.Config) {
		c.Overrides = map[int]kvcache.LayerStorage{1: {
			Keys:   kvcache.Storage{Kind: kvcache.Quantized, Method: turboquant.MSE, Bits: 8},
			Values: kvcache.Storage{Kind: kvcache.Float16}}}
	}},
	{"uncentred", func(c *kvcache.Config) { c.Center = false }},
	{"g1", func(c *kvcache.Config) { c.QHeads = c.KVHeads }},
	{"g16", func(c *kvcache.Config) { c.QHeads = 16 * c.KVHeads }},
}

func testPoolMatchesCPU(t *testing.T, dev *Device) {
	type named struct {
		name string
		cfg  kvcache.Config
	}
	var cases []named
	for _, preset := range slices.Concat(kvcache.PresetNames, kvcache.LadderPresetNames) {
		cases = append(cases, named{preset, poolConfig(t, preset)})
	}
	for _, x := range extraConfigs {
		cfg := poolConfig(t, "tq3")
		x.edit(&cfg)
		cases = append(cases, named{x.name, cfg})
	}
	// Block centring: drift codes on both sides (splits too), and on the
	// value side alone where a layer keeps fp16 keys.
	for _, preset := range []string{"tq3", "k4v3.5", "k8v4", "tq2.5"} {
		cases = append(cases, named{preset + kvcache.BlockCenterSuffix, poolConfig(t, preset+kvcache.BlockCenterSuffix)})
	}
	// Unbiased keys: the correction scalar in part_factor, with fp16 norms.
	cases = append(cases, named{"k4v3.25+uk", poolConfig(t, "k4v3.25+uk")})
	bcOverride := poolConfig(t, "tq3"+kvcache.BlockCenterSuffix)
	bcOverride.Overrides = map[int]kvcache.LayerStorage{1: {Keys: kvcache.Storage{Kind: kvcache.Float16},
		Values: kvcache.Storage{Kind: kvcache.Quantized, Method: turboquant.MSE, Bits: 4}}}
	cases = append(cases, named{"bc-fp16-keys-layer1", bcOverride})
	// The guard presets, on keys that make them upgrade some (layer, KV
	// head)s and not others (see fill), so that blocks of both layouts meet
	// in one layer's table.
	// Two more guards make the upgraded codec's rotation differ from the
	// base's: base codecs with outlier channels, and fp16 upgrades.
	for _, preset := range kvcache.GuardPresetNames {
		cases = append(cases, named{preset, poolConfig(t, preset)})
	}
	outliers, fp16 := poolConfig(t, "tq3-guard"), poolConfig(t, "tq3-guard")
	outliers.Keys, outliers.Values = poolConfig(t, "tq3.5").Keys, poolConfig(t, "tq3.5").Values
	fp16.Guard.Keys, fp16.Guard.Values = kvcache.Storage{Kind: kvcache.Float16}, kvcache.Storage{Kind: kvcache.Float16}
	cases = append(cases, named{"guard-over-outliers", outliers}, named{"guard-to-fp16", fp16})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			p, err := NewPool(dev, cfg, 0)
			if err != nil {
				t.Fatal(err)
			}
			hp, err := kvcache.NewPool(cfg, 0)
			if err != nil {
				t.Fatal(err)
			}
			s, ref := p.NewSequence(), hp.NewSequence()
			defer s.Close()
			defer ref.Close()
			rng := rand.New(rand.NewPCG(7, uint64(len(c.name))))
			fill(t, rng, []kvcache.Cache{s, ref}, cfg, []int{3, 40, 1, 29, 2, 1})
			checkAgainstHost(t, rng, p, s, ref)
			if cfg.Guard.Budget > 0 {
				// The guard measures blocks begun after queries were
				// attended: these upgrade some heads.
				fill(t, rng, []kvcache.Cache{s, ref}, cfg, []int{20, 1, 19})
				checkAgainstHost(t, rng, p, s, ref)
			}

			// Truncate into the compressed region, then grow again.
			for _, c := range []kvcache.Cache{s, ref} {
				if err := c.Truncate(50); err != nil {
					t.Fatal(err)
				}
			}
			fill(t, rng, []kvcache.Cache{s, ref}, cfg, []int{5, 1})
			checkAgainstHost(t, rng, p, s, ref)
			if cfg.Guard.Budget > 0 {
				// Cut block 2, stored before the upgrades with the base
				// layout; it comes back with the upgraded heads' (another
				// size) at the same index, as do the blocks after it.
				for _, c := range []kvcache.Cache{s, ref} {
					if err := c.Truncate(30); err != nil {
						t.Fatal(err)
					}
				}
				fill(t, rng, []kvcache.Cache{s, ref}, cfg, []int{40})
				checkAgainstHost(t, rng, p, s, ref)
			}

			var snap bytes.Buffer
			if _, err := s.WriteTo(&snap); err != nil {
				t.Fatal(err)
			}
			var hsnap bytes.Buffer
			if _, err := ref.WriteTo(&hsnap); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(snap.Bytes(), hsnap.Bytes()) {
				t.Fatal("device pool snapshot differs from the CPU pool's")
			}
			restored, err := p.ReadSequence(bytes.NewReader(snap.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			defer restored.Close()
			fork, err := s.Fork()
			if err != nil {
				t.Fatal(err)
			}
			defer fork.Close()
			fill(t, rng, []kvcache.Cache{fork, restored, ref}, cfg, []int{2})
			checkAgainstHost(t, rng, p, restored, ref)
			checkAgainstHost(t, rng, p, fork, ref)
			if cfg.Guard.Budget > 0 {
				if up := len(s.Stats().Upgrades); up == 0 || up == cfg.Layers*cfg.KVHeads {
					t.Errorf("the guard upgraded %d of %d (layer, KV head)s: the test needs a mix", up, cfg.Layers*cfg.KVHeads)
				}
			}
		})
	}
}

// TestPoolTakesEveryPreset: every name kvcache.Preset knows, and its
// BlockCenter and unbiased-keys variants where kvcache takes them, makes a
// device pool (the configurations TestPoolMatchesCPU runs stand for the
// rest).
func TestPoolTakesEveryPreset(t *testing.T) {
	dev := testDevices(t)[0].dev
	for _, base := range kvcache.AllPresetNames() {
		for _, name := range []string{base, base + kvcache.BlockCenterSuffix, base + kvcache.UnbiasedKeysSuffix} {
			cfg, err := kvcache.Preset(name, 2, 8, 32, 128)
			if err != nil {
				if name == base {
					t.Errorf("%s: %v", name, err)
				}
				continue // e.g. fp16 and the guard have no +bc, splits no +uk
			}
			if _, err := NewPool(dev, cfg, 0); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}

// TestPoolErrors: unsupported configurations and bad calls give sentinel
// errors and leave the sequence usable.
func TestPoolErrors(t *testing.T) {
	dev := testDevices(t)[0].dev
	if _, err := NewPool(dev, kvcache.Config{}, 0); !errors.Is(err, turboquant.ErrConfig) && !errors.Is(err, kvcache.ErrConfig) {
		t.Errorf("empty config: %v", err)
	}
	cfg, err := kvcache.Preset("tq3-guard", 1, 2, 8, 64)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Guard.Keys = kvcache.Storage{Kind: kvcache.Quantized, Method: turboquant.Prod, Bits: 4}
	if _, err := kvcache.NewPool(cfg, 0); err != nil {
		t.Fatalf("the CPU pool takes the guard with Prod keys: %v", err)
	}
	if _, err := NewPool(dev, cfg, 0); !errors.Is(err, ErrUnsupported) {
		t.Errorf("the guard with Prod keys: %v", err)
	}
	cfg = poolConfig(t, "tq3")
	cfg.QHeads = 2 * 17
	if _, err := NewPool(dev, cfg, 0); !errors.Is(err, ErrUnsupported) {
		t.Errorf("17 query heads per KV head: %v", err)
	}
	cfg = poolConfig(t, "tq3")
	cfg.Values = kvcache.Storage{Kind: kvcache.Quantized, Method: turboquant.Prod, Bits: 3}
	if _, err := NewPool(dev, cfg, 0); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Prod values: %v", err)
	}
	p, err := NewPool(dev, poolConfig(t, "tq3"), 0)
	if err != nil {
		t.Fatal(err)
	}
	s := p.NewSequence()
	q := make([]float32, 8*64)
	if err := s.Attend(0, q, make([]float32, len(q))); !errors.Is(err, turboquant.ErrLength) {
		t.Errorf("attend on an empty layer: %v", err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	fill(t, rng, []kvcache.Cache{s}, p.Config(), []int{4})
	if err := s.Attend(5, q, make([]float32, len(q))); !errors.Is(err, turboquant.ErrLength) {
		t.Errorf("layer 5: %v", err)
	}
	if err := s.Attend(0, q[:10], make([]float32, 10)); !errors.Is(err, turboquant.ErrLength) {
		t.Errorf("short query: %v", err)
	}
	q[3] = float32(math.Inf(1))
	if err := s.Attend(0, q, make([]float32, len(q))); !errors.Is(err, turboquant.ErrNonFinite) {
		t.Errorf("Inf query: %v", err)
	}
	q[3] = 0
	if err := s.GroupLogits(0, q, make([]float32, 3)); !errors.Is(err, turboquant.ErrLength) {
		t.Errorf("short logits: %v", err)
	}
	if err := s.Attend(0, q, make([]float32, len(q))); err != nil {
		t.Errorf("sequence unusable after errors: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Attend(0, q, make([]float32, len(q))); !errors.Is(err, kvcache.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// TestOpenWithoutMetal: off macOS, Open reports ErrUnavailable.
func TestOpenWithoutMetal(t *testing.T) {
	dev, err := Open()
	if err == nil {
		dev.Close()
		t.Skip("a Metal device is present; check.sh runs the device tests")
	}
	if !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrMetal) {
		t.Errorf("Open: %v", err)
	}
}

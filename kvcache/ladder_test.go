package kvcache_test

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	. "github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
)

// bitsPerValue is a preset's stored bits per key-or-value element at head
// dim 128 with no window or sinks: the mean of its key and value rates.
func bitsPerValue(t *testing.T, name string) float64 {
	t.Helper()
	cfg, err := Preset(name, 1, 1, 1, 128)
	require.NoError(t, err, name)
	cfg.Window, cfg.Sinks, cfg.BlockTokens = 0, 0, 1
	plan, err := cfg.PlanBytes(1)
	require.NoError(t, err, name)
	return float64(plan*8) / (2 * 128)
}

// TestLadderHasNoGapOverHalfABit: the fixed-rate presets, tuned and ladder
// together, cover 2 to 8 bits per value with no step over half a bit, and
// each ladder preset stores exactly its nominal key and value rates
// (b bits a coordinate plus one fp16 norm a vector).
func TestLadderHasNoGapOverHalfABit(t *testing.T) {
	var bits []float64
	for _, name := range slices.Concat(PresetNames, LadderPresetNames) {
		if name == "fp32" || name == "fp16" {
			continue
		}
		bits = append(bits, bitsPerValue(t, name))
	}
	for _, name := range LadderPresetNames {
		k, v, ok := strings.Cut(strings.TrimPrefix(name, "k"), "v")
		if !ok {
			k = strings.TrimPrefix(name, "tq")
			v = k
		}
		kb, err := strconv.ParseFloat(k, 64)
		require.NoError(t, err, name)
		vb, err := strconv.ParseFloat(v, 64)
		require.NoError(t, err, name)
		assert.InDelta(t, (kb+vb)/2+16.0/128, bitsPerValue(t, name), 1e-12, name)
	}
	slices.Sort(bits)
	assert.LessOrEqual(t, bits[0], 2.125)
	assert.GreaterOrEqual(t, bits[len(bits)-1], 8.0)
	for i := 1; i < len(bits); i++ {
		assert.LessOrEqual(t, bits[i]-bits[i-1], 0.5, "gap between %.3f and %.3f bits", bits[i-1], bits[i])
	}
	for _, bad := range []string{"tq9", "tq1", "k9v4", "k4v2x", "tq 4", "k4v"} {
		_, err := Preset(bad, 1, 1, 1, 128)
		assert.ErrorIs(t, err, ErrConfig, bad)
	}
}

// TestLadderStoresThePlanAndGainsFidelityWithBits appends a prefill and
// decode steps to every ladder preset: memory equals PlanBytes, and the
// attention error falls as the symmetric presets gain bits (tq5 … tq8)
// and each stays under the limit TestCacheMatchesReferenceAttention sets
// for the tuned preset just below it in bits (tq4 0.15, tq3 0.3, tq2.5 0.5).
func TestLadderStoresThePlanAndGainsFidelityWithBits(t *testing.T) {
	const L, H, QH, d, n = 1, 2, 4, 64, 300
	keys, values := kvData(n, H, d, 11)
	queries, _ := kvData(8, QH, d, 12)
	want := refAttention(keys, values, queries, n, 8, H, QH, d, 1/math.Sqrt(d))
	errs := map[string]float64{}
	for _, name := range LadderPresetNames {
		cfg, err := Preset(name, L, H, QH, d)
		require.NoError(t, err)
		cfg.Window = 32
		pool, err := NewPool(cfg, 0)
		require.NoError(t, err)
		seq := pool.NewSequence()
		require.NoError(t, seq.Append(0, keys[:(n-8)*H*d], values[:(n-8)*H*d]))
		for s := n - 8; s < n; s++ {
			require.NoError(t, seq.Append(0, keys[s*H*d:(s+1)*H*d], values[s*H*d:(s+1)*H*d]))
		}
		plan, err := cfg.PlanBytes(n)
		require.NoError(t, err)
		assert.Equal(t, plan, pool.Used(), name)
		out := make([]float32, len(queries))
		require.NoError(t, seq.Attend(0, queries, out))
		errs[name] = relErr(out, want)
		t.Logf("%-5s attention output relative error %.5f", name, errs[name])
		limit := map[string]float64{"k4v3.5": 0.3, "k4v3": 0.3, "k3v4": 0.3, "k3.5v3": 0.3, "k3v3.5": 0.3, "k4v3.25": 0.3,
			"k3v3.25": 0.3, "k2.5v3": 0.5, "k3v2.25": 0.5, "k3v2": 0.5}[name]
		if limit == 0 {
			limit = 0.15
		}
		assert.Less(t, errs[name], limit, name)
		require.NoError(t, seq.Close())
	}
	for _, pair := range [][2]string{{"tq5", "tq6"}, {"tq6", "tq7"}, {"tq7", "tq8"}, {"k5v4", "tq5"}, {"k3v2", "k3v4"},
		{"k4v3", "k4v3.5"}, {"k4v3.5", "k4v4.5"}, {"k5v4", "k5v4.5"}, {"k3v2", "k3.5v3"},
		{"k3v2", "k2.5v3"}} { // a split's extra half bit pays
		assert.Less(t, errs[pair[1]], errs[pair[0]], "%s should beat %s", pair[1], pair[0])
	}
}

// TestUnbiasedKeyPresetsFillTheBaselineBudgets: the +uk presets spend exactly
// the int-N and KIVI-like budgets at head dim 64 (the correction scalar is
// counted), their keys carry the correction, and "+uk" is refused where
// the keys are not whole-rate MSE codes.
func TestUnbiasedKeyPresetsFillTheBaselineBudgets(t *testing.T) {
	for i, name := range UnbiasedKeyPresetNames {
		cfg, err := Preset(name, 1, 1, 1, 64)
		require.NoError(t, err, name)
		assert.Equal(t, turboquant.Unbiased, cfg.Keys.Correction, name)
		assert.Equal(t, 5-0.5*float64(i), cfg.BitsPerValue(0), name)
	}
	for _, bad := range []string{"fp16+uk", "tq3.5+uk", "k4.5v3+uk", "k4v3.5+uk+uk", "tq3+bc+bc"} {
		_, err := Preset(bad, 1, 1, 1, 64)
		assert.ErrorIs(t, err, ErrConfig, bad)
	}
	cfg, err := Preset("k5v4+uk+bc", 1, 1, 1, 64)
	require.NoError(t, err)
	assert.True(t, cfg.BlockCenter)
	assert.Equal(t, turboquant.Unbiased, cfg.Keys.Correction)
}

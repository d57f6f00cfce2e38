package kvcache_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	. "github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/validate"
)

// TestCacheFidelityOnRealKV runs every preset, plain and with Center, on the
// real keys, values and queries captured from Universal Sentence Encoder
// lite (validate's KJV fixture), with no fp16 window or sinks so every token
// is compressed, and compares with exact float64 attention: mean cosine of
// the attention probability rows, top-1 agreement, and the relative error of
// the output of the query that sees every token. Each chunk is one
// sequence, so its means are estimated from the chunk itself.
func TestCacheFidelityOnRealKV(t *testing.T) {
	kv, err := validate.LoadEmbeddedRealKV()
	require.NoError(t, err)
	// Measured on the committed fixture (layer: 1−cosine, top-1), plain and
	// with Center (k4v2 scores like tq4: same keys):
	//   layer 0 (d=64)   plain                    centred
	//     k8v4   1.0e-4 0.987                     4.4e-5 0.991
	//     tq4    0.018  0.862                     0.0082 0.910
	//     tq3.5  0.024  0.829                     0.015  0.869
	//     tq3    0.052  0.776                     0.027  0.821
	//     tq2.5  0.073  0.716                     0.046  0.776
	//     tq2    0.120  0.648                     0.073  0.708
	//   layer 1 (d=128)
	//     k8v4   2.5e-5 0.992                     2.2e-5 0.994
	//     tq4    0.0053 0.884                     0.0041 0.901
	//     tq3.5  0.0096 0.845                     0.0078 0.861
	//     tq3    0.019  0.789                     0.015  0.789
	//     tq2.5  0.035  0.731                     0.031  0.739
	//     tq2    0.062  0.645                     0.046  0.671
	// The floors allow 1.5× the measured 1−cosine and 0.05 less top-1.
	type m2 = [2]float64
	measured := map[bool]map[int]map[string]m2{
		false: {
			0: {"fp16": {0, 1}, "k8v4": {1.0e-4, 0.987}, "tq4": {0.018, 0.862}, "tq3.5": {0.024, 0.829},
				"tq3": {0.052, 0.776}, "k4v2": {0.018, 0.862}, "tq2.5": {0.073, 0.716}, "tq2": {0.120, 0.648}},
			1: {"fp16": {0, 1}, "k8v4": {2.5e-5, 0.992}, "tq4": {0.0053, 0.884}, "tq3.5": {0.0096, 0.845},
				"tq3": {0.019, 0.789}, "k4v2": {0.0053, 0.884}, "tq2.5": {0.035, 0.731}, "tq2": {0.062, 0.645}},
		},
		true: {
			0: {"fp16": {0, 1}, "k8v4": {4.4e-5, 0.991}, "tq4": {0.0082, 0.910}, "tq3.5": {0.015, 0.869},
				"tq3": {0.027, 0.821}, "k4v2": {0.0082, 0.910}, "tq2.5": {0.046, 0.776}, "tq2": {0.073, 0.708}},
			1: {"fp16": {0, 1}, "k8v4": {2.2e-5, 0.994}, "tq4": {0.0041, 0.901}, "tq3.5": {0.0078, 0.861},
				"tq3": {0.015, 0.789}, "k4v2": {0.0041, 0.901}, "tq2.5": {0.031, 0.739}, "tq2": {0.046, 0.671}},
		},
	}
	presets := PresetNames[1:]
	if testing.Short() {
		presets = []string{"fp16", "tq3"}
	}
	for _, center := range []bool{false, true} {
		for _, layer := range kv.LayerIndices() {
			for _, name := range presets {
				f, err := validate.MeasureRealKV(kv, layer, name, func(c *Config) {
					c.Window, c.Sinks, c.Center = 0, 0, center
				})
				require.NoError(t, err)
				cos, t1 := f.AttnCosine, f.Top1
				t.Logf("center=%-5v layer %d %-6s attention cosine %.6f (worst %.4f)  top-1 %.3f  top-5 %.3f  KLD %.2e  output error %.4f",
					center, layer, name, cos, f.AttnCosineMin, t1, f.Top5, f.KLD, f.OutRelErr)
				m := measured[center][layer][name]
				assert.Less(t, 1-cos, 1.5*m[0]+1e-6, "center=%v layer %d %s: 1 − attention cosine", center, layer, name)
				assert.Greater(t, t1, m[1]-0.05, "center=%v layer %d %s: top-1 agreement", center, layer, name)
				if center && name != "fp16" {
					plain := measured[false][layer][name]
					assert.Less(t, 1-cos, plain[0], "center=%v layer %d %s: centering must beat the plain code", center, layer, name)
				}
			}
		}
	}
}

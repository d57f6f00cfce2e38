package turboquant_test

import (
	"errors"
	"io/fs"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	. "github.com/turboquant-go/tq/turboquant"
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
	kv, err := validate.LoadRealKVFile("../validate/" + validate.RealKVFixture)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("real K/V fixture missing: regenerate it with tools/capturekv (see validate/testdata/README.md)")
	}
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
				var cosSum, top1, rows, outErr float64
				var outs int
				for _, chunk := range kv.Chunks {
					var l validate.RealKVLayer
					for _, cl := range chunk.Layers {
						if cl.Layer == layer {
							l = cl
						}
					}
					H, T, d := l.Heads, l.Tokens, l.HeadDim
					cfg, err := Preset(name, 1, H, H, d)
					require.NoError(t, err)
					cfg.Window, cfg.Sinks = 0, 0
					cfg.Center = center
					pool, err := NewPool(cfg, 0)
					require.NoError(t, err)
					seq := pool.NewSequence()
					keys, values := make([]float32, T*H*d), make([]float32, T*H*d)
					for h := range H {
						for tok := range T {
							copy(keys[(tok*H+h)*d:], l.K[h][tok])
							copy(values[(tok*H+h)*d:], l.V[h][tok])
						}
					}
					require.NoError(t, seq.Append(0, keys, values))
					logits := make([]float32, T)
					scale := 1 / math.Sqrt(float64(d))
					for h := range H {
						for qi := range T {
							require.NoError(t, seq.Logits(0, h, l.Q[h][qi], logits))
							ref := make([]float64, T)
							got := make([]float64, T)
							for k := range T {
								ref[k] = validate.Dot(l.Q[h][qi], l.K[h][k]) * scale
								got[k] = float64(logits[k])
							}
							pr, pg := softmax(ref), softmax(got)
							cosSum += cosine(pr, pg)
							if argmax(pr) == argmax(pg) {
								top1++
							}
							rows++
						}
					}
					// The last position's query sees every token under the causal mask.
					q := make([]float32, H*d)
					for h := range H {
						copy(q[h*d:], l.Q[h][T-1])
					}
					out := make([]float32, H*d)
					require.NoError(t, seq.Attend(0, q, out))
					want := refAttention(keys, values, q, T, 1, H, H, d, scale)
					outErr += relErr(out, want)
					outs++
					require.NoError(t, seq.Close())
				}
				cos, t1 := cosSum/rows, top1/rows
				t.Logf("center=%-5v layer %d %-6s attention cosine %.6f  top-1 %.3f  output error %.4f", center, layer, name, cos, t1, outErr/float64(outs))
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

func softmax(x []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, v)
	}
	out := make([]float64, len(x))
	var s float64
	for i, v := range x {
		out[i] = math.Exp(v - m)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

func cosine(a, b []float64) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += a[i] * b[i]
		aa += a[i] * a[i]
		bb += b[i] * b[i]
	}
	return ab / math.Sqrt(aa*bb)
}

func argmax(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

package kvcache_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/turboquant-go/tq/internal/simd"
	. "github.com/turboquant-go/tq/kvcache"
)

// TestIntScoresAddLittleToTheCodesError runs the 3- and 4-bit presets and
// k8v4 with and without IntScores on the same tokens, against exact fp32
// attention: integer scores may raise the logits' RMS error by at most 3%
// (2.5× for k8v4's 8-bit keys) and the outputs' by at most 6% (measured:
// at most 1.4%, ×2.3 and 4%). simd's tests
// hold each score to its stated bound; this one shows what the bound
// means for attention.
func TestIntScoresAddLittleToTheCodesError(t *testing.T) {
	if !simd.NewCodebook(make([]float32, 8), 3).Q8Kernels(64) {
		t.Skipf("no integer code kernels at level %v: IntScores scores in float here", simd.Active())
	}
	const L, n, T = 1, 400, 4
	for _, d := range []int{64, 128} {
		for _, heads := range [][2]int{{2, 8}, {1, 5}, {2, 2}} {
			H, QH := heads[0], heads[1]
			for _, name := range []string{"tq4", "tq3.5", "tq3", "k4v2", "k8v4"} {
				t.Run(fmt.Sprintf("%s/d=%d/H=%d/QH=%d", name, d, H, QH), func(t *testing.T) {
					if name == "k8v4" && !simd.NewCodebook(make([]float32, 256), 8).Q8Kernels(d) {
						t.Skipf("no integer kernels for 8-bit keys at level %v (they need AVX-512 VBMI and VNNI): k8v4 scores in float here", simd.Active())
					}
					keys, values := kvData(n, H, d, 31)
					queries, _ := kvData(T, QH, d, 32)
					run := func(ints bool) (out, logits []float32) {
						cfg, err := Preset(name, L, H, QH, d)
						require.NoError(t, err)
						cfg.Window, cfg.Sinks, cfg.BlockTokens, cfg.IntScores = 16, 0, 32, ints
						pool, err := NewPool(cfg, 0)
						require.NoError(t, err)
						seq := pool.NewSequence()
						require.NoError(t, seq.Append(0, keys, values))
						out = make([]float32, len(queries))
						require.NoError(t, seq.Attend(0, queries, out))
						for h := range QH {
							l := make([]float32, n)
							require.NoError(t, seq.Logits(0, h, queries[(T-1)*QH*d+h*d:][:d], l))
							logits = append(logits, l...)
						}
						return out, logits
					}
					outF, logF := run(false)
					outI, logI := run(true)
					scale := 1 / math.Sqrt(float64(d))
					var codeErr, intErr, bothErr float64 // squared logit errors
					for h := range QH {
						q := queries[(T-1)*QH*d+h*d:][:d]
						kh := h / (QH / H)
						for tk := range n {
							var exact float64
							for j := range d {
								exact += float64(q[j]) * float64(keys[(tk*H+kh)*d+j])
							}
							f, i := float64(logF[h*n+tk]), float64(logI[h*n+tk])
							codeErr += (f - exact*scale) * (f - exact*scale)
							intErr += (i - f) * (i - f)
							bothErr += (i - exact*scale) * (i - exact*scale)
						}
					}
					want := refAttention(keys, values, queries, n, T, H, QH, d, scale)
					outCode, outBoth := relErr(outF, want), relErr(outI, want)
					logitGrowth, outGrowth := math.Sqrt(bothErr/codeErr), outBoth/outCode
					t.Logf("logits: int change %.3f of the codes' error, error ×%.4f; outputs: error %.4f → %.4f (×%.4f)",
						math.Sqrt(intErr/codeErr), logitGrowth, outCode, outBoth, outGrowth)
					require.Greater(t, intErr, 0.0, "IntScores changed no logit: the integer path did not run")
					maxGrowth := 1.03
					if name == "k8v4" {
						// 8-bit keys err as little as the int8 query's
						// rounding: measured ×1.8–2.3.
						maxGrowth = 2.5
					}
					require.Less(t, logitGrowth, maxGrowth, "logit error (RMS against exact fp32) with integer scores, over the float scores'")
					require.Less(t, outGrowth, 1.06, "output error against exact fp32 attention with integer scores, over the float scores'")
				})
			}
		}
	}
}

// TestIntValuesAddLittleToTheCodesError is the same for IntValues: the
// outputs' error against exact fp32 attention may grow by at most 3%.
func TestIntValuesAddLittleToTheCodesError(t *testing.T) {
	if !simd.NewCodebook(make([]float32, 8), 3).ValuesQ8Kernels(64) {
		t.Skipf("no integer value kernels at level %v (they need AVX-512 VBMI and VNNI): IntValues sums in float here", simd.Active())
	}
	const L, n, T = 1, 400, 4
	for _, d := range []int{64, 128} {
		for _, heads := range [][2]int{{2, 8}, {1, 5}, {2, 2}} {
			H, QH := heads[0], heads[1]
			for _, name := range []string{"tq4", "tq3", "k4v3", "tq3+bc"} {
				t.Run(fmt.Sprintf("%s/d=%d/H=%d/QH=%d", name, d, H, QH), func(t *testing.T) {
					keys, values := kvData(n, H, d, 33)
					queries, _ := kvData(T, QH, d, 34)
					run := func(ints bool) []float32 {
						cfg, err := Preset(name, L, H, QH, d)
						require.NoError(t, err)
						cfg.Window, cfg.Sinks, cfg.BlockTokens, cfg.IntValues = 16, 0, 64, ints
						pool, err := NewPool(cfg, 0)
						require.NoError(t, err)
						seq := pool.NewSequence()
						require.NoError(t, seq.Append(0, keys, values))
						out := make([]float32, len(queries))
						require.NoError(t, seq.Attend(0, queries, out))
						return out
					}
					outF, outI := run(false), run(true)
					want := refAttention(keys, values, queries, n, T, H, QH, d, 1/math.Sqrt(float64(d)))
					change, outCode, outBoth := relErr(outI, outF), relErr(outF, want), relErr(outI, want)
					t.Logf("outputs: int change %.4f; error %.4f → %.4f (×%.4f)", change, outCode, outBoth, outBoth/outCode)
					require.Greater(t, change, 0.0, "IntValues changed no output: the integer path did not run")
					require.Less(t, outBoth/outCode, 1.03, "output error against exact fp32 attention with integer sums, over the float sums'")
				})
			}
		}
	}
}

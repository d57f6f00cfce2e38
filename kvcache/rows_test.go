package kvcache_test

import (
	"fmt"
	"runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/turboquant-go/tq/internal/simd"
	. "github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
)

// TestRowPathMatchesPerCodePath runs every preset, with and without
// centering, for MHA and GQA, through the row path (at every kernel level
// this machine has, the generic twins included) and the per-code path, and
// requires the same attention outputs and logits up to float rounding.
func TestRowPathMatchesPerCodePath(t *testing.T) {
	const L, d, n, T = 1, 64, 300, 3
	// Chunks of two blocks: the streaming softmax rescales whenever a
	// later chunk holds a larger logit.
	defer SetAttendChunk(32)()
	levels := []simd.Level{simd.Generic}
	for _, l := range []simd.Level{simd.AVX2, simd.NEON} {
		if simd.Available(l) {
			levels = append(levels, l)
		}
	}
	for _, heads := range [][2]int{{2, 2}, {2, 8}, {1, 5}} {
		H, QH := heads[0], heads[1]
		// Splits: two index runs, one norm. Corrections: unbiased 4- and
		// 8-bit keys (fused kernels, decoded rows), and renormalised values.
		for _, name := range append(slices.Clone(PresetNames), "k4v3.5", "k5v4.5", "k4v3.25+uk", "k8v4+uk", "corrected-values") {
			for _, center := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/H=%d/QH=%d/center=%v", name, H, QH, center), func(t *testing.T) {
					preset := name
					if name == "corrected-values" {
						preset = "tq3+uk"
					}
					cfg, err := Preset(preset, L, H, QH, d)
					require.NoError(t, err)
					if name == "corrected-values" {
						cfg.Values.Correction = turboquant.Renormalize
					}
					cfg.Window, cfg.BlockTokens, cfg.Center = 40, 16, center
					pool, err := NewPool(cfg, 0)
					require.NoError(t, err)
					seq := pool.NewSequence()
					keys, values := kvData(n, H, d, 7)
					queries, _ := kvData(T, QH, d, 8)
					// A prefill, then single-token steps so the window ring wraps.
					require.NoError(t, seq.Append(0, keys[:(n-50)*H*d], values[:(n-50)*H*d]))
					for s := n - 50; s < n; s++ {
						require.NoError(t, seq.Append(0, keys[s*H*d:(s+1)*H*d], values[s*H*d:(s+1)*H*d]))
					}
					restore := SetRowKernels(false)
					want := make([]float32, len(queries))
					require.NoError(t, seq.Attend(0, queries, want))
					wantLogits := make([]float32, n)
					require.NoError(t, seq.Logits(0, QH-1, queries[:d], wantLogits))
					restore()
					defer SetRowKernels(true)()
					for _, l := range levels {
						back, err := simd.Use(l)
						require.NoError(t, err)
						got := make([]float32, len(queries))
						require.NoError(t, seq.Attend(0, queries, got))
						gotLogits := make([]float32, n)
						require.NoError(t, seq.Logits(0, QH-1, queries[:d], gotLogits))
						back()
						require.Less(t, relErr(got, want), 2e-5, "%v: attention outputs", l)
						require.Less(t, relErr(gotLogits, wantLogits), 2e-6, "%v: logits", l)
					}
				})
			}
		}
	}
}

// TestSplitContextMatchesSerial: with fewer KV heads than workers, Attend
// splits the context at block boundaries and merges the partial softmax
// states; the outputs must equal the one-goroutine path up to rounding.
func TestSplitContextMatchesSerial(t *testing.T) {
	const d, n, T = 64, 300, 2
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	for _, heads := range [][2]int{{1, 1}, {1, 4}, {2, 8}} {
		H, QH := heads[0], heads[1]
		for _, name := range []string{"fp32", "fp16", "k8v4", "tq4", "tq3", "tq2.5", "tq3-guard"} {
			t.Run(fmt.Sprintf("%s/H=%d/QH=%d", name, H, QH), func(t *testing.T) {
				cfg, err := Preset(name, 1, H, QH, d)
				require.NoError(t, err)
				cfg.Window, cfg.BlockTokens = 40, 16
				if cfg.Guard.Budget != 0 {
					cfg.Guard.Budget = 1e-6 // every head upgrades once it has seen queries
				}
				pool, err := NewPool(cfg, 0)
				require.NoError(t, err)
				seq := pool.NewSequence()
				keys, values := kvData(n, H, d, 11)
				queries, _ := kvData(T, QH, d, 12)
				require.NoError(t, seq.Append(0, keys[:(n-30)*H*d], values[:(n-30)*H*d]))
				scratch := make([]float32, QH*d)
				for s := n - 30; s < n; s++ {
					require.NoError(t, seq.Append(0, keys[s*H*d:(s+1)*H*d], values[s*H*d:(s+1)*H*d]))
					require.NoError(t, seq.Attend(0, queries[:QH*d], scratch)) // guard: recent queries
				}
				if cfg.Guard.Budget != 0 {
					require.NotEmpty(t, seq.Stats().Upgrades, "the test needs upgraded blocks")
				}
				restore := SetParallelAttendMin(1 << 62)
				want := make([]float32, len(queries))
				require.NoError(t, seq.Attend(0, queries, want))
				restore()
				defer SetParallelAttendMin(0)()
				got := make([]float32, len(queries))
				require.NoError(t, seq.Attend(0, queries, got))
				require.Less(t, relErr(got, want), 1e-5)
				require.NotEqual(t, 0.0, relErr(want, make([]float32, len(want))))
			})
		}
	}
}

package kvcache_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/turboquant-go/tq/internal/rng"
	. "github.com/turboquant-go/tq/kvcache"
)

// driftingKV returns keys and values ([T][H][d]) whose channels drift
// slowly and far (a random walk of large steps every 16 tokens) around a
// small per-token noise: the data causal block centring is for.
func driftingKV(T, H, d int, seed uint64) (keys, values []float32) {
	r := rng.New(seed)
	keys, values = make([]float32, T*H*d), make([]float32, T*H*d)
	offK, offV := make([]float64, H*d), make([]float64, H*d)
	for t := range T {
		if t%16 == 0 {
			for i := range offK {
				offK[i] += 2 * r.Norm()
				offV[i] += 2 * r.Norm()
			}
		}
		for i := range H * d {
			keys[t*H*d+i] = float32(offK[i] + 0.3*r.Norm())
			values[t*H*d+i] = float32(offV[i] + 0.3*r.Norm())
		}
	}
	return keys, values
}

func blockCenterConfig(t *testing.T, preset string, H, QH, d int, on bool) Config {
	cfg, err := Preset(preset, 1, H, QH, d)
	require.NoError(t, err)
	cfg.Window, cfg.Sinks, cfg.BlockTokens, cfg.BlockCenter = 8, 2, 16, on
	return cfg
}

// fill appends a prefill of n/2 tokens and then the rest one at a time.
func fill(t *testing.T, s *Sequence, keys, values []float32, n, row int) {
	require.NoError(t, s.Append(0, keys[:n/2*row], values[:n/2*row]))
	for i := n / 2; i < n; i++ {
		require.NoError(t, s.Append(0, keys[i*row:(i+1)*row], values[i*row:(i+1)*row]))
	}
}

// TestBlockCenterFollowsDrift: on drifting data the drift codes cut the
// attention error by well over a third at the same code widths, the memory is
// exactly PlanBytes (drift codes included), and the row and per-code
// attention paths agree.
func TestBlockCenterFollowsDrift(t *testing.T) {
	const H, QH, d, n, T = 2, 8, 64, 200, 3
	row := H * d
	keys, values := driftingKV(n, H, d, 5)
	queries, _ := kvData(T, QH, d, 6)
	for i := range queries {
		queries[i] *= 0.2 // attention spread over many tokens, so values matter
	}
	want := refAttention(keys, values, queries, n, T, H, QH, d, 1/math.Sqrt(d))
	for _, preset := range []string{"tq3", "k4v3.5", "tq3.5"} {
		errs := map[bool]float64{}
		for _, on := range []bool{false, true} {
			cfg := blockCenterConfig(t, preset, H, QH, d, on)
			pool, err := NewPool(cfg, 0)
			require.NoError(t, err)
			s := pool.NewSequence()
			fill(t, s, keys, values, n, row)
			plan, err := cfg.PlanBytes(n)
			require.NoError(t, err)
			assert.Equal(t, plan, pool.Used(), "%s block centring %v", preset, on)

			out := make([]float32, len(queries))
			require.NoError(t, s.Attend(0, queries, out))
			errs[on] = relErr(out, want)
			restore := SetRowKernels(false)
			perCode := make([]float32, len(queries))
			require.NoError(t, s.Attend(0, queries, perCode))
			logitsRows, logitsCodes := make([]float32, n), make([]float32, n)
			require.NoError(t, s.Logits(0, QH-1, queries[(T-1)*QH*d+(QH-1)*d:][:d], logitsCodes))
			restore()
			require.NoError(t, s.Logits(0, QH-1, queries[(T-1)*QH*d+(QH-1)*d:][:d], logitsRows))
			assert.Less(t, relErr(out, perCode), 2e-5, "%s: row and per-code attention", preset)
			assert.Less(t, relErr(logitsRows, logitsCodes), 2e-6, "%s: row and per-code logits", preset)
			require.NoError(t, s.Close())
		}
		t.Logf("%-6s attention error on drifting data: %.4f prefill-mean centring, %.4f block centring", preset, errs[false], errs[true])
		assert.Less(t, errs[true], 0.6*errs[false], preset)
	}
}

// TestBlockCenterPathsAgreeWithoutWindow: with every token compressed the
// walk ends inside a block, whose drift the per-code path must still add.
func TestBlockCenterPathsAgreeWithoutWindow(t *testing.T) {
	const H, QH, d, n = 2, 4, 32, 90
	keys, values := driftingKV(n, H, d, 3)
	queries, _ := kvData(2, QH, d, 4)
	cfg := blockCenterConfig(t, "tq3", H, QH, d, true)
	cfg.Window, cfg.Sinks = 0, 0
	pool, err := NewPool(cfg, 0)
	require.NoError(t, err)
	s := pool.NewSequence()
	fill(t, s, keys, values, n, H*d)
	rows := make([]float32, len(queries))
	require.NoError(t, s.Attend(0, queries, rows))
	defer SetRowKernels(false)()
	perCode := make([]float32, len(queries))
	require.NoError(t, s.Attend(0, queries, perCode))
	assert.Less(t, relErr(rows, perCode), 2e-5)
}

// TestBlockCenterIsCausalAndDeterministic: a block's drift depends only on
// the blocks before it, so truncating (inside a block or to its start) and
// appending again, forking a prefix, or batching the appends differently
// all store the bytes of a sequence that took the same tokens directly.
func TestBlockCenterIsCausalAndDeterministic(t *testing.T) {
	const H, QH, d, n = 2, 4, 32, 120
	row := H * d
	keys, values := driftingKV(n, H, d, 9)
	cfg := blockCenterConfig(t, "k4v3.5", H, QH, d, true)
	pool, err := NewPool(cfg, 0)
	require.NoError(t, err)
	direct := pool.NewSequence()
	fill(t, direct, keys, values, n, row)
	want := snapWrite(t, direct)

	for _, cut := range []int{n - 5, 2 + 8 + 4*16, 2 + 8 + 4*16 + 3} { // inside a block, at a block's start, just past it
		s := pool.NewSequence()
		fill(t, s, keys, values, n, row)
		require.NoError(t, s.Truncate(cut))
		for i := cut; i < n; i++ {
			require.NoError(t, s.Append(0, keys[i*row:(i+1)*row], values[i*row:(i+1)*row]))
		}
		assert.True(t, bytes.Equal(want, snapWrite(t, s)), "truncated to %d and appended again", cut)

		f, err := direct.ForkPrefix(cut)
		require.NoError(t, err)
		for i := cut; i < n; i++ {
			require.NoError(t, f.Append(0, keys[i*row:(i+1)*row], values[i*row:(i+1)*row]))
		}
		assert.True(t, bytes.Equal(want, snapWrite(t, f)), "prefix fork at %d", cut)
	}

	// Blocks opened and centred within one append (tokens 30–90 in one
	// batch) and one token at a time store the same codes (the first
	// append, which Center's means come from, is the same 30 tokens).
	batched, single := pool.NewSequence(), pool.NewSequence()
	for _, s := range []*Sequence{batched, single} {
		require.NoError(t, s.Append(0, keys[:30*row], values[:30*row]))
	}
	require.NoError(t, batched.Append(0, keys[30*row:90*row], values[30*row:90*row]))
	for i := 30; i < 90; i++ {
		require.NoError(t, single.Append(0, keys[i*row:(i+1)*row], values[i*row:(i+1)*row]))
	}
	// (Snapshots differ in the layer's decoded flag, so compare every output.)
	assert.Equal(t, snapOutputs(t, cfg, single), snapOutputs(t, cfg, batched), "batched and single appends")
}

// TestBlockCenterPresetSuffix: "+bc" turns block centring on for a
// compressed preset, and the drift codes count in its bits per value.
func TestBlockCenterPresetSuffix(t *testing.T) {
	cfg, err := Preset("k5v4.25+bc", 4, 1, 2, 64)
	require.NoError(t, err)
	assert.True(t, cfg.BlockCenter)
	// Keys 5.25 and values 4.5 bits at d=64, each ×(1 + 1/64) for a drift code per 64-token block.
	assert.InDelta(t, (5.25+4.5)/2*65/64, cfg.BitsPerValue(0), 1e-12)
	plain, err := Preset("k5v4.25", 4, 1, 2, 64)
	require.NoError(t, err)
	assert.False(t, plain.BlockCenter)
	assert.InDelta(t, (5.25+4.5)/2, plain.BitsPerValue(0), 1e-12)
	for _, bad := range []string{"fp16+bc", "tq3-guard+bc", "tq3+bc+bc", "+bc"} {
		_, err := Preset(bad, 1, 1, 1, 64)
		assert.ErrorIs(t, err, ErrConfig, bad)
	}
}

func TestBlockCenterRefusals(t *testing.T) {
	cfg, err := Preset("tq3-guard", 1, 2, 4, 32)
	require.NoError(t, err)
	cfg.BlockCenter = true
	_, err = NewPool(cfg, 0)
	assert.ErrorIs(t, err, ErrConfig)

	pool, err := NewPool(blockCenterConfig(t, "tq3", 2, 4, 32, true), 0)
	require.NoError(t, err)
	s := pool.NewSequence()
	keys, values := driftingKV(40, 2, 32, 1)
	require.NoError(t, s.Append(0, keys, values))
	err = s.ViewLayer(0, func(LayerView) {})
	assert.True(t, errors.Is(err, ErrConfig), fmt.Sprint(err))
}

package kvcache_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
)

// viewLogits scores query y of query head qh against every compressed
// token of a layer from its kvcache.LayerView alone, as BlockLayout documents it:
// a token decodes to its code (of the guard's codec where its head is
// upgraded), plus its block's drift code, plus the side's mean.
func viewLogits(t *testing.T, v kvcache.LayerView, cfg kvcache.Config, qh int, y []float32) []float32 {
	t.Helper()
	d, B := cfg.HeadDim, cfg.BlockTokens
	h := qh / (cfg.QHeads / cfg.KVHeads)
	x, drift := make([]float32, d), make([]float32, d)
	decode := func(q *turboquant.Quantizer, dst []float32, code []byte) {
		require.NotNil(t, q, "a passthrough key storage (not covered by this test)")
		require.NoError(t, q.Decode(dst, code))
	}
	out := make([]float32, v.Compressed)
	for c := range out {
		bi, j := c/B, c%B
		lay, data := v.Layouts[bi], v.Blocks[bi]
		q, size := v.Keys[h], v.KeyCodeSize
		if lay.Upgraded != nil && lay.Upgraded[h] {
			q, size = v.UpKeys[h], v.UpKeyCodeSize
		}
		at := lay.KeyOffsets[h] + j*size
		decode(q, x, data[at:at+size])
		clear(drift)
		if lay.KeyDrift != nil {
			decode(v.Keys[h], drift, data[lay.KeyDrift[h]:lay.KeyDrift[h]+v.KeyCodeSize])
		}
		var s float64
		for i := range d {
			k := float64(x[i]) + float64(drift[i])
			if mu := v.KeyMeans[h]; mu != nil {
				k += float64(mu[i])
			}
			s += float64(y[i]) * k
		}
		out[c] = float32(s) * cfg.Scale
	}
	return out
}

// checkViewLogits compares viewLogits with the sequence's own logits for
// every query head of layer 0 (cfg: the pool's, defaults filled in).
func checkViewLogits(t *testing.T, s *kvcache.Sequence, cfg kvcache.Config, seed uint64) kvcache.LayerView {
	t.Helper()
	var v kvcache.LayerView
	queries, _ := kvData(1, cfg.QHeads, cfg.HeadDim, seed)
	d := cfg.HeadDim
	require.NoError(t, s.ViewLayerBlocks(0, func(lv kvcache.LayerView) {
		v = lv
		require.Len(t, v.Layouts, len(v.Blocks))
		n := v.Sinks + v.Compressed + v.Window
		for qh := range cfg.QHeads {
			y := queries[qh*d : (qh+1)*d]
			want := make([]float32, n)
			require.NoError(t, s.Logits(0, qh, y, want))
			got := viewLogits(t, v, cfg, qh, y)
			for c, g := range got {
				w := want[v.Sinks+c]
				require.InDelta(t, w, g, 1e-4*(math.Abs(float64(w))+1), "query head %d, compressed token %d", qh, c)
			}
		}
	}))
	return v
}

// TestViewLayerBlocksGuard: with upgraded heads, the view marks exactly the
// upgraded (block, head)s, hands out the guard's quantizers and sizes, and
// a backend that follows it gets the CPU's logits; ViewLayer still refuses.
func TestViewLayerBlocksGuard(t *testing.T) {
	const H, QH, d, n = 3, 6, 64, 100
	pool := snapPool(t, guardConfig(t, 1, H, QH, d, 0.3), 0)
	cfg := pool.Config()
	s := pool.NewSequence()
	guardRun(t, cfg, s, 0, 40, n, 1)
	require.NotEmpty(t, s.Stats().Upgrades)
	v := checkViewLogits(t, s, cfg, 5)
	assert.Equal(t, cfg.Guard.Keys, v.UpKeyStorage)
	assert.Equal(t, cfg.Guard.Values, v.UpValueStorage)
	assert.Equal(t, int(cfg.Guard.Keys.BitsPerValue(d)*d/8), v.UpKeyCodeSize)
	assert.Len(t, v.UpKeys, H)
	upgraded := 0
	for _, lay := range v.Layouts {
		for h := range H {
			if lay.Upgraded != nil && lay.Upgraded[h] {
				upgraded++
				assert.Equal(t, H-1, h, "only the outlier head upgrades")
			}
		}
	}
	assert.Equal(t, len(v.Layouts), upgraded, "every block of the outlier head")
	assert.ErrorIs(t, s.ViewLayer(0, func(kvcache.LayerView) {}), kvcache.ErrConfig)
}

// TestViewLayerBlocksDrift: with BlockCenter, every block with tokens has
// drift codes for both quantized sides, and decoding code + drift + μ from
// the view gives the CPU's logits.
func TestViewLayerBlocksDrift(t *testing.T) {
	pool := snapPool(t, blockCenterConfig(t, "tq3", 2, 4, 32, true), 0)
	cfg := pool.Config()
	s := pool.NewSequence()
	keys, values := driftingKV(100, 2, 32, 3)
	fill(t, s, keys, values, 100, 2*32)
	v := checkViewLogits(t, s, cfg, 6)
	require.NotEmpty(t, v.Layouts)
	for _, lay := range v.Layouts {
		assert.Len(t, lay.KeyDrift, 2)
		assert.Len(t, lay.ValueDrift, 2)
		assert.Nil(t, lay.Upgraded)
	}
	assert.Nil(t, v.UpKeys, "no guard")
}

// TestRecordQueries: recording queries through RecordQueries (what a
// backend that attends on its own does) makes the guard decide exactly as
// attending with them does; bad arguments are refused.
func TestRecordQueries(t *testing.T) {
	const H, QH, d, n = 3, 6, 64, 100
	cfg := guardConfig(t, 1, H, QH, d, 0.3)
	pool := snapPool(t, cfg, 0)
	attended, recorded := pool.NewSequence(), pool.NewSequence()
	guardRun(t, cfg, attended, 0, 40, n, 1)
	keys, values := outlierKV(n, H, d, 1)
	queries, _ := kvData(n, QH, d, 2)
	step := func(a, b int) {
		require.NoError(t, recorded.Append(0, keys[a*H*d:b*H*d], values[a*H*d:b*H*d]))
		require.NoError(t, recorded.RecordQueries(0, queries[a*QH*d:b*QH*d]))
	}
	step(0, 40)
	for p := 40; p < n; p++ {
		step(p, p+1)
	}
	require.NotEmpty(t, attended.Stats().Upgrades)
	assert.Equal(t, attended.Stats().Upgrades, recorded.Stats().Upgrades)

	// Without any recorded query nothing is measured, so nothing upgrades.
	none := pool.NewSequence()
	for p := 0; p < n; p++ {
		require.NoError(t, none.Append(0, keys[p*H*d:(p+1)*H*d], values[p*H*d:(p+1)*H*d]))
	}
	assert.Empty(t, none.Stats().Upgrades)

	assert.ErrorIs(t, recorded.RecordQueries(1, queries[:QH*d]), kvcache.ErrLength)
	assert.ErrorIs(t, recorded.RecordQueries(0, queries[:QH*d-1]), kvcache.ErrLength)
	bad := append([]float32(nil), queries[:QH*d]...)
	bad[3] = float32(math.NaN())
	assert.ErrorIs(t, recorded.RecordQueries(0, bad), kvcache.ErrNonFinite)
	require.NoError(t, recorded.Close())
	assert.ErrorIs(t, recorded.RecordQueries(0, queries[:QH*d]), kvcache.ErrClosed)
}

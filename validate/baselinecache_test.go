package validate

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/llm"
)

// baselineCacheData is T tokens of [H][d] keys and values with per-channel
// scales and offsets (as real keys have), already fp16-exact.
func baselineCacheData(T, H, d int, seed float64) (keys, values []float32) {
	keys, values = make([]float32, T*H*d), make([]float32, T*H*d)
	for i := range keys {
		c := i % d
		keys[i] = fp16Round(float32(0.15 * (math.Sin(seed+float64(i)*0.37)*(1+float64(c%7)) + float64(c%3))))
		values[i] = fp16Round(float32(math.Cos(seed+float64(i)*0.53)*(1+float64(c%4)) + 0.5*float64(c%5)))
	}
	return keys, values
}

// TestBaselineCacheStoresTheCodecsReconstruction: with no window or sinks,
// every codec's stored rows are exactly Baseline.Quantize of each head's
// tokens (KIVI keys in whole 32-token groups), whether the tokens came in
// one prefill or one at a time.
func TestBaselineCacheStoresTheCodecsReconstruction(t *testing.T) {
	const L, H, QH, d, T = 2, 2, 4, 64, 64
	keys, values := baselineCacheData(T, H, d, 1)
	shape := kvcache.Config{Layers: L, KVHeads: H, QHeads: QH, HeadDim: d}
	for _, b := range Baselines() {
		for _, oneByOne := range []bool{false, true} {
			c, err := NewBaselineCache(b, shape)
			require.NoError(t, err)
			for l := range L {
				if oneByOne {
					for tok := range T {
						require.NoError(t, c.Append(l, keys[tok*H*d:(tok+1)*H*d], values[tok*H*d:(tok+1)*H*d]))
					}
				} else {
					require.NoError(t, c.Append(l, keys, values))
				}
			}
			require.Equal(t, T, c.Len())
			for h := range H {
				kRows := c.headTokens(keys, 0, T, h)
				vRows := c.headTokens(values, 0, T, h)
				wantK, wantV, _, err := b.Quantize(kRows, vRows)
				require.NoError(t, err)
				for l := range L {
					gotK, gotV := c.headTokens(c.keys[l], 0, T, h), c.headTokens(c.values[l], 0, T, h)
					require.Equal(t, wantK, gotK, "%s keys, head %d, one by one %v", b.Name(), h, oneByOne)
					require.Equal(t, wantV, gotV, "%s values, head %d, one by one %v", b.Name(), h, oneByOne)
				}
			}
		}
	}
}

// TestBaselineCacheWindowAndAttention: sinks and the window stay fp16-exact,
// KIVI keys wait for a whole group to leave the window, and attention on
// an 8-bit codec is close to the fp32 cache's (and exact where nothing was
// quantized yet).
func TestBaselineCacheWindowAndAttention(t *testing.T) {
	const L, H, QH, d, T = 1, 2, 4, 64, 100
	keys, values := baselineCacheData(T, H, d, 2)
	queries, _ := baselineCacheData(3, QH, d, 3)
	shape := kvcache.Config{Layers: L, KVHeads: H, QHeads: QH, HeadDim: d, Window: 16, Sinks: 4}

	c, err := NewBaselineCache(Baseline{Kind: KIVI, Bits: 2}, shape)
	require.NoError(t, err)
	require.NoError(t, c.Append(0, keys, values))
	// 100 − 16 = 84 tokens left the window: values 4…83 quantized, keys in
	// the two whole groups 4…35 and 36…67; 68… untouched.
	assert.Equal(t, 84, c.valuesDone[0])
	assert.Equal(t, 68, c.keysDone[0])
	row := H * d
	assert.Equal(t, keys[:4*row], c.keys[0][:4*row], "sinks stay exact")
	assert.Equal(t, values[:4*row], c.values[0][:4*row], "sinks stay exact")
	assert.Equal(t, keys[68*row:], c.keys[0][68*row:], "keys of the partial group and the window stay exact")
	assert.Equal(t, values[84*row:], c.values[0][84*row:], "the window stays exact")
	assert.NotEqual(t, keys[4*row:68*row], c.keys[0][4*row:68*row])

	ref, err := kvcache.NewPool(kvcache.Config{Layers: L, KVHeads: H, QHeads: QH, HeadDim: d,
		Keys: kvcache.Storage{Kind: kvcache.Float32}, Values: kvcache.Storage{Kind: kvcache.Float32}}, 0)
	require.NoError(t, err)
	seq := ref.NewSequence()
	require.NoError(t, seq.Append(0, keys, values))
	want := make([]float32, len(queries))
	require.NoError(t, seq.Attend(0, queries, want))

	exact, err := NewBaselineCache(Baseline{Kind: KIVI, Bits: 2}, kvcache.Config{Layers: L, KVHeads: H, QHeads: QH, HeadDim: d, Window: T})
	require.NoError(t, err)
	require.NoError(t, exact.Append(0, keys, values))
	got := make([]float32, len(queries))
	require.NoError(t, exact.Attend(0, queries, got))
	assert.InDeltaSlice(t, want, got, 1e-4, "nothing left the window: fp16-exact inputs attend as fp32")

	eight, err := NewBaselineCache(Baseline{Kind: TokenAsymmetric, Bits: 8}, kvcache.Config{Layers: L, KVHeads: H, QHeads: QH, HeadDim: d})
	require.NoError(t, err)
	require.NoError(t, eight.Append(0, keys, values))
	require.NoError(t, eight.Attend(0, queries, got))
	var e, n float64
	for i := range want {
		e += float64(got[i]-want[i]) * float64(got[i]-want[i])
		n += float64(want[i]) * float64(want[i])
	}
	assert.Less(t, math.Sqrt(e/n), 0.01, "8-bit codes attend within 1%")

	require.NoError(t, c.Truncate(50))
	assert.Equal(t, 50, c.Len())
	assert.Equal(t, 50, c.valuesDone[0])
	assert.ErrorIs(t, c.Truncate(51), llm.ErrArgument)
	assert.ErrorIs(t, c.Append(1, keys, values), llm.ErrArgument)
	assert.ErrorIs(t, c.Append(0, keys[:d], values[:d]), llm.ErrArgument)
	assert.ErrorIs(t, c.Attend(0, make([]float32, 51*QH*d), make([]float32, 51*QH*d)), llm.ErrArgument)
	_, err = NewBaselineCache(Baseline{Kind: KIVI, Bits: 9}, shape)
	assert.ErrorIs(t, err, ErrBaseline)
	_, err = NewBaselineCache(Baseline{Kind: KIVI, Bits: 4}, kvcache.Config{Layers: 1, KVHeads: 3, QHeads: 4, HeadDim: d})
	assert.ErrorIs(t, err, ErrBaseline)
}

// TestBaselineCacheLogits: before anything is quantized, the logits are the
// fp32 cache's; after, they are those of the stored reconstructions (the
// ones Attend uses: softmax of them times the values is Attend's output).
func TestBaselineCacheLogits(t *testing.T) {
	const H, QH, d, T = 2, 4, 64, 80
	keys, values := baselineCacheData(T, H, d, 4)
	queries, _ := baselineCacheData(1, QH, d, 5)
	shape := kvcache.Config{Layers: 1, KVHeads: H, QHeads: QH, HeadDim: d}

	ref, err := kvcache.NewPool(kvcache.Config{Layers: 1, KVHeads: H, QHeads: QH, HeadDim: d,
		Keys: kvcache.Storage{Kind: kvcache.Float32}, Values: kvcache.Storage{Kind: kvcache.Float32}}, 0)
	require.NoError(t, err)
	seq := ref.NewSequence()
	require.NoError(t, seq.Append(0, keys, values))
	exactShape := shape
	exactShape.Window = T
	exact, err := NewBaselineCache(Baseline{Kind: KIVI, Bits: 2}, exactShape)
	require.NoError(t, err)
	require.NoError(t, exact.Append(0, keys, values))
	got, want := make([]float32, T), make([]float32, T)
	for qh := range QH {
		q := queries[qh*d : (qh+1)*d]
		require.NoError(t, seq.Logits(0, qh, q, want))
		require.NoError(t, exact.Logits(0, qh, q, got))
		assert.InDeltaSlice(t, want, got, 1e-4, "query head %d", qh)
	}

	c, err := NewBaselineCache(Baseline{Kind: KIVI, Bits: 2}, shape)
	require.NoError(t, err)
	require.NoError(t, c.Append(0, keys, values))
	out := make([]float32, QH*d)
	require.NoError(t, c.Attend(0, queries, out))
	for qh := range QH {
		require.NoError(t, c.Logits(0, qh, queries[qh*d:(qh+1)*d], got))
		best := float32(math.Inf(-1))
		for _, x := range got {
			best = max(best, x)
		}
		var sum float64
		o := make([]float64, d)
		for tok, x := range got {
			w := math.Exp(float64(x - best))
			sum += w
			for j := range o {
				o[j] += w * float64(c.values[0][(tok*H+qh/(QH/H))*d+j])
			}
		}
		for j := range o {
			assert.InDelta(t, o[j]/sum, out[qh*d+j], 1e-4, "query head %d coordinate %d", qh, j)
		}
	}
	assert.ErrorIs(t, c.Logits(0, QH, queries[:d], got), llm.ErrArgument)
	assert.ErrorIs(t, c.Logits(0, 0, queries[:d], got[:T-1]), llm.ErrArgument)
	assert.ErrorIs(t, c.Logits(1, 0, queries[:d], got), llm.ErrArgument)
	require.NoError(t, c.Close())
	assert.Zero(t, c.Len())
}

package validate

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/turboquant-go/tq/turboquant"
)

func TestTopKAndSets(t *testing.T) {
	x := []float64{0.1, 0.9, 0.3, 0.9, 0.5, 0.05}
	assert.Equal(t, []int{1, 3, 4}, topK(x, 3))
	assert.Equal(t, []int{1}, topK(x, 1))
	assert.Len(t, topK(x, 10), 6)
	assert.True(t, sameSet([]int{1, 3, 4}, []int{4, 1, 3}))
	assert.False(t, sameSet([]int{1, 3, 4}, []int{4, 1, 2}))
	assert.InDelta(t, 0, KL([]float64{0.5, 0.5}, []float64{0.5, 0.5}), 1e-15)
	assert.Greater(t, KL([]float64{0.9, 0.1}, []float64{0.5, 0.5}), 0.3)
}

func TestMeasureRealKV(t *testing.T) {
	kv := loadRealKVFixture(t)
	f, err := MeasureRealKV(kv, 1, "fp32", nil)
	require.NoError(t, err)
	assert.InDelta(t, 1, f.CosMean, 1e-9)
	assert.Equal(t, 1.0, f.Top1)
	assert.Equal(t, 1.0, f.Top5)
	assert.Less(t, f.OutErr, 1e-5)
	assert.InDelta(t, 0.5, f.RatioFP16, 1e-9, "fp32 takes twice fp16's bytes")
	assert.Equal(t, kv.Tokens(1), f.Tokens)

	g, err := MeasureRealKV(kv, 1, "tq3", func(c *turboquant.CacheConfig) { c.Window, c.Sinks = 0, 0 })
	require.NoError(t, err)
	assert.Less(t, g.CosMean, 0.999)
	assert.Greater(t, g.CosMean, 0.95)
	assert.Less(t, g.CosWorst, g.CosMean)
	assert.Greater(t, g.KLD, 0.0)
	assert.InDelta(t, 5.12, g.RatioFP16, 0.01, "tq3 at d=128: 100 of fp16's 512 bytes")
}

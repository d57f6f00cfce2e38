package validate

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/turboquant-go/tq/kvcache"
)

func TestTopKAndSets(t *testing.T) {
	x := []float64{0.1, 0.9, 0.3, 0.9, 0.5, 0.05}
	assert.Equal(t, []int{1, 3, 4}, topK(x, 3))
	assert.Equal(t, []int{1}, topK(x, 1))
	assert.Len(t, topK(x, 10), 6)
	assert.True(t, sameSet([]int{1, 3, 4}, []int{4, 1, 3}))
	assert.False(t, sameSet([]int{1, 3, 4}, []int{4, 1, 2}))
}

func TestMetricsByHand(t *testing.T) {
	// Softmax of (0, ln 3): (1/4, 3/4); invariant to a common shift.
	p := Softmax([]float64{0, math.Log(3)})
	assert.InDelta(t, 0.25, p[0], 1e-15)
	assert.InDelta(t, 0.75, p[1], 1e-15)
	p = Softmax([]float64{1000, 1000 + math.Log(3)})
	assert.InDelta(t, 0.75, p[1], 1e-13)
	// LogSumExp(ln 1, ln 3) = ln 4, no overflow at 1000.
	assert.InDelta(t, math.Log(4), LogSumExp([]float64{0, math.Log(3)}), 1e-15)
	assert.InDelta(t, 1000+math.Log(4), LogSumExp([]float64{1000, 1000 + math.Log(3)}), 1e-12)
	assert.True(t, math.IsInf(LogSumExp([]float64{math.Inf(-1)}), -1))
	// Cosine of (1,0) and (1,1) is 1/√2; of (1,2,3) with itself 1.
	assert.InDelta(t, 1/math.Sqrt2, Cosine([]float64{1, 0}, []float64{1, 1}), 1e-15)
	assert.InDelta(t, 1, Cosine([]float64{1, 2, 3}, []float64{2, 4, 6}), 1e-15)
	// KL((1/2,1/2) ‖ (1/4,3/4)) = ½ln2 + ½ln(2/3).
	assert.InDelta(t, 0.5*math.Log(2)+0.5*math.Log(2.0/3), KL([]float64{0.5, 0.5}, []float64{0.25, 0.75}), 1e-15)
	assert.InDelta(t, 0, KL([]float64{0.5, 0.5}, []float64{0.5, 0.5}), 1e-15)
	assert.False(t, math.IsInf(KL([]float64{1, 0}, []float64{0, 1}), 0), "zeros are floored")
	// relativeError: ‖(1,1) − (1,0)‖/‖(1,0)‖ = 1.
	assert.InDelta(t, 1, relativeError([]float32{1, 1}, []float32{1, 0}), 1e-15)
}

func TestFidelityAccumulatorByHand(t *testing.T) {
	a := newFidelityAcc()
	// Row 1: identical logits → cosine 1, KL 0, top-1 and top-5 agree.
	a.addRow([]float64{0, 1, 2}, []float64{0, 1, 2})
	// Row 2: the cache swaps the top two keys. Exact p = softmax(0, ln 3)
	// = (1/4, 3/4), cache q = (3/4, 1/4): cosine (3/16+3/16)/(10/16) = 0.6,
	// KL = ¼ln(1/3) + ¾ln 3 = ½ln 3; top-1 differs, the exact top-1 is in
	// the cache's top 5 and the 2-key sets agree.
	a.addRow([]float64{0, math.Log(3)}, []float64{math.Log(3), 0})
	a.addOutput([]float32{1, 1}, []float32{1, 0}) // relative error 1
	a.addOutput([]float32{2, 0}, []float32{2, 0}) // 0
	var f Fidelity
	a.fill(&f)
	assert.Equal(t, 2, f.Rows)
	assert.InDelta(t, (1+0.6)/2, f.AttnCosine, 1e-12)
	assert.InDelta(t, 0.6, f.AttnCosineMin, 1e-12)
	assert.InDelta(t, 0.5*math.Log(3)/2, f.KLD, 1e-12)
	assert.Equal(t, 0.5, f.Top1)
	assert.Equal(t, 1.0, f.Top5)
	assert.Equal(t, 1.0, f.Top5Set)
	assert.InDelta(t, 0.5, f.OutRelErr, 1e-12)
	// Logit errors: 0,0,0, +ln3, −ln3 → mean 0, sample variance
	// 2·ln²3/4; logit cosine of row 2 is 0.
	assert.InDelta(t, 0, f.LogitBias, 1e-15)
	assert.InDelta(t, math.Sqrt(2*math.Log(3)*math.Log(3)/4), f.LogitStd, 1e-12)
	assert.InDelta(t, 0.5, f.LogitCosine, 1e-12)

	// Top-5 by the reference's definition versus sets: exact top-1 key 0
	// ranked 5th by the cache still counts for Top5 but the sets differ.
	b := newFidelityAcc()
	b.addRow([]float64{10, 5, 4, 3, 2, 1, 0}, []float64{6, 9, 8, 7, 0, 10, 0})
	var g Fidelity
	b.fill(&g)
	assert.Equal(t, 0.0, g.Top1)
	assert.Equal(t, 1.0, g.Top5)
	assert.Equal(t, 0.0, g.Top5Set)
	// A constant shift of every logit changes no probability metric but
	// shows in the bias.
	c := newFidelityAcc()
	c.addRow([]float64{1, 2, 3}, []float64{1.5, 2.5, 3.5})
	var h Fidelity
	c.fill(&h)
	assert.InDelta(t, 1, h.AttnCosine, 1e-15)
	assert.InDelta(t, 0.5, h.LogitBias, 1e-15)
	assert.InDelta(t, 0, h.LogitStd, 1e-15)
	assert.Less(t, h.LogitCosine, 1.0)
}

func TestMeasureRealKV(t *testing.T) {
	kv := loadRealKVFixture(t)
	f, err := MeasureRealKV(kv, 1, "fp32", nil)
	require.NoError(t, err)
	assert.Equal(t, "real", f.Workload)
	assert.InDelta(t, 1, f.AttnCosine, 1e-9)
	assert.Equal(t, 1.0, f.Top1)
	assert.Equal(t, 1.0, f.Top5)
	assert.Equal(t, 1.0, f.Top5Set)
	assert.Less(t, f.OutRelErr, 1e-5)
	assert.Less(t, math.Abs(f.LogitBias), 1e-5)
	assert.InDelta(t, 0.5, f.RatioFP16, 1e-9, "fp32 takes twice fp16's bytes")
	assert.Equal(t, 32.0, f.BitsPerValue)
	assert.Equal(t, kv.Tokens(1), f.Tokens)

	g, err := MeasureRealKV(kv, 1, "tq3", func(c *kvcache.Config) { c.Window, c.Sinks = 0, 0 })
	require.NoError(t, err)
	assert.Less(t, g.AttnCosine, 0.999)
	assert.Greater(t, g.AttnCosine, 0.95)
	assert.Less(t, g.AttnCosineMin, g.AttnCosine)
	assert.Greater(t, g.KLD, 0.0)
	assert.Greater(t, g.LogitCosine, g.AttnCosine, "the logit cosine is the forgiving one")
	assert.GreaterOrEqual(t, g.Top5, g.Top1)
	assert.InDelta(t, 3.125, g.BitsPerValue, 1e-12)
	assert.InDelta(t, 5.12, g.RatioFP16, 0.01, "tq3 at d=128: 100 of fp16's 512 bytes")
}

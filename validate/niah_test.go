package validate

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/turboquant-go/tq/internal/rng"
	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
)

func noWindow(c *kvcache.Config) { c.Window, c.Sinks = 0, 0 }

func TestNIAHCalibration(t *testing.T) {
	s, err := DefaultSynthKV()
	require.NoError(t, err)
	cfg := NIAHConfig{Lengths: []int{256, 2048}, Depths: NIAHDepths(6), Seed: 1}
	if testing.Short() {
		cfg.Lengths = []int{512}
	}
	names := []string{"fp32", "fp16", "tq4", "tq3", "tq2", "naive4", "naive3", "naive2", "naive1"}
	builders := []Builder{
		PresetBuilder("fp32", nil), PresetBuilder("fp16", nil),
		PresetBuilder("tq4", noWindow), PresetBuilder("tq3", noWindow), PresetBuilder("tq2", noWindow),
		RoundTripBuilder(NaiveUniform(4)), RoundTripBuilder(NaiveUniform(3)), RoundTripBuilder(NaiveUniform(2)),
		RoundTripBuilder(NaiveUniform(1)),
	}
	res, err := RunNIAH(s, cfg, builders, nil)
	require.NoError(t, err)
	for i, r := range res {
		c := r.Cells[len(r.Cells)/2]
		t.Logf("%-7s pass %.3f retrieval %.3f (a cell: cos %.4f threshold %.4f recovered %.3f)",
			names[i], r.PassRate, r.RetrievalRate, c.OutCosine, c.Threshold, c.Recovered)
		require.Len(t, r.Cells, len(cfg.Lengths)*len(cfg.Depths))
	}
	// Exact attention recovers NeedleWeight with the needle on top.
	for _, c := range res[0].Cells {
		assert.True(t, c.Pass)
		assert.Equal(t, 0, c.NeedleRank)
		assert.InDelta(t, 0.8, c.Recovered, 1e-4)
		assert.Greater(t, c.OutCosine, c.Threshold)
		assert.GreaterOrEqual(t, c.Margin, 1-1e-4)
	}
	assert.Equal(t, 1.0, res[1].PassRate, "fp16")
	// Not trivial: plain 2-bit and 1-bit rounding fail (1-bit keeps the
	// needle on top by inflating every logit, and fails on the output).
	assert.LessOrEqual(t, res[7].PassRate, 0.2, "naive 2-bit rounding")
	assert.LessOrEqual(t, res[8].PassRate, 0.2, "naive 1-bit rounding")
	assert.GreaterOrEqual(t, res[2].PassRate, 0.9, "tq4")
	// The needle sits where the depth says.
	assert.Equal(t, 0, res[0].Cells[0].Position)
	assert.Equal(t, cfg.Lengths[0]-1, res[0].Cells[len(cfg.Depths)-1].Position)
}

// TestNIAHBaselines: the KIVI-like and int-N codecs run in the same grid
// (BaselineBuilder); more bits never pass fewer cells here, and 1-bit KIVI
// fails where 4-bit passes.
func TestNIAHBaselines(t *testing.T) {
	s, err := DefaultSynthKV()
	require.NoError(t, err)
	cfg := NIAHConfig{Lengths: []int{512}, Depths: NIAHDepths(6), Seed: 2}
	var builders []Builder
	for _, b := range []Baseline{{Kind: KIVI, Bits: 4}, {Kind: KIVI, Bits: 2}, {Kind: KIVI, Bits: 1}} {
		builders = append(builders, BaselineBuilder(b, 0, 0))
	}
	res, err := RunNIAH(s, cfg, builders, nil)
	require.NoError(t, err)
	for i, r := range res {
		t.Logf("kivi%d pass %.3f retrieval %.3f", []int{4, 2, 1}[i], r.PassRate, r.RetrievalRate)
	}
	assert.Equal(t, 1.0, res[0].PassRate, "kivi4")
	assert.GreaterOrEqual(t, res[0].PassRate, res[1].PassRate)
	assert.GreaterOrEqual(t, res[1].PassRate, res[2].PassRate)
	assert.LessOrEqual(t, res[2].PassRate, 0.2, "kivi1")
}

func TestNIAHGroupingKeepsData(t *testing.T) {
	// Splitting depths over several caches (MaxValues) gives the same cells.
	s, err := DefaultSynthKV()
	require.NoError(t, err)
	cfg := NIAHConfig{Lengths: []int{300}, Depths: NIAHDepths(3), Seed: 5}
	a, err := RunNIAH(s, cfg, []Builder{PresetBuilder("tq3", noWindow)}, nil)
	require.NoError(t, err)
	cfg.MaxValues = 300 * 128 // one depth per cache
	calls := 0
	b, err := RunNIAH(s, cfg, []Builder{PresetBuilder("tq3", noWindow)}, func() { calls++ })
	require.NoError(t, err)
	assert.Equal(t, 3, calls)
	assert.Equal(t, 3, NIAHGroups(s, cfg))
	require.Len(t, b[0].Cells, 3)
	for i := range a[0].Cells {
		assert.Equal(t, a[0].Cells[i].Position, b[0].Cells[i].Position)
		assert.InDelta(t, a[0].Cells[i].Margin, b[0].Cells[i].Margin, 1e-12)
	}
}

func TestNIAHErrors(t *testing.T) {
	s, err := DefaultSynthKV()
	require.NoError(t, err)
	fp32 := []Builder{PresetBuilder("fp32", nil)}
	_, err = RunNIAH(s, NIAHConfig{Depths: []float64{0}}, fp32, nil)
	assert.ErrorIs(t, err, ErrShape)
	_, err = RunNIAH(s, NIAHConfig{Lengths: []int{64}, Depths: []float64{1.5}}, fp32, nil)
	assert.ErrorIs(t, err, ErrShape)
	_, err = RunNIAH(s, NIAHConfig{Lengths: []int{1}, Depths: []float64{0}}, fp32, nil)
	assert.ErrorIs(t, err, ErrShape)
	_, err = RunNIAH(s, NIAHConfig{Lengths: []int{64}, Depths: []float64{0}, NeedleWeight: 1}, fp32, nil)
	assert.ErrorIs(t, err, ErrShape)
	_, err = RunNIAH(s, NIAHConfig{Lengths: []int{64}, Depths: []float64{0}}, []Builder{PresetBuilder("tq9", nil)}, nil)
	assert.ErrorIs(t, err, turboquant.ErrConfig)
}

// TestIdealValueBuilder: keys are kept exactly, values come back with the
// test channel's error, D = 2^(−2·bits) of their centred energy, and in
// the NIAH grid the ideal 8-bit values pass every cell while ideal 1-bit
// values fail most.
func TestIdealValueBuilder(t *testing.T) {
	const H, QH, d, T = 2, 4, 64, 3000
	keys, values := make([]float32, T*H*d), make([]float32, T*H*d)
	src := rng.New(9)
	for i := range keys {
		keys[i] = float32(src.Norm())
		values[i] = float32(0.5*float64(i%d%5) + src.Norm()) // a mean, and spread
	}
	a, err := IdealValueBuilder(3, 1)(H, QH, d)
	require.NoError(t, err)
	require.NoError(t, a.Append(0, keys, values))
	rt := a.(*roundTrip)
	assert.Equal(t, keys, rt.keys, "keys are exact")
	mu := headMeans(values, H, d)
	var e, energy float64
	for i, v := range values {
		m := mu[i%(H*d)]
		e += (float64(rt.vals[i]) - float64(v)) * (float64(rt.vals[i]) - float64(v))
		energy += (float64(v) - m) * (float64(v) - m)
	}
	assert.InEpsilon(t, 1.0/64, e/energy, 0.03, "relative MSE at 3 bits")
	_, err = IdealValueBuilder(0, 1)(H, QH, d)
	assert.ErrorIs(t, err, ErrShape)

	s, err := DefaultSynthKV()
	require.NoError(t, err)
	res, err := RunNIAH(s, NIAHConfig{Lengths: []int{512}, Depths: NIAHDepths(6), Seed: 3},
		[]Builder{IdealValueBuilder(8, 1), IdealValueBuilder(1, 1)}, nil)
	require.NoError(t, err)
	assert.Equal(t, 1.0, res[0].PassRate, "ideal 8-bit values")
	assert.Equal(t, 1.0, res[0].RetrievalRate)
	assert.LessOrEqual(t, res[1].PassRate, 0.5, "ideal 1-bit values")
}

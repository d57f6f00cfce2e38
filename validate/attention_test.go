package validate

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAttentionReferenceAndRoundTrip(t *testing.T) {
	s, err := DefaultSynthKV()
	require.NoError(t, err)
	const T, H, QH, d = 300, 2, 4, 128
	keys, values := s.Generate(T, H, 3)
	queries := s.Queries(2, H, QH/H, 4)
	ref, err := NewAttentionReference(keys, values, H, QH, d, 200, queries)
	require.NoError(t, err)
	// Exact attention over identical reconstructions matches the
	// reference; so does an fp32 cache.
	identity := RoundTripBuilder(func(dst, x []float32) { copy(dst, x) })
	for name, b := range map[string]Builder{"identity": identity, "fp32": PresetBuilder("fp32", nil)} {
		a, err := b(H, QH, d)
		require.NoError(t, err)
		require.NoError(t, a.Append(0, keys, values))
		require.NoError(t, a.(interface{ Truncate(int) error }).Truncate(200))
		f, err := ref.Measure(a, 0)
		require.NoError(t, err)
		assert.InDelta(t, 1, f.AttnCosine, 1e-9, name)
		assert.Less(t, f.OutRelErr, 1e-5, name)
		assert.Equal(t, 8, f.Rows, name)
		require.NoError(t, a.Close())
	}
	// Naive 2-bit rounding is measurably worse than 4-bit.
	var cos [2]float64
	for i, bits := range []int{2, 4} {
		a, err := RoundTripBuilder(NaiveUniform(bits))(H, QH, d)
		require.NoError(t, err)
		require.NoError(t, a.Append(0, keys[:200*H*d], values[:200*H*d]))
		f, err := ref.Measure(a, 0)
		require.NoError(t, err)
		cos[i] = f.AttnCosine
	}
	assert.Less(t, cos[0], cos[1])
	assert.Less(t, cos[1], 1.0)
	_, err = NewAttentionReference(keys, values[:10], H, QH, d, 200, queries)
	assert.ErrorIs(t, err, ErrShape)
	_, err = RoundTripBuilder(NaiveUniform(2))(2, 3, d)
	assert.ErrorIs(t, err, ErrShape)
}

func TestNaiveUniformByHand(t *testing.T) {
	dst := make([]float32, 4)
	// Levels at 1 bit: min 0 and max 3; 1 rounds down, 2 up.
	NaiveUniform(1)(dst, []float32{0, 1, 2, 3})
	assert.Equal(t, []float32{0, 0, 3, 3}, dst)
	// 2 bits: levels 0, 1, 2, 3 reproduce integers exactly.
	NaiveUniform(2)(dst, []float32{3, 0, 1, 2})
	assert.Equal(t, []float32{3, 0, 1, 2}, dst)
	NaiveUniform(2)(dst, []float32{5, 5, 5, 5})
	assert.Equal(t, []float32{5, 5, 5, 5}, dst)
}

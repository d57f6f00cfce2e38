package turboquant_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	. "github.com/turboquant-go/tq/turboquant"
)

func TestSpecRoundTrip(t *testing.T) {
	for _, cfg := range configs() {
		q := mustNew(t, cfg)
		data, err := q.Spec().MarshalBinary()
		require.NoError(t, err)
		var s Spec
		require.NoError(t, s.UnmarshalBinary(data), name(cfg))
		q2, err := NewFromSpec(s)
		require.NoError(t, err, name(cfg))
		assert.Equal(t, q.Config(), q2.Config())
		// The rebuilt quantizer decodes the original's codes identically.
		x := mixedVector(cfg.Dim, 4)
		c1, c2 := make([]byte, q.CodeSize()), make([]byte, q2.CodeSize())
		require.NoError(t, q.Encode(c1, x))
		require.NoError(t, q2.Encode(c2, x))
		assert.Equal(t, c1, c2, name(cfg))
	}
}

func TestSpecRejectsCorruption(t *testing.T) {
	q := mustNew(t, Config{Dim: 128, Bits: 3, Method: MSE, Outliers: &Outliers{Channels: []int{3, 9}, Bits: 5}})
	data, err := q.Spec().MarshalBinary()
	require.NoError(t, err)
	var s Spec
	for i := range data {
		bad := bytes.Clone(data)
		bad[i] ^= 0x10
		assert.ErrorIs(t, s.UnmarshalBinary(bad), ErrSpec, "flipped byte %d", i)
	}
	for n := range data {
		assert.ErrorIs(t, s.UnmarshalBinary(data[:n]), ErrSpec, "truncated to %d", n)
	}
	// A spec whose fingerprint differs (another build's codebooks) is refused.
	spec := q.Spec()
	spec.Fingerprint ^= 1
	_, err = NewFromSpec(spec)
	assert.ErrorIs(t, err, ErrSpec)
	spec = q.Spec()
	spec.Version = 99
	_, err = NewFromSpec(spec)
	assert.ErrorIs(t, err, ErrSpec)
}

func FuzzSpecUnmarshal(f *testing.F) {
	for _, cfg := range configs()[:6] {
		data, _ := mustNew(f, cfg).Spec().MarshalBinary()
		f.Add(data)
	}
	data, _ := mustNew(f, Config{Dim: 80, Bits: 3, Method: Prod, Outliers: &Outliers{Channels: []int{1, 2, 3}, Bits: 2}}).Spec().MarshalBinary()
	f.Add(data)
	data, _ = mustNew(f, Config{Dim: 64, Bits: 3, Method: MSE, Split: &Split{Coords: 32, Bits: 4}}).Spec().MarshalBinary()
	f.Add(data)
	f.Add([]byte("TQQS"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Spec
		if err := s.UnmarshalBinary(data); err != nil {
			return
		}
		// Whatever decodes must re-encode to the same bytes.
		again, err := s.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, data, again)
	})
}

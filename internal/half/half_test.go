package half

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/x448/float16"
)

func TestToFloat32Exhaustive(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		want := float16.Frombits(uint16(h)).Float32()
		got := ToFloat32(uint16(h))
		if math.IsNaN(float64(want)) {
			require.True(t, math.IsNaN(float64(got)), "h=%#04x", h)
			continue
		}
		require.Equal(t, math.Float32bits(want), math.Float32bits(got), "h=%#04x", h)
	}
}

func TestFromFloat32AgainstOracle(t *testing.T) {
	check := func(b uint32) {
		f := math.Float32frombits(b)
		want := float16.Fromfloat32(f).Bits()
		got := FromFloat32(f)
		if math.IsNaN(float64(f)) {
			require.Equal(t, uint16(0x7c00), got&0x7c00, "NaN %#08x", b)
			require.NotZero(t, got&0x3ff, "NaN %#08x", b)
			return
		}
		require.Equal(t, want, got, "f=%g bits=%#08x", f, b)
	}
	// A stride through every float32 bit pattern, plus every pattern near the
	// fp16 rounding edges (the low 13 bits around the halfway point).
	for b := uint64(0); b < 1<<32; b += 4093 {
		check(uint32(b))
	}
	for e := uint32(100); e < 145; e++ {
		for m := uint32(0); m < 1<<23; m += 1 << 11 {
			for _, d := range []uint32{0, 1, 0xfff, 0x1000, 0x1001, 0x1fff} {
				b := e<<23 | (m+d)&0x7fffff
				check(b)
				check(b | 1<<31)
			}
		}
	}
	// Every fp16 value must round-trip exactly.
	for h := 0; h < 1<<16; h++ {
		f := ToFloat32(uint16(h))
		if !math.IsNaN(float64(f)) {
			require.Equal(t, uint16(h), FromFloat32(f))
		}
	}
}

func TestBF16(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := BF16ToFloat32(uint16(h))
		if math.IsNaN(float64(f)) {
			require.True(t, math.IsNaN(float64(BF16ToFloat32(BF16FromFloat32(f)))))
			continue
		}
		require.Equal(t, uint16(h), BF16FromFloat32(f))
	}
	// Ties to even: 1 + 2^-8 lies halfway between 1 and 1+2^-7 → 1.
	require.Equal(t, float32(1), BF16ToFloat32(BF16FromFloat32(1+1.0/256)))
	require.Equal(t, float32(1+2.0/128), BF16ToFloat32(BF16FromFloat32(1+3.0/256)))
}

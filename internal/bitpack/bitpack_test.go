package bitpack

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRoundTripEveryWidthAndLength(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for bits := 1; bits <= 8; bits++ {
		for n := 0; n <= 67; n++ {
			idx := make([]uint8, n)
			for i := range idx {
				idx[i] = uint8(r.IntN(1 << bits))
			}
			nb := Bytes(n, bits)
			// Guard bytes after the packed area must survive.
			buf := make([]byte, nb+4)
			for i := range buf {
				buf[i] = 0xA5
			}
			Pack(buf, idx, bits)
			require.Equal(t, []byte{0xA5, 0xA5, 0xA5, 0xA5}, buf[nb:], "bits=%d n=%d overwrote guard", bits, n)
			got := make([]uint8, n)
			Unpack(got, buf, bits)
			require.Equal(t, idx, got, "bits=%d n=%d", bits, n)
			for i := range idx {
				require.Equal(t, idx[i], Get(buf, i, bits))
			}
			if n*bits%8 != 0 {
				pad := buf[nb-1] >> (n * bits % 8)
				require.Zero(t, pad, "bits=%d n=%d: unused high bits must be zero", bits, n)
			}
		}
	}
}

func TestDocumentedBitOrder(t *testing.T) {
	// Three 3-bit indices 5 (101), 3 (011), 6 (110): stream LSB-first is
	// 101 110 011 → byte0 = bits 0..7 = 1,0,1,1,1,0,0,1 = 0x9D, byte1 = 1 → 0x01.
	buf := make([]byte, 2)
	Pack(buf, []uint8{5, 3, 6}, 3)
	require.Equal(t, []byte{0x9D, 0x01}, buf)
	// 4-bit: first index in the low nibble.
	Pack(buf[:1], []uint8{0x3, 0xC}, 4)
	require.Equal(t, byte(0xC3), buf[0])
}

func TestBytes(t *testing.T) {
	require.Equal(t, 48, Bytes(128, 3))
	require.Equal(t, 16, Bytes(128, 1))
	require.Equal(t, 38, Bytes(100, 3))
	require.Equal(t, 0, Bytes(0, 5))
}

func TestPanicsOnProgrammerError(t *testing.T) {
	require.Panics(t, func() { Pack(make([]byte, 1), make([]uint8, 3), 3) })
	require.Panics(t, func() { Unpack(make([]uint8, 1), nil, 9) })
}

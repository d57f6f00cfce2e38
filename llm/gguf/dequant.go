package gguf

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/turboquant-go/tq/internal/half"
)

// DequantizeRow decodes src, a whole number of t's blocks, into dst, which
// must hold exactly the decoded value count (len(src)/BlockBytes·BlockSize).
//
// Results are bit-identical to ggml's reference dequantize_row_* evaluated as
// the C source is written: each product and difference rounded to float32 on
// its own. (Go would otherwise be free to fuse d·q − m into one FMA on arm64;
// explicit float32 conversions prevent that. A ggml build compiled with FP
// contraction may differ from both by an ulp.)
func DequantizeRow(dst []float32, t Type, src []byte) error {
	ti, ok := typeTable[t]
	if !ok || !ti.supported {
		return fmt.Errorf("%w: cannot dequantize %v", ErrUnsupportedType, t)
	}
	if len(src)%ti.blockBytes != 0 {
		return fmt.Errorf("%w: %d bytes is not a whole number of %d-byte %v blocks", ErrSize, len(src), ti.blockBytes, t)
	}
	n := len(src) / ti.blockBytes * ti.blockSize
	if len(dst) != n {
		return fmt.Errorf("%w: %d bytes of %v decode to %d values, dst holds %d", ErrSize, len(src), t, n, len(dst))
	}
	switch t {
	case F32:
		dequantF32(dst, src)
	case F16:
		dequantF16(dst, src)
	case BF16:
		dequantBF16(dst, src)
	case Q8_0:
		dequantQ8_0(dst, src)
	case Q4_0:
		dequantQ4_0(dst, src)
	case Q4_K:
		dequantQ4K(dst, src)
	case Q6_K:
		dequantQ6K(dst, src)
	}
	return nil
}

func dequantF32(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func dequantF16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = half.ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

func dequantBF16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
	}
}

// Q8_0 block (34 bytes): fp16 d, then 32 int8 q; value = q·d.
func dequantQ8_0(dst []float32, src []byte) {
	for len(src) >= 34 {
		b := src[:34:34]
		y := dst[:32:32]
		d := half.ToFloat32(binary.LittleEndian.Uint16(b))
		q := b[2:34]
		for j := range y {
			y[j] = float32(int8(q[j])) * d
		}
		src, dst = src[34:], dst[32:]
	}
}

// Q4_0 block (18 bytes): fp16 d, then 16 bytes whose low nibbles are values
// 0–15 and high nibbles values 16–31; value = (nibble − 8)·d.
func dequantQ4_0(dst []float32, src []byte) {
	for len(src) >= 18 {
		b := src[:18:18]
		y := dst[:32:32]
		d := half.ToFloat32(binary.LittleEndian.Uint16(b))
		q := b[2:18]
		for j := range q {
			y[j] = float32(int(q[j]&0xf)-8) * d
			y[j+16] = float32(int(q[j]>>4)-8) * d
		}
		src, dst = src[18:], dst[32:]
	}
}

// scaleMinK4 unpacks sub-block j's 6-bit scale and min from Q4_K's 12 packed
// bytes: sub-blocks 0–3 keep theirs in the low 6 bits of bytes j and j+4;
// sub-blocks 4–7 split theirs into a low nibble in byte j+4 and the top two
// bits borrowed from bytes j−4 (scale) and j (min).
func scaleMinK4(j int, s []byte) (sc, m uint8) {
	if j < 4 {
		return s[j] & 63, s[j+4] & 63
	}
	return s[j+4]&0xf | (s[j-4]>>6)<<4, s[j+4]>>4 | (s[j]>>6)<<4
}

// Q4_K super-block (144 bytes, 256 values in 8 sub-blocks of 32): fp16 d,
// fp16 dmin, 12 bytes of packed 6-bit (scale, min) pairs, 128 bytes of
// nibbles. The nibbles come in 4 runs of 32 bytes; run r holds sub-block 2r in
// its low nibbles and 2r+1 in its high nibbles. value = d·sc·q − dmin·m.
func dequantQ4K(dst []float32, src []byte) {
	for len(src) >= 144 {
		b := src[:144:144]
		y := dst[:256:256]
		d := half.ToFloat32(binary.LittleEndian.Uint16(b[0:]))
		dmin := half.ToFloat32(binary.LittleEndian.Uint16(b[2:]))
		scales := b[4:16]
		for r := 0; r < 4; r++ {
			sc1, m1 := scaleMinK4(2*r, scales)
			sc2, m2 := scaleMinK4(2*r+1, scales)
			d1, min1 := d*float32(sc1), dmin*float32(m1)
			d2, min2 := d*float32(sc2), dmin*float32(m2)
			q := b[16+32*r : 16+32*r+32 : 16+32*r+32]
			lo := y[64*r : 64*r+32 : 64*r+32]
			hi := y[64*r+32 : 64*r+64 : 64*r+64]
			for l, v := range q {
				lo[l] = float32(d1*float32(v&0xf)) - min1
				hi[l] = float32(d2*float32(v>>4)) - min2
			}
		}
		src, dst = src[144:], dst[256:]
	}
}

// Q6_K super-block (210 bytes, 256 values in 16 sub-blocks of 16): 128 bytes
// ql (low 4 bits), 64 bytes qh (high 2 bits), 16 int8 scales, fp16 d.
// value = d·scale·(q − 32). Each 128-value half uses 64 ql bytes, 32 qh bytes
// and 8 scales: for l in 0..31, ql[l] carries values l (low nibble) and l+64
// (high), ql[l+32] carries l+32 and l+96, and qh[l] carries the high bits of
// l, l+32, l+64, l+96 in bit pairs 0, 2, 4, 6.
func dequantQ6K(dst []float32, src []byte) {
	for len(src) >= 210 {
		b := src[:210:210]
		y := dst[:256:256]
		d := half.ToFloat32(binary.LittleEndian.Uint16(b[208:]))
		for h := 0; h < 2; h++ {
			ql := b[64*h : 64*h+64 : 64*h+64]
			qh := b[128+32*h : 128+32*h+32 : 128+32*h+32]
			sc := b[192+8*h : 192+8*h+8 : 192+8*h+8]
			yy := y[128*h : 128*h+128 : 128*h+128]
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int(ql[l]&0xf|(qh[l]>>0&3)<<4) - 32
				q2 := int(ql[l+32]&0xf|(qh[l]>>2&3)<<4) - 32
				q3 := int(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				yy[l] = d * float32(int8(sc[is])) * float32(q1)
				yy[l+32] = d * float32(int8(sc[is+2])) * float32(q2)
				yy[l+64] = d * float32(int8(sc[is+4])) * float32(q3)
				yy[l+96] = d * float32(int8(sc[is+6])) * float32(q4)
			}
		}
		src, dst = src[210:], dst[256:]
	}
}

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
	case Q4_1:
		dequantQ4_1(dst, src)
	case Q5_0:
		dequantQ5_0(dst, src)
	case Q5_1:
		dequantQ5_1(dst, src)
	case Q5_K:
		dequantQ5K(dst, src)
	case Q2_K:
		dequantQ2K(dst, src)
	case Q3_K:
		dequantQ3K(dst, src)
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

// Q4_1 block (20 bytes): fp16 d, fp16 m, 16 bytes of nibbles laid out as in
// Q4_0; value = nibble·d + m.
func dequantQ4_1(dst []float32, src []byte) {
	for len(src) >= 20 {
		b := src[:20:20]
		y := dst[:32:32]
		d := half.ToFloat32(binary.LittleEndian.Uint16(b))
		m := half.ToFloat32(binary.LittleEndian.Uint16(b[2:]))
		q := b[4:20]
		for j := range q {
			y[j] = float32(float32(q[j]&0xf)*d) + m
			y[j+16] = float32(float32(q[j]>>4)*d) + m
		}
		src, dst = src[20:], dst[32:]
	}
}

// Q5_0 block (22 bytes): fp16 d, a little-endian u32 whose bit j is the fifth
// bit of value j, then nibbles laid out as in Q4_0; value = (q − 16)·d.
func dequantQ5_0(dst []float32, src []byte) {
	for len(src) >= 22 {
		b := src[:22:22]
		y := dst[:32:32]
		d := half.ToFloat32(binary.LittleEndian.Uint16(b))
		qh := binary.LittleEndian.Uint32(b[2:])
		q := b[6:22]
		for j := range q {
			lo := int(q[j]&0xf) | int(qh>>j&1)<<4
			hi := int(q[j]>>4) | int(qh>>(j+16)&1)<<4
			y[j] = float32(lo-16) * d
			y[j+16] = float32(hi-16) * d
		}
		src, dst = src[22:], dst[32:]
	}
}

// Q5_1 block (24 bytes): fp16 d, fp16 m, the fifth bits as in Q5_0, nibbles;
// value = q·d + m.
func dequantQ5_1(dst []float32, src []byte) {
	for len(src) >= 24 {
		b := src[:24:24]
		y := dst[:32:32]
		d := half.ToFloat32(binary.LittleEndian.Uint16(b))
		m := half.ToFloat32(binary.LittleEndian.Uint16(b[2:]))
		qh := binary.LittleEndian.Uint32(b[4:])
		q := b[8:24]
		for j := range q {
			lo := q[j]&0xf | uint8(qh>>j&1)<<4
			hi := q[j]>>4 | uint8(qh>>(j+16)&1)<<4
			y[j] = float32(float32(lo)*d) + m
			y[j+16] = float32(float32(hi)*d) + m
		}
		src, dst = src[24:], dst[32:]
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

// Q5_K super-block (176 bytes): fp16 d, fp16 dmin, the 12 packed scale/min
// bytes of Q4_K, 32 bytes qh, 128 bytes of nibbles laid out as in Q4_K.
// qh[l] bit 2r is the fifth bit of sub-block 2r's value l, bit 2r+1 that of
// sub-block 2r+1. value = d·sc·q − dmin·m.
func dequantQ5K(dst []float32, src []byte) {
	for len(src) >= 176 {
		b := src[:176:176]
		y := dst[:256:256]
		d := half.ToFloat32(binary.LittleEndian.Uint16(b[0:]))
		dmin := half.ToFloat32(binary.LittleEndian.Uint16(b[2:]))
		scales := b[4:16]
		qh := b[16:48]
		for r := 0; r < 4; r++ {
			sc1, m1 := scaleMinK4(2*r, scales)
			sc2, m2 := scaleMinK4(2*r+1, scales)
			d1, min1 := d*float32(sc1), dmin*float32(m1)
			d2, min2 := d*float32(sc2), dmin*float32(m2)
			q := b[48+32*r : 48+32*r+32 : 48+32*r+32]
			lo := y[64*r : 64*r+32 : 64*r+32]
			hi := y[64*r+32 : 64*r+64 : 64*r+64]
			for l, v := range q {
				h := qh[l] >> (2 * r)
				lo[l] = float32(d1*float32(v&0xf|(h&1)<<4)) - min1
				hi[l] = float32(d2*float32(v>>4|(h>>1&1)<<4)) - min2
			}
		}
		src, dst = src[176:], dst[256:]
	}
}

// Q2_K super-block (84 bytes, 16 sub-blocks of 16): 16 bytes of 4-bit
// (scale, min) pairs (scale low nibble), 64 bytes of 2-bit codes, fp16 d,
// fp16 dmin. Code byte 32h+l holds values 128h+32k+l (k = 0..3) in bit pairs
// 2k. value = d·scale·q − dmin·min.
func dequantQ2K(dst []float32, src []byte) {
	for len(src) >= 84 {
		b := src[:84:84]
		y := dst[:256:256]
		sc := b[0:16]
		d := half.ToFloat32(binary.LittleEndian.Uint16(b[80:]))
		dmin := half.ToFloat32(binary.LittleEndian.Uint16(b[82:]))
		for h := 0; h < 2; h++ {
			q := b[16+32*h : 48+32*h : 48+32*h]
			for k := 0; k < 4; k++ {
				shift := uint(2 * k)
				for half := 0; half < 2; half++ {
					s := sc[8*h+2*k+half]
					dl, ml := d*float32(s&0xf), dmin*float32(s>>4)
					qq := q[16*half : 16*half+16 : 16*half+16]
					yy := y[128*h+32*k+16*half : 128*h+32*k+16*half+16 : 128*h+32*k+16*half+16]
					for l, v := range qq {
						yy[l] = float32(dl*float32(v>>shift&3)) - ml
					}
				}
			}
		}
		src, dst = src[84:], dst[256:]
	}
}

// q3kScale unpacks Q3_K's 6-bit scale j from its 12 packed bytes: the low
// nibble is in byte j%8 (low nibble for j < 8, high for j ≥ 8), the top two
// bits in byte 8+j%4 at bit pair j/4. The stored value is offset by 32.
func q3kScale(s []byte, j int) int {
	lo := s[j%8] & 0xf
	if j >= 8 {
		lo = s[j%8] >> 4
	}
	hi := s[8+j%4] >> (2 * (j / 4)) & 3
	return int(lo|hi<<4) - 32
}

// Q3_K super-block (110 bytes, 16 sub-blocks of 16): 32 bytes hmask, 64 bytes
// of 2-bit codes (laid out as in Q2_K), 12 bytes of packed 6-bit scales,
// fp16 d. Value 128h+32k+l has its high bit in hmask[l] bit 4h+k; a clear bit
// means the 2-bit code is offset by −4. value = d·(scale−32)·q.
func dequantQ3K(dst []float32, src []byte) {
	for len(src) >= 110 {
		b := src[:110:110]
		y := dst[:256:256]
		hm := b[0:32]
		d := half.ToFloat32(binary.LittleEndian.Uint16(b[108:]))
		var dl [16]float32
		for j := range dl {
			dl[j] = d * float32(q3kScale(b[96:108], j))
		}
		for h := 0; h < 2; h++ {
			q := b[32+32*h : 64+32*h : 64+32*h]
			for k := 0; k < 4; k++ {
				shift, bit := uint(2*k), uint(4*h+k)
				yy := y[128*h+32*k : 128*h+32*k+32 : 128*h+32*k+32]
				for l, v := range q {
					c := int(v>>shift&3) - 4 + 4*int(hm[l]>>bit&1)
					yy[l] = dl[8*h+2*k+l/16] * float32(c)
				}
			}
		}
		src, dst = src[110:], dst[256:]
	}
}

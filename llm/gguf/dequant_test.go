package gguf

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/x448/float16"
)

func decode(t *testing.T, typ Type, src []byte) []float32 {
	t.Helper()
	n := len(src) / typ.BlockBytes() * typ.BlockSize()
	dst := make([]float32, n)
	if err := DequantizeRow(dst, typ, src); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestDequantPlain(t *testing.T) {
	// F16: every half, against the x448/float16 oracle.
	src := make([]byte, 2*65536)
	for h := 0; h < 65536; h++ {
		binary.LittleEndian.PutUint16(src[2*h:], uint16(h))
	}
	got := decode(t, F16, src)
	for h := 0; h < 65536; h++ {
		want := float16.Frombits(uint16(h)).Float32()
		if math.Float32bits(got[h]) != math.Float32bits(want) && !(want != want && got[h] != got[h]) {
			t.Fatalf("F16 %#04x: %v want %v", h, got[h], want)
		}
	}
	// BF16 is the upper half of an f32.
	got = decode(t, BF16, src)
	for h := 0; h < 65536; h++ {
		if math.Float32bits(got[h]) != uint32(h)<<16 {
			t.Fatalf("BF16 %#04x: %#08x", h, math.Float32bits(got[h]))
		}
	}
	f32 := []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0} // 1, -2
	if g := decode(t, F32, f32); g[0] != 1 || g[1] != -2 {
		t.Fatal(g)
	}
}

func TestDequantQ8_0Hand(t *testing.T) {
	blk := make([]byte, 2*34)
	binary.LittleEndian.PutUint16(blk[0:], 0x3800)  // 0.5
	binary.LittleEndian.PutUint16(blk[34:], 0xc400) // -4
	for j := 0; j < 32; j++ {
		blk[2+j] = byte(int8(j*8 - 128))
		blk[36+j] = byte(int8(127 - j))
	}
	got := decode(t, Q8_0, blk)
	for j := 0; j < 32; j++ {
		if want := float32(j*8-128) * 0.5; got[j] != want {
			t.Fatalf("block 0 [%d] = %v want %v", j, got[j], want)
		}
		if want := float32(127-j) * -4; got[32+j] != want {
			t.Fatalf("block 1 [%d] = %v want %v", j, got[32+j], want)
		}
	}
}

func TestDequantQ4_0Hand(t *testing.T) {
	blk := make([]byte, 18)
	binary.LittleEndian.PutUint16(blk, 0x3400) // 0.25
	// Value j (0–15) lives in the low nibble of byte j, value j+16 in its high nibble.
	want := make([]float32, 32)
	for j := 0; j < 16; j++ {
		lo, hi := byte(j), byte(15-(j*3)%16)
		blk[2+j] = lo | hi<<4
		want[j] = (float32(lo) - 8) / 4
		want[j+16] = (float32(hi) - 8) / 4
	}
	got := decode(t, Q4_0, blk)
	for j := range want {
		if got[j] != want[j] {
			t.Fatalf("[%d] = %v want %v", j, got[j], want[j])
		}
	}
}

// TestDequantQ4KHand builds a Q4_K super-block field by field from the layout
// description (not from the decoder's helper) and checks every value.
func TestDequantQ4KHand(t *testing.T) {
	sc := [8]uint8{1, 17, 33, 63, 5, 40, 50, 62}
	mn := [8]uint8{0, 2, 60, 7, 33, 63, 16, 48}
	blk := make([]byte, 144)
	binary.LittleEndian.PutUint16(blk[0:], 0x3c00) // d = 1
	binary.LittleEndian.PutUint16(blk[2:], 0x3800) // dmin = 0.5
	s := blk[4:16]
	// Bytes 0–3: scale j (low 6 bits) for j<4, top 2 bits = scale j+4's bits 4–5.
	// Bytes 4–7: min j (low 6 bits) for j<4, top 2 bits = min j+4's bits 4–5.
	// Bytes 8–11: low nibble = scale j+4's bits 0–3, high nibble = min j+4's bits 0–3.
	for j := 0; j < 4; j++ {
		s[j] = sc[j] | (sc[j+4]>>4)<<6
		s[4+j] = mn[j] | (mn[j+4]>>4)<<6
		s[8+j] = sc[j+4]&15 | (mn[j+4]&15)<<4
	}
	want := make([]float32, 256)
	for i := 0; i < 256; i++ {
		sub, pos := i/32, i%32
		q := uint8((i*7 + 3) % 16)
		byteIdx := 16 + 32*(sub/2) + pos
		if sub%2 == 0 {
			blk[byteIdx] |= q
		} else {
			blk[byteIdx] |= q << 4
		}
		// Every term is exact in float32 here (small integers and halves).
		want[i] = float32(float64(sc[sub])*float64(q) - 0.5*float64(mn[sub]))
	}
	got := decode(t, Q4_K, blk)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("[%d] (sub-block %d) = %v want %v", i, i/32, got[i], want[i])
		}
	}
}

// TestDequantQ6KHand builds a Q6_K super-block field by field.
func TestDequantQ6KHand(t *testing.T) {
	blk := make([]byte, 210)
	scales := [16]int8{-128, -77, -1, 0, 1, 2, 9, 33, 64, 100, 127, -5, -64, 17, -33, 55}
	for j, v := range scales {
		blk[192+j] = byte(v)
	}
	binary.LittleEndian.PutUint16(blk[208:], 0x3400) // d = 0.25
	want := make([]float32, 256)
	for i := 0; i < 256; i++ {
		q := uint8((i*37 + 11) % 64) // 6-bit code, value q − 32
		h, r := i/128, i%128
		g, l := r/32, r%32
		// Low 4 bits: ql byte 64h + l + 32·(g odd), high nibble for g ≥ 2.
		lb := 64*h + l + 32*(g&1)
		if g < 2 {
			blk[lb] |= q & 15
		} else {
			blk[lb] |= (q & 15) << 4
		}
		// High 2 bits: qh byte 32h + l, bits 2g and 2g+1.
		blk[128+32*h+l] |= (q >> 4) << (2 * g)
		want[i] = float32(0.25 * float64(scales[i/16]) * float64(int(q)-32))
	}
	got := decode(t, Q6_K, blk)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("[%d] = %v want %v", i, got[i], want[i])
		}
	}
}

func TestDequantQ4_1Q5Hand(t *testing.T) {
	// Q4_1: d = 0.5, m = −2; value = nibble·d + m.
	b41 := make([]byte, 20)
	binary.LittleEndian.PutUint16(b41, 0x3800)
	binary.LittleEndian.PutUint16(b41[2:], 0xc000)
	// Q5_0: d = 0.25; 5-bit code c, value (c − 16)·d; bit j of the u32 at
	// byte 2 is code j's fifth bit.
	b50 := make([]byte, 22)
	binary.LittleEndian.PutUint16(b50, 0x3400)
	// Q5_1: d = 2, m = 0.5; value = c·d + m; fifth bits at byte 4.
	b51 := make([]byte, 24)
	binary.LittleEndian.PutUint16(b51, 0x4000)
	binary.LittleEndian.PutUint16(b51[2:], 0x3800)
	var w41, w50, w51 [32]float32
	var qh50, qh51 uint32
	for j := 0; j < 32; j++ {
		c4 := uint8((j * 5) % 16)
		c5 := uint8((j*11 + 7) % 32)
		byteIdx, shift := j%16, uint(0)
		if j >= 16 {
			shift = 4
		}
		b41[4+byteIdx] |= c4 << shift
		b50[6+byteIdx] |= (c5 & 15) << shift
		b51[8+byteIdx] |= (c5 & 15) << shift
		qh50 |= uint32(c5>>4) << j
		qh51 |= uint32(c5>>4) << j
		w41[j] = float32(c4)*0.5 - 2
		w50[j] = (float32(c5) - 16) * 0.25
		w51[j] = float32(c5)*2 + 0.5
	}
	binary.LittleEndian.PutUint32(b50[2:], qh50)
	binary.LittleEndian.PutUint32(b51[4:], qh51)
	for _, c := range []struct {
		typ  Type
		blk  []byte
		want []float32
	}{{Q4_1, b41, w41[:]}, {Q5_0, b50, w50[:]}, {Q5_1, b51, w51[:]}} {
		got := decode(t, c.typ, c.blk)
		for j := range got {
			if got[j] != c.want[j] {
				t.Fatalf("%v [%d] = %v want %v", c.typ, j, got[j], c.want[j])
			}
		}
	}
}

// TestDequantQ5KHand builds a Q5_K super-block: Q4_K's header and nibble
// layout plus 32 bytes of fifth bits (qh[l] bit s = sub-block s, position l).
func TestDequantQ5KHand(t *testing.T) {
	sc := [8]uint8{3, 63, 20, 1, 48, 0, 33, 17}
	mn := [8]uint8{63, 1, 0, 40, 17, 9, 62, 31}
	blk := make([]byte, 176)
	binary.LittleEndian.PutUint16(blk[0:], 0x3800) // d = 0.5
	binary.LittleEndian.PutUint16(blk[2:], 0x4000) // dmin = 2
	s := blk[4:16]
	for j := 0; j < 4; j++ {
		s[j] = sc[j] | (sc[j+4]>>4)<<6
		s[4+j] = mn[j] | (mn[j+4]>>4)<<6
		s[8+j] = sc[j+4]&15 | (mn[j+4]&15)<<4
	}
	want := make([]float32, 256)
	for i := 0; i < 256; i++ {
		sub, pos := i/32, i%32
		c := uint8((i*13 + 5) % 32)
		nib := 48 + 32*(sub/2) + pos
		if sub%2 == 0 {
			blk[nib] |= c & 15
		} else {
			blk[nib] |= (c & 15) << 4
		}
		blk[16+pos] |= (c >> 4) << sub
		want[i] = float32(0.5*float64(sc[sub])*float64(c) - 2*float64(mn[sub]))
	}
	got := decode(t, Q5_K, blk)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("[%d] (sub-block %d) = %v want %v", i, i/32, got[i], want[i])
		}
	}
}

// TestDequantQ2KQ3KHand builds Q2_K and Q3_K super-blocks field by field.
// Both store 2-bit codes four to a byte: value 128h + 32k + l in byte
// 32h + l at bits 2k, 2k+1; sub-block (16 values) i/16.
func TestDequantQ2KQ3KHand(t *testing.T) {
	b2 := make([]byte, 84)
	binary.LittleEndian.PutUint16(b2[80:], 0x3800) // d = 0.5
	binary.LittleEndian.PutUint16(b2[82:], 0x3400) // dmin = 0.25
	b3 := make([]byte, 110)
	binary.LittleEndian.PutUint16(b3[108:], 0x4000) // d = 2
	var s2, m2 [16]uint8
	var s3 [16]int // stored 6-bit value; effective scale s3 − 32
	for j := 0; j < 16; j++ {
		s2[j], m2[j] = uint8((j*7+1)%16), uint8((j*5+3)%16)
		b2[j] = s2[j] | m2[j]<<4
		s3[j] = (j*23 + 9) % 64
		// Q3_K scale j: low nibble in byte j%8 (high nibble when j ≥ 8),
		// top two bits in byte 8 + j%4 at bit pair j/4.
		if j < 8 {
			b3[96+j] |= uint8(s3[j] & 15)
		} else {
			b3[96+j-8] |= uint8(s3[j]&15) << 4
		}
		b3[96+8+j%4] |= uint8(s3[j]>>4) << (2 * (j / 4))
	}
	want2 := make([]float32, 256)
	want3 := make([]float32, 256)
	for i := 0; i < 256; i++ {
		h, k, l := i/128, (i%128)/32, i%32
		c2 := uint8((i*3 + 1) % 4)
		b2[16+32*h+l] |= c2 << (2 * k)
		want2[i] = float32(0.5*float64(s2[i/16])*float64(c2) - 0.25*float64(m2[i/16]))
		c3 := (i*5 + 2) % 8 // 3-bit code; value c3 − 4
		b3[32+32*h+l] |= uint8(c3&3) << (2 * k)
		if c3 >= 4 { // the high bit lives in hmask[l], bit 4h + k
			b3[l] |= 1 << (4*h + k)
		}
		want3[i] = float32(2 * float64(s3[i/16]-32) * float64(c3-4))
	}
	for _, c := range []struct {
		typ  Type
		blk  []byte
		want []float32
	}{{Q2_K, b2, want2}, {Q3_K, b3, want3}} {
		got := decode(t, c.typ, c.blk)
		for i := range got {
			if got[i] != c.want[i] {
				t.Fatalf("%v [%d] = %v want %v", c.typ, i, got[i], c.want[i])
			}
		}
	}
}

// Literal transcriptions of ggml's reference decoders, one value at a time,
// used to check the package's decoders bit for bit on random blocks. Each
// C expression is evaluated in its C order with every operation rounded to
// float32.
func refQ4K(blk []byte, i int) float32 {
	d := float16.Frombits(binary.LittleEndian.Uint16(blk)).Float32()
	dmin := float16.Frombits(binary.LittleEndian.Uint16(blk[2:])).Float32()
	s := blk[4:16]
	j := i / 32
	var sc, m uint8
	if j < 4 {
		sc, m = s[j]&63, s[j+4]&63
	} else {
		sc = (s[j+4] & 0xF) | ((s[j-4] >> 6) << 4)
		m = (s[j+4] >> 4) | ((s[j-0] >> 6) << 4)
	}
	qb := blk[16+32*(j/2)+i%32]
	q := qb & 0xF
	if j%2 == 1 {
		q = qb >> 4
	}
	d1 := d * float32(sc)
	m1 := dmin * float32(m)
	p := float32(d1 * float32(q)) // explicit rounding: Go may fuse across statements
	return p - m1
}

func refQ6K(blk []byte, i int) float32 {
	d := float16.Frombits(binary.LittleEndian.Uint16(blk[208:])).Float32()
	n, r := i/128, i%128
	ql := blk[64*n:]
	qh := blk[128+32*n:]
	sc := blk[192+8*n:]
	l, g := r%32, r/32
	is := l / 16
	var q int
	switch g {
	case 0:
		q = int(int8((ql[l]&0xF)|(((qh[l]>>0)&3)<<4))) - 32
	case 1:
		q = int(int8((ql[l+32]&0xF)|(((qh[l]>>2)&3)<<4))) - 32
	case 2:
		q = int(int8((ql[l]>>4)|(((qh[l]>>4)&3)<<4))) - 32
	case 3:
		q = int(int8((ql[l+32]>>4)|(((qh[l]>>6)&3)<<4))) - 32
	}
	ds := d * float32(int8(sc[is+2*g]))
	return ds * float32(q)
}

func refQ4_0(blk []byte, i int) float32 {
	d := float16.Frombits(binary.LittleEndian.Uint16(blk)).Float32()
	x := int(blk[2+i%16] & 0x0F)
	if i >= 16 {
		x = int(blk[2+i%16] >> 4)
	}
	return float32(x-8) * d
}

func refQ4_1(blk []byte, i int) float32 {
	d := float16.Frombits(binary.LittleEndian.Uint16(blk)).Float32()
	m := float16.Frombits(binary.LittleEndian.Uint16(blk[2:])).Float32()
	x := int(blk[4+i%16] & 0x0F)
	if i >= 16 {
		x = int(blk[4+i%16] >> 4)
	}
	p := float32(float32(x) * d)
	return p + m
}

func refQ5_0(blk []byte, i int) float32 {
	d := float16.Frombits(binary.LittleEndian.Uint16(blk)).Float32()
	qh := binary.LittleEndian.Uint32(blk[2:])
	j := i % 16
	var x int32
	if i < 16 {
		xh := ((qh >> (j + 0)) << 4) & 0x10
		x = int32(uint32(blk[6+j]&0x0F)|xh) - 16
	} else {
		xh := (qh >> (j + 12)) & 0x10
		x = int32(uint32(blk[6+j]>>4)|xh) - 16
	}
	return float32(x) * d
}

func refQ5_1(blk []byte, i int) float32 {
	d := float16.Frombits(binary.LittleEndian.Uint16(blk)).Float32()
	m := float16.Frombits(binary.LittleEndian.Uint16(blk[2:])).Float32()
	qh := binary.LittleEndian.Uint32(blk[4:])
	j := i % 16
	var x uint32
	if i < 16 {
		x = uint32(blk[8+j]&0x0F) | ((qh>>(j+0))<<4)&0x10
	} else {
		x = uint32(blk[8+j]>>4) | (qh>>(j+12))&0x10
	}
	p := float32(float32(x) * d)
	return p + m
}

func refQ5K(blk []byte, i int) float32 {
	d := float16.Frombits(binary.LittleEndian.Uint16(blk)).Float32()
	dmin := float16.Frombits(binary.LittleEndian.Uint16(blk[2:])).Float32()
	s := blk[4:16]
	j := i / 32
	var sc, m uint8
	if j < 4 {
		sc, m = s[j]&63, s[j+4]&63
	} else {
		sc = (s[j+4] & 0xF) | ((s[j-4] >> 6) << 4)
		m = (s[j+4] >> 4) | ((s[j-0] >> 6) << 4)
	}
	l := i % 32
	ql := blk[48+32*(j/2)+l]
	u := uint8(1) << j // u1 = 1, u2 = 2, both shifted left by 2 per 64 values
	q := int(ql & 0xF)
	if j%2 == 1 {
		q = int(ql >> 4)
	}
	if blk[16+l]&u != 0 {
		q += 16
	}
	d1 := d * float32(sc)
	m1 := dmin * float32(m)
	p := float32(d1 * float32(q))
	return p - m1
}

func refQ2K(blk []byte, i int) float32 {
	d := float16.Frombits(binary.LittleEndian.Uint16(blk[80:])).Float32()
	dmin := float16.Frombits(binary.LittleEndian.Uint16(blk[82:])).Float32()
	n, r := i/128, i%128
	j, l := r/32, r%32
	q := blk[16+32*n:]
	is := 8*n + 2*j + l/16 // two scales per 32 values, in order
	sc := blk[is]
	dl := d * float32(sc&0xF)
	ml := dmin * float32(sc>>4)
	p := float32(dl * float32(int8((q[l]>>(2*j))&3)))
	return p - ml
}

func refQ3K(blk []byte, i int) float32 {
	const kmask1, kmask2 = 0x03030303, 0x0f0f0f0f
	dAll := float16.Frombits(binary.LittleEndian.Uint16(blk[108:])).Float32()
	var aux [4]uint32
	aux[0] = binary.LittleEndian.Uint32(blk[96:])
	aux[1] = binary.LittleEndian.Uint32(blk[100:])
	aux[2] = binary.LittleEndian.Uint32(blk[104:])
	tmp := aux[2]
	aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4)
	aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4)
	aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4)
	aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4)
	var scales [16]int8
	for k := 0; k < 16; k++ {
		scales[k] = int8(aux[k/4] >> (8 * (k % 4)))
	}
	n, r := i/128, i%128
	j, l := r/32, r%32
	q := blk[32+32*n:]
	hm := blk[0:32]
	m := uint8(1) << (4*n + j)
	is := 8*n + 2*j + l/16
	dl := dAll * float32(int(scales[is])-32)
	v := int(int8((q[l] >> (2 * j)) & 3))
	if hm[l]&m == 0 {
		v -= 4
	}
	return dl * float32(v)
}

func refQ8_0(blk []byte, i int) float32 {
	d := float16.Frombits(binary.LittleEndian.Uint16(blk)).Float32()
	return float32(int8(blk[2+i])) * d
}

// randomBlocks fills n blocks with random bytes, with every fp16 scale field
// forced finite (a NaN would defeat bit comparison).
func randomBlocks(typ Type, n int, seed uint64, halves []int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	bb := typ.BlockBytes()
	b := make([]byte, n*bb)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	for k := 0; k < n; k++ {
		for _, off := range halves {
			h := binary.LittleEndian.Uint16(b[k*bb+off:])
			if h&0x7c00 == 0x7c00 {
				h &^= 0x4000
			}
			binary.LittleEndian.PutUint16(b[k*bb+off:], h)
		}
	}
	return b
}

func TestDequantBitExact(t *testing.T) {
	cases := []struct {
		typ    Type
		halves []int
		ref    func([]byte, int) float32
	}{
		{Q8_0, []int{0}, refQ8_0},
		{Q4_0, []int{0}, refQ4_0},
		{Q4_1, []int{0, 2}, refQ4_1},
		{Q5_0, []int{0}, refQ5_0},
		{Q5_1, []int{0, 2}, refQ5_1},
		{Q5_K, []int{0, 2}, refQ5K},
		{Q2_K, []int{80, 82}, refQ2K},
		{Q3_K, []int{108}, refQ3K},
		{Q4_K, []int{0, 2}, refQ4K},
		{Q6_K, []int{208}, refQ6K},
	}
	for _, c := range cases {
		const blocks = 200
		src := randomBlocks(c.typ, blocks, uint64(c.typ), c.halves)
		got := decode(t, c.typ, src)
		bs, bb := c.typ.BlockSize(), c.typ.BlockBytes()
		for i, v := range got {
			blk := src[i/bs*bb : (i/bs+1)*bb]
			if want := c.ref(blk, i%bs); math.Float32bits(v) != math.Float32bits(want) {
				t.Fatalf("%v value %d: %v (%#08x) want %v (%#08x)", c.typ, i, v, math.Float32bits(v), want, math.Float32bits(want))
			}
		}
	}
}

func TestDequantErrors(t *testing.T) {
	if err := DequantizeRow(make([]float32, 256), IQ4_XS, make([]byte, 136)); !errors.Is(err, ErrUnsupportedType) {
		t.Error(err)
	}
	if err := DequantizeRow(make([]float32, 32), Type(99), make([]byte, 18)); !errors.Is(err, ErrUnsupportedType) {
		t.Error(err)
	}
	if err := DequantizeRow(make([]float32, 32), Q4_0, make([]byte, 19)); !errors.Is(err, ErrSize) {
		t.Error(err)
	}
	if err := DequantizeRow(make([]float32, 31), Q4_0, make([]byte, 18)); !errors.Is(err, ErrSize) {
		t.Error(err)
	}
	if err := DequantizeRow(nil, Q6_K, nil); err != nil {
		t.Error(err)
	}
	// Guard values around dst must survive.
	dst := make([]float32, 258)
	dst[0], dst[257] = 42, 43
	if err := DequantizeRow(dst[1:257], Q4_K, make([]byte, 144)); err != nil || dst[0] != 42 || dst[257] != 43 {
		t.Error("guard overwritten", err)
	}
}

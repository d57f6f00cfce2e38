package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The integer kernels of DotQ8_0Q8/DotQ4_0Q8: int8 activations times Q8_0
// or Q4_0 weights. A block's 32 products are exact in 16-bit pairs
// (|w| ≤ 128, |x| ≤ 127: VPMADDUBSW of |w| and x·sign(w) cannot
// saturate), summed to 32 bits with VPMADDWD against ones. Four such
// sums are reduced together by VPHADDD so that one conversion, one scale
// multiply and one add serve four dot products: a vector holds
// [4 sums of block b | 4 sums of block b+1], and the accumulator's lanes
// are (row, block parity), the generic twin's acc[b&1].

const quant8Sig = "func(out []float32, outStride int, xq []int8, xs []float32, rows []byte, n, d int)"

var q8Ones, q4Nibble, q4Bias8 *Mem

// bytesConst emits (once) a 32-byte constant of v repeated, as words or bytes.
func bytesConst(p **Mem, name string, v Constant) Mem {
	if *p == nil {
		m := GLOBL(name, RODATA|NOPTR)
		for i := range 8 {
			DATA(4*i, v)
		}
		*p = &m
	}
	return **p
}

func onesW() Mem   { return bytesConst(&q8Ones, "q8OnesW", U32(0x00010001)) }
func nibbleB() Mem { return bytesConst(&q4Nibble, "q4NibbleB", U32(0x0f0f0f0f)) }
func eightB() Mem  { return bytesConst(&q4Bias8, "q4EightB", U32(0x08080808)) }
func q8Name(f quantFormat, rows int, vnni bool) string {
	if vnni {
		return "dot" + string(rune('0'+rows)) + f.name + "Q8VNNI"
	}
	return "dot" + string(rune('0'+rows)) + f.name + "Q8AVX2"
}

// weights8 loads the 32 weights of the block whose scale is at m (values
// from m.Disp+2) as signed bytes.
func (f quantFormat) weights8(m Mem) VecVirtual {
	w := YMM()
	m.Disp += 2
	switch f.name {
	case "Q8_0":
		VMOVDQU(m, w)
	case "Q4_0":
		// Byte j: value j in the low nibble, j+16 in the high one.
		lo, hi := XMM(), XMM()
		VMOVDQU(m, lo)
		VPSRLW(U8(4), lo, hi)
		VINSERTI128(U8(1), hi, lo.AsY(), w)
		VPAND(nibbleB(), w, w)
		VPSUBB(eightB(), w, w)
	}
	return w
}

// pairSums returns the eight 32-bit sums of adjacent products of the bytes
// of w (|w| in aw) and x.
func pairSums(aw, w, x, ones VecVirtual, vnni bool) VecVirtual {
	sx := YMM()
	VPSIGNB(w, x, sx)
	if vnni { // one instruction, the same sums (dword k: bytes 4k…4k+3)
		a := YMM()
		VPXOR(a, a, a)
		VPDPBUSD(sx, aw, a)
		return a
	}
	VPMADDUBSW(sx, aw, sx)
	VPMADDWD(ones, sx, sx)
	return sx
}

// reduce4 turns the pair sums of four dot products into one vector:
// lane i (i < 4) the sum over the low 16 bytes of a[i], lane 4+i over the
// high 16.
func reduce4(a [4]VecVirtual) VecVirtual {
	VPHADDD(a[1], a[0], a[0])
	VPHADDD(a[3], a[2], a[2])
	VPHADDD(a[2], a[0], a[0])
	return a[0]
}

// blockPairSums adds the halves of z0 (block b) and z1 (block b+1):
// [sums of block b | sums of block b+1], converted to float32.
func blockPairSums(z0, z1 VecVirtual) VecVirtual {
	t := YMM()
	VPERM2I128(U8(0x21), z1, z0, t) // [z0 hi | z1 lo]
	VPBLENDD(U8(0xf0), z1, z0, z0)  // [z0 lo | z1 hi]
	VPADDD(t, z0, z0)
	VCVTDQ2PS(z0, z0)
	return z0
}

// lastBlockSums is blockPairSums for a last, unpaired block: its sums in
// the low four lanes, zeros in the high four.
func lastBlockSums(z VecVirtual) VecVirtual {
	hi := XMM()
	VEXTRACTI128(U8(1), z, hi)
	VPADDD(hi, z.AsX(), z.AsX()) // a VEX 128-bit op: the high lanes become 0
	VCVTDQ2PS(z, z)
	return z
}

// accumulate adds sums·(wScale·xScale) to acc, each product rounded (the
// generic twin's order: no fused multiply-add).
func accumulate(acc, sums, wScale VecVirtual, xScale Op) {
	VMULPS(xScale, wScale, wScale)
	VMULPS(wScale, sums, sums)
	VADDPS(sums, acc, acc)
}

// dotQuant8x4 emits the four-activation-row kernel: per weight row, per
// pair of blocks, the 8 dot products (4 rows × 2 blocks) of one vector.
func dotQuant8x4(f quantFormat, vnni bool) {
	name := q8Name(f, 4, vnni)
	TEXT(name, NOSPLIT, quant8Sig)
	Doc(name+" is DotQ"+f.name[1:]+"Q8 for four activation rows (len(xq) = 4·d, xs their group's scales):",
		"lanes (row, block parity), each weight block unpacked once for the four rows.")
	Pragma("noescape")
	o := Load(Param("out").Base(), GP64())
	xq := Load(Param("xq").Base(), GP64())
	xs := Load(Param("xs").Base(), GP64())
	r := Load(Param("rows").Base(), GP64())
	n := Load(Param("n"), GP64())
	qs := Load(Param("d"), GP64()) // activation row stride, bytes
	nb := GP64()
	MOVQ(qs, nb)
	SHRQ(U8(5), nb)
	xrow := newRows4(qs).at
	os := Load(Param("outStride"), GP64())
	SHLQ(U8(2), os)
	ones := YMM()
	VMOVDQU(onesW(), ones)
	block := func(p, xp Register, blk int) VecVirtual {
		w := f.weights8(Mem{Base: p, Disp: blk * f.blockBytes})
		aw := YMM()
		VPABSB(w, aw)
		var a [4]VecVirtual
		for i := range a {
			x := YMM()
			VMOVDQU(xrow(xp, i, 32*blk), x)
			a[i] = pairSums(aw, w, x, ones, vnni)
		}
		return reduce4(a)
	}
	Label(name + "_row")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	acc := YMM()
	VXORPS(acc, acc, acc)
	xp, sp, j := GP64(), GP64(), GP64()
	MOVQ(xq, xp)
	MOVQ(xs, sp)
	MOVQ(nb, j)
	Label(name + "_pair")
	CMPQ(j, U8(2))
	JB(LabelRef(name + "_tail"))
	{
		z0 := block(r, xp, 0)
		z1 := block(r, xp, 1)
		sums := blockPairSums(z0, z1)
		h0, h1, ws := XMM(), XMM(), YMM()
		VPBROADCASTW(Mem{Base: r}, h0)
		VPBROADCASTW(Mem{Base: r, Disp: f.blockBytes}, h1)
		VPUNPCKLQDQ(h1, h0, h0) // [w_b ×4 | w_b+1 ×4]
		VCVTPH2PS(h0, ws)
		xsc := YMM()
		VMOVUPS(Mem{Base: sp}, xsc)
		accumulate(acc, sums, ws, xsc)
	}
	ADDQ(U32(2*f.blockBytes), r)
	ADDQ(U8(64), xp)
	ADDQ(U8(32), sp)
	SUBQ(U8(2), j)
	JMP(LabelRef(name + "_pair"))
	Label(name + "_tail")
	TESTQ(j, j)
	JZ(LabelRef(name + "_sum"))
	{
		sums := lastBlockSums(block(r, xp, 0))
		h0, ws := XMM(), YMM()
		VPBROADCASTW(Mem{Base: r}, h0)
		VMOVQ(h0, h0) // [w_b ×4 | 0 ×4]
		VCVTPH2PS(h0, ws)
		xsc := XMM()
		VMOVUPS(Mem{Base: sp}, xsc) // the high lanes become 0
		accumulate(acc, sums, ws, xsc.AsY())
	}
	ADDQ(U32(f.blockBytes), r)
	Label(name + "_sum")
	hi := XMM()
	VEXTRACTF128(U8(1), acc, hi)
	lo := acc.AsX()
	VADDPS(hi, lo, lo) // lane i: row i's acc[0] + acc[1]
	for i := range 4 {
		m := Mem{Base: o}
		switch i {
		case 1:
			m = Mem{Base: o, Index: os, Scale: 1}
		case 2:
			m = Mem{Base: o, Index: os, Scale: 2}
		case 3:
			t := GP64()
			LEAQ(Mem{Base: o, Index: os, Scale: 2}, t)
			m = Mem{Base: t, Index: os, Scale: 1}
		}
		s := XMM()
		VPERMILPS(U8(i), lo, s)
		VADDSS(m, s, s)
		VMOVSS(s, m)
	}
	ADDQ(U8(4), o)
	DECQ(n)
	JMP(LabelRef(name + "_row"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// dotQuant8x1 emits the one-activation-row kernel: four weight rows at a
// time, the lanes (weight row, block parity), the activation block loaded
// once for the four.
func dotQuant8x1(f quantFormat, vnni bool) {
	name := q8Name(f, 1, vnni)
	TEXT(name, NOSPLIT, quant8Sig)
	Doc(name+" is DotQ"+f.name[1:]+"Q8 for one activation row (len(xq) = d, xs its scales at stride 4)",
		"and n a multiple of 4: lanes (weight row, block parity).")
	Pragma("noescape")
	o := Load(Param("out").Base(), GP64())
	xq := Load(Param("xq").Base(), GP64())
	xs := Load(Param("xs").Base(), GP64())
	r := Load(Param("rows").Base(), GP64())
	n := Load(Param("n"), GP64())
	nb := Load(Param("d"), GP64())
	SHRQ(U8(5), nb)
	rb := GP64() // weight row bytes
	IMUL3Q(U32(f.blockBytes), nb, rb)
	wrow := newRows4(rb).at
	ones := YMM()
	VMOVDQU(onesW(), ones)
	block := func(p, xp Register, blk int) VecVirtual {
		x := YMM()
		VMOVDQU(Mem{Base: xp, Disp: 32 * blk}, x)
		var a [4]VecVirtual
		for k := range a {
			w := f.weights8(wrow(p, k, blk*f.blockBytes))
			aw := YMM()
			VPABSB(w, aw)
			a[k] = pairSums(aw, w, x, ones, vnni)
		}
		return reduce4(a)
	}
	// weightScales gathers the fp16 scales of block blk of the four rows
	// into words 4·blk … 4·blk+3 of h.
	weightScales := func(h VecVirtual, p Register, blk int) {
		for k := range 4 {
			VPINSRW(U8(4*blk+k), wrow(p, k, blk*f.blockBytes), h, h)
		}
	}
	Label(name + "_rows")
	CMPQ(n, U8(4))
	JB(LabelRef(name + "_done"))
	acc := YMM()
	VXORPS(acc, acc, acc)
	p, xp, sp, j := GP64(), GP64(), GP64(), GP64()
	MOVQ(r, p)
	MOVQ(xq, xp)
	MOVQ(xs, sp)
	MOVQ(nb, j)
	// The four rows are walked side by side, which the hardware prefetcher
	// follows poorly: fetch the same place in the next four rows ahead,
	// into L2 (PREFETCHT1: the 123M Q8_0 model's decode step 1.2× faster
	// than with T0 on Zen 4, BENCHMARKS.md session 13).
	ahead := GP64()
	LEAQ(Mem{Base: p, Index: rb, Scale: 4}, ahead)
	Label(name + "_pair")
	CMPQ(j, U8(2))
	JB(LabelRef(name + "_tail"))
	{
		for k := range 4 {
			PREFETCHT1(wrow(ahead, k, 0))
		}
		ADDQ(U32(2*f.blockBytes), ahead)
		z0 := block(p, xp, 0)
		z1 := block(p, xp, 1)
		sums := blockPairSums(z0, z1)
		h, ws := XMM(), YMM()
		VPXOR(h, h, h)
		weightScales(h, p, 0)
		weightScales(h, p, 1)
		VCVTPH2PS(h, ws)
		x0, xsc := YMM(), YMM()
		VBROADCASTSS(Mem{Base: sp}, x0)
		VBROADCASTSS(Mem{Base: sp, Disp: 16}, xsc)
		VBLENDPS(U8(0x0f), x0, xsc, xsc) // [x_b ×4 | x_b+1 ×4]
		accumulate(acc, sums, ws, xsc)
	}
	ADDQ(U32(2*f.blockBytes), p)
	ADDQ(U8(64), xp)
	ADDQ(U8(32), sp)
	SUBQ(U8(2), j)
	JMP(LabelRef(name + "_pair"))
	Label(name + "_tail")
	TESTQ(j, j)
	JZ(LabelRef(name + "_sum"))
	{
		sums := lastBlockSums(block(p, xp, 0))
		h, ws := XMM(), YMM()
		VPXOR(h, h, h)
		weightScales(h, p, 0) // words 4–7 stay 0
		VCVTPH2PS(h, ws)
		xsc := XMM()
		VBROADCASTSS(Mem{Base: sp}, xsc) // the high lanes become 0
		accumulate(acc, sums, ws, xsc.AsY())
	}
	Label(name + "_sum")
	hi := XMM()
	VEXTRACTF128(U8(1), acc, hi)
	lo := acc.AsX()
	VADDPS(hi, lo, lo) // lane k: weight row k's acc[0] + acc[1]
	VADDPS(Mem{Base: o}, lo, lo)
	VMOVUPS(lo, Mem{Base: o})
	ADDQ(U8(16), o)
	LEAQ(Mem{Base: r, Index: rb, Scale: 4}, r)
	SUBQ(U8(4), n)
	JMP(LabelRef(name + "_rows"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// quantizeQ8 emits quantizeQ8AVX2, Q8Rows.Quantize for one row: per block
// of 32, amax from the integer maximum of the values' magnitude bits (the
// generic twin's order, NaNs above infinities), then values
// round-half-even(x·(127/amax)) (VCVTPS2DQ under the default rounding
// mode) and the scale amax/127 rounded to fp16 and back. A block with an
// infinity or NaN gets zeros and a NaN scale, a block of zeros zeros and 0.
func quantizeQ8() {
	TEXT("quantizeQ8AVX2", NOSPLIT, "func(dst []int8, scales []float32, x []float32)")
	Doc("quantizeQ8AVX2 is quantizeBlock8 over the len(x)/32 blocks of one row: values to dst,",
		"block b's scale to scales[4b].")
	Pragma("noescape")
	dst := Load(Param("dst").Base(), GP64())
	sp := Load(Param("scales").Base(), GP64())
	xp := Load(Param("x").Base(), GP64())
	nb := Load(Param("x").Len(), GP64())
	SHRQ(U8(5), nb)
	mask, lim, nlim, order := YMM(), YMM(), YMM(), YMM()
	VPBROADCASTD(ConstData("q8AbsMask", U32(0x7fffffff)), mask)
	VPBROADCASTD(ConstData("q8Max", U32(127)), lim)
	VPBROADCASTD(ConstData("q8Min", U32(0xffffff81)), nlim) // −127
	perm := GLOBL("q8PackOrder", RODATA|NOPTR)
	for i, v := range []uint32{0, 4, 1, 5, 2, 6, 3, 7} {
		DATA(4*i, U32(v))
	}
	VMOVDQU(perm, order)
	c127 := ConstData("q8Max32", F32(127))
	Label("q8q_block")
	TESTQ(nb, nb)
	JZ(LabelRef("q8q_done"))
	var v [4]VecVirtual
	m := YMM()
	for k := range v {
		v[k] = YMM()
		VMOVUPS(Mem{Base: xp, Disp: 32 * k}, v[k])
		if k == 0 {
			VPAND(v[k], mask, m)
		} else {
			t := YMM()
			VPAND(v[k], mask, t)
			VPMAXUD(t, m, m)
		}
	}
	hi := XMM()
	VEXTRACTI128(U8(1), m, hi)
	mx := m.AsX()
	VPMAXUD(hi, mx, mx)
	VPSHUFD(U8(0x4e), mx, hi)
	VPMAXUD(hi, mx, mx)
	VPSHUFD(U8(0xb1), mx, hi)
	VPMAXUD(hi, mx, mx) // every lane: the block's largest magnitude, as bits
	bits := GP32()
	VMOVD(mx, bits)
	CMPL(bits, U32(0x7f800000))
	JAE(LabelRef("q8q_nan"))
	TESTL(bits, bits)
	JZ(LabelRef("q8q_zero"))
	inv := XMM()
	VMOVSS(c127, inv)
	VDIVSS(mx, inv, inv) // 127/amax
	iv := YMM()
	VBROADCASTSS(inv, iv)
	for k := range v {
		VMULPS(iv, v[k], v[k])
		VCVTPS2DQ(v[k], v[k]) // round half to even
		VPMINSD(lim, v[k], v[k])
		VPMAXSD(nlim, v[k], v[k])
	}
	// Packing works within 128-bit lanes: the bytes come out in groups of
	// four in the order 0 2 4 6 1 3 5 7, which VPERMD puts back.
	VPACKSSDW(v[1], v[0], v[0])
	VPACKSSDW(v[3], v[2], v[2])
	VPACKSSWB(v[2], v[0], v[0])
	VPERMD(v[0], order, v[0])
	VMOVDQU(v[0], Mem{Base: dst})
	sc := XMM()
	VDIVSS(c127, mx, sc) // amax/127
	VCVTPS2PH(U8(0), sc, sc)
	VCVTPH2PS(sc, sc)
	VMOVSS(sc, Mem{Base: sp})
	Label("q8q_next")
	ADDQ(U32(128), xp)
	ADDQ(U8(32), dst)
	ADDQ(U8(16), sp)
	DECQ(nb)
	JMP(LabelRef("q8q_block"))
	Label("q8q_nan")
	MOVL(U32(0x7fc00000), bits)
	JMP(LabelRef("q8q_special"))
	Label("q8q_zero")
	XORL(bits, bits)
	Label("q8q_special")
	MOVL(bits, Mem{Base: sp})
	z := YMM()
	VPXOR(z, z, z)
	VMOVDQU(z, Mem{Base: dst})
	JMP(LabelRef("q8q_next"))
	Label("q8q_done")
	VZEROUPPER()
	RET()
}

package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The AVX2 integer value kernels (AxpyCodesQ8 for 3- and 4-bit codes, and
// the weight quantizers they need), for CPUs without AVX-512 VBMI. A pass
// takes sixteen coordinates (8 index bytes; 3 bits: 6, widened to 8 by
// PDEP or spread3) of four codes at a time: the four tokens' bytes are put
// side by side (two quadword loads per 128-bit half, VPERMD, then a 4×4
// byte transpose by VPSHUFB), so that a doubleword holds one byte position
// of the four tokens; the nibbles are looked up in the 16-entry table
// (VPSHUFB), multiplied by the four tokens' weights (VPMADDUBSW: u8 table
// byte × s8 weight, exact in 16 bits) and summed to 32 bits (VPMADDWD by
// ones). The sums are exact, so the bits are those of the generic twin and
// of the AVX-512 kernels.

const weights8AVX2Sig = "func(dst []int8, sums *[4]int32, amax *[4]float32, w []float32, wStride int, codes []byte, stride, normOff, m int)"

// weightsQ8AVX2 emits weightsQ8AVX2x<R>: weightsQ8AVX512 for the first R
// rows (1–4) and m ≤ 64 tokens, eight a vector, with rows R…3 zero.
func weightsQ8AVX2(R int) {
	name := fmt_("weightsQ8AVX2x%d", R)
	TEXT(name, NOSPLIT, weights8AVX2Sig)
	Doc(name+" quantizes the weights times norms of m (≤ 64) tokens for the first "+fmt_("%d", R)+" rows (token t",
		"of row i at w[i*wStride+t]; the fp16 norm of code t read as weightsQ8AVX512 reads it) to dst",
		"([quad][row][token]) as weightsQ8AVX512 does, the rows past them and the tokens past m 0.")
	Pragma("noescape")
	norms := AllocLocal(8 * 32)
	// Registers move to vectors with VMOVQ: the SSE MOVQ, once the upper
	// halves were dirty, made this quantizer three times as slow on the
	// Intel host.
	mv := YMM() // m in every lane
	mp := GP64()
	Load(Param("m"), mp)
	VMOVQ(mp, mv.AsX())
	VPBROADCASTD(mv.AsX(), mv)
	iota := iota8()
	// tokens returns the mask of chunk c's tokens below m.
	tokens := func(c int) VecVirtual {
		k := YMM()
		VPCMPGTD(Mem{Base: iota.Base, Symbol: iota.Symbol, Disp: iota.Disp + 32*c}, mv, k)
		return k
	}
	// The norms, gathered eight codes at a time.
	np, sh := normDoubleword("normOff", Load(Param("codes").Base(), GP64()))
	shv, idx := YMM(), YMM()
	VMOVQ(sh, shv.AsX())
	VPBROADCASTD(shv.AsX(), shv)
	step := Load(Param("stride"), GP64())
	VMOVQ(step, idx.AsX())
	VPBROADCASTD(idx.AsX(), idx)
	VPMULLD(Mem{Base: iota.Base, Symbol: iota.Symbol, Disp: iota.Disp}, idx, idx)
	SHLQ(U8(3), step)
	for c := range 8 {
		k, x := tokens(c), YMM()
		VPXOR(x, x, x)
		VPGATHERDD(k, Mem{Base: np, Index: idx, Scale: 1}, x)
		VPSRLVD(shv, x, x)
		VPSHUFB(halvesCtl(), x, x) // each doubleword's low half, per 128-bit lane
		VPERMQ(U8(0x08), x, x)
		f := YMM()
		VCVTPH2PS(x.AsX(), f)
		VMOVUPS(f, Mem{Base: norms.Base, Disp: norms.Disp + 32*c})
		if c < 7 {
			ADDQ(step, np)
		}
	}
	wb := Load(Param("w").Base(), GP64())
	ws := Load(Param("wStride"), GP64())
	SHLQ(U8(2), ws)
	wr := newRows4(ws)
	load := func(r, c int, k VecVirtual) VecVirtual {
		y := YMM()
		VMASKMOVPS(wr.at(wb, r, 32*c), k, y)
		VMULPS(Mem{Base: norms.Base, Disp: norms.Disp + 32*c}, y, y)
		return y
	}
	// The rows' largest magnitudes.
	mx := make([]VecVirtual, R)
	for r := range mx {
		mx[r] = YMM()
		VPXOR(mx[r], mx[r], mx[r])
	}
	for c := range 8 {
		k := tokens(c)
		for r := range R {
			y := load(r, c, k)
			VANDPS(vconst("values8Abs", U32(0x7fffffff)), y, y)
			VMAXPS(y, mx[r], mx[r])
		}
	}
	amax := Load(Param("amax"), GP64())
	inv := make([]VecVirtual, R)
	c127, zero := XMM(), XMM()
	VMOVSS(vconst("values8Max", F32(127)), c127)
	VXORPS(zero, zero, zero)
	for r := range R {
		m := hfold(mx[r], func(a, b, dst Op) { VMAXPS(a, b, dst) }, func(a, b, dst Op) { VMAXSS(a, b, dst) })
		VMOVSS(m, Mem{Base: amax, Disp: 4 * r})
		q, nz := XMM(), XMM()
		VDIVSS(m, c127, q)
		VCMPPS(U8(4), zero, m, nz) // amax ≠ 0 (else 0)
		VANDPS(nz, q, q)
		inv[r] = YMM()
		VBROADCASTSS(q, inv[r])
	}
	for r := R; r < 4; r++ {
		MOVL(U32(0), Mem{Base: amax, Disp: 4 * r})
	}
	// Quantize, sum, and lay out: per chunk of eight tokens, the four rows
	// packed into two quads of [row][token] bytes.
	sum := make([]VecVirtual, R)
	for r := range sum {
		sum[r] = YMM()
		VPXOR(sum[r], sum[r], sum[r])
	}
	zy := YMM()
	VPXOR(zy, zy, zy)
	dst := Load(Param("dst").Base(), GP64())
	for c := range 8 {
		k := tokens(c)
		var y [4]VecVirtual
		for r := range 4 {
			if r >= R {
				y[r] = zy
				continue
			}
			y[r] = load(r, c, k)
			VMULPS(inv[r], y[r], y[r])
			VCVTPS2DQ(y[r], y[r]) // round half to even (MXCSR default)
			VPADDD(y[r], sum[r], sum[r])
		}
		a, b := YMM(), YMM()
		VPACKSSDW(y[1], y[0], a) // |values| ≤ 127: the packs are exact
		VPACKSSDW(y[3], y[2], b)
		VPACKSSWB(b, a, a)
		VMOVDQU(a, Mem{Base: dst, Disp: 32 * c})
	}
	sp := Load(Param("sums"), GP64())
	for r := range 4 {
		if r >= R {
			MOVL(U32(0), Mem{Base: sp, Disp: 4 * r})
			continue
		}
		s, h := sum[r], XMM()
		VEXTRACTI128(U8(1), s, h)
		VPADDD(h, s.AsX(), h)
		t := XMM()
		VPSHUFD(U8(0x4e), h, t)
		VPADDD(t, h, h)
		VPSHUFD(U8(0xb1), h, t)
		VPADDD(t, h, h)
		VMOVD(h, Mem{Base: sp, Disp: 4 * r})
	}
	VZEROUPPER()
	RET()
}

// iota8 emits (once) the doublewords 0…63, eight a chunk.
func iota8() Mem {
	return global("values8Iota", func() {
		for j := range 64 {
			DATA(4*j, U32(uint32(j)))
		}
	})
}

// halvesCtl emits (once) the VPSHUFB control that gathers the low 16 bits
// of each doubleword into the low 8 bytes of its 128-bit lane.
func halvesCtl() Mem {
	return global("values8Halves", func() {
		for lane := range 2 {
			for j := range 16 {
				v := 0x80
				if j < 8 {
					v = 4*(j/2) + j%2
				}
				DATA(16*lane+j, U8(v))
			}
		}
	})
}

// axpyCodes8AVX2 emits axpyCodesQ8B<bits>x<R>AVX2: axpyCodesQ8B<bits>x<R>VBMI
// on AVX2. 3-bit indices are first widened to the 4-bit layout, 16 from
// the 6 bytes that hold them: by vector shuffles and multiplies (spread3),
// or, with pdep, by BMI2's PDEP on each code's quadword (the
// axpyCodesQ8B3x<R>BMI2 kernels, 20% faster where PDEP is fast; it is
// microcoded on AMD before Zen 3).
func axpyCodes8AVX2(bits, R int, pdep bool) {
	name := fmt_("axpyCodesQ8B%dx%dAVX2", bits, R)
	if pdep {
		name = fmt_("axpyCodesQ8B%dx%dBMI2", bits, R)
	}
	TEXT(name, NOSPLIT, values8Sig)
	Doc(name + " is axpyCodesQ8B" + fmt_("%d", bits) + "x" + fmt_("%d", R) + "VBMI on AVX2: sixteen coordinates of four codes a step.")
	Pragma("noescape")
	tab, perm := YMM(), YMM()
	VBROADCASTI128(Mem{Base: Load(Param("tab"), GP64())}, tab)
	VMOVDQU(global("values8Quads", func() { // the first and second doublewords of the four tokens' quadwords
		for j, v := range []uint32{0, 2, 4, 6, 1, 3, 5, 7} {
			DATA(4*j, U32(v))
		}
	}), perm)
	transpose := global("values8Transpose", func() { // byte 4p+t takes token t's byte p
		for lane := range 2 {
			for o := range 16 {
				DATA(16*lane+o, U8(4*(o%4)+o/4))
			}
		}
	})
	pa, pn := aheadParams()
	accp := Load(Param("acc").Base(), GP64())
	ip := Load(Param("codes").Base(), GP64())
	ADDQ(Load(Param("idxOff"), GP64()), ip)
	dleft := Load(Param("d64"), GP64())
	Label(name + "_group")
	for c := range 4 { // 16 coordinates each: 8 (3 bits: 6) index bytes a code
		axpyCodes8AVX2Chunk(fmt_("%s_c%d", name, c), bits, R, c, pdep, accp, ip, tab, perm, transpose, pa, pn)
	}
	ADDQ(U32(256), accp)
	ADDQ(U8(8*bits), ip)
	SUBQ(U8(64), dleft)
	JNZ(LabelRef(name + "_group"))
	VZEROUPPER()
	RET()
}

// axpyCodes8AVX2Chunk emits chunk c (coordinates 16c…16c+15 of the group
// of 64 at accp and ip) of axpyCodes8AVX2. The last 3-bit chunk loads its
// quadwords from 2 bytes early, so that nothing past a code's indices is
// read.
func axpyCodes8AVX2Chunk(name string, bits, R, c int, pdep bool, accp, ip Register, tab, perm VecVirtual, transpose Mem, pa, pn Register) {
	var a [4][2]VecVirtual // [row][even, odd coordinates]
	for r := range R {
		for h := range a[r] {
			a[r][h] = YMM()
			VPXOR(a[r][h], a[r][h], a[r][h])
		}
	}
	at, early := 2*bits*c, 0
	if bits == 3 && c == 3 {
		at, early = at-2, 2
	}
	qw := newQuadWalk(Mem{Base: ip, Disp: at})
	// The quad adds the products of the four tokens at p, p+s1, p+s2, p+s3.
	qw.loop(name, pa, pn, 1, func() {
		p, s1, s2, s3 := qw.p, qw.s1, qw.s2, qw.s3
		lo, hi := XMM(), XMM()
		x, o := YMM(), YMM()
		if bits == 3 && pdep { // each index to the low 3 bits of its own nibble
			nib := global("values8Nibbles3", func() { DATA(0, U64(0x7777777777777777)) })
			for k, m := range []Mem{{Base: p}, {Base: p, Index: s1, Scale: 1}, {Base: p, Index: s2, Scale: 1}, {Base: p, Index: s3, Scale: 1}} {
				g := GP64()
				MOVQ(m, g)
				if early > 0 {
					SHRQ(U8(8*early), g)
				}
				PDEPQ(nib, g, g)
				dst := []VecVirtual{lo, lo, hi, hi}[k]
				if k%2 == 0 {
					VMOVQ(g, dst)
				} else {
					VPINSRQ(U8(1), g, dst, dst)
				}
			}
			VINSERTI128(U8(1), hi, lo.AsY(), x)
		} else {
			VMOVQ(Mem{Base: p}, lo)
			VPINSRQ(U8(1), Mem{Base: p, Index: s1, Scale: 1}, lo, lo)
			VMOVQ(Mem{Base: p, Index: s2, Scale: 1}, hi)
			VPINSRQ(U8(1), Mem{Base: p, Index: s3, Scale: 1}, hi, hi)
			VINSERTI128(U8(1), hi, lo.AsY(), x)
			if bits == 3 {
				x = spread3(x, early)
			}
		}
		VPERMD(x, perm, x)
		VPSHUFB(transpose, x, x) // doubleword p: byte p of the four tokens (lane 1: byte 4+p)
		VPSRLW(U8(4), x, o)
		VPAND(nibbleB(), x, x)
		VPAND(nibbleB(), o, o)
		VPSHUFB(x, tab, x) // the even coordinates' table bytes
		VPSHUFB(o, tab, o) // the odd ones'
		for r := range R {
			wt := YMM()
			VPBROADCASTD(Mem{Base: qw.wp, Disp: 4 * r}, wt)
			for h, u := range []VecVirtual{x, o} {
				t := YMM()
				VPMADDUBSW(wt, u, t)
				VPMADDWD(onesW(), t, t)
				VPADDD(t, a[r][h], a[r][h])
			}
		}
	})
	scales, offs, rows, rs := values8FinishParams()
	row := GP64()
	LEAQ(Mem{Base: accp, Disp: 64 * c}, row)
	for r := range R {
		if r > 0 {
			CMPQ(rows, U8(r))
			JLE(LabelRef(name + "_next"))
			ADDQ(rs, row)
		}
		// Even and odd coordinates back in order: lane 0 of the even
		// sums holds coordinates 0, 2, 4, 6 and lane 1 8, …, 14.
		e, f := YMM(), YMM()
		VPUNPCKLDQ(a[r][1], a[r][0], e) // 0–3 | 8–11
		VPUNPCKHDQ(a[r][1], a[r][0], f) // 4–7 | 12–15
		c0, c1 := YMM(), YMM()
		VPERM2I128(U8(0x20), f, e, c0)
		VPERM2I128(U8(0x31), f, e, c1)
		for o, x := range []VecVirtual{c0, c1} {
			ob := YMM()
			VPBROADCASTD(Mem{Base: offs, Disp: 4 * r}, ob)
			VPSUBD(ob, x, x)
			VCVTDQ2PS(x, x)
			sc := YMM()
			VBROADCASTSS(Mem{Base: scales, Disp: 4 * r}, sc)
			VMULPS(sc, x, x)
			VADDPS(Mem{Base: row, Disp: 32 * o}, x, x)
			VMOVUPS(x, Mem{Base: row, Disp: 32 * o})
		}
	}
	Label(name + "_next")
}

// spread3 widens the 16 3-bit indices in 6 bytes of each quadword of x
// (from byte early) to 16 nibbles: per output byte j (indices 2j, 2j+1, bits 6j…6j+5),
// VPSHUFB puts the two bytes that hold them in a word, VPMULLW by
// 2^(8−6j mod 8) and a shift right by 8 bring them to the bottom, and
// (v & 7) | ((2v) & 0x70) puts the second index in the high nibble.
func spread3(x VecVirtual, early int) VecVirtual {
	ctl := global(fmt_("values8Spread3At%d", early), func() { // [first token's words | second token's], per 128-bit lane
		for v := range 2 {
			for lane := range 2 {
				for j := range 8 {
					b := 8*v + 6*j/8 + early
					DATA(32*v+16*lane+2*j, U8(b))
					DATA(32*v+16*lane+2*j+1, U8(b+1))
				}
			}
		}
	})
	mul := global("values8Mul3", func() {
		for k := range 16 {
			DATA(2*k, U16(1<<(8-6*(k%8)%8)))
		}
	})
	var w [2]VecVirtual
	for v := range w {
		w[v] = YMM()
		VPSHUFB(Mem{Base: ctl.Base, Symbol: ctl.Symbol, Disp: ctl.Disp + 32*v}, x, w[v])
		VPMULLW(mul, w[v], w[v])
		VPSRLW(U8(8), w[v], w[v])
		t := YMM()
		VPADDW(w[v], w[v], t)
		VPAND(wordsConst("values8Seven", 0x07), w[v], w[v])
		VPAND(wordsConst("values8High3", 0x70), t, t)
		VPOR(t, w[v], w[v])
	}
	y := YMM()
	VPACKUSWB(w[1], w[0], y) // [token a's 8 bytes, token b's | …]
	return y
}

// wordsConst emits (once) a 32-byte constant of the word v repeated.
func wordsConst(name string, v uint16) Mem {
	return global(name, func() {
		for k := range 16 {
			DATA(2*k, U16(v))
		}
	})
}

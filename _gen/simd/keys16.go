package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The AVX-512 key kernels for 3- and 4-bit codes score sixteen tokens at a
// time, a doubleword per token: VPGATHERDD loads the 4 bytes that hold 8
// coordinates of each of the sixteen codes, VPMULTISHIFTQB puts two
// neighbouring indices at the bottom of each byte (3 bits; pairTable) or a
// shift by 4 gives the odd coordinates' nibbles (4 bits), VPERMB looks up
// the even coordinates and the odd ones in their tables, and
// VPDPBUSD multiplies them by the query row's 4 bytes broadcast, so that
// doubleword t sums token t's products: no reduction across lanes, and one
// register of sixteen scores per row to finish, where a 128-bit lane per
// token took a transpose and four stores per four tokens.

const keys16Sig = "func(out []float32, outStride int, q []int8, scales *[8]float32, sums *[8]int32, bias *[4]float32, tab *[256]uint8, codes []byte, stride, idxOff, normOff, n, d64, rows int, ahead []byte)"

// dotCodes16 emits dotCodesQ8B<bits>x<R>VBMI for 3- and 4-bit codes, R
// (1, 2 or 4) query rows: the rows past R are not multiplied.
func dotCodes16(bits, R int) {
	name := fmt_("dotCodesQ8B%dx%dVBMI", bits, R)
	TEXT(name, NOSPLIT, keys16Sig)
	Doc(name+" is dotCodesQ8Generic for the first rows (≤ "+fmt_("%d", R)+") of four query rows laid out for",
		"keys16 (QueryQ8.wide), n codes and d64 coordinates (a multiple of 64), sixteen tokens at a",
		"time.")
	Pragma("noescape")
	pt := keys16Part{bits: bits, p: keysParams{q: "q", scales: "scales", sums: "sums", tab: "tab", idx: "idxOff", norm: "normOff", d64: "d64"}}
	k := newKeys16(name)
	pt.load()
	k.loop(func() {
		f := k.finish(&pt, k.products(&pt, R), R)
		k.store(R, f)
	})
}

// dotCodes16Pair emits dotCodesQ8P<a><b>VBMI: dotCodesQ8B<a>x4VBMI for a
// code's first part, then dotCodesQ8B<b>x4VBMI for its second, in one pass
// over the tokens. The second part's scores are added to the first's as a
// second call would add them (so the bits are the same), and each token's
// lines are read once for both parts.
func dotCodes16Pair(bits [2]int) {
	name := fmt_("dotCodesQ8P%d%dVBMI", bits[0], bits[1])
	TEXT(name, NOSPLIT, "func(out []float32, outStride int, qa, qb []int8, scalesa, scalesb *[8]float32, sumsa, sumsb *[8]int32, bias *[4]float32, taba, tabb *[256]uint8, codes []byte, stride, idxa, norma, idxb, normb, n, d64a, d64b, rows int, ahead []byte)")
	Doc(name+" is dotCodesQ8B"+fmt_("%d", bits[0])+"x4VBMI with qa (the part at idxa and norma, d64a",
		"coordinates), then dotCodesQ8B"+fmt_("%d", bits[1])+"x4VBMI with qb (idxb, normb, d64b) adding to its",
		"scores, over the same n codes; bias must not be nil.")
	Pragma("noescape")
	pa := keys16Part{bits: bits[0], p: keysParams{q: "qa", scales: "scalesa", sums: "sumsa", tab: "taba", idx: "idxa", norm: "norma", d64: "d64a"}}
	pb := keys16Part{bits: bits[1], p: keysParams{q: "qb", scales: "scalesb", sums: "sumsb", tab: "tabb", idx: "idxb", norm: "normb", d64: "d64b"}}
	k := newKeys16(name)
	pa.load()
	pb.load()
	k.loop(func() {
		fa := k.finish(&pa, k.products(&pa, 4), 4)
		fb := k.finish(&pb, k.products(&pb, 4), 4)
		k.store(4, fa, fb)
	})
}

// keys16Part is one part of a code for the keys16 kernels: its width, the
// names of its parameters, its tables (the odd coordinates' for 3 bits:
// pairTable) and (3 bits) keys16Ctl.
type keys16Part struct {
	bits     int
	p        keysParams
	tab, odd VecVirtual
	ctl      [2]VecVirtual
}

// load loads the part's tables and (3 bits) controls.
func (pt *keys16Part) load() {
	pt.tab = ZMM()
	VMOVDQU64(Mem{Base: Load(Param(pt.p.tab), GP64())}, pt.tab)
	pt.odd = pt.tab
	if pt.bits == 3 {
		pt.odd = pairTable(pt.tab)
		m := keys16Ctl()
		for i := range pt.ctl {
			pt.ctl[i] = ZMM()
			VMOVDQU64(Mem{Base: m.Base, Disp: m.Disp + 64*i, Symbol: m.Symbol}, pt.ctl[i])
		}
	}
}

// keys16Ctl emits the VPMULTISHIFTQB controls of the 3-bit kernels: a
// doubleword holds a token's 4 bytes from a group of 8 coordinates' first
// byte (control 0) or from one byte before it (control 1: the last group
// of 64 coordinates, read from byte 20 of 24 so that nothing past them is
// read), and byte j of it takes indices 2j and 2j+1.
func keys16Ctl() Mem {
	return global("keys16Ctl", func() {
		for i := range 2 {
			for pos := range 64 {
				e, j := pos%8/4, pos%4
				DATA(64*i+pos, U8(32*e+8*i+6*j))
			}
		}
	})
}

// keys16 holds what the keys16 kernels keep over their loop of sixteen
// tokens: the output rows, the codes, the gather's offsets (stride·t, the
// tail's clamped to its last token) and masks, the stores' mask and the
// region to prefetch.
type keys16 struct {
	name        string
	o, os, p, n Register
	sb, idx     VecVirtual
	zero        VecVirtual
	kall, kt    Register
	pfp, pfn    Register
	chunks      int
}

func newKeys16(name string) *keys16 {
	k := &keys16{name: name, sb: ZMM(), idx: ZMM(), zero: ZMM()}
	VPXORD(k.zero, k.zero, k.zero)
	tmp := GP64()
	Load(Param("stride"), tmp)
	VPBROADCASTD(tmp.As32(), k.sb)
	VPMULLD(iota16(), k.sb, k.idx)
	k.kall, k.kt = K(), K()
	MOVQ(U32(0xffff), tmp)
	KMOVW(tmp.As32(), k.kall)
	KMOVW(k.kall, k.kt)
	k.o = Load(Param("out").Base(), GP64())
	k.os = Load(Param("outStride"), GP64())
	SHLQ(U8(2), k.os)
	k.p = Load(Param("codes").Base(), GP64())
	k.n = Load(Param("n"), GP64())
	k.pfp, k.pfn = aheadParams()
	return k
}

// loop emits the loop over groups of sixteen tokens, body the work of
// one: a last group of 1–15 tokens gathers its last token again for the
// missing ones, and their scores are not stored.
func (k *keys16) loop(body func()) {
	name := k.name
	Label(name + "_group")
	TESTQ(k.n, k.n)
	JZ(LabelRef(name + "_done"))
	CMPQ(k.n, U8(16))
	JAE(LabelRef(name + "_full"))
	tmp, last := GP64(), ZMM()
	MOVQ(U32(1), tmp)
	SHLXQ(k.n, tmp, tmp)
	DECQ(tmp)
	KMOVW(tmp.As32(), k.kt)
	LEAQ(Mem{Base: k.n, Disp: -1}, tmp)
	VPBROADCASTD(tmp.As32(), last)
	VPMINUD(iota16(), last, last)
	VPMULLD(k.sb, last, k.idx)
	Label(name + "_full")
	body()
	CMPQ(k.n, U8(16))
	JB(LabelRef(name + "_done"))
	ADDQ(U8(64), k.o)
	s := GP64()
	Load(Param("stride"), s)
	SHLQ(U8(4), s)
	ADDQ(s, k.p)
	SUBQ(U8(16), k.n)
	JMP(LabelRef(name + "_group"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// zeroed sets x to zero from k.zero, so that the register allocator sees
// x defined there (it takes VPXORD x, x, x for a read of x).
func (k *keys16) zeroed(x VecVirtual) { VPXORD(k.zero, k.zero, x) }

// gather loads the doubleword at ip+disp of each of the sixteen codes.
func (k *keys16) gather(ip Register, disp int) VecVirtual {
	x, m := ZMM(), K()
	k.zeroed(x)      // the gather merges into x
	KMOVW(k.kall, m) // the gather clears its mask
	VPGATHERDD(Mem{Base: ip, Index: k.idx, Scale: 1, Disp: disp}, m, x)
	return x
}

// products returns the sixteen tokens' integer sums of part pt for R rows,
// a register per row.
func (k *keys16) products(pt *keys16Part, R int) [4]VecVirtual {
	var acc [4]VecVirtual
	for r := range R {
		acc[r] = ZMM()
		k.zeroed(acc[r])
	}
	ip, qp, left := GP64(), GP64(), GP64()
	MOVQ(k.p, ip)
	ADDQ(Load(Param(pt.p.idx), GP64()), ip)
	Load(Param(pt.p.q).Base(), qp)
	Load(Param(pt.p.d64), left)
	qr := newRows4(Load(Param(pt.p.d64), GP64())) // a query row: d bytes
	k.chunks++
	chunk := fmt_("%s_chunk%d", k.name, k.chunks)
	Label(chunk)
	products := func(g, half int, x VecVirtual) {
		for r := range R {
			VPDPBUSD_BCST(qr.at(qp, r, 8*g+4*half), x, acc[r])
		}
	}
	for g := range 8 { // 8 coordinates: 3 or 4 bytes
		prefetchSome(k.name+"_pf", k.pfp, k.pfn, 1)
		var x VecVirtual
		h := ZMM()
		if pt.bits == 4 {
			x = k.gather(ip, 4*g)
			VPSRLW(U8(4), x, h)
			VPERMB(pt.odd, h, h)
		} else {
			at, ctl := 3*g, pt.ctl[0]
			if g == 7 {
				at, ctl = 20, pt.ctl[1]
			}
			x = k.gather(ip, at)
			VPMULTISHIFTQB(x, ctl, x)
			VPERMB(pt.odd, x, h)
		}
		VPERMB(pt.tab, x, x)
		products(g, 0, x) // the even coordinates
		products(g, 1, h)
	}
	ADDQ(U8(8*pt.bits), ip)
	ADDQ(U8(64), qp)
	SUBQ(U8(64), left)
	JNZ(LabelRef(chunk))
	return acc
}

// norms returns the group's sixteen fp16 norms (at the parameter
// normParam of each code) as float32.
func (k *keys16) norms(normParam string) VecVirtual {
	np, sh := normDoubleword(normParam, k.p)
	nx, c := k.gather(np, 0), ZMM()
	VPBROADCASTD(sh.As32(), c)
	VPSRLVD(c, nx, nx)
	ny, nz := YMM(), ZMM()
	VPMOVDW(nx, ny)
	VCVTPH2PS(ny, nz)
	return nz
}

// finish converts the sums acc of part pt for R rows to scores:
// (sum − the row's offset)·its scale·the token's norm.
func (k *keys16) finish(pt *keys16Part, acc [4]VecVirtual, R int) [4]VecVirtual {
	nz := k.norms(pt.p.norm)
	sc, sm := Load(Param(pt.p.scales), GP64()), Load(Param(pt.p.sums), GP64())
	for r := range R {
		f := acc[r]
		VPSUBD_BCST(Mem{Base: sm, Disp: 4 * r}, f, f)
		VCVTDQ2PS(f, f)
		VMULPS_BCST(Mem{Base: sc, Disp: 4 * r}, f, f)
		VMULPS(nz, f, f)
	}
	return acc
}

// store adds each row's scores fs, in order, to its bias (or, when the
// bias is nil, to the row's present scores) and stores the first rows
// (≤ R) of them.
func (k *keys16) store(R int, fs ...[4]VecVirtual) {
	name := k.name
	rows, bp, row := Load(Param("rows"), GP64()), Load(Param("bias"), GP64()), GP64()
	MOVQ(k.o, row)
	for r := range R {
		if r > 0 {
			CMPQ(rows, U8(r))
			JLE(LabelRef(name + "_stored"))
			ADDQ(k.os, row)
		}
		y := ZMM()
		add, added := fmt_("%s_add%d", name, r), fmt_("%s_added%d", name, r)
		TESTQ(bp, bp)
		JZ(LabelRef(add))
		VBROADCASTSS(Mem{Base: bp, Disp: 4 * r}, y)
		JMP(LabelRef(added))
		Label(add)
		VMOVUPS_Z(Mem{Base: row}, k.kt, y)
		Label(added)
		for _, f := range fs {
			VADDPS(f[r], y, y)
		}
		VMOVUPS(y, k.kt, Mem{Base: row})
	}
	Label(name + "_stored")
}

// dotCodes4Zmm emits dotCodes<kind>4AVX512: dotCodes<kind>4AVX2 (four
// query rows, float) with a token per lane, sixteen tokens at a time, as
// the keys16 kernels go. The 8-lane kernel sums coordinate 8g+L of a code
// in its lane L over the groups g, then the lanes as ((L0+L1)+(L2+L3)) +
// ((L4+L5)+(L6+L7)); here each (row, L) has its own register of sixteen
// tokens taking the same multiply-adds in the same order, and the same
// sums of them, so the bits are the same. Four lanes L a pass (sixteen
// accumulators), each pass gathering the codes' doublewords again: one
// VPSRLVD and one VPERMPS (over tables16's table: no blend for 4 bits) per
// coordinate serve sixteen tokens and four rows.
func dotCodes4Zmm(k codeKind) {
	name := fmt_("dotCodes%s4AVX512", k.name)
	TEXT(name, NOSPLIT, "func(out []float32, outStride int, q []float32, qStride int, "+fusedSig)
	Doc(name+" is dotCodes"+k.name+"4AVX2 sixteen codes at a time; the fp16 norm of each code is read as",
		"a doubleword from normOff−2 when normOff ≥ 2, else from normOff, and stride < 2^25.")
	Pragma("noescape")
	tab := table16(k)
	kz := newKeys16(name)
	kz.loop(func() {
		var sum [4]VecVirtual
		for pass := range 2 {
			var acc [4][4]VecVirtual // [row][lane L − 4·pass]
			for i := range acc {
				for l := range acc[i] {
					acc[i][l] = ZMM()
					kz.zeroed(acc[i][l])
				}
			}
			var sh [4]VecVirtual
			shp := Load(Param("sh"), GP64())
			for l := range sh {
				sh[l] = ZMM()
				VPBROADCASTD(Mem{Base: shp, Disp: 4 * (4*pass + l)}, sh[l])
			}
			ip, qp, j := GP64(), GP64(), GP64()
			MOVQ(kz.p, ip)
			ADDQ(Load(Param("idxOff"), GP64()), ip)
			Load(Param("q").Base(), qp)
			Load(Param("d8"), j)
			qs := Load(Param("qStride"), GP64())
			SHLQ(U8(2), qs)
			qr := newRows4(qs)
			bits := Load(Param("bits"), GP64())
			kz.chunks++
			grp := fmt_("%s_grp%d", name, kz.chunks)
			Label(grp)
			if pass == 0 {
				prefetchSome(name+"_pf", kz.pfp, kz.pfn, 1)
			}
			x := kz.gather(ip, 0)
			for l := range 4 {
				c := ZMM()
				VPSRLVD(sh[l], x, c)
				VPERMPS(tab, c, c)
				for i := range 4 {
					VFMADD231PS_BCST(qr.at(qp, i, 4*(4*pass+l)), c, acc[i][l])
				}
			}
			ADDQ(bits, ip)
			ADDQ(U8(32), qp)
			SUBQ(U8(8), j)
			JNZ(LabelRef(grp))
			for i := range acc {
				a, b := ZMM(), ZMM()
				VADDPS(acc[i][1], acc[i][0], a)
				VADDPS(acc[i][3], acc[i][2], b)
				VADDPS(b, a, a)
				if pass == 0 {
					sum[i] = a
				} else {
					VADDPS(a, sum[i], sum[i])
				}
			}
		}
		nz := kz.norms("normOff")
		row := GP64()
		MOVQ(kz.o, row)
		for i := range sum {
			if i > 0 {
				ADDQ(kz.os, row)
			}
			y := ZMM()
			VMULPS(nz, sum[i], sum[i])
			VMOVUPS_Z(Mem{Base: row}, kz.kt, y)
			VADDPS(sum[i], y, y)
			VMOVUPS(y, kz.kt, Mem{Base: row})
		}
	})
}

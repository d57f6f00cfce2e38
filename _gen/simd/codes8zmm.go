package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The AVX-512 integer code kernels (F, BW, VBMI, VNNI; BMI2) for values
// (AxpyCodesQ8: each token's weight times norm quantized to int8 per piece
// of tokens by weightsQ8) of 3- and 4-bit codes whose centroids are the
// 7-bit table bytes c+64 of DotCodesQ8, one, two or four rows, and for
// keys of 8-bit codes (DotCodesQ8 with the query rows laid out wide; the
// 3- and 4-bit key kernels are in keys16.go). The value kernels unpack
// four codes at a time: VPERMI2B gathers from the four tokens' index bytes
// the bytes that hold the indices an output needs, VPMULTISHIFTQB moves
// each index to the bottom of its own byte, and VPERMB looks the bytes up
// in the table repeated over 64 entries (the bits above an index are
// ignored). A doubleword then holds one coordinate of the four tokens, and
// VPDPBUSD with the four tokens' weights broadcast adds their exact
// products into that coordinate's 32-bit sum. The 8-bit key kernels hold
// a token per 128-bit lane, so the sums of a token need one reduction per
// four tokens.

const values8Sig = "func(acc []float32, accStride int, w []int8, scales *[4]float32, offs *[4]int32, tab *[64]uint8, codes []byte, stride, idxOff, n, d64, rows int, ahead []byte)"

// axpyCodes8 emits axpyCodesQ8B<bits>x<R>VBMI, for R (1, 2 or 4)
// accumulator rows: fewer rows, fewer products.
func axpyCodes8(bits, R int) {
	name := fmt_("axpyCodesQ8B%dx%dVBMI", bits, R)
	TEXT(name, NOSPLIT, values8Sig)
	Doc(name+" adds, to the first rows (≤ "+fmt_("%d", R)+") of acc, scale·(Σ_t w[t]·tab[index] − off) over the n",
		fmt_("%d-bit codes, for d64 coordinates (a multiple of 64): weights laid out [quad][row][token]; ", bits),
		"tokens past n in the last quad have weight 0 and read the quad's first code again.")
	Pragma("noescape")
	chunk := 8 * bits // bytes of 64 indices
	u := newEvenOdd(bits)

	pa, pn := aheadParams()
	accp := Load(Param("acc").Base(), GP64())
	ip := Load(Param("codes").Base(), GP64())
	ADDQ(Load(Param("idxOff"), GP64()), ip)
	dleft := Load(Param("d64"), GP64())
	Label(name + "_chunk")
	var a [4][4]VecVirtual // [row][coordinates 16o…]
	for r := range R {
		for o := range a[r] {
			a[r][o] = ZMM()
			VPXORD(a[r][o], a[r][o], a[r][o])
		}
	}
	qw := newQuadWalk(Mem{Base: ip})
	// The quad adds the products of the four tokens at p, p+s1, p+s2,
	// p+s3 (a[r] holds coordinates 0, 2, …, 30, then 1, 3, …, 31, then 32,
	// 34, …, then 33, 35, …).
	qw.loop(name, pa, pn, 2, func() {
		u.unpack(qw.p, qw.s1, qw.s2, qw.s3, func(o int, x VecVirtual) {
			for r := range R {
				VPDPBUSD_BCST(Mem{Base: qw.wp, Disp: 4 * r}, x, a[r][o])
			}
		})
	})
	scales, offs, rows, rs := values8FinishParams()
	row := GP64()
	MOVQ(accp, row)
	for r := range R {
		if r > 0 {
			CMPQ(rows, U8(r))
			JLE(LabelRef(name + "_next"))
			ADDQ(rs, row)
		}
		for o := range 4 {
			x := a[r][o]
			VPSUBD_BCST(Mem{Base: offs, Disp: 4 * r}, x, x)
			VCVTDQ2PS(x, x)
			VMULPS_BCST(Mem{Base: scales, Disp: 4 * r}, x, x)
		}
		for h := range 2 { // even and odd coordinates back in order
			ev, od := a[r][2*h], a[r][2*h+1]
			lo := ZMM()
			VMOVDQA64(u.perm[2], lo)
			VPERMI2PS(od, ev, lo)
			VPERMT2PS(od, u.perm[3], ev)
			a[r][2*h], a[r][2*h+1] = lo, ev // emitted once: the loop above keeps its registers
		}
		for o := range 4 {
			x := a[r][o]
			VADDPS(Mem{Base: row, Disp: 64 * o}, x, x)
			VMOVUPS(x, Mem{Base: row, Disp: 64 * o})
		}
	}
	Label(name + "_next")
	ADDQ(U32(256), accp)
	ADDQ(U8(chunk), ip)
	SUBQ(U8(64), dleft)
	JNZ(LabelRef(name + "_chunk"))
	VZEROUPPER()
	RET()
}

// evenOdd holds the constants of the value kernels' unpacking of
// bits-wide (3 or 4) indices: the tables of the even and the odd
// coordinates (the same for 4 bits; pairTable for 3), the VPMULTISHIFTQB
// control (3 bits), perm (0, 1: the VPERMI2B indices of coordinates 0–31
// and 32–63; 2, 3: the VPERMI2PS indices that interleave the even and odd
// sums back into coordinates 0–15 and 16–31 of the 32) and the two load
// masks.
type evenOdd struct {
	bits          int
	tab, odd, ctl VecVirtual
	perm          [4]VecVirtual
	k1, k2        Register
}

// newEvenOdd loads the constants of evenOdd.unpack for bits-wide indices.
// Per 32 coordinates of four tokens, VPERMI2B lays out doublewords that
// hold, for each token, byte j of its 16 (4 bits: coordinates 2j, 2j+1)
// or, per quadword, the two bytes that hold its coordinates 4w…4w+3 (3
// bits, at bit 0 or 4 of them); the table then looks up the bytes as they
// are (the even coordinates: low nibbles, or the low index of a pair that
// VPMULTISHIFTQB puts at the bottom of each byte) and the odd ones (the
// bytes shifted right by 4, or the pair's high index in pairTable).
func newEvenOdd(bits int) *evenOdd {
	m := global(fmt_("values8EvenOdd%d", bits), func() {
		for h := range 2 {
			for pos := range 64 {
				src := 0
				if bits == 4 {
					j, t := pos/4, pos%4 // byte j of token t's 16
					src = 32*t + 16*h + j
				} else {
					w, t, b := 8*h+pos/8, pos%8/2, pos%2 // byte b of token t's two that hold 4w…4w+3
					src = 32*t + 12*w/8 + b
				}
				DATA(64*h+pos, U8(src))
			}
		}
		for h := range 2 {
			for c := range 16 { // coordinate 16h+c of the 32: even sum c/2 (table 0) or odd (table 1)
				j := 16*h + c
				DATA(128+64*h+4*c, U32(uint32(j/2+16*(j%2))))
			}
		}
	})
	u := &evenOdd{bits: bits, tab: ZMM()}
	VMOVDQU64(Mem{Base: Load(Param("tab"), GP64())}, u.tab)
	for i := range u.perm {
		u.perm[i] = ZMM()
		VMOVDQU64(Mem{Base: m.Base, Disp: m.Disp + 64*i, Symbol: m.Symbol}, u.perm[i])
	}
	u.odd = u.tab
	if bits == 3 {
		ctl := global("values8Pairs", func() {
			for pos := range 64 {
				w, e, t := pos/8, pos%8/4, pos%4 // quadword w: coordinates 4w+2e, +1 of token t
				DATA(pos, U8(16*t+4*(w%2)+6*e))
			}
		})
		u.odd, u.ctl = pairTable(u.tab), ZMM()
		VMOVDQU64(ctl, u.ctl)
	}
	u.k1, u.k2 = halfMasks(8 * bits)
	return u
}

// unpack loads 64 indices (8·bits bytes) of each of the four codes at p,
// p+s1, p+s2, p+s3 (loadQuad) and calls use with outputs 0–3 (the even,
// then the odd coordinates of the first 32, then of the second), each a
// doubleword per coordinate holding the four tokens' table bytes. Three
// shuffles per 32 coordinates (3 bits: four) where unpacking each output
// on its own took six.
func (u *evenOdd) unpack(p, s1, s2, s3 Register, use func(o int, x VecVirtual)) {
	t0, t1 := loadQuad(p, s1, s2, s3, u.k1, u.k2)
	for h := range 2 {
		x, y := ZMM(), ZMM()
		VMOVDQA64(u.perm[h], x)
		VPERMI2B(t1, t0, x)
		if u.bits == 4 {
			VPSRLW(U8(4), x, y)
			VPERMB(u.tab, y, y)
		} else {
			VPMULTISHIFTQB(x, u.ctl, x)
			VPERMB(u.odd, x, y)
		}
		VPERMB(u.tab, x, x)
		use(2*h, x)
		use(2*h+1, y)
	}
}

// pairTable returns the table of the high index of a pair of 3-bit
// indices in a byte's low 6 bits: entry k is tab[k>>3] (tab repeats every
// 8 entries, so that looked up with the same byte it gives the low index).
func pairTable(tab VecVirtual) VecVirtual {
	idx := global("pairIndex", func() {
		for k := range 64 {
			DATA(k, U8(k>>3))
		}
	})
	odd := ZMM()
	VMOVDQU64(idx, odd)
	VPERMB(tab, odd, odd)
	return odd
}

// globals holds the read-only data already emitted, by name.
var globals = map[string]Mem{}

// global returns the read-only data named name, emitting it (GLOBL, then
// data's DATA) the first time only.
func global(name string, data func()) Mem {
	if m, ok := globals[name]; ok {
		return m
	}
	m := GLOBL(name, RODATA|NOPTR)
	data()
	globals[name] = m
	return m
}

// quadWalk walks the codes and weights of a value kernel four codes at a
// time: p the quad's first code (s1, s2, s3 the offsets of the others),
// wp its weights, q the codes left.
type quadWalk struct{ p, wp, q, s1, s2, s3 Register }

// newQuadWalk starts a walk at the codes' bytes at start.
func newQuadWalk(start Mem) quadWalk {
	w := quadWalk{p: GP64(), wp: GP64(), q: GP64(), s1: GP64(), s2: GP64(), s3: GP64()}
	LEAQ(start, w.p)
	Load(Param("w").Base(), w.wp)
	Load(Param("n"), w.q)
	Load(Param("stride"), w.s1)
	LEAQ(Mem{Base: w.s1, Index: w.s1, Scale: 1}, w.s2)
	LEAQ(Mem{Base: w.s2, Index: w.s1, Scale: 1}, w.s3)
	return w
}

// loop emits the walk: quad for each whole quad (prefetching lines of the
// ahead region at pa, pn), then for a last quad of 1–3 codes, whose missing
// ones read its first code again (their weights are 0); it ends at the
// label name_finish.
func (w quadWalk) loop(name string, pa, pn Register, lines int, quad func()) {
	Label(name + "_quad")
	CMPQ(w.q, U8(4))
	JB(LabelRef(name + "_tail"))
	prefetchSome(name+"_pf", pa, pn, lines)
	quad()
	ADDQ(U8(16), w.wp)
	ADDQ(w.s2, w.p)
	ADDQ(w.s2, w.p)
	SUBQ(U8(4), w.q)
	JMP(LabelRef(name + "_quad"))
	Label(name + "_tail")
	TESTQ(w.q, w.q)
	JZ(LabelRef(name + "_finish"))
	zero := GP64()
	XORQ(zero, zero)
	lastQuad(w.q, w.s1, w.s2, w.s3, zero)
	quad()
	Label(name + "_finish")
}

// values8FinishParams loads what a value kernel's finish needs: the rows'
// scales and offsets, the number of rows, and the accumulator stride in
// bytes.
func values8FinishParams() (scales, offs, rows, rs Register) {
	scales, offs, rows = Load(Param("scales"), GP64()), Load(Param("offs"), GP64()), Load(Param("rows"), GP64())
	rs = Load(Param("accStride"), GP64())
	SHLQ(U8(2), rs)
	return scales, offs, rows, rs
}

// lastQuad points the row offsets s1…s3 of a last quad with left (1–3)
// codes at the quad's first code (zero holds 0) for the rows past left.
func lastQuad(left, s1, s2, s3, zero Register) {
	MOVQ(zero, s3)
	CMPQ(left, U8(3))
	CMOVQLT(zero, s2)
	CMPQ(left, U8(2))
	CMOVQLT(zero, s1)
}

// aheadParams loads the ahead parameter: what to prefetch while the kernel
// works, as a pointer and a byte count.
func aheadParams() (p, n Register) {
	return Load(Param("ahead").Base(), GP64()), Load(Param("ahead").Len(), GP64())
}

// prefetchSome asks for the next lines (≤ the count left) of the ahead
// region at p (n bytes left): a few per iteration, so that the requests
// in flight stay few.
func prefetchSome(label string, p, n Register, lines int) {
	pfLabels++
	label = fmt_("%s%d", label, pfLabels)
	TESTQ(n, n)
	JLE(LabelRef(label))
	for l := range lines {
		PREFETCHT0(Mem{Base: p, Disp: 64 * l})
	}
	ADDQ(U32(64*lines), p)
	SUBQ(U32(64*lines), n)
	Label(label)
}

// pfLabels numbers prefetchSome's labels.
var pfLabels int

// loadQuad loads up to 32 bytes of each of the four codes at p, p+s1,
// p+s2, p+s3 (k1, k2: the masks of a code's bytes at 0 and at 32), codes 0
// and 1 into t0, 2 and 3 into t1, 32 bytes apart: masked, so nothing past
// them is read.
func loadQuad(p, s1, s2, s3 Register, k1, k2 Register) (t0, t1 VecVirtual) {
	t0, t1 = ZMM(), ZMM()
	VMOVDQU8_Z(Mem{Base: p}, k1, t0)
	VMOVDQU8(Mem{Base: p, Index: s1, Scale: 1, Disp: -32}, k2, t0)
	VMOVDQU8_Z(Mem{Base: p, Index: s2, Scale: 1}, k1, t1)
	VMOVDQU8(Mem{Base: p, Index: s3, Scale: 1, Disp: -32}, k2, t1)
	return t0, t1
}

// iota16 emits (once) the doublewords 0…15.
func iota16() Mem { return dwordsConst("iota16", func(j int) int { return j }) }

// dwordsConst emits (once) the 16 doublewords v(0…15) named name.
func dwordsConst(name string, v func(j int) int) Mem {
	return global(name, func() {
		for j := range 16 {
			DATA(4*j, U32(uint32(v(j))))
		}
	})
}

// dotCodes8Wide emits dotCodesQ8B8x<R>VBMI, for R (1, 2 or 4) query
// rows: the rows past R are not multiplied (their sums stay 0). The table
// is 256 bytes (keys8Chunk) and the rows are laid out for two tokens a
// register.
func dotCodes8Wide(R int) {
	name := fmt_("dotCodesQ8B8x%dVBMI", R)
	TEXT(name, NOSPLIT, keys16Sig)
	Doc(name+" is dotCodesQ8Generic for the first rows (≤ 4) of four query rows laid out wide",
		"(QueryQ8.wide), n codes and d64 coordinates (a multiple of 64): four tokens at a time, a",
		"128-bit lane per token.")
	Pragma("noescape")
	pt := keysPart{p: keysParams{q: "q", scales: "scales", sums: "sums", tab: "tab", idx: "idxOff", norm: "normOff", d64: "d64"}}
	k := newKeysQuads(name, &pt)
	pt.load()
	k.loop(func() {
		f := k.scaled(&pt, k.products(&pt, R))
		VMULPS(k.norms(&pt), f, f)
		k.store(R, f)
	})
}

// keysPart is the code for the 8-bit key kernel: the names of its
// parameters and its loaded constants.
type keysPart struct {
	p      keysParams
	sc, sm VecVirtual
	tab    [4]VecVirtual // the table
	k1, k2 Register      // halfMasks
}

// load loads the part's table and masks.
func (pt *keysPart) load() {
	pt.tab, pt.k1, pt.k2 = keys8Table()
}

// keysParams names a part's parameters: its query rows, their scales and
// sums, its table, and its indices', norm's and coordinates' offsets and
// count.
type keysParams struct{ q, scales, sums, tab, idx, norm, d64 string }

// keysQuads holds what the key kernels keep over their loop of quads (four
// tokens): the output rows, the codes, the row offsets s1…s3 of tokens
// 1–3, the mask of the quad's tokens present, the region to prefetch, the
// finish's transpose and the bias.
type keysQuads struct {
	name          string
	tr, bv        VecVirtual
	o, os, p, n   Register
	s1, s2, s3    Register
	kt            Register
	pfp, pfn, tmp Register
}

// newKeysQuads loads the part's scales and sums spread to the output
// layout (lane 4r+t is row r, token t), the bias when there is one (the
// rows' scores are then set to bias[r] + score, not added to out, which
// spares the caller filling out first), and the loop's registers.
func newKeysQuads(name string, pt *keysPart) *keysQuads {
	k := &keysQuads{name: name, tr: ZMM(), bv: ZMM()}
	VMOVDQU32(dwordsConst("keys8Spread", func(j int) int { return j / 4 }), k.tr)
	pt.sc, pt.sm = ZMM(), ZMM()
	VPERMPS(Mem{Base: Load(Param(pt.p.scales), GP64())}, k.tr, pt.sc)
	VPERMD(Mem{Base: Load(Param(pt.p.sums), GP64())}, k.tr, pt.sm)
	bp := Load(Param("bias"), GP64())
	TESTQ(bp, bp)
	JZ(LabelRef(name + "_add"))
	VBROADCASTF32X4(Mem{Base: bp}, k.bv)
	VPERMPS(k.bv, k.tr, k.bv)
	Label(name + "_add")
	// the reduction leaves token t's rows in lane t: transpose
	VMOVDQU32(dwordsConst("keys8Order", func(j int) int { return 4*(j%4) + j/4 }), k.tr)
	k.o = Load(Param("out").Base(), GP64())
	k.os = Load(Param("outStride"), GP64())
	SHLQ(U8(2), k.os)
	k.p = Load(Param("codes").Base(), GP64())
	k.n = Load(Param("n"), GP64())
	k.s1, k.s2, k.s3 = GP64(), GP64(), GP64()
	Load(Param("stride"), k.s1)
	LEAQ(Mem{Base: k.s1, Index: k.s1, Scale: 1}, k.s2)
	LEAQ(Mem{Base: k.s2, Index: k.s1, Scale: 1}, k.s3)
	k.kt, k.tmp = K(), GP64()
	MOVQ(U32(15), k.tmp)
	KMOVQ(k.tmp, k.kt)
	k.pfp, k.pfn = aheadParams()
	return k
}

// loop emits the loop over quads, body the work of one: a last quad of
// 1–3 tokens reads its first code again for the missing ones, and their
// scores are not stored.
func (k *keysQuads) loop(body func()) {
	name := k.name
	Label(name + "_quad")
	TESTQ(k.n, k.n)
	JZ(LabelRef(name + "_done"))
	prefetchSome(name+"_pf", k.pfp, k.pfn, 4)
	CMPQ(k.n, U8(4))
	JAE(LabelRef(name + "_full"))
	MOVQ(U32(1), k.tmp)
	SHLXQ(k.n, k.tmp, k.tmp)
	DECQ(k.tmp)
	KMOVQ(k.tmp, k.kt)
	XORQ(k.tmp, k.tmp)
	lastQuad(k.n, k.s1, k.s2, k.s3, k.tmp)
	Label(name + "_full")
	body()
	CMPQ(k.n, U8(4))
	JB(LabelRef(name + "_done"))
	ADDQ(U8(16), k.o)
	LEAQ(Mem{Base: k.p, Index: k.s2, Scale: 2}, k.p)
	SUBQ(U8(4), k.n)
	JMP(LabelRef(name + "_quad"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// products returns the quad's integer sums of part pt for R rows: per row,
// a register with a 128-bit lane per token.
func (k *keysQuads) products(pt *keysPart, R int) [4]VecVirtual {
	var acc [4]VecVirtual
	for r := range acc {
		acc[r] = ZMM()
		VPXORD(acc[r], acc[r], acc[r])
	}
	ip, qp, left := GP64(), GP64(), GP64()
	MOVQ(k.p, ip)
	ADDQ(Load(Param(pt.p.idx), GP64()), ip)
	Load(Param(pt.p.q).Base(), qp)
	Load(Param(pt.p.d64), left)
	qs := GP64() // a wide query row: 2·d bytes
	LEAQ(Mem{Base: left, Index: left, Scale: 1}, qs)
	keys8Chunk(k.name, R, ip, qp, left, k.s1, k.s2, k.s3, pt.k1, pt.k2, pt.tab, newRows4(qs), acc)
	return acc
}

// scaled reduces each lane's four sums of acc (token t's rows 0–3 in lane
// t, then rows in lanes: lane r holds row r's four tokens) and converts
// them: (sum − the part's offsets)·its scales.
func (k *keysQuads) scaled(pt *keysPart, acc [4]VecVirtual) VecVirtual {
	lo, hi, s01, s23 := ZMM(), ZMM(), ZMM(), ZMM()
	VPUNPCKLQDQ(acc[1], acc[0], lo)
	VPUNPCKHQDQ(acc[1], acc[0], hi)
	VPADDD(hi, lo, s01)
	VPUNPCKLQDQ(acc[3], acc[2], lo)
	VPUNPCKHQDQ(acc[3], acc[2], hi)
	VPADDD(hi, lo, s23)
	VSHUFPS(U8(0x88), s23, s01, lo) // doublewords 0 and 2 of each pair
	VSHUFPS(U8(0xdd), s23, s01, hi) // 1 and 3
	f := acc[0]
	VPADDD(hi, lo, f)
	VPERMD(f, k.tr, f)
	VPSUBD(pt.sm, f, f)
	VCVTDQ2PS(f, f)
	VMULPS(pt.sc, f, f)
	return f
}

// norms returns the quad's four fp16 norms of part pt, gathered in a
// general register and broadcast: (n0, n1, n2, n3) in every lane.
func (k *keysQuads) norms(pt *keysPart) VecVirtual {
	no := Load(Param(pt.p.norm), GP64())
	ADDQ(k.p, no)
	nb, nt := GP64(), GP64()
	MOVWQZX(Mem{Base: no}, nb)
	for t, s := range []Register{k.s1, k.s2, k.s3} {
		MOVWQZX(Mem{Base: no, Index: s, Scale: 1}, nt)
		SHLQ(U8(16*(t+1)), nt)
		ORQ(nt, nb)
	}
	ny, nz := YMM(), ZMM()
	VPBROADCASTQ(nb, ny)
	VCVTPH2PS(ny, nz)
	return nz
}

// store adds the scores f to the bias or (when the bias is nil) to the
// rows' present scores (row r's four loaded into lane
// r, by a masked broadcast so that the load does not overlap the last
// quad's stores), then stores each lane of the first rows (≤ R).
func (k *keysQuads) store(R int, f VecVirtual) {
	name := k.name
	rows := Load(Param("rows"), GP64())
	row := GP64()
	y := ZMM()
	VMOVAPS(k.bv, y)
	bp := Load(Param("bias"), GP64())
	TESTQ(bp, bp)
	JNZ(LabelRef(name + "_loaded"))
	MOVQ(k.o, row)
	VMOVUPS_Z(Mem{Base: row}, k.kt, y)
	kl := K()
	for r := 1; r < R; r++ {
		CMPQ(rows, U8(r))
		JLE(LabelRef(name + "_loaded"))
		ADDQ(k.os, row)
		KSHIFTLW(U8(4*r), k.kt, kl) // the quad's tokens, in lane r
		VBROADCASTF32X4(Mem{Base: row}, kl, y)
	}
	Label(name + "_loaded")
	VADDPS(f, y, y)
	MOVQ(k.o, row)
	VMOVUPS(y.AsX(), k.kt, Mem{Base: row})
	for r := 1; r < R; r++ {
		CMPQ(rows, U8(r))
		JLE(LabelRef(name + "_stored"))
		ADDQ(k.os, row)
		x := XMM()
		VEXTRACTF32X4(U8(r), y, x) // to a register: a masked extract to memory is slow
		VMOVUPS(x, k.kt, Mem{Base: row})
	}
	Label(name + "_stored")
}

// fold4 returns the fold by op of each of the four registers' 16 lanes,
// (r0, r1, r2, r3) in every 128-bit lane: the rows interleaved and folded
// pairwise, then the 128-bit lanes folded.
func fold4(r [4]VecVirtual, op func(a, b, dst Op)) VecVirtual {
	pair := func(x, y VecVirtual) VecVirtual { // (x, y, x, y) per lane
		lo, hi := ZMM(), ZMM()
		VUNPCKLPS(y, x, lo)
		VUNPCKHPS(y, x, hi)
		op(hi, lo, lo)
		return lo
	}
	a, b := pair(r[0], r[1]), pair(r[2], r[3])
	lo, hi := ZMM(), ZMM()
	VUNPCKLPD(b, a, lo)
	VUNPCKHPD(b, a, hi)
	op(hi, lo, lo)
	VSHUFF32X4(U8(0x4e), lo, lo, hi)
	op(hi, lo, lo)
	VSHUFF32X4(U8(0xb1), lo, lo, hi)
	op(hi, lo, lo)
	return lo
}

// weightsQ8 emits weightsQ8AVX512, which lays out and quantizes the
// weights of four rows for the axpyCodesQ8 kernels, and
// weightsQ8PairAVX512, which does so for the two parts of a code (their
// own norms) in one call.
func weightsQ8() {
	weightsQ8Parts("weightsQ8AVX512", []weightsPart{{"dst", "sums", "amax", "normOff"}})
	weightsQ8Parts("weightsQ8PairAVX512", []weightsPart{{"dsta", "sumsa", "amaxa", "norma"}, {"dstb", "sumsb", "amaxb", "normb"}})
}

// weightsPart names the parameters of one part's weights: the quantized
// weights, their sums and maxima, and the norm's offset in a code.
type weightsPart struct{ dst, sums, amax, norm string }

// weightsQ8Parts emits a weight quantizer for one or two parts: one pass
// over the weights for the parts' maxima, then each part's quantizing,
// the two latency chains overlapping in one call.
func weightsQ8Parts(name string, parts []weightsPart) {
	if len(parts) == 1 {
		TEXT(name, NOSPLIT, "func(dst []int8, sums *[4]int32, amax *[4]float32, w []float32, wStride int, valid *[4]uint64, codes []byte, stride, normOff, m int)")
		Doc(name+" quantizes the weights times norms of m (≤ 64) tokens for four rows (token t of row i",
			"at w[i*wStride+t] where bit t of valid[i] is set, else 0; the fp16 norm of code t at",
			"codes[t*stride+normOff], read as a doubleword from normOff−2 when normOff ≥ 2, else from",
			"normOff, so the code must hold the two bytes after it; stride < 2^25) to dst",
			"([quad][row][token]): per row, round-half-even(wn·(127/amax)), amax the row's max |wn| (0",
			"where it is 0). It writes each row's amax and the sum of its values. Bit t of valid[0]",
			"must be set for every token t < m.")
	} else {
		TEXT(name, NOSPLIT, "func(dsta, dstb []int8, sumsa, sumsb *[4]int32, amaxa, amaxb *[4]float32, w []float32, wStride int, valid *[4]uint64, codes []byte, stride, norma, normb, m int)")
		Doc(name+" is weightsQ8AVX512 with the norms at norma (to dsta, sumsa, amaxa), then with",
			"those at normb (to dstb, sumsb, amaxb).")
	}
	Pragma("noescape")
	valid := Load(Param("valid"), GP64())
	norms := make([][4]VecVirtual, len(parts))
	for p, pt := range parts {
		norms[p] = gatherNorms(pt.norm, valid)
	}
	wb := Load(Param("w").Base(), GP64())
	ws := Load(Param("wStride"), GP64())
	SHLQ(U8(2), ws)
	wr := newRows4(ws)
	k := K()
	// load returns the weights of row i, chunk c (16 tokens).
	load := func(i, c int) VecVirtual {
		KMOVQ(Mem{Base: valid, Disp: 8 * i}, k)
		if c > 0 {
			KSHIFTRQ(U8(16*c), k, k)
		}
		x := ZMM()
		VMOVUPS_Z(wr.at(wb, i, 64*c), k, x)
		return x
	}
	absMask := ZMM()
	VPBROADCASTD(vconst("values8Abs", U32(0x7fffffff)), absMask)
	// A part's products wn are kept in registers between the maxima and
	// the quantizing: all of them with one part; with two, the first
	// part's first 16 tokens only (more leave the allocator short of
	// registers). The others are computed again: the same product, so the
	// same bits.
	var wn [4][4]VecVirtual // [row][chunk of 16 tokens]
	kept := func(p, c int) bool { return p == 0 && (len(parts) == 1 || c < 1) }
	mx := make([][4]VecVirtual, len(parts))
	for p := range mx {
		for i := range mx[p] {
			mx[p][i] = ZMM()
			VPXORD(mx[p][i], mx[p][i], mx[p][i])
		}
	}
	for c := range 4 {
		for i := range 4 {
			x := load(i, c)
			for p := range parts {
				y := ZMM()
				VMULPS(norms[p][c], x, y)
				if kept(p, c) {
					wn[i][c] = y
				}
				a := ZMM()
				VANDPS(y, absMask, a)
				VMAXPS(a, mx[p][i], mx[p][i])
			}
		}
	}
	c127, zero := ZMM(), ZMM()
	VBROADCASTSS(vconst("values8Max", F32(127)), c127)
	VPXORD(zero, zero, zero)
	invs := make([]VecVirtual, len(parts))
	for p, pt := range parts {
		// Every 128-bit lane: the four rows' max (one division for all four).
		m := fold4(mx[p], func(a, b, dst Op) { VMAXPS(a, b, dst) })
		VMOVUPS(m.AsX(), Mem{Base: Load(Param(pt.amax), GP64())})
		invs[p] = ZMM()
		VCMPPS(U8(4), zero, m, k) // amax ≠ 0
		VDIVPS_Z(m, c127, k, invs[p])
	}
	for p, pt := range parts {
		var inv, sum [4]VecVirtual
		for i := range 4 {
			inv[i] = ZMM()
			VSHUFPS(U8(0x55*i), invs[p], invs[p], inv[i]) // row i's in every lane
			sum[i] = ZMM()
			VPXORD(sum[i], sum[i], sum[i])
		}
		dst := Load(Param(pt.dst).Base(), GP64())
		for c := range 4 {
			var y [4]VecVirtual
			for i := range y {
				y[i] = wn[i][c]
				if !kept(p, c) {
					y[i] = load(i, c)
					VMULPS(norms[p][c], y[i], y[i])
				}
				VMULPS(inv[i], y[i], y[i])
				VCVTPS2DQ(y[i], y[i]) // round half to even (MXCSR default)
				VPADDD(y[i], sum[i], sum[i])
			}
			// |values| ≤ 127: the saturating packs are exact, and per
			// 128-bit lane (a quad of tokens) they leave rows 0–3's four
			// bytes in order, the layout of dst.
			VPACKSSDW(y[1], y[0], y[0])
			VPACKSSDW(y[3], y[2], y[2])
			VPACKSSWB(y[2], y[0], y[0])
			VMOVDQU32(y[0], Mem{Base: dst, Disp: 64 * c})
		}
		VMOVDQU32(fold4(sum, func(a, b, dst Op) { VPADDD(a, b, dst) }).AsX(), Mem{Base: Load(Param(pt.sums), GP64())})
	}
	VZEROUPPER()
	RET()
}

// normDoubleword returns base plus the offset of the doubleword that holds
// the fp16 norm at the parameter normParam of a code, and the shift that
// brings the norm to its low half: from two bytes before the norm (shift
// 16) when normOff ≥ 2, the bytes before it being the code's, else from the
// norm itself (shift 0), the code going on after it.
func normDoubleword(normParam string, base Register) (p, sh GPVirtual) {
	no, t := Load(Param(normParam), GP64()), GP64()
	p, sh = GP64(), GP64()
	XORQ(sh, sh)
	LEAQ(Mem{Base: no, Disp: -2}, t)
	MOVQ(U32(16), p)
	CMPQ(no, U8(2))
	CMOVQCC(t, no)
	CMOVQCC(p, sh)
	MOVQ(base, p)
	ADDQ(no, p)
	return p, sh
}

// normGatherer gathers the fp16 norms at the parameter normParam of
// sixteen codes stride apart (the doublewords normDoubleword picks) and
// converts them to float32: copying them one by one into a buffer for
// VCVTPH2PS took a quarter of the weights' time, its wide loads waiting on
// the narrow stores.
type normGatherer struct {
	p, step    GPVirtual  // the first code's doubleword; 16·stride
	idx, shift VecVirtual // stride·t; the shift that brings each norm down
}

func newNormGatherer(normParam string) normGatherer {
	np, sh := normDoubleword(normParam, Load(Param("codes").Base(), GP64()))
	g := normGatherer{p: np, step: GP64(), idx: ZMM(), shift: ZMM()}
	Load(Param("stride"), g.step)
	VPBROADCASTD(g.step.As32(), g.idx)
	VPMULLD(iota16(), g.idx, g.idx)
	VPBROADCASTD(sh.As32(), g.shift)
	SHLQ(U8(4), g.step)
	return g
}

// gather returns the norms of the sixteen codes at g.p where k (which the
// gather clears) is set, 0 elsewhere.
func (g normGatherer) gather(k Register) VecVirtual {
	x, h, f := ZMM(), YMM(), ZMM()
	VPXORD(x, x, x)
	VPGATHERDD(Mem{Base: g.p, Index: g.idx, Scale: 1}, k, x)
	VPSRLVD(g.shift, x, x)
	VPMOVDW(x, h)
	VCVTPH2PS(h, f)
	return f
}

// next moves g to the next sixteen codes.
func (g normGatherer) next() { ADDQ(g.step, g.p) }

// gatherNorms returns the norms (at the parameter normParam of each code)
// of the m tokens in valid[0], sixteen a register.
func gatherNorms(normParam string, valid Register) (norms [4]VecVirtual) {
	g := newNormGatherer(normParam)
	tokens := GP64()
	MOVQ(Mem{Base: valid}, tokens) // row 0's: the m tokens
	for c := range norms {
		k := K()
		KMOVW(tokens.As32(), k)
		if c < 3 {
			SHRQ(U8(16), tokens)
		}
		norms[c] = g.gather(k)
		if c < 3 {
			g.next()
		}
	}
	return norms
}

// keys8Table loads the 256-byte table of 8-bit codes (the tab parameter)
// into four registers, and the masks of the low and high 32 bytes.
func keys8Table() (tab [4]VecVirtual, k1, k2 Register) {
	tp := Load(Param("tab"), GP64())
	for i := range tab {
		tab[i] = ZMM()
		VMOVDQU64(Mem{Base: tp, Disp: 64 * i}, tab[i])
	}
	k1, k2 = halfMasks(32)
	return tab, k1, k2
}

// halfMasks returns the byte masks of the first n (≤ 32) bytes of a zmm
// register's low half (k1) and of its high half (k2): the masked loads that
// put two codes' bytes side by side.
func halfMasks(n int) (k1, k2 Register) {
	k1, k2 = K(), K()
	mk := GP64()
	MOVQ(U64(uint64(1)<<n-1), mk)
	KMOVQ(mk, k1)
	SHLQ(U8(32), mk)
	KMOVQ(mk, k2)
	return k1, k2
}

// keys8Chunk emits the chunk loop of the 8-bit key kernels: per 64
// coordinates, masked loads put coordinates 32h…32h+31 of tokens 2u and
// 2u+1 side by side in one register, two VPERMI2B look them up in each
// half of the table and the index's top bit picks the half; VPDPBUSD
// multiplies them by the query rows' 32 coordinates twice over
// (QueryQ8.wide for 8 bits). Tokens 0, 1 sum into one register per row and
// 2, 3 into another; at the end they are folded into acc's layout, a
// 128-bit lane per token.
func keys8Chunk(name string, R int, ip, qp, left, s1, s2, s3, k1, k2 Register, tab [4]VecVirtual, qr rows4, acc [4]VecVirtual) {
	var pair [4]VecVirtual // [row]: tokens 2 and 3; acc holds 0 and 1
	for r := range R {
		pair[r] = ZMM()
		VPXORD(pair[r], pair[r], pair[r])
	}
	Label(name + "_chunk")
	for h := range 2 {
		for u := range 2 {
			x := ZMM()
			a, b := Mem{Base: ip, Disp: 32 * h}, Mem{Base: ip, Index: s1, Scale: 1, Disp: 32*h - 32}
			if u == 1 {
				a, b = Mem{Base: ip, Index: s2, Scale: 1, Disp: 32 * h}, Mem{Base: ip, Index: s3, Scale: 1, Disp: 32*h - 32}
			}
			VMOVDQU8_Z(a, k1, x)
			VMOVDQU8(b, k2, x)
			top, lo := K(), ZMM()
			VPMOVB2M(x, top)
			VMOVDQA64(x, lo)
			VPERMI2B(tab[1], tab[0], lo)
			VPERMI2B(tab[3], tab[2], x)
			VPBLENDMB(x, lo, top, x)
			dst := acc
			if u == 1 {
				dst = pair
			}
			for r := range R {
				VPDPBUSD(qr.at(qp, r, 64*h), x, dst[r])
			}
		}
	}
	ADDQ(U8(64), ip)
	ADDQ(U8(128), qp)
	SUBQ(U8(64), left)
	JNZ(LabelRef(name + "_chunk"))
	// acc[r] = (t0, t0, t1, t1), pair[r] = (t2, t2, t3, t3): lanes of
	// one token added, a lane per token.
	for r := range R {
		x, y := ZMM(), ZMM()
		VSHUFI64X2(U8(0x88), pair[r], acc[r], x)
		VSHUFI64X2(U8(0xdd), pair[r], acc[r], y)
		VPADDD(y, x, acc[r])
	}
}

// decode8Planes emits decode8VBMI, DecodeCodes for 8-bit codes on AVX-512
// VBMI: the 256 float centroids are held as four planes of their bytes
// (16 registers), each looked up as the key kernels look up their 8-bit
// table, and the four looked-up planes interleaved back into floats. The
// indices are first permuted so that the interleave leaves the floats in
// order. It is exact: each float is one product, norm × centroid.
func decode8Planes() {
	name := "decode8VBMI"
	TEXT(name, NOSPLIT, "func(dst []float32, planes *[4][256]uint8, codes []byte, stride, idxOff, normOff, n, dstStride, d64 int, ahead []byte)")
	Doc(name+" is decodeCodesGeneric for 8-bit codes on the first d64 coordinates (a multiple of 64),",
		"planes[b][k] byte b of centroid k, prefetching two lines of ahead per row.")
	Pragma("noescape")
	pp := Load(Param("planes"), GP64())
	var tab [4][4]VecVirtual // [plane][64 entries]
	for b := range tab {
		for q := range tab[b] {
			tab[b][q] = ZMM()
			VMOVDQU64(Mem{Base: pp, Disp: 256*b + 64*q}, tab[b][q])
		}
	}
	// Byte 16L+4r+i of the permuted indices is index 16r+4L+i: after the
	// two rounds of unpacks, output r then holds coordinates 16r… in order.
	perm := GLOBL("decode8Perm", RODATA|NOPTR)
	for pos := range 64 {
		l, r, i := pos/16, pos%16/4, pos%4
		DATA(pos, U8(16*r+4*l+i))
	}
	pz := ZMM()
	VMOVDQU64(perm, pz)
	pa, pn := aheadParams()
	rowLoop(name, func(p, out Register) {
		prefetchSome(name+"_pf", pa, pn, 2)
		nf := loadNorm(p)
		norm := ZMM()
		VBROADCASTSS(nf.AsX(), norm)
		ip, op, j := GP64(), GP64(), GP64()
		MOVQ(p, ip)
		ADDQ(Load(Param("idxOff"), GP64()), ip)
		MOVQ(out, op)
		Load(Param("d64"), j)
		Label(name + "_grp")
		x := ZMM()
		VPERMB(Mem{Base: ip}, pz, x)
		top := K()
		VPMOVB2M(x, top)
		var pl [4]VecVirtual
		for b := range pl {
			lo, hi := ZMM(), ZMM()
			VMOVDQA64(x, lo)
			VMOVDQA64(x, hi)
			VPERMI2B(tab[b][1], tab[b][0], lo)
			VPERMI2B(tab[b][3], tab[b][2], hi)
			pl[b] = ZMM()
			VPBLENDMB(hi, lo, top, pl[b])
		}
		a, bq, c, d := ZMM(), ZMM(), ZMM(), ZMM()
		VPUNPCKLBW(pl[1], pl[0], a)
		VPUNPCKHBW(pl[1], pl[0], bq)
		VPUNPCKLBW(pl[3], pl[2], c)
		VPUNPCKHBW(pl[3], pl[2], d)
		for r, pair := range [4][2]VecVirtual{{c, a}, {c, a}, {d, bq}, {d, bq}} {
			f := ZMM()
			if r%2 == 0 {
				VPUNPCKLWD(pair[0], pair[1], f)
			} else {
				VPUNPCKHWD(pair[0], pair[1], f)
			}
			VMULPS(norm, f, f)
			VMOVUPS(f, Mem{Base: op, Disp: 64 * r})
		}
		ADDQ(U8(64), ip)
		ADDQ(U32(256), op)
		SUBQ(U8(64), j)
		JNZ(LabelRef(name + "_grp"))
	})
}

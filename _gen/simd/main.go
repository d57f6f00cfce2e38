// Command simd generates internal/simd's AVX2 kernels. Run it through
// `go generate ./internal/simd` (see internal/simd/gen.go).
package main

import (
	"fmt"
	"math"
	"slices"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

func main() {
	ConstraintExpr("!purego,!noasm")
	decodeSmall()
	decode4()
	decode8()
	decodeF16()
	for _, e := range rowElems {
		dot1(e)
		dot4(e)
		axpy1(e)
		axpy4(e)
	}
	expSum()
	expSum512()
	fwhtFirst8()
	fwhtFirst8Zmm()
	fwhtRegs()
	scaleKernel()
	fillKernel()
	sumSquares()
	f16Kernels()
	prefetch()
	maxKernel()
	max512()
	maxAbsBits()
	addF64()
	sub()
	for bits := 1; bits <= 4; bits++ {
		quantizePack(bits)
	}
	for _, levels := range []int{1, 2, 3} {
		fwhtPass(levels)
	}
	for _, k := range codeKinds {
		for _, g := range []int{1, 4} {
			dotCodes(k, g)
			axpyCodes(k, g)
		}
	}
	for _, k := range codeKinds {
		axpyCodesWn(k, 8)
		axpyCodesWn(k, 16)
		axpyCodes1Zmm(k)
		dotCodes4Zmm(k)
	}
	wnWeights()
	wnWeightsZmm()
	for _, f := range quantFormats {
		dotQuant1(f)
		dotQuant4(f)
		for _, vnni := range []bool{false, true} {
			dotQuant8x1(f, vnni)
			dotQuant8x4(f, vnni)
		}
	}
	quantizeQ8()
	for _, bits := range []int{3, 4} {
		for _, vnni := range []bool{false, true} {
			dotCodes8(bits, vnni)
		}
		for _, rows := range []int{1, 2, 4} {
			axpyCodes8(bits, rows)
			dotCodes16(bits, rows)
		}
	}
	for _, rows := range []int{1, 2, 4} {
		dotCodes8Wide(rows)
	}
	for _, bits := range [][2]int{{3, 4}, {4, 3}} {
		dotCodes16Pair(bits)
	}
	decode8Planes()
	weightsQ8()
	for _, rows := range []int{1, 2, 3, 4} {
		weightsQ8AVX2(rows)
	}
	for _, bits := range []int{3, 4} {
		for _, rows := range []int{1, 2, 4} {
			axpyCodes8AVX2(bits, rows, false)
			if bits == 3 {
				axpyCodes8AVX2(bits, rows, true)
			}
		}
	}
	Generate()
}

// rowLoop emits the loop over n rows of codes: p walks the codes by stride,
// out walks dst by 4·d bytes; body emits one row's work.
func rowLoop(name string, body func(p, out Register)) {
	p := Load(Param("codes").Base(), GP64())
	out := Load(Param("dst").Base(), GP64())
	stride := Load(Param("stride"), GP64())
	n := Load(Param("n"), GP64())
	rowBytes := Load(Param("dstStride"), GP64())
	SHLQ(U8(2), rowBytes)
	Label(name + "_row")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	body(p, out)
	ADDQ(stride, p)
	ADDQ(rowBytes, out)
	DECQ(n)
	JMP(LabelRef(name + "_row"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// loadNorm broadcasts the fp16 norm at normOff(p) into a vector register.
func loadNorm(p Register) VecVirtual {
	off := Load(Param("normOff"), GP64())
	h := GP32()
	MOVWLZX(Mem{Base: p, Index: off, Scale: 1}, h)
	x := XMM()
	VMOVD(h, x)
	VCVTPH2PS(x, x)
	y := YMM()
	VBROADCASTSS(x, y)
	return y
}

// groupLoop emits the loop over the d8/8 groups of 8 coordinates of a row:
// ip walks the index bytes by step, op walks the row's floats.
func groupLoop(name string, p, out Register, step int, body func(ip, op Register)) {
	ip := GP64()
	off := Load(Param("idxOff"), GP64())
	LEAQ(Mem{Base: p, Index: off, Scale: 1}, ip)
	op := GP64()
	MOVQ(out, op)
	j := Load(Param("d8"), GP64())
	Label(name + "_grp")
	body(ip, op)
	ADDQ(U32(step), ip)
	ADDQ(U32(32), op)
	SUBQ(U32(8), j)
	JNZ(LabelRef(name + "_grp"))
}

const codeSig = "codes []byte, stride, idxOff, normOff, n, dstStride, d8 int)"

func decodeSmall() {
	TEXT("decodeSmallAVX2", NOSPLIT, "func(dst []float32, tab *[8]float32, sh *[8]uint32, bits int, "+codeSig)
	Doc("decodeSmallAVX2 is decodeCodesGeneric for 1–3-bit codes on the first d8 coordinates:",
		"tab holds the centroids repeated to 8 entries and sh the lane shifts 0, b, … 7b.")
	Pragma("noescape")
	tab, sh := YMM(), YMM()
	VMOVUPS(Mem{Base: Load(Param("tab"), GP64())}, tab)
	VMOVDQU(Mem{Base: Load(Param("sh"), GP64())}, sh)
	bits := Load(Param("bits"), GP64())
	rowLoop("small", func(p, out Register) {
		norm := loadNorm(p)
		ip := GP64()
		off := Load(Param("idxOff"), GP64())
		LEAQ(Mem{Base: p, Index: off, Scale: 1}, ip)
		op := GP64()
		MOVQ(out, op)
		j := Load(Param("d8"), GP64())
		Label("small_grp")
		// vpermps reads only the low three bits of each lane, so the
		// shifted-out higher indices need no mask: tab repeats the
		// centroids of 1- and 2-bit codes.
		idx, c := YMM(), YMM()
		VPBROADCASTD(Mem{Base: ip}, idx)
		VPSRLVD(sh, idx, idx)
		VPERMPS(tab, idx, c)
		VMULPS(norm, c, c)
		VMOVUPS(c, Mem{Base: op})
		ADDQ(bits, ip)
		ADDQ(U32(32), op)
		SUBQ(U32(8), j)
		JNZ(LabelRef("small_grp"))
	})
}

func decode4() {
	TEXT("decode4AVX2", NOSPLIT, "func(dst []float32, tab *[16]float32, "+codeSig)
	Doc("decode4AVX2 is decodeCodesGeneric for 4-bit codes on the first d8 coordinates.")
	Pragma("noescape")
	t := Load(Param("tab"), GP64())
	lo, hi, sh := YMM(), YMM(), YMM()
	VMOVUPS(Mem{Base: t}, lo)
	VMOVUPS(Mem{Base: t, Disp: 32}, hi)
	shifts := GLOBL("shifts4", RODATA|NOPTR)
	for i := range 8 {
		DATA(4*i, U32(4*i))
	}
	VMOVDQU(shifts, sh)
	rowLoop("d4", func(p, out Register) {
		norm := loadNorm(p)
		groupLoop("d4", p, out, 4, func(ip, op Register) {
			idx, a, b, m := YMM(), YMM(), YMM(), YMM()
			VPBROADCASTD(Mem{Base: ip}, idx)
			VPSRLVD(sh, idx, idx)
			VPERMPS(lo, idx, a)
			VPERMPS(hi, idx, b)
			VPSLLD(U8(28), idx, m) // bit 3 of the index becomes the blend sign
			VBLENDVPS(m, b, a, a)
			VMULPS(norm, a, a)
			VMOVUPS(a, Mem{Base: op})
		})
	})
}

func decode8() {
	TEXT("decode8AVX2", NOSPLIT, "func(dst []float32, tab *[256]float32, "+codeSig)
	Doc("decode8AVX2 is decodeCodesGeneric for 8-bit codes on the first d8 coordinates.")
	Pragma("noescape")
	t := Load(Param("tab"), GP64())
	rowLoop("d8", func(p, out Register) {
		norm := loadNorm(p)
		groupLoop("d8", p, out, 8, func(ip, op Register) {
			idx, m, c := YMM(), YMM(), YMM()
			VPMOVZXBD(Mem{Base: ip}, idx)
			VPCMPEQD(m, m, m)
			VXORPS(c, c, c)
			VGATHERDPS(m, Mem{Base: t, Index: idx, Scale: 4}, c)
			VMULPS(norm, c, c)
			VMOVUPS(c, Mem{Base: op})
		})
	})
}

func decodeF16() {
	TEXT("decodeF16AVX2", NOSPLIT, "func(dst []float32, src []byte, stride, n, dstStride, d8 int)")
	Doc("decodeF16AVX2 is DecodeF16's loop on the first d8 coordinates of each row.")
	Pragma("noescape")
	p := Load(Param("src").Base(), GP64())
	out := Load(Param("dst").Base(), GP64())
	stride := Load(Param("stride"), GP64())
	n := Load(Param("n"), GP64())
	rowBytes := Load(Param("dstStride"), GP64())
	SHLQ(U8(2), rowBytes)
	Label("f16_row")
	TESTQ(n, n)
	JZ(LabelRef("f16_done"))
	ip, op := GP64(), GP64()
	MOVQ(p, ip)
	MOVQ(out, op)
	j := Load(Param("d8"), GP64())
	Label("f16_grp")
	x := YMM()
	VCVTPH2PS(Mem{Base: ip}, x)
	VMOVUPS(x, Mem{Base: op})
	ADDQ(U32(16), ip)
	ADDQ(U32(32), op)
	SUBQ(U32(8), j)
	JNZ(LabelRef("f16_grp"))
	ADDQ(stride, p)
	ADDQ(rowBytes, out)
	DECQ(n)
	JMP(LabelRef("f16_row"))
	Label("f16_done")
	VZEROUPPER()
	RET()
}

// rowElem is the element type of the rows the dot and axpy kernels read:
// float32, or fp16 converted to float32 as it is loaded (F16C).
type rowElem struct {
	suffix string // kernel name suffix
	size   int    // bytes per element
	goType string
	shift  uint8 // log2(size)
}

var rowElems = []rowElem{{"", 4, "[]float32", 2}, {"F16", 2, "[]byte", 1}}

// rowSig is the tail of the dot/axpy signatures; rowStride counts elements.
// ahead is prefetched pfLines lines per row (dot) or per row and pass
// (axpy) as the kernel goes.
func (e rowElem) rowSig() string {
	return "rows " + e.goType + ", n, d, d8, rowStride int, ahead []byte, pfLines int)"
}

// prefetchArg asks for the next pfLines lines of the ahead argument (at
// most what is left) into L2, keeping its pointer and length in the
// argument frame rather than in registers the loops need. PREFETCHT1, not
// T0: on Zen 4 the fp16 step ran 1.3–1.5× faster (BENCHMARKS.md, session
// 13), probably because lines asked into L1 a block ahead crowded out
// what the rows and queries were using.
func prefetchArg(label string) {
	pfLabels++
	label = fmt_("%s_pf%d", label, pfLabels)
	p, n, c := GP64(), GP64(), GP64()
	Load(Param("ahead").Len(), n)
	TESTQ(n, n)
	JLE(LabelRef(label + "_done"))
	Load(Param("ahead").Base(), p)
	Load(Param("pfLines"), c)
	Label(label)
	PREFETCHT1(Mem{Base: p})
	ADDQ(U32(64), p)
	SUBQ(U32(64), n)
	JLE(LabelRef(label + "_store"))
	DECQ(c)
	JNZ(LabelRef(label))
	Label(label + "_store")
	Store(p, Param("ahead").Base())
	Store(n, Param("ahead").Len())
	Label(label + "_done")
}

// load returns the eight row elements at m as float32.
func (e rowElem) load(m Mem) VecVirtual {
	x := YMM()
	if e.size == 2 {
		VCVTPH2PS(m, x)
	} else {
		VMOVUPS(m, x)
	}
	return x
}

// rows4 addresses four rows s bytes apart: row i at base + i·s, with
// s and 3·s in registers (scaled indexes reach 1·s and 2·s).
type rows4 struct{ s, s3 Register }

// newRows4 computes 3·s into a new register.
func newRows4(s Register) rows4 {
	s3 := GP64()
	LEAQ(Mem{Base: s, Index: s, Scale: 2}, s3)
	return rows4{s, s3}
}

// at returns the operand of row i (< 4) at disp bytes past base.
func (r rows4) at(base Register, i, disp int) Mem {
	switch i {
	case 1:
		return Mem{Base: base, Index: r.s, Scale: 1, Disp: disp}
	case 2:
		return Mem{Base: base, Index: r.s, Scale: 2, Disp: disp}
	case 3:
		return Mem{Base: base, Index: r.s3, Scale: 1, Disp: disp}
	}
	return Mem{Base: base, Disp: disp}
}

// hsum reduces the 8 lanes of y into the low lane of its XMM half.
func hsum(y VecVirtual) Register {
	return hfold(y, func(a, b, dst Op) { VADDPS(a, b, dst) }, func(a, b, dst Op) { VADDSS(a, b, dst) })
}

// hmax reduces the low 8 lanes of y to their maximum, into the low lane of
// its XMM half.
func hmax(y VecVirtual) Register {
	return hfold(y, func(a, b, dst Op) { VMAXPS(a, b, dst) }, func(a, b, dst Op) { VMAXSS(a, b, dst) })
}

// hfold folds the low 8 lanes of y by ps (packed) and ss (scalar): the
// 128-bit halves, then the quadword pairs, then the last two lanes.
func hfold(y VecVirtual, ps, ss func(a, b, dst Op)) Register {
	x := XMM()
	VEXTRACTF128(U8(1), y.AsY(), x)
	lo := y.AsX()
	ps(x, lo, lo)
	VMOVHLPS(lo, x, x)
	ps(x, lo, lo)
	VMOVSHDUP(lo, x)
	ss(x, lo, lo)
	return lo
}

// hsumPairs reduces the 8 lanes of y as dot4's two-row path does:
// ((y0+y1)+(y2+y3)) + ((y4+y5)+(y6+y7)), into the low lane of its XMM half,
// so a row's score does not depend on whether it was paired.
func hsumPairs(y VecVirtual) Register {
	VHADDPS(y, y, y)
	VHADDPS(y, y, y)
	x := XMM()
	VEXTRACTF128(U8(1), y, x)
	lo := y.AsX()
	VADDSS(x, lo, lo)
	return lo
}

// zeroAcc42 returns eight zeroed accumulators: [row][code or parity].
func zeroAcc42() (acc [4][2]VecVirtual) {
	for i := range acc {
		for k := range acc[i] {
			acc[i][k] = YMM()
			VXORPS(acc[i][k], acc[i][k], acc[i][k])
		}
	}
	return acc
}

// reducePairs reduces the eight sums acc[i][t] (query row i, row t) into
// one vector with lane 2i+t holding acc[i][t]'s lanes summed in
// hsumPairs's order, so each query row's two results are adjacent, as out
// lays them out.
func reducePairs(acc [4][2]VecVirtual) VecVirtual {
	var u [2]VecVirtual
	for half := range u {
		h := [2]VecVirtual{YMM(), YMM()}
		for k := range h {
			i := 2*half + k
			VHADDPS(acc[i][1], acc[i][0], h[k])
		}
		u[half] = YMM()
		VHADDPS(h[1], h[0], u[half])
	}
	lo, hi := YMM(), YMM()
	VPERM2F128(U8(0x20), u[1], u[0], lo)
	VPERM2F128(U8(0x31), u[1], u[0], hi)
	VADDPS(hi, lo, lo)
	return lo
}

// addPairs adds the pairs of x (from reducePairs) to out rows 0–3 at o,
// os bytes apart: lanes 2i and 2i+1 to the two floats of row i at o.
func addPairs(x VecVirtual, o, os Register) {
	o3 := GP64()
	LEAQ(Mem{Base: o, Index: os, Scale: 2}, o3)
	outAt := [4]Mem{{Base: o}, {Base: o, Index: os, Scale: 1}, {Base: o3}, {Base: o3, Index: os, Scale: 1}}
	top := XMM()
	VEXTRACTF128(U8(1), x, top)
	for k, h := range []Register{x.AsX(), top} {
		t := XMM()
		VMOVSD(outAt[2*k], t) // row 2k's pair: the low 64 bits
		VADDPS(h, t, t)
		VMOVSD(t, outAt[2*k])
		VMOVHPS(outAt[2*k+1], h, t) // row 2k+1's pair: the high 64 bits
		VADDPS(h, t, t)
		VMOVHPS(t, outAt[2*k+1])
	}
}

func dot1(e rowElem) {
	name := "dot1" + e.suffix + "AVX2"
	TEXT(name, NOSPLIT, "func(out []float32, outStride int, q []float32, "+e.rowSig())
	Doc(name + " is one query row of Dot" + e.suffix + " on the first d8 coordinates, with 8-lane FMA sums.")
	Pragma("noescape")
	o := Load(Param("out").Base(), GP64())
	q := Load(Param("q").Base(), GP64())
	r := Load(Param("rows").Base(), GP64())
	n := Load(Param("n"), GP64())
	rs := Load(Param("rowStride"), GP64())
	SHLQ(U8(e.shift), rs)
	d8 := Load(Param("d8"), GP64())
	Label(name + "_row")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	prefetchArg(name)
	acc := []VecVirtual{YMM(), YMM(), YMM(), YMM()}
	for _, a := range acc {
		VXORPS(a, a, a)
	}
	j := GP64()
	XORQ(j, j)
	Label(name + "_32")
	t := GP64()
	LEAQ(Mem{Base: j, Disp: 32}, t)
	CMPQ(t, d8)
	JA(LabelRef(name + "_8"))
	for k, a := range acc {
		x := e.load(Mem{Base: r, Index: j, Scale: uint8(e.size), Disp: 8 * e.size * k})
		VFMADD231PS(Mem{Base: q, Index: j, Scale: 4, Disp: 32 * k}, x, a)
	}
	MOVQ(t, j)
	JMP(LabelRef(name + "_32"))
	Label(name + "_8")
	CMPQ(j, d8)
	JAE(LabelRef(name + "_sum"))
	x := e.load(Mem{Base: r, Index: j, Scale: uint8(e.size)})
	VFMADD231PS(Mem{Base: q, Index: j, Scale: 4}, x, acc[0])
	ADDQ(U32(8), j)
	JMP(LabelRef(name + "_8"))
	Label(name + "_sum")
	VADDPS(acc[1], acc[0], acc[0])
	VADDPS(acc[3], acc[2], acc[2])
	VADDPS(acc[2], acc[0], acc[0])
	s := hsum(acc[0])
	VADDSS(Mem{Base: o}, s, s)
	VMOVSS(s, Mem{Base: o})
	ADDQ(U32(4), o)
	ADDQ(rs, r)
	DECQ(n)
	JMP(LabelRef(name + "_row"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

func dot4(e rowElem) {
	name := "dot4" + e.suffix + "AVX2"
	TEXT(name, NOSPLIT, "func(out []float32, outStride int, q []float32, "+e.rowSig())
	Doc(name+" is dot1"+e.suffix+"AVX2 for four query rows (q rows d apart, out rows outStride apart),",
		"reading each row of rows once.")
	Pragma("noescape")
	o := Load(Param("out").Base(), GP64())
	q := Load(Param("q").Base(), GP64())
	r := Load(Param("rows").Base(), GP64())
	n := Load(Param("n"), GP64())
	rs := Load(Param("rowStride"), GP64())
	SHLQ(U8(e.shift), rs)
	d8 := Load(Param("d8"), GP64())
	qs := Load(Param("d"), GP64()) // query row stride, bytes
	SHLQ(U8(2), qs)
	os := Load(Param("outStride"), GP64()) // bytes
	SHLQ(U8(2), os)
	qr := newRows4(qs)
	// Two rows at a time: eight independent sums (four per row) keep both
	// FMA units busy, where one row's four chains wait on the FMA latency,
	// and one query load serves both rows.
	Label(name + "_pair")
	CMPQ(n, U8(2))
	JB(LabelRef(name + "_row"))
	prefetchArg(name)
	prefetchArg(name)
	{
		acc2 := zeroAcc42()
		j := GP64()
		XORQ(j, j)
		Label(name + "_pgrp")
		rp, qp := GP64(), GP64()
		LEAQ(Mem{Base: r, Index: j, Scale: uint8(e.size)}, rp)
		x0 := e.load(Mem{Base: rp})
		x1 := e.load(Mem{Base: rp, Index: rs, Scale: 1})
		LEAQ(Mem{Base: q, Index: j, Scale: 4}, qp)
		for i := range acc2 {
			y := YMM()
			VMOVUPS(qr.at(qp, i, 0), y)
			VFMADD231PS(x0, y, acc2[i][0])
			VFMADD231PS(x1, y, acc2[i][1])
		}
		ADDQ(U32(8), j)
		CMPQ(j, d8)
		JB(LabelRef(name + "_pgrp"))
		addPairs(reducePairs(acc2), o, os)
	}
	ADDQ(U32(8), o)
	LEAQ(Mem{Base: r, Index: rs, Scale: 2}, r)
	SUBQ(U8(2), n)
	JMP(LabelRef(name + "_pair"))
	Label(name + "_row")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	prefetchArg(name)
	acc := []VecVirtual{YMM(), YMM(), YMM(), YMM()}
	for _, a := range acc {
		VXORPS(a, a, a)
	}
	j := GP64()
	XORQ(j, j)
	Label(name + "_grp")
	x := e.load(Mem{Base: r, Index: j, Scale: uint8(e.size)})
	qp := GP64()
	LEAQ(Mem{Base: q, Index: j, Scale: 4}, qp)
	for i, a := range acc {
		VFMADD231PS(qr.at(qp, i, 0), x, a)
	}
	ADDQ(U32(8), j)
	CMPQ(j, d8)
	JB(LabelRef(name + "_grp"))
	for k, a := range acc {
		s := hsumPairs(a)
		m := Mem{Base: o}
		switch k {
		case 1:
			m = Mem{Base: o, Index: os, Scale: 1}
		case 2:
			m = Mem{Base: o, Index: os, Scale: 2}
		case 3:
			t := GP64()
			LEAQ(Mem{Base: o, Index: os, Scale: 2}, t)
			m = Mem{Base: t, Index: os, Scale: 1}
		}
		VADDSS(m, s, s)
		VMOVSS(s, m)
	}
	ADDQ(U32(4), o)
	ADDQ(rs, r)
	DECQ(n)
	JMP(LabelRef(name + "_row"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

func axpy1(e rowElem) {
	fn := "axpy1" + e.suffix + "AVX2"
	TEXT(fn, NOSPLIT, "func(acc, w []float32, wStride int, "+e.rowSig())
	Doc(fn+" is Axpy's loop for one accumulator row on the first d8 coordinates:",
		"32 (then 8) coordinates stay in registers while every row is added in.")
	Pragma("noescape")
	a := Load(Param("acc").Base(), GP64())
	w := Load(Param("w").Base(), GP64())
	r := Load(Param("rows").Base(), GP64())
	rs := Load(Param("rowStride"), GP64())
	SHLQ(U8(e.shift), rs)
	d8 := Load(Param("d8"), GP64())
	j := GP64()
	XORQ(j, j)
	for _, width := range []int{4, 1} {
		name := fn + "_" + string(rune('0'+width))
		Label(name)
		end := GP64()
		LEAQ(Mem{Base: j, Disp: 8 * width}, end)
		CMPQ(end, d8)
		JA(LabelRef(name + "_end"))
		acc := make([]VecVirtual, width)
		for k := range acc {
			acc[k] = YMM()
			VMOVUPS(Mem{Base: a, Index: j, Scale: 4, Disp: 32 * k}, acc[k])
		}
		rp, t := GP64(), GP64()
		LEAQ(Mem{Base: r, Index: j, Scale: uint8(e.size)}, rp)
		XORQ(t, t)
		Label(name + "_tok")
		prefetchArg(name)
		wt := YMM()
		VBROADCASTSS(Mem{Base: w, Index: t, Scale: 4}, wt)
		for k := range acc {
			if e.size == 4 {
				VFMADD231PS(Mem{Base: rp, Disp: 32 * k}, wt, acc[k])
			} else {
				VFMADD231PS(e.load(Mem{Base: rp, Disp: 16 * k}), wt, acc[k])
			}
		}
		ADDQ(rs, rp)
		INCQ(t)
		CMPQ(t, Load(Param("n"), GP64()))
		JB(LabelRef(name + "_tok"))
		for k := range acc {
			VMOVUPS(acc[k], Mem{Base: a, Index: j, Scale: 4, Disp: 32 * k})
		}
		MOVQ(end, j)
		JMP(LabelRef(name))
		Label(name + "_end")
	}
	VZEROUPPER()
	RET()
}

func axpy4(e rowElem) {
	fn := "axpy4" + e.suffix + "AVX2"
	TEXT(fn, NOSPLIT, "func(acc, w []float32, wStride int, "+e.rowSig())
	Doc(fn+" is axpy1"+e.suffix+"AVX2 for four accumulator rows (acc rows d apart, w rows wStride apart),",
		"reading each row of rows once per 16 coordinates.")
	Pragma("noescape")
	a := Load(Param("acc").Base(), GP64())
	r := Load(Param("rows").Base(), GP64())
	rs := Load(Param("rowStride"), GP64())
	SHLQ(U8(e.shift), rs)
	d8 := Load(Param("d8"), GP64())
	as := Load(Param("d"), GP64()) // acc row stride, bytes
	SHLQ(U8(2), as)
	as3 := GP64()
	LEAQ(Mem{Base: as, Index: as, Scale: 2}, as3)
	j := GP64()
	XORQ(j, j)
	for _, width := range []int{2, 1} {
		name := fn + "_" + string(rune('0'+width))
		Label(name)
		end := GP64()
		LEAQ(Mem{Base: j, Disp: 8 * width}, end)
		CMPQ(end, d8)
		JA(LabelRef(name + "_end"))
		accAt := func(i, k int) Mem {
			m := Mem{Base: a, Index: j, Scale: 4, Disp: 32 * k}
			if i == 0 {
				return m
			}
			ap := GP64()
			switch i {
			case 1:
				LEAQ(Mem{Base: a, Index: as, Scale: 1}, ap)
			case 2:
				LEAQ(Mem{Base: a, Index: as, Scale: 2}, ap)
			case 3:
				LEAQ(Mem{Base: a, Index: as3, Scale: 1}, ap)
			}
			m.Base = ap
			return m
		}
		acc := make([][]VecVirtual, 4)
		for i := range acc {
			for k := range width {
				v := YMM()
				VMOVUPS(accAt(i, k), v)
				acc[i] = append(acc[i], v)
			}
		}
		rp, wp, ws, cnt := GP64(), GP64(), GP64(), GP64()
		LEAQ(Mem{Base: r, Index: j, Scale: uint8(e.size)}, rp)
		Load(Param("w").Base(), wp)
		Load(Param("n"), cnt)
		Load(Param("wStride"), ws)
		SHLQ(U8(2), ws) // bytes
		Label(name + "_tok")
		prefetchArg(name)
		xs := make([]VecVirtual, width)
		for k := range xs {
			xs[k] = e.load(Mem{Base: rp, Disp: 8 * e.size * k})
		}
		for i := range acc {
			wt := YMM()
			switch i {
			case 0:
				VBROADCASTSS(Mem{Base: wp}, wt)
			case 1:
				VBROADCASTSS(Mem{Base: wp, Index: ws, Scale: 1}, wt)
			case 2:
				VBROADCASTSS(Mem{Base: wp, Index: ws, Scale: 2}, wt)
			case 3:
				w3 := GP64()
				LEAQ(Mem{Base: wp, Index: ws, Scale: 2}, w3)
				VBROADCASTSS(Mem{Base: w3, Index: ws, Scale: 1}, wt)
			}
			for k := range xs {
				VFMADD231PS(xs[k], wt, acc[i][k])
			}
		}
		ADDQ(rs, rp)
		ADDQ(U32(4), wp)
		DECQ(cnt)
		JNZ(LabelRef(name + "_tok"))
		for i := range acc {
			for k, v := range acc[i] {
				VMOVUPS(v, accAt(i, k))
			}
		}
		MOVQ(end, j)
		JMP(LabelRef(name))
		Label(name + "_end")
	}
	VZEROUPPER()
	RET()
}

// vconst emits (once per name) a 32-byte constant of eight copies of v,
// for use as a memory operand (AVX2 has only 16 vector registers).
func vconst(name string, v Constant) Mem {
	if m, ok := vconsts[name]; ok {
		return m
	}
	m := GLOBL(name, RODATA|NOPTR)
	for i := range 8 {
		DATA(4*i, v)
	}
	vconsts[name] = m
	return m
}

// vconsts holds the constants vconst emitted, by name.
var vconsts = map[string]Mem{}

func expSum() {
	TEXT("expSumAVX2", NOSPLIT, "func(x []float32, m float32) float32")
	Doc("expSumAVX2 is expSumGeneric on the first len(x)&^7 elements, with FMAs.")
	Pragma("noescape")
	p := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	ANDQ(I32(-8), n)
	m, mx := YMM(), XMM()
	Load(Param("m"), mx)
	VBROADCASTSS(mx, m)
	lo := vconst("expLo", F32(-87.33654))
	log2e := vconst("expLog2e", F32(float32(math.Log2E)))
	ln2hi := vconst("expLn2Hi", F32(0.693359375))
	ln2lo := vconst("expLn2Lo", F32(-2.12194440e-4))
	c := []Mem{
		vconst("expP0", F32(1.9875691500e-4)), vconst("expP1", F32(1.3981999507e-3)), vconst("expP2", F32(8.3334519073e-3)),
		vconst("expP3", F32(4.1665795894e-2)), vconst("expP4", F32(1.6666665459e-1)), vconst("expP5", F32(5.0000001201e-1)),
	}
	one := vconst("expOne", F32(1))
	bias := vconst("expBias", U32(127))
	sum := YMM()
	VXORPS(sum, sum, sum)
	Label("exp_loop")
	TESTQ(n, n)
	JZ(LabelRef("exp_done"))
	v, under, k, poly, r2, e := YMM(), YMM(), YMM(), YMM(), YMM(), YMM()
	VMOVUPS(Mem{Base: p}, v)
	VSUBPS(m, v, v)
	VCMPPS(U8(1), lo, v, under) // v < expLo
	VMULPS(log2e, v, k)
	VROUNDPS(U8(0), k, k) // nearest even
	expPoly(v, k, poly, r2, ln2hi, ln2lo, one, c)
	VCVTPS2DQ(k, e)
	VPADDD(bias, e, e)
	VPSLLD(U8(23), e, e)
	VMULPS(e, poly, poly)
	VANDNPS(poly, under, poly)
	VMOVUPS(poly, Mem{Base: p})
	VADDPS(poly, sum, sum)
	ADDQ(U32(32), p)
	SUBQ(U32(8), n)
	JMP(LabelRef("exp_loop"))
	Label("exp_done")
	s := hsum(sum)
	Store(s, ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// expPoly emits e^r, r = v − k·ln2 (into v), into poly, as exp32: the two
// steps of ln2, the polynomial c (constants in memory or registers) by
// fused multiply-adds, then r² and 1.
func expPoly[C Op](v, k, poly, r2 VecVirtual, ln2hi, ln2lo, one C, c []C) {
	VFNMADD231PS(ln2hi, k, v)
	VFNMADD231PS(ln2lo, k, v)
	VMOVUPS(c[0], poly)
	for _, ci := range c[1:] {
		VFMADD213PS(ci, v, poly)
	}
	VMULPS(v, v, r2)
	VFMADD213PS(v, r2, poly)
	VADDPS(one, poly, poly)
}

// expSum512 emits expSumAVX512: expSum's operations on sixteen elements at
// a time, with AVX-512's rounding, scaling and masks in place of the
// exponent built in an integer register and the mask of the underflow.
func expSum512() {
	TEXT("expSumAVX512", NOSPLIT, "func(x []float32, m float32) float32")
	Doc("expSumAVX512 is expSumAVX2 on the first len(x)&^15 elements, sixteen at a time: each",
		"element's operations are the same (2^k applied by VSCALEFPS, exact as the AVX2 product), the",
		"sum kept in sixteen lanes.")
	Pragma("noescape")
	p := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	ANDQ(I32(-16), n)
	mx, m := XMM(), ZMM()
	Load(Param("m"), mx)
	VBROADCASTSS(mx, m)
	bcast := func(c Mem) VecVirtual {
		z := ZMM()
		VBROADCASTSS(c, z)
		return z
	}
	lo, log2e := bcast(vconst("expLo", F32(-87.33654))), bcast(vconst("expLog2e", F32(float32(math.Log2E))))
	ln2hi, ln2lo := bcast(vconst("expLn2Hi", F32(0.693359375))), bcast(vconst("expLn2Lo", F32(-2.12194440e-4)))
	c := []VecVirtual{
		bcast(vconst("expP0", F32(1.9875691500e-4))), bcast(vconst("expP1", F32(1.3981999507e-3))), bcast(vconst("expP2", F32(8.3334519073e-3))),
		bcast(vconst("expP3", F32(4.1665795894e-2))), bcast(vconst("expP4", F32(1.6666665459e-1))), bcast(vconst("expP5", F32(5.0000001201e-1))),
	}
	one := bcast(vconst("expOne", F32(1)))
	sum := ZMM()
	VXORPS(sum, sum, sum)
	Label("exp512_loop")
	TESTQ(n, n)
	JZ(LabelRef("exp512_done"))
	v, k, poly, r2 := ZMM(), ZMM(), ZMM(), ZMM()
	keep := K()
	VMOVUPS(Mem{Base: p}, v)
	VSUBPS(m, v, v)
	VCMPPS(U8(0x0d), lo, v, keep) // v ≥ expLo
	VMULPS(log2e, v, k)
	VRNDSCALEPS(U8(0), k, k) // nearest even
	expPoly(v, k, poly, r2, ln2hi, ln2lo, one, c)
	VSCALEFPS_Z(k, poly, keep, poly)
	VMOVUPS(poly, Mem{Base: p})
	VADDPS(poly, sum, sum)
	ADDQ(U32(64), p)
	SUBQ(U32(16), n)
	JMP(LabelRef("exp512_loop"))
	Label("exp512_done")
	hi := YMM()
	VEXTRACTF32X8(U8(1), sum, hi)
	VADDPS(hi, sum.AsY(), hi)
	Store(hsum(hi), ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// codeKind is a packed-index width family of the fused kernels: "small"
// (1–3 bits, one 8-entry table, the lane shifts passed in) or "b4" (4 bits,
// two 8-entry tables blended on bit 3).
type codeKind struct {
	name string
	b4   bool
}

var codeKinds = []codeKind{{"Small", false}, {"B4", true}}

// codeTables holds a kind's loaded tables and lane shifts.
type codeTables struct {
	k      codeKind
	lo, hi VecVirtual
	sh     VecVirtual
}

func loadTables(k codeKind) codeTables {
	t := codeTables{k: k, lo: YMM(), sh: YMM()}
	tab := Load(Param("tab"), GP64())
	VMOVUPS(Mem{Base: tab}, t.lo)
	if k.b4 {
		t.hi = YMM()
		VMOVUPS(Mem{Base: tab, Disp: 32}, t.hi)
	}
	VMOVDQU(Mem{Base: Load(Param("sh"), GP64())}, t.sh)
	return t
}

// unpack loads the group of eight indices at m and returns their centroids.
func (t codeTables) unpack(m Mem) VecVirtual {
	idx, c := YMM(), YMM()
	VPBROADCASTD(m, idx)
	VPSRLVD(t.sh, idx, idx)
	VPERMPS(t.lo, idx, c)
	if t.k.b4 {
		hi := YMM()
		VPERMPS(t.hi, idx, hi)
		VPSLLD(U8(28), idx, idx) // bit 3 of the index becomes the blend sign
		VBLENDVPS(idx, hi, c, c)
	}
	return c
}

// normOf converts the fp16 norm at normOff(p) into the low lane of an XMM.
func normOf(p Register) VecVirtual { return normAt(p, Load(Param("normOff"), GP64())) }

// normAt is normOf with normOff already in a register.
func normAt(p, off Register) VecVirtual {
	h := GP32()
	MOVWLZX(Mem{Base: p, Index: off, Scale: 1}, h)
	x := XMM()
	VMOVD(h, x)
	VCVTPH2PS(x, x)
	return x
}

const fusedSig = "tab *[16]float32, sh *[8]uint32, bits int, codes []byte, stride, idxOff, normOff, n, d8 int, ahead []byte)"

// dotCodes emits out[i·outStride+t] += norm_t · Σ_{j<d8} q[i·qStride+j]·c_t[j]
// for g = 1 or 4 query rows, unpacking each group of indices once.
func dotCodes(k codeKind, g int) {
	name := fmt_("dotCodes%s%dAVX2", k.name, g)
	TEXT(name, NOSPLIT, "func(out []float32, outStride int, q []float32, qStride int, "+fusedSig)
	Doc(name + " is dotCodesGeneric for " + map[bool]string{false: "1–3", true: "4"}[k.b4] + "-bit codes and " +
		map[int]string{1: "one query row", 4: "four query rows"}[g] + " on the first d8 coordinates.")
	Pragma("noescape")
	t := loadTables(k)
	o := Load(Param("out").Base(), GP64())
	p := Load(Param("codes").Base(), GP64())
	n := Load(Param("n"), GP64())
	unroll := 4 // groups per iteration: 4 independent FMA chains
	if g == 4 {
		// Two codes at a time: each group of indices of both unpacked,
		// eight FMA chains (four rows × two codes), each query load serving
		// two multiply-adds, and one reduction (reducePairs) for the eight
		// sums. A code left alone is summed in the same order (one chain per
		// row, hsumPairs), so its score does not depend on its pairing.
		unroll = 1
		dotCodesPairs(name, t, o, p, n)
	}
	Label(name + "_row")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	acc := make([]VecVirtual, g*unroll)
	for i := range acc {
		acc[i] = YMM()
		VXORPS(acc[i], acc[i], acc[i])
	}
	ip, qp, j := GP64(), GP64(), GP64()
	LEAQ(Mem{Base: p, Index: Load(Param("idxOff"), GP64()), Scale: 1}, ip)
	Load(Param("q").Base(), qp)
	Load(Param("d8"), j)
	bits := Load(Param("bits"), GP64())
	var qr rows4 // query rows (g = 4)
	if g == 4 {
		qs := Load(Param("qStride"), GP64())
		SHLQ(U8(2), qs)
		qr = newRows4(qs)
	}
	qrow := func(i, disp int) Mem { return qr.at(qp, i, disp) }
	for _, u := range slices.Compact([]int{unroll, 1}) {
		lbl := fmt_("%s_g%d", name, u)
		Label(lbl)
		CMPQ(j, U32(8*u))
		JB(LabelRef(lbl + "_end"))
		for gi := range u {
			var c VecVirtual
			if gi == 0 {
				c = t.unpack(Mem{Base: ip})
			} else {
				at := GP64()
				LEAQ(Mem{Base: ip, Index: bits, Scale: 1}, at)
				if gi > 1 {
					for range gi - 1 {
						ADDQ(bits, at)
					}
				}
				c = t.unpack(Mem{Base: at})
			}
			for i := range g {
				VFMADD231PS(qrow(i, 32*gi), c, acc[i*unroll+gi])
			}
		}
		for range u {
			ADDQ(bits, ip)
		}
		ADDQ(U32(32*u), qp)
		SUBQ(U32(8*u), j)
		JMP(LabelRef(lbl))
		Label(lbl + "_end")
	}
	norm := normOf(p)
	os := Load(Param("outStride"), GP64())
	SHLQ(U8(2), os)
	op := GP64()
	MOVQ(o, op)
	for i := range g {
		for u := 1; u < unroll; u++ {
			VADDPS(acc[i*unroll+u], acc[i*unroll], acc[i*unroll])
		}
		var s Register
		if g == 4 {
			s = hsumPairs(acc[i*unroll])
		} else {
			s = hsum(acc[i*unroll])
		}
		VMULSS(norm, s, s)
		VADDSS(Mem{Base: op}, s, s)
		VMOVSS(s, Mem{Base: op})
		if i < g-1 {
			ADDQ(os, op)
		}
	}
	ADDQ(U32(4), o)
	ADDQ(Load(Param("stride"), GP64()), p)
	DECQ(n)
	JMP(LabelRef(name + "_row"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// dotCodesPairs emits dotCodes' loop for four query rows over pairs of
// codes, advancing o, p and n past them; the single-code loop that follows
// takes what is left.
func dotCodesPairs(name string, t codeTables, o, p, n Register) {
	pa, pn := aheadParams()
	Label(name + "_pair")
	CMPQ(n, U8(2))
	JB(LabelRef(name + "_row"))
	prefetchSome(name+"_pf", pa, pn, 2)
	acc := zeroAcc42()
	st := Load(Param("stride"), GP64())
	ip := GP64()
	LEAQ(Mem{Base: p, Index: Load(Param("idxOff"), GP64()), Scale: 1}, ip)
	qp, j, bits := Load(Param("q").Base(), GP64()), Load(Param("d8"), GP64()), Load(Param("bits"), GP64())
	qs := Load(Param("qStride"), GP64())
	SHLQ(U8(2), qs)
	qr := newRows4(qs)
	Label(name + "_pgrp")
	c0 := t.unpack(Mem{Base: ip})
	c1 := t.unpack(Mem{Base: ip, Index: st, Scale: 1})
	for i := range acc {
		VFMADD231PS(qr.at(qp, i, 0), c0, acc[i][0])
		VFMADD231PS(qr.at(qp, i, 0), c1, acc[i][1])
	}
	ADDQ(bits, ip)
	ADDQ(U32(32), qp)
	SUBQ(U32(8), j)
	JNZ(LabelRef(name + "_pgrp"))
	x := reducePairs(acc)
	// The two codes' fp16 norms side by side, [n0 n1] in every lane pair.
	noff := Load(Param("normOff"), GP64())
	h0, h1, p1 := GP32(), GP32(), GP64()
	MOVWLZX(Mem{Base: p, Index: noff, Scale: 1}, h0)
	LEAQ(Mem{Base: p, Index: st, Scale: 1}, p1)
	MOVWLZX(Mem{Base: p1, Index: noff, Scale: 1}, h1)
	SHLL(U8(16), h1)
	ORL(h1, h0)
	nx, ny := XMM(), YMM()
	VMOVD(h0, nx)
	VCVTPH2PS(nx, nx)
	VPBROADCASTQ(nx, ny)
	VMULPS(ny, x, x)
	os := Load(Param("outStride"), GP64())
	SHLQ(U8(2), os)
	addPairs(x, o, os)
	ADDQ(U32(8), o)
	LEAQ(Mem{Base: p, Index: st, Scale: 2}, p)
	SUBQ(U8(2), n)
	JMP(LabelRef(name + "_pair"))
}

// axpyCodes emits acc[i·accStride+j] += Σ_t w[i·wStride+t]·norm_t·c_t[j]
// for g = 1 or 4 accumulator rows: a chunk of coordinates stays in
// registers while every code adds into it.
func axpyCodes(k codeKind, g int) {
	name := fmt_("axpyCodes%s%dAVX2", k.name, g)
	TEXT(name, NOSPLIT, "func(acc []float32, accStride int, w []float32, wStride int, "+fusedSig)
	Doc(name + " is axpyCodesGeneric for " + map[bool]string{false: "1–3", true: "4"}[k.b4] + "-bit codes and " +
		map[int]string{1: "one accumulator row", 4: "four accumulator rows"}[g] + " on the first d8 coordinates.")
	Pragma("noescape")
	t := loadTables(k)
	chunk := map[[2]int]int{{0, 1}: 8, {1, 1}: 4, {0, 4}: 2, {1, 4}: 1}[[2]int{b2i(k.b4), g}]
	j0 := GP64() // first coordinate of the chunk
	XORQ(j0, j0)
	widths := []int{chunk, 1}
	if chunk == 1 {
		widths = widths[:1]
	}
	for _, width := range widths {
		lbl := fmt_("%s_c%d", name, width)
		Label(lbl)
		end := GP64()
		LEAQ(Mem{Base: j0, Disp: 8 * width}, end)
		CMPQ(end, Load(Param("d8"), GP64()))
		JA(LabelRef(lbl + "_end"))
		ab := GP64() // acc + 4·j0
		LEAQ(Mem{Base: Load(Param("acc").Base(), GP64()), Index: j0, Scale: 4}, ab)
		as := Load(Param("accStride"), GP64())
		SHLQ(U8(2), as)
		accAt := func(i, k int) Mem {
			switch i {
			case 1:
				return Mem{Base: ab, Index: as, Scale: 1, Disp: 32 * k}
			case 2:
				return Mem{Base: ab, Index: as, Scale: 2, Disp: 32 * k}
			case 3:
				a3 := GP64()
				LEAQ(Mem{Base: ab, Index: as, Scale: 2}, a3)
				return Mem{Base: a3, Index: as, Scale: 1, Disp: 32 * k}
			}
			return Mem{Base: ab, Disp: 32 * k}
		}
		acc := make([]VecVirtual, g*width)
		for i := range g {
			for k := range width {
				acc[i*width+k] = YMM()
				VMOVUPS(accAt(i, k), acc[i*width+k])
			}
		}
		// ip walks this chunk's index bytes: codes + idxOff + (j0/8)·bits.
		ip := GP64()
		MOVQ(j0, ip)
		SHRQ(U8(3), ip)
		IMULQ(Load(Param("bits"), GP64()), ip)
		ADDQ(Load(Param("idxOff"), GP64()), ip)
		p := Load(Param("codes").Base(), GP64())
		wp := Load(Param("w").Base(), GP64())
		cnt := Load(Param("n"), GP64())
		var wr rows4 // the weight rows (g = 4), set up once, not per token
		if g == 4 {
			wsr := Load(Param("wStride"), GP64())
			SHLQ(U8(2), wsr)
			wr = newRows4(wsr)
		}
		bits, stride := Load(Param("bits"), GP64()), Load(Param("stride"), GP64())
		noff := Load(Param("normOff"), GP64())
		Label(lbl + "_tok")
		norm := normAt(p, noff)
		ws := make([]VecVirtual, g)
		for i := range g {
			x := XMM()
			VMULSS(wr.at(wp, i, 0), norm, x)
			ws[i] = YMM()
			VBROADCASTSS(x, ws[i])
		}
		at := GP64()
		LEAQ(Mem{Base: p, Index: ip, Scale: 1}, at)
		for k := range width {
			if k > 0 {
				ADDQ(bits, at)
			}
			c := t.unpack(Mem{Base: at})
			for i := range g {
				VFMADD231PS(c, ws[i], acc[i*width+k])
			}
		}
		ADDQ(stride, p)
		ADDQ(U32(4), wp)
		DECQ(cnt)
		JNZ(LabelRef(lbl + "_tok"))
		for i := range g {
			for k := range width {
				VMOVUPS(acc[i*width+k], accAt(i, k))
			}
		}
		MOVQ(end, j0)
		JMP(LabelRef(lbl))
		Label(lbl + "_end")
	}
	VZEROUPPER()
	RET()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

var fmt_ = fmt.Sprintf

// butterfly8 emits the three in-register Walsh–Hadamard levels (pairs 1, 2
// and 4 apart) on the eight lanes of v, in the pairing order of the Go
// butterfly8, so results are bit-identical: each level adds and subtracts a
// permuted copy and blends the sums into the low and the differences into
// the high member of each pair.
func butterfly8(v VecVirtual) {
	for _, lvl := range []struct {
		perm, blend uint8
		halves      bool
	}{{0xB1, 0xAA, false}, {0x4E, 0xCC, false}, {0, 0xF0, true}} {
		t, s := YMM(), YMM()
		if lvl.halves {
			VPERM2F128(U8(0x01), v, v, t)
		} else {
			VPERMILPS(U8(lvl.perm), v, t)
		}
		VADDPS(t, v, s) // low member: a + b
		VSUBPS(v, t, t) // high member: a − b (t holds a there)
		VBLENDPS(U8(lvl.blend), t, s, v)
	}
}

func fwhtFirst8() {
	TEXT("fwhtFirst8AVX2", NOSPLIT, "func(dst, src, signs []float32)")
	Doc("fwhtFirst8AVX2 sets each block of 8 of dst to the 8-point transform of",
		"signs∘src (signs may be empty: no signs); len(dst) is a multiple of 8.")
	Pragma("noescape")
	d := Load(Param("dst").Base(), GP64())
	s := Load(Param("src").Base(), GP64())
	k := Load(Param("signs").Base(), GP64())
	ks := Load(Param("signs").Len(), GP64())
	n := Load(Param("dst").Len(), GP64())
	TESTQ(ks, ks)
	JZ(LabelRef("f8_plain"))
	for _, signed := range []bool{true, false} {
		lbl := map[bool]string{true: "f8_signed", false: "f8_plain"}[signed]
		Label(lbl)
		TESTQ(n, n)
		JZ(LabelRef("f8_done"))
		v := YMM()
		VMOVUPS(Mem{Base: s}, v)
		if signed {
			VMULPS(Mem{Base: k}, v, v)
			ADDQ(U32(32), k)
		}
		butterfly8(v)
		VMOVUPS(v, Mem{Base: d})
		ADDQ(U32(32), s)
		ADDQ(U32(32), d)
		SUBQ(U32(8), n)
		JMP(LabelRef(lbl))
	}
	Label("f8_done")
	VZEROUPPER()
	RET()
}

// fwhtFirst8Zmm emits fwhtFirst8AVX512: fwhtFirst8AVX2 on two blocks of 8
// a register. Each level's sums and differences are those of butterfly8
// (the high member's a − b by a masked subtraction in place of the blend),
// so the bits are the same.
func fwhtFirst8Zmm() {
	TEXT("fwhtFirst8AVX512", NOSPLIT, "func(dst, src, signs []float32)")
	Doc("fwhtFirst8AVX512 is fwhtFirst8AVX2 sixteen elements at a time (a last 8 masked).")
	Pragma("noescape")
	d := Load(Param("dst").Base(), GP64())
	s := Load(Param("src").Base(), GP64())
	k := Load(Param("signs").Base(), GP64())
	ks := Load(Param("signs").Len(), GP64())
	n := Load(Param("dst").Len(), GP64())
	var high [3]Register // the high members of levels 1, 2, 4
	tmp := GP64()
	for i, m := range []uint32{0xAAAA, 0xCCCC, 0xF0F0} {
		high[i] = K()
		MOVQ(U32(m), tmp)
		KMOVW(tmp.As32(), high[i])
	}
	all := K()
	for _, signed := range []bool{true, false} {
		lbl := map[bool]string{true: "f8z_signed", false: "f8z_plain"}[signed]
		if signed {
			TESTQ(ks, ks)
			JZ(LabelRef("f8z_plain"))
		}
		Label(lbl)
		TESTQ(n, n)
		JZ(LabelRef("f8z_done"))
		MOVQ(U32(0xffff), tmp)
		CMPQ(n, U8(16))
		JAE(LabelRef(lbl + "_full"))
		MOVQ(U32(0xff), tmp) // a last block of 8
		Label(lbl + "_full")
		KMOVW(tmp.As32(), all)
		v := ZMM()
		VMOVUPS_Z(Mem{Base: s}, all, v)
		if signed {
			sg := ZMM()
			VMOVUPS_Z(Mem{Base: k}, all, sg)
			VMULPS(sg, v, v)
			ADDQ(U32(64), k)
		}
		for i, perm := range []uint8{0xB1, 0x4E, 0xB1} {
			t, sum := ZMM(), ZMM()
			if i == 2 {
				VSHUFF32X4(U8(perm), v, v, t) // the 128-bit halves of each block swapped
			} else {
				VPERMILPS(U8(perm), v, t)
			}
			VADDPS(t, v, sum)          // low member: a + b
			VSUBPS(v, t, high[i], sum) // high member: a − b (t holds a there)
			v = sum
		}
		VMOVUPS(v, all, Mem{Base: d})
		ADDQ(U32(64), s)
		ADDQ(U32(64), d)
		SUBQ(U32(16), n)
		JA(LabelRef(lbl))
		JMP(LabelRef("f8z_done"))
	}
	Label("f8z_done")
	VZEROUPPER()
	RET()
}

// fwhtRegs emits fwhtRegsAVX512: the whole transform of 16 … 256
// elements in registers, sixteen a register, one load and one store per
// element. fwhtFirst8 and the passes went through memory three times per
// transform, and at d=128 the first levels' 512-bit loads waited on the
// passes' 256-bit stores of the round before. The levels within a
// register are fwhtFirst8AVX512's (and level 8, the 256-bit halves
// swapped), those across registers fwhtPass's: the same butterflies in the
// same order, so the same bits.
func fwhtRegs() {
	TEXT("fwhtRegsAVX512", NOSPLIT, "func(dst, src, signs []float32)")
	Doc("fwhtRegsAVX512 sets dst to the transform of signs∘src (signs may be empty: no signs);",
		"len(dst) is a power of two from 16 to 256.")
	Pragma("noescape")
	d := Load(Param("dst").Base(), GP64())
	s := Load(Param("src").Base(), GP64())
	k := Load(Param("signs").Base(), GP64())
	ks := Load(Param("signs").Len(), GP64())
	n := Load(Param("dst").Len(), GP64())
	var high [4]Register // the high members of levels 1, 2, 4, 8
	tmp := GP64()
	for i, m := range []uint32{0xAAAA, 0xCCCC, 0xF0F0, 0xFF00} {
		high[i] = K()
		MOVQ(U32(m), tmp)
		KMOVW(tmp.As32(), high[i])
	}
	for regs := 1; regs <= 16; regs *= 2 {
		lbl := fmt_("fwhtRegs_%d", 16*regs)
		if regs < 16 {
			CMPQ(n, U32(16*regs))
			JNE(LabelRef(fmt_("fwhtRegs_%d", 32*regs)))
		}
		v := make([]VecVirtual, regs)
		for r := range v {
			v[r] = ZMM()
			VMOVUPS(Mem{Base: s, Disp: 64 * r}, v[r])
		}
		TESTQ(ks, ks)
		JZ(LabelRef(lbl + "_levels"))
		for r := range v {
			VMULPS(Mem{Base: k, Disp: 64 * r}, v[r], v[r])
		}
		Label(lbl + "_levels")
		for r := range v {
			for i, perm := range []uint8{0xB1, 0x4E, 0xB1, 0x4E} {
				t, sum := ZMM(), ZMM()
				if i >= 2 {
					VSHUFF32X4(U8(perm), v[r], v[r], t) // 128-bit lanes, then 256-bit halves, swapped
				} else {
					VPERMILPS(U8(perm), v[r], t)
				}
				VADDPS(t, v[r], sum)          // low member: a + b
				VSUBPS(v[r], t, high[i], sum) // high member: a − b (t holds a there)
				v[r] = sum
			}
		}
		for step := 1; step < regs; step *= 2 {
			for r := range regs {
				if r&step != 0 {
					continue
				}
				sum := ZMM()
				VADDPS(v[r+step], v[r], sum)
				VSUBPS(v[r+step], v[r], v[r+step])
				v[r] = sum
			}
		}
		for r := range v {
			VMOVUPS(v[r], Mem{Base: d, Disp: 64 * r})
		}
		if regs < 16 {
			JMP(LabelRef("fwhtRegs_done"))
			Label(fmt_("fwhtRegs_%d", 32*regs))
		}
	}
	Label("fwhtRegs_done")
	VZEROUPPER()
	RET()
}

// fwhtPass emits the levels h, 2h, … (levels of them) of the transform in
// one sweep: for each block of 2^levels·h and each j < h (8 at a time), the
// 2^levels values h apart go through the radix-2 butterflies in registers.
func fwhtPass(levels int) {
	name := fmt_("fwhtPass%dAVX2", 1<<levels)
	TEXT(name, NOSPLIT, "func(x []float32, h int)")
	Doc(fmt_("%s does levels h … %dh of the transform (h ≥ 8, a power of two).", name, 1<<(levels-1)))
	Pragma("noescape")
	m := 1 << levels
	base := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	h := Load(Param("h"), GP64())
	hb := GP64() // h in bytes
	MOVQ(h, hb)
	SHLQ(U8(2), hb)
	end := GP64()
	LEAQ(Mem{Base: base, Index: n, Scale: 4}, end)
	blk := GP64() // bytes per block: m·h floats
	MOVQ(hb, blk)
	SHLQ(U8(levels), blk)
	h3 := GP64()
	LEAQ(Mem{Base: hb, Index: hb, Scale: 2}, h3)
	Label(name + "_blk")
	CMPQ(base, end)
	JAE(LabelRef(name + "_done"))
	p, j := GP64(), GP64()
	MOVQ(base, p)
	MOVQ(h, j)
	Label(name + "_j")
	// Element r of the group sits at p + r·h: r = 4a + b with b < 4 uses
	// p4 = p + 4a·h and the scales 1, 2 of hb and h3.
	at := func(r int) Mem {
		q := p
		if r >= 4 {
			q = GP64()
			LEAQ(Mem{Base: p, Index: hb, Scale: 4}, q)
		}
		switch r % 4 {
		case 1:
			return Mem{Base: q, Index: hb, Scale: 1}
		case 2:
			return Mem{Base: q, Index: hb, Scale: 2}
		case 3:
			return Mem{Base: q, Index: h3, Scale: 1}
		}
		return Mem{Base: q}
	}
	v := make([]VecVirtual, m)
	for r := range v {
		v[r] = YMM()
		VMOVUPS(at(r), v[r])
	}
	for step := 1; step < m; step *= 2 {
		for r := range m {
			if r&step != 0 {
				continue
			}
			s := YMM()
			VADDPS(v[r+step], v[r], s)
			VSUBPS(v[r+step], v[r], v[r+step])
			v[r] = s
		}
	}
	for r := range v {
		VMOVUPS(v[r], at(r))
	}
	ADDQ(U32(32), p)
	SUBQ(U32(8), j)
	JNZ(LabelRef(name + "_j"))
	ADDQ(blk, base)
	JMP(LabelRef(name + "_blk"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// scaleKernel emits scaleAVX2.
func scaleKernel() {
	broadcastKernel("scale", "multiplies the first len(x)&^7 elements of x by k.", func(k VecVirtual, at Mem) {
		v := YMM()
		VMULPS(at, k, v)
		VMOVUPS(v, at)
	})
}

// fillKernel emits fillAVX2, FillRows' row fill: one broadcast, then
// 32-byte stores (the plain Go loop stored a float at a time, 6–7% of a
// float-code decode step in its profile).
func fillKernel() {
	broadcastKernel("fill", "sets the first len(x)&^7 elements of x to k.", func(k VecVirtual, at Mem) {
		VMOVUPS(k, at)
	})
}

// broadcastKernel emits <name>AVX2(x []float32, k float32): k broadcast,
// then op on each group of 8 elements of x.
func broadcastKernel(name, doc string, op func(k VecVirtual, at Mem)) {
	TEXT(name+"AVX2", NOSPLIT, "func(x []float32, k float32)")
	Doc(name + "AVX2 " + doc)
	Pragma("noescape")
	p := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	ANDQ(I32(-8), n)
	kx, k := XMM(), YMM()
	Load(Param("k"), kx)
	VBROADCASTSS(kx, k)
	Label(name + "_loop")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	op(k, Mem{Base: p})
	ADDQ(U32(32), p)
	SUBQ(U32(8), n)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// quantizePack emits the encoder's quantize-and-pack for one width: each
// index is the number of boundaries below the value (a compare per
// boundary, subtracting the all-ones masks), and eight indices are shifted
// into place and OR-reduced into bits bytes of the LSB-first stream.
func quantizePack(bits int) {
	name := fmt_("quantizePack%dAVX2", bits)
	TEXT(name, NOSPLIT, "func(dst []byte, x []float32, bounds *[15][8]float32)")
	Doc(fmt_("%s is quantizePackGeneric for %d-bit indices on the first len(x)&^7 values.", name, bits))
	Pragma("noescape")
	dp := Load(Param("dst").Base(), GP64())
	xp := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	ANDQ(I32(-8), n)
	bp := Load(Param("bounds"), GP64())
	sh := YMM()
	shifts := GLOBL(fmt_("packShifts%d", bits), RODATA|NOPTR)
	for i := range 8 {
		DATA(4*i, U32(bits*i))
	}
	VMOVDQU(shifts, sh)
	Label(name + "_loop")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	v, acc := YMM(), YMM()
	VMOVUPS(Mem{Base: xp}, v)
	VPXOR(acc, acc, acc)
	for k := range 1<<bits - 1 {
		m := YMM()
		VCMPPS(U8(0x1E), Mem{Base: bp, Disp: 32 * k}, v, m) // x > boundary k (ordered)
		VPSUBD(m, acc, acc)
	}
	VPSLLVD(sh, acc, acc)
	lo, t := acc.AsX(), XMM()
	VEXTRACTI128(U8(1), acc, t)
	VPOR(t, lo, lo)
	VPSHUFD(U8(0x4E), lo, t)
	VPOR(t, lo, lo)
	VPSHUFD(U8(0x01), lo, t)
	VPOR(t, lo, lo)
	w := GP32()
	VMOVD(lo, w)
	switch bits {
	case 1:
		MOVB(w.As8(), Mem{Base: dp})
	case 2:
		MOVW(w.As16(), Mem{Base: dp})
	case 3:
		MOVW(w.As16(), Mem{Base: dp})
		SHRL(U8(16), w)
		MOVB(w.As8(), Mem{Base: dp, Disp: 2})
	case 4:
		MOVL(w, Mem{Base: dp})
	}
	ADDQ(U32(bits), dp)
	ADDQ(U32(32), xp)
	SUBQ(U32(8), n)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

func sumSquares() {
	TEXT("sumSquaresAVX2", NOSPLIT, "func(x []float32) float64")
	Doc("sumSquaresAVX2 is sumSquaresGeneric's eight partial sums over the first len(x)&^7",
		"elements, combined in the same order.")
	Pragma("noescape")
	p := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	ANDQ(I32(-8), n)
	a0, a1 := YMM(), YMM()
	VXORPD(a0, a0, a0)
	VXORPD(a1, a1, a1)
	Label("ss_loop")
	TESTQ(n, n)
	JZ(LabelRef("ss_done"))
	lo, hi := YMM(), YMM()
	VCVTPS2PD(Mem{Base: p}, lo)           // elements 0–3 of the 8
	VCVTPS2PD(Mem{Base: p, Disp: 16}, hi) // elements 4–7
	// Squares of float32 values are exact in float64, so the fused
	// multiply-add rounds exactly like the twin's add.
	VFMADD231PD(lo, lo, a0)
	VFMADD231PD(hi, hi, a1)
	ADDQ(U32(32), p)
	SUBQ(U32(8), n)
	JMP(LabelRef("ss_loop"))
	Label("ss_done")
	VADDPD(a1, a0, a0) // t_k = s_k + s_{k+4}
	t := XMM()
	VEXTRACTF128(U8(1), a0, t)
	VADDPD(t, a0.AsX(), t) // u0 = t0 + t2, u1 = t1 + t3
	u := XMM()
	VPERMILPD(U8(1), t, u)
	VADDSD(u, t, t) // u0 + u1
	Store(t, ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// f16Kernels emits float32 → fp16 (round to nearest even, F16C) and the
// round trip float32 → fp16 → float32, eight values at a time.
func f16Kernels() {
	for _, roundTrip := range []bool{false, true} {
		name, sig := "encodeF16AVX2", "func(dst []byte, src []float32)"
		doc := "encodeF16AVX2 is encodeF16Generic on the first len(src)&^7 values."
		if roundTrip {
			name, sig = "roundF16AVX2", "func(dst, src []float32)"
			doc = "roundF16AVX2 is roundF16Generic on the first len(src)&^7 values."
		}
		TEXT(name, NOSPLIT, sig)
		Doc(doc)
		Pragma("noescape")
		d := Load(Param("dst").Base(), GP64())
		s := Load(Param("src").Base(), GP64())
		n := Load(Param("src").Len(), GP64())
		ANDQ(I32(-8), n)
		Label(name + "_loop")
		TESTQ(n, n)
		JZ(LabelRef(name + "_done"))
		v, h := YMM(), XMM()
		VMOVUPS(Mem{Base: s}, v)
		VCVTPS2PH(U8(0), v, h) // imm 0: round to nearest even
		if roundTrip {
			VCVTPH2PS(h, v)
			VMOVUPS(v, Mem{Base: d})
			ADDQ(U32(32), d)
		} else {
			VMOVDQU(h, Mem{Base: d})
			ADDQ(U32(16), d)
		}
		ADDQ(U32(32), s)
		SUBQ(U32(8), n)
		JMP(LabelRef(name + "_loop"))
		Label(name + "_done")
		VZEROUPPER()
		RET()
	}
}

func prefetch() {
	TEXT("prefetchAVX2", NOSPLIT, "func(b []byte)")
	Doc("prefetchAVX2 asks for every 64-byte line of b to be brought into cache (PREFETCHT0).")
	Pragma("noescape")
	p := Load(Param("b").Base(), GP64())
	n := Load(Param("b").Len(), GP64())
	end := GP64()
	LEAQ(Mem{Base: p, Index: n, Scale: 1}, end)
	Label("pf_loop")
	CMPQ(p, end)
	JAE(LabelRef("pf_done"))
	PREFETCHT0(Mem{Base: p})
	ADDQ(U32(64), p)
	JMP(LabelRef("pf_loop"))
	Label("pf_done")
	RET()
}

func maxKernel() {
	TEXT("maxAVX2", NOSPLIT, "func(x []float32) float32")
	Doc("maxAVX2 is the largest of the first len(x)&^7 elements of x (len(x) ≥ 8; no NaN).")
	Pragma("noescape")
	p := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	ANDQ(I32(-8), n)
	m := []VecVirtual{YMM(), YMM()}
	VMOVUPS(Mem{Base: p}, m[0])
	VMOVAPS(m[0], m[1])
	Label("max_32")
	CMPQ(n, U32(16))
	JB(LabelRef("max_8"))
	VMAXPS(Mem{Base: p}, m[0], m[0])
	VMAXPS(Mem{Base: p, Disp: 32}, m[1], m[1])
	ADDQ(U32(64), p)
	SUBQ(U32(16), n)
	JMP(LabelRef("max_32"))
	Label("max_8")
	TESTQ(n, n)
	JZ(LabelRef("max_done"))
	VMAXPS(Mem{Base: p}, m[0], m[0])
	Label("max_done")
	VMAXPS(m[1], m[0], m[0])
	Store(hmax(m[0]), ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// max512 emits maxAVX512: maxAVX2 sixty-four elements at a time in four
// registers (the logits of a chunk are read from L2, so the more loads in
// flight the better), then sixteen, then eight.
func max512() {
	TEXT("maxAVX512", NOSPLIT, "func(x []float32) float32")
	Doc("maxAVX512 is maxAVX2 (the largest of the first len(x)&^7 elements of x, len(x) ≥ 8; no NaN)",
		"on AVX-512F.")
	Pragma("noescape")
	p := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	ANDQ(I32(-8), n)
	m := []VecVirtual{ZMM(), ZMM(), ZMM(), ZMM()}
	VBROADCASTSS(Mem{Base: p}, m[0])
	for _, r := range m[1:] {
		VMOVAPS(m[0], r)
	}
	Label("max512_64")
	CMPQ(n, U8(64))
	JB(LabelRef("max512_16"))
	for i, r := range m {
		VMAXPS(Mem{Base: p, Disp: 64 * i}, r, r)
	}
	ADDQ(U32(256), p)
	SUBQ(U8(64), n)
	JMP(LabelRef("max512_64"))
	Label("max512_16")
	CMPQ(n, U8(16))
	JB(LabelRef("max512_8"))
	VMAXPS(Mem{Base: p}, m[0], m[0])
	ADDQ(U8(64), p)
	SUBQ(U8(16), n)
	JMP(LabelRef("max512_16"))
	Label("max512_8")
	VMAXPS(m[1], m[0], m[0])
	VMAXPS(m[3], m[2], m[2])
	VMAXPS(m[2], m[0], m[0])
	y := YMM()
	VEXTRACTF32X8(U8(1), m[0], y)
	lo := m[0].AsY()
	VMAXPS(y, lo, lo)
	TESTQ(n, n)
	JZ(LabelRef("max512_done"))
	VMAXPS(Mem{Base: p}, lo, lo)
	Label("max512_done")
	Store(hmax(m[0]), ReturnIndex(0))
	VZEROUPPER()
	RET()
}

func maxAbsBits() {
	TEXT("maxAbsBitsAVX2", NOSPLIT, "func(x []float32) uint32")
	Doc("maxAbsBitsAVX2 is maxAbsBitsGeneric over the first len(x)&^7 elements.")
	Pragma("noescape")
	p := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	ANDQ(I32(-8), n)
	mask := YMM()
	VPBROADCASTD(ConstData("absMask", U32(0x7fffffff)), mask)
	m := []VecVirtual{YMM(), YMM()}
	VPXOR(m[0], m[0], m[0])
	VPXOR(m[1], m[1], m[1])
	Label("mab_16")
	CMPQ(n, U32(16))
	JB(LabelRef("mab_8"))
	for k := range 2 {
		v := YMM()
		VPAND(Mem{Base: p, Disp: 32 * k}, mask, v)
		VPMAXUD(v, m[k], m[k])
	}
	ADDQ(U32(64), p)
	SUBQ(U32(16), n)
	JMP(LabelRef("mab_16"))
	Label("mab_8")
	TESTQ(n, n)
	JZ(LabelRef("mab_done"))
	v := YMM()
	VPAND(Mem{Base: p}, mask, v)
	VPMAXUD(v, m[0], m[0])
	Label("mab_done")
	VPMAXUD(m[1], m[0], m[0])
	x := XMM()
	VEXTRACTI128(U8(1), m[0], x)
	lo := m[0].AsX()
	VPMAXUD(x, lo, lo)
	VPSHUFD(U8(0x4E), lo, x)
	VPMAXUD(x, lo, lo)
	VPSHUFD(U8(0x01), lo, x)
	VPMAXUD(x, lo, lo)
	r := GP32()
	VMOVD(lo, r)
	Store(r, ReturnIndex(0))
	VZEROUPPER()
	RET()
}

func sub() {
	TEXT("subAVX2", NOSPLIT, "func(dst, x, y []float32)")
	Doc("subAVX2 writes x − y to dst for the first len(x)&^7 elements.")
	Pragma("noescape")
	dp := Load(Param("dst").Base(), GP64())
	xp := Load(Param("x").Base(), GP64())
	yp := Load(Param("y").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	ANDQ(I32(-8), n)
	i := GP64()
	XORQ(i, i)
	Label("sub_loop")
	CMPQ(i, n)
	JAE(LabelRef("sub_done"))
	v := YMM()
	VMOVUPS(Mem{Base: xp, Index: i, Scale: 4}, v)
	VSUBPS(Mem{Base: yp, Index: i, Scale: 4}, v, v)
	VMOVUPS(v, Mem{Base: dp, Index: i, Scale: 4})
	ADDQ(U32(8), i)
	JMP(LabelRef("sub_loop"))
	Label("sub_done")
	VZEROUPPER()
	RET()
}

func addF64() {
	TEXT("addF64AVX2", NOSPLIT, "func(acc []float64, x []float32)")
	Doc("addF64AVX2 adds the first len(x)&^7 elements of x, widened, into acc.")
	Pragma("noescape")
	a := Load(Param("acc").Base(), GP64())
	p := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	ANDQ(I32(-8), n)
	Label("addf64_loop")
	TESTQ(n, n)
	JZ(LabelRef("addf64_done"))
	for k := range 2 {
		v := YMM()
		VCVTPS2PD(Mem{Base: p, Disp: 16 * k}, v)
		VADDPD(Mem{Base: a, Disp: 32 * k}, v, v)
		VMOVUPD(v, Mem{Base: a, Disp: 32 * k})
	}
	ADDQ(U32(32), p)
	ADDQ(U32(64), a)
	SUBQ(U32(8), n)
	JMP(LabelRef("addf64_loop"))
	Label("addf64_done")
	VZEROUPPER()
	RET()
}

// The laid-out-weight axpy kernels: wnWeightsNormsAVX2 writes each
// token's four weights times its norm once, token after token, and the
// kernel broadcasts each as it loads it, once per pass over the tokens for
// both groups of coordinates in registers. The per-row kernels instead form
// the norm and the four products, and broadcast them, in each of a token's
// eight (4-bit: sixteen) passes. Measured in cache, four rows, d=128:
// 3-bit 20.6 → 14.8 ns per code, 4-bit 23.0 → 20.2 against the earlier
// layout of 8-lane vectors taken as memory operands of the multiply-adds
// (ten loads per eight multiply-adds, which bound it).

// wnPasses emits the chunk loop of the laid-out-weight kernel: widths
// {W, 1} (in vectors of lanes floats) over j0 < d8; for each chunk the
// 4×width accumulators (rows as
// apart, from acc + 4·j0) are loaded; per token, load(k) unpacks group k of
// the token's centroids, each row's weight is broadcast from wp and
// multiplied into the groups, and next advances to the next token; then the
// accumulators are stored back.
func wnPasses(name string, lanes, W int, accStride func(r Register), start func(j0 Register), load func(k int) VecVirtual, next func()) {
	vec := map[int]func() VecVirtual{8: YMM, 16: ZMM}[lanes]
	a := Load(Param("acc").Base(), GP64())
	as := GP64()
	j0 := GP64()
	XORQ(j0, j0)
	for _, width := range []int{W, 1} {
		lbl := fmt_("%s_c%d", name, width)
		Label(lbl)
		end := GP64()
		LEAQ(Mem{Base: j0, Disp: lanes * width}, end)
		CMPQ(end, Load(Param("d8"), GP64()))
		JA(LabelRef(lbl + "_end"))
		accStride(as)
		ab, a3 := GP64(), GP64()
		LEAQ(Mem{Base: a, Index: j0, Scale: 4}, ab)
		LEAQ(Mem{Base: ab, Index: as, Scale: 2}, a3)
		accAt := func(i, k int) Mem {
			switch i {
			case 1:
				return Mem{Base: ab, Index: as, Scale: 1, Disp: 4 * lanes * k}
			case 2:
				return Mem{Base: ab, Index: as, Scale: 2, Disp: 4 * lanes * k}
			case 3:
				return Mem{Base: a3, Index: as, Scale: 1, Disp: 4 * lanes * k}
			}
			return Mem{Base: ab, Disp: 4 * lanes * k}
		}
		acc := make([]VecVirtual, 4*width)
		for i := range 4 {
			for k := range width {
				acc[i*width+k] = vec()
				VMOVUPS(accAt(i, k), acc[i*width+k])
			}
		}
		wp, cnt := GP64(), GP64()
		Load(Param("wn").Base(), wp)
		Load(Param("n"), cnt)
		start(j0)
		Label(lbl + "_tok")
		xs := make([]VecVirtual, width)
		for k := range xs {
			xs[k] = load(k)
		}
		for i := range 4 {
			y := vec()
			VBROADCASTSS(Mem{Base: wp, Disp: 4 * i}, y)
			for k, x := range xs {
				VFMADD231PS(x, y, acc[i*width+k])
			}
		}
		next()
		ADDQ(U32(16), wp)
		DECQ(cnt)
		JNZ(LabelRef(lbl + "_tok"))
		for i := range 4 {
			for k := range width {
				VMOVUPS(acc[i*width+k], accAt(i, k))
			}
		}
		MOVQ(end, j0)
		JMP(LabelRef(lbl))
		Label(lbl + "_end")
	}
	VZEROUPPER()
	RET()
}

// axpyCodesWn emits the four-row axpyCodes with laid-out weights (norms
// applied by wnWeightsNorms): axpyCodesWn<kind>AVX2 with 8 coordinates a
// vector, two a pass, and (lanes 16) axpyCodesWn<kind>AVX512 with sixteen
// (tables16), four a pass. Every accumulator lane of the 16-lane kernel
// takes the same multiply-adds in the same token order as the 8-lane
// kernel's, so the bits are the same.
func axpyCodesWn(k codeKind, lanes int) {
	sig := "func(acc []float32, accStride int, wn []float32, tab *[16]float32, sh *[8]uint32, bits int, codes []byte, stride, idxOff, n, d8 int, ahead []byte)"
	name := fmt_("axpyCodesWn%sAVX2", k.name)
	if lanes == 16 {
		name = fmt_("axpyCodesWn%sAVX512", k.name)
		TEXT(name, NOSPLIT, sig)
		Doc(name + " is axpyCodesWn" + k.name + "AVX2 on the first d8 coordinates (a multiple of 16).")
	} else {
		TEXT(name, NOSPLIT, sig)
		Doc(name+" is axpyCodesGeneric for "+map[bool]string{false: "1–3", true: "4"}[k.b4]+"-bit codes and four accumulator rows",
			"on the first d8 coordinates, with the weights times the norms laid out by wnWeightsNormsAVX2.")
	}
	Pragma("noescape")
	accStride := func(r Register) {
		Load(Param("accStride"), r)
		SHLQ(U8(2), r)
	}
	var unpack func(ip, bits Register, g int) VecVirtual // group g of the pass's vectors
	if lanes == 16 {
		t := loadTables16(k)
		unpack = func(ip, bits Register, g int) VecVirtual {
			at := ip
			if g > 0 { // groups 2g and 2g+1 of 8: 2g·bits bytes on
				at = GP64()
				LEAQ(Mem{Base: ip, Index: bits, Scale: 2}, at)
				for range g - 1 {
					LEAQ(Mem{Base: at, Index: bits, Scale: 2}, at)
				}
			}
			return t.unpack(at, bits)
		}
	} else {
		t := loadTables(k)
		unpack = func(ip, bits Register, g int) VecVirtual {
			if g == 0 {
				return t.unpack(Mem{Base: ip})
			}
			at := GP64()
			LEAQ(Mem{Base: ip, Index: bits, Scale: 1}, at)
			for range g - 1 {
				ADDQ(bits, at)
			}
			return t.unpack(Mem{Base: at})
		}
	}
	p := Load(Param("codes").Base(), GP64())
	stride := Load(Param("stride"), GP64())
	bits := Load(Param("bits"), GP64())
	ip := GP64()
	pa, pn := aheadParams()
	wnPasses(name, lanes, lanes/4, accStride, func(j0 Register) {
		// ip walks this chunk's index bytes: codes + idxOff + (j0/8)·bits.
		MOVQ(j0, ip)
		SHRQ(U8(3), ip)
		IMULQ(bits, ip)
		ADDQ(Load(Param("idxOff"), GP64()), ip)
		ADDQ(p, ip)
	}, func(g int) VecVirtual { return unpack(ip, bits, g) }, func() {
		ADDQ(stride, ip)
		prefetchSome(name+"_pf", pa, pn, 1)
	})
}

// tables16 holds a kind's tables for the 16-lane float kernels: the
// centroids (1–3 bits: the 8 entries twice, which VPERMPS's fourth index
// bit then ignores; 4 bits: all 16, so no blend), the eight lane shifts
// twice over, and the mask of the high eight lanes.
type tables16 struct {
	tab, sh VecVirtual
	high    Register
}

func loadTables16(k codeKind) tables16 {
	t := tables16{tab: table16(k), sh: ZMM(), high: K()}
	VBROADCASTI32X8(Mem{Base: Load(Param("sh"), GP64())}, t.sh)
	tmp := GP64()
	MOVQ(U32(0xff00), tmp)
	KMOVW(tmp.As32(), t.high)
	return t
}

// table16 loads tables16's centroid table from the tab parameter.
func table16(k codeKind) VecVirtual {
	tab := ZMM()
	tp := Load(Param("tab"), GP64())
	if k.b4 {
		VMOVUPS(Mem{Base: tp}, tab)
	} else {
		VBROADCASTF32X8(Mem{Base: tp}, tab)
	}
	return tab
}

// unpack returns the centroids of the sixteen indices of groups 2k and
// 2k+1 at at and at+bits: their doublewords broadcast into the two halves,
// shifted, looked up.
func (t tables16) unpack(at, bits Register) VecVirtual {
	c := ZMM()
	VPBROADCASTD(Mem{Base: at}, c)
	VPBROADCASTD(Mem{Base: at, Index: bits, Scale: 1}, t.high, c)
	VPSRLVD(t.sh, c, c)
	VPERMPS(t.tab, c, c)
	return c
}

// axpyCodes1Zmm emits axpyCodes<kind>1AVX512: axpyCodes<kind>1AVX2 (one
// accumulator row) with sixteen coordinates a vector (tables16), 128 a
// pass: every lane takes the 8-lane kernel's
// multiply-adds by the same weight·norm products in the same token order,
// so the same bits.
func axpyCodes1Zmm(k codeKind) {
	name := fmt_("axpyCodes%s1AVX512", k.name)
	TEXT(name, NOSPLIT, "func(acc []float32, accStride int, w []float32, wStride int, "+fusedSig)
	Doc(name + " is axpyCodes" + k.name + "1AVX2 on the first d8 coordinates (a multiple of 16).")
	Pragma("noescape")
	t := loadTables16(k)
	j0 := GP64() // first coordinate of the chunk
	XORQ(j0, j0)
	for _, width := range []int{8, 1} {
		lbl := fmt_("%s_c%d", name, width)
		Label(lbl)
		end := GP64()
		LEAQ(Mem{Base: j0, Disp: 16 * width}, end)
		CMPQ(end, Load(Param("d8"), GP64()))
		JA(LabelRef(lbl + "_end"))
		ab := GP64() // acc + 4·j0
		LEAQ(Mem{Base: Load(Param("acc").Base(), GP64()), Index: j0, Scale: 4}, ab)
		acc := make([]VecVirtual, width)
		for k := range acc {
			acc[k] = ZMM()
			VMOVUPS(Mem{Base: ab, Disp: 64 * k}, acc[k])
		}
		// ip walks this chunk's index bytes: codes + idxOff + (j0/8)·bits.
		ip := GP64()
		MOVQ(j0, ip)
		SHRQ(U8(3), ip)
		bits := Load(Param("bits"), GP64())
		IMULQ(bits, ip)
		ADDQ(Load(Param("idxOff"), GP64()), ip)
		ADDQ(Load(Param("codes").Base(), GP64()), ip)
		p := Load(Param("codes").Base(), GP64())
		wp := Load(Param("w").Base(), GP64())
		cnt := Load(Param("n"), GP64())
		stride, noff := Load(Param("stride"), GP64()), Load(Param("normOff"), GP64())
		Label(lbl + "_tok")
		norm := normAt(p, noff)
		VMULSS(Mem{Base: wp}, norm, norm)
		wv := ZMM()
		VBROADCASTSS(norm, wv)
		at := GP64()
		MOVQ(ip, at)
		for k := range acc {
			if k > 0 {
				LEAQ(Mem{Base: at, Index: bits, Scale: 2}, at)
			}
			VFMADD231PS(t.unpack(at, bits), wv, acc[k])
		}
		ADDQ(stride, p)
		ADDQ(stride, ip)
		ADDQ(U32(4), wp)
		DECQ(cnt)
		JNZ(LabelRef(lbl + "_tok"))
		for k := range acc {
			VMOVUPS(acc[k], Mem{Base: ab, Disp: 64 * k})
		}
		MOVQ(end, j0)
		JMP(LabelRef(lbl))
		Label(lbl + "_end")
	}
	VZEROUPPER()
	RET()
}

// wnWeightsZmm emits wnWeightsNormsAVX512: wnWeightsNormsAVX2 sixteen
// tokens at a time. The norms are gathered (masked to the n tokens), the
// four rows' weights loaded (masked) and multiplied by them, the same one
// product per weight, and a 4×16 transpose (two rounds of unpacks, two of
// 128-bit block shuffles) lays them out token after token. A last group's
// tokens past n are written as zeros.
func wnWeightsZmm() {
	name := "wnWeightsNormsAVX512"
	TEXT(name, NOSPLIT, "func(wn, w []float32, wStride, n int, codes []byte, stride, normOff int)")
	Doc(name+" is wnWeightsNormsAVX2 writing whole groups of sixteen tokens (len(wn) ≥ 4·n rounded up to",
		"64; zeros past n), with the norms read as doublewords as weightsQ8AVX512 reads them.")
	Pragma("noescape")
	wb := Load(Param("wn").Base(), GP64())
	w := Load(Param("w").Base(), GP64())
	ws := Load(Param("wStride"), GP64())
	SHLQ(U8(2), ws)
	wr := newRows4(ws)
	n := Load(Param("n"), GP64())
	ng := newNormGatherer("normOff")
	k, kg := K(), K()
	tmp := GP64()
	Label(name + "_grp")
	TESTQ(n, n)
	JLE(LabelRef(name + "_done"))
	MOVQ(U32(0xffff), tmp)
	CMPQ(n, U8(16))
	JAE(LabelRef(name + "_full"))
	MOVQ(U32(1), tmp)
	SHLXQ(n, tmp, tmp)
	DECQ(tmp)
	Label(name + "_full")
	KMOVW(tmp.As32(), k)
	KMOVW(k, kg) // the gather clears its mask
	norm := ng.gather(kg)
	var r [4]VecVirtual
	for i := range r {
		r[i] = ZMM()
		VMOVUPS_Z(wr.at(w, i, 0), k, r[i])
		VMULPS(norm, r[i], r[i])
	}
	// Per 128-bit block b: u[j] holds token 4b+j's four rows.
	t0, t1, t2, t3 := ZMM(), ZMM(), ZMM(), ZMM()
	VUNPCKLPS(r[1], r[0], t0)
	VUNPCKHPS(r[1], r[0], t1)
	VUNPCKLPS(r[3], r[2], t2)
	VUNPCKHPS(r[3], r[2], t3)
	u := [4]VecVirtual{ZMM(), ZMM(), ZMM(), ZMM()}
	VUNPCKLPD(t2, t0, u[0])
	VUNPCKHPD(t2, t0, u[1])
	VUNPCKLPD(t3, t1, u[2])
	VUNPCKHPD(t3, t1, u[3])
	// Block b of the output register o[c] is token 4c+b: a 4×4 transpose of the blocks.
	v := [4]VecVirtual{ZMM(), ZMM(), ZMM(), ZMM()}
	VSHUFF32X4(U8(0x44), u[1], u[0], v[0])
	VSHUFF32X4(U8(0xEE), u[1], u[0], v[1])
	VSHUFF32X4(U8(0x44), u[3], u[2], v[2])
	VSHUFF32X4(U8(0xEE), u[3], u[2], v[3])
	for c, sel := range [4]struct {
		imm  uint8
		a, b int
	}{{0x88, 0, 2}, {0xDD, 0, 2}, {0x88, 1, 3}, {0xDD, 1, 3}} {
		o := ZMM()
		VSHUFF32X4(U8(sel.imm), v[sel.b], v[sel.a], o)
		VMOVUPS(o, Mem{Base: wb, Disp: 64 * c})
	}
	ADDQ(U32(256), wb)
	ADDQ(U8(64), w)
	ng.next()
	SUBQ(U8(16), n)
	JMP(LabelRef(name + "_grp"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// wnWeights emits the weight layout of the laid-out-weight kernels: for
// each of n tokens, the four rows' weights times the token's fp16 norm
// (the one float32 product the per-row kernels form too), 16 bytes a token.
func wnWeights() {
	name := "wnWeightsNormsAVX2"
	TEXT(name, NOSPLIT, "func(wn, w []float32, wStride, n int, codes []byte, stride, normOff int)")
	Doc(name + " is plainWeights: weights times the norms of the codes (fp16 at normOff, stride apart).")
	Pragma("noescape")
	wb := Load(Param("wn").Base(), GP64())
	w := Load(Param("w").Base(), GP64())
	ws := Load(Param("wStride"), GP64())
	SHLQ(U8(2), ws)
	ws3 := GP64()
	LEAQ(Mem{Base: ws, Index: ws, Scale: 2}, ws3)
	n := Load(Param("n"), GP64())
	p := Load(Param("codes").Base(), GP64())
	stride := Load(Param("stride"), GP64())
	off := Load(Param("normOff"), GP64())
	Label(name + "_tok")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	h := GP32()
	MOVWLZX(Mem{Base: p, Index: off, Scale: 1}, h)
	norm := XMM()
	VMOVD(h, norm)
	VCVTPH2PS(norm, norm)
	for i, m := range []Mem{{Base: w}, {Base: w, Index: ws, Scale: 1}, {Base: w, Index: ws, Scale: 2}, {Base: w, Index: ws3, Scale: 1}} {
		x := XMM()
		VMULSS(m, norm, x)
		VMOVSS(x, Mem{Base: wb, Disp: 4 * i})
	}
	ADDQ(U32(16), wb)
	ADDQ(U32(4), w)
	ADDQ(stride, p)
	DECQ(n)
	JMP(LabelRef(name + "_tok"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

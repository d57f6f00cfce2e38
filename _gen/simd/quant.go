package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// quantFormat is a ggml block format of 32 weights: an fp16 scale at byte 0
// of each block, then the quantized values.
type quantFormat struct {
	name       string // Q8_0, Q4_0
	blockBytes int
}

var quantFormats = []quantFormat{{"Q8_0", 34}, {"Q4_0", 18}}

// quantConsts are the Q4_0 unpacking constants (eight copies of 15 and of
// 8), in registers (dot1) or memory (dot4, whose registers hold its
// accumulators).
type quantConsts struct {
	mask, eight Op
}

// unpack returns the 32 values of the block at p as four vectors of eight
// float32 (values 8k … 8k+7 in vector k), before scaling.
func (f quantFormat) unpack(p Register, c quantConsts) [4]VecVirtual {
	var w [4]VecVirtual
	switch f.name {
	case "Q8_0":
		for k := range w {
			w[k] = YMM()
			VPMOVSXBD(Mem{Base: p, Disp: 2 + 8*k}, w[k])
			VCVTDQ2PS(w[k], w[k])
		}
	case "Q4_0":
		// Byte j holds value j in its low nibble and value j+16 in its
		// high one: zero-extend bytes 0–7 and 8–15 to 32-bit lanes, then
		// mask (values 0–15) or shift (values 16–31), and subtract 8.
		a, b := YMM(), YMM()
		VPMOVZXBD(Mem{Base: p, Disp: 2}, a)
		VPMOVZXBD(Mem{Base: p, Disp: 10}, b)
		w[0], w[1] = YMM(), YMM()
		VPAND(c.mask, a, w[0])
		VPAND(c.mask, b, w[1])
		VPSRLD(U8(4), a, a)
		VPSRLD(U8(4), b, b)
		w[2], w[3] = a, b
		for k := range w {
			VPSUBD(c.eight, w[k], w[k])
			VCVTDQ2PS(w[k], w[k])
		}
	}
	return w
}

// blockScale broadcasts the block's fp16 scale at p to eight float32 lanes.
func blockScale(p Register) VecVirtual {
	x, s := XMM(), YMM()
	VPBROADCASTW(Mem{Base: p}, x)
	VCVTPH2PS(x, s)
	return s
}

const quantSig = "func(out []float32, outStride int, q []float32, rows []byte, n, d int)"

// dotQuant1 emits one query row of DotQ8_0/DotQ4_0: per row of rows, per
// block b, blk = Σ_k q_k·w_k over the block's four 8-lane vectors (a
// multiply, then three FMAs, in k order), then acc[b&1] += blk·scale (FMA);
// at the end acc[0]+acc[1] is summed across lanes as hsum does and added
// to out. dotQ8_0Generic/dotQ4_0Generic spell out the same order.
func dotQuant1(f quantFormat) {
	name := "dot1" + f.name + "AVX2"
	TEXT(name, NOSPLIT, quantSig)
	Doc(name+" is dot"+f.name+"Generic for one query row (len(q) = d): two 8-lane accumulators",
		"(even and odd blocks), each block's sum scaled once.")
	Pragma("noescape")
	var c quantConsts
	if f.name == "Q4_0" {
		mask, eight := YMM(), YMM()
		VMOVDQU(quantMask(), mask)
		VMOVDQU(quantEight(), eight)
		c = quantConsts{mask, eight}
	}
	o := Load(Param("out").Base(), GP64())
	q := Load(Param("q").Base(), GP64())
	r := Load(Param("rows").Base(), GP64())
	n := Load(Param("n"), GP64())
	nb := Load(Param("d"), GP64())
	SHRQ(U8(5), nb)
	block := func(p, qp Register, disp int, acc VecVirtual) {
		w := f.unpack(p, c)
		s := blockScale(p)
		blk := YMM()
		VMULPS(Mem{Base: qp, Disp: disp}, w[0], blk)
		for k := 1; k < 4; k++ {
			VFMADD231PS(Mem{Base: qp, Disp: disp + 32*k}, w[k], blk)
		}
		VFMADD231PS(s, blk, acc)
	}
	Label(name + "_row")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	acc := [2]VecVirtual{YMM(), YMM()}
	for _, a := range acc {
		VXORPS(a, a, a)
	}
	qp, j := GP64(), GP64()
	MOVQ(q, qp)
	MOVQ(nb, j)
	Label(name + "_pair")
	CMPQ(j, U8(2))
	JB(LabelRef(name + "_tail"))
	block(r, qp, 0, acc[0])
	p1 := GP64()
	LEAQ(Mem{Base: r, Disp: f.blockBytes}, p1)
	block(p1, qp, 128, acc[1])
	ADDQ(U32(2*f.blockBytes), r)
	ADDQ(U32(256), qp)
	SUBQ(U8(2), j)
	JMP(LabelRef(name + "_pair"))
	Label(name + "_tail")
	TESTQ(j, j)
	JZ(LabelRef(name + "_sum"))
	block(r, qp, 0, acc[0])
	ADDQ(U32(f.blockBytes), r)
	Label(name + "_sum")
	VADDPS(acc[1], acc[0], acc[0])
	s := hsum(acc[0])
	VADDSS(Mem{Base: o}, s, s)
	VMOVSS(s, Mem{Base: o})
	ADDQ(U32(4), o)
	DECQ(n)
	JMP(LabelRef(name + "_row"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// dotQuant4 emits dotQuant1 for four query rows (q rows d apart, out rows
// outStride apart), unpacking each block once for all four; every row's
// sums are formed in dotQuant1's order, so the results are the same bits.
func dotQuant4(f quantFormat) {
	name := "dot4" + f.name + "AVX2"
	TEXT(name, NOSPLIT, quantSig)
	Doc(name+" is dot1"+f.name+"AVX2 for four query rows (len(q) = 4·d, out rows outStride apart),",
		"unpacking each block once; each row's result is the same bits as dot1"+f.name+"AVX2's.")
	Pragma("noescape")
	var c quantConsts
	if f.name == "Q4_0" {
		c = quantConsts{quantMask(), quantEight()}
	}
	o := Load(Param("out").Base(), GP64())
	q := Load(Param("q").Base(), GP64())
	r := Load(Param("rows").Base(), GP64())
	n := Load(Param("n"), GP64())
	nb := Load(Param("d"), GP64())
	qs := GP64() // query row stride, bytes
	MOVQ(nb, qs)
	SHLQ(U8(2), qs)
	SHRQ(U8(5), nb)
	os := Load(Param("outStride"), GP64()) // bytes
	SHLQ(U8(2), os)
	qrow := newRows4(qs).at
	block := func(p, qp Register, disp int, acc *[4][2]VecVirtual, par int) {
		w := f.unpack(p, c)
		s := blockScale(p)
		for i := range 4 {
			blk := YMM()
			VMULPS(qrow(qp, i, disp), w[0], blk)
			for k := 1; k < 4; k++ {
				VFMADD231PS(qrow(qp, i, disp+32*k), w[k], blk)
			}
			VFMADD231PS(s, blk, acc[i][par])
		}
	}
	Label(name + "_row")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	acc := zeroAcc42()
	qp, j := GP64(), GP64()
	MOVQ(q, qp)
	MOVQ(nb, j)
	Label(name + "_pair")
	CMPQ(j, U8(2))
	JB(LabelRef(name + "_tail"))
	block(r, qp, 0, &acc, 0)
	p1 := GP64()
	LEAQ(Mem{Base: r, Disp: f.blockBytes}, p1)
	block(p1, qp, 128, &acc, 1)
	ADDQ(U32(2*f.blockBytes), r)
	ADDQ(U32(256), qp)
	SUBQ(U8(2), j)
	JMP(LabelRef(name + "_pair"))
	Label(name + "_tail")
	TESTQ(j, j)
	JZ(LabelRef(name + "_sum"))
	block(r, qp, 0, &acc, 0)
	ADDQ(U32(f.blockBytes), r)
	Label(name + "_sum")
	for i := range 4 {
		VADDPS(acc[i][1], acc[i][0], acc[i][0])
		s := hsum(acc[i][0])
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
		VADDSS(m, s, s)
		VMOVSS(s, m)
	}
	ADDQ(U32(4), o)
	DECQ(n)
	JMP(LabelRef(name + "_row"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// The Q4_0 constants (eight copies of 15 and of 8), emitted once.
var q4Mask, q4Eight *Mem

func quantMask() Mem {
	if q4Mask == nil {
		m := GLOBL("q4Mask", RODATA|NOPTR)
		for i := range 8 {
			DATA(4*i, U32(15))
		}
		q4Mask = &m
	}
	return *q4Mask
}

func quantEight() Mem {
	if q4Eight == nil {
		m := GLOBL("q4Eight", RODATA|NOPTR)
		for i := range 8 {
			DATA(4*i, U32(8))
		}
		q4Eight = &m
	}
	return *q4Eight
}

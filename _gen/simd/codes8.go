package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The integer key-scoring kernels (DotCodesQ8): four query rows quantized
// to int8 times 3- or 4-bit codes whose centroids are 7-bit integers held
// as bytes c+64 in [1, 127]. 32 indices are unpacked to bytes and looked
// up with one VPSHUFB; the products are exact in 16-bit pairs
// (127·127·2 < 2¹⁵), summed to 32 bits (VPMADDUBSW+VPMADDWD, or VPDPBUSD
// with VNNI). Per token the sums of the four rows are reduced together,
// and two tokens share one conversion and scaling: a vector holds
// [token t, rows 0–3 | token t+1, rows 0–3].

const codes8Sig = "func(out []float32, outStride int, q []int8, scales *[8]float32, sums *[8]int32, tab *[32]uint8, codes []byte, stride, idxOff, normOff, n, d32 int)"

var q3Shuf, q3Mul, q7Mask, q15Mask *Mem

// q3Consts emits (once) the 3-bit unpack constants: the VPSHUFB controls
// that put the two bytes holding index k in 16-bit word k (indices 0–15 in
// one vector, 16–31 in the other: both lanes hold the 16 index bytes), and
// the multipliers 2^(8−s) that move each index from bit s to bit 8.
func q3Consts() (shufA, shufB, mul Mem) {
	if q3Shuf == nil {
		s := GLOBL("codes8Shuf3", RODATA|NOPTR)
		for v := range 2 {
			for lane := range 2 {
				for w := range 8 {
					k := 16*v + 8*lane + w
					b := 3 * k >> 3
					DATA(32*v+16*lane+2*w, U8(b))
					DATA(32*v+16*lane+2*w+1, U8(b+1))
				}
			}
		}
		q3Shuf = &s
		m := GLOBL("codes8Mul3", RODATA|NOPTR)
		for k := range 16 {
			DATA(2*k, U16(1<<(8-3*k&7)))
		}
		q3Mul = &m
	}
	b := *q3Shuf
	b.Disp += 32
	return *q3Shuf, b, *q3Mul
}

func byteMask(p **Mem, name string, v uint32) Mem { return bytesConst(p, name, U32(v)) }

// unpack8 returns the table bytes of the 32 indices at m in the kernel
// order (codes8Pos in the Go package).
func unpack8(bits int, m Mem, tab VecVirtual) VecVirtual {
	u := YMM()
	if bits == 3 {
		shufA, shufB, mul := q3Consts()
		x, a := YMM(), YMM()
		VBROADCASTI128(m, x)
		VPSHUFB(shufB, x, a)
		VPSHUFB(shufA, x, x)
		VPMULLW(mul, x, x)
		VPMULLW(mul, a, a)
		VPSRLW(U8(8), x, x)
		VPSRLW(U8(8), a, a)
		VPACKUSWB(a, x, u) // lanes: [indices 0–7, 16–23 | 8–15, 24–31]
		VPAND(byteMask(&q7Mask, "codes8Seven", 0x07070707), u, u)
	} else {
		lo, hi := XMM(), XMM()
		VMOVDQU(m, lo)
		VPSRLW(U8(4), lo, hi)
		VINSERTI128(U8(1), hi, lo.AsY(), u) // [even indices | odd indices]
		VPAND(byteMask(&q15Mask, "codes8Fifteen", 0x0f0f0f0f), u, u)
	}
	VPSHUFB(u, tab, u)
	return u
}

// dotCodes8 emits dotCodesQ8<bits>x4{AVX2,VNNI}.
func dotCodes8(bits int, vnni bool) {
	name := fmt_("dotCodesQ8B%dx4AVX2", bits)
	if vnni {
		name = fmt_("dotCodesQ8B%dx4VNNI", bits)
	}
	TEXT(name, NOSPLIT, codes8Sig)
	Doc(name+" is dotCodesQ8Generic for four query rows and an even n of "+fmt_("%d", bits)+"-bit codes:",
		"two tokens at a time, lanes (token, row).")
	Pragma("noescape")
	tab := YMM()
	VMOVDQU(Mem{Base: Load(Param("tab"), GP64())}, tab)
	var ones VecVirtual
	if !vnni {
		ones = YMM()
		VMOVDQU(onesW(), ones)
	}
	o := Load(Param("out").Base(), GP64())
	os := Load(Param("outStride"), GP64())
	SHLQ(U8(2), os)
	orow := newRows4(os)
	p := Load(Param("codes").Base(), GP64())
	stride := Load(Param("stride"), GP64())
	idxOff := Load(Param("idxOff"), GP64())
	normOff := Load(Param("normOff"), GP64())
	n := Load(Param("n"), GP64())
	qs := Load(Param("d32"), GP64()) // query row stride, bytes
	qr := newRows4(qs)
	chunkBytes := 4 * bits // 32 indices
	// tokenSums returns the reduced sums of the four rows for the code at
	// pt: lane i (i < 4) over the low 16 bytes of each chunk, 4+i the high.
	tokenSums := func(pt Register, tag string) VecVirtual {
		var acc [4]VecVirtual
		for i := range acc {
			acc[i] = YMM()
			VPXOR(acc[i], acc[i], acc[i])
		}
		ip, qp, j := GP64(), GP64(), GP64()
		LEAQ(Mem{Base: pt, Index: idxOff, Scale: 1}, ip)
		Load(Param("q").Base(), qp)
		MOVQ(qs, j)
		Label(name + "_chunk" + tag)
		u := unpack8(bits, Mem{Base: ip}, tab)
		for i := range acc {
			if vnni {
				VPDPBUSD(qr.at(qp, i, 0), u, acc[i])
				continue
			}
			t := YMM()
			VPMADDUBSW(qr.at(qp, i, 0), u, t)
			VPMADDWD(ones, t, t)
			VPADDD(t, acc[i], acc[i])
		}
		ADDQ(U8(chunkBytes), ip)
		ADDQ(U8(32), qp)
		SUBQ(U8(32), j)
		JNZ(LabelRef(name + "_chunk" + tag))
		return reduce4(acc)
	}
	Label(name + "_pair")
	CMPQ(n, U8(2))
	JB(LabelRef(name + "_done"))
	pb := GP64()
	LEAQ(Mem{Base: p, Index: stride, Scale: 1}, pb)
	za := tokenSums(p, "a")
	zb := tokenSums(pb, "b")
	t := YMM()
	VPERM2I128(U8(0x21), zb, za, t) // [za hi | zb lo]
	VPBLENDD(U8(0xf0), zb, za, za)  // [za lo | zb hi]
	VPADDD(t, za, za)               // [token a, rows 0–3 | token b, rows 0–3]
	VPSUBD(Mem{Base: Load(Param("sums"), GP64())}, za, za)
	VCVTDQ2PS(za, za)
	VMULPS(Mem{Base: Load(Param("scales"), GP64())}, za, za)
	h0, h1, nv := XMM(), XMM(), YMM()
	VPBROADCASTW(Mem{Base: p, Index: normOff, Scale: 1}, h0)
	VPBROADCASTW(Mem{Base: pb, Index: normOff, Scale: 1}, h1)
	VPUNPCKLQDQ(h1, h0, h0)
	VCVTPH2PS(h0, nv)
	VMULPS(nv, za, za)
	rl, rh := za.AsX(), XMM()
	VEXTRACTF128(U8(1), za, rh)
	lo, hi, pairs := XMM(), XMM(), YMM()
	VUNPCKLPS(rh, rl, lo) // [a0 b0 a1 b1]
	VUNPCKHPS(rh, rl, hi) // [a2 b2 a3 b3]
	VINSERTF128(U8(1), hi, lo.AsY(), pairs)
	addPairs(pairs, o, orow.s)
	ADDQ(U8(8), o)
	LEAQ(Mem{Base: pb, Index: stride, Scale: 1}, p)
	SUBQ(U8(2), n)
	JMP(LabelRef(name + "_pair"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

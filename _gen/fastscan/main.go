// Command fastscan generates ann's AVX2 fast-scan kernel. Run it through
// `go generate ./ann` (see ann/gen.go).
package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

func main() {
	ConstraintExpr("!purego,!noasm")
	TEXT("fastScan4AVX2", NOSPLIT, "func(out *[32]uint16, codes []byte, lut []byte, pairs int)")
	Doc("fastScan4AVX2 is fastScan4Go: per coordinate pair one 32-byte load of 32 codes'",
		"nibbles, two vpshufb lookups in the pair's two 16-entry tables (one per lane),",
		"and 16-bit sums of the even and odd bytes; the lanes are added at the end.")
	Pragma("noescape")
	codes := Load(Param("codes").Base(), GP64())
	lut := Load(Param("lut").Base(), GP64())
	n := Load(Param("pairs"), GP64())

	nib, low := YMM(), YMM()
	m := GP32()
	MOVL(U32(0x0f0f0f0f), m)
	x := XMM()
	VMOVD(m, x)
	VPBROADCASTD(x, nib)
	VPCMPEQW(low, low, low)
	VPSRLW(U8(8), low, low) // 0x00ff in every word
	acc := [4]VecVirtual{YMM(), YMM(), YMM(), YMM()}
	for _, a := range acc {
		VPXOR(a, a, a)
	}
	Label("pair")
	TESTQ(n, n)
	JZ(LabelRef("done"))
	c, t, lo, hi := YMM(), YMM(), YMM(), YMM()
	VMOVDQU(Mem{Base: codes}, c)
	VMOVDQU(Mem{Base: lut}, t)
	VPSRLW(U8(4), c, hi)
	VPAND(nib, c, lo)
	VPAND(nib, hi, hi)
	VPSHUFB(lo, t, lo) // lane 0: coordinate 2p of codes 0–15; lane 1: 2p+1
	VPSHUFB(hi, t, hi) // the same for codes 16–31
	for k, v := range []VecVirtual{lo, hi} {
		e := YMM()
		VPAND(low, v, e)
		VPADDW(e, acc[2*k], acc[2*k]) // even codes
		VPSRLW(U8(8), v, v)
		VPADDW(v, acc[2*k+1], acc[2*k+1]) // odd codes
	}
	ADDQ(U8(32), codes)
	ADDQ(U8(32), lut)
	DECQ(n)
	JMP(LabelRef("pair"))
	Label("done")
	out := Load(Param("out"), GP64())
	for k := range 2 {
		even, odd := XMM(), XMM()
		VEXTRACTI128(U8(1), acc[2*k], even)
		VPADDW(acc[2*k].AsX(), even, even)
		VEXTRACTI128(U8(1), acc[2*k+1], odd)
		VPADDW(acc[2*k+1].AsX(), odd, odd)
		a, b := XMM(), XMM()
		VPUNPCKLWD(odd, even, a) // codes 0–7 (16–23): e0 o0 e1 o1 …
		VPUNPCKHWD(odd, even, b) // codes 8–15 (24–31)
		VMOVDQU(a, Mem{Base: out, Disp: 32 * k})
		VMOVDQU(b, Mem{Base: out, Disp: 32*k + 16})
	}
	VZEROUPPER()
	RET()
	Generate()
}

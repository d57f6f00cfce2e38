package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The integer value kernels (AxpyCodesQ8), AVX-512 (F, BW, VBMI, VNNI):
// four accumulator rows, each token's weight times norm quantized to int8
// per piece of tokens (weightsQ8), times 3- or 4-bit codes whose centroids
// are the 7-bit table bytes c+64 of DotCodesQ8. The unpack makes the
// tokens the inner index: for four tokens and 64 coordinates, VPERMI2B
// gathers the two bytes that hold coordinates (2m, 2m+1) of each token into
// one quadword, VPMULTISHIFTQB moves each index to the bottom of its own
// byte, and VPERMB looks the bytes up in the table repeated over 64 entries
// (the bits above an index are ignored). A doubleword then holds one
// coordinate of the four tokens, and VPDPBUSD with the four tokens'
// weights broadcast adds their exact products into that coordinate's
// 32-bit sum.

const values8Sig = "func(acc []float32, accStride int, w []int8, scales *[4]float32, offs *[4]int32, tab *[64]uint8, codes []byte, stride, idxOff, n, d64, rows int)"

// values8Consts emits the VPERMI2B indices (four vectors: coordinates
// 16o…16o+15) and the VPMULTISHIFTQB control for bits-wide indices.
func values8Consts(bits int) (perm, ctl Mem) {
	perm = GLOBL(fmt_("values8PermB%d", bits), RODATA|NOPTR)
	for o := range 4 {
		for pos := range 64 {
			q, b := pos/8, pos%8
			bit := bits * (16*o + 2*q)
			j, e := b/2, b%2 // token j's row is bytes 32j… of the two tables
			DATA(64*o+pos, U8(32*j+bit/8+e))
		}
	}
	ctl = GLOBL(fmt_("values8CtlB%d", bits), RODATA|NOPTR)
	for pos := range 64 {
		q, b := pos/8, pos%8
		e, j := b/4, b%4 // doubleword e of the quadword: coordinate 2q+e, byte j: token j
		DATA(pos, U8(16*j+(bits*2*q)%8+bits*e))
	}
	return perm, ctl
}

// axpyCodes8 emits axpyCodesQ8B<bits>VBMI.
func axpyCodes8(bits int) {
	name := fmt_("axpyCodesQ8B%dVBMI", bits)
	TEXT(name, NOSPLIT, values8Sig)
	Doc(name+" adds, to the first rows (≤ 4) of acc, scale·(Σ_t w[t]·tab[index] − off) over the n",
		fmt_("%d-bit codes, for d64 coordinates (a multiple of 64): weights laid out [quad][row][token]; ", bits),
		"tokens past n in the last quad have weight 0 and read the last code again.")
	Pragma("noescape")
	chunk := 8 * bits // bytes of 64 indices
	permM, ctlM := values8Consts(bits)
	tab, ctl := ZMM(), ZMM()
	VMOVDQU64(Mem{Base: Load(Param("tab"), GP64())}, tab)
	VMOVDQU64(ctlM, ctl)
	var perm [4]VecVirtual
	for o := range perm {
		perm[o] = ZMM()
		m := permM
		m.Disp += 64 * o
		VMOVDQU64(m, perm[o])
	}
	k1, k2 := K(), K()
	mk := GP64()
	MOVQ(U64(uint64(1)<<chunk-1), mk)
	KMOVQ(mk, k1)
	SHLQ(U8(32), mk)
	KMOVQ(mk, k2)

	accp := Load(Param("acc").Base(), GP64())
	ip := Load(Param("codes").Base(), GP64())
	ADDQ(Load(Param("idxOff"), GP64()), ip)
	dleft := Load(Param("d64"), GP64())
	Label(name + "_chunk")
	var a [4][4]VecVirtual // [row][coordinates 16o…]
	for r := range a {
		for o := range a[r] {
			a[r][o] = ZMM()
			VPXORD(a[r][o], a[r][o], a[r][o])
		}
	}
	p, wp, q := GP64(), GP64(), GP64()
	MOVQ(ip, p)
	Load(Param("w").Base(), wp)
	Load(Param("n"), q)
	s1, s2, s3 := GP64(), GP64(), GP64()
	Load(Param("stride"), s1)
	LEAQ(Mem{Base: s1, Index: s1, Scale: 1}, s2)
	LEAQ(Mem{Base: s2, Index: s1, Scale: 1}, s3)
	// quad adds the products of the four tokens at p, p+s1, p+s2, p+s3.
	quad := func() {
		t0, t1 := ZMM(), ZMM()
		VMOVDQU8_Z(Mem{Base: p}, k1, t0)
		VMOVDQU8(Mem{Base: p, Index: s1, Scale: 1, Disp: -32}, k2, t0)
		VMOVDQU8_Z(Mem{Base: p, Index: s2, Scale: 1}, k1, t1)
		VMOVDQU8(Mem{Base: p, Index: s3, Scale: 1, Disp: -32}, k2, t1)
		for o := range 4 {
			x := ZMM()
			VMOVDQA64(perm[o], x)
			VPERMI2B(t1, t0, x)
			VPMULTISHIFTQB(x, ctl, x)
			VPERMB(tab, x, x)
			for r := range 4 {
				VPDPBUSD_BCST(Mem{Base: wp, Disp: 4 * r}, x, a[r][o])
			}
		}
	}
	Label(name + "_quad")
	CMPQ(q, U8(4))
	JB(LabelRef(name + "_tail"))
	quad()
	ADDQ(U8(16), wp)
	ADDQ(s2, p)
	ADDQ(s2, p)
	SUBQ(U8(4), q)
	JMP(LabelRef(name + "_quad"))
	Label(name + "_tail")
	TESTQ(q, q)
	JZ(LabelRef(name + "_finish"))
	// 1–3 tokens left: the missing rows read the last token (weight 0).
	zero := GP64()
	XORQ(zero, zero)
	MOVQ(zero, s3)
	CMPQ(q, U8(2))
	CMOVQLT(zero, s1)
	CMPQ(q, U8(3))
	CMOVQLT(zero, s2)
	quad()
	Label(name + "_finish")
	scales := Load(Param("scales"), GP64())
	offs := Load(Param("offs"), GP64())
	rows := Load(Param("rows"), GP64())
	row := GP64()
	MOVQ(accp, row)
	rs := Load(Param("accStride"), GP64())
	SHLQ(U8(2), rs)
	for r := range 4 {
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

// weightsQ8 emits weightsQ8AVX512, which lays out and quantizes the
// weights of four rows for the axpyCodesQ8 kernels.
func weightsQ8() {
	name := "weightsQ8AVX512"
	TEXT(name, NOSPLIT, "func(dst []int8, sums *[4]int32, amax *[4]float32, w []float32, wStride int, valid *[4]uint64, codes []byte, stride, normAt, normShift int)")
	Doc(name+" quantizes the weights times norms of up to 64 tokens for four rows (token t of row i",
		"at w[i*wStride+t] where bit t of valid[i] is set, else 0; the fp16 norm of code t in bits",
		"normShift… of the 32-bit word at codes[t*stride+normAt]) to dst ([quad][row][token]): per row,",
		"round-half-even(wn·(127/amax)), amax the row's max |wn| (0 where it is 0). It writes each",
		"row's amax and the sum of its values.")
	Pragma("noescape")
	// idx: t·stride for the 16 tokens of a chunk
	idx, t := ZMM(), ZMM()
	sr := GP64()
	Load(Param("stride"), sr)
	VPBROADCASTD(sr.As32(), t)
	iota := GLOBL("values8Iota", RODATA|NOPTR)
	for i := range 16 {
		DATA(4*i, U32(uint32(i)))
	}
	VPMULLD(iota, t, idx)
	shift := XMM()
	VMOVQ(Load(Param("normShift"), GP64()), shift)
	pn := Load(Param("codes").Base(), GP64())
	ADDQ(Load(Param("normAt"), GP64()), pn)
	st16 := Load(Param("stride"), GP64())
	SHLQ(U8(4), st16)
	wb := Load(Param("w").Base(), GP64())
	ws := Load(Param("wStride"), GP64())
	SHLQ(U8(2), ws)
	valid := Load(Param("valid"), GP64())
	absMask := ZMM()
	VPBROADCASTD(ConstData("values8Abs", U32(0x7fffffff)), absMask)
	var wn [4][4]VecVirtual // [row][chunk of 16 tokens]
	var mx [4]VecVirtual
	for i := range mx {
		mx[i] = ZMM()
		VPXORD(mx[i], mx[i], mx[i])
	}
	k, kg := K(), K()
	for c := range 4 {
		norms := ZMM()
		VPXORD(norms, norms, norms)
		KMOVQ(Mem{Base: valid}, kg)
		if c > 0 {
			KSHIFTRQ(U8(16*c), kg, kg)
		}
		VPGATHERDD(Mem{Base: pn, Index: idx, Scale: 1}, kg, norms)
		VPSRLD(shift, norms, norms)
		h := YMM()
		VPMOVDW(norms, h)
		VCVTPH2PS(h, norms)
		for i := range 4 {
			KMOVQ(Mem{Base: valid, Disp: 8 * i}, k)
			if c > 0 {
				KSHIFTRQ(U8(16*c), k, k)
			}
			wn[i][c] = ZMM()
			m := Mem{Base: wb, Disp: 64 * c}
			switch i {
			case 1:
				m = Mem{Base: wb, Index: ws, Scale: 1, Disp: 64 * c}
			case 2:
				m = Mem{Base: wb, Index: ws, Scale: 2, Disp: 64 * c}
			}
			if i == 3 {
				p3 := GP64()
				LEAQ(Mem{Base: ws, Index: ws, Scale: 2}, p3)
				ADDQ(wb, p3)
				m = Mem{Base: p3, Disp: 64 * c}
			}
			VMOVUPS_Z(m, k, wn[i][c])
			VMULPS(norms, wn[i][c], wn[i][c])
			a := ZMM()
			VANDPS(wn[i][c], absMask, a)
			VMAXPS(a, mx[i], mx[i])
		}
		if c < 3 {
			ADDQ(st16, pn)
		}
	}
	amaxP := Load(Param("amax"), GP64())
	c127 := ZMM()
	VBROADCASTSS(ConstData("values8Max", F32(127)), c127)
	zero := ZMM()
	VPXORD(zero, zero, zero)
	var sum [4]VecVirtual
	var bytes [4]VecVirtual // [chunk]: the four rows' 16 bytes side by side
	for c := range bytes {
		bytes[c] = ZMM()
	}
	for i := range 4 {
		m := mx[i] // every lane: the row's max
		VSHUFF32X4(U8(0x4e), m, m, t)
		VMAXPS(t, m, m)
		VSHUFF32X4(U8(0xb1), m, m, t)
		VMAXPS(t, m, m)
		VPERMILPS(U8(0x4e), m, t)
		VMAXPS(t, m, m)
		VPERMILPS(U8(0xb1), m, t)
		VMAXPS(t, m, m)
		VMOVSS(m.AsX(), Mem{Base: amaxP, Disp: 4 * i})
		inv := ZMM()
		VCMPPS(U8(4), zero, m, k) // amax ≠ 0
		VDIVPS_Z(m, c127, k, inv)
		sum[i] = ZMM()
		VPXORD(sum[i], sum[i], sum[i])
		for c := range 4 {
			y := wn[i][c]
			VMULPS(inv, y, y)
			VCVTPS2DQ(y, y) // round half to even (MXCSR default)
			VPADDD(y, sum[i], sum[i])
			if i == 0 {
				VPMOVDB(y, bytes[c].AsX())
				continue
			}
			x := XMM()
			VPMOVDB(y, x)
			VINSERTI32X4(U8(i), x, bytes[c], bytes[c])
		}
	}
	order := ZMM()
	ord := GLOBL("values8Order", RODATA|NOPTR) // doubleword (row i, quad q) → (q, i)
	for j := range 16 {
		DATA(4*j, U32(uint32(4*(j%4)+j/4)))
	}
	VMOVDQU32(ord, order)
	dst := Load(Param("dst").Base(), GP64())
	for c := range 4 {
		VPERMD(bytes[c], order, bytes[c])
		VMOVDQU32(bytes[c], Mem{Base: dst, Disp: 64 * c})
	}
	sums := Load(Param("sums"), GP64())
	for i := range 4 {
		m := sum[i]
		VSHUFI32X4(U8(0x4e), m, m, t)
		VPADDD(t, m, m)
		VSHUFI32X4(U8(0xb1), m, m, t)
		VPADDD(t, m, m)
		VPSHUFD(U8(0x4e), m, t)
		VPADDD(t, m, m)
		VPSHUFD(U8(0xb1), m, t)
		VPADDD(t, m, m)
		VMOVD(m.AsX(), Mem{Base: sums, Disp: 4 * i})
	}
	VZEROUPPER()
	RET()
}

package main

// dotQuant1 emits dot1Q8_0NEON or dot1Q4_0NEON: one query row of
// DotQ8_0/DotQ4_0 in the order of dotQ8_0Generic and the AVX2 kernels,
// each 8-lane vector of theirs held as a pair of 4-lane registers (lanes
// 0–3, 4–7). Per block: blk = q₀·w₀ (FMUL), then blk += q_k·w_k (FMLA) for
// k = 1–3; acc[b&1] += blk·scale (FMLA); at the end acc[0]+acc[1], its two
// halves added (lanes l and l+4), then lanes l and l+2 (EXT), then the two
// left (FADDP). The operations and their order are AVX2's, so the results
// are the same bits.
//
// Registers: R0 out, R1 q, R2 the weight blocks, R3 rows left, R4 blocks
// per row, R6 the query floats, R8 blocks left in the row, R10–R11 scratch.
// V16–V19 the accumulators (even lo, hi, odd lo, hi), V9 the scale, V10–V11
// blk, V20–V27 the block's 32 weights as floats (four per register, in
// order), V0–V7 its 32 query floats, V28–V29 the Q4_0 constants.
func dotQuant1(f *file, q4 bool) {
	format, bb := "Q8_0", 34
	if q4 {
		format, bb = "Q4_0", 18
	}
	name := "dot1" + format + "NEON"
	f.text(name, "out []float32, outStride int, q []float32, rows []byte, n, d int", "",
		name+" is dot"+format+"Generic for one query row (len(q) = d), in the AVX2 kernels' order",
		"(the same bits as dot1"+format+"AVX2).")
	l := "dot1" + format
	f.op("MOVD %s, R0", f.arg("out_base"))
	f.op("MOVD %s, R1", f.arg("q_base"))
	f.op("MOVD %s, R2", f.arg("rows_base"))
	f.op("MOVD %s, R3", f.arg("n"))
	f.op("MOVD %s, R4", f.arg("d"))
	f.op("LSR $5, R4, R4")
	if q4 {
		dupConst(f, 28, 0x0f0f0f0f)
		dupConst(f, 29, 0x08080808)
	}
	block := func(off int, acc vreg) {
		f.op("MOVHU %d(R2), R10", off)
		f.op("VDUP R10, V9.H8")
		f.w(fcvtl(9, 9))
		f.op("ADD $%d, R2, R11", off+2)
		if q4 {
			f.comment("nibbles: byte j's low one is value j, its high one value j+16; minus 8")
			f.op("VLD1 (R11), [V0.B16]")
			f.op("VUSHR $4, V0.B16, V1.B16")
			f.op("VAND V28.B16, V0.B16, V0.B16")
			f.op("VSUB V29.B16, V0.B16, V0.B16")
			f.op("VSUB V29.B16, V1.B16, V1.B16")
		} else {
			f.op("VLD1 (R11), [V0.B16, V1.B16]")
		}
		f.w(sxtl8h(2, 0))
		f.w(sxtl28h(3, 0))
		f.w(sxtl8h(4, 1))
		f.w(sxtl28h(5, 1))
		for m := range vreg(4) {
			f.w(sxtl4s(20+2*m, 2+m))
			f.w(sxtl24s(21+2*m, 2+m))
		}
		for m := range vreg(8) {
			f.w(scvtf4s(20+m, 20+m))
		}
		f.op("VLD1.P 64(R6), [V0.S4, V1.S4, V2.S4, V3.S4]")
		f.op("VLD1.P 64(R6), [V4.S4, V5.S4, V6.S4, V7.S4]")
		f.w(fmul4s(10, 0, 20))
		f.w(fmul4s(11, 1, 21))
		for k := 1; k < 4; k++ {
			f.op("VFMLA V%d.S4, V%d.S4, V10.S4", 2*k, 20+2*k)
			f.op("VFMLA V%d.S4, V%d.S4, V11.S4", 2*k+1, 21+2*k)
		}
		f.op("VFMLA V9.S4, V10.S4, V%d.S4", acc)
		f.op("VFMLA V9.S4, V11.S4, V%d.S4", acc+1)
	}
	f.label(l + "_row")
	f.op("CBZ R3, %s_done", l)
	zero(f, 16, 17, 18, 19)
	f.op("MOVD R1, R6")
	f.op("MOVD R4, R8")
	f.label(l + "_pair")
	f.op("CMP $2, R8")
	f.op("BLT %s_tail", l)
	block(0, 16)
	block(bb, 18)
	f.op("ADD $%d, R2, R2", 2*bb)
	f.op("SUB $2, R8, R8")
	f.op("B %s_pair", l)
	f.label(l + "_tail")
	f.op("CBZ R8, %s_sum", l)
	block(0, 16)
	f.op("ADD $%d, R2, R2", bb)
	f.label(l + "_sum")
	f.w(fadd4s(16, 16, 18))
	f.w(fadd4s(17, 17, 19))
	f.w(fadd4s(16, 16, 17))
	f.op("VEXT $8, V16.B16, V16.B16, V17.B16")
	f.w(fadd4s(16, 16, 17))
	f.w(faddpS(16, 16))
	f.op("FMOVS (R0), F1")
	f.op("FADDS F1, F16, F16")
	f.op("FMOVS.P F16, 4(R0)")
	f.op("SUB $1, R3, R3")
	f.op("B %s_row", l)
	f.label(l + "_done")
	f.op("RET")
}

// dotQuant4 emits dot4Q8_0NEON or dot4Q4_0NEON: dotQuant1 for four query
// rows (len(q) = 4·d, out rows outStride apart), widening each block once
// for all four. Each row's sums are dotQuant1's, so the results are the
// same bits.
//
// Registers: R0, R20–R22 the out rows; R1 q, R15 its row stride (bytes);
// R6, R7, R12, R13 the four rows' query floats; R2, R3, R4, R8, R10, R11
// as in dotQuant1. V20–V27 the weights, V9 the scale, V10–V11 blk, V0–V1
// eight query floats at a time, quantAcc the 16 accumulators; while a
// block is widened V0–V1 hold its bytes and V9–V11, V31 its 16-bit lanes.
func dotQuant4(f *file, q4 bool) {
	format, bb := "Q8_0", 34
	if q4 {
		format, bb = "Q4_0", 18
	}
	name := "dot4" + format + "NEON"
	f.text(name, "out []float32, outStride int, q []float32, rows []byte, n, d int", "",
		name+" is dot1"+format+"NEON for four query rows (len(q) = 4·d, out rows outStride apart),",
		"widening each block once; each row's result is the same bits as dot1"+format+"NEON's.")
	l := "dot4" + format
	f.op("MOVD %s, R0", f.arg("out_base"))
	f.op("MOVD %s, R10", f.arg("outStride"))
	f.op("LSL $2, R10, R10")
	f.op("ADD R10, R0, R20")
	f.op("ADD R10, R20, R21")
	f.op("ADD R10, R21, R22")
	f.op("MOVD %s, R1", f.arg("q_base"))
	f.op("MOVD %s, R2", f.arg("rows_base"))
	f.op("MOVD %s, R3", f.arg("n"))
	f.op("MOVD %s, R4", f.arg("d"))
	f.op("LSL $2, R4, R15")
	f.op("LSR $5, R4, R4")
	if q4 {
		dupConst(f, 28, 0x0f0f0f0f)
		dupConst(f, 29, 0x08080808)
	}
	acc := func(i, par, h int) vreg { return quantAcc[4*i+2*par+h] }
	qp := []string{"R6", "R7", "R12", "R13"}
	block := func(off, par int) {
		f.op("ADD $%d, R2, R11", off+2)
		if q4 {
			f.op("VLD1 (R11), [V0.B16]")
			f.op("VUSHR $4, V0.B16, V1.B16")
			f.op("VAND V28.B16, V0.B16, V0.B16")
			f.op("VSUB V29.B16, V0.B16, V0.B16")
			f.op("VSUB V29.B16, V1.B16, V1.B16")
		} else {
			f.op("VLD1 (R11), [V0.B16, V1.B16]")
		}
		h16 := []vreg{9, 10, 11, 31}
		f.w(sxtl8h(h16[0], 0))
		f.w(sxtl28h(h16[1], 0))
		f.w(sxtl8h(h16[2], 1))
		f.w(sxtl28h(h16[3], 1))
		for m := range vreg(4) {
			f.w(sxtl4s(20+2*m, h16[m]))
			f.w(sxtl24s(21+2*m, h16[m]))
		}
		for m := range vreg(8) {
			f.w(scvtf4s(20+m, 20+m))
		}
		f.op("MOVHU %d(R2), R10", off)
		f.op("VDUP R10, V9.H8")
		f.w(fcvtl(9, 9))
		for i := range 4 {
			for k := range 4 {
				f.op("VLD1.P 32(%s), [V0.S4, V1.S4]", qp[i])
				if k == 0 {
					f.w(fmul4s(10, 0, 20))
					f.w(fmul4s(11, 1, 21))
				} else {
					f.op("VFMLA V0.S4, V%d.S4, V10.S4", 20+2*k)
					f.op("VFMLA V1.S4, V%d.S4, V11.S4", 21+2*k)
				}
			}
			f.op("VFMLA V9.S4, V10.S4, V%d.S4", acc(i, par, 0))
			f.op("VFMLA V9.S4, V11.S4, V%d.S4", acc(i, par, 1))
		}
	}
	f.label(l + "_row")
	f.op("CBZ R3, %s_done", l)
	for _, v := range quantAcc {
		f.op("VEOR V%d.B16, V%d.B16, V%d.B16", v, v, v)
	}
	f.op("MOVD R1, R6")
	f.op("ADD R15, R6, R7")
	f.op("ADD R15, R7, R12")
	f.op("ADD R15, R12, R13")
	f.op("MOVD R4, R8")
	f.label(l + "_pair")
	f.op("CMP $2, R8")
	f.op("BLT %s_tail", l)
	block(0, 0)
	block(bb, 1)
	f.op("ADD $%d, R2, R2", 2*bb)
	f.op("SUB $2, R8, R8")
	f.op("B %s_pair", l)
	f.label(l + "_tail")
	f.op("CBZ R8, %s_sum", l)
	block(0, 0)
	f.op("ADD $%d, R2, R2", bb)
	f.label(l + "_sum")
	for i, o := range []string{"R0", "R20", "R21", "R22"} {
		a, b := acc(i, 0, 0), acc(i, 0, 1)
		f.w(fadd4s(a, a, acc(i, 1, 0)))
		f.w(fadd4s(b, b, acc(i, 1, 1)))
		f.w(fadd4s(a, a, b))
		f.op("VEXT $8, V%d.B16, V%d.B16, V0.B16", a, a)
		f.w(fadd4s(0, a, 0))
		f.w(faddpS(0, 0))
		f.op("FMOVS (%s), F1", o)
		f.op("FADDS F1, F0, F0")
		f.op("FMOVS.P F0, 4(%s)", o)
	}
	f.op("SUB $1, R3, R3")
	f.op("B %s_row", l)
	f.label(l + "_done")
	f.op("RET")
}

// quantAcc are dotQuant4's accumulators: row i, block parity p, half h at
// quantAcc[4i+2p+h].
var quantAcc = []vreg{2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 15, 16, 17, 18, 19, 30}

package main

// The integer kernels of DotQ8_0Q8/DotQ4_0Q8 (int8 activations times Q8_0
// or Q4_0 weights), in the order of dotQuant8Row and the AVX2 kernels.
// A block's 32 products are summed exactly in integers; four such sums
// (four activation rows, or four weight rows) end in the four lanes of
// one vector, so that one conversion, one scale multiply and one add
// serve four dot products. The accumulators are acc[b&1] of the generic
// loop, one register per parity, a lane per dot product; nothing crosses
// lanes until a lane's acc[0]+acc[1] is added to its out cell, so every
// lane performs the generic loop's float operations in its order.

const quant8Sig = "out []float32, outStride int, xq []int8, xs []float32, rows []byte, n, d int"

// dot8Operands are the registers of one of the four dot products of a
// block: weights w0 (values 0–15), w1 (16–31) and activations x0, x1.
type dot8Operands struct{ w0, w1, x0, x1 vreg }

// intDots4 emits the four exact int32 dot products of ops into the lanes
// of V18, lane k from ops[k], using V10–V21.
//
// Q8_0 products (|w| ≤ 128, |x| ≤ 127) are exact in 16 bits (SMULL), but
// two of them may not be, so each product vector is widened pairwise into
// 32 bits (SADDLP, SADALP). Q4_0 weights are at most 8 in magnitude, so a
// 16-bit lane may hold a sum of 16 products (≤ 16·8·128 = 2¹⁴, whatever
// the activations): four products per lane accumulate (SMLAL), two
// pairwise adds (ADDP) reduce the four rows to sums of 16, and only the
// last, pairwise widening step needs 32 bits.
func intDots4(f *file, q4 bool, ops [4]dot8Operands) {
	if q4 {
		for k, o := range ops {
			f.w(smull8h(10+vreg(k), o.w0, o.x0))
		}
		for k, o := range ops {
			f.w(smlal28h(10+vreg(k), o.w0, o.x0))
		}
		for k, o := range ops {
			f.w(smlal8h(10+vreg(k), o.w1, o.x1))
		}
		for k, o := range ops {
			f.w(smlal28h(10+vreg(k), o.w1, o.x1))
		}
		// VADDP Vm, Vn, Vd: Vd's low lanes are Vn's pairs, its high ones Vm's.
		f.op("VADDP V11.H8, V10.H8, V10.H8")
		f.op("VADDP V13.H8, V12.H8, V12.H8")
		f.op("VADDP V12.H8, V10.H8, V10.H8")
		f.w(saddlp4s(18, 10))
		return
	}
	// Dot product k: products in V10+2k and V11+2k by turns, its 32-bit
	// sums in V18+k; each step for the four at once, so that they overlap.
	mul := func(op func(d, n, m vreg) inst, tmp vreg, hi bool) {
		for k, o := range ops {
			w, x := o.w0, o.x0
			if hi {
				w, x = o.w1, o.x1
			}
			f.w(op(10+2*vreg(k)+tmp, w, x))
		}
	}
	widen := func(op func(d, n vreg) inst, tmp vreg) {
		for k := range vreg(4) {
			f.w(op(18+k, 10+2*k+tmp))
		}
	}
	mul(smull8h, 0, false)
	mul(smull28h, 1, false)
	widen(saddlp4s, 0)
	mul(smull8h, 0, true)
	widen(sadalp4s, 1)
	mul(smull28h, 1, true)
	widen(sadalp4s, 0)
	widen(sadalp4s, 1)
	f.op("VADDP V19.S4, V18.S4, V18.S4")
	f.op("VADDP V21.S4, V20.S4, V20.S4")
	f.op("VADDP V20.S4, V18.S4, V18.S4")
}

// q4Unpack emits the split of the 16 Q4_0 bytes in V<lo> into values 0–15
// (V<lo>) and 16–31 (V<lo+1>), minus 8; V28 holds 0x0f and V29 8 in every
// byte.
func q4Unpack(f *file, lo vreg) {
	f.op("VUSHR $4, V%d.B16, V%d.B16", lo, lo+1)
	f.op("VAND V28.B16, V%d.B16, V%d.B16", lo, lo)
	f.op("VSUB V29.B16, V%d.B16, V%d.B16", lo, lo)
	f.op("VSUB V29.B16, V%d.B16, V%d.B16", lo+1, lo+1)
}

// scaleAcc emits acc += float32(V18)·(V22·V23), each product rounded
// (FMUL, never FMLA): the generic loop's acc[b&1] += float32(s)·scale
// with scale = w·x, V22 holding the weight scales and V23 the activation
// scales. It clobbers V18 and V22.
func scaleAcc(f *file, acc vreg) {
	f.w(fmul4s(22, 22, 23))
	f.w(scvtf4s(18, 18))
	f.w(fmul4s(18, 18, 22))
	f.w(fadd4s(acc, acc, 18))
}

// blockPairs emits the loop over a weight row's blocks shared by both
// kernels: two blocks a turn (the even one into V30, the odd into V31),
// then the last one if the count, in R8, is odd (its index is even).
func blockPairs(f *file, l string, block func(acc vreg)) {
	f.label(l + "_pair")
	f.op("CMP $2, R8")
	f.op("BLT %s_tail", l)
	block(30)
	block(31)
	f.op("SUB $2, R8, R8")
	f.op("B %s_pair", l)
	f.label(l + "_tail")
	f.op("CBZ R8, %s_sum", l)
	block(30)
	f.label(l + "_sum")
	f.w(fadd4s(30, 30, 31)) // acc[0] + acc[1]
}

func q8Format(q4 bool) (format string, bb int) {
	if q4 {
		return "Q4_0", 18
	}
	return "Q8_0", 34
}

// dotQuant8x4 emits dot4Q8_0Q8NEON or dot4Q4_0Q8NEON, four activation rows
// (len(xq) = 4·d, xs their group's scales) against any n weight rows: per
// weight row, each block is loaded and unpacked once for the four rows,
// and lane i of the sums and accumulators is activation row i.
//
// Registers: R0, R20–R22 the out rows; R1 xq, R15 its row stride d; R5
// xs; R2 the weights, walked block by block; R3 rows left, R4 blocks per
// row, R8 blocks left; R6, R7, R12, R13 the four activation rows; R9 their
// scales; R10 scratch. V0–V1 the block's weights, V2–V9 the four rows'
// activations, V10–V21 intDots4's, V22 the weight scale, V23 the four
// activation scales, V28–V29 the Q4_0 constants, V30–V31 acc[0], acc[1].
func dotQuant8x4(f *file, q4 bool) {
	format, _ := q8Format(q4)
	name := "dot4" + format + "Q8NEON"
	f.text(name, quant8Sig, "",
		name+" is DotQ"+format[1:]+"Q8 for four activation rows (len(xq) = 4·d, xs their group's scales):",
		"lanes are rows, each weight block unpacked once for the four.")
	l := "dot4" + format + "Q8"
	f.op("MOVD %s, R0", f.arg("out_base"))
	f.op("MOVD %s, R10", f.arg("outStride"))
	f.op("LSL $2, R10, R10")
	f.op("ADD R10, R0, R20")
	f.op("ADD R10, R20, R21")
	f.op("ADD R10, R21, R22")
	f.op("MOVD %s, R1", f.arg("xq_base"))
	f.op("MOVD %s, R5", f.arg("xs_base"))
	f.op("MOVD %s, R2", f.arg("rows_base"))
	f.op("MOVD %s, R3", f.arg("n"))
	f.op("MOVD %s, R15", f.arg("d"))
	f.op("LSR $5, R15, R4")
	if q4 {
		dupConst(f, 28, 0x0f0f0f0f)
		dupConst(f, 29, 0x08080808)
	}
	xp := []string{"R6", "R7", "R12", "R13"}
	block := func(acc vreg) {
		f.op("MOVHU.P 2(R2), R10")
		if q4 {
			f.op("VLD1.P 16(R2), [V0.B16]")
			q4Unpack(f, 0)
		} else {
			f.op("VLD1.P 32(R2), [V0.B16, V1.B16]")
		}
		var ops [4]dot8Operands
		for i, p := range xp {
			x := 2 + 2*vreg(i)
			f.op("VLD1.P 32(%s), [V%d.B16, V%d.B16]", p, x, x+1)
			ops[i] = dot8Operands{0, 1, x, x + 1}
		}
		intDots4(f, q4, ops)
		f.op("VDUP R10, V22.H8")
		f.w(fcvtl(22, 22))
		f.op("VLD1.P 16(R9), [V23.S4]")
		scaleAcc(f, acc)
	}
	f.label(l + "_row")
	f.op("CBZ R3, %s_done", l)
	zero(f, 30, 31)
	f.op("MOVD R1, R6")
	f.op("ADD R15, R6, R7")
	f.op("ADD R15, R7, R12")
	f.op("ADD R15, R12, R13")
	f.op("MOVD R5, R9")
	f.op("MOVD R4, R8")
	blockPairs(f, l, block)
	f.comment("out[i][t] += acc[0] + acc[1], lane i")
	f.op("FMOVS (R0), F1")
	for i, o := range []string{"R20", "R21", "R22"} {
		f.op("VLD1 (%s), V1.S[%d]", o, i+1)
	}
	f.w(fadd4s(1, 1, 30))
	f.op("FMOVS.P F1, 4(R0)")
	for i, o := range []string{"R20", "R21", "R22"} {
		f.op("VST1.P V1.S[%d], 4(%s)", i+1, o)
	}
	f.op("SUB $1, R3, R3")
	f.op("B %s_row", l)
	f.label(l + "_done")
	f.op("RET")
}

// dotQuant8x1 emits dot1Q8_0Q8NEON or dot1Q4_0Q8NEON, one activation row
// (len(xq) = d, xs its scales at stride 4) against n weight rows, n a
// multiple of 4: four weight rows side by side, lane k of the sums and
// accumulators weight row k, each activation block loaded once for the
// four.
//
// Registers: R0 out; R1 xq, R5 xs; R2 the group's first weight row, R14
// the row length in bytes, R6, R7, R12, R13 the four rows, walked block by
// block; R3 rows left, R4 blocks per row, R8 blocks left; R9 the
// activations, R10 their scales, R15 the scale stride (16). V0–V1 the
// activation block, V2–V9 the four rows' weights, V10–V21 intDots4's,
// V24 the four rows' fp16 weight scales, V22 them widened, V23 the
// activation scale, V28–V29 the Q4_0 constants, V30–V31 acc[0], acc[1].
func dotQuant8x1(f *file, q4 bool) {
	format, bb := q8Format(q4)
	name := "dot1" + format + "Q8NEON"
	f.text(name, quant8Sig, "",
		name+" is DotQ"+format[1:]+"Q8 for one activation row (len(xq) = d, xs its scales at stride 4)",
		"and n a multiple of 4: lanes are weight rows, each activation block loaded once for four.")
	l := "dot1" + format + "Q8"
	f.op("MOVD %s, R0", f.arg("out_base"))
	f.op("MOVD %s, R1", f.arg("xq_base"))
	f.op("MOVD %s, R5", f.arg("xs_base"))
	f.op("MOVD %s, R2", f.arg("rows_base"))
	f.op("MOVD %s, R3", f.arg("n"))
	f.op("MOVD %s, R4", f.arg("d"))
	f.op("LSR $5, R4, R4")
	f.op("MOVD $%d, R10", bb)
	f.op("MUL R10, R4, R14")
	f.op("MOVD $16, R15")
	if q4 {
		dupConst(f, 28, 0x0f0f0f0f)
		dupConst(f, 29, 0x08080808)
	}
	wp := []string{"R6", "R7", "R12", "R13"}
	block := func(acc vreg) {
		f.op("VLD1.P 32(R9), [V0.B16, V1.B16]")
		var ops [4]dot8Operands
		for k, p := range wp {
			w := 2 + 2*vreg(k)
			f.op("VLD1.P 2(%s), V24.H[%d]", p, k)
			if q4 {
				f.op("VLD1.P 16(%s), [V%d.B16]", p, w)
			} else {
				f.op("VLD1.P 32(%s), [V%d.B16, V%d.B16]", p, w, w+1)
			}
			ops[k] = dot8Operands{w, w + 1, 0, 1}
		}
		if q4 {
			for k := range vreg(4) {
				q4Unpack(f, 2+2*k)
			}
		}
		intDots4(f, q4, ops)
		// gathered in V24, not V22: inserting lanes into the register that
		// the last block's float chain wrote would wait for that chain
		f.w(fcvtl(22, 24))
		// one 4-byte load: a 16-byte one could run past the end of xs
		f.op("VLD1R.P (R10)(R15), [V23.S4]")
		scaleAcc(f, acc)
	}
	f.label(l + "_grp")
	f.op("CBZ R3, %s_done", l)
	zero(f, 30, 31)
	f.op("MOVD R2, R6")
	f.op("ADD R14, R6, R7")
	f.op("ADD R14, R7, R12")
	f.op("ADD R14, R12, R13")
	f.op("MOVD R1, R9")
	f.op("MOVD R5, R10")
	f.op("MOVD R4, R8")
	blockPairs(f, l, block)
	f.op("VLD1 (R0), [V1.S4]")
	f.w(fadd4s(1, 1, 30))
	f.op("VST1.P [V1.S4], 16(R0)")
	f.op("MOVD R13, R2") // the last row's pointer has reached the next group
	f.op("SUB $4, R3, R3")
	f.op("B %s_grp", l)
	f.label(l + "_done")
	f.op("RET")
}

package main

import "fmt"

// The fused kernels read packed codes directly: each group of eight
// indices is unpacked to centroids in registers (unpack) and used at once,
// never stored as a decoded row.

const fusedSig = "tab *[16]float32, sh *[8]uint32, bits int, codes []byte, stride, idxOff, normOff, n, d8 int, ahead []byte"

// fusedKind names the two index-width families: "Small" (1–3 bits, the
// table's first 8 entries) and "B4" (4 bits, all 16).
func fusedKind(b4 bool) (name, widths string) {
	if b4 {
		return "B4", "4"
	}
	return "Small", "1–3"
}

func rowsWord(g int, what string) string {
	if g == 1 {
		return "one " + what + " row"
	}
	return "four " + what + " rows"
}

// loadNorm broadcasts the fp16 norm at (p)(normOff) into V9, using R14.
func loadNorm(f *file, p, normOff string) {
	f.op("MOVHU (%s)(%s), R14", p, normOff)
	f.op("VDUP R14, V9.H8")
	f.w(fcvtl(9, 9))
}

// dotCodes emits out[i·outStride+t] += norm_t · Σ_{j<d8} q[i·qStride+j]·c_t[j]
// for g = 1 or 4 query rows, unpacking each group of indices once.
// Accumulators: V16+2i (coordinates 0–3 of each group) and V17+2i (4–7)
// for query row i; query loads in V24–V31.
func dotCodes(f *file, b4 bool, g int) {
	kind, widths := fusedKind(b4)
	name := fmt.Sprintf("dotCodes%s%dNEON", kind, g)
	f.text(name, "out []float32, outStride int, q []float32, qStride int, "+fusedSig, "",
		fmt.Sprintf("%s is dotCodesGeneric for %s-bit codes and %s on the first d8 coordinates.", name, widths, rowsWord(g, "query")))
	tabRegs := loadTables(f, b4, true)
	f.op("MOVD %s, R0", f.arg("out_base"))
	f.op("MOVD %s, R1", f.arg("codes_base"))
	f.op("MOVD %s, R2", f.arg("stride"))
	f.op("MOVD %s, R3", f.arg("n"))
	f.op("MOVD %s, R5", f.arg("idxOff"))
	f.op("MOVD %s, R6", f.arg("normOff"))
	f.op("MOVD %s, R7", f.arg("d8"))
	f.op("MOVD %s, R8", f.arg("bits"))
	f.op("MOVD %s, R15", f.arg("q_base"))
	qp := []string{"R12", "R19", "R20", "R21"}
	op := []string{"R0", "R22", "R23", "R24"}
	if g == 4 {
		f.op("MOVD %s, R16", f.arg("qStride"))
		f.op("LSL $2, R16, R16")
		f.op("MOVD %s, R17", f.arg("outStride"))
		f.op("LSL $2, R17, R17")
		for i := 1; i < 4; i++ {
			f.op("ADD R17, %s, %s", op[i-1], op[i])
		}
	}
	f.label(name + "_row")
	f.op("CBZ R3, %s_done", name)
	for i := range g {
		zero(f, 16+2*i, 17+2*i)
	}
	f.op("ADD R5, R1, R11")
	f.op("MOVD R15, R12")
	for i := 1; i < g; i++ {
		f.op("ADD R16, %s, %s", qp[i-1], qp[i])
	}
	f.op("MOVD R7, R13")
	f.label(name + "_grp")
	unpack(f, "R11", tabRegs, 13, 14)
	f.op("ADD R8, R11, R11")
	for i := range g {
		f.op("VLD1.P 32(%s), [V%d.S4, V%d.S4]", qp[i], 24+2*i, 25+2*i)
	}
	for i := range g {
		f.op("VFMLA V13.S4, V%d.S4, V%d.S4", 24+2*i, 16+2*i)
		f.op("VFMLA V14.S4, V%d.S4, V%d.S4", 25+2*i, 17+2*i)
	}
	f.op("SUBS $8, R13, R13")
	f.op("BNE %s_grp", name)
	loadNorm(f, "R1", "R6")
	for i := range vreg(g) {
		f.w(fadd4s(16+2*i, 16+2*i, 17+2*i))
	}
	if g == 1 {
		f.w(faddp4s(16, 16, 16))
		f.w(faddpS(16, 16))
		f.op("FMULS F9, F16, F16")
		f.op("FMOVS (R0), F26") // not F1: V0–V3 hold the table
		f.op("FADDS F26, F16, F16")
		f.op("FMOVS.P F16, 4(R0)")
	} else {
		f.comment("V16 = the four sums, times the norm, added to the four out cells")
		f.w(faddp4s(16, 16, 18))
		f.w(faddp4s(20, 20, 22))
		f.w(faddp4s(16, 16, 20))
		f.w(fmul4s(16, 16, 9))
		f.op("FMOVS (R0), F26")
		for i := 1; i < 4; i++ {
			f.op("VLD1 (%s), V26.S[%d]", op[i], i)
		}
		f.w(fadd4s(16, 16, 26))
		f.op("FMOVS.P F16, 4(R0)")
		for i := 1; i < 4; i++ {
			f.op("VST1.P V16.S[%d], 4(%s)", i, op[i])
		}
	}
	f.op("ADD R2, R1, R1")
	f.op("SUB $1, R3, R3")
	f.op("B %s_row", name)
	f.label(name + "_done")
	f.op("RET")
}

// axpyCodes emits acc[i·accStride+j] += Σ_t w[i·wStride+t]·norm_t·c_t[j]
// for g = 1 or 4 accumulator rows: a chunk of coordinates (8 groups for one
// row, 2 for four; then single groups) stays in V16–V31 while every code
// adds into it. V15 holds w·norm: broadcast for one row, one lane per row
// for four (FMLA by element).
func axpyCodes(f *file, b4 bool, g int) {
	kind, widths := fusedKind(b4)
	name := fmt.Sprintf("axpyCodes%s%dNEON", kind, g)
	f.text(name, "acc []float32, accStride int, w []float32, wStride int, "+fusedSig, "",
		fmt.Sprintf("%s is axpyCodesGeneric for %s-bit codes and %s on the first d8 coordinates.", name, widths, rowsWord(g, "accumulator")))
	tabRegs := loadTables(f, b4, true)
	f.op("MOVD %s, R0", f.arg("acc_base"))
	f.op("MOVD %s, R1", f.arg("w_base"))
	f.op("MOVD %s, R2", f.arg("codes_base"))
	f.op("MOVD %s, R3", f.arg("n"))
	f.op("MOVD %s, R4", f.arg("stride"))
	f.op("MOVD %s, R5", f.arg("idxOff"))
	f.op("MOVD %s, R16", f.arg("accStride"))
	f.op("LSL $2, R16, R16")
	f.op("MOVD %s, R17", f.arg("wStride"))
	f.op("LSL $2, R17, R17")
	f.op("MOVD %s, R19", f.arg("bits"))
	f.op("MOVD %s, R20", f.arg("d8"))
	f.op("MOVD %s, R21", f.arg("normOff"))
	f.op("MOVD $0, R6") // j0, the chunk's first coordinate
	f.op("CBZ R3, %s_done", name)
	wp := []string{"R12", "R22", "R23", "R24"}
	chunk := 8
	if g == 4 {
		chunk = 2
	}
	// accessAcc loads or stores row i's 2·groups registers from V16+i·2·groups.
	accessAcc := func(load bool, groups int) {
		for i := range g {
			ptr := "R8"
			if i > 0 {
				f.op("ADD R16, %s, R9", map[bool]string{true: "R8", false: "R9"}[i == 1])
				ptr = "R9"
			}
			loadStore(f, load, ptr, "R25", 16+2*groups*i, 2*groups)
		}
	}
	for _, groups := range []int{chunk, 1} {
		l := fmt.Sprintf("%s_c%d", name, groups)
		f.label(l)
		f.op("ADD $%d, R6, R7", 8*groups)
		f.op("CMP R20, R7")
		f.op("BGT %s_end", l)
		f.op("ADD R6<<2, R0, R8")
		accessAcc(true, groups)
		f.comment("R10: offset of the chunk's index bytes in a code, idxOff + j0/8·bits")
		f.op("LSR $3, R6, R10")
		f.op("MUL R19, R10, R10")
		f.op("ADD R5, R10, R10")
		f.op("MOVD R2, R11")
		f.op("MOVD R1, R12")
		for i := 1; i < g; i++ {
			f.op("ADD R17, %s, %s", wp[i-1], wp[i])
		}
		f.op("MOVD R3, R13")
		f.label(l + "_tok")
		loadNorm(f, "R11", "R21")
		if g == 1 {
			f.op("VLD1R.P 4(R12), [V15.S4]")
		} else {
			for i := range g {
				f.op("VLD1.P 4(%s), V15.S[%d]", wp[i], i)
			}
		}
		f.w(fmul4s(15, 15, 9))
		f.op("ADD R10, R11, R15")
		for k := range groups {
			if k > 0 {
				f.op("ADD R19, R15, R15")
			}
			unpack(f, "R15", tabRegs, 13, 14)
			for i := range g {
				lo := vreg(16 + 2*groups*i + 2*k)
				if g == 1 {
					f.op("VFMLA V15.S4, V13.S4, V%d.S4", lo)
					f.op("VFMLA V15.S4, V14.S4, V%d.S4", lo+1)
				} else {
					f.w(fmlaElem4s(lo, 13, 15, uint32(i)))
					f.w(fmlaElem4s(lo+1, 14, 15, uint32(i)))
				}
			}
		}
		f.op("ADD R4, R11, R11")
		f.op("SUBS $1, R13, R13")
		f.op("BNE %s_tok", l)
		accessAcc(false, groups)
		f.op("MOVD R7, R6")
		f.op("B %s", l)
		f.label(l + "_end")
	}
	f.label(name + "_done")
	f.op("RET")
}

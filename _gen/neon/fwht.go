package main

import "fmt"

// The transform's kernels run exactly the butterflies of the generic
// loop, level by level, with the low member of each pair a + b and the
// high one a − b, so every output is bit-identical to it.

// butterfly8 transforms the eight floats in V0 (0–3) and V1 (4–7) into V2
// (0–3) and V3 (4–7): levels 1 and 2 pair the lanes by unzipping (UZP,
// ZIP of doublewords) and re-zip the sums and differences; level 4 pairs
// the two registers. Clobbers V0–V5.
func butterfly8(f *file) {
	f.comment("level 1: (0,1) (2,3) (4,5) (6,7)")
	f.op("VUZP1 V1.S4, V0.S4, V2.S4")
	f.op("VUZP2 V1.S4, V0.S4, V3.S4")
	f.w(fadd4s(4, 2, 3))
	f.w(fsub4s(5, 2, 3))
	f.op("VZIP1 V5.S4, V4.S4, V0.S4")
	f.op("VZIP2 V5.S4, V4.S4, V1.S4")
	f.comment("level 2: (0,2) (1,3) (4,6) (5,7)")
	f.op("VZIP1 V1.D2, V0.D2, V2.D2")
	f.op("VZIP2 V1.D2, V0.D2, V3.D2")
	f.w(fadd4s(4, 2, 3))
	f.w(fsub4s(5, 2, 3))
	f.op("VZIP1 V5.D2, V4.D2, V0.D2")
	f.op("VZIP2 V5.D2, V4.D2, V1.D2")
	f.comment("level 4: (j, j+4)")
	f.w(fadd4s(2, 0, 1))
	f.w(fsub4s(3, 0, 1))
}

func fwhtFirst8(f *file) {
	const name = "fwhtFirst8NEON"
	f.text(name, "dst, src, signs []float32", "",
		name+" sets each block of 8 of dst to the 8-point transform of",
		"signs∘src (signs may be empty: no signs); len(dst) is a multiple of 8.")
	f.op("MOVD %s, R0", f.arg("dst_base"))
	f.op("MOVD %s, R1", f.arg("src_base"))
	f.op("MOVD %s, R2", f.arg("signs_base"))
	f.op("MOVD %s, R3", f.arg("signs_len"))
	f.op("MOVD %s, R4", f.arg("dst_len"))
	f.op("CBZ R3, f8_plain")
	for _, signed := range []bool{true, false} {
		l := "f8_plain"
		if signed {
			l = "f8_signed"
		}
		f.label(l)
		f.op("CBZ R4, f8_done")
		f.op("VLD1.P 32(R1), [V0.S4, V1.S4]")
		if signed {
			f.op("VLD1.P 32(R2), [V2.S4, V3.S4]")
			f.w(fmul4s(0, 0, 2))
			f.w(fmul4s(1, 1, 3))
		}
		butterfly8(f)
		f.op("VST1.P [V2.S4, V3.S4], 32(R0)")
		f.op("SUB $8, R4, R4")
		f.op("B %s", l)
	}
	f.label("f8_done")
	f.op("RET")
}

// fwhtPass emits fwhtPass<m>NEON: levels h, 2h, … (levels of them) in one
// sweep. For each block of m·h floats and each j < h, eight at a time,
// the m groups h apart (R6 + r·h) are loaded, go through the radix-2
// butterflies in registers, and are stored back. Sums take fresh
// registers (a free list), so no butterfly needs a move.
func fwhtPass(f *file, levels int) {
	m := 1 << levels
	name := fmt.Sprintf("fwhtPass%dNEON", m)
	f.text(name, "x []float32, h int", "",
		fmt.Sprintf("%s does levels h … %dh of the transform (h ≥ 8, a power of two).", name, 1<<(levels-1)))
	l := fmt.Sprintf("fwht%d", m)
	f.op("MOVD %s, R0", f.arg("x_base"))
	f.op("MOVD %s, R1", f.arg("x_len"))
	f.op("ADD R1<<2, R0, R1") // end
	f.op("MOVD %s, R5", f.arg("h"))
	f.op("LSL $2, R5, R2")          // h in bytes
	f.op("LSL $%d, R2, R3", levels) // block bytes
	ptr := []string{"R6", "R7", "R8", "R9", "R10", "R11", "R12", "R13"}[:m]
	f.label(l + "_blk")
	f.op("CMP R1, R0")
	f.op("BHS %s_done", l)
	f.op("MOVD R0, R6")
	for r := 1; r < m; r++ {
		f.op("ADD R2, %s, %s", ptr[r-1], ptr[r])
	}
	f.op("MOVD R5, R4")
	f.label(l + "_j")
	type pair struct{ lo, hi vreg }
	v := make([]pair, m)
	var free []vreg
	for r := range v {
		v[r] = pair{vreg(2 * r), vreg(2*r + 1)}
		f.op("VLD1 (%s), [V%d.S4, V%d.S4]", ptr[r], 2*r, 2*r+1)
	}
	for k := vreg(2 * m); k < 32; k++ {
		free = append(free, k)
	}
	for step := 1; step < m; step *= 2 {
		for r := range m {
			if r&step != 0 {
				continue
			}
			a, b := &v[r], &v[r+step]
			sLo, sHi := free[0], free[1]
			free = free[2:]
			f.w(fadd4s(sLo, a.lo, b.lo))
			f.w(fadd4s(sHi, a.hi, b.hi))
			f.w(fsub4s(b.lo, a.lo, b.lo))
			f.w(fsub4s(b.hi, a.hi, b.hi))
			free = append(free, a.lo, a.hi)
			a.lo, a.hi = sLo, sHi
		}
	}
	for r, p := range v {
		f.op("VST1.P [V%d.S4], 16(%s)", p.lo, ptr[r])
		f.op("VST1.P [V%d.S4], 16(%s)", p.hi, ptr[r])
	}
	f.op("SUBS $8, R4, R4")
	f.op("BNE %s_j", l)
	f.op("ADD R3, R0, R0")
	f.op("B %s_blk", l)
	f.label(l + "_done")
	f.op("RET")
}

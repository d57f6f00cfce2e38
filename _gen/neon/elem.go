package main

// The element-wise kernels walk the first len&^7 elements of their input
// eight at a time (the Go wrappers finish the tail). Each is bit-identical
// to its generic twin: one rounding per element where the twin has one,
// and sums only where the twin's order is reproduced exactly.

// elementwise emits every element-wise kernel.
func elementwise(f *file) {
	maxKernel(f)
	maxAbsBits(f)
	addF64(f)
	scale(f)
	fill(f)
	sumSquares(f)
	encodeF16(f)
	roundF16(f)
	for bits := 1; bits <= 4; bits++ {
		quantizePack(f, bits)
	}
	fwhtFirst8(f)
	for levels := 1; levels <= 3; levels++ {
		fwhtPass(f, levels)
	}
}

// loadLen8 sets R<reg> to len(x)&^7, the elements the kernel covers.
func loadLen8(f *file, x, reg string) {
	f.op("MOVD %s, %s", f.arg(x+"_len"), reg)
	f.op("AND $-8, %s, %s", reg, reg)
}

// loop8 emits a loop that runs body once per eight elements while the
// count in R<count> lasts, then done.
func loop8(f *file, name, count string, body, done func()) {
	f.label(name + "_loop")
	f.op("CBZ %s, %s_done", count, name)
	body()
	f.op("SUB $8, %s, %s", count, count)
	f.op("B %s_loop", name)
	f.label(name + "_done")
	done()
	f.op("RET")
}

func maxKernel(f *file) {
	const name = "maxNEON"
	f.text(name, "x []float32", "float32",
		name+" is the largest of the first len(x)&^7 elements of x (len(x) ≥ 8; no NaN).")
	f.op("MOVD %s, R0", f.arg("x_base"))
	loadLen8(f, "x", "R1")
	f.op("VLD1.P 32(R0), [V0.S4, V1.S4]")
	f.op("SUB $8, R1, R1")
	loop8(f, "max", "R1", func() {
		f.op("VLD1.P 32(R0), [V2.S4, V3.S4]")
		f.w(fmax4s(0, 0, 2))
		f.w(fmax4s(1, 1, 3))
	}, func() {
		f.w(fmax4s(0, 0, 1))
		f.w(fmaxvS(0, 0))
		f.op("FMOVS F0, %s", f.arg("ret"))
	})
}

func maxAbsBits(f *file) {
	const name = "maxAbsBitsNEON"
	f.text(name, "x []float32", "uint32",
		name+" is maxAbsBitsGeneric over the first len(x)&^7 elements (len(x) ≥ 8):",
		"the sign bits cleared, the rest compared as unsigned integers.")
	f.op("MOVD %s, R0", f.arg("x_base"))
	loadLen8(f, "x", "R1")
	dupConst(f, 7, 0x7fffffff)
	zero(f, 0, 1)
	loop8(f, "maxabs", "R1", func() {
		f.op("VLD1.P 32(R0), [V2.S4, V3.S4]")
		f.op("VAND V7.B16, V2.B16, V2.B16")
		f.op("VAND V7.B16, V3.B16, V3.B16")
		f.w(umax4s(0, 0, 2))
		f.w(umax4s(1, 1, 3))
	}, func() {
		f.w(umax4s(0, 0, 1))
		f.w(umaxvS(0, 0))
		f.op("FMOVS F0, %s", f.arg("ret"))
	})
}

func addF64(f *file) {
	const name = "addF64NEON"
	f.text(name, "acc []float64, x []float32", "",
		name+" adds the first len(x)&^7 elements of x, widened (exactly), into acc:",
		"one float64 add per element.")
	f.op("MOVD %s, R0", f.arg("acc_base"))
	f.op("MOVD %s, R1", f.arg("x_base"))
	loadLen8(f, "x", "R2")
	loop8(f, "addf64", "R2", func() {
		f.op("VLD1.P 32(R1), [V0.S4, V1.S4]")
		f.op("VLD1 (R0), [V4.D2, V5.D2, V6.D2, V7.D2]")
		f.w(fcvtlD(2, 0))
		f.w(fcvtl2D(3, 0))
		f.w(fcvtlD(16, 1))
		f.w(fcvtl2D(17, 1))
		f.w(fadd2d(4, 4, 2))
		f.w(fadd2d(5, 5, 3))
		f.w(fadd2d(6, 6, 16))
		f.w(fadd2d(7, 7, 17))
		f.op("VST1.P [V4.D2, V5.D2, V6.D2, V7.D2], 64(R0)")
	}, func() {})
}

func scale(f *file) {
	broadcastKernel(f, "scale", "multiplies the first len(x)&^7 elements of x by k, one rounding each.", func() {
		f.op("VLD1 (R0), [V0.S4, V1.S4]")
		f.w(fmul4s(0, 0, 16))
		f.w(fmul4s(1, 1, 16))
		f.op("VST1.P [V0.S4, V1.S4], 32(R0)")
	})
}

// fill is fillAVX2: FillRows' row fill, 32 bytes a store.
func fill(f *file) {
	broadcastKernel(f, "fill", "sets the first len(x)&^7 elements of x to k.", func() {
		f.op("VST1.P [V16.S4, V17.S4], 32(R0)")
	})
}

// broadcastKernel emits <name>NEON(x []float32, k float32): k in every lane
// of V16 and V17, then body on each group of 8 elements at R0.
func broadcastKernel(f *file, name, doc string, body func()) {
	f.text(name+"NEON", "x []float32, k float32", "", name+"NEON "+doc)
	f.op("MOVD %s, R0", f.arg("x_base"))
	loadLen8(f, "x", "R1")
	f.op("FMOVS %s, F16", f.arg("k"))
	f.op("VDUP V16.S[0], V16.S4")
	f.op("VMOV V16.B16, V17.B16")
	loop8(f, name, "R1", body, func() {})
}

// sumSquares keeps sumSquaresGeneric's eight partial sums s0…s7 as the
// lanes of V20 (s0, s1), V21 (s2, s3), V22 (s4, s5) and V23 (s6, s7).
// Squares of float32 are exact in float64, so FMLA rounds each step as
// the twin's multiply-then-add does.
func sumSquares(f *file) {
	const name = "sumSquaresNEON"
	f.text(name, "x []float32", "float64",
		name+" is sumSquaresGeneric's eight partial sums over the first len(x)&^7",
		"elements, combined in the same order: bit-identical.")
	f.op("MOVD %s, R0", f.arg("x_base"))
	loadLen8(f, "x", "R1")
	zero(f, 20, 21, 22, 23)
	loop8(f, "sumsq", "R1", func() {
		f.op("VLD1.P 32(R0), [V0.S4, V1.S4]")
		f.w(fcvtlD(2, 0))
		f.w(fcvtl2D(3, 0))
		f.w(fcvtlD(4, 1))
		f.w(fcvtl2D(5, 1))
		for k := range vreg(4) {
			f.w(fmla2d(20+k, 2+k, 2+k))
		}
	}, func() {
		f.comment("((s0+s4) + (s2+s6)) + ((s1+s5) + (s3+s7))")
		f.w(fadd2d(20, 20, 22))
		f.w(fadd2d(21, 21, 23))
		f.w(fadd2d(20, 20, 21))
		f.w(faddpD(20, 20))
		f.op("FMOVD F20, %s", f.arg("ret"))
	})
}

func encodeF16(f *file) {
	const name = "encodeF16NEON"
	f.text(name, "dst []byte, src []float32", "",
		name+" is encodeF16Generic on the first len(src)&^7 values (FCVTN, ties to even).")
	f.op("MOVD %s, R0", f.arg("dst_base"))
	f.op("MOVD %s, R1", f.arg("src_base"))
	loadLen8(f, "src", "R2")
	loop8(f, "encf16", "R2", func() {
		f.op("VLD1.P 32(R1), [V0.S4, V1.S4]")
		f.w(fcvtn(2, 0))
		f.w(fcvtn2(2, 1))
		f.op("VST1.P [V2.H8], 16(R0)")
	}, func() {})
}

func roundF16(f *file) {
	const name = "roundF16NEON"
	f.text(name, "dst, src []float32", "",
		name+" is roundF16Generic on the first len(src)&^7 values.")
	f.op("MOVD %s, R0", f.arg("dst_base"))
	f.op("MOVD %s, R1", f.arg("src_base"))
	loadLen8(f, "src", "R2")
	loop8(f, "roundf16", "R2", func() {
		f.op("VLD1.P 32(R1), [V0.S4, V1.S4]")
		f.w(fcvtn(2, 0))
		f.w(fcvtn2(2, 1))
		f.w(fcvtl(3, 2))
		f.w(fcvtl2(4, 2))
		f.op("VST1.P [V3.S4, V4.S4], 32(R0)")
	}, func() {})
}

//go:build !purego && !noasm

package simd

import "github.com/klauspost/cpuid/v2"

func init() {
	if !cpu.Supports(cpuid.AVX2, cpuid.FMA3, cpuid.F16C) {
		return
	}
	register(AVX2, &kernels{
		decodeSmall:  decodeSmallAVX2,
		decode4:      decode4AVX2,
		decode8:      decode8AVX2,
		decodeF16:    decodeF16AVX2,
		dot1:         dot1AVX2,
		dot4:         dot4AVX2,
		axpy1:        axpy1AVX2,
		axpy4:        axpy4AVX2,
		dot1F16:      dot1F16AVX2,
		dot4F16:      dot4F16AVX2,
		axpy1F16:     axpy1F16AVX2,
		axpy4F16:     axpy4F16AVX2,
		plainWeights: true,
		dotCodes: [2][2]fusedKernel{
			{dotCodesSmall1AVX2, dotCodes4Kernel(dotCodesSmall4AVX512, dotCodesSmall4AVX2)},
			{dotCodesB41AVX2, dotCodes4Kernel(dotCodesB44AVX512, dotCodesB44AVX2)}},
		axpyCodes: [2][2]fusedKernel{
			{axpyCodes1Kernel(axpyCodesSmall1AVX512, axpyCodesSmall1AVX2), axpyCodesSmall4AVX2},
			{axpyCodes1Kernel(axpyCodesB41AVX512, axpyCodesB41AVX2), axpyCodesB44AVX2}},
		dotQ8_0:        [2]quantDotKernel{dot1Q8_0AVX2, dot4Q8_0AVX2},
		dotQ4_0:        [2]quantDotKernel{dot1Q4_0AVX2, dot4Q4_0AVX2},
		dotQ8_0Q8:      int8Kernels()[0],
		dotQ4_0Q8:      int8Kernels()[1],
		quantizeQ8:     quantizeQ8AVX2,
		dotCodesQ8:     codes8Kernels(),
		axpyCodesQ8:    values8Kernels(),
		dotCodesQ8Wide: keys8Kernels(),
		dotCodesQ8Pair: keys8PairKernels(),
		weightsQ8:      weightsQ8Kernel(),
		weightsQ8Pair:  weightsQ8PairKernel(),
		weightsQ8Rows:  weightsQ8RowsKernels(),
		decode8Planes:  decode8PlanesKernel(),
		fwhtFirst8:     fwhtFirst8Kernel(),
		fwhtRegs:       fwhtRegsKernel(),
		fwhtPass:       [4]func(x []float32, h int){1: fwhtPass2AVX2, 2: fwhtPass4AVX2, 3: fwhtPass8AVX2},
		scale:          scaleAVX2,
		fill:           fillAVX2,
		sumSquares:     sumSquaresAVX2,
		encodeF16:      encodeF16AVX2,
		roundF16:       roundF16AVX2,
		prefetch:       prefetchAVX2,
		max:            maxKernel(),
		maxAbsBits:     maxAbsBitsAVX2,
		addF64:         addF64AVX2,
		sub:            subAVX2,
		quantize:       [5]func(dst []byte, x []float32, bounds *[15][8]float32){1: quantizePack1AVX2, 2: quantizePack2AVX2, 3: quantizePack3AVX2, 4: quantizePack4AVX2},
		expSum:         expSumKernel(),
	})
}

// The int8-activation kernels (Q8_0, Q4_0; one and four rows): with
// AVX512-VNNI's VPDPBUSD on ymm registers (EVEX, so AVX512VL too) where
// the CPU has it, one instruction for VPMADDUBSW and VPMADDWD; the same
// integer sums, so the same bits.
var (
	int8AVX2 = [2][2]quantDot8Kernel{{dot1Q8_0Q8AVX2, dot4Q8_0Q8AVX2}, {dot1Q4_0Q8AVX2, dot4Q4_0Q8AVX2}}
	int8VNNI = [2][2]quantDot8Kernel{{dot1Q8_0Q8VNNI, dot4Q8_0Q8VNNI}, {dot1Q4_0Q8VNNI, dot4Q4_0Q8VNNI}}
)

// The integer key-scoring kernels (3 and 4 bits), VNNI where available
// as for the int8-activation kernels.
var (
	codes8AVX2 = [2]dotCodes8Kernel{dotCodesQ8B3x4AVX2, dotCodesQ8B4x4AVX2}
	codes8VNNI = [2]dotCodes8Kernel{dotCodesQ8B3x4VNNI, dotCodesQ8B4x4VNNI}
)

func codes8Kernels() [2]dotCodes8Kernel {
	if hasVNNI() {
		return codes8VNNI
	}
	return codes8AVX2
}

// The AVX-512 integer kernels (keys and values) and their weight quantizer
// need VBMI's byte permutes and multishift, VNNI's VPDPBUSD on zmm, BW's
// byte masks, DQ's logical operations on zmm (the weights' magnitudes), and
// BMI2's SHLX for a tail mask.
func hasValues8() bool {
	return cpu.Supports(cpuid.AVX512F, cpuid.AVX512BW, cpuid.AVX512DQ, cpuid.AVX512VL, cpuid.AVX512VBMI, cpuid.AVX512VNNI, cpuid.BMI2)
}

// values8Kernels are the integer value kernels for 3- and 4-bit codes:
// AVX-512 VBMI, else AVX2 (3 bits: with PDEP where it is fast).
func values8Kernels() [2][3]axpyCodes8Kernel {
	switch {
	case hasValues8():
		return [2][3]axpyCodes8Kernel{
			{axpyCodesQ8B3x1VBMI, axpyCodesQ8B3x2VBMI, axpyCodesQ8B3x4VBMI},
			{axpyCodesQ8B4x1VBMI, axpyCodesQ8B4x2VBMI, axpyCodesQ8B4x4VBMI}}
	case fastPDEP():
		return values8BMI2
	}
	return values8AVX2
}

var (
	values8AVX2 = [2][3]axpyCodes8Kernel{
		{axpyCodesQ8B3x1AVX2, axpyCodesQ8B3x2AVX2, axpyCodesQ8B3x4AVX2},
		{axpyCodesQ8B4x1AVX2, axpyCodesQ8B4x2AVX2, axpyCodesQ8B4x4AVX2}}
	values8BMI2 = [2][3]axpyCodes8Kernel{
		{axpyCodesQ8B3x1BMI2, axpyCodesQ8B3x2BMI2, axpyCodesQ8B3x4BMI2},
		values8AVX2[1]}
)

// fastPDEP reports whether the CPU has BMI2's PDEP at one a cycle: every
// Intel CPU with it, AMD (and Hygon) from Zen 3 on (family 0x19); before,
// AMD microcodes it at hundreds of cycles.
func fastPDEP() bool {
	amd := cpu.VendorID == cpuid.AMD || cpu.VendorID == cpuid.Hygon
	return cpu.Supports(cpuid.BMI2) && (!amd || cpu.Family >= 0x19)
}

// weightsQ8RowsKernels are the AVX2 weight quantizers, where the AVX-512 one
// does not run.
func weightsQ8RowsKernels() [4]func(dst []int8, sums *[4]int32, amax *[4]float32, w []float32, wStride int, codes []byte, stride, normOff, m int) {
	if hasValues8() {
		return [4]func(dst []int8, sums *[4]int32, amax *[4]float32, w []float32, wStride int, codes []byte, stride, normOff, m int){}
	}
	return weightsQ8AVX2Rows
}

var weightsQ8AVX2Rows = [4]func(dst []int8, sums *[4]int32, amax *[4]float32, w []float32, wStride int, codes []byte, stride, normOff, m int){
	weightsQ8AVX2x1, weightsQ8AVX2x2, weightsQ8AVX2x3, weightsQ8AVX2x4}

func keys8Kernels() [3][3]dotCodes8WideKernel {
	if hasValues8() {
		return [3][3]dotCodes8WideKernel{
			{dotCodesQ8B3x1VBMI, dotCodesQ8B3x2VBMI, dotCodesQ8B3x4VBMI},
			{dotCodesQ8B4x1VBMI, dotCodesQ8B4x2VBMI, dotCodesQ8B4x4VBMI},
			{dotCodesQ8B8x1VBMI, dotCodesQ8B8x2VBMI, dotCodesQ8B8x4VBMI}}
	}
	return [3][3]dotCodes8WideKernel{}
}

func keys8PairKernels() [2][2]dotCodes8PairKernel {
	if hasValues8() {
		return [2][2]dotCodes8PairKernel{{nil, dotCodesQ8P34VBMI}, {dotCodesQ8P43VBMI, nil}}
	}
	return [2][2]dotCodes8PairKernel{}
}

// expSumKernel is the AVX2 exp, sixteen elements at a time where the CPU
// has AVX-512F (its rounding, scaling and masks), then eight, then one.
func expSumKernel() func(x []float32, m float32) float32 {
	avx2 := func(x []float32, m float32) float32 {
		n := len(x) &^ 7
		s := expSumAVX2(x, m)
		return s + expSumGeneric(x[n:], m)
	}
	if !cpu.Supports(cpuid.AVX512F) {
		return avx2
	}
	return func(x []float32, m float32) float32 {
		n := len(x) &^ 15
		s := expSumAVX512(x, m)
		return s + avx2(x[n:], m)
	}
}

// fwhtFirst8Kernel is fwhtFirst8AVX512 where the CPU has AVX-512F: the
// same butterflies, so the same bits.
func fwhtFirst8Kernel() func(dst, src, signs []float32) {
	if cpu.Supports(cpuid.AVX512F) {
		return fwhtFirst8AVX512
	}
	return fwhtFirst8AVX2
}

// fwhtRegsKernel is fwhtRegsAVX512 where the CPU has AVX-512F, else nil
// (fwhtFirst8 and the passes).
func fwhtRegsKernel() func(dst, src, signs []float32) {
	if cpu.Supports(cpuid.AVX512F) {
		return fwhtRegsAVX512
	}
	return nil
}

// dotCodes4Kernel is the four-row fused key kernel: zmm (sixteen codes at
// a time, the same bits) where the CPU has AVX-512F and the codes' norms
// can be gathered (normGathers), else avx2.
func dotCodes4Kernel(zmm, avx2 fusedKernel) fusedKernel {
	if !cpu.Supports(cpuid.AVX512F) {
		return avx2
	}
	return func(out []float32, outStride int, q []float32, qStride int, tab *[16]float32, sh *[8]uint32, bits int, codes []byte, stride, idxOff, normOff, n, d8 int, ahead []byte) {
		k := avx2
		if fusedZmm && normGathers(stride, normOff) {
			k = zmm
		}
		k(out, outStride, q, qStride, tab, sh, bits, codes, stride, idxOff, normOff, n, d8, ahead)
	}
}

// axpyCodes1Kernel is the one-row fused value kernel: zmm on the
// coordinates in whole groups of 16, avx2 on a last group of 8, where the
// CPU has AVX-512F (the same bits), else avx2.
func axpyCodes1Kernel(zmm, avx2 fusedKernel) fusedKernel {
	if !cpu.Supports(cpuid.AVX512F) {
		return avx2
	}
	return func(acc []float32, accStride int, w []float32, wStride int, tab *[16]float32, sh *[8]uint32, bits int, codes []byte, stride, idxOff, normOff, n, d8 int, ahead []byte) {
		if d16 := d8 &^ 15; fusedZmm && d16 > 0 {
			zmm(acc, accStride, w, wStride, tab, sh, bits, codes, stride, idxOff, normOff, n, d16, ahead)
			if d8 == d16 {
				return
			}
			acc, idxOff, d8, ahead = acc[d16:], idxOff+d16/8*bits, d8-d16, nil
		}
		avx2(acc, accStride, w, wStride, tab, sh, bits, codes, stride, idxOff, normOff, n, d8, ahead)
	}
}

// fusedZmm says whether the fused code kernels take their AVX-512 forms:
// where the CPU has AVX-512F (a variable for the tests, which compare them
// with the AVX2 forms).
var fusedZmm = cpu.Supports(cpuid.AVX512F)

// maxKernel is maxAVX512 where the CPU has AVX-512F: the same maximum.
func maxKernel() func(x []float32) float32 {
	if cpu.Supports(cpuid.AVX512F) {
		return maxAVX512
	}
	return maxAVX2
}

// decode8PlanesKernel needs VBMI's byte permutes and BW's byte masks.
func decode8PlanesKernel() func(dst []float32, planes *[4][256]uint8, codes []byte, stride, idxOff, normOff, n, dstStride, d64 int, ahead []byte) {
	if cpu.Supports(cpuid.AVX512F, cpuid.AVX512BW, cpuid.AVX512VBMI) {
		return decode8VBMI
	}
	return nil
}

func weightsQ8Kernel() func(dst []int8, sums *[4]int32, amax *[4]float32, w []float32, wStride int, valid *[4]uint64, codes []byte, stride, normOff, m int) {
	if hasValues8() {
		return weightsQ8AVX512
	}
	return nil
}

func weightsQ8PairKernel() func(dsta, dstb []int8, sumsa, sumsb *[4]int32, amaxa, amaxb *[4]float32, w []float32, wStride int, valid *[4]uint64, codes []byte, stride, norma, normb, m int) {
	if hasValues8() {
		return weightsQ8PairAVX512
	}
	return nil
}

func hasVNNI() bool { return cpu.Supports(cpuid.AVX512VNNI, cpuid.AVX512VL) }

func int8Kernels() [2][2]quantDot8Kernel {
	if hasVNNI() {
		return int8VNNI
	}
	return int8AVX2
}

// axpyCodesWn calls the laid-out-weight kernel for cb's width directly
// (not through a function value), so its go:noescape keeps the caller's
// weight buffer on its stack.
//
// Where the CPU has AVX-512F, the 16-lane kernel takes the coordinates in
// whole groups of 16 and the 8-lane one a last group of 8: the same bits.
func axpyCodesWn(acc []float32, accStride int, wn []float32, tab *[16]float32, sh *[8]uint32, bits int, codes []byte, stride, idxOff, n, d8 int, ahead []byte) {
	if d16 := d8 &^ 15; fusedZmm && d16 > 0 {
		if bits == 4 {
			axpyCodesWnB4AVX512(acc, accStride, wn, tab, sh, bits, codes, stride, idxOff, n, d16, ahead)
		} else {
			axpyCodesWnSmallAVX512(acc, accStride, wn, tab, sh, bits, codes, stride, idxOff, n, d16, ahead)
		}
		if d8 == d16 {
			return
		}
		acc, idxOff, d8, ahead = acc[d16:], idxOff+d16/8*bits, d8-d16, nil
	}
	if bits == 4 {
		axpyCodesWnB4AVX2(acc, accStride, wn, tab, sh, bits, codes, stride, idxOff, n, d8, ahead)
		return
	}
	axpyCodesWnSmallAVX2(acc, accStride, wn, tab, sh, bits, codes, stride, idxOff, n, d8, ahead)
}

// wnWeightsNormsAVX512 writes whole groups of sixteen tokens into the
// bcTokens-token layout: this fails to compile unless bcTokens is a
// multiple of 16.
var _ = [1]struct{}{}[bcTokens%16]

// plainWeights writes the weights of four accumulator rows for tokens
// t < m ≤ bcTokens, w[i*wStride+t] times the fp16 norm of code t (the one
// float32 product the per-row kernels and the generic twin form too), to
// wn[t*4+i], for axpyCodesWn to broadcast as it loads them.
func plainWeights(wn *[bcTokens * 4]float32, w []float32, wStride, m int, codes []byte, stride, normOff int) {
	check(m <= bcTokens && len(w) >= 3*wStride+m && len(codes) >= (m-1)*stride+normOff+2, "plainWeights: bad lengths")
	if fusedZmm && normGathers(stride, normOff) {
		wnWeightsNormsAVX512(wn[:], w, wStride, m, codes, stride, normOff) // whole groups of 16: see the assertion above
		return
	}
	wnWeightsNormsAVX2(wn[:], w, wStride, m, codes, stride, normOff)
}

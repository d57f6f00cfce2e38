//go:build !purego && !noasm

package simd

// Advanced SIMD is mandatory in ARMv8-A, and every instruction the NEON
// kernels use (FCVTL's half-to-single widening included) is in its base
// set, so the level registers unconditionally: there is no feature to ask
// cpuid about.
func init() {
	register(NEON, &kernels{
		decodeSmall: decodeSmallNEON,
		decode4:     decode4NEON,
		decode8:     decode8NEON,
		decodeF16:   decodeF16NEON,
		dot1:        dot1NEON,
		dot4:        dot4NEON,
		axpy1:       axpy1NEON,
		axpy4:       axpy4NEON,
		dot1F16:     dot1F16NEON,
		dot4F16:     dot4F16NEON,
		axpy1F16:    axpy1F16NEON,
		axpy4F16:    axpy4F16NEON,
		dotCodes: [2][2]fusedKernel{
			{dotCodesSmall1NEON, dotCodesSmall4NEON}, {dotCodesB41NEON, dotCodesB44NEON}},
		axpyCodes: [2][2]fusedKernel{
			{axpyCodesSmall1NEON, axpyCodesSmall4NEON}, {axpyCodesB41NEON, axpyCodesB44NEON}},
		scale:      scaleNEON,
		fill:       fillNEON,
		sumSquares: sumSquaresNEON,
		encodeF16:  encodeF16NEON,
		roundF16:   roundF16NEON,
		max:        maxNEON,
		maxAbsBits: maxAbsBitsNEON,
		addF64:     addF64NEON,
		quantize: [5]func(dst []byte, x []float32, bounds *[15][8]float32){
			1: quantizePack1NEON, 2: quantizePack2NEON, 3: quantizePack3NEON, 4: quantizePack4NEON},
		dotQ8_0:    [2]quantDotKernel{dot1Q8_0NEON, dot4Q8_0NEON},
		dotQ4_0:    [2]quantDotKernel{dot1Q4_0NEON, dot4Q4_0NEON},
		dotQ8_0Q8:  [2]quantDot8Kernel{dot1Q8_0Q8NEON, dot4Q8_0Q8NEON},
		dotQ4_0Q8:  [2]quantDot8Kernel{dot1Q4_0Q8NEON, dot4Q4_0Q8NEON},
		fwhtFirst8: fwhtFirst8NEON,
		fwhtPass:   [4]func(x []float32, h int){1: fwhtPass2NEON, 2: fwhtPass4NEON, 3: fwhtPass8NEON},
		expSum: func(x []float32, m float32) float32 {
			n := len(x) &^ 7
			s := expSumNEON(x, m)
			return s + expSumGeneric(x[n:], m)
		},
	})
}

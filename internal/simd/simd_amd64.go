//go:build !purego && !noasm

package simd

import "github.com/klauspost/cpuid/v2"

func init() {
	if !cpuid.CPU.Supports(cpuid.AVX2, cpuid.FMA3, cpuid.F16C) {
		return
	}
	register(AVX2, &kernels{
		decodeSmall: decodeSmallAVX2,
		decode4:     decode4AVX2,
		decode8:     decode8AVX2,
		decodeF16:   decodeF16AVX2,
		dot1:        dot1AVX2,
		dot4:        dot4AVX2,
		axpy1:       axpy1AVX2,
		axpy4:       axpy4AVX2,
		expSum: func(x []float32, m float32) float32 {
			n := len(x) &^ 7
			s := expSumAVX2(x, m)
			return s + expSumGeneric(x[n:], m)
		},
	})
}

//go:build !purego && !noasm

package ann

import "github.com/klauspost/cpuid/v2"

func init() {
	if cpuid.CPU.Supports(cpuid.AVX2) {
		fastScan4, FastScanKernel = fastScan4AVX2, "avx2"
	}
}

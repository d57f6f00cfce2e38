//go:build !purego && !noasm

package simd

import "testing"

// TestDotQuant8PlainAVX2 runs the int8 kernel tests on the AVX2 kernels
// where the CPU would otherwise use the VNNI ones (so both are checked on
// a VNNI machine).
func TestDotQuant8PlainAVX2(t *testing.T) {
	k, ok := impls[AVX2]
	if !ok {
		t.Skip("no AVX2 on this CPU")
	}
	if !hasVNNI() {
		t.Skip("no AVX512-VNNI: the AVX2 int8 kernels are the active ones, checked by TestDotQuant8")
	}
	saved := [2][2]quantDot8Kernel{k.dotQ8_0Q8, k.dotQ4_0Q8}
	k.dotQ8_0Q8, k.dotQ4_0Q8 = int8AVX2[0], int8AVX2[1]
	defer func() { k.dotQ8_0Q8, k.dotQ4_0Q8 = saved[0], saved[1] }()
	t.Run("DotQuant8", TestDotQuant8)
	t.Run("BatchInvariant", TestDotQuant8BatchInvariant)
	t.Run("Saturation", TestDotQuant8Saturation)
}

// TestDotCodesQ8PlainAVX2 does the same for the integer key-scoring kernels.
func TestDotCodesQ8PlainAVX2(t *testing.T) {
	k, ok := impls[AVX2]
	if !ok {
		t.Skip("no AVX2 on this CPU")
	}
	if !hasVNNI() {
		t.Skip("no AVX512-VNNI: the AVX2 integer code kernels are the active ones, checked by TestDotCodesQ8*")
	}
	saved, savedWide := k.dotCodesQ8, k.dotCodesQ8Wide
	k.dotCodesQ8, k.dotCodesQ8Wide = codes8AVX2, [3][3]dotCodes8WideKernel{}
	defer func() { k.dotCodesQ8, k.dotCodesQ8Wide = saved, savedWide }()
	t.Run("SameOnEveryLevel", TestDotCodesQ8IsTheSameOnEveryLevel)
	t.Run("WithinBound", TestDotCodesQ8WithinBound)
	t.Run("Extremes", TestDotCodesQ8Extremes)
}

// TestDotCodesQ8NarrowVNNI runs them on the ymm VNNI kernels where the CPU
// would otherwise use the AVX-512 ones.
func TestDotCodesQ8NarrowVNNI(t *testing.T) {
	k, ok := impls[AVX2]
	if !ok {
		t.Skip("no AVX2 on this CPU")
	}
	if !hasValues8() {
		t.Skip("no AVX-512 VBMI/VNNI: the ymm integer code kernels are the active ones, checked by TestDotCodesQ8*")
	}
	saved := k.dotCodesQ8Wide
	k.dotCodesQ8Wide = [3][3]dotCodes8WideKernel{}
	defer func() { k.dotCodesQ8Wide = saved }()
	t.Run("SameOnEveryLevel", TestDotCodesQ8IsTheSameOnEveryLevel)
	t.Run("WithinBound", TestDotCodesQ8WithinBound)
	t.Run("Extremes", TestDotCodesQ8Extremes)
}

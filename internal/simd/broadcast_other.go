//go:build !amd64 || purego || noasm

package simd

// Levels other than AVX2 have no laid-out-weight kernels (their kernels'
// plainWeights flag is false), so these are never called.

func axpyCodesWn(acc []float32, accStride int, wn []float32, tab *[16]float32, sh *[8]uint32, bits int, codes []byte, stride, idxOff, n, d8 int, ahead []byte) {
	panic("simd: no laid-out-weight kernel on this level")
}

func plainWeights(wn *[bcTokens * 4]float32, w []float32, wStride, m int, codes []byte, stride, normOff int) {
	panic("simd: no laid-out-weight kernel on this level")
}

//go:build !amd64 || purego || noasm

package simd

// Levels other than AVX2 have no broadcast-weight kernel (their kernels'
// broadcast4 flag is false), so these are never called.

func axpyCodesBc(acc []float32, accStride int, wb []float32, tab *[16]float32, sh *[8]uint32, bits int, codes []byte, stride, idxOff, n, d8 int) {
	panic("simd: no broadcast-weight kernel on this level")
}

func broadcastWeights(wb *[bcTokens * 32]float32, w []float32, wStride, m int, codes []byte, stride, normOff int) {
	panic("simd: no broadcast-weight kernel on this level")
}

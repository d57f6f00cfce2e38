// Package half converts between float32 and the 16-bit IEEE binary16 (fp16)
// and bfloat16 (bf16) formats, with round-to-nearest-even, subnormals, ±Inf
// and NaN handled. These are the pure-Go reference conversions; SIMD kernels
// that fuse conversion into their loads are tested against them.
package half

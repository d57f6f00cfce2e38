// Package simd holds the vector kernels of the attention and rotation hot
// paths, each with a pure-Go twin that is the oracle the assembly is tested
// against.
//
// The kernels work on rows of float32: packed quantizer codes are first
// decoded into a small block of rows (norm × centroid, in the rotated
// domain), then scored against queries or accumulated with softmax weights.
// Decoding a block that stays in L1 and running plain fp32 dot/axpy kernels
// on it keeps one kernel per operation for any GQA group size, and lets the
// fp16 and fp32 baselines share the same dot/axpy code.
//
// Weight matrices in ggml's Q8_0 and Q4_0 block formats are the exception:
// DotQ8_0 and DotQ4_0 read their blocks directly (fused: each block is
// unpacked to float32 in registers, its 32 products summed, then scaled
// once), since expanding a matrix that is streamed once per token costs
// more than the dot itself. The AVX2+FMA+F16C and NEON kernels run the
// same operations in the same order and give the same bits; other builds
// run the generic twins.
//
// Dispatch is by CPU feature, held in a package variable so tests can force
// every level on one machine (Use). Assembly builds with the tags
// !purego && !noasm; other builds use the generic twins.
//
// Contracts are checked with panics, not errors: a wrong length here is a
// programmer error in this module, never a consequence of caller data.
package simd

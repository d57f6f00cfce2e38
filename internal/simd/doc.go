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
// Dispatch is by CPU feature, held in a package variable so tests can force
// every level on one machine (Use). Assembly builds with the tags
// !purego && !noasm; other builds use the generic twins.
//
// Contracts are checked with panics, not errors: a wrong length here is a
// programmer error in this module, never a consequence of caller data.
package simd

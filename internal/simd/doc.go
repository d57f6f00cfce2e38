// Package simd holds the vector kernels of the attention and rotation hot
// paths, each with a pure-Go twin that is the oracle the assembly is tested
// against.
//
// The kernels work on rows: fp32 and fp16 rows (the baselines' dot/axpy
// kernels, four query rows per pass), and packed quantizer codes of up to 4
// bits, which the fused kernels (DotCodes, AxpyCodes) unpack to norm ×
// centroid in registers as they score or accumulate them; where the CPU has
// AVX-512F their four-row key kernels take a token per lane, sixteen codes
// at a time, and the value kernels sixteen coordinates a vector, with the
// AVX2 kernels' operations in the AVX2 kernels' order, so the same bits
// (fusedZmm); AxpyCodesPair adds a code of two parts a piece of codes at a
// time. The whole FWHT of up to 256 elements runs in AVX-512
// registers too. 8-bit codes are
// decoded into a small block of rows first (DecodeCodes). The integer
// kernels (DotCodesQ8, AxpyCodesQ8, and their Pair forms for a code of two
// parts) sum exact int8 × 7-bit-table products instead, within stated
// bounds of the float kernels and with the same bits on every level; on
// AVX-512 (VBMI, VNNI) they unpack codes with byte permutes and multiply
// with VPDPBUSD: values four tokens at a time, 3- and 4-bit keys sixteen
// tokens at a time, a token per doubleword loaded by gathers; on AVX2 they
// use VPSHUFB lookups and VPMADDUBSW/VPMADDWD. ExpSum is the
// streaming softmax's exp.
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
// every level on one machine (Use); on amd64 the environment variable
// TQ_CPU_DISABLE (cpuid feature names, or AVX512 for all of AVX-512) hides
// features from the choice, so that one machine runs what a CPU without
// them runs. Assembly builds with the tags
// !purego && !noasm; other builds use the generic twins.
//
// Contracts are checked with panics, not errors: a wrong length here is a
// programmer error in this module, never a consequence of caller data.
package simd

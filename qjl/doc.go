// Package qjl is the 1-bit quantized Johnson–Lindenstrauss sketch: a vector k
// is stored as the m sign bits of S·k (plus its norm, kept by the caller),
// and an inner product with a query q is estimated as
//
//	⟨q, k⟩ ≈ √(π/2)/m · ‖k‖ · ⟨S·q, sign(S·k)⟩,
//
// which is unbiased when S has i.i.d. N(0,1) entries, with variance exactly
// ((π/2)‖q‖²‖k‖² − ⟨q,k⟩²)/m. TurboQuant_prod uses it on the residual of the
// MSE quantizer to make inner products unbiased.
//
// # Use
//
//	sk, err := qjl.New(dim, rows, qjl.Gaussian, seed)
//	code := make([]byte, sk.CodeBytes())           // ⌈rows/8⌉ bytes
//	scratch := make([]float32, sk.ScratchLen())    // per goroutine
//	sk.Encode(code, k, scratch)                     // no allocation
//	q := sk.NewQuery()                              // allocate once
//	q.Reset(y)                                      // per query, no allocation
//	est := q.Estimate(code, normK)                  // per code: rows/8 lookups
//
// Reset computes S·y and, for every 8 rows, a 256-entry table of
// Σ ±(S·y)_i over the 256 sign patterns of a code byte, so Dot costs one
// table lookup and add per code byte. Dot is ⟨S·y, sign(S·k)⟩; Estimate
// multiplies by Scale(rows)·‖k‖. A Sketch is immutable and safe for
// concurrent use; a Query may be scored (Dot, Estimate) from several
// goroutines once Reset has returned.
//
// # Code layout
//
// Bit i of a code is 1 iff (S·k)_i ≥ 0 (so a zero projection, −0 included,
// is a 1 bit, and NaN a 0 bit). Bits form one little-endian stream, bit i at
// bit i%8 of byte i/8 — the internal/bitpack order with width 1. The unused
// high bits of the last byte are written as 0 and ignored by Dot.
//
// # Kinds
//
// Gaussian stores S (rows×dim float32) drawn row-major with rng.Norm from
// rng.Derive(seed, 0x716a6c<<32); a projection is rows·dim multiply-adds,
// each product rounded before it is added so codes are identical on every
// platform. Hadamard uses the rows of √P·H_P·D_b, P the next power of two ≥
// dim (x zero-padded), one sign diagonal D_b per block of P rows drawn from
// rng.Derive(seed, 0x716a6c<<32 + 1 + b); entries are ±1, E[SᵀS] = m·I (a
// whole block gives exactly P·I) and a projection costs ⌈rows/P⌉ transforms
// of length P. The stream labels keep a sketch and a hadamard.Rotation built
// from the same seed independent.
//
// With ±1 rows, S·k is only approximately Gaussian, so the Hadamard
// estimator is unbiased only for keys whose energy is spread over many
// coordinates, such as rotated vectors: measured relative bias +0.2% at
// d = 128 and +1.3% at d = 16 for random keys, but a full √(π/2) (+25%) for
// a basis-vector key. Use Gaussian, or rotate first, when keys can be spiky.
package qjl

// Package hadamard provides the fast Walsh–Hadamard transform and the seeded
// randomized Hadamard rotation Π that TurboQuant applies before quantizing: an
// exact orthogonal map of R^d, computed in O(d log d) without allocation, that
// spreads any input's energy evenly over the coordinates so that each
// coordinate follows (nearly) the law a scalar codebook was designed for.
// The same (dim, seed, rounds) give bit-identical results on every platform:
// butterflies are exact adds and subtracts, sign flips are exact, and every
// product is forced to round before it is added (no fused multiply-add).
//
// # Power-of-two dimensions
//
// One round is x → H·D·x, D a seeded random ±1 diagonal and H the normalised
// Walsh–Hadamard matrix. Rounds compose with independent signs (round k draws
// its signs from rng.Derive(seed, k)).
//
// # Other dimensions, without padding
//
// A code must hold exactly b·dim bits, so dim is never padded. For n not a
// power of two, write n = L + r with L the largest power of two below n, head
// A = [0, L) and tail B = [L, n). One round is
//
//	A ← H_L·D_A·A                      (signs over all of A)
//	B ← one round on the r coordinates of B (recursively)
//	(A_j, B_j) ← [c −s; s c]·(A_j, B_j)  for j < r,  c² = r/n, s² = L/n
//	A ← H_L·D'·A                       (fresh signs)
//
// Why it is even: after a sign flip and H_L, each coordinate of A carries on
// average 1/L of A's energy; by induction each of B carries 1/r of B's. For
// a unit vector in A, the rotation leaves s²/L = 1/n in each B_j and
// (r·c²/L + (L−r)/L) = L/n in A, which the final H_L spreads as 1/n per
// coordinate; a unit vector in B symmetrically leaves c²/r = 1/n in each B_j
// and L/n in A. Sign flips make cross terms vanish in expectation, so
//
//	E[y_j²] = ‖x‖²/n   for every input x and every coordinate j,
//
// exactly, after a single round, for every n (TestWorstCaseExpectedEnergyExact
// computes the expectation over all sign patterns exactly: worst relative
// deviation ≤ 5e-16, i.e. float64 rounding, for d = 2, 3, 5, 6, 7, 12, 24,
// 80, 96, 100, 112, 127, 128, 200 and 1 or 2 rounds). The obvious alternative — H_L on [0,L) and
// on [d−L,d) — mixes only through the overlap of the two blocks and needs 3
// rounds at d = 96 or 100, 5 at 112 and about 75 at 127 to reach ±10%. A
// round costs two H_L plus a round on r coordinates: Forward takes about 1.5×
// the time of a padded rotation at d = 100 (vs 128) and 1.3× at d = 1536 (vs
// 2048), and the codes stay exactly b·d bits.
//
// # Rounds
//
// DefaultRounds(dim) is 3 for powers of two and 2 otherwise. One round
// already evens out the energy, but a single round sends a basis vector to a
// vector of equal-magnitude coordinates, which costs a 2-bit scalar
// quantizer 2.2× its design MSE (d = 128). With two rounds every worst-case
// input we tried (basis vectors, a vector spread over the tail block, a basis
// vector plus noise) quantizes within 2% of a random unit vector at d = 100
// and 128, 1–4 bits, with one exception: an exact basis vector at a
// power-of-two d, whose outputs are sums of d terms ±1/d, a lattice. It loses
// 8% at 3 bits and 4% at 4 bits at d = 128, and 24% at 3 bits at d = 64
// (turboquant's TestWorstCaseInputsAreSpreadByTheRotation); a third round
// removes it. Non-power-of-two dims need no third round: the 2×2 rotation's
// irrational coefficients already break the lattice (at d = 100 two rounds
// are within 1% for every input above). The numbers are in
// TestWorstCaseQuantizerMSE. NewRotation takes any count from 1 to 64.
//
// # Cost and numerics
//
// Transforms run unnormalised and the rotation coefficients absorb the scale
// differences between blocks, so a round multiplies the vector by one
// constant and the normalisation is a single multiply per coordinate after
// every second round, by an exact power of two (1/d for a power-of-two d).
// Intermediate values grow by at most d², so inputs above ~1e30 overflow
// float32. The FWHT kernel does the first three levels in registers and the
// rest in radix-8/4/2 sweeps, bit-identical to the textbook radix-2 loop.
// Forward and Inverse accept dst == src; the exact sign tables live in the
// Rotation, so a Rotation is immutable and safe for concurrent use.
package hadamard

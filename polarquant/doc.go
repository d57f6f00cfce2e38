// Package polarquant quantizes an already-rotated vector in polar form: pairs
// of coordinates become a radius and an angle, pairs of radii become a radius
// and an angle again, four levels deep, so that a block of 16 coordinates is
// one fp16 radius and 15 angles. After a random rotation the angles are
// nearly independent and have known densities — uniform on [0, 2π) at level
// 1 and ∝ sin^(2^(ℓ−1)−1)(2ψ) on [0, π/2] at levels ℓ = 2, 3, 4 — so fixed
// Lloyd–Max codebooks fit every vector with no per-vector scale: 4 bits for
// level-1 angles, 2 bits for the rest, 3.875 bits per coordinate in all.
//
// The random rotation itself is the caller's job (package turboquant); this
// package sees only the rotated vector.
package polarquant

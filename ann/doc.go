// Package ann is TurboQuant as a training-free quantizer for nearest-neighbour
// search: base vectors are encoded with no training pass (a seeded rotation
// and a fixed Lloyd–Max codebook), queries stay full precision and are scored
// against the codes (asymmetric), and codes can be compared with each other
// (symmetric, for graph construction).
//
// Quantizer is the interface an index uses; NewTQ builds the TurboQuant one
// (methods MSE, Prod, MSE with a per-vector norm correction, PolarQuant; 1–8
// bits; inner product, cosine or L2). Two indexes use it: Flat scans every
// code (in parallel, keeping a top-k heap, optionally re-ranking the best
// k·r candidates exactly against vectors the caller holds), and IVF scans the
// codes of the residuals in the nprobe lists of a k-means partition nearest
// the query. Both serialize to a checksummed, versioned format that the
// reader validates with allocation bounded by the bytes present.
//
// Distances are "lower is closer" for every metric: −⟨q, x⟩ for inner
// product, 1 − ⟨q/‖q‖, x/‖x‖⟩ for cosine, ‖q − x‖² for L2.
//
// The flat scan of MSE codes at 1, 2, 4 and 8 bits runs through a quantized
// (uint16) lookup table with one entry per code byte and byte value; the loop
// that sums it (scanBytes) is the seam a SIMD kernel replaces.
package ann

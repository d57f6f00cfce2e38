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
// Centring: Config.Mean (from Mean, one pass over the base) is subtracted
// before rotation, so the codes spend their bits on x − μ. It is folded
// exactly into the query and the distance (L2 scores the centred query;
// inner products add ⟨q, μ⟩), and it pays on data far from the origin
// (Fashion-MNIST pixels: R1@1 at 2 bits 0.696 → 0.783); on already
// centred data (GloVe) it changes little, so the default stays training-free.
//
// Correction factors: inner products from codes are norm-corrected so the
// estimate is unbiased at every bit width. MSENorm stores the exact
// per-vector factor ‖x‖/⟨x̂, x⟩ with the code (RaBitQ's correction); plain
// MSE applies its expectation, 1/E⟨ĉ, u⟩ (π/2 at one bit), which matters
// under L2, where a biased inner product against an exact ‖x‖² ranks by
// length (R1@1 at one bit on Fashion-MNIST was 0.018, now 0.558); Prod is
// unbiased by construction.
//
// Which method: for L2 and inner product use MSENorm at 2 bits and more
// (with Mean when the data is not centred) and Prod or MSE at one bit; for
// cosine MSE and MSENorm rank alike (MSENorm by a hair). Re-ranking
// (SearchOptions.Rerank with the originals, FAISS's IndexRefine) recovers
// the exact top k from k·R candidates when the originals are at hand.
//
// The flat scan of MSE codes at 1, 2, 4 and 8 bits runs through a quantized
// (uint16) lookup table with one entry per code byte and byte value; the loop
// that sums it (scanBytes) is the seam a SIMD kernel replaces.
package ann

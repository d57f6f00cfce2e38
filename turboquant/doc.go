// Package turboquant is the public face of the library: it compresses
// vectors with the TurboQuant family and computes with the compressed codes.
//
// A Quantizer (built from a Config) rotates a vector with a seeded randomized
// Hadamard transform and stores its norm plus b-bit Lloyd–Max indices of the
// rotated unit vector (MSE), optionally spending one of the bits on a QJL
// sketch of the residual so inner products are unbiased (Prod), or stores a
// PolarQuant code (Polar). Codes have a fixed size known up front; a prepared
// Query scores them without decoding; a Spec serializes everything needed to
// decode elsewhere.
//
// On top of the Quantizer sits the KV cache: a Pool with a memory budget hands
// out Sequences that implement Cache. A sequence stores each layer's keys
// and values as packed codes in fixed-size blocks (with an fp16 window of
// recent tokens and fp16 attention sinks), and computes exact causal
// grouped-query attention directly on the codes: logits from the prepared
// query's lookup tables, softmax over all tokens, and the weighted sum of
// values accumulated in the rotated domain and rotated back once per head.
//
// Every error wraps an exported sentinel (ErrConfig, ErrLength, ErrNonFinite,
// ErrOverflow, ErrSpec, ErrCacheFull, ErrClosed) for errors.Is; nothing
// panics on caller data, and a failed operation leaves its target unchanged.
package turboquant

// Package turboquant is the vector codec: it compresses vectors with the
// TurboQuant family and computes with the compressed codes.
//
// A Quantizer (built from a Config) rotates a vector with a seeded randomized
// Hadamard transform and stores its norm plus b-bit Lloyd–Max indices of the
// rotated unit vector (MSE), optionally spending one of the bits on a QJL
// sketch of the residual so inner products are unbiased (Prod), or stores a
// PolarQuant code (Polar). Codes have a fixed size known up front
// (Config.CodeSize computes it without building anything); a prepared Query
// scores them without decoding; a Spec serializes everything needed to
// decode elsewhere.
//
// Packages built on the codec (kvcache, ann, cuda) use a small exported
// surface beyond that: the code layout (Quantizer.Parts, one Part per
// independently quantized part, or per index run of a Config.Split, the
// mixed precision that shares one rotation and norm) and operations in the
// rotated domain the codes live in (AccumulateRotated,
// AccumulateRotatedGroup, FinishRotated, RotateQuery, PrepareKernelQuery,
// CodeInnerProduct).
//
// Every error wraps an exported sentinel (ErrConfig, ErrLength, ErrNonFinite,
// ErrOverflow, ErrSpec) for errors.Is; nothing panics on caller data, and a
// failed operation leaves its target unchanged.
package turboquant

package turboquant

import "errors"

// Sentinel errors. Every error a Quantizer returns wraps one of these, so
// callers can test with errors.Is.
var (
	// ErrConfig reports an invalid or unsupported configuration.
	ErrConfig = errors.New("turboquant: invalid configuration")
	// ErrLength reports a vector or buffer of the wrong length.
	ErrLength = errors.New("turboquant: wrong length")
	// ErrNonFinite reports a NaN or ±Inf component in an input vector.
	ErrNonFinite = errors.New("turboquant: non-finite input")
	// ErrOverflow reports a value too large for the configured storage
	// precision (an fp16 norm or radius above 65504).
	ErrOverflow = errors.New("turboquant: value overflows storage precision")
	// ErrSpec reports a serialized quantizer spec that is malformed,
	// corrupt, of an unknown version, or describes codebooks this build does
	// not reproduce.
	ErrSpec = errors.New("turboquant: bad quantizer spec")
)

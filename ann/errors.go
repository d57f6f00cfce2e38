package ann

import "errors"

// Sentinel errors; every error the package returns wraps one of them (or a
// turboquant sentinel for bad vector input, e.g. turboquant.ErrNonFinite).
var (
	// ErrConfig reports an invalid quantizer or index configuration.
	ErrConfig = errors.New("ann: invalid configuration")
	// ErrDimension reports a vector or batch whose length does not match the
	// index dimension.
	ErrDimension = errors.New("ann: dimension mismatch")
	// ErrEmpty reports a search of an index that holds no vectors.
	ErrEmpty = errors.New("ann: empty index")
	// ErrK reports a k (or re-rank factor) that is not positive, or a k
	// larger than the number of indexed vectors.
	ErrK = errors.New("ann: bad k")
	// ErrFormat reports a serialized quantizer or index that is malformed,
	// corrupt, truncated or of an unknown version.
	ErrFormat = errors.New("ann: bad serialized index")
)

package kvcache

import (
	"errors"

	"github.com/turboquant-go/tq/turboquant"
)

// Sentinel errors. Every error the cache returns wraps one of these, so
// callers can test with errors.Is.
var (
	// ErrCacheFull reports that an append would take a pool past its memory
	// budget. The sequence is left exactly as it was.
	ErrCacheFull = errors.New("kvcache: cache full")
	// ErrClosed reports use of a closed sequence.
	ErrClosed = errors.New("kvcache: sequence closed")
	// ErrSnapshot reports a sequence snapshot that is malformed, corrupt,
	// truncated, of an unknown version, or written by a pool whose
	// configuration differs from the reading pool's.
	ErrSnapshot = errors.New("kvcache: bad snapshot")
)

// The codec's sentinels, which the cache returns for the same causes. They
// are the turboquant values themselves, so errors.Is matches either name.
var (
	// ErrConfig reports an invalid or unsupported configuration.
	ErrConfig = turboquant.ErrConfig
	// ErrLength reports a vector, buffer, layer or head index of the wrong
	// length or range.
	ErrLength = turboquant.ErrLength
	// ErrNonFinite reports a NaN or ±Inf component in an input.
	ErrNonFinite = turboquant.ErrNonFinite
	// ErrOverflow reports a value too large for the storage precision (the
	// fp16 window, or a code's fp16 norm).
	ErrOverflow = turboquant.ErrOverflow
)

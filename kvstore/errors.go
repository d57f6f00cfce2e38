package kvstore

import "errors"

var (
	// ErrNotFound is a backend's miss.
	ErrNotFound = errors.New("kvstore: not found")
	// ErrValue marks a stored value that fails its checks (truncated,
	// corrupted, foreign); it is never restored.
	ErrValue = errors.New("kvstore: bad value")
	// ErrConfig marks a bad store configuration or backend address.
	ErrConfig = errors.New("kvstore: bad config")
	// ErrBackend wraps a backend's failure (I/O, network, timeout).
	ErrBackend = errors.New("kvstore: backend")
)

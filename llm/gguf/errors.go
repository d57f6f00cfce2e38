package gguf

import "errors"

// Sentinel errors. Every error this package returns for bad input wraps one of
// these (errors.Is), with the offending key, tensor or offset in the message.
var (
	// ErrFormat: the bytes are not a well-formed GGUF file (bad magic, bad
	// value type, duplicate key or tensor name, misaligned or out-of-file
	// tensor data, …).
	ErrFormat = errors.New("gguf: malformed file")
	// ErrTruncated: the file ends before a structure it declares.
	ErrTruncated = errors.New("gguf: truncated file")
	// ErrVersion: the version is not 2 or 3 (v1 used 32-bit counts and is
	// not read).
	ErrVersion = errors.New("gguf: unsupported version")
	// ErrBigEndian: the file was written big-endian (s390x/ppc64 tooling).
	// GGUF keeps the "GGUF" magic in that case, so it is recognised by its
	// byte-swapped version number and rejected rather than misread.
	ErrBigEndian = errors.New("gguf: big-endian file not supported")
	// ErrUnsupportedType: a tensor type id this package cannot size (at parse
	// time) or cannot dequantize/quantize (at use time).
	ErrUnsupportedType = errors.New("gguf: unsupported tensor type")
	// ErrKeyNotFound: a metadata key is absent.
	ErrKeyNotFound = errors.New("gguf: metadata key not found")
	// ErrMetaType: a metadata value has a type the accessor cannot convert
	// (or an integer out of the accessor's range).
	ErrMetaType = errors.New("gguf: metadata value has the wrong type")
	// ErrSize: a caller's buffer, dims or data length does not match what the
	// tensor type requires.
	ErrSize = errors.New("gguf: size mismatch")
)

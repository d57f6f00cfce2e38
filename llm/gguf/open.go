package gguf

import (
	"fmt"
	"os"
)

// Open memory-maps the file at path read-only (linux, darwin, windows; other
// systems read it into memory) and parses it. Tensor Data slices point into
// the mapping, so loading a multi-gigabyte model costs no copy and pages come
// in on first touch. Call Close when done with the tensors.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close() // a mapping outlives its descriptor
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size < headerBytes {
		return nil, fmt.Errorf("%w: %s is %d bytes", ErrTruncated, path, size)
	}
	if uint64(size) > uint64(^uint(0)>>1) {
		return nil, fmt.Errorf("%w: %s is %d bytes, too large to map on this platform", ErrSize, path, size)
	}
	data, release, err := mapFile(fh, int(size))
	if err != nil {
		return nil, fmt.Errorf("gguf: mapping %s: %w", path, err)
	}
	f, err := Parse(data)
	if err != nil {
		release()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.release = release
	return f, nil
}

// readWhole is the fallback for systems without a mapping implementation.
func readWhole(fh *os.File, size int) ([]byte, func() error, error) {
	data := make([]byte, size)
	if _, err := fh.ReadAt(data, 0); err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}

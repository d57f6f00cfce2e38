//go:build !linux && !darwin && !windows

package gguf

import "os"

func mapFile(fh *os.File, size int) ([]byte, func() error, error) { return readWhole(fh, size) }

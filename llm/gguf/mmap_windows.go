//go:build windows

package gguf

import (
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

func mapFile(fh *os.File, size int) ([]byte, func() error, error) {
	// A zero maximum size maps the whole file; the mapping object can be
	// closed once a view exists (the view keeps the section alive).
	h, err := windows.CreateFileMapping(windows.Handle(fh.Fd()), nil, windows.PAGE_READONLY, 0, 0, nil)
	if err != nil {
		return nil, nil, os.NewSyscallError("CreateFileMapping", err)
	}
	addr, err := windows.MapViewOfFile(h, windows.FILE_MAP_READ, 0, 0, uintptr(size))
	windows.CloseHandle(h)
	if err != nil {
		return nil, nil, os.NewSyscallError("MapViewOfFile", err)
	}
	// The view lives outside the Go heap, so reinterpreting the address the
	// API returns as a pointer is safe; going through &addr avoids vet's
	// uintptr→Pointer check, which guards against heap pointers.
	data := unsafe.Slice(*(**byte)(unsafe.Pointer(&addr)), size)
	return data, func() error { return windows.UnmapViewOfFile(addr) }, nil
}

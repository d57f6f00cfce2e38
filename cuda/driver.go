package cuda

import (
	"errors"
	"fmt"
	"os"
	"unsafe"
)

// LibraryEnv names the environment variable that, when set, is the path of
// the driver library to load instead of the platform's default.
const LibraryEnv = "TQ_LIBCUDA"

// library is a loaded shared library whose symbols can be bound to Go
// function variables (dlopen/dlsym with purego on Unix, LoadLibrary and
// GetProcAddress on Windows).
type library interface {
	// bind looks up name and makes fptr (a pointer to a func variable) call
	// it; a missing symbol is an error, never a panic.
	bind(fptr any, name string) error
}

// driver holds the driver API entry points. Handles are opaque pointers
// (uintptr), device pointers are CUdeviceptr (64-bit), results are CUresult.
type driver struct {
	path string

	cuInit               func(flags uint32) int32
	cuDriverGetVersion   func(v *int32) int32
	cuGetErrorName       func(code int32, s **byte) int32
	cuGetErrorString     func(code int32, s **byte) int32
	cuDeviceGetCount     func(n *int32) int32
	cuDeviceGet          func(dev *int32, ordinal int32) int32
	cuDeviceGetName      func(name *byte, n int32, dev int32) int32
	cuDeviceTotalMem     func(bytes *uint64, dev int32) int32
	cuDeviceGetAttribute func(v *int32, attr int32, dev int32) int32
	cuCtxCreate          func(ctx *uintptr, flags uint32, dev int32) int32
	cuCtxDestroy         func(ctx uintptr) int32
	cuCtxSetCurrent      func(ctx uintptr) int32
	cuCtxSynchronize     func() int32
	cuModuleLoadData     func(mod *uintptr, image unsafe.Pointer) int32
	cuModuleUnload       func(mod uintptr) int32
	cuModuleGetFunction  func(fn *uintptr, mod uintptr, name string) int32
	cuLaunchKernel       func(fn uintptr, gx, gy, gz, bx, by, bz, shared uint32, stream uintptr, params, extra unsafe.Pointer) int32
	cuMemAlloc           func(ptr *uint64, size uint64) int32
	cuMemFree            func(ptr uint64) int32
	cuMemGetInfo         func(free, total *uint64) int32
	cuMemcpyHtoD         func(dst uint64, src unsafe.Pointer, size uint64) int32
	cuMemcpyDtoH         func(dst unsafe.Pointer, src uint64, size uint64) int32
	cuMemcpyDtoD         func(dst, src uint64, size uint64) int32
	cuMemsetD8           func(dst uint64, v uint8, n uint64) int32
	cuStreamCreate       func(s *uintptr, flags uint32) int32
	cuStreamDestroy      func(s uintptr) int32
	cuStreamSynchronize  func(s uintptr) int32
	cuEventCreate        func(e *uintptr, flags uint32) int32
	cuEventDestroy       func(e uintptr) int32
	cuEventRecord        func(e, s uintptr) int32
	cuEventSynchronize   func(e uintptr) int32
	cuEventElapsedTime   func(ms *float32, start, end uintptr) int32
}

// symbols lists every entry point with the exported name it binds to (the
// _v2 names are the 64-bit ABI that cuda.h maps the plain names to).
func (d *driver) symbols() []struct {
	fptr any
	name string
} {
	return []struct {
		fptr any
		name string
	}{
		{&d.cuInit, "cuInit"},
		{&d.cuDriverGetVersion, "cuDriverGetVersion"},
		{&d.cuGetErrorName, "cuGetErrorName"},
		{&d.cuGetErrorString, "cuGetErrorString"},
		{&d.cuDeviceGetCount, "cuDeviceGetCount"},
		{&d.cuDeviceGet, "cuDeviceGet"},
		{&d.cuDeviceGetName, "cuDeviceGetName"},
		{&d.cuDeviceTotalMem, "cuDeviceTotalMem_v2"},
		{&d.cuDeviceGetAttribute, "cuDeviceGetAttribute"},
		{&d.cuCtxCreate, "cuCtxCreate_v2"},
		{&d.cuCtxDestroy, "cuCtxDestroy_v2"},
		{&d.cuCtxSetCurrent, "cuCtxSetCurrent"},
		{&d.cuCtxSynchronize, "cuCtxSynchronize"},
		{&d.cuModuleLoadData, "cuModuleLoadData"},
		{&d.cuModuleUnload, "cuModuleUnload"},
		{&d.cuModuleGetFunction, "cuModuleGetFunction"},
		{&d.cuLaunchKernel, "cuLaunchKernel"},
		{&d.cuMemAlloc, "cuMemAlloc_v2"},
		{&d.cuMemFree, "cuMemFree_v2"},
		{&d.cuMemGetInfo, "cuMemGetInfo_v2"},
		{&d.cuMemcpyHtoD, "cuMemcpyHtoD_v2"},
		{&d.cuMemcpyDtoH, "cuMemcpyDtoH_v2"},
		{&d.cuMemcpyDtoD, "cuMemcpyDtoD_v2"},
		{&d.cuMemsetD8, "cuMemsetD8_v2"},
		{&d.cuStreamCreate, "cuStreamCreate"},
		{&d.cuStreamDestroy, "cuStreamDestroy_v2"},
		{&d.cuStreamSynchronize, "cuStreamSynchronize"},
		{&d.cuEventCreate, "cuEventCreate"},
		{&d.cuEventDestroy, "cuEventDestroy_v2"},
		{&d.cuEventRecord, "cuEventRecord"},
		{&d.cuEventSynchronize, "cuEventSynchronize"},
		{&d.cuEventElapsedTime, "cuEventElapsedTime"},
	}
}

// libraryPath is the driver library to load: path if set, else
// $TQ_LIBCUDA, else the platform default.
func libraryPath(path string) string {
	if path != "" {
		return path
	}
	if p := os.Getenv(LibraryEnv); p != "" {
		return p
	}
	return defaultLibrary
}

// loadDriver opens the driver library and binds every entry point. Any
// failure — no library, a missing symbol — wraps ErrNoCUDA.
func loadDriver(path string) (*driver, error) {
	path = libraryPath(path)
	lib, err := openLibrary(path)
	if err != nil {
		return nil, fmt.Errorf("%w: loading %s: %w", ErrNoCUDA, path, err)
	}
	d := &driver{path: path}
	for _, s := range d.symbols() {
		if err := lib.bind(s.fptr, s.name); err != nil {
			return nil, fmt.Errorf("%w: %s lacks %s: %w", ErrNoCUDA, path, s.name, err)
		}
	}
	return d, nil
}

// check turns a CUresult into nil or a *DriverError.
func (d *driver) check(call string, code int32) error {
	if code == cudaSuccess {
		return nil
	}
	e := &DriverError{Call: call, Code: code}
	var p *byte
	if d.cuGetErrorName(code, &p) == cudaSuccess {
		e.Name = cString(p)
	}
	p = nil
	if d.cuGetErrorString(code, &p) == cudaSuccess {
		e.Desc = cString(p)
	}
	return e
}

// cString copies a NUL-terminated string owned by the driver (at most 4 KiB
// of it: driver strings are short, and the bound stops a runaway read).
func cString(p *byte) string {
	if p == nil {
		return ""
	}
	var b []byte
	for i := range 4096 {
		c := *(*byte)(unsafe.Add(unsafe.Pointer(p), i))
		if c == 0 {
			break
		}
		b = append(b, c)
	}
	return string(b)
}

// errNoLibrary is what openLibrary returns where no loader exists.
var errNoLibrary = errors.New("no dynamic loader on this platform")

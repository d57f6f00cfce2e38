package cuda

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"
)

// Options select the driver library and the device.
type Options struct {
	// Library is the driver library path ("" = $TQ_LIBCUDA or the platform
	// default).
	Library string
	// Ordinal is the device number (default 0).
	Ordinal int
}

// Device is an open CUDA device with a context, one stream and the
// package's kernels loaded. Its methods are safe for concurrent use: calls
// are serialized and each runs on a locked OS thread with the device's
// context current.
type Device struct {
	drv    *driver
	mu     sync.Mutex
	dev    int32
	ctx    uintptr
	mods   []uintptr
	stream uintptr
	fns    map[string]uintptr
	closed bool

	name    string
	memory  uint64
	cc      [2]int
	smCount int
	version int
}

// Device attributes (CUdevice_attribute).
const (
	attrMultiprocessorCount   = 16
	attrComputeCapabilityMaj  = 75
	attrComputeCapabilityMin  = 76
	attrMaxSharedPerBlockOptn = 97
)

// Open loads the driver, initialises it, and opens a device with the
// package's kernels. Without a usable driver or device the error wraps
// ErrNoCUDA.
func Open(opts Options) (*Device, error) {
	drv, err := loadDriver(opts.Library)
	if err != nil {
		return nil, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := drv.check("cuInit", drv.cuInit(0)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoCUDA, err)
	}
	var n int32
	if err := drv.check("cuDeviceGetCount", drv.cuDeviceGetCount(&n)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoCUDA, err)
	}
	if opts.Ordinal < 0 || opts.Ordinal >= int(n) {
		return nil, fmt.Errorf("%w: device %d requested, %d present", ErrNoCUDA, opts.Ordinal, n)
	}
	d := &Device{drv: drv, fns: map[string]uintptr{}}
	if err := drv.check("cuDeviceGet", drv.cuDeviceGet(&d.dev, int32(opts.Ordinal))); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoCUDA, err)
	}
	var v int32
	_ = drv.cuDriverGetVersion(&v)
	d.version = int(v)
	name := make([]byte, 256)
	if err := drv.check("cuDeviceGetName", drv.cuDeviceGetName(&name[0], int32(len(name)), d.dev)); err != nil {
		return nil, err
	}
	d.name = cString(&name[0])
	if err := drv.check("cuDeviceTotalMem", drv.cuDeviceTotalMem(&d.memory, d.dev)); err != nil {
		return nil, err
	}
	for _, a := range []struct {
		attr int32
		dst  *int
	}{{attrComputeCapabilityMaj, &d.cc[0]}, {attrComputeCapabilityMin, &d.cc[1]}, {attrMultiprocessorCount, &d.smCount}} {
		var x int32
		if err := drv.check("cuDeviceGetAttribute", drv.cuDeviceGetAttribute(&x, a.attr, d.dev)); err != nil {
			return nil, err
		}
		*a.dst = int(x)
	}
	if d.cc[0] < 7 {
		return nil, fmt.Errorf("%w: %s has compute capability %d.%d; the kernels need 7.0 or newer",
			ErrNoCUDA, d.name, d.cc[0], d.cc[1])
	}
	if err := drv.check("cuCtxCreate", drv.cuCtxCreate(&d.ctx, 0, d.dev)); err != nil {
		return nil, err
	}
	fail := func(err error) (*Device, error) {
		for _, m := range d.mods {
			_ = drv.cuModuleUnload(m)
		}
		_ = drv.cuCtxDestroy(d.ctx)
		return nil, err
	}
	if err := drv.check("cuStreamCreate", drv.cuStreamCreate(&d.stream, 0)); err != nil {
		return fail(err)
	}
	for _, m := range kernelModules {
		image := append([]byte(m.ptx), 0)
		var mod uintptr
		if err := drv.check("cuModuleLoadData", drv.cuModuleLoadData(&mod, unsafe.Pointer(&image[0]))); err != nil {
			return fail(fmt.Errorf("loading the embedded %s PTX: %w", m.name, err))
		}
		d.mods = append(d.mods, mod)
		for _, k := range m.kernels {
			var fn uintptr
			if err := drv.check("cuModuleGetFunction", drv.cuModuleGetFunction(&fn, mod, k)); err != nil {
				return fail(fmt.Errorf("kernel %s: %w", k, err))
			}
			d.fns[k] = fn
		}
	}
	return d, nil
}

// Name is the device's name, e.g. "NVIDIA H100 80GB HBM3".
func (d *Device) Name() string { return d.name }

// Memory is the device's total memory in bytes.
func (d *Device) Memory() uint64 { return d.memory }

// ComputeCapability is the device's (major, minor) compute capability.
func (d *Device) ComputeCapability() (int, int) { return d.cc[0], d.cc[1] }

// Multiprocessors is the device's number of streaming multiprocessors.
func (d *Device) Multiprocessors() int { return d.smCount }

// DriverVersion is the driver API version, e.g. 12040 for 12.4.
func (d *Device) DriverVersion() int { return d.version }

// LibraryPath is the driver library the device was opened through.
func (d *Device) LibraryPath() string { return d.drv.path }

// do runs f with the device locked and its context current on this thread.
func (d *Device) do(f func(drv *driver) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("%w: device closed", ErrCUDA)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.drv.check("cuCtxSetCurrent", d.drv.cuCtxSetCurrent(d.ctx)); err != nil {
		return err
	}
	return f(d.drv)
}

// Close releases the device's module, stream and context (and with the
// context, every allocation still live). Later calls fail.
func (d *Device) Close() error {
	err := d.do(func(drv *driver) error {
		for _, m := range d.mods {
			_ = drv.cuModuleUnload(m)
		}
		_ = drv.cuStreamDestroy(d.stream)
		return drv.check("cuCtxDestroy", drv.cuCtxDestroy(d.ctx))
	})
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	return err
}

// Buffer is a device allocation.
type Buffer struct {
	ptr  uint64
	size int
}

// Size is the buffer's size in bytes.
func (b *Buffer) Size() int { return b.size }

// Alloc allocates n bytes of device memory (n ≥ 1), zeroed.
func (d *Device) Alloc(n int) (*Buffer, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: allocation of %d bytes", ErrLength, n)
	}
	b := &Buffer{size: n}
	err := d.do(func(drv *driver) error {
		if err := drv.check("cuMemAlloc", drv.cuMemAlloc(&b.ptr, uint64(n))); err != nil {
			return err
		}
		return drv.check("cuMemsetD8", drv.cuMemsetD8(b.ptr, 0, uint64(n)))
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Free releases a buffer; freeing nil or an already freed buffer does
// nothing.
func (d *Device) Free(b *Buffer) error {
	if b == nil || b.ptr == 0 {
		return nil
	}
	err := d.do(func(drv *driver) error { return drv.check("cuMemFree", drv.cuMemFree(b.ptr)) })
	b.ptr, b.size = 0, 0
	return err
}

// MemInfo returns the device's free and total memory in bytes.
func (d *Device) MemInfo() (free, total uint64, err error) {
	err = d.do(func(drv *driver) error { return drv.check("cuMemGetInfo", drv.cuMemGetInfo(&free, &total)) })
	return free, total, err
}

func span(b *Buffer, off, n int) error {
	if b == nil || b.ptr == 0 || off < 0 || n < 0 || off > b.size || n > b.size-off {
		return fmt.Errorf("%w: %d bytes at offset %d of a %d-byte buffer", ErrLength, n, off, bufSize(b))
	}
	return nil
}

func bufSize(b *Buffer) int {
	if b == nil {
		return 0
	}
	return b.size
}

// Write copies src to dst at byte offset off (synchronous).
func (d *Device) Write(dst *Buffer, off int, src []byte) error {
	if err := span(dst, off, len(src)); err != nil || len(src) == 0 {
		return err
	}
	return d.do(func(drv *driver) error {
		return drv.check("cuMemcpyHtoD", drv.cuMemcpyHtoD(dst.ptr+uint64(off), unsafe.Pointer(&src[0]), uint64(len(src))))
	})
}

// Read copies len(dst) bytes of src from byte offset off into dst
// (synchronous: it waits for the device's queued work).
func (d *Device) Read(dst []byte, src *Buffer, off int) error {
	if err := span(src, off, len(dst)); err != nil || len(dst) == 0 {
		return err
	}
	return d.do(func(drv *driver) error {
		if err := drv.check("cuStreamSynchronize", drv.cuStreamSynchronize(d.stream)); err != nil {
			return err
		}
		return drv.check("cuMemcpyDtoH", drv.cuMemcpyDtoH(unsafe.Pointer(&dst[0]), src.ptr+uint64(off), uint64(len(dst))))
	})
}

// Copy copies n bytes between device buffers.
func (d *Device) Copy(dst *Buffer, dstOff int, src *Buffer, srcOff, n int) error {
	if err := span(dst, dstOff, n); err != nil {
		return err
	}
	if err := span(src, srcOff, n); err != nil || n == 0 {
		return err
	}
	return d.do(func(drv *driver) error {
		return drv.check("cuMemcpyDtoD", drv.cuMemcpyDtoD(dst.ptr+uint64(dstOff), src.ptr+uint64(srcOff), uint64(n)))
	})
}

// WriteFloat32s and ReadFloat32s are Write and Read for float32 data.
func (d *Device) WriteFloat32s(dst *Buffer, off int, src []float32) error {
	return d.Write(dst, off, f32Bytes(src))
}

func (d *Device) ReadFloat32s(dst []float32, src *Buffer, off int) error {
	return d.Read(f32Bytes(dst), src, off)
}

func f32Bytes(x []float32) []byte {
	if len(x) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*len(x))
}

// Synchronize waits for all queued work.
func (d *Device) Synchronize() error {
	return d.do(func(drv *driver) error {
		return drv.check("cuStreamSynchronize", drv.cuStreamSynchronize(d.stream))
	})
}

// dim3 is a grid or block shape.
type dim3 struct{ x, y, z uint32 }

// launch queues kernel name on the device's stream. Arguments are *Buffer
// (its device pointer), int32, uint32, uint64 or float32, in the kernel's
// parameter order.
func (d *Device) launch(name string, grid, block dim3, shared uint32, args ...any) error {
	fn, ok := d.fns[name]
	if !ok {
		return fmt.Errorf("%w: no kernel %s", ErrCUDA, name)
	}
	// Argument values and the pointer array live on the Go heap, which does
	// not move, for the duration of the call.
	vals := make([]uint64, len(args))
	ptrs := make([]unsafe.Pointer, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case *Buffer:
			if v == nil || v.ptr == 0 {
				return fmt.Errorf("%w: kernel %s argument %d is a freed buffer", ErrLength, name, i)
			}
			vals[i] = v.ptr
		case int32:
			vals[i] = uint64(uint32(v))
		case uint32:
			vals[i] = uint64(v)
		case uint64:
			vals[i] = v
		case float32:
			vals[i] = uint64(math.Float32bits(v))
		default:
			panic(fmt.Sprintf("cuda: kernel argument of type %T", a))
		}
		ptrs[i] = unsafe.Pointer(&vals[i])
	}
	var params unsafe.Pointer
	if len(ptrs) > 0 {
		params = unsafe.Pointer(&ptrs[0])
	}
	err := d.do(func(drv *driver) error {
		return drv.check("cuLaunchKernel "+name, drv.cuLaunchKernel(fn, grid.x, grid.y, grid.z, block.x, block.y, block.z,
			shared, d.stream, params, nil))
	})
	runtime.KeepAlive(vals)
	runtime.KeepAlive(ptrs)
	return err
}

// Time runs f and returns the device time between events recorded on the
// stream before and after it, in milliseconds.
func (d *Device) Time(f func() error) (float32, error) {
	var start, end uintptr
	err := d.do(func(drv *driver) error {
		if err := drv.check("cuEventCreate", drv.cuEventCreate(&start, 0)); err != nil {
			return err
		}
		if err := drv.check("cuEventCreate", drv.cuEventCreate(&end, 0)); err != nil {
			return err
		}
		return drv.check("cuEventRecord", drv.cuEventRecord(start, d.stream))
	})
	defer func() {
		_ = d.do(func(drv *driver) error {
			if start != 0 {
				_ = drv.cuEventDestroy(start)
			}
			if end != 0 {
				_ = drv.cuEventDestroy(end)
			}
			return nil
		})
	}()
	if err != nil {
		return 0, err
	}
	if err := f(); err != nil {
		return 0, err
	}
	var ms float32
	err = d.do(func(drv *driver) error {
		if err := drv.check("cuEventRecord", drv.cuEventRecord(end, d.stream)); err != nil {
			return err
		}
		if err := drv.check("cuEventSynchronize", drv.cuEventSynchronize(end)); err != nil {
			return err
		}
		return drv.check("cuEventElapsedTime", drv.cuEventElapsedTime(&ms, start, end))
	})
	return ms, err
}

// CopyBandwidth measures device-to-device copy bandwidth with a buffer of
// n bytes copied reps times, in bytes per second counting both the read and
// the write (2n per copy): the memory-bound floor attention runs against.
func (d *Device) CopyBandwidth(n, reps int) (float64, error) {
	src, err := d.Alloc(n)
	if err != nil {
		return 0, err
	}
	defer d.Free(src)
	dst, err := d.Alloc(n)
	if err != nil {
		return 0, err
	}
	defer d.Free(dst)
	if err := d.Copy(dst, 0, src, 0, n); err != nil { // warm up
		return 0, err
	}
	ms, err := d.Time(func() error {
		for range reps {
			if err := d.do(func(drv *driver) error {
				return drv.check("cuMemcpyDtoD", drv.cuMemcpyDtoD(dst.ptr, src.ptr, uint64(n)))
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || ms <= 0 {
		return 0, err
	}
	return 2 * float64(n) * float64(reps) / (float64(ms) / 1e3), nil
}

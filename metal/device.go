package metal

import (
	"fmt"
	"sync"
	"unsafe"
)

// Buffer is a shared-storage buffer: memory that the CPU and the GPU both
// address (Apple GPUs share the system memory), so writing and reading it
// are plain copies.
type Buffer struct {
	data []byte
	obj  uintptr // the MTLBuffer, on darwin
}

// Size is the buffer's length in bytes.
func (b *Buffer) Size() int {
	if b == nil {
		return 0
	}
	return len(b.data)
}

// Bytes is the buffer's contents; valid until the buffer is freed, and not
// to be touched while a dispatch that uses the buffer runs.
func (b *Buffer) Bytes() []byte { return b.data }

// binding is what one [[buffer(i)]] argument of a kernel receives: a
// buffer, or a few bytes copied into the command (setBytes).
type binding struct {
	buf   *Buffer
	bytes []byte
}

func bufArg(b *Buffer) binding { return binding{buf: b} }

// bytesArg binds a kernel's argument struct (all 4-byte fields, so Go's
// layout is MSL's).
func bytesArg[T any](v *T) binding {
	return binding{bytes: unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))}
}

// dispatch is one compute dispatch: groups threadgroups of threads threads
// (one dimension), the buffer bindings by index and the threadgroup memory
// lengths by index.
type dispatch struct {
	kernel  string
	groups  [3]int
	threads int
	binds   []binding
	tgmem   []int
}

// runner is what runs dispatches: the Metal device on darwin; in the tests,
// the C++ build of the same kernels.
type runner interface {
	alloc(n int) (*Buffer, error)
	release(b *Buffer)
	// run encodes the dispatches in order into one command buffer (each
	// sees the writes of the ones before) and waits for it to complete.
	run(ds []dispatch) error
	// maxThreads is the most threads per threadgroup the kernel allows.
	maxThreads(kernel string) int
	describe() string
	close()
}

// Device is a Metal device with the kernels compiled: its command queue,
// library and pipelines. Methods are safe for concurrent use.
type Device struct {
	mu     sync.Mutex
	r      runner
	closed bool
}

// Open opens the system's default Metal device and compiles the kernels.
// Without Metal (any OS but macOS, or no device) the error wraps
// ErrUnavailable; a kernel that does not compile gives a *CallError.
func Open() (*Device, error) {
	r, err := openRunner()
	if err != nil {
		return nil, err
	}
	return &Device{r: r}, nil
}

// Name describes the device.
func (d *Device) Name() string { return d.r.describe() }

// Close releases the device's queue, library and pipelines.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.closed = true
		d.r.close()
	}
	return nil
}

// Alloc returns a zeroed shared-storage buffer of n > 0 bytes.
func (d *Device) Alloc(n int) (*Buffer, error) {
	if n <= 0 {
		return nil, fmt.Errorf("%w: buffer of %d bytes", ErrLength, n)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("%w: device closed", ErrUnavailable)
	}
	return d.r.alloc(n)
}

// Free releases a buffer (nil is ignored).
func (d *Device) Free(b *Buffer) {
	if b == nil || b.data == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.r.release(b)
	b.data = nil
}

func (d *Device) run(ds []dispatch) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("%w: device closed", ErrUnavailable)
	}
	for _, x := range ds {
		if m := d.r.maxThreads(x.kernel); x.threads > m {
			return fmt.Errorf("%w: %s with %d threads per threadgroup (the pipeline allows %d)", ErrUnsupported, x.kernel, x.threads, m)
		}
	}
	return d.r.run(ds)
}

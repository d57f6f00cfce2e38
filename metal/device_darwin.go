//go:build darwin

package metal

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/ebitengine/purego"
	"github.com/ebitengine/purego/objc"
)

// The Metal binding: Objective-C messages through purego's objc package
// (no cgo). Objects are retained IDs released in close/release; the
// autoreleased ones a dispatch creates (command buffer, encoder) live in an
// autorelease pool drained when it completes.

const (
	metalFramework        = "/System/Library/Frameworks/Metal.framework/Metal"
	coreGraphicsFramework = "/System/Library/Frameworks/CoreGraphics.framework/CoreGraphics"
)

// mtlSize is MTLSize: three NSUIntegers.
type mtlSize struct{ W, H, D uint }

const (
	storageModeShared      = 0 // MTLResourceStorageModeShared
	commandBufferCompleted = 4 // MTLCommandBufferStatusCompleted
	threadgroupMemoryAlign = 16
	mathModeSafe           = 0 // MTLMathModeSafe
)

var sel = struct {
	new, release, drain, alloc, stringWithUTF8, utf8, desc, name                            objc.SEL
	newQueue, newLibrary, newFunction, newPipeline, newBuffer, contents, maxThreads         objc.SEL
	setFastMath, commandBuffer, encoder, setPipeline, setBuffer, setBytes, setTGMem         objc.SEL
	dispatchGroups, endEncoding, commit, wait, status, errorSel, recommendedMax, hasUnified objc.SEL
	count, objectAtIndex, retain, responds, setMathMode                                     objc.SEL
}{
	new: objc.RegisterName("new"), release: objc.RegisterName("release"), drain: objc.RegisterName("drain"),
	alloc: objc.RegisterName("alloc"), stringWithUTF8: objc.RegisterName("stringWithUTF8String:"),
	utf8: objc.RegisterName("UTF8String"), desc: objc.RegisterName("localizedDescription"), name: objc.RegisterName("name"),
	newQueue: objc.RegisterName("newCommandQueue"), newLibrary: objc.RegisterName("newLibraryWithSource:options:error:"),
	newFunction: objc.RegisterName("newFunctionWithName:"), newPipeline: objc.RegisterName("newComputePipelineStateWithFunction:error:"),
	newBuffer: objc.RegisterName("newBufferWithLength:options:"), contents: objc.RegisterName("contents"),
	maxThreads: objc.RegisterName("maxTotalThreadsPerThreadgroup"), setFastMath: objc.RegisterName("setFastMathEnabled:"),
	commandBuffer: objc.RegisterName("commandBuffer"), encoder: objc.RegisterName("computeCommandEncoder"),
	setPipeline: objc.RegisterName("setComputePipelineState:"), setBuffer: objc.RegisterName("setBuffer:offset:atIndex:"),
	setBytes: objc.RegisterName("setBytes:length:atIndex:"), setTGMem: objc.RegisterName("setThreadgroupMemoryLength:atIndex:"),
	dispatchGroups: objc.RegisterName("dispatchThreadgroups:threadsPerThreadgroup:"), endEncoding: objc.RegisterName("endEncoding"),
	commit: objc.RegisterName("commit"), wait: objc.RegisterName("waitUntilCompleted"), status: objc.RegisterName("status"),
	errorSel: objc.RegisterName("error"), recommendedMax: objc.RegisterName("recommendedMaxWorkingSetSize"),
	hasUnified: objc.RegisterName("hasUnifiedMemory"),
	count:      objc.RegisterName("count"), objectAtIndex: objc.RegisterName("objectAtIndex:"), retain: objc.RegisterName("retain"),
	responds: objc.RegisterName("respondsToSelector:"), setMathMode: objc.RegisterName("setMathMode:"),
}

type metalRunner struct {
	device, queue, library objc.ID
	pipelines              map[string]objc.ID
	threads                map[string]int
	name                   string
}

func nsString(s string) objc.ID {
	return objc.ID(objc.GetClass("NSString")).Send(sel.stringWithUTF8, s)
}

// goString copies an NSString's UTF-8 bytes.
func goString(s objc.ID) string {
	if s == 0 {
		return ""
	}
	p := objc.Send[*byte](s, sel.utf8)
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

func errorText(e objc.ID) string {
	if e == 0 {
		return ""
	}
	return goString(e.Send(sel.desc))
}

func openRunner() (runner, error) {
	lib, err := purego.Dlopen(metalFramework, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var createDevice, copyAllDevices func() objc.ID
	purego.RegisterLibFunc(&createDevice, lib, "MTLCreateSystemDefaultDevice")
	purego.RegisterLibFunc(&copyAllDevices, lib, "MTLCopyAllDevices")
	// A command-line process gets no default device unless CoreGraphics is
	// loaded; load it, and fall back to the first of all devices.
	_, _ = purego.Dlopen(coreGraphicsFramework, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pool := objc.ID(objc.GetClass("NSAutoreleasePool")).Send(sel.new)
	defer pool.Send(sel.drain)

	r := &metalRunner{pipelines: map[string]objc.ID{}, threads: map[string]int{}}
	if r.device = createDevice(); r.device == 0 {
		if all := copyAllDevices(); all != 0 {
			if objc.Send[uint](all, sel.count) > 0 {
				r.device = all.Send(sel.objectAtIndex, uint(0)).Send(sel.retain)
			}
			all.Send(sel.release)
		}
	}
	if r.device == 0 {
		return nil, fmt.Errorf("%w: no Metal device (MTLCreateSystemDefaultDevice and MTLCopyAllDevices found none)", ErrUnavailable)
	}
	r.name = goString(r.device.Send(sel.name))
	if r.queue = r.device.Send(sel.newQueue); r.queue == 0 {
		r.close()
		return nil, &CallError{Call: "newCommandQueue"}
	}
	// Fast math off: IEEE rounding of +, −, ×, fma and a correctly handled
	// sqrt, which the exact encode path relies on.
	opts := objc.ID(objc.GetClass("MTLCompileOptions")).Send(sel.new)
	opts.Send(sel.setFastMath, false)
	if objc.Send[bool](opts, sel.responds, sel.setMathMode) {
		opts.Send(sel.setMathMode, int(mathModeSafe)) // macOS 15+, where fastMathEnabled is deprecated
	}
	var cerr objc.ID
	r.library = r.device.Send(sel.newLibrary, nsString(Source()), opts, unsafe.Pointer(&cerr))
	opts.Send(sel.release)
	if r.library == 0 {
		r.close()
		return nil, &CallError{Call: "newLibraryWithSource", Desc: errorText(cerr)}
	}
	for _, k := range kernelNames {
		fn := r.library.Send(sel.newFunction, nsString(k))
		if fn == 0 {
			r.close()
			return nil, &CallError{Call: "newFunctionWithName " + k, Desc: "no such function in the library"}
		}
		var perr objc.ID
		pso := r.device.Send(sel.newPipeline, fn, unsafe.Pointer(&perr))
		fn.Send(sel.release)
		if pso == 0 {
			r.close()
			return nil, &CallError{Call: "newComputePipelineState " + k, Desc: errorText(perr)}
		}
		r.pipelines[k] = pso
		r.threads[k] = int(objc.Send[uint](pso, sel.maxThreads))
	}
	return r, nil
}

func (r *metalRunner) describe() string {
	unified := objc.Send[bool](r.device, sel.hasUnified)
	ws := objc.Send[uint64](r.device, sel.recommendedMax)
	return fmt.Sprintf("%s, unified memory %v, recommended working set %d MiB", r.name, unified, ws>>20)
}

func (r *metalRunner) maxThreads(kernel string) int { return r.threads[kernel] }

func (r *metalRunner) alloc(n int) (*Buffer, error) {
	obj := r.device.Send(sel.newBuffer, uint(n), uint(storageModeShared))
	if obj == 0 {
		return nil, &CallError{Call: "newBufferWithLength", Desc: fmt.Sprintf("%d bytes", n)}
	}
	p := objc.Send[unsafe.Pointer](obj, sel.contents)
	if p == nil {
		obj.Send(sel.release)
		return nil, &CallError{Call: "contents", Desc: "shared buffer without CPU address"}
	}
	return &Buffer{data: unsafe.Slice((*byte)(p), n), obj: uintptr(obj)}, nil
}

func (r *metalRunner) release(b *Buffer) {
	if b.obj != 0 {
		objc.ID(b.obj).Send(sel.release)
		b.obj = 0
	}
}

func (r *metalRunner) run(ds []dispatch) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pool := objc.ID(objc.GetClass("NSAutoreleasePool")).Send(sel.new)
	defer pool.Send(sel.drain)
	cb := r.queue.Send(sel.commandBuffer)
	if cb == 0 {
		return &CallError{Call: "commandBuffer"}
	}
	enc := cb.Send(sel.encoder)
	if enc == 0 {
		return &CallError{Call: "computeCommandEncoder"}
	}
	for _, d := range ds {
		pso, ok := r.pipelines[d.kernel]
		if !ok {
			enc.Send(sel.endEncoding)
			return &CallError{Call: "dispatch", Desc: "no pipeline " + d.kernel}
		}
		enc.Send(sel.setPipeline, pso)
		for i, b := range d.binds {
			if b.buf != nil {
				enc.Send(sel.setBuffer, objc.ID(b.buf.obj), uint(0), uint(i))
				continue
			}
			enc.Send(sel.setBytes, unsafe.Pointer(&b.bytes[0]), uint(len(b.bytes)), uint(i))
		}
		for i, n := range d.tgmem {
			n = (max(n, 1) + threadgroupMemoryAlign - 1) &^ (threadgroupMemoryAlign - 1)
			enc.Send(sel.setTGMem, uint(n), uint(i))
		}
		enc.Send(sel.dispatchGroups, mtlSize{uint(d.groups[0]), uint(d.groups[1]), uint(d.groups[2])}, mtlSize{uint(d.threads), 1, 1})
	}
	enc.Send(sel.endEncoding)
	cb.Send(sel.commit)
	cb.Send(sel.wait)
	if st := objc.Send[uint](cb, sel.status); st != commandBufferCompleted {
		return &CallError{Call: "command buffer", Desc: fmt.Sprintf("status %d: %s", st, errorText(cb.Send(sel.errorSel)))}
	}
	return nil
}

func (r *metalRunner) close() {
	for k, p := range r.pipelines {
		p.Send(sel.release)
		delete(r.pipelines, k)
	}
	for _, o := range []*objc.ID{&r.library, &r.queue, &r.device} {
		if *o != 0 {
			o.Send(sel.release)
			*o = 0
		}
	}
}

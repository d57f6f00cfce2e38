package cuda

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// buildStub compiles testdata/stubcuda.c with the given -D flags into a
// shared library in a temporary directory and returns its path.
func buildStub(t *testing.T, defines ...string) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("the stub driver is built for Linux only (GOOS=%s)", runtime.GOOS)
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found: cannot build the stub libcuda (apt-get install gcc)")
	}
	// Under qemu (GOARCH=arm64 on an amd64 host) gcc builds for the host,
	// and this process cannot load that library.
	machine, _ := exec.Command(gcc, "-dumpmachine").Output()
	arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	if arch == "" || !strings.HasPrefix(string(machine), arch) {
		t.Skipf("gcc builds for %q, this test binary is %s: no stub libcuda it can load", strings.TrimSpace(string(machine)), runtime.GOARCH)
	}
	out := filepath.Join(t.TempDir(), "libcuda.so.1")
	args := append([]string{"-shared", "-fPIC", "-O1", "-o", out, "testdata/stubcuda.c"}, defines...)
	if msg, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %v: %v\n%s", args, err, msg)
	}
	return out
}

func TestOpenMissingLibrary(t *testing.T) {
	_, err := Open(Options{Library: filepath.Join(t.TempDir(), "no-such-libcuda.so.1")})
	if !errors.Is(err, ErrNoCUDA) {
		t.Fatalf("Open with a missing library: %v, want ErrNoCUDA", err)
	}
}

func TestOpenLibraryFromEnv(t *testing.T) {
	t.Setenv(LibraryEnv, filepath.Join(t.TempDir(), "absent.so"))
	_, err := Open(Options{})
	if !errors.Is(err, ErrNoCUDA) || !strings.Contains(err.Error(), "absent.so") {
		t.Fatalf("Open with %s pointing nowhere: %v, want ErrNoCUDA naming the path", LibraryEnv, err)
	}
}

func TestOpenStubInitFails(t *testing.T) {
	lib := buildStub(t, "-DINIT_RESULT=100")
	_, err := Open(Options{Library: lib})
	if !errors.Is(err, ErrNoCUDA) {
		t.Fatalf("cuInit failing: %v, want ErrNoCUDA", err)
	}
	var de *DriverError
	if !errors.As(err, &de) || de.Code != 100 || de.Name != "CUDA_ERROR_NO_DEVICE" || de.Call != "cuInit" {
		t.Fatalf("cuInit failing: %#v, want a DriverError for cuInit with CUDA_ERROR_NO_DEVICE", de)
	}
	if !errors.Is(err, ErrCUDA) {
		t.Errorf("the driver error should also match ErrCUDA: %v", err)
	}
}

func TestOpenStubMissingSymbol(t *testing.T) {
	lib := buildStub(t, "-DOMIT_MEMALLOC")
	_, err := Open(Options{Library: lib})
	if !errors.Is(err, ErrNoCUDA) || !strings.Contains(err.Error(), "cuMemAlloc_v2") {
		t.Fatalf("driver without cuMemAlloc_v2: %v, want ErrNoCUDA naming the symbol", err)
	}
}

func TestOpenStubNoDevice(t *testing.T) {
	lib := buildStub(t, "-DDEVICE_COUNT=0")
	if _, err := Open(Options{Library: lib}); !errors.Is(err, ErrNoCUDA) {
		t.Fatalf("no devices: %v, want ErrNoCUDA", err)
	}
	lib = buildStub(t)
	if _, err := Open(Options{Library: lib, Ordinal: 1}); !errors.Is(err, ErrNoCUDA) {
		t.Fatalf("device 1 of 1: %v, want ErrNoCUDA", err)
	}
}

func TestOpenStubOldDevice(t *testing.T) {
	lib := buildStub(t, "-DCC_MAJOR=6")
	if _, err := Open(Options{Library: lib}); !errors.Is(err, ErrNoCUDA) {
		t.Fatalf("compute capability 6.0: %v, want ErrNoCUDA", err)
	}
}

func TestOpenStubBadPTX(t *testing.T) {
	lib := buildStub(t, "-DMODULE_RESULT=218")
	_, err := Open(Options{Library: lib})
	var de *DriverError
	if errors.Is(err, ErrNoCUDA) || !errors.As(err, &de) || de.Name != "CUDA_ERROR_INVALID_PTX" {
		t.Fatalf("module load failing: %v, want a CUDA_ERROR_INVALID_PTX DriverError (not ErrNoCUDA)", err)
	}
}

// stubHooks binds the stub's test-only entry points.
type stubHooks struct {
	lastLaunch   func(out *[16]uint64)
	ptxHead      func(out *[16]byte)
	functionName func(i int32) string
}

func openStub(t *testing.T) (*Device, stubHooks) {
	t.Helper()
	path := buildStub(t)
	d, err := Open(Options{Library: path})
	if err != nil {
		t.Fatalf("Open(stub): %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	lib, err := openLibrary(path)
	if err != nil {
		t.Fatal(err)
	}
	var h stubHooks
	for _, s := range []struct {
		f    any
		name string
	}{{&h.lastLaunch, "stub_last_launch"}, {&h.ptxHead, "stub_ptx_head"}, {&h.functionName, "stub_function_name"}} {
		if err := lib.bind(s.f, s.name); err != nil {
			t.Fatal(err)
		}
	}
	return d, h
}

func TestStubDeviceMemoryAndLaunch(t *testing.T) {
	d, hooks := openStub(t)
	if d.Name() != "Stub GPU" || d.Memory() != 1<<30 || d.Multiprocessors() != 4 || d.DriverVersion() != 12040 {
		t.Fatalf("device properties: %q %d %d %d", d.Name(), d.Memory(), d.Multiprocessors(), d.DriverVersion())
	}
	var head [16]byte
	hooks.ptxHead(&head)
	last := kernelModules[len(kernelModules)-1].ptx
	if !bytes.HasPrefix(head[:], []byte(last[:15])) {
		t.Errorf("the driver was handed %q, not the embedded PTX", head)
	}
	i := 0
	for _, m := range kernelModules {
		for _, k := range m.kernels {
			if got := hooks.functionName(int32(i)); got != k {
				t.Errorf("function %d looked up as %q, want %q", i, got, k)
			}
			i++
		}
	}

	buf, err := d.Alloc(64)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Write(buf, 8, []byte("turboquant")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 20)
	if err := d.Read(got, buf, 0); err != nil {
		t.Fatal(err)
	}
	if want := append(make([]byte, 8), "turboquant\x00\x00"...); !bytes.Equal(got, want) {
		t.Fatalf("round trip through the stub: %q, want %q", got, want)
	}
	other, err := d.Alloc(16)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Copy(other, 0, buf, 8, 10); err != nil {
		t.Fatal(err)
	}
	got = make([]byte, 10)
	if err := d.Read(got, other, 0); err != nil || string(got) != "turboquant" {
		t.Fatalf("device copy: %q %v", got, err)
	}
	for _, err := range []error{
		d.Write(buf, 60, make([]byte, 5)),
		d.Read(make([]byte, 65), buf, 0),
		d.Copy(other, 8, buf, 0, 9),
		d.Write(buf, -1, nil),
	} {
		if !errors.Is(err, ErrLength) {
			t.Errorf("out-of-range copy: %v, want ErrLength", err)
		}
	}

	if err := d.launch("tq_attend_reduce", dim3{3, 2, 1}, dim3{128, 1, 1}, 4096,
		buf, int32(-7), uint32(9), float32(0.5), uint64(1)<<40); err != nil {
		t.Fatal(err)
	}
	var l [16]uint64
	hooks.lastLaunch(&l)
	want := [16]uint64{2, 3, 2, 1, 128, 1, 1, 4096, buf.ptr, 0xfffffff9, 9, 0x3f000000, 1 << 40}
	if l != want {
		t.Fatalf("launch recorded %v, want %v", l, want)
	}
	if ms, err := d.Time(func() error { return nil }); err != nil || ms != 1.5 {
		t.Fatalf("Time: %v %v", ms, err)
	}
	if err := d.Free(buf); err != nil {
		t.Fatal(err)
	}
	if err := d.launch("tq_attend_reduce", dim3{1, 1, 1}, dim3{1, 1, 1}, 0, buf); !errors.Is(err, ErrLength) {
		t.Fatalf("launch with a freed buffer: %v, want ErrLength", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Alloc(8); !errors.Is(err, ErrCUDA) {
		t.Fatalf("Alloc after Close: %v, want ErrCUDA", err)
	}
}

package metal

// The Linux harness: the MSL kernels compiled as C++ with clang++-16 behind
// testdata/msl_host.h, driven through the same Device, Encoder and Pool
// code as the Metal binding (a runner that sends each dispatch to the
// driver process instead of a command queue). Tests that need it skip
// when clang++-16 is absent.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// hostCompiler is the compiler the harness uses (CI installs clang-16).
const hostCompiler = "clang++-16"

var harness struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if harness.dir != "" {
		os.RemoveAll(harness.dir)
	}
	os.Exit(code)
}

// buildHarness writes the kernels (with [[threadgroup(i)]] renamed, the one
// MSL spelling a macro cannot neutralise, see msl_host.h) and the driver to
// a temporary directory and compiles them.
func buildHarness() (string, error) {
	cc, err := exec.LookPath(hostCompiler)
	if err != nil {
		return "", fmt.Errorf("%s not found (apt-get install clang-16): %w", hostCompiler, err)
	}
	dir, err := os.MkdirTemp("", "metal-harness")
	if err != nil {
		return "", err
	}
	harness.dir = dir
	for _, sub := range []string{"kernels", "testdata"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return "", err
		}
	}
	for _, f := range kernelFiles {
		src := strings.ReplaceAll(f.src, "[[threadgroup(", "[[tq_threadgroup(")
		if err := os.WriteFile(filepath.Join(dir, "kernels", f.name), []byte(src), 0o644); err != nil {
			return "", err
		}
	}
	for _, f := range []string{"msl_host.h", "driver.cpp"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, "testdata", f), b, 0o644); err != nil {
			return "", err
		}
	}
	bin := filepath.Join(dir, "driver")
	// -ffp-contract=off: no fused multiply-adds beyond the kernels' own fma().
	cmd := exec.Command(cc, "-std=c++20", "-O2", "-ffp-contract=off", "-Wall", "-Werror", "-Wno-unknown-attributes",
		"-Wno-unused-function", "-o", bin, "driver.cpp")
	cmd.Dir = filepath.Join(dir, "testdata")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("compiling the MSL kernels as C++: %v\n%s", err, out)
	}
	return bin, nil
}

// testDevice is a device the kernel tests run on.
type testDevice struct {
	name string
	dev  *Device
}

var metalDevice struct {
	once sync.Once
	dev  *Device
	err  error
}

// testDevices returns the devices here: the C++ harness where clang++-16
// is installed, and the Metal device on a Mac that has one. With neither
// the test skips, saying what is missing.
func testDevices(t testing.TB) []testDevice {
	t.Helper()
	var out []testDevice
	harness.once.Do(func() { harness.bin, harness.err = buildHarness() })
	switch {
	case harness.err == nil:
		out = append(out, testDevice{"host", &Device{r: &hostRunner{bin: harness.bin}}})
	case !strings.Contains(harness.err.Error(), "not found"):
		t.Fatal(harness.err)
	}
	metalDevice.once.Do(func() { metalDevice.dev, metalDevice.err = Open() })
	if metalDevice.err == nil {
		out = append(out, testDevice{"metal", metalDevice.dev})
	} else if !errors.Is(metalDevice.err, ErrUnavailable) {
		t.Fatalf("opening the Metal device: %v", metalDevice.err)
	}
	if os.Getenv("TQ_REQUIRE_MSL_HARNESS") != "" && harness.err != nil {
		t.Fatalf("TQ_REQUIRE_MSL_HARNESS is set but the MSL host harness is unavailable: %v", harness.err)
	}
	if len(out) == 0 {
		t.Skipf("no device to run the kernels on: MSL host harness: %v; Metal: %v", harness.err, metalDevice.err)
	}
	return out
}

type hostRunner struct{ bin string }

func (h *hostRunner) alloc(n int) (*Buffer, error) { return &Buffer{data: make([]byte, n)}, nil }
func (h *hostRunner) release(*Buffer)              {}
func (h *hostRunner) maxThreads(string) int        { return maxEncodeDim }
func (h *hostRunner) describe() string             { return "MSL kernels as C++ (" + hostCompiler + ")" }
func (h *hostRunner) close()                       {}

// run sends the whole command buffer to one driver process: the distinct
// buffers (inline setBytes arguments as buffers of their own), then the
// dispatches by buffer number; the buffers come back after the last one.
func (h *hostRunner) run(ds []dispatch) error {
	if len(ds) == 0 {
		return nil
	}
	var bufs [][]byte
	owner := map[*Buffer]int{}
	var body bytes.Buffer
	le := binary.LittleEndian
	binary.Write(&body, le, int32(len(ds)))
	for _, d := range ds {
		binary.Write(&body, le, int32(len(d.kernel)))
		body.WriteString(d.kernel)
		binary.Write(&body, le, []int32{int32(d.groups[0]), int32(d.groups[1]), int32(d.groups[2]), int32(d.threads), int32(len(d.binds))})
		for _, b := range d.binds {
			id, ok := owner[b.buf]
			if b.buf == nil || !ok {
				id = len(bufs)
				if b.buf != nil {
					owner[b.buf] = id
					bufs = append(bufs, b.buf.data)
				} else {
					bufs = append(bufs, b.bytes)
				}
			}
			binary.Write(&body, le, int32(id))
		}
		binary.Write(&body, le, int32(len(d.tgmem)))
		for _, n := range d.tgmem {
			binary.Write(&body, le, int64(n))
		}
	}
	var in bytes.Buffer
	binary.Write(&in, le, int32(len(bufs)))
	for _, b := range bufs {
		binary.Write(&in, le, int64(len(b)))
		in.Write(b)
	}
	in.Write(body.Bytes())
	cmd := exec.Command(h.bin)
	cmd.Stdin = &in
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return &CallError{Call: "host command buffer " + ds[0].kernel + "…", Desc: fmt.Sprintf("%v: %s", err, stderr.String())}
	}
	res := out.Bytes()
	for _, b := range bufs {
		if len(res) < len(b) {
			return &CallError{Call: "host command buffer", Desc: "short output"}
		}
		copy(b, res[:len(b)]) // inline arguments are copies: writing them back is harmless
		res = res[len(b):]
	}
	return nil
}

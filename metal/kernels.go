package metal

import (
	_ "embed"
	"strings"
)

// The MSL kernels, compiled by the device at Open (newLibraryWithSource:
// has no include path, so Source concatenates them in order).
var (
	//go:embed kernels/common.metal
	commonMSL string
	//go:embed kernels/encode.metal
	encodeMSL string
	//go:embed kernels/attend.metal
	attendMSL string
)

// kernelFiles are the sources in the order Source joins them.
var kernelFiles = []struct{ name, src string }{
	{"common.metal", commonMSL}, {"encode.metal", encodeMSL}, {"attend.metal", attendMSL},
}

// kernelNames are the entry points Open builds pipelines for.
var kernelNames = []string{"tq_encode_mse", "tq_logits", "tq_attend_partial", "tq_attend_reduce"}

// Source is the MSL library the device compiles: every kernel file, in
// order.
func Source() string {
	var b strings.Builder
	for _, f := range kernelFiles {
		b.WriteString("// ---- " + f.name + "\n")
		b.WriteString(f.src)
	}
	return b.String()
}

// Launch geometry shared with the kernels (NT and MAX_G in common.metal).
const (
	threadsPerGroup = 128
	maxGroup        = 16
	maxEncodeDim    = 1024 // one thread per coordinate
)

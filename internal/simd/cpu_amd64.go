//go:build !purego && !noasm

package simd

import (
	"os"
	"strings"

	"github.com/klauspost/cpuid/v2"
)

// cpu is this CPU's features less those named in the environment variable
// TQ_CPU_DISABLE, read once at start: cpuid's names, comma-separated (e.g.
// AVX512VBMI), and AVX512 for every AVX-512 feature. The kernels are chosen
// from it, so that one machine can run, test and time what a CPU without
// those features runs (TQ_CPU_DISABLE=AVX512: an AVX2-only CPU).
var cpu = cpuFeatures(os.Getenv("TQ_CPU_DISABLE"))

func cpuFeatures(disable string) cpuid.CPUInfo {
	c := cpuid.CPU
	for _, name := range strings.Split(disable, ",") {
		name = strings.TrimSpace(name)
		if strings.EqualFold(name, "AVX512") {
			for _, f := range c.FeatureSet() {
				if strings.HasPrefix(f, "AVX512") {
					c.Disable(cpuid.ParseFeature(f))
				}
			}
			continue
		}
		if f := cpuid.ParseFeature(name); f != cpuid.UNKNOWN {
			c.Disable(f)
		}
	}
	return c
}

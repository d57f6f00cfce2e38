//go:build !purego && !noasm

package simd

import (
	"testing"

	"github.com/klauspost/cpuid/v2"
)

// TestCPUFeaturesDisable: TQ_CPU_DISABLE's names turn features off, AVX512
// turns off every AVX-512 feature, and unknown names change nothing.
func TestCPUFeaturesDisable(t *testing.T) {
	if c := cpuFeatures(""); c.FeatureSet() == nil || len(c.FeatureSet()) != len(cpuid.CPU.FeatureSet()) {
		t.Fatalf("no names: %d features, the CPU has %d", len(c.FeatureSet()), len(cpuid.CPU.FeatureSet()))
	}
	c := cpuFeatures(" AVX2 , nonsense,BMI2")
	if c.Supports(cpuid.AVX2) || c.Supports(cpuid.BMI2) {
		t.Fatal("AVX2 and BMI2 are still on")
	}
	if cpuid.CPU.Supports(cpuid.SSE2) != c.Supports(cpuid.SSE2) {
		t.Fatal("SSE2 changed")
	}
	c = cpuFeatures("avx512")
	for _, f := range []cpuid.FeatureID{cpuid.AVX512F, cpuid.AVX512BW, cpuid.AVX512VL, cpuid.AVX512VNNI, cpuid.AVX512VBMI} {
		if c.Supports(f) {
			t.Fatalf("AVX512: %v is still on", f)
		}
	}
	if cpuid.CPU.Supports(cpuid.AVX2) != c.Supports(cpuid.AVX2) {
		t.Fatal("AVX512: AVX2 changed")
	}
}

//go:build linux && !purego && !noasm

package simd

import (
	"fmt"
	"testing"
)

// TestAxpyCodesQ8AVX2CodeLayouts is TestAxpyCodesQ8CodeLayouts for the AVX2
// integer value paths, forced whatever this CPU has.
func TestAxpyCodesQ8AVX2CodeLayouts(t *testing.T) {
	eachFencedValues8Case(t, func(c values8Case, atEnd bool) {
		want := c.run(t, Generic)
		for name, vk := range avx2Values() {
			sameBits(t, fmt.Sprintf("AVX2 integer values (%s) %v atEnd=%v", name, c, atEnd), c.runAVX2Values(t, vk), want)
		}
	})
}

//go:build linux && !purego && !noasm

package simd

import (
	"fmt"
	"testing"
)

// TestAxpyCodesQ8AVX2CodeLayouts is TestAxpyCodesQ8CodeLayouts for the AVX2
// integer value path, forced whatever this CPU has.
func TestAxpyCodesQ8AVX2CodeLayouts(t *testing.T) {
	eachFencedValues8Case(t, func(c values8Case, atEnd bool) {
		sameBits(t, fmt.Sprintf("AVX2 integer values %v atEnd=%v", c, atEnd), c.runAVX2Values(t), c.run(t, Generic))
	})
}

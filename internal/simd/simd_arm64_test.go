//go:build !purego && !noasm

package simd

import "testing"

// On arm64 the assembly build must pick NEON: if registration broke, every
// other test would quietly compare the generic twin with itself.
func TestNEONIsBest(t *testing.T) {
	if !Available(NEON) || Best() != NEON || Active() != NEON {
		t.Fatalf("NEON not registered: best %v, active %v", Best(), Active())
	}
}

package vec

import (
	"math"
	"testing"
)

func TestNonFiniteAndDot64(t *testing.T) {
	x := []float32{1, 2, 3}
	if i := NonFinite(x); i != -1 {
		t.Fatalf("NonFinite of finite = %d", i)
	}
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		if i := NonFinite([]float32{0, 1, bad, bad}); i != 2 {
			t.Fatalf("NonFinite(%v) = %d, want 2", bad, i)
		}
	}
	if got := Dot64(x, []float32{4, 5, 6, 7}); got != 32 {
		t.Fatalf("Dot64 = %v, want 32", got)
	}
}

package hadamard

import (
	"fmt"
	"math"
	"math/bits"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/turboquant-go/tq/internal/rng"
)

// denseHadamard returns entry (i, j) of the normalised Sylvester matrix.
func denseHadamard(n, i, j int) float64 {
	v := 1 / math.Sqrt(float64(n))
	if bits.OnesCount(uint(i&j))%2 == 1 {
		return -v
	}
	return v
}

// mixedVector returns values spanning several orders of magnitude, so that
// any change in the order of operations shows up in the low bits.
func mixedVector(n int, seed uint64) []float32 {
	s := rng.New(seed)
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(s.Norm() * math.Pow(10, float64(s.Intn(7)-3)))
	}
	return x
}

func TestFWHTMatchesDenseMatrix(t *testing.T) {
	for n := 1; n <= 4096; n *= 2 {
		src := rng.New(uint64(n))
		x := make([]float64, n)
		for i := range x {
			x[i] = src.Norm()
		}
		want := make([]float64, n)
		for i := range want {
			for j, v := range x {
				want[i] += denseHadamard(n, i, j) * v
			}
		}
		got := append([]float64(nil), x...)
		FWHT64(got)
		require.InDeltaSlice(t, want, got, 1e-12*math.Sqrt(float64(n)), "n=%d", n)

		got32 := make([]float32, n)
		for i, v := range x {
			got32[i] = float32(v)
		}
		FWHT(got32)
		for i := range want {
			require.InDelta(t, want[i], got32[i], 1e-5*math.Sqrt(float64(n)), "n=%d i=%d", n, i)
		}
	}
}

// The radix-8/4 kernel must perform exactly the textbook butterflies.
func TestFWHTBitIdenticalToRadix2(t *testing.T) {
	for n := 1; n <= 4096; n *= 2 {
		x := mixedVector(n, 7)
		want := append([]float32(nil), x...)
		naiveFWHT(want)
		got := append([]float32(nil), x...)
		FWHTUnscaled(got)
		require.Equal(t, want, got, "n=%d", n)

		x64 := make([]float64, n)
		for i, v := range x {
			x64[i] = float64(v)
		}
		w64 := append([]float64(nil), x64...)
		naiveFWHT(w64)
		fwht(x64)
		require.Equal(t, w64, x64, "float64 n=%d", n)
	}
}

func norm(x []float32) float64 {
	s := 0.0
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

func TestFWHTIsAnInvolution(t *testing.T) {
	for n := 1; n <= 4096; n *= 2 {
		x := mixedVector(n, 3)
		y := append([]float32(nil), x...)
		FWHT(y)
		FWHT(y)
		// Rounding error is relative to the norm, not to each coordinate:
		// about one ulp per level for each of the two transforms.
		tol := 2 * float64(1+bits.Len(uint(n))) * 0x1p-23 * norm(x)
		for i := range x {
			require.InDelta(t, x[i], y[i], tol, "n=%d i=%d", n, i)
		}
	}
}

func TestFWHTUnscaledIsScaledFWHT(t *testing.T) {
	x := mixedVector(256, 11)
	a := append([]float32(nil), x...)
	b := append([]float32(nil), x...)
	FWHT(a)
	FWHTUnscaled(b)
	for i := range a {
		// 1/√256 = 1/16 exactly, so the two agree bit for bit.
		require.Equal(t, a[i], b[i]/16)
	}
}

func TestFWHTPanicsOnBadLength(t *testing.T) {
	for _, n := range []int{0, 3, 6, 100, 1000} {
		assert.Panics(t, func() { FWHT(make([]float32, n)) }, "n=%d", n)
		assert.Panics(t, func() { FWHT64(make([]float64, n)) }, "n=%d", n)
		assert.Panics(t, func() { FWHTUnscaled(make([]float32, n)) }, "n=%d", n)
	}
}

func TestFWHTStaysInBounds(t *testing.T) {
	for n := 1; n <= 1024; n *= 2 {
		buf := make([]float32, n+2)
		for i := range buf {
			buf[i] = 1
		}
		buf[0], buf[n+1] = -7, -9
		FWHT(buf[1 : n+1])
		require.Equal(t, float32(-7), buf[0], "n=%d", n)
		require.Equal(t, float32(-9), buf[n+1], "n=%d", n)
	}
}

func TestFWHTDoesNotAllocate(t *testing.T) {
	x := mixedVector(1024, 1)
	x64 := make([]float64, 1024)
	allocs := testing.AllocsPerRun(100, func() {
		FWHT(x)
		FWHT64(x64)
		FWHTUnscaled(x)
	})
	require.Zero(t, allocs)
}

func ExampleFWHT() {
	x := []float32{1, 0, 0, 0}
	FWHT(x) // a basis vector becomes a flat vector of norm 1
	fmt.Println(x)
	FWHT(x) // H/√n is its own inverse
	fmt.Println(x)
	// Output:
	// [0.5 0.5 0.5 0.5]
	// [1 0 0 0]
}

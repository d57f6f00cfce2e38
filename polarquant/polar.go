package polarquant

import (
	"errors"
	"math"
)

// Levels is the depth of the polar recursion: a block of 2^Levels = 16
// coordinates ends as one radius.
const Levels = 4

// blockLen is the number of coordinates that share one stored radius.
const blockLen = 1 << Levels

var (
	// ErrDimension reports a dimension that is not a positive multiple of 16.
	ErrDimension = errors.New("polarquant: dimension must be a positive multiple of 16")
	// ErrOverflow reports a block radius (the norm of 16 consecutive
	// coordinates) too large for fp16 (above 65504 after rounding).
	ErrOverflow = errors.New("polarquant: block radius overflows fp16")
	// ErrNonFinite reports a NaN or ±Inf input component.
	ErrNonFinite = errors.New("polarquant: non-finite input")
)

// Forward is the exact float64 polar transform of y (len(y) a positive
// multiple of 16). angles[ℓ-1] receives the len(y)>>ℓ level-ℓ angles:
// level 1 is atan2(y[2i+1], y[2i]) in [0, 2π); level ℓ > 1 is
// atan2(r[2i+1], r[2i]) in [0, π/2] on the previous level's radii. radii
// receives the len(y)/16 level-4 radii. Forward is the reference, not the
// hot path: it calls atan2 and allocates one scratch slice. It panics if a
// length is wrong.
func Forward(radii []float64, angles *[Levels][]float64, y []float64) {
	d := len(y)
	checkShapes(d, radii, angles)
	// r holds the current level's radii, shrinking in place level by level.
	r := make([]float64, d/2)
	a := angles[0]
	for i := range r {
		x, z := y[2*i], y[2*i+1]
		r[i] = math.Hypot(x, z)
		t := math.Atan2(z, x)
		if t < 0 {
			t += 2 * math.Pi
		}
		a[i] = t
	}
	for l := 1; l < Levels; l++ {
		a := angles[l]
		for i := range a {
			lo, hi := r[2*i], r[2*i+1]
			a[i] = math.Atan2(hi, lo)
			r[i] = math.Hypot(lo, hi)
		}
		r = r[:len(a)]
	}
	copy(radii, r)
}

// Inverse undoes Forward: it rebuilds y from the level-4 radii and all
// angles. Like Forward it allocates one scratch slice, and it panics if a
// length is wrong.
func Inverse(y []float64, radii []float64, angles *[Levels][]float64) {
	d := len(y)
	checkShapes(d, radii, angles)
	r := make([]float64, d/2)
	copy(r, radii)
	for l := Levels - 1; l >= 1; l-- {
		a := angles[l]
		// Expand backwards so r can grow in place.
		for i := len(a) - 1; i >= 0; i-- {
			s, c := math.Sincos(a[i])
			p := r[i]
			r[2*i], r[2*i+1] = p*c, p*s
		}
	}
	for i, t := range angles[0] {
		s, c := math.Sincos(t)
		y[2*i], y[2*i+1] = r[i]*c, r[i]*s
	}
}

func checkShapes(d int, radii []float64, angles *[Levels][]float64) {
	if d <= 0 || d%blockLen != 0 {
		panic("polarquant: len(y) must be a positive multiple of 16")
	}
	if len(radii) != d/blockLen {
		panic("polarquant: len(radii) must be len(y)/16")
	}
	for l := range angles {
		if len(angles[l]) != d>>(l+1) {
			panic("polarquant: len(angles[l]) must be len(y)>>(l+1)")
		}
	}
}

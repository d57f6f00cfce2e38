package hadamard

import (
	"math"
	"math/bits"

	"github.com/turboquant-go/tq/internal/simd"
)

// float is the element type of the generic kernels. float32 and float64 have
// different GC shapes, so each gets its own fully specialised instantiation.
type float interface{ ~float32 | ~float64 }

// FWHT applies the orthonormal Walsh–Hadamard transform H/√n to x in place.
// len(x) must be a power of two (1 included); FWHT panics otherwise, because a
// wrong length is a programmer error, not a data error. It runs in
// O(n log n) and does not allocate. The butterflies are exact IEEE adds and
// subtracts and the normalisation is one multiply per element, so the result
// is bit-identical on every platform.
func FWHT(x []float32) {
	mustPow2(len(x))
	fwht(x)
	scale(x, float32(normScale(len(x))))
}

// FWHT64 is FWHT in float64.
func FWHT64(x []float64) {
	mustPow2(len(x))
	fwht(x)
	scale(x, normScale(len(x)))
}

// FWHTUnscaled applies the unnormalised transform H·x in place, where H has
// entries ±1 (so H·H = n·I). It is FWHT without the final multiply by 1/√n,
// for callers that fold the scale elsewhere (the structured QJL sketch uses
// rows of exactly ±1). It panics unless len(x) is a power of two.
func FWHTUnscaled(x []float32) {
	mustPow2(len(x))
	fwht(x)
}

func isPow2(n int) bool { return n > 0 && n&(n-1) == 0 }

func mustPow2(n int) {
	if !isPow2(n) {
		panic("hadamard: length is not a power of two")
	}
}

// floorPow2 returns the largest power of two ≤ n (n ≥ 1).
func floorPow2(n int) int { return 1 << (bits.Len(uint(n)) - 1) }

// normScale is 1/√n, correctly rounded (math.Sqrt and the division are IEEE
// exact-rounding operations, so every platform gets the same constant). For n
// a power of four it is an exact power of two.
func normScale(n int) float64 { return 1 / math.Sqrt(float64(n)) }

// scale multiplies x by k. The explicit conversion forbids the compiler to
// fuse the product into a later addition (Go may fuse across statements), so
// results stay bit-identical between amd64 and arm64.
func scale[F float](x []F, k F) {
	if x32, ok := any(x).([]float32); ok {
		simd.Scale(x32, any(k).(float32))
		return
	}
	for i := range x {
		x[i] = F(x[i] * k)
	}
}

// fwht is the unnormalised in-place transform. The first three levels run in
// registers on blocks of 8, the rest as radix-8 / radix-4 / radix-2 passes that
// each do three, two or one levels per sweep over memory. Every output is the
// same sequence of butterflies as the textbook radix-2 loop, so the result is
// bit-identical to it (tested), just with 3× fewer loads and stores. For
// float32 the internal/simd kernels run the same butterflies in vectors.
func fwht[F float](x []F) {
	if x32, ok := any(x).([]float32); ok && simd.FWHT(x32, x32, nil) {
		return
	}
	n := len(x)
	switch {
	case n < 2:
		return
	case n == 2:
		x = x[:2:2]
		x[0], x[1] = x[0]+x[1], x[0]-x[1]
		return
	case n == 4:
		first4(x)
		return
	}
	first8(x)
	upper(x, 8)
}

// transform computes dst = H·(signs∘src), or dst = H·src when signs is nil,
// folding the sign flip and the copy from src into the first pass so that an
// out-of-place signed transform costs no more sweeps than an in-place one.
// dst and src have equal length and may be the same slice (not partially
// overlapping).
func transform[F float](dst, src, signs []F) {
	if d32, ok := any(dst).([]float32); ok {
		s32, k32 := any(src).([]float32), any(signs).([]float32)
		if simd.FWHT(d32, s32, k32) {
			return
		}
	}
	n := len(dst)
	src = src[:n:n]
	if n < 8 {
		if signs == nil {
			copy(dst, src)
		} else {
			signs = signs[:n:n]
			for i := range dst {
				dst[i] = src[i] * signs[i]
			}
		}
		fwht(dst)
		return
	}
	if signs == nil {
		for i := 0; i+8 <= n; i += 8 {
			a := src[i : i+8 : i+8]
			butterfly8(dst[i:i+8:i+8], a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
		}
	} else {
		signs = signs[:n:n]
		for i := 0; i+8 <= n; i += 8 {
			a := src[i : i+8 : i+8]
			s := signs[i : i+8 : i+8]
			butterfly8(dst[i:i+8:i+8], a[0]*s[0], a[1]*s[1], a[2]*s[2], a[3]*s[3], a[4]*s[4], a[5]*s[5], a[6]*s[6], a[7]*s[7])
		}
	}
	upper(dst, 8)
}

// upper runs the levels h, 2h, … n/2 in as few memory sweeps as possible.
func upper[F float](x []F, h int) {
	n := len(x)
	for ; 8*h <= n; h *= 8 {
		pass8(x, h)
	}
	if 4*h <= n {
		pass4(x, h)
		h *= 4
	}
	if 2*h <= n {
		pass2(x, h)
	}
}

func first4[F float](x []F) {
	x = x[:4:4]
	a0, a1 := x[0]+x[1], x[0]-x[1]
	a2, a3 := x[2]+x[3], x[2]-x[3]
	x[0], x[2] = a0+a2, a0-a2
	x[1], x[3] = a1+a3, a1-a3
}

func first8[F float](x []F) {
	n := len(x)
	for i := 0; i+8 <= n; i += 8 {
		a := x[i : i+8 : i+8]
		butterfly8(a, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
	}
}

// butterfly8 writes the 8-point transform of (a0…a7) to o.
func butterfly8[F float](o []F, a0, a1, a2, a3, a4, a5, a6, a7 F) {
	o = o[:8:8]
	b0, b1 := a0+a1, a0-a1
	b2, b3 := a2+a3, a2-a3
	b4, b5 := a4+a5, a4-a5
	b6, b7 := a6+a7, a6-a7
	c0, c2 := b0+b2, b0-b2
	c1, c3 := b1+b3, b1-b3
	c4, c6 := b4+b6, b4-b6
	c5, c7 := b5+b7, b5-b7
	o[0], o[4] = c0+c4, c0-c4
	o[1], o[5] = c1+c5, c1-c5
	o[2], o[6] = c2+c6, c2-c6
	o[3], o[7] = c3+c7, c3-c7
}

// pass2 does level h: pairs (j, j+h).
func pass2[F float](x []F, h int) {
	for i := 0; i < len(x); i += 2 * h {
		p := x[i : i+h : i+h]
		q := x[i+h : i+2*h : i+2*h]
		q = q[:len(p)]
		for j, a := range p {
			b := q[j]
			p[j], q[j] = a+b, a-b
		}
	}
}

// pass4 does levels h and 2h in one sweep.
func pass4[F float](x []F, h int) {
	for i := 0; i < len(x); i += 4 * h {
		p0 := x[i : i+h : i+h]
		p1 := x[i+h : i+2*h : i+2*h]
		p2 := x[i+2*h : i+3*h : i+3*h]
		p3 := x[i+3*h : i+4*h : i+4*h]
		p1, p2, p3 = p1[:len(p0)], p2[:len(p0)], p3[:len(p0)]
		for j, a0 := range p0 {
			a1, a2, a3 := p1[j], p2[j], p3[j]
			b0, b1 := a0+a1, a0-a1
			b2, b3 := a2+a3, a2-a3
			p0[j], p2[j] = b0+b2, b0-b2
			p1[j], p3[j] = b1+b3, b1-b3
		}
	}
}

// pass8 does levels h, 2h and 4h in one sweep.
func pass8[F float](x []F, h int) {
	for i := 0; i < len(x); i += 8 * h {
		p0 := x[i : i+h : i+h]
		p1 := x[i+h : i+2*h : i+2*h]
		p2 := x[i+2*h : i+3*h : i+3*h]
		p3 := x[i+3*h : i+4*h : i+4*h]
		p4 := x[i+4*h : i+5*h : i+5*h]
		p5 := x[i+5*h : i+6*h : i+6*h]
		p6 := x[i+6*h : i+7*h : i+7*h]
		p7 := x[i+7*h : i+8*h : i+8*h]
		m := len(p0)
		p1, p2, p3, p4, p5, p6, p7 = p1[:m], p2[:m], p3[:m], p4[:m], p5[:m], p6[:m], p7[:m]
		for j, a0 := range p0 {
			a1, a2, a3, a4, a5, a6, a7 := p1[j], p2[j], p3[j], p4[j], p5[j], p6[j], p7[j]
			b0, b1 := a0+a1, a0-a1
			b2, b3 := a2+a3, a2-a3
			b4, b5 := a4+a5, a4-a5
			b6, b7 := a6+a7, a6-a7
			c0, c2 := b0+b2, b0-b2
			c1, c3 := b1+b3, b1-b3
			c4, c6 := b4+b6, b4-b6
			c5, c7 := b5+b7, b5-b7
			p0[j], p4[j] = c0+c4, c0-c4
			p1[j], p5[j] = c1+c5, c1-c5
			p2[j], p6[j] = c2+c6, c2-c6
			p3[j], p7[j] = c3+c7, c3-c7
		}
	}
}

package simd

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/turboquant-go/tq/internal/half"
)

// These tests call each level's kernels directly, below the wrappers that
// finish tails and hide stray writes past d8: a kernel must write exactly
// its cells (the first d8 of each row, n rows or outputs) and nothing in
// the gaps between rows. They run for every vector level present, so the
// NEON kernels run here under qemu and the AVX2 ones on amd64.

// poisoned returns n floats set to guard, with guard cells on both sides.
func poisoned(n int) ([]float32, func(t *testing.T)) {
	s, ok := guarded(n)
	for i := range s {
		s[i] = guard
	}
	return s, ok
}

// codesWithNorms returns n codes of the given layout, each with a finite fp16
// norm, in a buffer with Slack spare bytes.
func codesWithNorms(r *rand.Rand, n, stride, normOff int) []byte {
	codes := make([]byte, n*stride, n*stride+Slack)
	for i := range codes {
		codes[i] = byte(r.Uint32())
	}
	for t := range n {
		h := half.FromFloat32(float32(r.ExpFloat64()))
		codes[t*stride+normOff], codes[t*stride+normOff+1] = byte(h), byte(h>>8)
	}
	return codes
}

func TestDecodeKernelsWriteOnlyTheirCells(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, l := range vectorLevels(t) {
		k := impls[l]
		for _, bits := range []int{1, 2, 3, 4, 8} {
			for _, d8 := range []int{8, 16, 24, 40, 128} {
				for _, n := range []int{1, 3, 300} {
					idxBytes := (d8*bits + 7) / 8
					idxOff, normOff := 2, 0
					if r.IntN(2) == 0 { // the norm after the indices
						idxOff, normOff = 0, idxBytes
					}
					stride := 2 + idxBytes + r.IntN(3)
					codes := codesWithNorms(r, n, stride, normOff)
					tab := make([]float32, 1<<bits)
					for i := range tab {
						tab[i] = float32(r.NormFloat64())
					}
					ds := d8 + 1 + r.IntN(9)
					want := make([]float32, (n-1)*ds+d8)
					decodeCodesGeneric(want, ds, tab, bits, codes, stride, idxOff, normOff, n, d8, 0, 0)
					got, ok := poisoned(len(want))
					switch bits {
					case 1, 2, 3:
						var t8 [8]float32
						for i := range t8 {
							t8[i] = tab[i%(1<<bits)]
						}
						k.decodeSmall(got, &t8, &laneShifts[bits], bits, codes, stride, idxOff, normOff, n, ds, d8)
					case 4:
						k.decode4(got, (*[16]float32)(tab), codes, stride, idxOff, normOff, n, ds, d8)
					case 8:
						k.decode8(got, (*[256]float32)(tab), codes, stride, idxOff, normOff, n, ds, d8)
					}
					ok(t)
					for i := range got {
						w := float32(guard)
						if i%ds < d8 {
							w = want[i]
						}
						if math.Float32bits(got[i]) != math.Float32bits(w) {
							t.Fatalf("%v bits=%d d8=%d n=%d dstStride=%d: cell %d (row %d, col %d) = %v, want %v",
								l, bits, d8, n, ds, i, i/ds, i%ds, got[i], w)
						}
					}
				}
			}
		}
	}
}

func TestDecodeF16KernelWritesOnlyItsCells(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, l := range vectorLevels(t) {
		for _, d8 := range []int{8, 16, 24, 136} {
			for _, n := range []int{1, 2, 33} {
				stride := 2*d8 + 2*r.IntN(4)
				src := make([]byte, (n-1)*stride+2*d8)
				for i := range src {
					src[i] = byte(r.Uint32())
				}
				ds := d8 + 1 + r.IntN(9)
				got, ok := poisoned((n-1)*ds + d8)
				impls[l].decodeF16(got, src, stride, n, ds, d8)
				ok(t)
				for i, v := range got {
					if i%ds >= d8 {
						if v != guard {
							t.Fatalf("%v d8=%d n=%d: gap cell %d written (%v)", l, d8, n, i, v)
						}
						continue
					}
					s := src[(i/ds)*stride+2*(i%ds):]
					want := half.ToFloat32(uint16(s[0]) | uint16(s[1])<<8)
					if math.Float32bits(v) != math.Float32bits(want) && !(v != v && want != want) {
						t.Fatalf("%v d8=%d n=%d: cell %d = %v, want %v", l, d8, n, i, v, want)
					}
				}
			}
		}
	}
}

// asF16 rounds rows to fp16 in place and returns them as little-endian halves,
// so a kernel over the halves can be checked against the rounded floats.
func asF16(rows []float32) []byte {
	b := make([]byte, 2*len(rows))
	for i, v := range rows {
		h := half.FromFloat32(v)
		b[2*i], b[2*i+1] = byte(h), byte(h>>8)
		rows[i] = half.ToFloat32(h)
	}
	return b
}

// dotKernelFor returns level l's dot kernel for g = 1 or 4 query rows over
// float32 rows, or over fp16 rows (taking the bytes asF16 made); nil if absent.
func dotKernelFor(k *kernels, g int, f16 bool) func(out []float32, os int, q, rows []float32, hs []byte, n, d, d8, rs int) {
	k32, k16 := k.dot1, k.dot1F16
	if g == 4 {
		k32, k16 = k.dot4, k.dot4F16
	}
	switch {
	case !f16 && k32 != nil:
		return func(out []float32, os int, q, rows []float32, _ []byte, n, d, d8, rs int) {
			k32(out, os, q, rows, n, d, d8, rs, nil, 0)
		}
	case f16 && k16 != nil:
		return func(out []float32, os int, q, _ []float32, hs []byte, n, d, d8, rs int) {
			k16(out, os, q, hs, n, d, d8, rs, nil, 0)
		}
	}
	return nil
}

// axpyKernelFor is dotKernelFor for the axpy kernels.
func axpyKernelFor(k *kernels, g int, f16 bool) func(acc, w []float32, ws int, rows []float32, hs []byte, n, d, d8, rs int) {
	k32, k16 := k.axpy1, k.axpy1F16
	if g == 4 {
		k32, k16 = k.axpy4, k.axpy4F16
	}
	switch {
	case !f16 && k32 != nil:
		return func(acc, w []float32, ws int, rows []float32, _ []byte, n, d, d8, rs int) {
			k32(acc, w, ws, rows, n, d, d8, rs, nil, 0)
		}
	case f16 && k16 != nil:
		return func(acc, w []float32, ws int, _ []float32, hs []byte, n, d, d8, rs int) {
			k16(acc, w, ws, hs, n, d, d8, rs, nil, 0)
		}
	}
	return nil
}

func TestDotKernelsWriteOnlyTheirCells(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, l := range vectorLevels(t) {
		for _, f16 := range []bool{false, true} {
			for _, g := range []int{1, 4} {
				kernel := dotKernelFor(impls[l], g, f16)
				if kernel == nil {
					continue
				}
				for _, d8 := range []int{8, 16, 24, 32, 40, 136} {
					n := 1 + r.IntN(30)
					d := d8 + r.IntN(8) // columns past d8 are the wrapper's
					rs := d + r.IntN(3)
					os := n + 1 + r.IntN(3)
					q, rows := mixed(r, g*d), mixed(r, (n-1)*rs+d)
					var hs []byte
					if f16 {
						hs = asF16(rows)
					}
					got, ok := poisoned((g-1)*os + n)
					out0 := mixed(r, len(got)) // the kernels add to out
					for i := range got {
						if i%os < n {
							got[i] = out0[i]
						}
					}
					kernel(got, os, q, rows, hs, n, d, d8, rs)
					ok(t)
					for i, v := range got {
						qi, tk := i/os, i%os
						if tk >= n {
							if v != guard {
								t.Fatalf("%v f16=%v g=%d d8=%d: gap cell %d written (%v)", l, f16, g, d8, i, v)
							}
							continue
						}
						want, scale := float64(out0[i]), math.Abs(float64(out0[i]))
						for j := range d8 {
							p := float64(q[qi*d+j]) * float64(rows[tk*rs+j])
							want += p
							scale += math.Abs(p)
						}
						if !closeTo(v, float32(want), float32(scale), 1e-6) {
							t.Fatalf("%v f16=%v g=%d d8=%d: out[%d][%d] = %v, want %v", l, f16, g, d8, qi, tk, v, want)
						}
					}
				}
			}
		}
	}
}

func TestAxpyKernelsWriteOnlyTheirCells(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	for _, l := range vectorLevels(t) {
		for _, f16 := range []bool{false, true} {
			for _, g := range []int{1, 4} {
				kernel := axpyKernelFor(impls[l], g, f16)
				if kernel == nil {
					continue
				}
				for _, d8 := range []int{8, 16, 24, 32, 40, 48, 136} {
					n := 1 + r.IntN(30)
					d := d8 + r.IntN(8)
					rs := d + r.IntN(3)
					ws := n + r.IntN(3)
					w, rows := mixed(r, (g-1)*ws+n), mixed(r, (n-1)*rs+d)
					var hs []byte
					if f16 {
						hs = asF16(rows)
					}
					acc0 := mixed(r, g*d)
					got, ok := guarded(g * d)
					copy(got, acc0)
					kernel(got, w, ws, rows, hs, n, d, d8, rs)
					ok(t)
					for i, v := range got {
						ai, j := i/d, i%d
						if j >= d8 {
							if math.Float32bits(v) != math.Float32bits(acc0[i]) {
								t.Fatalf("%v f16=%v g=%d d8=%d d=%d: acc[%d][%d] past d8 changed", l, f16, g, d8, d, ai, j)
							}
							continue
						}
						want, scale := float64(acc0[i]), math.Abs(float64(acc0[i]))
						for tk := range n {
							p := float64(w[ai*ws+tk]) * float64(rows[tk*rs+j])
							want += p
							scale += math.Abs(p)
						}
						if !closeTo(v, float32(want), float32(scale), 1e-6) {
							t.Fatalf("%v f16=%v g=%d d8=%d: acc[%d][%d] = %v, want %v", l, f16, g, d8, ai, j, v, want)
						}
					}
				}
			}
		}
	}
}

// TestExpSumNEONBitIdentical: the NEON kernel rounds every step as exp32
// does (no fused multiply-adds), so each x[i] must match the generic twin
// bit for bit, including around the flush threshold.
func TestExpSumNEONBitIdentical(t *testing.T) {
	if !Available(NEON) {
		t.Skip("no NEON kernels on this CPU/build")
	}
	r := rand.New(rand.NewPCG(19, 20))
	x := make([]float32, 4096)
	for i := range x {
		switch i % 4 {
		case 0:
			x[i] = -float32(r.ExpFloat64() * 30)
		case 1: // near the flush threshold
			x[i] = expLo + float32(r.NormFloat64())
		case 2:
			x[i] = -float32(r.Float64())
		default:
			x[i] = math.Float32frombits(math.Float32bits(expLo) + uint32(r.IntN(5)) - 2)
		}
	}
	x[0], x[1], x[2], x[3] = 0, float32(math.Inf(-1)), -1e30, expLo
	for _, m := range []float32{0, 3.5} {
		for i := range x {
			x[i] += m
		}
		want := append([]float32(nil), x...)
		wantSum := expSumGeneric(want, m)
		got := append([]float32(nil), x...)
		var sum float32
		with(t, NEON, func() { sum = ExpSum(got, m) })
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("m=%v: exp(%v) = %v (%#08x), generic %v (%#08x)", m, x[i]-m, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			}
		}
		if math.Abs(float64(sum-wantSum)) > 1e-6*float64(wantSum) {
			t.Fatalf("m=%v: sum %v, generic %v", m, sum, wantSum)
		}
		for i := range x {
			x[i] -= m
		}
	}
}

func TestFusedKernelsWriteOnlyTheirCells(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, l := range vectorLevels(t) {
		k := impls[l]
		for _, bits := range []int{1, 2, 3, 4} {
			kind := 0
			if bits == 4 {
				kind = 1
			}
			for _, g := range []int{1, 4} {
				dot, axpy := k.dotCodes[kind][g/4], k.axpyCodes[kind][g/4]
				if dot == nil || axpy == nil {
					continue
				}
				for _, d8 := range []int{8, 16, 24, 64, 72, 136} {
					n := 1 + r.IntN(20)
					stride := 2 + (d8*bits+7)/8 + r.IntN(3)
					codes := codesWithNorms(r, n, stride, 0)
					tab := make([]float32, 1<<bits)
					for i := range tab {
						tab[i] = float32(r.NormFloat64())
					}
					cb := NewCodebook(tab, bits)
					rows := make([]float32, n*d8)
					decodeCodesGeneric(rows, d8, tab, bits, codes, stride, 2, 0, n, d8, 0, 0)

					// dot: out cells t < n of each row gain the dot product; the gaps stay.
					qs, os := d8+r.IntN(5), n+1+r.IntN(3)
					q := mixed(r, (g-1)*qs+d8)
					out, ok := poisoned((g-1)*os + n)
					out0 := mixed(r, len(out))
					for i := range out {
						if i%os < n {
							out[i] = out0[i]
						}
					}
					dot(out, os, q, qs, &cb.vec, cb.sh, bits, codes, stride, 2, 0, n, d8, nil)
					ok(t)
					for i, v := range out {
						qi, tk := i/os, i%os
						if tk >= n {
							if v != guard {
								t.Fatalf("%v dotCodes bits=%d g=%d d8=%d: gap cell %d written", l, bits, g, d8, i)
							}
							continue
						}
						want, scale := float64(out0[i]), math.Abs(float64(out0[i]))
						for j := range d8 {
							p := float64(q[qi*qs+j]) * float64(rows[tk*d8+j])
							want += p
							scale += math.Abs(p)
						}
						if !closeTo(v, float32(want), float32(scale), 2e-6) {
							t.Fatalf("%v dotCodes bits=%d g=%d d8=%d: out[%d][%d] = %v, want %v", l, bits, g, d8, qi, tk, v, want)
						}
					}

					// axpy: coordinates j < d8 of each acc row gain Σ w·row; the gaps stay.
					as, ws := d8+1+r.IntN(5), n+r.IntN(3)
					w := mixed(r, (g-1)*ws+n)
					acc, ok2 := poisoned((g-1)*as + d8)
					acc0 := mixed(r, len(acc))
					for i := range acc {
						if i%as < d8 {
							acc[i] = acc0[i]
						}
					}
					axpy(acc, as, w, ws, &cb.vec, cb.sh, bits, codes, stride, 2, 0, n, d8, nil)
					ok2(t)
					for i, v := range acc {
						ai, j := i/as, i%as
						if j >= d8 {
							if v != guard {
								t.Fatalf("%v axpyCodes bits=%d g=%d d8=%d: gap cell %d written", l, bits, g, d8, i)
							}
							continue
						}
						want, scale := float64(acc0[i]), math.Abs(float64(acc0[i]))
						for tk := range n {
							p := float64(w[ai*ws+tk]) * float64(rows[tk*d8+j])
							want += p
							scale += math.Abs(p)
						}
						if !closeTo(v, float32(want), float32(scale), 2e-6) {
							t.Fatalf("%v axpyCodes bits=%d g=%d d8=%d: acc[%d][%d] = %v, want %v", l, bits, g, d8, ai, j, v, want)
						}
					}
				}
			}
		}
	}
}

// TestElementwiseKernels calls each level's element-wise kernels directly:
// each covers exactly the first len&^7 elements (the wrapper's tail past
// that stays untouched), bit-identical to the generic twin.
func TestElementwiseKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, l := range vectorLevels(t) {
		k := impls[l]
		for _, n := range []int{8, 9, 15, 16, 17, 24, 100, 1000} {
			n8 := n &^ 7
			x := mixed(r, n)
			if n > 20 { // the extremes anywhere, not only in the first group
				x[r.IntN(n8)] = float32(math.Inf(1 - 2*r.IntN(2)))
				x[r.IntN(n8)] = 70000 * float32(1-2*r.IntN(2))
			}

			if k.max != nil {
				want := x[0]
				for _, v := range x[:n8] {
					want = max(want, v)
				}
				if got := k.max(x); math.Float32bits(got) != math.Float32bits(want) {
					t.Fatalf("%v max n=%d: %v, want %v", l, n, got, want)
				}
			}
			if k.maxAbsBits != nil {
				var want uint32
				for _, v := range x[:n8] {
					want = max(want, math.Float32bits(v)&0x7fffffff)
				}
				if got := k.maxAbsBits(x); got != want {
					t.Fatalf("%v maxAbsBits n=%d: %#x, want %#x", l, n, got, want)
				}
			}
			if k.scale != nil {
				kk := float32(r.NormFloat64())
				got, ok := guarded(n)
				copy(got, x)
				k.scale(got, kk)
				ok(t)
				for i, v := range got {
					want := x[i]
					if i < n8 {
						want *= kk
					}
					if math.Float32bits(v) != math.Float32bits(want) {
						t.Fatalf("%v scale n=%d: x[%d] = %v, want %v", l, n, i, v, want)
					}
				}
			}
			if k.addF64 != nil {
				buf := make([]float64, n+8)
				for i := range buf {
					buf[i] = r.NormFloat64() * 1e3
				}
				base := append([]float64(nil), buf...)
				k.addF64(buf[4:4+n], x)
				for i, v := range buf {
					want := base[i]
					if i >= 4 && i-4 < n8 {
						want += float64(x[i-4])
					}
					if math.Float64bits(v) != math.Float64bits(want) {
						t.Fatalf("%v addF64 n=%d: buf[%d] = %v, want %v", l, n, i, v, want)
					}
				}
			}
			if k.roundF16 != nil {
				got, ok := poisoned(n)
				k.roundF16(got, x)
				ok(t)
				for i, v := range got {
					want := float32(guard)
					if i < n8 {
						want = half.ToFloat32(half.FromFloat32(x[i]))
					}
					if math.Float32bits(v) != math.Float32bits(want) {
						t.Fatalf("%v roundF16 n=%d: dst[%d] = %v, want %v", l, n, i, v, want)
					}
				}
			}
			if k.encodeF16 != nil {
				buf := make([]byte, 2*n+8)
				for i := range buf {
					buf[i] = 0xA5
				}
				k.encodeF16(buf[4:4+2*n], x)
				for i, b := range buf {
					want := byte(0xA5)
					if j := (i - 4) / 2; i >= 4 && j < n8 {
						h := half.FromFloat32(x[j])
						want = byte(h >> (8 * ((i - 4) % 2)))
					}
					if b != want {
						t.Fatalf("%v encodeF16 n=%d: byte %d = %#x, want %#x", l, n, i, b, want)
					}
				}
			}
			if k.sumSquares != nil {
				var p [8]float64
				for i, v := range x[:n8] {
					p[i%8] += float64(v) * float64(v)
				}
				want := ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]))
				if got := k.sumSquares(x); math.Float64bits(got) != math.Float64bits(want) {
					t.Fatalf("%v sumSquares n=%d: %v, want %v", l, n, got, want)
				}
			}
		}
	}
}

// radix2 is the textbook transform of signs∘src (signs nil: none), the
// order of butterflies FWHT must reproduce bit for bit.
func radix2(src, signs []float32) []float32 {
	x := append([]float32(nil), src...)
	for i := range signs {
		x[i] *= signs[i]
	}
	for h := 1; h < len(x); h *= 2 {
		for i := 0; i < len(x); i += 2 * h {
			for j := i; j < i+h; j++ {
				x[j], x[j+h] = x[j]+x[j+h], x[j]-x[j+h]
			}
		}
	}
	return x
}

// TestFWHTKernels runs each level's FWHT (first8, then the radix-8/4/2
// passes, which the lengths 8 … 2^15 combine in every way) against radix2,
// out of place and in place, with and without signs.
func TestFWHTKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	for _, l := range vectorLevels(t) {
		for n := 8; n <= 1<<15; n *= 2 {
			src := mixed(r, n)
			signs := make([]float32, n)
			for i := range signs {
				signs[i] = float32(1 - 2*r.IntN(2))
			}
			for _, sg := range [][]float32{nil, signs} {
				want := radix2(src, sg)
				got, ok := guarded(n)
				inPlace := append([]float32(nil), src...)
				var ran, ranInPlace bool
				with(t, l, func() {
					ran = FWHT(got, src, sg)
					ranInPlace = FWHT(inPlace, inPlace, sg)
				})
				ok(t)
				if !ran || !ranInPlace {
					t.Fatalf("%v n=%d: no FWHT kernel ran", l, n)
				}
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) || math.Float32bits(inPlace[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%v n=%d signs=%v: [%d] = %v (in place %v), want %v", l, n, sg != nil, i, got[i], inPlace[i], want[i])
					}
				}
			}
		}
	}
}

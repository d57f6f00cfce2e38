package simd

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/turboquant-go/tq/internal/bitpack"
	"github.com/turboquant-go/tq/internal/half"
)

// vectorLevels are the non-generic levels this machine runs; each test
// compares them with the generic twin.
func vectorLevels(t *testing.T) []Level {
	var ls []Level
	for _, l := range []Level{AVX2, NEON} {
		if Available(l) {
			ls = append(ls, l)
		}
	}
	if len(ls) == 0 {
		t.Skipf("no vector kernels on this CPU/build (best level %v): only the generic path runs", Best())
	}
	return ls
}

// with runs f at level l.
func with(t *testing.T, l Level, f func()) {
	t.Helper()
	restore, err := Use(l)
	if err != nil {
		t.Fatal(err)
	}
	defer restore()
	f()
}

const guard = 12345.678

// guarded returns a slice of n floats with guard values on both sides, and
// a check that the guards are intact.
func guarded(n int) ([]float32, func(t *testing.T)) {
	buf := make([]float32, n+32)
	for i := range buf {
		buf[i] = guard
	}
	s := buf[16 : 16+n : 16+n]
	return s, func(t *testing.T) {
		t.Helper()
		for i := range 16 {
			if buf[i] != guard || buf[16+n+i] != guard {
				t.Fatalf("write outside the destination (guard %d clobbered)", i)
			}
		}
	}
}

// mixed returns values of mixed magnitude, with zeros and subnormals.
func mixed(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		switch r.IntN(10) {
		case 0:
			x[i] = 0
		case 1:
			x[i] = math.Float32frombits(r.Uint32()&0x7fffff) * float32(1-2*r.IntN(2)) // subnormal
		default:
			x[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(7)-3)))
		}
	}
	return x
}

// TestCodeRowsChecksTheLastNorm: a layout with the norm after the indices
// must hold the last code's norm inside the buffer, which the weight
// kernels of AxpyCodesQ8 read without bounds checks.
func TestCodeRowsChecksTheLastNorm(t *testing.T) {
	cb := NewCodebook(make([]float32, 8), 3)
	const d, idxBytes, stride, n = 64, 24, 26, 3 // indices at 0, norm at 24
	codes := make([]byte, (n-1)*stride+idxBytes)
	defer func() {
		if recover() == nil {
			t.Fatal("codeRows accepted a buffer that ends before the last norm")
		}
	}()
	codeRows(cb, codes, stride, 0, idxBytes, n, d, "test")
}

func TestDecodeCodesMatchesGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, l := range vectorLevels(t) {
		for _, bits := range []int{1, 2, 3, 4, 5, 6, 7, 8} {
			for _, d := range []int{8, 16, 24, 64, 100, 128, 130} {
				idxBytes := (d*bits + 7) / 8
				stride := 2 + idxBytes + r.IntN(5)
				n := 1 + r.IntN(70)
				tab := make([]float32, 1<<bits)
				for i := range tab {
					tab[i] = float32(r.NormFloat64())
				}
				// The exact-size buffer makes the last row take the generic path.
				codes := make([]byte, (n-1)*stride+2+idxBytes)
				for i := range codes {
					codes[i] = byte(r.Uint32())
				}
				for tk := range n { // finite fp16 norms
					h := half.FromFloat32(float32(r.ExpFloat64()))
					codes[tk*stride], codes[tk*stride+1] = byte(h), byte(h>>8)
				}
				ds := d + r.IntN(3)
				want := make([]float32, (n-1)*ds+d)
				decodeCodesGeneric(want, ds, tab, bits, codes, stride, 2, 0, n, d, 0, 0)
				cb := NewCodebook(tab, bits)
				for _, c := range [][]byte{codes, append(codes[:len(codes):len(codes)], 0, 0, 0, 0)[:len(codes)]} {
					got, ok := guarded(len(want))
					copy(got, want)
					for tk := range n { // poison the rows; the gaps between them must survive
						for j := range d {
							got[tk*ds+j] = -1
						}
					}
					with(t, l, func() { DecodeCodes(got, ds, cb, c, stride, 2, 0, n, d, nil) })
					ok(t)
					for i := range want {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%v bits=%d d=%d n=%d: element %d = %v, generic %v", l, bits, d, n, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

func TestDecodeF16Exhaustive(t *testing.T) {
	src := make([]byte, 2*65536)
	for h := range 65536 {
		src[2*h], src[2*h+1] = byte(h), byte(h>>8)
	}
	levels := append([]Level{Generic}, availableVector()...)
	for _, l := range levels {
		got, ok := guarded(65536)
		with(t, l, func() { DecodeF16(got, 65536, src, 2*65536, 1, 65536) })
		ok(t)
		for h := range 65536 {
			want := half.ToFloat32(uint16(h))
			if math.Float32bits(got[h]) != math.Float32bits(want) && !(want != want && got[h] != got[h]) {
				t.Fatalf("%v: half %#04x → %v, want %v", l, h, got[h], want)
			}
		}
	}
}

func availableVector() []Level {
	var ls []Level
	for _, l := range []Level{AVX2, NEON} {
		if Available(l) {
			ls = append(ls, l)
		}
	}
	return ls
}

func TestDecodeF16Strided(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, l := range vectorLevels(t) {
		for _, d := range []int{1, 7, 8, 9, 64, 100, 128} {
			n, stride := 1+r.IntN(9), 2*d+2*r.IntN(4)
			src := make([]byte, (n-1)*stride+2*d)
			for i := range src {
				src[i] = byte(r.Uint32())
			}
			want := make([]float32, n*d)
			with(t, Generic, func() { DecodeF16(want, d, src, stride, n, d) })
			got, ok := guarded(n * d)
			with(t, l, func() { DecodeF16(got, d, src, stride, n, d) })
			ok(t)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) && want[i] == want[i] {
					t.Fatalf("%v d=%d: element %d = %v, want %v", l, d, i, got[i], want[i])
				}
			}
		}
	}
}

// close reports whether got is within tol of want relative to scale, the
// sum of the absolute values of the terms (the bound on reordering error).
func closeTo(got, want, scale float32, tol float64) bool {
	return math.Abs(float64(got-want)) <= tol*float64(scale)+1e-30
}

func TestDotMatchesGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, l := range vectorLevels(t) {
		for _, g := range []int{1, 2, 3, 4, 5, 8} {
			for _, d := range []int{1, 7, 8, 16, 40, 64, 100, 128, 136} {
				n := 1 + r.IntN(40)
				rs := d + r.IntN(3)
				q, rows := mixed(r, g*d), mixed(r, (n-1)*rs+d)
				os := n + r.IntN(3)
				got, ok := guarded((g-1)*os + n)
				base := mixed(r, len(got))
				copy(got, base)
				with(t, l, func() { Dot(got, os, q, rows, n, d, rs, nil) })
				ok(t)
				for i := range g {
					for tk := range n {
						want, scale := float64(base[i*os+tk]), math.Abs(float64(base[i*os+tk]))
						for j := range d {
							p := float64(q[i*d+j]) * float64(rows[tk*rs+j])
							want += p
							scale += math.Abs(p)
						}
						if !closeTo(got[i*os+tk], float32(want), float32(scale), 1e-6) {
							t.Fatalf("%v g=%d d=%d: out[%d][%d] = %v, want %v (scale %v)", l, g, d, i, tk, got[i*os+tk], want, scale)
						}
					}
				}
			}
		}
	}
}

func TestAxpyMatchesGeneric(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, l := range vectorLevels(t) {
		for _, g := range []int{1, 2, 4, 5, 8} {
			for _, d := range []int{1, 8, 9, 16, 24, 40, 64, 100, 128} {
				n := 1 + r.IntN(40)
				rs := d + r.IntN(3)
				ws := n + r.IntN(3)
				w, rows := mixed(r, (g-1)*ws+n), mixed(r, (n-1)*rs+d)
				acc0 := mixed(r, g*d)
				got, ok := guarded(g * d)
				copy(got, acc0)
				with(t, l, func() { Axpy(got, w, ws, rows, n, d, rs, nil) })
				ok(t)
				for i := range g {
					for j := range d {
						want, scale := float64(acc0[i*d+j]), math.Abs(float64(acc0[i*d+j]))
						for tk := range n {
							p := float64(w[i*ws+tk]) * float64(rows[tk*rs+j])
							want += p
							scale += math.Abs(p)
						}
						if !closeTo(got[i*d+j], float32(want), float32(scale), 1e-6) {
							t.Fatalf("%v g=%d d=%d: acc[%d][%d] = %v, want %v", l, g, d, i, j, got[i*d+j], want)
						}
					}
				}
			}
		}
	}
}

func TestExpSum(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	levels := append([]Level{Generic}, availableVector()...)
	for _, l := range levels {
		for _, n := range []int{0, 1, 7, 8, 9, 31, 1000} {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(r.NormFloat64() * 20)
			}
			if n > 3 {
				x[0], x[1], x[2] = -200, 0, -87.3
			}
			m := float32(30)
			orig := append([]float32(nil), x...)
			var sum float32
			with(t, l, func() { sum = ExpSum(x, m) })
			var want float64
			for i, v := range orig {
				e := math.Exp(float64(v - m))
				if float64(v-m) < expLo {
					e = 0
				}
				if math.Abs(float64(x[i])-e) > 3e-7*e {
					t.Fatalf("%v: exp(%v) = %v, want %v (rel err %.2g)", l, v-m, x[i], e, (float64(x[i])-e)/e)
				}
				want += e
			}
			if math.Abs(float64(sum)-want) > 1e-6*want+1e-38 {
				t.Fatalf("%v n=%d: sum %v, want %v", l, n, sum, want)
			}
		}
	}
}

func TestUseUnknownLevel(t *testing.T) {
	if _, err := Use(Level(99)); err == nil {
		t.Fatal("Use(99) did not fail")
	}
	if Active() != Best() {
		t.Fatalf("active level %v, best %v", Active(), Best())
	}
}

// randomCodes returns n codes of the given layout (fp16 norm at 0, indices
// at 2) with finite positive norms, in a buffer of exactly the needed size.
func randomCodes(r *rand.Rand, n, stride int) []byte {
	codes := make([]byte, n*stride)
	for i := range codes {
		codes[i] = byte(r.Uint32())
	}
	for tk := range n {
		h := half.FromFloat32(float32(r.ExpFloat64()))
		codes[tk*stride], codes[tk*stride+1] = byte(h), byte(h>>8)
	}
	return codes
}

// decodedRef returns code t's reconstruction norm·c[idx j] in float64.
func decodedRef(cb *Codebook, code []byte, d int) []float64 {
	row := make([]float32, d)
	decodeCodesGeneric(row, d, cb.tab, cb.bits, code, len(code), 2, 0, 1, d, 0, 0)
	out := make([]float64, d)
	for j, v := range row {
		out[j] = float64(v)
	}
	return out
}

func TestFusedCodeKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	levels := append([]Level{Generic}, availableVector()...)
	for _, l := range levels {
		for _, bits := range []int{1, 2, 3, 4, 5, 6, 7, 8} {
			for _, g := range []int{1, 3, 4, 5, 8} {
				for _, d := range []int{8, 24, 40, 64, 100, 128} {
					n := 1 + r.IntN(70)
					stride := 2 + (d*bits+7)/8 + r.IntN(4)
					tab := make([]float32, 1<<bits)
					for i := range tab {
						tab[i] = float32(r.NormFloat64())
					}
					cb := NewCodebook(tab, bits)
					codes := randomCodes(r, n, stride)
					ref := make([][]float64, n)
					for tk := range ref {
						ref[tk] = decodedRef(cb, codes[tk*stride:(tk+1)*stride], d)
					}
					// DotCodes adds to out.
					qs, os := d+r.IntN(3), n+r.IntN(3)
					q := mixed(r, (g-1)*qs+d)
					out, ok := guarded((g-1)*os + n)
					base := mixed(r, len(out))
					copy(out, base)
					with(t, l, func() { DotCodes(out, os, q, qs, g, cb, codes, stride, 2, 0, n, d, nil) })
					ok(t)
					for i := range g {
						for tk := range n {
							want, scale := float64(base[i*os+tk]), math.Abs(float64(base[i*os+tk]))
							for j := range d {
								p := float64(q[i*qs+j]) * ref[tk][j]
								want += p
								scale += math.Abs(p)
							}
							if !closeTo(out[i*os+tk], float32(want), float32(scale), 2e-6) {
								t.Fatalf("%v DotCodes bits=%d g=%d d=%d: out[%d][%d] = %v, want %v", l, bits, g, d, i, tk, out[i*os+tk], want)
							}
						}
					}
					// AxpyCodes adds to acc.
					as, ws := d+r.IntN(3), n+r.IntN(3)
					w := mixed(r, (g-1)*ws+n)
					acc, ok2 := guarded((g-1)*as + d)
					base = mixed(r, len(acc))
					copy(acc, base)
					with(t, l, func() { AxpyCodes(acc, as, w, ws, g, cb, codes, stride, 2, 0, n, d, nil) })
					ok2(t)
					for i := range g {
						for j := range d {
							want, scale := float64(base[i*as+j]), math.Abs(float64(base[i*as+j]))
							for tk := range n {
								p := float64(w[i*ws+tk]) * ref[tk][j]
								want += p
								scale += math.Abs(p)
							}
							if !closeTo(acc[i*as+j], float32(want), float32(scale), 2e-6) {
								t.Fatalf("%v AxpyCodes bits=%d g=%d d=%d: acc[%d][%d] = %v, want %v", l, bits, g, d, i, j, acc[i*as+j], want)
							}
						}
					}
				}
			}
		}
	}
}

func TestQuantizePack(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	levels := append([]Level{Generic}, availableVector()...)
	for _, bits := range []int{1, 2, 3, 4} {
		b := make([]float32, 1<<bits-1)
		for k := range b {
			b[k] = float32(k-len(b)/2)*0.1 + float32(r.NormFloat64()*0.01)
		}
		qb := NewBounds(b, bits)
		for _, d := range []int{1, 7, 8, 9, 64, 100, 128, 131} {
			x := make([]float32, d)
			for j := range x {
				switch r.IntN(4) {
				case 0: // exactly on a boundary, or one ulp either side
					v := b[r.IntN(len(b))]
					x[j] = math.Float32frombits(math.Float32bits(v) + uint32(r.IntN(3)) - 1)
				case 1:
					x[j] = 0
				default:
					x[j] = float32(r.NormFloat64() * 0.5)
				}
			}
			idx := make([]uint8, d)
			for j, v := range x {
				for _, bk := range b {
					if v > bk {
						idx[j]++
					}
				}
			}
			want := make([]byte, (d*bits+7)/8)
			bitpack.Pack(want, idx, bits)
			for _, l := range levels {
				buf := make([]byte, len(want)+8)
				for i := range buf {
					buf[i] = 0xA5
				}
				got := buf[4 : 4+len(want)]
				with(t, l, func() { QuantizePack(got, x, qb) })
				if !bytes.Equal(got, want) {
					t.Fatalf("%v bits=%d d=%d: packed %x, want %x", l, bits, d, got, want)
				}
				for i := range 4 {
					if buf[i] != 0xA5 || buf[4+len(want)+i] != 0xA5 {
						t.Fatalf("%v bits=%d d=%d: wrote outside the destination", l, bits, d)
					}
				}
			}
		}
	}
}

func TestSumSquaresIsTheSameOnEveryLevel(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, n := range []int{0, 1, 7, 8, 9, 100, 128, 1000} {
		x := mixed(r, n)
		var want float64
		with(t, Generic, func() { want = SumSquares(x) })
		var ref float64
		for _, v := range x {
			ref += float64(v) * float64(v)
		}
		if math.Abs(want-ref) > 1e-12*ref {
			t.Fatalf("n=%d: generic %v, reference %v", n, want, ref)
		}
		for _, l := range availableVector() {
			var got float64
			with(t, l, func() { got = SumSquares(x) })
			if math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("%v n=%d: %v, generic %v (must be bit-identical)", l, n, got, want)
			}
		}
	}
	inf := []float32{1, float32(math.Inf(1)), 2, 3, 4, 5, 6, 7}
	if !math.IsInf(SumSquares(inf), 1) {
		t.Fatal("an infinite component must give an infinite sum")
	}
}

func TestEncodeAndRoundF16MatchHalf(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	// Every half's value and its neighbours (the rounding edges), plus
	// random floats of every magnitude, overflow included.
	var x []float32
	for h := range 0x7c01 {
		v := half.ToFloat32(uint16(h))
		b := math.Float32bits(v)
		x = append(x, v, -v, math.Float32frombits(b+1), math.Float32frombits(b-1), math.Float32frombits(b+0x1000))
	}
	for range 100000 {
		x = append(x, math.Float32frombits(r.Uint32()&0x7f7fffff)*float32(1-2*r.IntN(2)))
	}
	x = append(x, 65504, 65519.99, 65520, 1e10, float32(math.Inf(1)), float32(math.Inf(-1)))
	want := make([]byte, 2*len(x))
	encodeF16Generic(want, x)
	for _, l := range availableVector() {
		got := make([]byte, 2*len(x))
		with(t, l, func() { EncodeF16(got, x) })
		if !bytes.Equal(got, want) {
			for i := range x {
				if got[2*i] != want[2*i] || got[2*i+1] != want[2*i+1] {
					t.Fatalf("%v: %v (%#x) → %#02x%02x, half.FromFloat32 %#02x%02x", l, x[i], math.Float32bits(x[i]), got[2*i+1], got[2*i], want[2*i+1], want[2*i])
				}
			}
		}
		rt := make([]float32, len(x))
		with(t, l, func() { RoundF16(rt, x) })
		for i, v := range x {
			if w := half.ToFloat32(half.FromFloat32(v)); math.Float32bits(rt[i]) != math.Float32bits(w) {
				t.Fatalf("%v: RoundF16(%v) = %v, want %v", l, v, rt[i], w)
			}
		}
	}
}

func TestDotAndAxpyF16(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	levels := append([]Level{Generic}, availableVector()...)
	for _, l := range levels {
		for _, g := range []int{1, 3, 4, 5} {
			for _, d := range []int{1, 8, 9, 24, 64, 100, 128} {
				n := 1 + r.IntN(40)
				rs := d + r.IntN(3)
				rows := make([]byte, 2*((n-1)*rs+d))
				vals := make([]float32, len(rows)/2)
				for i := range vals {
					h := half.FromFloat32(float32(r.NormFloat64()))
					rows[2*i], rows[2*i+1] = byte(h), byte(h>>8)
					vals[i] = half.ToFloat32(h)
				}
				q := mixed(r, g*d)
				os := n + r.IntN(3)
				out, ok := guarded((g-1)*os + n)
				clear(out)
				with(t, l, func() { DotF16(out, os, q, rows, n, d, rs, nil) })
				ok(t)
				w := mixed(r, (g-1)*os+n)
				acc, ok2 := guarded(g * d)
				clear(acc)
				with(t, l, func() { AxpyF16(acc, w, os, rows, n, d, rs, nil) })
				ok2(t)
				for i := range g {
					for tk := range n {
						var want, scale float64
						for j := range d {
							p := float64(q[i*d+j]) * float64(vals[tk*rs+j])
							want += p
							scale += math.Abs(p)
						}
						if !closeTo(out[i*os+tk], float32(want), float32(scale), 1e-6) {
							t.Fatalf("%v DotF16 g=%d d=%d: out[%d][%d] = %v, want %v", l, g, d, i, tk, out[i*os+tk], want)
						}
					}
					for j := range d {
						var want, scale float64
						for tk := range n {
							p := float64(w[i*os+tk]) * float64(vals[tk*rs+j])
							want += p
							scale += math.Abs(p)
						}
						if !closeTo(acc[i*d+j], float32(want), float32(scale), 1e-6) {
							t.Fatalf("%v AxpyF16 g=%d d=%d: acc[%d][%d] = %v, want %v", l, g, d, i, j, acc[i*d+j], want)
						}
					}
				}
			}
		}
	}
}

func TestMaxAbsBits(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	inf, nan := float32(math.Inf(-1)), float32(math.NaN())
	for _, n := range []int{0, 1, 7, 8, 9, 16, 17, 100} {
		for _, special := range []float32{0, inf, nan, -70000} {
			x := mixed(r, n)
			if n > 0 && special != 0 {
				x[r.IntN(n)] = special
			}
			var want uint32
			for _, v := range x {
				want = max(want, math.Float32bits(v)&0x7fffffff)
			}
			for _, l := range append([]Level{Generic}, availableVector()...) {
				var got uint32
				with(t, l, func() { got = MaxAbsBits(x) })
				if got != want {
					t.Fatalf("%v n=%d special=%v: %#x, want %#x", l, n, special, got, want)
				}
			}
		}
	}
}

func TestAddF64IsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, n := range []int{0, 1, 7, 8, 9, 100, 128} {
		x := mixed(r, n)
		base := make([]float64, n)
		for i := range base {
			base[i] = r.NormFloat64() * 1e3
		}
		for _, l := range append([]Level{Generic}, availableVector()...) {
			acc := append([]float64(nil), base...)
			with(t, l, func() { AddF64(acc, x) })
			for i := range acc {
				if want := base[i] + float64(x[i]); math.Float64bits(acc[i]) != math.Float64bits(want) {
					t.Fatalf("%v n=%d: acc[%d] = %v, want %v", l, n, i, acc[i], want)
				}
			}
		}
	}
}

func TestDotCodesPadded(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	for _, l := range append([]Level{Generic}, availableVector()...) {
		for _, bits := range []int{1, 2, 3, 4, 5, 6, 7, 8} {
			for _, d := range []int{3, 8, 13, 100, 127, 128} {
				n, dp := 1+r.IntN(40), (d+7)&^7
				stride := 2 + (d*bits+7)/8
				tab := make([]float32, 1<<bits)
				for i := range tab {
					tab[i] = float32(r.NormFloat64())
				}
				cb := NewCodebook(tab, bits)
				codes := randomCodes(r, n, stride)
				for _, c := range [][]byte{codes, append(codes[:len(codes):len(codes)], 0xff, 0xff, 0xff, 0xff)[:len(codes)]} {
					g := 1 + r.IntN(5)
					q := make([]float32, g*dp)
					for i := range g {
						copy(q[i*dp:], mixed(r, d))
					}
					out, ok := guarded(g * n)
					clear(out)
					with(t, l, func() { DotCodesPadded(out, n, q, dp, g, cb, c, stride, 2, 0, n, d) })
					ok(t)
					for i := range g {
						for tk := range n {
							ref := decodedRef(cb, c[tk*stride:(tk+1)*stride], d)
							var want, scale float64
							for j := range d {
								p := float64(q[i*dp+j]) * ref[j]
								want += p
								scale += math.Abs(p)
							}
							if !closeTo(out[i*n+tk], float32(want), float32(scale), 2e-6) {
								t.Fatalf("%v bits=%d d=%d g=%d: out[%d][%d] = %v, want %v", l, bits, d, g, i, tk, out[i*n+tk], want)
							}
						}
					}
				}
			}
		}
	}
}

// Prefetching while working (the ahead argument) must not change a result:
// the rows are worked through in pieces, each exactly as in one call.
func TestAheadChangesNothing(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	ahead := make([]byte, 5000)
	for _, l := range append([]Level{Generic}, availableVector()...) {
		for _, g := range []int{1, 4, 5} {
			for _, d := range []int{8, 100, 128} {
				n := 1 + r.IntN(70)
				rs := d + r.IntN(3)
				q, rows, w := mixed(r, g*d), mixed(r, (n-1)*rs+d), mixed(r, g*n)
				rows16 := make([]byte, 2*len(rows))
				EncodeF16(rows16, rows)
				run := func(a []byte) (out, out16, acc, acc16 []float32) {
					out, out16 = make([]float32, g*n), make([]float32, g*n)
					acc, acc16 = make([]float32, g*d), make([]float32, g*d)
					with(t, l, func() {
						Dot(out, n, q, rows, n, d, rs, a)
						DotF16(out16, n, q, rows16, n, d, rs, a)
						Axpy(acc, w, n, rows, n, d, rs, a)
						AxpyF16(acc16, w, n, rows16, n, d, rs, a)
					})
					return
				}
				o, o16, a, a16 := run(nil)
				po, po16, pa, pa16 := run(ahead)
				for k, pair := range [][2][]float32{{o, po}, {o16, po16}, {a, pa}, {a16, pa16}} {
					for i := range pair[0] {
						if math.Float32bits(pair[0][i]) != math.Float32bits(pair[1][i]) {
							t.Fatalf("%v g=%d d=%d n=%d: result %d element %d is %v with ahead, %v without", l, g, d, n, k, i, pair[1][i], pair[0][i])
						}
					}
				}
			}
		}
	}
}

// A code's score must not depend on the codes scored with it: the kernels
// that take codes in pairs sum a code left alone in the same order.
func TestDotCodesScoreIndependentOfPairing(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, l := range append([]Level{Generic}, availableVector()...) {
		for _, bits := range []int{1, 2, 3, 4} {
			for _, g := range []int{1, 4, 5} {
				for _, d := range []int{8, 64, 100, 128} {
					n := 2 + r.IntN(9)
					tab := make([]float32, 1<<bits)
					for i := range tab {
						tab[i] = float32(r.NormFloat64())
					}
					cb := NewCodebook(tab, bits)
					stride := 2 + (d*bits+7)/8
					codes := codesWithNorms(r, n, stride, 0)
					q := mixed(r, g*d)
					together, alone := make([]float32, g*n), make([]float32, g*n)
					with(t, l, func() {
						DotCodes(together, n, q, d, g, cb, codes, stride, 2, 0, n, d, nil)
						for tk := range n {
							DotCodes(alone[tk:], n, q, d, g, cb, codes[tk*stride:], stride, 2, 0, 1, d, nil)
						}
					})
					for i := range together {
						if math.Float32bits(together[i]) != math.Float32bits(alone[i]) {
							t.Fatalf("%v bits=%d g=%d d=%d n=%d: score %d is %v scored with the others, %v alone", l, bits, g, d, n, i, together[i], alone[i])
						}
					}
				}
			}
		}
	}
}

func TestSubIsExactAndMayWriteItsOperand(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, l := range append([]Level{Generic}, availableVector()...) {
		for n := range 41 {
			x, y := mixed(r, n), mixed(r, n+r.IntN(3))
			want := make([]float32, n)
			for i := range want {
				want[i] = x[i] - y[i]
			}
			got, ok := guarded(n)
			inPlace := slices.Clone(x)
			with(t, l, func() {
				Sub(got, x, y)
				Sub(inPlace, inPlace, y)
			})
			ok(t)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) || math.Float32bits(inPlace[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%v n=%d: element %d is %v (in place %v), want %v", l, n, i, got[i], inPlace[i], want[i])
				}
			}
		}
	}
}

// TestFillRows: each row's first n floats take its init value, bit for bit
// (negative zero and NaN payloads included), and nothing else is written:
// not the gap between rows, not past the last.
func TestFillRows(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	for _, l := range append([]Level{Generic}, availableVector()...) {
		for n := range 41 {
			for g := 1; g <= 5; g++ {
				stride := n + r.IntN(9)
				init := mixed(r, g)
				init[0] = float32(math.Copysign(0, -1))
				if g > 1 {
					init[1] = math.Float32frombits(0x7fc01234)
				}
				out, ok := guarded((g-1)*stride + n)
				with(t, l, func() { FillRows(out, stride, init, n) })
				ok(t)
				for i := range g {
					for j := range stride {
						want := uint32(math.Float32bits(guard))
						if j < n {
							want = math.Float32bits(init[i])
						}
						if k := i*stride + j; k < len(out) && math.Float32bits(out[k]) != want {
							t.Fatalf("%v n=%d rows=%d stride=%d: out[%d][%d] = %#x, want %#x", l, n, g, stride, i, j, math.Float32bits(out[k]), want)
						}
					}
				}
			}
		}
	}
}

// TestAxpyCodesPairIsTwoCalls requires AxpyCodesPair to give, on every
// level, the bits of AxpyCodes for a code's first part then for its
// second, the parts sharing the norm (a Split code) or with their own, for
// widths 1–4, rows below, at and past four, pieces past one, parts of 8 to
// 96 coordinates (some not a multiple of 8), and codes with and without
// slack behind them (a part of 8 coordinates after one of 64 leaves both
// parts' last code to the generic twin).
func TestAxpyCodesPairIsTwoCalls(t *testing.T) {
	r := rand.New(rand.NewPCG(29, 30))
	for _, l := range append([]Level{Generic}, availableVector()...) {
		for _, bits := range [][2]int{{4, 3}, {3, 2}, {2, 1}, {4, 4}} {
			for _, dims := range [][2]int{{64, 64}, {96, 32}, {8, 16}, {60, 12}, {64, 8}} {
				for _, g := range []int{1, 4, 6} {
					for _, n := range []int{1, 17, 33, 64, 70} {
						da, db := dims[0], dims[1]
						cba, cbb := randomCodebook(r, bits[0]), randomCodebook(r, bits[1])
						idxa := 2
						idxb := idxa + (da*bits[0]+7)/8
						normb, stride := 0, idxb+(db*bits[1]+7)/8+r.IntN(3)
						if r.IntN(2) == 0 { // the second part's own norm, after its indices
							normb, stride = stride, stride+2
						}
						codes := randomCodes(r, n, stride)
						for tk := range n {
							h := half.FromFloat32(float32(r.ExpFloat64()))
							codes[tk*stride+normb], codes[tk*stride+normb+1] = byte(h), byte(h>>8)
						}
						if r.IntN(2) == 0 {
							codes = append(codes, make([]byte, Slack)...)[:len(codes)]
						}
						w := make([]float32, g*n)
						for i := range w {
							w[i] = float32(r.NormFloat64())
						}
						acc0 := make([]float32, g*(da+db))
						for i := range acc0 {
							acc0[i] = float32(r.NormFloat64())
						}
						pair, ok := guarded(len(acc0))
						copy(pair, acc0)
						two := slices.Clone(acc0)
						ahead := make([]byte, 200)
						with(t, l, func() {
							AxpyCodesPair(pair, da+db, w, n, g, cba, cbb, codes, stride, idxa, 0, idxb, normb, n, da, db, ahead)
							AxpyCodes(two, da+db, w, n, g, cba, codes, stride, idxa, 0, n, da, nil)
							AxpyCodes(two[da:], da+db, w, n, g, cbb, codes, stride, idxb, normb, n, db, nil)
						})
						ok(t)
						for k := range two {
							if math.Float32bits(pair[k]) != math.Float32bits(two[k]) {
								t.Fatalf("%v bits=%v d=%v g=%d n=%d normb=%d: acc[%d] = %v, two calls give %v", l, bits, dims, g, n, normb, k, pair[k], two[k])
							}
						}
					}
				}
			}
		}
	}
}

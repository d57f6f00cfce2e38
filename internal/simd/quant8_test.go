package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// q8Dot is DotQ8_0Q8 or DotQ4_0Q8 with its block format.
type q8Dot struct {
	f   quantFormat
	dot func(out []float32, outStride int, a *Q8Rows, rows []byte, n int)
}

var q8Dots = []q8Dot{
	{quantFormats[0], DotQ8_0Q8},
	{quantFormats[1], DotQ4_0Q8},
}

// q8Oracle is the generic loop over every activation row, without the
// dispatch of dotQuant8: the order every kernel must reproduce.
func q8Oracle(k q8Dot, out []float32, outStride int, a *Q8Rows, rows []byte, n int) {
	d, nb := a.D, a.D/QuantBlock
	for i := range a.G {
		dotQuant8Row(out[i*outStride:i*outStride+n], a.Vals[i*d:(i+1)*d], a.Scales[i/4*4*nb+i%4:], rows, nb, k.f.blockBytes)
	}
}

// TestQ8RowsQuantize checks the activation quantizer (every level against
// the generic one, bit for bit): values within ±127,
// each within half a step (plus the fp16 rounding of the scale) of its input, zero blocks with scale 0, and a
// block holding an infinity or NaN marked by a NaN scale.
func TestQ8RowsQuantize(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	const d = 96
	for _, g := range []int{1, 3, 4, 5, 9} {
		x := mixed(r, g*d)
		clear(x[32:64]) // a zero block
		x[d-1] = float32(math.Inf(-1))
		if g > 2 {
			x[2*d+40] = float32(math.NaN())
		}
		var a Q8Rows
		with(t, Generic, func() { a.Quantize(x, d) })
		for _, l := range quantLevels() {
			var b Q8Rows
			with(t, l, func() { b.Quantize(x, d) })
			for j := range a.Vals {
				if a.Vals[j] != b.Vals[j] {
					t.Fatalf("%v g=%d: value %d = %d, generic %d", l, g, j, b.Vals[j], a.Vals[j])
				}
			}
			for j := range a.Scales {
				if s, w := b.Scales[j], a.Scales[j]; math.Float32bits(s) != math.Float32bits(w) && !(s != s && w != w) {
					t.Fatalf("%v g=%d: scale %d = %v, generic %v", l, g, j, s, w)
				}
			}
		}
		if a.G != g || a.D != d || len(a.Vals) != g*d || len(a.Scales) != (g+3)/4*4*(d/32) {
			t.Fatalf("g=%d: G=%d D=%d %d values %d scales", g, a.G, a.D, len(a.Vals), len(a.Scales))
		}
		for i := range g {
			for b := range d / 32 {
				s := a.Scales[((i/4)*(d/32)+b)*4+i%4]
				src, q := x[i*d+32*b:][:32], a.Vals[i*d+32*b:][:32]
				bad := false
				for _, v := range src {
					bad = bad || math.IsInf(float64(v), 0) || v != v
				}
				switch {
				case bad:
					if s == s {
						t.Fatalf("g=%d row %d block %d: scale %v for a block with Inf/NaN", g, i, b, s)
					}
					continue
				case i == 0 && b == 1:
					if s != 0 {
						t.Fatalf("zero block: scale %v", s)
					}
				}
				for j, v := range src {
					if q[j] < -127 {
						t.Fatalf("value %d below −127", q[j])
					}
					if e := math.Abs(float64(v) - float64(s)*float64(q[j])); e > float64(s)*(0.5+127*0x1p-11) {
						t.Fatalf("g=%d row %d block %d: %v → %d·%v, error %v over half a step", g, i, b, v, q[j], s, e)
					}
				}
			}
		}
	}
}

// TestDotQuant8 checks DotQ8_0Q8 and DotQ4_0Q8 at every level against the
// generic order (same bits), and against float64 products of the original
// activations within the quantization bound, for g in 1..9 activation rows
// and n in 0..9 weight rows, with guards around out and its row gaps.
func TestDotQuant8(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	levels := quantLevels()
	for _, k := range q8Dots {
		for _, d := range []int{32, 64, 96, 160, 512} {
			for n := range 10 {
				for g := 1; g <= 9; g++ {
					rows := quantRows(r, k.f, n, d)
					if n > 0 && r.IntN(3) == 0 { // an infinite weight scale: NaN lanes must not leak
						blk := rows[r.IntN(n*d/32)*k.f.blockBytes:]
						blk[0], blk[1] = 0x00, []byte{0x7c, 0xfc}[r.IntN(2)]
					}
					x := mixed(r, g*d)
					var a Q8Rows
					a.Quantize(x, d)
					os := n + r.IntN(3)
					size := (g-1)*os + n
					base := mixed(r, size)
					twin := append([]float32(nil), base...)
					q8Oracle(k, twin, os, &a, rows, n)
					for _, l := range levels {
						got, ok := guarded(size)
						copy(got, base)
						with(t, l, func() { k.dot(got, os, &a, rows, n) })
						ok(t)
						for i := range g {
							for tk := range min(os, size-i*os) {
								c := i*os + tk
								if math.Float32bits(got[c]) != math.Float32bits(twin[c]) && !(got[c] != got[c] && twin[c] != twin[c]) {
									t.Fatalf("%s %v d=%d n=%d g=%d: out[%d][%d] = %v, generic order %v", k.f.name, l, d, n, g, i, tk, got[c], twin[c])
								}
								if tk >= n {
									continue // a gap: checked equal to base above
								}
								want, scale := quantRef(k.f, base[c], x, rows, i, tk, d)
								if math.IsInf(scale, 0) || scale != scale {
									continue
								}
								if bound := q8Bound(k.f, &a, rows, i, tk) + quantTol(d)*scale; math.Abs(float64(got[c])-want) > bound {
									t.Fatalf("%s %v d=%d n=%d g=%d: out[%d][%d] = %v, want %v ± %v", k.f.name, l, d, n, g, i, tk, got[c], want, bound)
								}
							}
						}
					}
				}
			}
		}
	}
}

// q8Bound is the error that quantizing activation row i can cause in its
// product with weight row t: Σ_b |w scale|·Σ_j |w_j| · (x scale)·(½ + 127·2⁻¹¹).
func q8Bound(f quantFormat, a *Q8Rows, rows []byte, i, t int) float64 {
	nb := a.D / QuantBlock
	var e float64
	for b := range nb {
		off := (t*nb + b) * f.blockBytes
		w := f.values(rows[off : off+f.blockBytes])
		var sw float64
		for _, v := range w {
			sw += math.Abs(v)
		}
		e += sw * float64(a.Scales[((i/4)*nb+b)*4+i%4]) * (0.5 + 127*0x1p-11)
	}
	return e
}

// TestDotQuant8BatchInvariant checks that an activation row's result is the
// same bits alone as in a batch, and that the one- and four-row kernels
// agree on wide rows with every block count parity.
func TestDotQuant8BatchInvariant(t *testing.T) {
	r := rand.New(rand.NewPCG(35, 36))
	for _, l := range quantLevels() {
		for _, k := range q8Dots {
			for _, d := range []int{32, 96, 2048, 2080} {
				n, g := 1+r.IntN(12), 1+r.IntN(9)
				rows := quantRows(r, k.f, n, d)
				x := mixed(r, g*d)
				var all Q8Rows
				all.Quantize(x, d)
				got := make([]float32, g*n)
				with(t, l, func() { k.dot(got, n, &all, rows, n) })
				for i := range g {
					var one Q8Rows
					one.Quantize(x[i*d:(i+1)*d], d)
					alone := make([]float32, n)
					with(t, l, func() { k.dot(alone, n, &one, rows, n) })
					for tk := range n {
						if math.Float32bits(alone[tk]) != math.Float32bits(got[i*n+tk]) {
							t.Fatalf("%s %v d=%d g=%d: row %d col %d = %v alone, %v batched", k.f.name, l, d, g, i, tk, alone[tk], got[i*n+tk])
						}
					}
				}
			}
		}
	}
}

// TestDotQuant8Saturation puts every weight and activation at the
// extremes (−128 and 127 weights, ±127 activations) so that a kernel
// whose 16-bit pair sums saturated would differ from the integer sum.
func TestDotQuant8Saturation(t *testing.T) {
	const d, n = 64, 8
	k := q8Dots[0]
	rows := make([]byte, n*2*Q8_0BlockBytes)
	for b := range n * 2 {
		blk := rows[b*Q8_0BlockBytes:][:Q8_0BlockBytes]
		blk[0], blk[1] = 0x00, 0x3c // scale 1
		fill(blk[2:], []byte{0x80, 0x7f}[b%2])
	}
	x := make([]float32, 4*d)
	for j := range x {
		x[j] = []float32{-1, 1}[(j/d)%2]
	}
	var a Q8Rows
	a.Quantize(x, d)
	for _, l := range quantLevels() {
		out := make([]float32, 4*n)
		with(t, l, func() { k.dot(out, n, &a, rows, n) })
		for i := range 4 {
			// Block 0 of each row is −128s, block 1 is 127s; the activations
			// are ±1 (quantized to ±127 with scale 1/127).
			sign := []float64{-1, 1}[i%2]
			want := sign * (-128*32 + 127*32) * 127 * float64(a.Scales[i])
			for tk := range n {
				if math.Abs(float64(out[i*n+tk])-want) > 1e-3 {
					t.Fatalf("%v row %d col %d = %v, want %v", l, i, tk, out[i*n+tk], want)
				}
			}
		}
	}
}

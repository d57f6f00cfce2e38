package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/turboquant-go/tq/internal/half"
)

// quantFormat is one of the ggml weight formats under test.
type quantFormat struct {
	name       string
	blockBytes int
	dot        func(out []float32, outStride int, q []float32, rows []byte, n, d int)
	twin       quantDotKernel
	values     func(blk []byte) [32]float64 // the block's weights, scale applied
}

func blockScale(blk []byte) float64 {
	return float64(half.ToFloat32(uint16(blk[0]) | uint16(blk[1])<<8))
}

var quantFormats = []quantFormat{
	{"Q8_0", Q8_0BlockBytes, DotQ8_0, dotQ8_0Generic, func(blk []byte) (w [32]float64) {
		for j := range w {
			w[j] = blockScale(blk) * float64(int8(blk[2+j]))
		}
		return w
	}},
	{"Q4_0", Q4_0BlockBytes, DotQ4_0, dotQ4_0Generic, func(blk []byte) (w [32]float64) {
		for j := range 16 {
			w[j] = blockScale(blk) * float64(int(blk[2+j]&15)-8)
			w[j+16] = blockScale(blk) * float64(int(blk[2+j]>>4)-8)
		}
		return w
	}},
}

// adversarialScales are fp16 block scales at the edges of the format:
// zero, ±65504 (the largest half), subnormals and ±1.
var adversarialScales = []uint16{0x0000, 0x8000, 0x7bff, 0xfbff, 0x0001, 0x8001, 0x03ff, 0x0400, 0x3c00, 0xbc00}

// quantRows returns n random rows of d values in format f, every block's
// scale a finite half. Some blocks are adversarial: an edge-case scale,
// and values all at one end of the range (q = −128 or 127; nibbles 0 or
// 15), alternating between the two, or random.
func quantRows(r *rand.Rand, f quantFormat, n, d int) []byte {
	nb := d / QuantBlock
	rows := make([]byte, n*nb*f.blockBytes)
	for b := range n * nb {
		blk := rows[b*f.blockBytes : (b+1)*f.blockBytes]
		h := half.FromFloat32(float32(r.NormFloat64() * 0.02))
		if r.IntN(3) == 0 {
			h = adversarialScales[r.IntN(len(adversarialScales))]
		}
		blk[0], blk[1] = byte(h), byte(h>>8)
		vals := blk[2:]
		switch r.IntN(6) {
		case 0:
			fill(vals, 0x80) // Q8_0: −128; Q4_0: nibbles 0 and 8
		case 1:
			fill(vals, 0x7f) // Q8_0: 127; Q4_0: nibbles 15 and 7
		case 2:
			fill(vals, 0x00) // Q4_0: all nibbles 0 (−8)
		case 3:
			fill(vals, 0xff) // Q8_0: −1; Q4_0: all nibbles 15 (7)
		case 4:
			for j := range vals {
				vals[j] = []byte{0x80, 0x7f, 0x0f, 0xf0}[j%4] // extremes alternating
			}
		default:
			for j := range vals {
				vals[j] = byte(r.Uint32())
			}
		}
	}
	return rows
}

func fill(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}

// quantRef returns out[i*outStride+t] + Σ_j q[i*d+j]·W[t][j] in float64,
// and the sum of the absolute values of its terms (the scale of the
// rounding error of any summation order).
func quantRef(f quantFormat, base float32, q []float32, rows []byte, i, t, d int) (want, scale float64) {
	nb := d / QuantBlock
	want, scale = float64(base), math.Abs(float64(base))
	for b := range nb {
		off := (t*nb + b) * f.blockBytes
		w := f.values(rows[off : off+f.blockBytes])
		for j, x := range w {
			p := float64(q[i*d+32*b+j]) * x
			want += p
			scale += math.Abs(p)
		}
	}
	return want, scale
}

// quantTol is the relative error allowed against quantRef: a few float32
// roundings per block, per accumulator step and per lane sum.
func quantTol(d int) float64 { return 2 * float64(d/QuantBlock/2+12) * 0x1p-24 }

// quantLevels are every level this build runs.
func quantLevels() []Level { return append([]Level{Generic}, availableVector()...) }

// TestDotQuant checks DotQ8_0 and DotQ4_0 at every level against a float64
// reference, and the vector levels against the generic twin, for every n in
// 0..9 and g in 1..9, with guards around out and the gaps between its rows.
func TestDotQuant(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	levels := quantLevels()
	for _, f := range quantFormats {
		for _, d := range []int{32, 64, 96, 160, 512} {
			for n := range 10 {
				for g := 1; g <= 9; g++ {
					rows := quantRows(r, f, n, d)
					q := mixed(r, g*d+1)[1:] // not 32-byte aligned
					if r.IntN(2) == 0 {
						rows = append(make([]byte, 1, len(rows)+1), rows...)[1:]
					}
					os := n + r.IntN(3)
					size := (g-1)*os + n
					base := mixed(r, size)
					twin, ok := guarded(size)
					copy(twin, base)
					if n > 0 {
						f.twin(twin, os, q, rows, n, d)
					}
					ok(t)
					for _, l := range levels {
						got, ok := guarded(size)
						copy(got, base)
						with(t, l, func() { f.dot(got, os, q, rows, n, d) })
						ok(t)
						for i := range g {
							for tk := range os {
								c := i*os + tk
								if c >= size {
									break
								}
								if tk >= n { // a gap between out rows
									if math.Float32bits(got[c]) != math.Float32bits(base[c]) {
										t.Fatalf("%s %v d=%d n=%d g=%d: gap cell %d written", f.name, l, d, n, g, c)
									}
									continue
								}
								want, scale := quantRef(f, base[c], q, rows, i, tk, d)
								if !closeTo(got[c], float32(want), float32(scale), quantTol(d)) {
									t.Fatalf("%s %v d=%d n=%d g=%d: out[%d][%d] = %v, want %v (scale %v)", f.name, l, d, n, g, i, tk, got[c], want, scale)
								}
								if !closeTo(got[c], twin[c], float32(scale), quantTol(d)) {
									t.Fatalf("%s %v d=%d n=%d g=%d: out[%d][%d] = %v, twin %v", f.name, l, d, n, g, i, tk, got[c], twin[c])
								}
								if l == Generic && math.Float32bits(got[c]) != math.Float32bits(twin[c]) {
									t.Fatalf("%s generic d=%d n=%d g=%d: out[%d][%d] = %v, twin %v", f.name, d, n, g, i, tk, got[c], twin[c])
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestDotQuantBatchInvariant checks that a query row's result is the same
// bits whatever the number of rows it is batched with (the four-row
// kernels keep the one-row kernels' order), at every level.
func TestDotQuantBatchInvariant(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, l := range quantLevels() {
		for _, f := range quantFormats {
			for _, d := range []int{32, 96, 2048} {
				n, g := 1+r.IntN(9), 1+r.IntN(9)
				rows := quantRows(r, f, n, d)
				q := mixed(r, g*d)
				all := make([]float32, g*n)
				with(t, l, func() { f.dot(all, n, q, rows, n, d) })
				for i := range g {
					one := make([]float32, n)
					with(t, l, func() { f.dot(one, n, q[i*d:(i+1)*d], rows, n, d) })
					for tk := range n {
						if math.Float32bits(one[tk]) != math.Float32bits(all[i*n+tk]) {
							t.Fatalf("%s %v d=%d g=%d: row %d col %d = %v alone, %v batched", f.name, l, d, g, i, tk, one[tk], all[i*n+tk])
						}
					}
				}
			}
		}
	}
}

// TestDotQuantExact uses inputs whose every product and partial sum is
// exact in float32 (small integer queries, power-of-two scales), so every
// order of summation gives the same bits: the vector kernels must match
// the twin, and the exact result, bit for bit.
func TestDotQuantExact(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, f := range quantFormats {
		for _, d := range []int{32, 64, 96, 2048} {
			n, g := 1+r.IntN(9), 1+r.IntN(9)
			rows := quantRows(r, f, n, d)
			for b := 0; b < len(rows); b += f.blockBytes {
				h := half.FromFloat32(float32(math.Ldexp(1, r.IntN(9)-4)) * float32(1-2*r.IntN(2)))
				rows[b], rows[b+1] = byte(h), byte(h>>8)
			}
			q := make([]float32, g*d)
			for i := range q {
				q[i] = float32(r.IntN(17) - 8)
			}
			want := make([]float32, g*n)
			for i := range g {
				for tk := range n {
					w, _ := quantRef(f, 0, q, rows, i, tk, d)
					want[i*n+tk] = float32(w)
					if float64(want[i*n+tk]) != w {
						t.Fatalf("test input not exact: %v", w)
					}
				}
			}
			for _, l := range quantLevels() {
				got := make([]float32, g*n)
				with(t, l, func() { f.dot(got, n, q, rows, n, d) })
				for c := range got {
					if math.Float32bits(got[c]) != math.Float32bits(want[c]) {
						t.Fatalf("%s %v d=%d: out[%d] = %v, exact %v", f.name, l, d, c, got[c], want[c])
					}
				}
			}
		}
	}
}

// TestDotQuantMatchesDequantized checks the kernels against the path they
// replace: expanding the rows to float32 (exact: an int8 times a half fits
// a float32) and multiplying with Dot.
func TestDotQuantMatchesDequantized(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	for _, f := range quantFormats {
		const n, g, d = 7, 3, 256
		rows := quantRows(r, f, n, d)
		q := mixed(r, g*d)
		deq := make([]float32, n*d)
		for b := 0; b < n*d/QuantBlock; b++ {
			w := f.values(rows[b*f.blockBytes:])
			for j, x := range w {
				deq[32*b+j] = float32(x)
				if float64(deq[32*b+j]) != x {
					t.Fatalf("dequantized weight %v is not a float32", x)
				}
			}
		}
		for _, l := range append([]Level{Generic}, availableVector()...) {
			got, want := make([]float32, g*n), make([]float32, g*n)
			with(t, l, func() {
				f.dot(got, n, q, rows, n, d)
				Dot(want, n, q, deq, n, d, d, nil)
			})
			for i := range g {
				for tk := range n {
					_, scale := quantRef(f, 0, q, rows, i, tk, d)
					if !closeTo(got[i*n+tk], want[i*n+tk], float32(scale), quantTol(d)) {
						t.Fatalf("%s %v: out[%d][%d] = %v, Dot of the dequantized rows %v", f.name, l, i, tk, got[i*n+tk], want[i*n+tk])
					}
				}
			}
		}
	}
}

func TestDotQuantPanics(t *testing.T) {
	for _, f := range quantFormats {
		rows := make([]byte, 2*2*f.blockBytes) // two rows of d = 64
		for _, c := range []struct {
			name string
			call func()
		}{
			{"d not a multiple of 32", func() { f.dot(make([]float32, 2), 2, make([]float32, 48), rows, 2, 48) }},
			{"d zero", func() { f.dot(make([]float32, 2), 2, nil, rows, 2, 0) }},
			{"q not whole rows", func() { f.dot(make([]float32, 4), 2, make([]float32, 100), rows, 2, 64) }},
			{"short rows", func() { f.dot(make([]float32, 3), 3, make([]float32, 64), rows, 3, 64) }},
			{"short out", func() { f.dot(make([]float32, 3), 2, make([]float32, 128), rows, 2, 64) }},
			{"outStride < n", func() { f.dot(make([]float32, 4), 1, make([]float32, 128), rows, 2, 64) }},
		} {
			t.Run(f.name+"/"+c.name, func(t *testing.T) {
				defer func() {
					if recover() == nil {
						t.Fatal("no panic")
					}
				}()
				c.call()
			})
		}
	}
}

func Example_dotQ8_0() {
	// One row of 32 weights, all 3 with scale 0.5: w[j] = 1.5.
	row := make([]byte, Q8_0BlockBytes)
	h := half.FromFloat32(0.5)
	row[0], row[1] = byte(h), byte(h>>8)
	for j := range 32 {
		row[2+j] = 3
	}
	q := make([]float32, 32)
	for j := range q {
		q[j] = 1
	}
	out := make([]float32, 1)
	DotQ8_0(out, 1, q, row, 1, 32)
	fmt.Println(out[0])
	// Output: 48
}

// quantGolden is a hash of the bits DotQ8_0 and DotQ4_0 give on
// goldenInput at the AVX2 and NEON levels: both run the same operations in
// the same order (FMA included), so the two architectures agree bit for
// bit. The generic twin is not held to it (Go may or may not fuse its
// multiply-adds).
const quantGolden = 0x7c8582400d687e6

func TestDotQuantSameBitsEveryArch(t *testing.T) {
	if Best() == Generic {
		t.Skip("no vector level in this build")
	}
	h := uint64(14695981039346656037)
	for _, f := range quantFormats {
		r := rand.New(rand.NewPCG(31, 32))
		const n, g, d = 9, 6, 1056
		rows := quantRows(r, f, n, d)
		q := activations(r, g*d)
		out := make([]float32, g*n)
		f.dot(out, n, q, rows, n, d)
		for _, v := range out {
			h = (h ^ uint64(math.Float32bits(v))) * 1099511628211
		}
	}
	if h != quantGolden {
		t.Fatalf("%v: hash %#x, want %#x", Best(), h, uint64(quantGolden))
	}
}

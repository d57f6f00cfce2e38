package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/turboquant-go/tq/internal/half"
)

// values8Case is one random AxpyCodesQ8 problem: codes with the norm at
// byte 0 and the indices at byte 2, weights of every sign with zeros,
// accumulators with values in them.
type values8Case struct {
	bits, d, g, n, stride int
	idxOff, normOff       int
	cb                    *Codebook
	codes                 []byte
	w                     []float32 // g rows of n
	acc0                  []float32 // g rows of d
}

func newValues8Case(r *rand.Rand, bits, d, g, n int) values8Case {
	c := values8Case{bits: bits, d: d, g: g, n: n, stride: 2 + d*bits/8 + r.IntN(3)}
	c.cb = randomCodebook(r, bits)
	c.codes = randomCodes(r, n, c.stride)
	c.idxOff = 2
	if r.IntN(3) == 0 { // the norm last, its bytes the last of the codes
		c.idxOff, c.normOff = 0, c.stride-2
		for t := range n {
			row := c.codes[t*c.stride : (t+1)*c.stride]
			row[c.normOff], row[c.normOff+1] = row[0], row[1]
		}
	}
	c.codes = c.codes[:len(c.codes):len(c.codes)] // no slack: the kernels must not read past the last code
	c.w = make([]float32, g*n)
	for i := range c.w {
		switch r.IntN(8) {
		case 0: // stays 0
		case 1:
			c.w[i] = -float32(r.ExpFloat64())
		default:
			c.w[i] = float32(r.ExpFloat64())
		}
	}
	c.acc0 = make([]float32, g*d)
	for i := range c.acc0 {
		c.acc0[i] = float32(r.NormFloat64())
	}
	return c
}

func (c values8Case) String() string {
	return fmt.Sprintf("bits=%d d=%d g=%d n=%d stride=%d norm at %d", c.bits, c.d, c.g, c.n, c.stride, c.normOff)
}

// run adds c at level l into a guarded copy of acc0.
func (c values8Case) run(t *testing.T, l Level) []float32 {
	t.Helper()
	acc, ok := guarded(c.g * c.d)
	copy(acc, c.acc0)
	var buf WeightsQ8
	with(t, l, func() {
		AxpyCodesQ8(acc, c.d, c.w, c.n, c.g, c.cb, c.codes, c.stride, c.idxOff, c.normOff, c.n, c.d, &buf, nil)
	})
	ok(t)
	return acc
}

// values8Levels returns the levels with integer value kernels, or skips.
func values8Levels(t *testing.T) []Level {
	return levelsWith(t, func(k *kernels) bool { return k.axpyCodesQ8[0][2] != nil },
		"no level with 3- and 4-bit integer value kernels on this CPU/build (AVX-512 VBMI and VNNI; the AVX2 path, which a CPU with AVX-512 does not take, has its own tests): only the generic twin runs")
}

func TestAxpyCodesQ8IsTheSameOnEveryLevel(t *testing.T) {
	levels := values8Levels(t)
	r := rand.New(rand.NewPCG(91, 92))
	for _, bits := range []int{3, 4} {
		for _, d := range []int{64, 128, 192} {
			for _, n := range []int{1, 2, 3, 4, 5, 7, 63, 64, 65, 130} {
				c := newValues8Case(r, bits, d, 1+r.IntN(9), n)
				want := c.run(t, Generic)
				for _, l := range levels {
					sameBits(t, fmt.Sprintf("%v %v: acc", l, c), c.run(t, l), want)
				}
			}
		}
	}
}

// TestAxpyCodesQ8WithinBound checks every sum against AxpyCodes' float sums
// of the same codes: within ValuesQ8Bound per piece, plus float rounding.
func TestAxpyCodesQ8WithinBound(t *testing.T) {
	r := rand.New(rand.NewPCG(93, 94))
	for _, l := range append([]Level{Generic}, availableVector()...) {
		for _, bits := range []int{3, 4} {
			for _, n := range []int{5, 64, 150} {
				c := newValues8Case(r, bits, 128, 4, n)
				clear(c.acc0)
				got := c.run(t, l)
				want := make([]float32, c.g*c.d)
				with(t, l, func() {
					AxpyCodes(want, c.d, c.w, c.n, c.g, c.cb, c.codes, c.stride, c.idxOff, c.normOff, c.n, c.d, nil)
				})
				var worst float64
				for i := range c.g {
					for j := range c.d {
						var bound, mag float64
						for t0 := 0; t0 < c.n; t0 += q8Piece {
							m := min(q8Piece, c.n-t0)
							wn, cs := make([]float32, m), make([]float32, m)
							for tk := range m {
								code := c.codes[(t0+tk)*c.stride:]
								norm := f16(uint16(code[c.normOff]) | uint16(code[c.normOff+1])<<8)
								ref := make([]float64, c.d)
								for j := range ref {
									ref[j] = float64(norm) * float64(c.cb.tab[codeIndex(code[c.idxOff:], c.bits, j)])
								}
								wn[tk] = c.w[i*c.n+t0+tk] * norm
								cs[tk] = float32(ref[j]) / norm
								mag += math.Abs(float64(wn[tk]) * float64(cs[tk]))
							}
							bound += ValuesQ8Bound(c.cb, wn, cs)
						}
						diff := math.Abs(float64(got[i*c.d+j]) - float64(want[i*c.d+j]))
						if diff > bound+1e-5*mag {
							t.Fatalf("%v bits=%d n=%d row %d coord %d: |q8 − float| = %g > bound %g", l, bits, n, i, j, diff, bound)
						}
						worst = max(worst, diff/bound)
					}
				}
				if worst == 0 {
					t.Fatalf("%v bits=%d n=%d: integer sums equal the float ones everywhere: the check is vacuous", l, bits, n)
				}
			}
		}
	}
}

// TestAxpyCodesQ8ZeroWeights checks that a row whose weights are all 0
// leaves its accumulators' values as they were.
func TestAxpyCodesQ8ZeroWeights(t *testing.T) {
	r := rand.New(rand.NewPCG(95, 96))
	for _, l := range append([]Level{Generic}, availableVector()...) {
		c := newValues8Case(r, 3, 128, 2, 40)
		clear(c.w[:c.n])
		got := c.run(t, l)
		for j := range c.d {
			if got[j] != c.acc0[j] {
				t.Fatalf("%v: acc[%d] = %v, was %v with zero weights", l, j, got[j], c.acc0[j])
			}
		}
	}
}

func BenchmarkAxpyCodesQ8(b *testing.B) {
	r := rand.New(rand.NewPCG(97, 98))
	for _, bits := range []int{3, 4} {
		c := newValues8Case(r, bits, 128, 4, 64)
		for i := range c.w {
			c.w[i] = float32(r.Float64())
		}
		acc := make([]float32, c.g*c.d)
		var buf WeightsQ8
		b.Run(fmt.Sprintf("%v/bits=%d/g=4", Active(), bits), func(b *testing.B) {
			for b.Loop() {
				AxpyCodesQ8(acc, c.d, c.w, c.n, c.g, c.cb, c.codes, c.stride, c.idxOff, c.normOff, c.n, c.d, &buf, nil)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*c.n), "ns/code")
		})
	}
}

// BenchmarkWeightsQ8 is AxpyCodesQ8's weight quantization alone (one
// piece of 64 codes, four rows), L1-resident: what the value kernels wait
// for per run.
func BenchmarkWeightsQ8(b *testing.B) {
	r := rand.New(rand.NewPCG(97, 98))
	c := newValues8Case(r, 3, 128, 4, 64)
	for i := range c.w {
		c.w[i] = float32(r.Float64())
	}
	var buf WeightsQ8
	b.Run(Active().String(), func(b *testing.B) {
		for b.Loop() {
			buf.quantize(c.w, c.n, c.g, c.n, c.codes, c.stride, c.normOff, 1)
		}
	})
	if active.weightsQ8Pair == nil {
		return
	}
	// AxpyCodesQ8Pair's: both parts' weights in one call (here the same
	// norms twice: the same work as two parts' own).
	second := new(WeightsQ8)
	b.Run(Active().String()+"/pair", func(b *testing.B) {
		for b.Loop() {
			buf.setValid(c.g, c.n)
			active.weightsQ8Pair(buf.w[:], second.w[:], &buf.sums, &second.sums, &buf.amax, &second.amax, c.w, c.n, &buf.valid, c.codes, c.stride, c.normOff, c.normOff, c.n)
			buf.setScales(1)
			second.setScales(1)
		}
	})
}

// codeIndex reads index j of bits-wide indices packed from the low bit up.
func codeIndex(idx []byte, bits, j int) int {
	bit := j * bits
	v := int(idx[bit>>3])
	if bit&7+bits > 8 {
		v |= int(idx[bit>>3+1]) << 8
	}
	return v >> (bit & 7) & (1<<bits - 1)
}

// TestCodesAheadChangesNothing requires the code kernels to give the same
// bits with and without a region to prefetch, on every level: prefetching
// only asks for cache lines.
func TestCodesAheadChangesNothing(t *testing.T) {
	r := rand.New(rand.NewPCG(99, 100))
	for _, l := range append([]Level{Generic}, availableVector()...) {
		for _, bits := range []int{3, 4} {
			for _, g := range []int{1, 4, 6} {
				for _, ahead := range [][]byte{make([]byte, 77), make([]byte, 5000)} {
					c := newValues8Case(r, bits, 128, g, 1+r.IntN(90))
					q := make([]float32, g*c.d)
					for i := range q {
						q[i] = float32(r.NormFloat64())
					}
					run := func(a []byte) [][]float32 {
						out, out8 := make([]float32, g*c.n), make([]float32, g*c.n)
						acc, acc8 := slices.Clone(c.acc0), slices.Clone(c.acc0)
						with(t, l, func() {
							var qq QueryQ8
							qq.Quantize(q, c.d, g, c.d, bits)
							var buf WeightsQ8
							DotCodes(out, c.n, q, c.d, g, c.cb, c.codes, c.stride, c.idxOff, c.normOff, c.n, c.d, a)
							DotCodesQ8(out8, c.n, nil, &qq, c.cb, c.codes, c.stride, c.idxOff, c.normOff, c.n, a)
							AxpyCodes(acc, c.d, c.w, c.n, g, c.cb, c.codes, c.stride, c.idxOff, c.normOff, c.n, c.d, a)
							AxpyCodesQ8(acc8, c.d, c.w, c.n, g, c.cb, c.codes, c.stride, c.idxOff, c.normOff, c.n, c.d, &buf, a)
						})
						return [][]float32{out, out8, acc, acc8}
					}
					want, got := run(nil), run(ahead)
					for k := range want {
						sameBits(t, fmt.Sprintf("%v %v, ahead of %d bytes: result %d", l, c, len(ahead), k), got[k], want[k])
					}
				}
			}
		}
	}
}

// TestAxpyCodesQ8PairIsTwoCalls requires AxpyCodesQ8Pair to give, on every
// level, the bits of AxpyCodesQ8 for the first part then for the second,
// for each pair of widths, both norm positions, rows past four and pieces
// past one, the parts with their own norms and with one (a Split code's);
// and (AxpyCodesQ8 being the same on every level) the generic twin's.
func TestAxpyCodesQ8PairIsTwoCalls(t *testing.T) {
	levels := append([]Level{Generic}, availableVector()...)
	r := rand.New(rand.NewPCG(101, 102))
	for _, bits := range [][2]int{{3, 4}, {4, 3}, {3, 3}, {4, 4}} {
		for _, dims := range [][2]int{{64, 64}, {128, 64}} {
			for _, g := range []int{1, 4, 6} {
				for _, n := range []int{1, 17, 64, 65, 130} {
					da, db := dims[0], dims[1]
					cba, cbb := randomCodebook(r, bits[0]), randomCodebook(r, bits[1])
					ia, ib := da*bits[0]/8, db*bits[1]/8
					// Part a: norm then indices; part b: indices then its
					// own norm, or (one time in three) part a's.
					idxa, norma, idxb := 2, 0, 2+ia
					normb := idxb + ib
					stride := normb + 2 + r.IntN(3)
					shared := r.IntN(3) == 0
					if shared {
						normb, stride = norma, idxb+ib+r.IntN(3)
					}
					codes := randomCodes(r, n, stride)
					for tk := range n {
						h := half.FromFloat32(float32(r.ExpFloat64()))
						codes[tk*stride+normb], codes[tk*stride+normb+1] = byte(h), byte(h>>8)
					}
					codes = codes[:len(codes):len(codes)]
					w := make([]float32, g*n)
					for i := range w {
						w[i] = float32(r.ExpFloat64())
						if r.IntN(6) == 0 {
							w[i] = -w[i]
						}
					}
					acc0 := make([]float32, g*(da+db))
					for i := range acc0 {
						acc0[i] = float32(r.NormFloat64())
					}
					ahead := make([]byte, 300)
					var want []float32
					for _, l := range levels {
						name := fmt.Sprintf("%v bits=%v d=%v g=%d n=%d shared norm=%v", l, bits, dims, g, n, shared)
						var buf WeightsQ8
						pair, ok := guarded(len(acc0))
						copy(pair, acc0)
						two := slices.Clone(acc0)
						with(t, l, func() {
							AxpyCodesQ8Pair(pair, da+db, w, n, g, cba, cbb, codes, stride, idxa, norma, idxb, normb, n, da, db, &buf, ahead)
							AxpyCodesQ8(two, da+db, w, n, g, cba, codes, stride, idxa, norma, n, da, &buf, nil)
							AxpyCodesQ8(two[da:], da+db, w, n, g, cbb, codes, stride, idxb, normb, n, db, &buf, nil)
						})
						ok(t)
						sameBits(t, name+": pair against two calls", pair, two)
						if want == nil {
							want = pair
						}
						sameBits(t, name+": against the generic twin", pair, want)
					}
				}
			}
		}
	}
}

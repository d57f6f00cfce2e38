package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// codes8Case is one random DotCodesQ8 problem.
type codes8Case struct {
	bits, d, g, n, stride int
	cb                    *Codebook
	codes                 []byte
	x                     []float32 // g query rows of d
	out0                  []float32 // what out holds before the call
}

// randomCodebook returns a codebook of 1<<bits normal centroids.
func randomCodebook(r *rand.Rand, bits int) *Codebook {
	tab := make([]float32, 1<<bits)
	for i := range tab {
		tab[i] = float32(r.NormFloat64())
	}
	return NewCodebook(tab, bits)
}

func newCodes8Case(r *rand.Rand, bits, d, g, n int, slack bool) codes8Case {
	c := codes8Case{bits: bits, d: d, g: g, n: n, stride: 2 + d*bits/8 + r.IntN(3)}
	c.cb = randomCodebook(r, bits)
	c.codes = randomCodes(r, n, c.stride)
	if slack {
		c.codes = append(c.codes, make([]byte, Slack)...)[:len(c.codes)]
	} else {
		c.codes = c.codes[:len(c.codes):len(c.codes)]
	}
	c.x = make([]float32, g*d)
	for i := range c.x {
		c.x[i] = float32(r.NormFloat64())
		if r.IntN(16) == 0 {
			c.x[i] *= 100 // an outlier coordinate
		}
	}
	c.out0 = make([]float32, g*n)
	for i := range c.out0 {
		c.out0[i] = float32(r.NormFloat64())
	}
	return c
}

func (c codes8Case) String() string {
	return fmt.Sprintf("bits=%d d=%d g=%d n=%d stride=%d", c.bits, c.d, c.g, c.n, c.stride)
}

// run scores c at level l into a guarded copy of out0.
func (c codes8Case) run(t *testing.T, l Level) []float32 { return c.runInit(t, l, nil) }

// runInit is run with DotCodesQ8's init.
func (c codes8Case) runInit(t *testing.T, l Level, init []float32) []float32 {
	t.Helper()
	var q QueryQ8
	q.Quantize(c.x, c.d, c.g, c.d, c.bits)
	out, ok := guarded(c.g * c.n)
	copy(out, c.out0)
	with(t, l, func() { DotCodesQ8(out, c.n, init, &q, c.cb, c.codes, c.stride, 2, 0, c.n, nil) })
	ok(t)
	return out
}

// sameOnLevels requires the same bits from every level as from the
// generic twin.
func (c codes8Case) sameOnLevels(t *testing.T, levels []Level) {
	t.Helper()
	want := c.run(t, Generic)
	for _, l := range levels {
		sameBits(t, fmt.Sprintf("%v %v: out", l, c), c.run(t, l), want)
	}
}

// sameBits requires got to hold exactly want's bits.
func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for k := range got {
		if math.Float32bits(got[k]) != math.Float32bits(want[k]) {
			t.Fatalf("%s[%d] = %v, want %v", what, k, got[k], want[k])
		}
	}
}

// q8Levels returns the levels with integer code kernels, or skips.
func q8Levels(t *testing.T) []Level {
	return levelsWith(t, func(k *kernels) bool { return k.dotCodesQ8[0] != nil },
		"no level with integer code kernels on this CPU/build: only the generic twin runs")
}

// levelsWith returns the vector levels whose kernels satisfy has, or skips
// with why.
func levelsWith(t *testing.T, has func(k *kernels) bool, why string) []Level {
	var ls []Level
	for _, l := range vectorLevels(t) {
		if has(impls[l]) {
			ls = append(ls, l)
		}
	}
	if len(ls) == 0 {
		t.Skip(why)
	}
	return ls
}

func TestDotCodesQ8IsTheSameOnEveryLevel(t *testing.T) {
	levels := q8Levels(t)
	r := rand.New(rand.NewPCG(81, 82))
	for _, bits := range []int{3, 4, 8} {
		for _, d := range []int{32, 64, 96, 128} {
			for range 6 {
				c := newCodes8Case(r, bits, d, 1+r.IntN(9), 1+r.IntN(40), r.IntN(2) == 0)
				c.sameOnLevels(t, levels)
			}
		}
	}
}

// TestDotCodesQ8InitIsFillThenAdd requires, on every level, that init
// sets the rows to init + score, whatever out held: the bits of filling
// the rows with init, then adding.
func TestDotCodesQ8InitIsFillThenAdd(t *testing.T) {
	levels := append([]Level{Generic}, q8Levels(t)...)
	r := rand.New(rand.NewPCG(85, 86))
	for _, bits := range []int{3, 4, 8} {
		for _, d := range []int{64, 128} {
			for range 4 {
				c := newCodes8Case(r, bits, d, 1+r.IntN(9), 1+r.IntN(40), r.IntN(2) == 0)
				init := make([]float32, c.g)
				for i := range init {
					init[i] = float32(r.NormFloat64())
				}
				filled := c
				filled.out0 = make([]float32, len(c.out0))
				for k := range filled.out0 {
					filled.out0[k] = init[k/c.n]
				}
				want := filled.run(t, Generic)
				for _, l := range levels {
					sameBits(t, fmt.Sprintf("%v %v: init", l, c), c.runInit(t, l, init), want)
				}
			}
		}
	}
}

// TestDotCodesQ8WithinBound checks every score against the float scores of
// the same codes: within norm·Q8Bound, plus float rounding.
func TestDotCodesQ8WithinBound(t *testing.T) {
	r := rand.New(rand.NewPCG(83, 84))
	for _, l := range append([]Level{Generic}, availableVector()...) {
		for _, bits := range []int{3, 4, 8} {
			for _, d := range []int{32, 128, 192} {
				c := newCodes8Case(r, bits, d, 4, 33, true)
				clear(c.out0)
				got := c.run(t, l)
				var q QueryQ8
				q.Quantize(c.x, c.d, c.g, c.d, c.bits)
				var worst float64
				for i := range c.g {
					for tk := range c.n {
						code := c.codes[tk*c.stride : (tk+1)*c.stride]
						ref := decodedRef(c.cb, code, d) // norm·c_j
						norm := float64(f16(uint16(code[0]) | uint16(code[1])<<8))
						cent := make([]float32, d)
						var want, mag float64
						for j := range d {
							want += float64(c.x[i*d+j]) * ref[j]
							mag += math.Abs(float64(c.x[i*d+j]) * ref[j])
							cent[j] = float32(ref[j] / norm)
						}
						bound := norm*q.Q8Bound(i, c.x[i*d:(i+1)*d], c.cb, cent) + 1e-5*mag
						e := math.Abs(float64(got[i*c.n+tk]) - want)
						if e > bound {
							t.Fatalf("%v bits=%d d=%d: score[%d][%d] = %v, float %v: error %.3g over the bound %.3g", l, bits, d, i, tk, got[i*c.n+tk], want, e, bound)
						}
						worst = max(worst, e/bound)
					}
				}
				t.Logf("%v bits=%d d=%d: largest error %.2f of the bound", l, bits, d, worst)
			}
		}
	}
}

// TestQueryQ8Order checks the kernels' coordinate order is a permutation.
func TestQueryQ8Order(t *testing.T) {
	for _, bits := range []int{3, 4, 8} {
		seen := make(map[int]bool)
		for j := range 32 {
			p := codes8Pos(bits, j)
			if p < 0 || p >= 32 || seen[p] {
				t.Fatalf("bits=%d: coordinate %d at %d, taken or out of range", bits, j, p)
			}
			seen[p] = true
		}
	}
}

// TestDotCodesQ8Extremes scores the largest products the kernels can meet:
// centroids ±max (table bytes 127 and 1) against query values ±127 in every
// coordinate, where a saturating pair sum would differ from the generic
// twin's exact one.
func TestDotCodesQ8Extremes(t *testing.T) {
	levels := q8Levels(t)
	r := rand.New(rand.NewPCG(85, 86))
	for _, bits := range []int{3, 4, 8} {
		c := newCodes8Case(r, bits, 128, 8, 16, true)
		tab := make([]float32, 1<<bits)
		for i := range tab {
			tab[i] = float32(1 - 2*(i&1))
		}
		c.cb = NewCodebook(tab, bits)
		for i := range c.x {
			c.x[i] = float32(1 - 2*(i/7&1))
		}
		for k := range c.codes { // index bytes all ones or all zeros: every centroid +1 or −1
			if k%c.stride >= 2 {
				c.codes[k] = byte(0xff * (k / c.stride & 1))
			}
		}
		c.sameOnLevels(t, levels)
	}
}

// TestDotCodesQ8DoesNotAllocate: attention calls DotCodesQ8 once per block
// and head, so its kernel arguments must not move to the heap.
func TestDotCodesQ8DoesNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(87, 88))
	for _, g := range []int{4, 5} {
		c := newCodes8Case(r, 3, 128, g, 32, true)
		var q QueryQ8
		q.Quantize(c.x, c.d, c.g, c.d, c.bits)
		out := make([]float32, g*c.n)
		if a := testing.AllocsPerRun(20, func() { DotCodesQ8(out, c.n, nil, &q, c.cb, c.codes, c.stride, 2, 0, c.n, nil) }); a != 0 {
			t.Fatalf("g=%d: %v allocations per call", g, a)
		}
	}
}

// TestDotCodesQ8PairIsTwoCalls requires, on every level, DotCodesQ8Pair to
// give the bits of DotCodesQ8 on the first part (with init) then on the
// second, for parts with their own norms or sharing one (a split code),
// every pair of widths (those without a pair kernel take the two calls),
// and row counts that leave a partial group of four.
func TestDotCodesQ8PairIsTwoCalls(t *testing.T) {
	levels := append([]Level{Generic}, q8Levels(t)...)
	r := rand.New(rand.NewPCG(87, 88))
	for _, bits := range [][2]int{{3, 4}, {4, 3}, {3, 3}, {4, 8}} {
		for _, d := range [][2]int{{64, 64}, {128, 64}, {64, 192}} {
			for _, shared := range []bool{false, true} {
				for range 3 {
					g, n := 1+r.IntN(9), 1+r.IntN(90)
					a, b := newCodes8Case(r, bits[0], d[0], g, n, false), newCodes8Case(r, bits[1], d[1], g, n, false)
					// One code: a's norm and indices, then b's (or none: shared).
					ia, ib := 2, 2+d[0]*bits[0]/8
					normb := ib + d[1]*bits[1]/8
					stride := normb + 2
					if shared {
						normb, stride = 0, normb
					}
					codes := randomCodes(r, n, stride)
					var init []float32
					if r.IntN(2) == 0 {
						init = a.x[:g]
					}
					var qa, qb QueryQ8
					name := fmt.Sprintf("bits=%v d=%v shared=%v g=%d n=%d init=%v", bits, d, shared, g, n, init != nil)
					for _, l := range levels {
						with(t, l, func() {
							qa.Quantize(a.x, a.d, g, a.d, a.bits)
							qb.Quantize(b.x, b.d, g, b.d, b.bits)
							want := append([]float32(nil), a.out0...)
							DotCodesQ8(want, n, init, &qa, a.cb, codes, stride, ia, 0, n, nil)
							DotCodesQ8(want, n, nil, &qb, b.cb, codes, stride, ib, normb, n, nil)
							got, ok := guarded(g * n)
							copy(got, a.out0)
							DotCodesQ8Pair(got, n, init, &qa, &qb, a.cb, b.cb, codes, stride, ia, 0, ib, normb, n, make([]byte, 300))
							ok(t)
							sameBits(t, fmt.Sprintf("%v %s", l, name), got, want)
						})
					}
				}
			}
		}
	}
}

// TestDotCodesQ8ReusedQuery requires a query scored against one codebook,
// then another, then the first again, to give the bits of a query
// quantized afresh for each (the kernels' arguments are kept between
// calls with the same codebook).
func TestDotCodesQ8ReusedQuery(t *testing.T) {
	r := rand.New(rand.NewPCG(89, 90))
	for _, l := range append([]Level{Generic}, q8Levels(t)...) {
		for _, bits := range []int{3, 4} {
			a := newCodes8Case(r, bits, 128, 5, 37, true)
			b := a
			b.cb = randomCodebook(r, bits)
			want := [][]float32{a.run(t, l), b.run(t, l), a.run(t, l)}
			var q QueryQ8
			for k, c := range []codes8Case{a, b, a} {
				out := append([]float32(nil), c.out0...)
				with(t, l, func() {
					if k == 0 {
						q.Quantize(c.x, c.d, c.g, c.d, c.bits)
					}
					DotCodesQ8(out, c.n, nil, &q, c.cb, c.codes, c.stride, 2, 0, c.n, nil)
				})
				sameBits(t, fmt.Sprintf("%v %v, call %d", l, c, k), out, want[k])
			}
		}
	}
}

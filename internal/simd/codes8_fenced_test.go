//go:build linux

package simd

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestDotCodesQ8CodeLayouts requires the bits of the generic twin on every
// level for codes with the norm before the indices and after them, laid
// flush against the start and the end of a fenced page: a kernel that reads
// a byte outside the codes (a group's last token gathered again for the
// missing ones, a norm's neighbours) faults.
func TestDotCodesQ8CodeLayouts(t *testing.T) {
	levels := q8Levels(t)
	page := fenced(t)
	r := rand.New(rand.NewPCG(83, 84))
	for _, bits := range []int{3, 4} {
		for _, d := range []int{64, 128} {
			idxBytes := d * bits / 8
			for _, normLast := range []bool{false, true} {
				idxOff, normOff := 2, 0
				if normLast {
					idxOff, normOff = 0, idxBytes
				}
				stride := idxBytes + 2
				for _, n := range []int{1, 15, 16, 17, 40} {
					for _, atEnd := range []bool{false, true} {
						c := newCodes8Case(r, bits, d, 1+r.IntN(6), n, false)
						at := 0
						if atEnd {
							at = len(page) - n*stride
						}
						codes := page[at : at+n*stride : at+n*stride]
						for i := range codes {
							codes[i] = byte(r.Uint32())
						}
						for tk := range n { // finite norms
							codes[tk*stride+normOff+1] &= 0x3f
						}
						var q QueryQ8
						q.Quantize(c.x, d, c.g, d, bits)
						score := func(l Level) []float32 {
							out, ok := guarded(c.g * n)
							copy(out, c.out0)
							with(t, l, func() { DotCodesQ8(out, n, nil, &q, c.cb, codes, stride, idxOff, normOff, n, nil) })
							ok(t)
							return out
						}
						want := score(Generic)
						name := fmt.Sprintf("bits=%d d=%d g=%d n=%d normLast=%v atEnd=%v", bits, d, c.g, n, normLast, atEnd)
						for _, l := range levels {
							sameBits(t, fmt.Sprintf("%v %s", l, name), score(l), want)
						}
					}
				}
			}
		}
	}
}

// TestAxpyCodesQ8CodeLayouts is TestDotCodesQ8CodeLayouts for the value
// kernels and their weight quantizer (each norm gathered with its
// neighbours, the tail's tokens masked): the bits of the generic twin on
// every level, the codes flush against a fenced page.
func TestAxpyCodesQ8CodeLayouts(t *testing.T) {
	levels := values8Levels(t)
	eachFencedValues8Case(t, func(c values8Case, atEnd bool) {
		want := c.run(t, Generic)
		for _, l := range levels {
			sameBits(t, fmt.Sprintf("%v %v atEnd=%v", l, c, atEnd), c.run(t, l), want)
		}
	})
}

// eachFencedValues8Case calls f with value cases of 3- and 4-bit codes
// whose codes lie flush against the start or the end of a fenced page, the
// norm first or last.
func eachFencedValues8Case(t *testing.T, f func(c values8Case, atEnd bool)) {
	page := fenced(t)
	r := rand.New(rand.NewPCG(85, 86))
	for _, bits := range []int{3, 4} {
		for _, d := range []int{64, 128} {
			for _, n := range []int{1, 15, 16, 17, 40, 64, 65} {
				for _, layout := range []int{0, 1, 2, 3} { // norm first or last, the codes flush against the fence's start or end
					c := newValues8Case(r, bits, d, 1+r.IntN(6), n)
					if len(c.codes) > len(page) {
						continue // two pieces of 128 coordinates: a page holds 60 codes
					}
					normLast, atEnd := layout%2 == 1, layout >= 2
					c.idxOff, c.normOff = 2, 0
					if normLast {
						c.idxOff, c.normOff = 0, c.stride-2
					}
					at := 0
					if atEnd {
						at = len(page) - len(c.codes)
					}
					c.codes = page[at : at+len(c.codes) : at+len(c.codes)]
					for i := range c.codes {
						c.codes[i] = byte(r.Uint32())
					}
					for tk := range n { // finite norms
						c.codes[tk*c.stride+c.normOff+1] &= 0x3f
					}
					f(c, atEnd)
				}
			}
		}
	}
}

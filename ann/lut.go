package ann

import (
	"math"
)

// byteLUT scores MSE codes whose bit width divides 8 one code byte at a
// time: rows[p][v] is the (quantized) contribution of byte value v at byte
// position p of the index stream, Σ over the 8/bits coordinates the byte
// holds of rq[j]·centroid[index]. So ⟨rq, ĉ⟩ ≈ base + step·Σ_p rows[p][byte p].
//
// Entries are uint16 with one step for all rows (so sums are comparable
// across rows) and a per-row offset folded into base: the table for
// d=100 at 4 bits is 50×256×2 = 25 KiB, which fits L1 where float32 entries
// (50 KiB) would not. The rounding error is at most step/2 per byte,
// 2^-17 of the widest row's range.
type byteLUT struct {
	rows       [][256]uint16
	f          [][256]float32 // the float table before quantization
	base, step float32
}

func (l *byteLUT) init(layout codeLayout) {
	l.rows = make([][256]uint16, layout.IndexBytes)
	l.f = make([][256]float32, layout.IndexBytes)
}

func (l *byteLUT) build(rq []float32, layout codeLayout) {
	bits := layout.Bits
	per := 8 / bits
	mask := 1<<bits - 1
	cent := layout.Centroids
	var terms [8][256]float32 // terms[t][k] = rq[j]·cent[k] for the t-th coordinate of the byte
	for p := range l.f {
		nc := min(per, len(rq)-p*per)
		for t := range nc {
			r := rq[p*per+t]
			for k, c := range cent {
				terms[t][k] = r * c
			}
		}
		row := &l.f[p]
		for v := range 256 {
			var s float32
			for t := range nc {
				s += terms[t][v>>(t*bits)&mask]
			}
			// Byte values with bits set beyond the last coordinate never
			// occur in valid codes; they still get an entry (the bits are
			// ignored) so a kernel never needs a bounds check.
			row[v] = s
		}
	}
	l.quantize()
}

// quantize rounds the float table l.f into l.rows, base and step: one step
// for all rows, each row shifted by its minimum (folded into base).
func (l *byteLUT) quantize() {
	var base float64
	span := float32(0)
	for p := range l.f {
		rmin, rmax := float32(math.Inf(1)), float32(math.Inf(-1))
		for _, s := range l.f[p] {
			rmin, rmax = min(rmin, s), max(rmax, s)
		}
		base += float64(rmin)
		span = max(span, rmax-rmin)
	}
	step := span / 65535
	if step == 0 || math.IsInf(float64(step), 0) || math.IsNaN(float64(step)) {
		step = 1
	}
	inv := 1 / step
	for p := range l.f {
		row, q := &l.f[p], &l.rows[p]
		rmin := row[0]
		for _, s := range row {
			rmin = min(rmin, s)
		}
		for v, s := range row {
			e := math.Round(float64((s - rmin) * inv))
			q[v] = uint16(min(max(e, 0), 65535))
		}
	}
	l.base, l.step = float32(base), step
}

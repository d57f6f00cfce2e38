package lloydmax

import "math"

// Codebook is a scalar quantizer with 2^Bits levels. Codebooks returned by
// Get are shared: treat every field as read-only. Build codebooks with Solve
// or Get; Quantize relies on private search tables they fill in.
type Codebook struct {
	Bits       int
	Centroids  []float64 // ascending, len 2^Bits
	Boundaries []float64 // ascending, len 2^Bits−1: midpoints of adjacent centroids
	Distortion float64   // E[(X−Q(X))²] per coordinate under the density
	Iterations int       // iterations the solver used (0 for table entries)

	// Float32 copies for the hot path. Boundaries32[i] is Boundaries[i]
	// rounded to nearest; Quantize compares against these.
	Centroids32  []float32
	Boundaries32 []float32

	// search holds Boundaries32 padded with +Inf to 256 entries, so the
	// fixed-trip searches in Quantize need no bounds checks.
	search      [256]float32
	grid        *grid // nil: use search
	fingerprint uint64
}

// newCodebook builds a codebook from ascending centroids; the boundaries are
// their midpoints.
func newCodebook(bits int, centroids []float64, distortion float64, iterations int) *Codebook {
	n := len(centroids)
	cb := &Codebook{
		Bits:         bits,
		Centroids:    centroids,
		Boundaries:   make([]float64, n-1),
		Distortion:   distortion,
		Iterations:   iterations,
		Centroids32:  make([]float32, n),
		Boundaries32: make([]float32, n-1),
	}
	for i, c := range centroids {
		cb.Centroids32[i] = float32(c)
	}
	for i := range cb.search {
		cb.search[i] = float32(math.Inf(1))
	}
	for i := range cb.Boundaries {
		b := (centroids[i] + centroids[i+1]) / 2 // correctly rounded; exactly antisymmetric
		cb.Boundaries[i] = b
		cb.Boundaries32[i] = float32(b)
		cb.search[i] = float32(b)
	}
	if bits >= 3 {
		cb.grid = newGrid(cb.Boundaries32)
	}
	cb.fingerprint = fingerprint(bits, centroids)
	return cb
}

// Quantize returns the index of x's cell: the number of boundaries
// (Boundaries32) strictly below x. A value equal to a boundary therefore
// goes to the lower cell; −Inf maps to 0, +Inf to 2^Bits−1, and NaN to 0
// (every comparison with NaN is false).
//
// For Bits ≤ 3 it counts with 2^Bits−1 branch-free compares; from 4 bits on
// it runs an unrolled binary search of Bits steps. (On Gaussian inputs the
// 15-compare count measured 6.3 ns at 4 bits against 3.7–4.8 ns for the
// search, and a branch-free cmov search was slower than the branchy one at
// every width: its steps form one dependent chain.)
func (c *Codebook) Quantize(x float32) uint8 {
	return quantize(&c.search, c.Bits, x)
}

func quantize(b *[256]float32, bits int, x float32) uint8 {
	switch bits {
	case 1:
		return lt(b[0], x)
	case 2:
		return lt(b[0], x) + lt(b[1], x) + lt(b[2], x)
	case 3:
		return lt(b[0], x) + lt(b[1], x) + lt(b[2], x) + lt(b[3], x) +
			lt(b[4], x) + lt(b[5], x) + lt(b[6], x)
	}
	return search(b, bits, x)
}

// lt is t < x as 0 or 1; the compiler turns it into a SETcc, not a branch.
func lt(t, x float32) uint8 {
	if t < x {
		return 1
	}
	return 0
}

// search is a lower-bound search over 2^bits−1 boundaries: the step of
// size s advances the index by s if the boundary it would step over is
// below x. Indices stay within 2^bits−2, so the +Inf padding is never read;
// the &255 only spares the bounds checks.
func search(b *[256]float32, bits int, x float32) uint8 {
	i := 0
	switch bits {
	case 8:
		if b[127] < x {
			i = 128
		}
		fallthrough
	case 7:
		if b[(i+63)&255] < x {
			i += 64
		}
		fallthrough
	case 6:
		if b[(i+31)&255] < x {
			i += 32
		}
		fallthrough
	case 5:
		if b[(i+15)&255] < x {
			i += 16
		}
		fallthrough
	case 4:
		if b[(i+7)&255] < x {
			i += 8
		}
		fallthrough
	case 3:
		if b[(i+3)&255] < x {
			i += 4
		}
		fallthrough
	case 2:
		if b[(i+1)&255] < x {
			i += 2
		}
		fallthrough
	case 1:
		if b[i&255] < x {
			i++
		}
	}
	return uint8(i)
}

// QuantizeSlice writes Quantize(x[i]) to dst[i] for every i. It panics if
// dst is shorter than x. Up to 2 bits the boundaries stay in registers for
// the whole slice; from 3 bits on an exact uniform grid (grid.go) finds the
// cell with one table load and one compare.
func (c *Codebook) QuantizeSlice(dst []uint8, x []float32) {
	if len(dst) < len(x) {
		panic("lloydmax: QuantizeSlice: dst shorter than x")
	}
	dst = dst[:len(x)]
	b := &c.search
	if g := c.grid; g != nil {
		// One slot lookup and one compare per value (see grid).
		base, lo, scale, last := g.base, g.lo, g.scale, g.last
		mask := len(base) - 1
		for i, v := range x {
			t := (v - lo) * scale
			if !(t >= 0) {
				t = 0
			}
			if t > last {
				t = last
			}
			k := base[int(t)&mask]
			dst[i] = k + lt(b[k], v)
		}
		return
	}
	switch bits := c.Bits; bits {
	case 1:
		for i, v := range x {
			dst[i] = lt(b[0], v)
		}
	case 2:
		b0, b1, b2 := b[0], b[1], b[2]
		for i, v := range x {
			dst[i] = lt(b0, v) + lt(b1, v) + lt(b2, v)
		}
	case 3:
		b0, b1, b2, b3, b4, b5, b6 := b[0], b[1], b[2], b[3], b[4], b[5], b[6]
		for i, v := range x {
			dst[i] = lt(b0, v) + lt(b1, v) + lt(b2, v) + lt(b3, v) + lt(b4, v) + lt(b5, v) + lt(b6, v)
		}
	default:
		for i, v := range x {
			dst[i] = search(b, bits, v)
		}
	}
}

// Value returns the centroid of cell i as float32. It panics if i ≥ 2^Bits.
func (c *Codebook) Value(i uint8) float32 { return c.Centroids32[i] }

// Fingerprint identifies the centroids: FNV-1a over Bits and the float64 bit
// patterns of Centroids (little-endian). Serialized quantizers store it to
// detect a codebook that differs from the one they were encoded with.
func (c *Codebook) Fingerprint() uint64 {
	if c.fingerprint != 0 {
		return c.fingerprint
	}
	return fingerprint(c.Bits, c.Centroids)
}

func fingerprint(bits int, centroids []float64) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	h = (h ^ uint64(uint8(bits))) * prime
	for _, c := range centroids {
		u := math.Float64bits(c)
		for k := 0; k < 64; k += 8 {
			h = (h ^ (u >> k & 0xff)) * prime
		}
	}
	return h
}

package polarquant

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/turboquant-go/tq/internal/half"
)

// Quantizer encodes rotated vectors of one dimension into PolarQuant codes.
// It is immutable and safe for concurrent use.
//
// Code layout for dimension d, with n = d/16 blocks (block b is
// y[16b : 16b+16]):
//
//	bytes [0, 2n)            block radii, fp16 little-endian, block order
//	bytes [2n, 6n)           level-1 angles, 4 bits each (d/2 of them)
//	bytes [6n, 7n)           level-2 angles, 2 bits each (d/4)
//	bytes [7n, 7n+⌈3n/4⌉)    level-3 angles (d/8), then level-4 angles (d/16), 2 bits each
//
// The angle indices of all four levels form one continuous LSB-first bit
// stream in the internal/bitpack order (index i of width w occupies stream
// bits [i·w, i·w+w), stream bit k is bit k%8 of its byte), level 1 first,
// then 2, 3, 4, each level in angle order. Levels 1 and 2 end on byte
// boundaries for every d, so block b's level-1 angles are the 4 bytes at
// 2n+4b (angle 8b+j in bits 4j..4j+3 of that little-endian uint32) and its
// level-2 angles are the byte at 6n+b. The unused high bits of the last byte
// are zero. So CodeSize = 7n + ⌈3n/4⌉ = ⌈31·d/64⌉ bytes: 62 at d = 128,
// 3.875 bits per coordinate whenever d is a multiple of 64.
//
// Index k of an angle refers to AngleCodebook(level).Centroids[k].
type Quantizer struct {
	dim   int
	size  int
	l1Off int // first level-1 byte
	l2Off int // first level-2 byte
	l3Off int // first level-3 byte (levels 3 and 4 share a stream from here)
	l4Bit int // bit offset of the level-4 stream from l3Off
	t     *tables
}

// New returns a quantizer for rotated vectors of dimension dim, which must
// be a positive multiple of 16. The shared angle codebooks are solved on the
// first call.
func New(dim int) (*Quantizer, error) {
	if dim <= 0 || dim%blockLen != 0 {
		return nil, fmt.Errorf("%w: got %d", ErrDimension, dim)
	}
	t, err := sharedTables()
	if err != nil {
		return nil, err
	}
	n := dim / blockLen
	q := &Quantizer{dim: dim, t: t}
	q.l1Off = 2 * n
	q.l2Off = q.l1Off + 4*n
	q.l3Off = q.l2Off + n
	q.l4Bit = 4 * n
	q.size = CodeSize(dim)
	return q, nil
}

// CodeSize is the exact number of bytes of one code of dimension dim (a
// positive multiple of 16): dim/16 fp16 radii, then the angle indices at 4
// bits (level 1) and 2 bits (levels 2–4). It is the size New's Quantizer
// reports, computed without building one.
func CodeSize(dim int) int {
	n := dim / blockLen
	return 2*n + 4*n + n + (6*n+7)/8
}

// Dim returns the vector dimension.
func (q *Quantizer) Dim() int { return q.dim }

// CodeSize returns the exact number of bytes of one code.
func (q *Quantizer) CodeSize() int { return q.size }

// Encode writes the code of the rotated vector y into dst. It returns an
// error wrapping ErrNonFinite for a NaN or ±Inf component or ErrOverflow for
// a block whose radius (the norm of its 16 components) rounds above fp16's
// 65504, and then writes nothing. Radii below fp16's normal range (6.1e-5)
// lose relative precision: callers should give y a norm near 1, or at least
// one that keeps every block norm within [1e-4, 6e4]. Encode panics if
// len(y) != Dim() or len(dst) < CodeSize(). It does not allocate.
func (q *Quantizer) Encode(dst []byte, y []float32) error {
	if len(y) != q.dim || len(dst) < q.size {
		panic("polarquant: Encode with wrong vector or code length")
	}
	if err := q.check(y); err != nil {
		return err
	}
	dst = dst[:q.size:q.size]
	t := q.t
	tail := dst[q.l3Off:]
	clear(tail) // levels 3 and 4 are OR-ed in below
	n := q.dim / blockLen
	for b := range n {
		yb := y[blockLen*b : blockLen*b+blockLen : blockLen*b+blockLen]
		// Angles of levels 2–4 are compared through squared radii, and the
		// level-1 angle through sign and magnitude tests, so the only
		// transcendental call per block is one square root.
		var s1 [8]float64
		w1 := level1(&s1, yb)
		var s2 [4]float64
		var w2 uint8
		for i := range s2 {
			lo, hi := s1[2*i], s1[2*i+1]
			s2[i] = lo + hi
			w2 |= t.index(0, lo, hi) << (2 * i)
		}
		s3a, s3b := s2[0]+s2[1], s2[2]+s2[3]
		i3 := t.index(1, s2[0], s2[1]) | t.index(1, s2[2], s2[3])<<2
		s4 := s3a + s3b // the same sum, in the same order, as blockRadius
		i4 := t.index(2, s3a, s3b)
		h := half.FromFloat32(float32(math.Sqrt(s4)))
		binary.LittleEndian.PutUint16(dst[2*b:], h)
		binary.LittleEndian.PutUint32(dst[q.l1Off+4*b:], w1)
		dst[q.l2Off+b] = w2
		tail[b>>1] |= i3 << (4 * (b & 1))
		bit := q.l4Bit + 2*b
		tail[bit>>3] |= i4 << (bit & 7)
	}
	return nil
}

// maxSafeBits is the float32 bit pattern of 16376 = 65504/4: a block of 16
// components that are all at most this large has a norm of at most 65504.
var maxSafeBits = math.Float32bits(16376)

// check finds Encode's data errors before anything is written. The common
// case costs an integer max over the magnitudes' bit patterns (NaN and Inf
// have the largest); only a vector with a component above 16376 pays for
// per-block radii.
func (q *Quantizer) check(y []float32) error {
	// Four running maxima, so the compare chains overlap (len(y) is a
	// multiple of 16).
	var m0, m1, m2, m3 uint32
	for i := 0; i+4 <= len(y); i += 4 {
		v := y[i : i+4 : i+4]
		m0 = max(m0, math.Float32bits(v[0])&0x7fffffff)
		m1 = max(m1, math.Float32bits(v[1])&0x7fffffff)
		m2 = max(m2, math.Float32bits(v[2])&0x7fffffff)
		m3 = max(m3, math.Float32bits(v[3])&0x7fffffff)
	}
	if max(m0, m1, m2, m3) <= maxSafeBits {
		return nil
	}
	for i, v := range y {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: component %d is %v", ErrNonFinite, i, v)
		}
	}
	for b := range q.dim / blockLen {
		r := blockRadius(y[blockLen*b : blockLen*b+blockLen])
		if half.FromFloat32(float32(r)) == 0x7c00 {
			return fmt.Errorf("%w: block %d (components %d–%d) has radius %g > 65504",
				ErrOverflow, b, blockLen*b, blockLen*b+blockLen-1, r)
		}
	}
	return nil
}

// blockRadius returns the norm of a 16-component block, summed in the
// pairwise order Encode uses, so that both round it identically.
func blockRadius(yb []float32) float64 {
	var s1 [8]float64
	level1(&s1, yb)
	return math.Sqrt(((s1[0] + s1[1]) + (s1[2] + s1[3])) + ((s1[4] + s1[5]) + (s1[6] + s1[7])))
}

// Norm returns the norm of Decode(code), computed from the block radii
// alone (decoding preserves every block's radius). It panics if
// len(code) < CodeSize().
func (q *Quantizer) Norm(code []byte) float32 {
	if len(code) < q.size {
		panic("polarquant: Norm with short code")
	}
	var s float64
	for b := range q.dim / blockLen {
		r := float64(half.ToFloat32(binary.LittleEndian.Uint16(code[2*b:])))
		s += r * r
	}
	return float32(math.Sqrt(s))
}

// Decode writes the reconstruction of code into dst: every block keeps its
// fp16 radius exactly, and the angles become their centroids. It panics if
// len(dst) != Dim() or len(code) < CodeSize(). It does not allocate.
func (q *Quantizer) Decode(dst []float32, code []byte) {
	if len(dst) != q.dim || len(code) < q.size {
		panic("polarquant: Decode with wrong vector or code length")
	}
	code = code[:q.size:q.size]
	t := q.t
	tail := code[q.l3Off:]
	n := q.dim / blockLen
	for b := range n {
		r := half.ToFloat32(binary.LittleEndian.Uint16(code[2*b:]))
		bit := q.l4Bit + 2*b
		i4 := tail[bit>>3] >> (bit & 7) & 3
		r3a, r3b := r*t.cos[2][i4], r*t.sin[2][i4]
		i3 := tail[b>>1] >> (4 * (b & 1))
		ia, ib := i3&3, i3>>2&3
		r2 := [4]float32{r3a * t.cos[1][ia], r3a * t.sin[1][ia], r3b * t.cos[1][ib], r3b * t.sin[1][ib]}
		w2 := code[q.l2Off+b]
		w1 := binary.LittleEndian.Uint32(code[q.l1Off+4*b:])
		out := dst[blockLen*b : blockLen*b+blockLen : blockLen*b+blockLen]
		for i, p := range r2 {
			k := w2 >> (2 * i) & 3
			c, s := p*t.cos[0][k], p*t.sin[0][k]
			k0, k1 := w1>>(8*i)&15, w1>>(8*i+4)&15
			out[4*i] = c * t.cos1[k0]
			out[4*i+1] = c * t.sin1[k0]
			out[4*i+2] = s * t.cos1[k1]
			out[4*i+3] = s * t.sin1[k1]
		}
	}
}

// tanPi8 and tan3Pi8 are the slopes of the level-1 cell boundaries at π/8
// and 3π/8 (the one at π/4 has slope 1).
const (
	tanPi8  = 0.41421356237309504880168872420969807856967187537694 // √2 − 1
	tan3Pi8 = 2.41421356237309504880168872420969807856967187537694 // √2 + 1
)

// level1 returns the eight level-1 angle indices of a 16-coordinate block,
// index j in bits 4j..4j+3, and stores the squared pair radii in s1.
//
// An index is the cell of atan2(v, u) in [0, 2π) on the uniform 16-cell
// grid (cell k = [kπ/8, (k+1)π/8)), found without computing the angle: three
// slope tests place (|u|, |v|) in one of the first quadrant's four cells,
// and the reflections about the y and x axes, which map cell k to 7−k and
// 15−k, are XORs with 7 and 15. Points within rounding of a boundary may
// land on either side; (+0, +0) maps to cell 0, and a signed zero counts as
// negative (harmless: such a pair has radius 0 or lies on a boundary).
// The loop body is written out, not a function call, so that the block
// stays in registers.
func level1(s1 *[8]float64, yb []float32) uint32 {
	yb = yb[:blockLen:blockLen]
	var w uint32
	for j := range s1 {
		u, v := float64(yb[2*j]), float64(yb[2*j+1])
		s1[j] = u*u + v*v
		au, av := math.Abs(u), math.Abs(v)
		k := b2u(av > au*tanPi8) + b2u(av > au) + b2u(av > au*tan3Pi8)
		su, sv := uint32(math.Float64bits(u)>>63), uint32(math.Float64bits(v)>>63)
		w |= (k ^ 7*su ^ 15*sv) << (4 * j)
	}
	return w
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

package turboquant

import (
	"fmt"
	"github.com/turboquant-go/tq/internal/vec"
	"math"

	"github.com/turboquant-go/tq/hadamard"
	"github.com/turboquant-go/tq/internal/bitpack"
	"github.com/turboquant-go/tq/internal/rng"
	"github.com/turboquant-go/tq/internal/simd"
	"github.com/turboquant-go/tq/lloydmax"
	"github.com/turboquant-go/tq/polarquant"
	"github.com/turboquant-go/tq/qjl"
)

// part quantizes one contiguous vector: a Quantizer has one, or two when
// outlier channels are split off.
//
// Code layout (all scalars little-endian at the configured precision, 2 or 4
// bytes; index streams in internal/bitpack's LSB-first bit order):
//
//	MSE:   ‖x‖ | [correction] | indices (bits·dim bits, byte-padded)
//	       with a Split: ‖x‖ | head indices (bits·head bits, byte-padded) |
//	       tail indices (Split.Bits·Split.Coords bits, byte-padded)
//	Prod:  ‖x‖ | indices ((bits−1)·dim bits, absent at 1 bit) | QJL signs (dim bits) | ‖residual‖
//	Polar: [correction] | PolarQuant code (fp16 radii, then angle indices)
type part struct {
	dim    int
	method Method
	bits   int // index bits of the scalar stage (Prod: Config.Bits−1, possibly 0)
	head   int // the coordinates coded at bits: dim, or dim − Split.Coords
	tail   *segment
	prec   Precision
	corr   Correction

	rot    *hadamard.Rotation
	cb     *lloydmax.Codebook // nil when bits == 0 or method == Polar
	sketch *qjl.Sketch        // Prod only
	polar  *polarquant.Quantizer
	bounds *simd.Bounds // its boundaries for simd.QuantizePack; nil unless bits is 1–4

	offNorm, offCorr, offIdx, offSigns, offGamma, size int
}

// segment is the tail of a split part: the last n coordinates of the
// rotated vector, coded with their own codebook (Config.Split).
type segment struct {
	n, bits int
	cb      *lloydmax.Codebook
	bounds  *simd.Bounds // nil unless bits is 1–4
	offIdx  int
}

// newCodebook returns the codebook of bits for dim-dimensional unit
// vectors and, for 1–4 bits, its boundaries for simd.QuantizePack.
func newCodebook(family lloydmax.Family, dim, bits int) (*lloydmax.Codebook, *simd.Bounds, error) {
	cb, err := lloydmax.Get(family, dim, bits)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	var bounds *simd.Bounds
	if bits <= 4 {
		bounds = simd.NewBounds(cb.Boundaries32, bits)
	}
	return cb, bounds, nil
}

// newPart builds one part. stream separates the random
// streams of the parts of one Quantizer.
func newPart(dim, bits int, cfg Config, stream uint64) (*part, error) {
	c := &part{dim: dim, method: cfg.Method, bits: bits, prec: cfg.Norm, corr: cfg.Correction, head: dim}
	var err error
	if c.rot, err = hadamard.NewRotation(dim, rng.Derive(cfg.Seed, 2*stream), cfg.Rounds); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	switch cfg.Method {
	case Polar:
		if c.polar, err = polarquant.New(dim); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	case Prod:
		c.bits = bits - 1
		if c.sketch, err = qjl.New(dim, dim, cfg.Sketch, rng.Derive(cfg.Seed, 2*stream+1)); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	if c.bits > 0 && c.method != Polar {
		if c.cb, c.bounds, err = newCodebook(cfg.Codebook, dim, c.bits); err != nil {
			return nil, err
		}
	}
	o := partOffsets(dim, bits, cfg)
	c.offNorm, c.offCorr, c.offIdx, c.offSigns, c.offGamma, c.size = o.norm, o.corr, o.idx, o.signs, o.gamma, o.size
	if sp := cfg.Split; sp != nil {
		// Both segments code coordinates of the same dim-dimensional unit
		// vector, so both codebooks are solved for dim.
		t := &segment{n: sp.Coords, bits: sp.Bits, offIdx: o.tail}
		if t.cb, t.bounds, err = newCodebook(cfg.Codebook, dim, sp.Bits); err != nil {
			return nil, err
		}
		c.head, c.tail = dim-sp.Coords, t
	}
	return c, nil
}

// offsets is where the fields of one part's code sit, in bytes from the
// part's first byte (see part for the layout).
type offsets struct{ norm, corr, idx, tail, signs, gamma, size int }

// partOffsets lays out the code of a part of dim coordinates at bits
// (Config.Bits or the outlier bits, QJL bit included). It is arithmetic
// only, so that a configuration's code size is known without building
// rotations or solving codebooks (Config.CodeSize); newPart uses it too, so
// the two cannot disagree.
func partOffsets(dim, bits int, cfg Config) offsets {
	sb := cfg.Norm.bytes()
	var o offsets
	if cfg.Method == Polar {
		if cfg.Correction != NoCorrection {
			o.idx = sb // the correction comes first, at 0
		}
		o.size = o.idx + polarquant.CodeSize(dim)
		return o
	}
	if cfg.Method == Prod {
		bits-- // one of the bits is the QJL sign
	}
	off := sb // the norm comes first
	if cfg.Correction != NoCorrection {
		o.corr = off
		off += sb
	}
	o.idx = off
	if sp := cfg.Split; sp != nil {
		off += bitpack.Bytes(dim-sp.Coords, bits)
		o.tail = off
		off += bitpack.Bytes(sp.Coords, sp.Bits)
	} else {
		off += bitpack.Bytes(dim, bits)
	}
	if cfg.Method == Prod {
		o.signs = off
		off += bitpack.Bytes(dim, 1) // the sketch has dim rows, one sign bit each
		o.gamma = off
		off += sb
	}
	o.size = off
	return o
}

// scratch is per-call working memory, pooled by the Quantizer.
type scratch struct {
	u, v  []float32 // rotated vector, reconstruction
	sk    []float32 // sketch scratch
	idx   []uint8
	parts [2][]float32 // gathered sub-vectors when outliers are split off
}

func newScratch(dim, skLen int) *scratch {
	return &scratch{
		u:   make([]float32, dim),
		v:   make([]float32, dim),
		sk:  make([]float32, skLen),
		idx: make([]uint8, dim),
	}
}

// encode writes the code of x (len dim, finite, ‖x‖² = ss) to dst
// (len ≥ size). Nothing is written when an error is returned.
func (c *part) encode(dst []byte, x []float32, ss float64, s *scratch) error {
	u := s.u[:c.dim]
	if c.method == Polar {
		c.rot.Forward(u, x)
		if err := c.polar.Encode(dst[c.offIdx:c.size], u); err != nil {
			return fmt.Errorf("%w: %w", ErrOverflow, err)
		}
		if c.corr != NoCorrection {
			v := s.v[:c.dim]
			c.polar.Decode(v, dst[c.offIdx:c.size])
			putScalar(dst[c.offCorr:], correctionFactor(c.corr, u, v, 1), c.prec)
		}
		return nil
	}

	n := math.Sqrt(ss)
	if !fits(n, c.prec) {
		return fmt.Errorf("%w: norm %g", ErrOverflow, n)
	}
	if n > 0 {
		c.rot.ForwardScaled(u, x, float32(1/n)) // u = Π·x/‖x‖
	} else {
		clear(u)
	}
	putScalar(dst[c.offNorm:], float32(n), c.prec)

	if c.method == MSE && c.corr == NoCorrection {
		// Only the packed indices are needed.
		packIndices(dst[c.offIdx:], u[:c.head], c.bits, c.cb, c.bounds, s.idx)
		if t := c.tail; t != nil {
			packIndices(dst[t.offIdx:], u[c.head:], t.bits, t.cb, t.bounds, s.idx)
		}
		return nil
	}
	idx := s.idx[:c.dim]
	if c.bits > 0 {
		c.cb.QuantizeSlice(idx, u)
		bitpack.Pack(dst[c.offIdx:], idx, c.bits)
	}
	v := s.v[:c.dim] // the scalar stage's reconstruction ĉ of u
	if c.bits > 0 {
		cent := c.cb.Centroids32
		for i, k := range idx {
			v[i] = cent[k]
		}
	} else {
		clear(v)
	}
	switch {
	case c.method == Prod:
		for i := range u { // the residual, in place: u is not needed again
			u[i] -= v[i]
		}
		gamma := norm2(u)
		c.sketch.Encode(dst[c.offSigns:c.offGamma], u, s.sk)
		putScalar(dst[c.offGamma:], float32(gamma), c.prec)
	case c.corr != NoCorrection:
		putScalar(dst[c.offCorr:], correctionFactor(c.corr, u, v, 1), c.prec)
	}
	return nil
}

// packIndices writes the packed indices of u's coordinates (quantize and
// pack in one pass where the width has simd bounds; idx is scratch).
func packIndices(dst []byte, u []float32, bits int, cb *lloydmax.Codebook, bounds *simd.Bounds, idx []uint8) {
	if bounds != nil {
		simd.QuantizePack(dst[:bitpack.Bytes(len(u), bits)], u, bounds)
		return
	}
	idx = idx[:len(u)]
	cb.QuantizeSlice(idx, u)
	bitpack.Pack(dst, idx, bits)
}

// correctionFactor is the scalar f that the reconstruction f·v of the target
// u is multiplied by: ⟨u,u⟩/⟨u,v⟩ makes ⟨u, f·v⟩ = ‖u‖² (unbiased inner
// products), ‖u‖/‖v‖ makes ‖f·v‖ = ‖u‖. Degenerate cases (zero vector, a
// reconstruction orthogonal to the target) fall back to the given default.
func correctionFactor(corr Correction, u, v []float32, def float32) float32 {
	var f float64
	switch corr {
	case Unbiased:
		f = vec.Dot64(u, u) / vec.Dot64(u, v)
	case Renormalize:
		f = norm2(u) / norm2(v)
	default:
		return def
	}
	// A factor far from 1 only arises for vectors the codebook cannot
	// represent at all; clamping keeps it storable in fp16.
	if math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 || f > 64 {
		return def
	}
	return float32(f)
}

// decode reconstructs the vector of code into dst (len dim).
func (c *part) decode(dst []float32, code []byte, s *scratch) {
	c.rot.Inverse(dst, c.decodeRotated(code, s))
}

// decodeRotated returns the reconstruction in the rotated domain (Π·x̃), in
// s.v.
func (c *part) decodeRotated(code []byte, s *scratch) []float32 {
	v := s.v[:c.dim]
	switch c.method {
	case Polar:
		c.polar.Decode(v, code[c.offIdx:c.size])
		if c.corr != NoCorrection {
			scale(v, getScalar(code[c.offCorr:], c.prec))
		}
	default:
		c.indexValues(v, code, s)
		if c.method == Prod {
			w := s.u[:c.dim]
			c.sketch.Unproject(w, code[c.offSigns:c.offGamma], s.sk)
			g := getScalar(code[c.offGamma:], c.prec) * qjl.Scale(c.sketch.Rows())
			for i := range v {
				v[i] += g * w[i]
			}
		}
		scale(v, c.scalarFactor(code))
	}
	return v
}

// scalarFactor is the stored norm times the correction factor, if any.
func (c *part) scalarFactor(code []byte) float32 {
	f := getScalar(code[c.offNorm:], c.prec)
	if c.corr != NoCorrection {
		f *= getScalar(code[c.offCorr:], c.prec)
	}
	return f
}

// accumulate adds w·Π·x̃ to acc (len dim).
func (c *part) accumulate(acc []float32, w float32, code []byte, s *scratch) {
	v, f := c.rotatedTerms(code, s)
	w *= f
	acc = acc[:len(v)]
	for i, x := range v {
		acc[i] += w * x
	}
}

// rotatedTerms returns a vector v and factor f with Π·x̃ = f·v, in scratch:
// for MSE codes v is the centroids straight from the packed indices and f
// the stored scalars, so accumulating a code costs one unpack and one
// multiply-add per coordinate; the other methods decode.
func (c *part) rotatedTerms(code []byte, s *scratch) ([]float32, float32) {
	if c.method != MSE {
		return c.decodeRotated(code, s), 1
	}
	v := s.v[:c.dim]
	c.indexValues(v, code, s)
	return v, c.scalarFactor(code)
}

// indexValues writes the scalar stage's centroids (or zeros) into v.
func (c *part) indexValues(v []float32, code []byte, s *scratch) {
	if c.bits == 0 {
		clear(v)
		return
	}
	gatherCentroids(v[:c.head], code[c.offIdx:c.offIdx+bitpack.Bytes(c.head, c.bits)], c.bits, c.cb.Centroids32, s.idx)
	if t := c.tail; t != nil {
		gatherCentroids(v[c.head:], code[t.offIdx:t.offIdx+bitpack.Bytes(t.n, t.bits)], t.bits, t.cb.Centroids32, s.idx)
	}
}

// gatherCentroids sets v[j] = cent[index j] for the packed indices, fused
// for the common widths so the indices never round-trip through memory.
// idx is scratch for the other widths.
func gatherCentroids(v []float32, packed []byte, bits int, cent []float32, idx []uint8) {
	n := len(v)
	switch bits {
	case 4:
		c := cent[:16:16]
		for i, b := range packed[:n/2] {
			v[2*i], v[2*i+1] = c[b&15], c[b>>4]
		}
		if n%2 == 1 {
			v[n-1] = c[packed[n/2]&15]
		}
		return
	case 3:
		c := cent[:8:8]
		g := n / 8
		for i := range g {
			b := packed[3*i : 3*i+3 : 3*i+3]
			w := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
			o := v[8*i : 8*i+8 : 8*i+8]
			o[0], o[1], o[2], o[3] = c[w&7], c[w>>3&7], c[w>>6&7], c[w>>9&7]
			o[4], o[5], o[6], o[7] = c[w>>12&7], c[w>>15&7], c[w>>18&7], c[w>>21&7]
		}
		for j := 8 * g; j < n; j++ {
			v[j] = c[bitpack.Get(packed, j, 3)]
		}
		return
	case 2:
		c := cent[:4:4]
		g := n / 4
		for i, b := range packed[:g] {
			o := v[4*i : 4*i+4 : 4*i+4]
			o[0], o[1], o[2], o[3] = c[b&3], c[b>>2&3], c[b>>4&3], c[b>>6]
		}
		for j := 4 * g; j < n; j++ {
			v[j] = c[bitpack.Get(packed, j, 2)]
		}
		return
	}
	idx = idx[:n]
	bitpack.Unpack(idx, packed, bits)
	for i, k := range idx {
		v[i] = cent[k]
	}
}

// norm returns the stored norm of the vector (for Polar, the norm of the
// decoded radii).
func (c *part) norm(code []byte) float32 {
	if c.method == Polar {
		return c.polar.Norm(code[c.offIdx:c.size])
	}
	return getScalar(code[c.offNorm:], c.prec)
}

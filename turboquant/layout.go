package turboquant

import (
	"github.com/turboquant-go/tq/hadamard"
	"github.com/turboquant-go/tq/qjl"
)

// Part is the layout of one part of a Quantizer's codes: the whole vector,
// or, with outlier channels, the regular channels then the outlier channels.
// It is what code that scores codes with its own kernels needs (the kvcache
// row path, the ann scan, the cuda backend), and the one place outside
// this package where the layout is described; part's comment documents it.
//
// Offsets are bytes from the start of the part, which starts Offset bytes
// into the code. Parts occupy consecutive ranges of the rotated domain that
// AccumulateRotated and FinishRotated use, in order.
//
// A Config.Split code is one rotation and one norm with two index runs; it
// is described as two Parts, the second with SharesRotation set: its
// coordinates continue the first's rotated vector (Rotation is the same,
// of the whole Dim, so a kernel that rotates per part must refuse it), and
// its Offset and NormOffset are the first's, so that code+Offset+NormOffset
// is the one norm. Its Size is its index bytes; the Sizes still add up to
// the code size.
type Part struct {
	Method         Method
	Dim            int  // coordinates in the part
	SharesRotation bool // the tail of a split: see above
	Bits           int  // index bits of the scalar stage (Prod: Config.Bits−1, possibly 0; Polar: 0)
	Norm           Precision
	Correction     Correction
	Offset         int // the part's first byte within the code
	Size           int // the part's bytes

	NormOffset       int // the stored norm (not for Polar)
	CorrectionOffset int // valid when Correction != NoCorrection
	IndexOffset      int // the packed indices (Polar: the PolarQuant code)
	IndexBytes       int // Bits·Dim bits, byte-padded (Polar: the PolarQuant code's size)
	SignsOffset      int // Prod only: the QJL signs, SketchRows bits
	GammaOffset      int // Prod only: the residual norm

	SketchRows int      // Prod only
	QJLScale   float32  // Prod only: √(π/2)/SketchRows
	SketchKind qjl.Kind // Prod only

	// Centroids and Boundaries are the scalar codebook in float32 (copies,
	// ascending; nil when Bits is 0 or for Polar). A coordinate of the
	// rotated unit vector decodes to Centroids[index].
	Centroids, Boundaries []float32
	// Channels are the input channels of the part (nil: all, in order).
	Channels []int
	// Rotation is the part's rotation Π (shared, immutable).
	Rotation *hadamard.Rotation
}

// Parts describes the code layout of q, part by part. The slices are
// copies; it allocates, so callers keep the result.
func (q *Quantizer) Parts() []Part {
	parts := make([]Part, 0, len(q.parts)+1)
	off := 0
	for i, c := range q.parts {
		p := Part{
			Method: c.method, Dim: c.dim, Bits: c.bits, Norm: c.prec, Correction: c.corr,
			Offset: off, Size: c.size, NormOffset: c.offNorm, CorrectionOffset: c.offCorr,
			IndexOffset: c.offIdx, SignsOffset: c.offSigns, GammaOffset: c.offGamma, Rotation: c.rot,
		}
		switch {
		case c.polar != nil:
			p.IndexBytes = c.size - c.offIdx
		case c.method == Prod:
			p.IndexBytes = c.offSigns - c.offIdx
		default:
			p.IndexBytes = c.size - c.offIdx
		}
		if c.cb != nil {
			p.Centroids = append([]float32(nil), c.cb.Centroids32...)
			p.Boundaries = append([]float32(nil), c.cb.Boundaries32...)
		}
		if c.sketch != nil {
			p.SketchRows = c.sketch.Rows()
			p.QJLScale = qjl.Scale(c.sketch.Rows())
			p.SketchKind = c.sketch.Kind()
		}
		if q.channels != nil {
			p.Channels = append([]int(nil), q.channels[i]...)
		}
		if t := c.tail; t != nil {
			p.Dim, p.IndexBytes, p.Size = c.head, t.offIdx-c.offIdx, t.offIdx
			tp := p
			tp.SharesRotation, tp.Dim, tp.Bits = true, t.n, t.bits
			tp.IndexOffset, tp.IndexBytes, tp.Size = t.offIdx, c.size-t.offIdx, c.size-t.offIdx
			tp.Centroids = append([]float32(nil), t.cb.Centroids32...)
			tp.Boundaries = append([]float32(nil), t.cb.Boundaries32...)
			parts = append(parts, p, tp)
		} else {
			parts = append(parts, p)
		}
		off += c.size
	}
	return parts
}

// CodeSize is the exact number of bytes of one code of a Quantizer built
// from c, computed from the configuration alone: nothing is built and no
// codebook is solved. It fails with ErrConfig for a configuration New
// rejects as invalid.
func (c Config) CodeSize() (int, error) {
	c = c.WithDefaults()
	if err := c.validate(); err != nil {
		return 0, err
	}
	if o := c.Outliers; o != nil {
		return partOffsets(c.Dim-len(o.Channels), c.Bits, c).size + partOffsets(len(o.Channels), o.Bits, c).size, nil
	}
	return partOffsets(c.Dim, c.Bits, c).size, nil
}

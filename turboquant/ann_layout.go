package turboquant

import "fmt"

// This file exports what nearest-neighbour scan kernels outside the package
// (package ann) need to score MSE codes without going through Query: where
// the fields of a code sit, the codebook, and the rotation of a query. The
// code layout itself is documented on codec.

// CodeLayout describes a single-part MSE code (no outlier channels): the
// stored norm at NormOffset, the optional correction scalar at
// CorrectionOffset, then IndexBytes bytes of Bits-bit Lloyd–Max indices of
// the rotated unit vector in internal/bitpack's LSB-first order. The decoded
// vector in the rotated domain is norm·correction·Centroids[index j].
type CodeLayout struct {
	Dim              int
	Bits             int
	Norm             Precision // storage of the norm and the correction
	NormOffset       int
	CorrectionOffset int // -1 without a correction scalar
	Correction       Correction
	IndexOffset      int
	IndexBytes       int
	Centroids        []float32 // a copy of the codebook, 2^Bits entries, ascending
}

// MSELayout returns the layout of the quantizer's codes, and false for Prod,
// Polar and outlier-channel quantizers, whose codes do not have this form.
func (q *Quantizer) MSELayout() (CodeLayout, bool) {
	if len(q.parts) != 1 || q.parts[0].method != MSE || q.parts[0].cb == nil {
		return CodeLayout{}, false
	}
	c := q.parts[0]
	l := CodeLayout{
		Dim: c.dim, Bits: c.bits, Norm: c.prec, NormOffset: c.offNorm, CorrectionOffset: -1,
		Correction: c.corr, IndexOffset: c.offIdx, IndexBytes: c.size - c.offIdx,
		Centroids: append([]float32(nil), c.cb.Centroids32...),
	}
	if c.corr != NoCorrection {
		l.CorrectionOffset = c.offCorr
	}
	return l, true
}

// RotateQuery writes Π·y, the query in the rotated domain the codes of a
// single-part quantizer live in, to dst (both len Dim). With outlier
// channels it fails with ErrConfig.
func (q *Quantizer) RotateQuery(dst, y []float32) error {
	if len(q.parts) != 1 {
		return fmt.Errorf("%w: RotateQuery needs a quantizer without outlier channels", ErrConfig)
	}
	if len(dst) != q.cfg.Dim {
		return fmt.Errorf("%w: output has %d components, quantizer dim is %d", ErrLength, len(dst), q.cfg.Dim)
	}
	if err := q.checkVector(y, "query"); err != nil {
		return err
	}
	q.parts[0].rot.Forward(dst, y)
	return nil
}

// CodeInnerProduct returns ⟨Decode(a), Decode(b)⟩ computed in the rotated
// domain (the rotation is orthogonal, so this is the same number up to
// rounding) without rotating either back: the symmetric code-to-code score
// graph indexes build with. It does not allocate.
func (q *Quantizer) CodeInnerProduct(a, b []byte) (float32, error) {
	if len(a) < q.size || len(b) < q.size {
		return 0, fmt.Errorf("%w: codes of %d and %d bytes, need %d", ErrLength, len(a), len(b), q.size)
	}
	sa, sb := q.get(), q.get()
	defer q.put(sa)
	defer q.put(sb)
	var sum float64
	off := 0
	for _, p := range q.parts {
		va, fa := p.rotatedTerms(a[off:off+p.size], sa)
		vb, fb := p.rotatedTerms(b[off:off+p.size], sb)
		var s0, s1 float32
		vb = vb[:len(va)]
		n := len(va) &^ 1
		for j := 0; j < n; j += 2 {
			s0 += va[j] * vb[j]
			s1 += va[j+1] * vb[j+1]
		}
		if n < len(va) {
			s0 += va[n] * vb[n]
		}
		sum += float64(fa) * float64(fb) * float64(s0+s1)
		off += p.size
	}
	return float32(sum), nil
}

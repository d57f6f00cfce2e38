package ann

import "github.com/turboquant-go/tq/turboquant"

// codeLayout is where the fields of a single-part MSE code sit (no outlier
// channels): the stored norm at NormOffset, the optional correction scalar
// at CorrectionOffset, then IndexBytes bytes of Bits-bit Lloyd–Max indices
// of the rotated unit vector in internal/bitpack's LSB-first order. The
// decoded vector in the rotated domain is norm·correction·Centroids[index j].
// The scan kernels read codes through it instead of through a Query.
type codeLayout struct {
	Dim              int
	Bits             int
	Norm             turboquant.Precision // storage of the norm and the correction
	NormOffset       int
	CorrectionOffset int // -1 without a correction scalar
	Correction       turboquant.Correction
	IndexOffset      int
	IndexBytes       int
	Centroids        []float32 // 2^Bits entries, ascending
}

// mseLayout returns the layout of q's codes, and false for Prod, Polar and
// outlier-channel quantizers, whose codes do not have this form.
func mseLayout(q *turboquant.Quantizer) (codeLayout, bool) {
	parts := q.Parts()
	if len(parts) != 1 || parts[0].Method != turboquant.MSE || parts[0].Bits == 0 {
		return codeLayout{}, false
	}
	p := parts[0]
	l := codeLayout{
		Dim: p.Dim, Bits: p.Bits, Norm: p.Norm, NormOffset: p.NormOffset, CorrectionOffset: -1,
		Correction: p.Correction, IndexOffset: p.IndexOffset, IndexBytes: p.IndexBytes, Centroids: p.Centroids,
	}
	if p.Correction != turboquant.NoCorrection {
		l.CorrectionOffset = p.CorrectionOffset
	}
	return l, true
}

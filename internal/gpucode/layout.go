package gpucode

import (
	"fmt"
	"math"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
)

// Code layout arrays (cuda/kernels/codes.cuh, metal/kernels/common.metal): [0] parts, [1] code bytes, then
// LayoutPart int32s per part.
const (
	KindMSE  = 0
	KindProd = 1
	KindF16  = 2
	KindF32  = 3

	LayoutPart = 16
	MaxParts   = 2
	LayoutInts = 2 + MaxParts*LayoutPart

	PKind, PDim, PBits, PPrec, PCorr, POffCode, POffNorm, POffCorr = 0, 1, 2, 3, 4, 5, 6, 7
	POffIdx, POffSigns, POffGamma, PRows, PCent, PRot, PProj       = 8, 9, 10, 11, 12, 13, 14
	PQJLScale                                                      = 15
)

// Layout builds the layout array of a codec (q is one head's
// quantizer, nil for passthrough codecs), appending its centroids to cent.
// values refuses what the value path cannot accumulate (Prod's QJL
// residual). It returns the layout and the sketch rows of its Prod parts.
func Layout(cd kvcache.Storage, q *turboquant.Quantizer, dim int, values bool, cent *[]float32) ([]int32, int, error) {
	lay := make([]int32, LayoutInts)
	switch cd.Kind {
	case kvcache.Float16, kvcache.Float32:
		lay[0], lay[1] = 1, int32(2*dim)
		p := lay[2:]
		p[PKind], p[PDim] = KindF16, int32(dim)
		if cd.Kind == kvcache.Float32 {
			lay[1], p[PKind] = int32(4*dim), KindF32
		}
		return lay, 0, nil
	}
	if q == nil {
		return nil, 0, fmt.Errorf("%w: quantized codec without a quantizer", ErrUnsupported)
	}
	parts := q.Parts()
	if len(parts) > MaxParts {
		return nil, 0, fmt.Errorf("%w: %d code parts", ErrUnsupported, len(parts))
	}
	lay[0] = int32(len(parts))
	rot, rows := 0, 0
	for i, kp := range parts {
		p := lay[2+i*LayoutPart:]
		switch kp.Method {
		case turboquant.MSE:
			p[PKind] = KindMSE
		case turboquant.Prod:
			if values {
				return nil, 0, fmt.Errorf("%w: prod-quantized values (QJL residuals are not accumulated on the device)", ErrUnsupported)
			}
			p[PKind] = KindProd
		default:
			return nil, 0, fmt.Errorf("%w: %v codes", ErrUnsupported, kp.Method)
		}
		p[PDim], p[PBits], p[PPrec], p[PCorr] = int32(kp.Dim), int32(kp.Bits), int32(kp.Norm), int32(kp.Correction)
		p[POffCode], p[POffNorm], p[POffCorr], p[POffIdx] = int32(kp.Offset), int32(kp.NormOffset), int32(kp.CorrectionOffset), int32(kp.IndexOffset)
		p[POffSigns], p[POffGamma], p[PRows] = int32(kp.SignsOffset), int32(kp.GammaOffset), int32(kp.SketchRows)
		p[PCent], p[PRot], p[PProj] = int32(len(*cent)), int32(rot), int32(rows)
		p[PQJLScale] = int32(math.Float32bits(kp.QJLScale))
		*cent = append(*cent, kp.Centroids...)
		rot += kp.Dim
		rows += kp.SketchRows
		lay[1] += int32(kp.Size)
	}
	return lay, rows, nil
}

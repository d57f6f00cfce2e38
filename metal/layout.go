package metal

import (
	"fmt"
	"math"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
)

// Code layout arrays (kernels/common.metal; the same arrays as cuda/kernels/codes.cuh): [0] parts, [1] code bytes, then
// layoutPart int32s per part.
const (
	kindMSE  = 0
	kindProd = 1
	kindF16  = 2
	kindF32  = 3

	layoutPart = 16
	maxParts   = 2
	layoutInts = 2 + maxParts*layoutPart

	pKind, pDim, pBits, pPrec, pCorr, pOffCode, pOffNorm, pOffCorr = 0, 1, 2, 3, 4, 5, 6, 7
	pOffIdx, pOffSigns, pOffGamma, pRows, pCent, pRot, pProj       = 8, 9, 10, 11, 12, 13, 14
	pQJLScale                                                      = 15
)

// codecLayout builds the layout array of a codec (q is one head's
// quantizer, nil for passthrough codecs), appending its centroids to cent.
// values refuses what the value path cannot accumulate (Prod's QJL
// residual). It returns the layout and the sketch rows of its Prod parts.
func codecLayout(cd kvcache.Storage, q *turboquant.Quantizer, dim int, values bool, cent *[]float32) ([]int32, int, error) {
	lay := make([]int32, layoutInts)
	switch cd.Kind {
	case kvcache.Float16, kvcache.Float32:
		lay[0], lay[1] = 1, int32(2*dim)
		p := lay[2:]
		p[pKind], p[pDim] = kindF16, int32(dim)
		if cd.Kind == kvcache.Float32 {
			lay[1], p[pKind] = int32(4*dim), kindF32
		}
		return lay, 0, nil
	}
	if q == nil {
		return nil, 0, fmt.Errorf("%w: quantized codec without a quantizer", ErrUnsupported)
	}
	parts := q.Parts()
	if len(parts) > maxParts {
		return nil, 0, fmt.Errorf("%w: %d code parts", ErrUnsupported, len(parts))
	}
	lay[0] = int32(len(parts))
	rot, rows := 0, 0
	for i, kp := range parts {
		p := lay[2+i*layoutPart:]
		switch kp.Method {
		case turboquant.MSE:
			p[pKind] = kindMSE
		case turboquant.Prod:
			if values {
				return nil, 0, fmt.Errorf("%w: prod-quantized values (QJL residuals are not accumulated on the device)", ErrUnsupported)
			}
			p[pKind] = kindProd
		default:
			return nil, 0, fmt.Errorf("%w: %v codes", ErrUnsupported, kp.Method)
		}
		p[pDim], p[pBits], p[pPrec], p[pCorr] = int32(kp.Dim), int32(kp.Bits), int32(kp.Norm), int32(kp.Correction)
		p[pOffCode], p[pOffNorm], p[pOffCorr], p[pOffIdx] = int32(kp.Offset), int32(kp.NormOffset), int32(kp.CorrectionOffset), int32(kp.IndexOffset)
		p[pOffSigns], p[pOffGamma], p[pRows] = int32(kp.SignsOffset), int32(kp.GammaOffset), int32(kp.SketchRows)
		p[pCent], p[pRot], p[pProj] = int32(len(*cent)), int32(rot), int32(rows)
		p[pQJLScale] = int32(math.Float32bits(kp.QJLScale))
		*cent = append(*cent, kp.Centroids...)
		rot += kp.Dim
		rows += kp.SketchRows
		lay[1] += int32(kp.Size)
	}
	return lay, rows, nil
}

package cuda

import (
	"fmt"
	"github.com/turboquant-go/tq/internal/gpucode"
	"math"

	"github.com/turboquant-go/tq/kvcache"
)

// layerCodecs is what the attention kernels need to know about a layer's
// codecs: the layout arrays, the centroid table, the sketch rows of the
// key codec, and the sizes of a block's key and value drift codes per head
// (BlockCenter; 0: none).
type layerCodecs struct {
	klay, vlay []int32
	cent       []float32
	P          int
	ksd, vsd   int
}

// buildLayerCodecs derives a layer's kernel layouts from its first head's
// quantizers; every head of a layer has the same layout and codebooks
// (outlier channels and seeds differ, and only the host-side query
// preparation and final rotation see those).
func buildLayerCodecs(v kvcache.LayerView, cfg kvcache.Config) (*layerCodecs, error) {
	d := cfg.HeadDim
	lc := &layerCodecs{}
	if cfg.BlockCenter && v.KeyStorage.Kind == kvcache.Quantized {
		lc.ksd = v.KeyCodeSize
	}
	if cfg.BlockCenter && v.ValueStorage.Kind == kvcache.Quantized {
		lc.vsd = v.ValueCodeSize
	}
	var err error
	if lc.klay, lc.P, err = gpucode.Layout(v.KeyStorage, v.Keys[0], d, false, &lc.cent); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	if lc.vlay, _, err = gpucode.Layout(v.ValueStorage, v.Values[0], d, true, &lc.cent); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	if int(lc.klay[1]) != v.KeyCodeSize || int(lc.vlay[1]) != v.ValueCodeSize {
		return nil, fmt.Errorf("%w: layout sizes %d/%d, codes %d/%d", ErrUnsupported, lc.klay[1], lc.vlay[1], v.KeyCodeSize, v.ValueCodeSize)
	}
	return lc, nil
}

// checkLayout verifies that block i of a view has the one layout the
// kernel computes (attend.cu's locate and drift_codes): no upgraded heads,
// codes [head][token] keys then values, then the drift codes. The kernel
// trusts it.
func (lc *layerCodecs) checkLayout(v kvcache.LayerView, i, B int) error {
	lay := v.Layouts[i]
	H := len(lay.KeyOffsets)
	codes := H * B * (v.KeyCodeSize + v.ValueCodeSize)
	ok := lay.Upgraded == nil && len(v.Blocks[i]) == codes+H*(lc.ksd+lc.vsd) &&
		(lay.KeyDrift != nil) == (lc.ksd > 0) && (lay.ValueDrift != nil) == (lc.vsd > 0)
	for h := 0; ok && h < H; h++ {
		ok = lay.KeyOffsets[h] == h*B*v.KeyCodeSize && lay.ValueOffsets[h] == H*B*v.KeyCodeSize+h*B*v.ValueCodeSize &&
			(lay.KeyDrift == nil || lay.KeyDrift[h] == codes+h*lc.ksd) &&
			(lay.ValueDrift == nil || lay.ValueDrift[h] == codes+H*lc.ksd+h*lc.vsd)
	}
	if !ok {
		return fmt.Errorf("%w: block %d's code layout is not the one the kernels read", ErrUnsupported, i)
	}
	return nil
}

// driftFloats is the shared memory, in floats, of a split's key drift
// scores: one per query head for every block its chunk of tokens touches
// (0 without drift codes).
func driftFloats(drift bool, g, chunk, B int) int {
	if !drift {
		return 0
	}
	return g * (chunk/B + 2)
}

// chunkFor picks the tokens per split: enough splits to fill the device
// (about two blocks per multiprocessor), at least 32 tokens per split, and
// no more than the shared memory the logits may take.
func chunkFor(n, H, T, g, sms, fixed int) int {
	if sms < 1 {
		sms = 1
	}
	want := max(1, 2*sms/max(1, H*T))
	c := (n + want - 1) / want
	c = (c + 31) &^ 31
	maxC := (maxSharedBytes/4 - fixed) / g &^ 31
	return max(32, min(c, maxC))
}

// maxSharedBytes is the dynamic shared memory a launch may use without
// opting in to more (48 KiB on every CUDA device).
const maxSharedBytes = 48 << 10

// sharedFloats is the partial kernel's dynamic shared memory, in floats,
// without the logits.
func sharedFloats(g, d, P, ncent int) int { return 2*g*d + g*P + ncent + threadsPerBlock }

// prepareQueries rotates and projects each query head's query with its KV
// head's key quantizer (or copies it for passthrough keys), and computes
// q·μ_k when keys are centred.
func prepareQueries(v kvcache.LayerView, lc *layerCodecs, queries []float32, T, QH, d int) (*queryBatch, error) {
	H := len(v.Keys)
	g := QH / H
	qb := &queryBatch{T: T, g: g, d: d, P: lc.P,
		qrot: make([]float32, T*QH*d), qproj: make([]float32, T*QH*lc.P),
		qraw: append([]float32(nil), queries...), qmu: make([]float32, T*QH)}
	for t := range T {
		for qh := range QH {
			h := qh / g
			r := t*QH + qh
			y := queries[r*d : (r+1)*d]
			if kq := v.Keys[h]; kq != nil {
				if err := kq.PrepareKernelQuery(qb.qrot[r*d:(r+1)*d], qb.qproj[r*lc.P:(r+1)*lc.P], y); err != nil {
					return nil, err
				}
			} else {
				copy(qb.qrot[r*d:], y)
			}
			if mu := v.KeyMeans[h]; mu != nil {
				var s float64
				for j, m := range mu {
					s += float64(y[j]) * float64(m)
				}
				qb.qmu[r] = float32(s)
			}
		}
	}
	return qb, nil
}

// finishOutputs turns the reduced rows ([T·QH][4+2d]) into outputs: the
// compressed-token sum rotated back by the KV head's value quantizer, plus
// the value mean times the compressed weight when centred, plus the fp16
// sum, over the softmax denominator — as the CPU path does.
func finishOutputs(v kvcache.LayerView, reduced []float32, out []float32, T, QH, d int) error {
	g := QH / len(v.Values)
	stride := 4 + 2*d
	tmp := make([]float32, d)
	acc := make([]float32, d)
	for r := range T * QH {
		h := r % QH / g
		o := reduced[r*stride : (r+1)*stride]
		copy(acc, o[4:4+d])
		if vq := v.Values[h]; vq != nil {
			if err := vq.FinishRotated(tmp, acc); err != nil {
				return err
			}
		} else {
			copy(tmp, acc)
		}
		if mu := v.ValueMeans[h]; mu != nil {
			for j, m := range mu {
				tmp[j] += o[1] * m
			}
		}
		inv := float32(1 / float64(o[0]))
		dst := out[r*d : (r+1)*d]
		for j := range dst {
			dst[j] = (tmp[j] + o[4+d+j]) * inv
		}
		if math.IsNaN(float64(inv)) {
			return fmt.Errorf("%w: softmax denominator %v", ErrCUDA, o[0])
		}
	}
	return nil
}

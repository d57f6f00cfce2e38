package metal

import (
	"fmt"
	"math"

	"github.com/turboquant-go/tq/internal/gpucode"
	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
)

// layerCodecs is what the attention kernels need to know about a layer's
// codecs: the layout arrays (the base codec's, then with the guard the
// upgraded codec's), the centroid table, the sketch rows of the key codec,
// how many value sums a partial row has and whether blocks carry key drift
// codes.
type layerCodecs struct {
	klay, vlay []int32
	cent       []float32
	P          int
	nacc       int
	drift      bool
}

// codecSide is one codec of a layer whose layout array is appended to lay.
type codecSide struct {
	lay    *[]int32
	cd     kvcache.Storage
	q      []*turboquant.Quantizer
	size   int
	values bool
}

// buildLayerCodecs derives a layer's kernel layouts from its first head's
// quantizers; every head of a layer has the same layout and codebooks
// (outlier channels and seeds differ, and only the host-side query
// preparation and final rotation see those).
func buildLayerCodecs(v kvcache.LayerView, cfg kvcache.Config) (*layerCodecs, error) {
	d := cfg.HeadDim
	lc := &layerCodecs{nacc: 2, drift: cfg.BlockCenter && v.KeyStorage.Kind == kvcache.Quantized}
	sides := []codecSide{{&lc.klay, v.KeyStorage, v.Keys, v.KeyCodeSize, false},
		{&lc.vlay, v.ValueStorage, v.Values, v.ValueCodeSize, true}}
	if cfg.Guard.Budget > 0 {
		lc.nacc = 3
		sides = append(sides, codecSide{&lc.klay, v.UpKeyStorage, v.UpKeys, v.UpKeyCodeSize, false},
			codecSide{&lc.vlay, v.UpValueStorage, v.UpValues, v.UpValueCodeSize, true})
	}
	for i, sd := range sides {
		if len(sd.q) == 0 {
			return nil, fmt.Errorf("%w: a layer view without quantizers", ErrUnsupported)
		}
		lay, P, err := gpucode.Layout(sd.cd, sd.q[0], d, sd.values, &lc.cent)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		if int(lay[1]) != sd.size {
			return nil, fmt.Errorf("%w: layout of %d bytes for codes of %d", ErrUnsupported, lay[1], sd.size)
		}
		switch {
		case i == 0:
			lc.P = P
		case P > 0:
			return nil, fmt.Errorf("%w: the guard's keys with QJL sketches", ErrUnsupported)
		}
		*sd.lay = append(*sd.lay, lay...)
	}
	return lc, nil
}

// prepareQueries rotates and projects each query head's query with its KV
// head's key quantizer (or copies it for passthrough keys), the same with
// the guard's upgraded key quantizer, and computes q·μ_k when keys are
// centred.
func prepareQueries(v kvcache.LayerView, lc *layerCodecs, queries []float32, T, QH, d int) (*queryBatch, error) {
	H := len(v.Keys)
	g := QH / H
	qb := &queryBatch{T: T, g: g, d: d, P: lc.P,
		qrot: make([]float32, T*QH*d), qproj: make([]float32, T*QH*lc.P),
		qraw: append([]float32(nil), queries...), qmu: make([]float32, T*QH)}
	if lc.nacc == 3 {
		qb.qup = make([]float32, T*QH*d)
	}
	for t := range T {
		for qh := range QH {
			h := qh / g
			r := t*QH + qh
			y := queries[r*d : (r+1)*d]
			if err := prepareQuery(v.Keys[h], qb.qrot[r*d:(r+1)*d], qb.qproj[r*lc.P:(r+1)*lc.P], y); err != nil {
				return nil, err
			}
			if qb.qup != nil {
				if err := prepareQuery(v.UpKeys[h], qb.qup[r*d:(r+1)*d], nil, y); err != nil {
					return nil, err
				}
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

// prepareQuery is kq.PrepareKernelQuery, or a copy of y for passthrough
// keys (kq nil).
func prepareQuery(kq *turboquant.Quantizer, rot, proj, y []float32) error {
	if kq == nil {
		copy(rot, y)
		return nil
	}
	return kq.PrepareKernelQuery(rot, proj, y)
}

// finishOutputs turns the reduced rows ([T·QH][4+nacc·d]) into outputs:
// the compressed-token sum rotated back by the KV head's value quantizer
// (and the upgraded codes' sum by the guard's), plus the value mean times
// the compressed weight when centred, plus the fp16 sum, over the softmax
// denominator — as the CPU path does.
func finishOutputs(v kvcache.LayerView, reduced []float32, out []float32, T, QH, d, nacc int) error {
	g := QH / len(v.Values)
	stride := 4 + nacc*d
	tmp, up, acc := make([]float32, d), make([]float32, d), make([]float32, d)
	for r := range T * QH {
		h := r % QH / g
		o := reduced[r*stride : (r+1)*stride]
		if err := finishRotated(v.Values[h], tmp, o[4:4+d], acc); err != nil {
			return err
		}
		if nacc == 3 {
			if err := finishRotated(v.UpValues[h], up, o[4+2*d:4+3*d], acc); err != nil {
				return err
			}
			for j, x := range up {
				tmp[j] += x
			}
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
			return fmt.Errorf("%w: softmax denominator %v", ErrMetal, o[0])
		}
	}
	return nil
}

// finishRotated maps src, a sum of decoded codes in vq's rotated domain,
// back into dst (a copy for passthrough values, vq nil), through scratch
// (len d): src is not changed.
func finishRotated(vq *turboquant.Quantizer, dst, src, scratch []float32) error {
	if vq == nil {
		copy(dst, src)
		return nil
	}
	copy(scratch, src)
	return vq.FinishRotated(dst, scratch)
}

// queryBatch is the per-call input of the attention kernels.
type queryBatch struct {
	T, g, d, P    int
	qrot, qproj   []float32 // [T][QH][d], [T][QH][P]
	qraw, qmu     []float32 // [T][QH][d], [T][QH]
	qup           []float32 // [T][QH][d] for the guard's key codec; nil without a guard
	scale         float32
	chunk, nsplit int
}

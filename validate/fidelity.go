package validate

import (
	"fmt"
	"math"

	"github.com/turboquant-go/tq/turboquant"
)

// Fidelity compares a cache configuration's attention with exact float64
// attention on the real K/V of one encoder layer. Each captured chunk is one
// sequence (its keys and values appended in one prefill); every query of the
// chunk is scored against every key of it, as the bidirectional encoder
// does.
type Fidelity struct {
	Preset string `json:"preset"`
	Layer  int    `json:"layer"`
	Center bool   `json:"center"`
	Tokens int    `json:"tokens"`
	// BytesPerTokenHead is the stored bytes of one token's key and value
	// for one KV head (fp16: 4·HeadDim), RatioFP16 the fp16 size over it.
	BytesPerTokenHead float64 `json:"bytes_per_token_head"`
	RatioFP16         float64 `json:"ratio_fp16"`
	// CosMean and CosWorst are the mean and smallest cosine between the
	// attention-probability rows and the exact ones; KLD is the mean
	// KL(exact ‖ cache) of those rows.
	CosMean  float64 `json:"cos_mean"`
	CosWorst float64 `json:"cos_worst"`
	KLD      float64 `json:"kld"`
	// Top1 and Top5 are the fractions of rows whose exact top-1 key is the
	// cache's top-1, and whose exact top-5 keys are the cache's top-5 (as
	// sets).
	Top1 float64 `json:"top1"`
	Top5 float64 `json:"top5"`
	// OutErr is the mean relative error of the attention output of each
	// chunk's last query (which sees every key under the causal mask).
	OutErr float64 `json:"out_err"`
}

// MeasureRealKV runs a preset, built for the layer's shape (one layer, as
// many query heads as KV heads) and then adjusted by adjust if it is not
// nil, on the real K/V of one layer.
func MeasureRealKV(kv *RealKV, layer int, preset string, adjust func(*turboquant.CacheConfig)) (Fidelity, error) {
	f := Fidelity{Preset: preset, Layer: layer}
	var rows int
	f.CosWorst = 1
	for ci := range kv.Chunks {
		l := kv.Chunks[ci].layerAt(layer)
		if l == nil {
			return f, fmt.Errorf("%w: chunk %d has no layer %d", ErrRealKV, ci, layer)
		}
		H, T, d := l.Heads, l.Tokens, l.HeadDim
		cfg, err := turboquant.Preset(preset, 1, H, H, d)
		if err != nil {
			return f, err
		}
		if adjust != nil {
			adjust(&cfg)
		}
		f.Center = cfg.Center
		pool, err := turboquant.NewPool(cfg, 0)
		if err != nil {
			return f, err
		}
		seq := pool.NewSequence()
		keys, values := make([]float32, T*H*d), make([]float32, T*H*d)
		for h := range H {
			for t := range T {
				copy(keys[(t*H+h)*d:], l.K[h][t])
				copy(values[(t*H+h)*d:], l.V[h][t])
			}
		}
		if err := seq.Append(0, keys, values); err != nil {
			return f, err
		}
		scale := 1 / math.Sqrt(float64(d))
		logits := make([]float32, T)
		ref, got := make([]float64, T), make([]float64, T)
		for h := range H {
			for qi := range T {
				if err := seq.Logits(0, h, l.Q[h][qi], logits); err != nil {
					return f, err
				}
				for k := range T {
					ref[k] = Dot(l.Q[h][qi], l.K[h][k]) * scale
					got[k] = float64(logits[k])
				}
				pr, pg := Softmax(ref), Softmax(got)
				c := Cosine(pr, pg)
				f.CosMean += c
				f.CosWorst = min(f.CosWorst, c)
				f.KLD += KL(pr, pg)
				if topK(pr, 1)[0] == topK(pg, 1)[0] {
					f.Top1++
				}
				if sameSet(topK(pr, 5), topK(pg, 5)) {
					f.Top5++
				}
				rows++
			}
		}
		q := make([]float32, H*d)
		for h := range H {
			copy(q[h*d:], l.Q[h][T-1])
		}
		out := make([]float32, H*d)
		if err := seq.Attend(0, q, out); err != nil {
			return f, err
		}
		f.OutErr += relativeError(out, exactAttention(l, scale))
		st := seq.Stats()
		f.BytesPerTokenHead += float64(st.LiveBytes) / float64(T*H)
		f.Tokens += T
		if err := seq.Close(); err != nil {
			return f, err
		}
	}
	n := float64(len(kv.Chunks))
	f.BytesPerTokenHead /= n
	f.RatioFP16 = float64(4*kv.Chunks[0].layerAt(layer).HeadDim) / f.BytesPerTokenHead
	f.OutErr /= n
	f.CosMean /= float64(rows)
	f.KLD /= float64(rows)
	f.Top1 /= float64(rows)
	f.Top5 /= float64(rows)
	return f, nil
}

// exactAttention is the float64 attention output of each head's last query
// over all of the chunk's keys, [H][d] flattened.
func exactAttention(l *RealKVLayer, scale float64) []float32 {
	H, T, d := l.Heads, l.Tokens, l.HeadDim
	out := make([]float32, H*d)
	logits := make([]float64, T)
	for h := range H {
		for t := range T {
			logits[t] = Dot(l.Q[h][T-1], l.K[h][t]) * scale
		}
		p := Softmax(logits)
		for j := range d {
			var s float64
			for t := range T {
				s += p[t] * float64(l.V[h][t][j])
			}
			out[h*d+j] = float32(s)
		}
	}
	return out
}

// Softmax returns exp(x − max x), normalized to sum 1.
func Softmax(x []float64) []float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, v)
	}
	out := make([]float64, len(x))
	var s float64
	for i, v := range x {
		out[i] = math.Exp(v - m)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

// Cosine is ⟨a, b⟩ / (‖a‖·‖b‖).
func Cosine(a, b []float64) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += a[i] * b[i]
		aa += a[i] * a[i]
		bb += b[i] * b[i]
	}
	return ab / math.Sqrt(aa*bb)
}

// KL is KL(p ‖ q) in nats; q's zeros where p is positive are floored at the
// smallest float64 so that the divergence stays finite.
func KL(p, q []float64) float64 {
	var s float64
	for i, pi := range p {
		if pi > 0 {
			s += pi * math.Log(pi/max(q[i], math.SmallestNonzeroFloat64))
		}
	}
	return s
}

// topK returns the indices of the k largest values (ties: lower index).
func topK(x []float64, k int) []int {
	k = min(k, len(x))
	idx := make([]int, 0, k)
	for i := range x {
		pos := len(idx)
		for pos > 0 && x[idx[pos-1]] < x[i] {
			pos--
		}
		if pos < k {
			if len(idx) < k {
				idx = append(idx, 0)
			}
			copy(idx[pos+1:], idx[pos:len(idx)-1])
			idx[pos] = i
		}
	}
	return idx
}

func sameSet(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			if x == y {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// relativeError is ‖got − want‖ / ‖want‖.
func relativeError(got, want []float32) float64 {
	return math.Sqrt(SquaredDistance(got, want) / Dot(want, want))
}

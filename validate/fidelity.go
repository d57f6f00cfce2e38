package validate

import (
	"fmt"
	"math"

	"github.com/turboquant-go/tq/kvcache"
)

// Fidelity compares a cache configuration's attention with exact float64
// attention over the same keys, values and queries. Every measurement in
// this package (real K/V, synthetic K/V) reports one.
//
// Two cosines are reported on purpose. AttnCosine compares attention
// probability rows (after the softmax), which is what changes the model's
// output. LogitCosine compares the raw logit rows, the metric the PyTorch
// reference implementation (tonbistudio/turboquant-pytorch, validate.py)
// reports as "attention score cosine": logits share a large common offset,
// so it stays near 1 even when the probabilities move, and it is much more
// forgiving than AttnCosine.
type Fidelity struct {
	Preset string `json:"preset"`
	// Workload names the data: "real" (the embedded or a given TQKV1 file)
	// or "synthetic" (SynthKV fitted to real statistics).
	Workload string `json:"workload"`
	Layer    int    `json:"layer"`
	Center   bool   `json:"center"`
	// Tokens is the keys each query row attends over, summed over
	// sequences (real chunks) or per sequence (synthetic); Rows is the
	// number of attention rows compared.
	Tokens int `json:"tokens"`
	Rows   int `json:"rows"`
	// BitsPerValue is the mean stored bits per key and value coordinate
	// (norms included); BytesPerTokenHead the stored bytes of one token's
	// key and value for one KV head (fp16: 4·HeadDim); RatioFP16 the fp16
	// size over it.
	BitsPerValue      float64 `json:"bits_per_value"`
	BytesPerTokenHead float64 `json:"bytes_per_token_head"`
	RatioFP16         float64 `json:"ratio_vs_fp16"`
	// AttnCosine and AttnCosineMin are the mean and smallest cosine
	// between the attention-probability rows and the exact ones; KLD is the
	// mean KL(exact ‖ cache) of those rows in nats.
	AttnCosine    float64 `json:"attn_cosine"`
	AttnCosineMin float64 `json:"attn_cosine_min"`
	KLD           float64 `json:"kld"`
	// Top1 is the fraction of rows whose exact top-1 key is the cache's
	// top-1; Top5 the fraction whose exact top-1 key is among the cache's
	// top 5 (the PyTorch reference's definition); Top5Set the stricter
	// fraction whose exact top-5 keys are the cache's top 5 as sets.
	Top1    float64 `json:"top1"`
	Top5    float64 `json:"top5"`
	Top5Set float64 `json:"top5_set"`
	// OutRelErr is the mean relative error ‖o − o*‖/‖o*‖ of attention
	// outputs computed by the cache (Attend) against float64 attention.
	OutRelErr float64 `json:"out_rel_err"`
	// LogitBias and LogitStd are the mean and standard deviation of the
	// logit error (cache − exact, scaled logits, in nats) over every
	// (row, key); LogitCosine is the mean cosine of raw logit rows.
	LogitBias   float64 `json:"logit_bias"`
	LogitStd    float64 `json:"logit_std"`
	LogitCosine float64 `json:"logit_cosine"`
}

// fidelityAcc accumulates the row metrics of a Fidelity.
type fidelityAcc struct {
	rows                                      int
	cos, cosMin, kld, top1, top5, top5s, lcos float64
	lcosMin                                   float64
	logitErr                                  meanVar
	outErr                                    float64
	outs                                      int
}

func newFidelityAcc() *fidelityAcc { return &fidelityAcc{cosMin: 1, lcosMin: 1} }

// addRow compares one row of cache logits got with the exact logits ref
// (both already scaled, same length).
func (a *fidelityAcc) addRow(ref, got []float64) {
	pr, pg := Softmax(ref), Softmax(got)
	c := Cosine(pr, pg)
	a.cos += c
	a.cosMin = min(a.cosMin, c)
	a.kld += KL(pr, pg)
	exactTop := topK(pr, 5)
	cacheTop := topK(pg, 5)
	if exactTop[0] == cacheTop[0] {
		a.top1++
	}
	for _, i := range cacheTop {
		if i == exactTop[0] {
			a.top5++
			break
		}
	}
	if sameSet(exactTop, cacheTop) {
		a.top5s++
	}
	lc := Cosine(ref, got)
	a.lcos += lc
	a.lcosMin = min(a.lcosMin, lc)
	for i := range ref {
		a.logitErr.add(got[i] - ref[i])
	}
	a.rows++
}

// addOutput compares one attention output with the exact one.
func (a *fidelityAcc) addOutput(got, want []float32) {
	a.outErr += relativeError(got, want)
	a.outs++
}

// fill writes the accumulated means into f.
func (a *fidelityAcc) fill(f *Fidelity) {
	n := float64(max(a.rows, 1))
	f.Rows = a.rows
	f.AttnCosine, f.AttnCosineMin = a.cos/n, a.cosMin
	f.KLD = a.kld / n
	f.Top1, f.Top5, f.Top5Set = a.top1/n, a.top5/n, a.top5s/n
	f.LogitCosine = a.lcos / n
	f.LogitBias = a.logitErr.mean
	if a.logitErr.n > 1 {
		f.LogitStd = math.Sqrt(a.logitErr.variance())
	}
	if a.outs > 0 {
		f.OutRelErr = a.outErr / float64(a.outs)
	}
}

// presetStorage returns a configuration's bits per coordinate (keys and
// values averaged, layer 0's codecs) and stored bytes per token per KV head
// when every token is compressed.
func presetStorage(cfg kvcache.Config) (bitsPerValue, bytesPerTokenHead float64) {
	b := cfg.BitsPerValue(0)
	return b, 2 * b * float64(cfg.HeadDim) / 8
}

// MeasureRealKV runs a preset, built for the layer's shape (one layer, as
// many query heads as KV heads) and then adjusted by adjust if it is not
// nil, on the real K/V of one layer. Each captured chunk is one sequence
// (its keys and values appended in one prefill); every query of the chunk
// is scored against every key of it, as the bidirectional encoder does, and
// the output error is that of each chunk's last query.
func MeasureRealKV(kv *RealKV, layer int, preset string, adjust func(*kvcache.Config)) (Fidelity, error) {
	f := Fidelity{Preset: preset, Workload: "real", Layer: layer}
	acc := newFidelityAcc()
	var liveBytes, tokenHeads float64
	for ci := range kv.Chunks {
		l := kv.Chunks[ci].layerAt(layer)
		if l == nil {
			return f, fmt.Errorf("%w: chunk %d has no layer %d", ErrRealKV, ci, layer)
		}
		H, T, d := l.Heads, l.Tokens, l.HeadDim
		cfg, err := kvcache.Preset(preset, 1, H, H, d)
		if err != nil {
			return f, err
		}
		if adjust != nil {
			adjust(&cfg)
		}
		f.Center = cfg.Center
		f.BitsPerValue, _ = presetStorage(cfg)
		seq, err := l.prefill(cfg)
		if err != nil {
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
				acc.addRow(ref, got)
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
		acc.addOutput(out, exactAttention(l, scale))
		liveBytes += float64(seq.Stats().LiveBytes)
		tokenHeads += float64(T * H)
		f.Tokens += T
		if err := seq.Close(); err != nil {
			return f, err
		}
	}
	acc.fill(&f)
	f.BytesPerTokenHead = liveBytes / tokenHeads
	f.RatioFP16 = float64(4*kv.Chunks[0].layerAt(layer).HeadDim) / f.BytesPerTokenHead
	return f, nil
}

// exactAttention is the float64 attention output of each head's last query
// over all of the chunk's keys, [H][d] flattened.
func exactAttention(l *RealKVLayer, scale float64) []float32 {
	H, T, d := l.Heads, l.Tokens, l.HeadDim
	out := make([]float32, H*d)
	for h := range H {
		attendExact(out[h*d:(h+1)*d], l.Q[h][T-1], l.K[h], l.V[h], scale)
	}
	return out
}

// attendExact writes softmax(scale·q·Kᵀ)·V, accumulated in float64, into
// out.
func attendExact(out, q []float32, keys, values [][]float32, scale float64) {
	logits := make([]float64, len(keys))
	for t, k := range keys {
		logits[t] = Dot(q, k) * scale
	}
	p := Softmax(logits)
	acc := make([]float64, len(out))
	for t, v := range values {
		for j := range acc {
			acc[j] += p[t] * float64(v[j])
		}
	}
	for j := range out {
		out[j] = float32(acc[j])
	}
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

// LogSumExp is log Σ exp(xᵢ), computed without overflow.
func LogSumExp(x []float64) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, v)
	}
	if math.IsInf(m, 0) {
		return m
	}
	var s float64
	for _, v := range x {
		s += math.Exp(v - m)
	}
	return m + math.Log(s)
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
			s += pi * (math.Log(pi) - math.Log(max(q[i], math.SmallestNonzeroFloat64)))
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

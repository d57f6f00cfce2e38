package validate

import (
	"math"

	"github.com/turboquant-go/tq/internal/rng"
)

// SyntheticSpec describes synthetic K/V shaped like the real encoder's: keys
// and values with a large per-head mean and a few outlier channels, queries
// whose logits over a chunk's keys have a given spread.
type SyntheticSpec struct {
	Seed           uint64
	Chunks, Tokens int
	// HeadDims lists one layer per entry (layer i has head dim HeadDims[i]).
	HeadDims []int
	Heads    int
	// MeanRatio is ‖μ‖ over the root-mean-square key (and value) length:
	// the real keys measure 0.55–0.8.
	MeanRatio float64
	// Outliers channels per head have OutlierScale times the spread of the
	// others (real keys: a few channels at 3–7× the median magnitude).
	Outliers     int
	OutlierScale float64
	// LogitStd is the standard deviation of one query's scaled logits over
	// the keys of its chunk.
	LogitStd float64
}

// DefaultSynthetic mirrors the committed KJV fixture's shapes (7 chunks of
// 116 tokens, 4 heads of 64 and of 128) with the statistics the issue
// reports for real keys.
var DefaultSynthetic = SyntheticSpec{Seed: 7, Chunks: 7, Tokens: 116, HeadDims: []int{64, 128}, Heads: 4,
	MeanRatio: 0.7, Outliers: 4, OutlierScale: 5, LogitStd: 2.5}

// SyntheticKV draws K/V data (fp16-representable, like captured data) from
// spec, deterministically.
func SyntheticKV(spec SyntheticSpec) *RealKV {
	kv := &RealKV{Meta: `{"synthetic":true}`}
	type headStats struct{ muK, muV, muQ, scale []float64 }
	stats := make([][]headStats, len(spec.HeadDims))
	r := rng.New(spec.Seed)
	for li, d := range spec.HeadDims {
		for range spec.Heads {
			hs := headStats{scale: make([]float64, d)}
			var ss float64
			for c := range hs.scale {
				hs.scale[c] = 1
				if c < spec.Outliers {
					hs.scale[c] = spec.OutlierScale
				}
				ss += hs.scale[c] * hs.scale[c]
			}
			// Spread the outlier channels: swap them to random positions.
			for c := range spec.Outliers {
				j := r.Intn(d)
				hs.scale[c], hs.scale[j] = hs.scale[j], hs.scale[c]
			}
			muNorm := math.Sqrt(spec.MeanRatio * spec.MeanRatio * ss / (1 - spec.MeanRatio*spec.MeanRatio))
			hs.muK, hs.muV, hs.muQ = randomDirection(r, d, muNorm), randomDirection(r, d, muNorm), randomDirection(r, d, muNorm)
			stats[li] = append(stats[li], hs)
		}
	}
	for range spec.Chunks {
		var ch RealKVChunk
		for li, d := range spec.HeadDims {
			H, T := spec.Heads, spec.Tokens
			l := RealKVLayer{Layer: li, Tokens: T, Heads: H, HeadDim: d}
			flat := [3][]float32{make([]float32, H*T*d), make([]float32, H*T*d), make([]float32, H*T*d)}
			for h := range H {
				hs := stats[li][h]
				for t := range T {
					q := flat[0][(h*T+t)*d : (h*T+t+1)*d]
					k := flat[1][(h*T+t)*d : (h*T+t+1)*d]
					v := flat[2][(h*T+t)*d : (h*T+t+1)*d]
					var spread float64 // Σ (q_c·scale_c)²: the logit variance × d
					for c := range d {
						q[c] = float32(hs.muQ[c] + r.Norm())
						spread += float64(q[c]) * float64(q[c]) * hs.scale[c] * hs.scale[c]
						k[c] = fp16Round(float32(hs.muK[c] + hs.scale[c]*r.Norm()))
						v[c] = fp16Round(float32(hs.muV[c] + hs.scale[c]*r.Norm()))
					}
					a := spec.LogitStd * math.Sqrt(float64(d)/spread)
					for c := range q {
						q[c] = fp16Round(float32(a * float64(q[c])))
					}
				}
			}
			l.Q, l.K, l.V = realKVViews(flat[0], H, T, d), realKVViews(flat[1], H, T, d), realKVViews(flat[2], H, T, d)
			ch.Layers = append(ch.Layers, l)
		}
		kv.Chunks = append(kv.Chunks, ch)
	}
	return kv
}

func randomDirection(r *rng.Source, d int, length float64) []float64 {
	v := make([]float64, d)
	var ss float64
	for i := range v {
		v[i] = r.Norm()
		ss += v[i] * v[i]
	}
	for i := range v {
		v[i] *= length / math.Sqrt(ss)
	}
	return v
}

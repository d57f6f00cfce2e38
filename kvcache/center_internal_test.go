package kvcache

import (
	"math"
	"testing"

	"github.com/turboquant-go/tq/internal/rng"
)

// TestCenterFoldBackIsExact stores keys and values minus a mean through a
// lossless (float32) codec, so that the only difference from the plain cache
// is the centring itself: attention must add q·μ_k back to every logit and
// the softmax-weighted μ_v back to every output exactly, up to float
// rounding. (Center leaves passthrough codecs alone, so the means are set by
// hand before the first append.)
func TestCenterFoldBackIsExact(t *testing.T) {
	const H, QH, d, n = 2, 4, 64, 150
	cfg, err := Preset("fp32", 1, H, QH, d)
	if err != nil {
		t.Fatal(err)
	}
	// fp16 sinks and window beside the compressed tokens: a logit offset
	// left on the compressed ones would change the softmax.
	cfg.BlockTokens, cfg.Sinks, cfg.Window = 16, 4, 8
	pool, err := NewPool(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := rng.New(3)
	keys, values := make([]float32, n*H*d), make([]float32, n*H*d)
	for i := range keys {
		// Uncentred, as real keys are; fp16-exact, so that the fp16 sink and
		// window tokens hold them exactly.
		keys[i] = fp16Exact(r.Norm() + 3)
		values[i] = fp16Exact(r.Norm() - 2)
	}
	plain, centred := pool.NewSequence(), pool.NewSequence()
	heads := make([]headStores, H)
	for h := range heads {
		heads[h] = headStores{keys: side{store: fp32Store{d}, mu: headMean(keys, h, H, d)}, values: side{store: fp32Store{d}, mu: headMean(values, h, H, d)}}
	}
	centred.layers[0].heads = heads
	for _, s := range []*Sequence{plain, centred} {
		for _, span := range [][2]int{{0, 100}, {100, 101}, {101, n}} {
			if err := s.Append(0, keys[span[0]*H*d:span[1]*H*d], values[span[0]*H*d:span[1]*H*d]); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The centred codes really are different: stored minus the mean.
	if centred.layers[0].blocks[0].data[0] == plain.layers[0].blocks[0].data[0] &&
		centred.layers[0].blocks[0].data[3] == plain.layers[0].blocks[0].data[3] {
		t.Fatal("centred codes equal the plain ones: the means were not applied")
	}

	const T = 5
	queries := make([]float32, T*QH*d)
	for i := range queries {
		queries[i] = float32(0.3 * r.Norm())
	}
	want, got := make([]float32, len(queries)), make([]float32, len(queries))
	if err := plain.Attend(0, queries, want); err != nil {
		t.Fatal(err)
	}
	if err := centred.Attend(0, queries, got); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if e := math.Abs(float64(got[i] - want[i])); e > 1e-5*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("output %d: centred %v, plain %v", i, got[i], want[i])
		}
	}
	lw, lg := make([]float32, n), make([]float32, n)
	for qh := range QH {
		if err := plain.Logits(0, qh, queries[qh*d:(qh+1)*d], lw); err != nil {
			t.Fatal(err)
		}
		if err := centred.Logits(0, qh, queries[qh*d:(qh+1)*d], lg); err != nil {
			t.Fatal(err)
		}
		for i := range lw {
			if e := math.Abs(float64(lg[i] - lw[i])); e > 1e-5*(1+math.Abs(float64(lw[i]))) {
				t.Fatalf("head %d logit %d: centred %v, plain %v", qh, i, lg[i], lw[i])
			}
		}
	}
}

func fp16Exact(x float64) float32 { return float32(math.Round(x*256) / 256) }

package cuda

import (
	"fmt"
	"github.com/turboquant-go/tq/internal/gpucode"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/turboquant-go/tq/hadamard"
	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/qjl"
	"github.com/turboquant-go/tq/turboquant"
)

func randVecs(r *rand.Rand, n int, scale float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64()) * scale
	}
	return x
}

// modelAttend computes Attend for the layer's last T tokens the way the
// device does — kernel layouts, queries prepared on the host, the partial
// and reduce kernels (their Go models), the host finish — over the
// sequence's own stored bytes.
func modelAttend(t *testing.T, seq *kvcache.Sequence, cfg kvcache.Config, layer int, queries []float32, chunk int) []float32 {
	t.Helper()
	d := cfg.HeadDim
	T := len(queries) / (cfg.QHeads * d)
	out := make([]float32, len(queries))
	var err error
	verr := seq.ViewLayer(layer, func(v kvcache.LayerView) {
		var lc *layerCodecs
		if lc, err = buildLayerCodecs(v, cfg); err != nil {
			return
		}
		var qb *queryBatch
		if qb, err = prepareQueries(v, lc, queries, T, cfg.QHeads, d); err != nil {
			return
		}
		n := v.Sinks + v.Compressed + v.Window
		qb.scale = cfg.Scale
		if qb.scale == 0 {
			qb.scale = float32(1 / math.Sqrt(float64(d)))
		}
		qb.chunk = chunk
		qb.nsplit = (n + chunk - 1) / chunk
		B := cfg.BlockTokens
		if B == 0 {
			B = 64
		}
		red := runModel(hostMemory(v, lc, B, cfg.KVHeads), qb)
		err = finishOutputs(v, red, out, T, cfg.QHeads, d)
	})
	if verr != nil || err != nil {
		t.Fatalf("model attend: %v %v", verr, err)
	}
	return out
}

type modelCase struct {
	name string
	cfg  kvcache.Config
}

func modelCases(t *testing.T) []modelCase {
	var cases []modelCase
	// k4v3.5 and k5v4.5: rotated-domain splits, two index runs under one norm.
	for _, p := range []string{"fp32", "fp16", "k8v4", "tq4", "tq3", "tq3.5", "tq2.5", "k4v3.5", "k5v4.5"} {
		cfg, err := kvcache.Preset(p, 2, 2, 4, 128)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Window > 0 {
			cfg.Window, cfg.Sinks = 24, 3 // short enough that most tokens are compressed
		}
		cfg.BlockTokens = 16
		cases = append(cases, modelCase{p, cfg})
	}
	c, _ := kvcache.Preset("tq3", 1, 2, 8, 64)
	c.Center, c.Window, c.Sinks, c.BlockTokens = true, 8, 2, 32
	cases = append(cases, modelCase{"tq3-center-d64-g4", c})
	c, _ = kvcache.Preset("tq4", 1, 1, 3, 128)
	c.Keys = kvcache.Storage{Kind: kvcache.Quantized, Method: turboquant.Prod, Bits: 4}
	c.Window, c.Sinks = 0, 0
	cases = append(cases, modelCase{"prod-keys", c})
	c, _ = kvcache.Preset("tq3", 1, 2, 2, 128)
	c.Keys.Norm, c.Values.Norm = turboquant.FP32, turboquant.FP32
	c.Keys.Correction = turboquant.Unbiased
	c.Window, c.Sinks = 0, 0
	cases = append(cases, modelCase{"fp32-norms-corrected", c})
	_ = qjl.Gaussian
	return cases
}

// TestAttendModelMatchesCPU holds the kernels' Go models (with the host
// preparation and finish the device path uses) to the generic CPU Attend,
// for the presets, decode and causal multi-token batches, and chunk sizes
// that split the context into one, a few and many splits.
func TestAttendModelMatchesCPU(t *testing.T) {
	for _, tc := range modelCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			pool, err := kvcache.NewPool(cfg, 0)
			if err != nil {
				t.Fatal(err)
			}
			seq := pool.NewSequence()
			r := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			row := cfg.KVHeads * cfg.HeadDim
			appendTokens := func(n int) {
				for layer := range cfg.Layers {
					k := randVecs(r, n*row, 1)
					v := randVecs(r, n*row, 1)
					for i := range k { // an offset makes Center matter
						k[i] += 0.5
					}
					if err := seq.Append(layer, k, v); err != nil {
						t.Fatal(err)
					}
				}
			}
			appendTokens(150) // prefill
			for range 5 {     // decode steps slide the window
				appendTokens(1)
			}
			for _, T := range []int{1, 3} {
				if T == 3 {
					appendTokens(3)
				}
				for layer := range cfg.Layers {
					q := randVecs(r, T*cfg.QHeads*cfg.HeadDim, 2)
					want := make([]float32, len(q))
					if err := seq.Attend(layer, q, want); err != nil {
						t.Fatal(err)
					}
					for _, chunk := range []int{32, 64, 1024} {
						got := modelAttend(t, seq, cfg, layer, q, chunk)
						e := relErr(got, want, cfg.HeadDim)
						if testing.Verbose() && chunk == 32 {
							t.Logf("T=%d layer %d chunk %d: worst relative error %.3g", T, layer, chunk, e)
						}
						if e > 2e-5 {
							t.Errorf("T=%d layer %d chunk %d: worst relative error %.3g", T, layer, chunk, e)
						}
					}
				}
			}
		})
	}
}

// relErr is the largest ‖got−want‖/‖want‖ over the d-vectors.
func relErr(got, want []float32, d int) float64 {
	worst := 0.0
	for i := 0; i < len(want); i += d {
		var num, den float64
		for j := i; j < i+d; j++ {
			e := float64(got[j] - want[j])
			num += e * e
			den += float64(want[j]) * float64(want[j])
		}
		worst = math.Max(worst, math.Sqrt(num/math.Max(den, 1e-30)))
	}
	return worst
}

func TestRotationPlanMatchesHadamard(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 3))
	for _, dim := range []int{2, 8, 64, 128, 256, 1024} {
		for _, rounds := range []int{1, 2, 3, 4, 5} {
			q, err := turboquant.New(turboquant.Config{Dim: dim, Bits: 3, Method: turboquant.MSE, Seed: uint64(dim * rounds), Rounds: rounds})
			if err != nil {
				t.Fatal(err)
			}
			rot := q.Parts()[0].Rotation
			plan, err := gpucode.NewRotationPlan(rot, maxEncodeDim)
			if err != nil {
				t.Fatal(err)
			}
			for range 20 {
				x := randVecs(r, dim, 1)
				s := float32(r.Float64() + 0.1)
				want := make([]float32, dim)
				rot.ForwardScaled(want, x, s)
				u := append([]float32(nil), x...)
				for k := range plan.Rounds {
					for j := range u {
						u[j] = float32(u[j] * plan.Signs[k*dim+j])
					}
					for h := 1; h < dim; h <<= 1 {
						for j := range dim {
							if j&h == 0 {
								a, b := u[j], u[j+h]
								u[j], u[j+h] = a+b, a-b
							}
						}
					}
				}
				f := float32(plan.Final * s)
				for j := range u {
					if got := float32(u[j] * f); math.Float32bits(got) != math.Float32bits(want[j]) {
						t.Fatalf("dim %d rounds %d coord %d: plan %v, hadamard %v", dim, rounds, j, got, want[j])
					}
				}
			}
		}
	}
	if _, err := gpucode.NewRotationPlan(mustRotation(t, 96), maxEncodeDim); err == nil {
		t.Error("a non-power-of-two rotation should be refused by the encode plan")
	}
}

func mustRotation(t *testing.T, dim int) *hadamard.Rotation {
	q, err := turboquant.New(turboquant.Config{Dim: dim, Bits: 3, Method: turboquant.MSE})
	if err != nil {
		t.Fatal(err)
	}
	return q.Parts()[0].Rotation
}

// TestEncodeModelMatchesCPU holds the encode kernel's model to
// Quantizer.Encode byte for byte.
func TestEncodeModelMatchesCPU(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 5))
	for _, dim := range []int{32, 64, 128, 256} {
		for bits := 1; bits <= 8; bits++ {
			for _, prec := range []turboquant.Precision{turboquant.FP16, turboquant.FP32} {
				name := fmt.Sprintf("d%d/b%d/p%d", dim, bits, prec)
				q, err := turboquant.New(turboquant.Config{Dim: dim, Bits: bits, Method: turboquant.MSE, Seed: uint64(bits), Norm: prec})
				if err != nil {
					t.Fatal(err)
				}
				kp := q.Parts()[0]
				plan, err := gpucode.NewRotationPlan(kp.Rotation, maxEncodeDim)
				if err != nil {
					t.Fatal(err)
				}
				const n = 40
				xs := randVecs(r, n*dim, 1)
				clear(xs[:dim]) // a zero vector
				for j := dim; j < 2*dim; j++ {
					xs[j] *= 3e4 // a norm over fp16's range
				}
				for j := 2 * dim; j < 3*dim; j++ {
					xs[j] *= 1e-6
				}
				codes := make([]byte, n*q.CodeSize())
				status := make([]int32, n)
				modelEncodeMSE(xs, dim, bits, int32(prec), plan, kp.Boundaries, codes, q.CodeSize(), kp.IndexOffset, status)
				want := make([]byte, q.CodeSize())
				for v := range n {
					err := q.Encode(want, xs[v*dim:(v+1)*dim])
					if (err != nil) != (status[v] != 0) {
						t.Fatalf("%s vector %d: CPU error %v, model status %d", name, v, err, status[v])
					}
					if err != nil {
						continue
					}
					if got := codes[v*q.CodeSize() : (v+1)*q.CodeSize()]; string(got) != string(want) {
						t.Fatalf("%s vector %d: model code %x, CPU %x", name, v, got, want)
					}
				}
			}
		}
	}
}

package ann

import (
	"errors"
	"math"
	"testing"

	"github.com/turboquant-go/tq/dataset"
	"github.com/turboquant-go/tq/internal/rng"
)

// offsetGaussian is gaussian(n, d, seed) shifted by a common offset vector
// of norm ≈ shift·√d: data that is far from centred, like pixels.
func offsetGaussian(n, d int, seed uint64, shift float64) []float32 {
	xs := gaussian(n, d, seed)
	r := rng.New(seed + 1000)
	off := make([]float32, d)
	for j := range off {
		off[j] = float32(shift * (1 + 0.5*r.Norm()))
	}
	for i := range xs {
		xs[i] += off[i%d]
	}
	return xs
}

// Centring is folded exactly: a quantizer with Mean μ writes the codes a
// plain one writes for x − μ (for cosine, x/‖x‖ − μ), and its distances are
// the plain quantizer's with the query centred (L2) or with ⟨q, μ⟩ added to
// the inner product (IP, cosine).
func TestCenteringFoldsExactly(t *testing.T) {
	const n, d = 200, 48
	xs, ys := offsetGaussian(n, d, 1, 2), offsetGaussian(4, d, 2, 2)
	for _, m := range allMetrics {
		mu, err := Mean(m, xs, d)
		if err != nil {
			t.Fatal(err)
		}
		for _, meth := range []Method{MSE, MSENorm, Prod} {
			cfg := Config{Dim: d, Bits: 3, Method: meth, Metric: m, Seed: 4}
			plainCfg := cfg
			cfg.Mean = mu
			cq, pq := mustTQ(t, cfg), mustTQ(t, plainCfg)
			shifted := make([]float32, len(xs))
			for i := 0; i < n; i++ {
				x := xs[i*d : (i+1)*d]
				if m == Cosine {
					x = append([]float32(nil), x...)
					normalize(x)
				}
				for j := range d {
					shifted[i*d+j] = x[j] - mu[j]
				}
			}
			cc, pc := make([]byte, n*cq.CodeSize()), make([]byte, n*pq.CodeSize())
			if err := cq.Encode(cc, xs); err != nil {
				t.Fatal(err)
			}
			// The plain quantizer must see x − μ as is: use an IP one for
			// cosine (no renormalization), with the same rotation.
			if m == Cosine {
				plainCfg.Metric = InnerProduct
				pq = mustTQ(t, plainCfg)
			}
			if err := pq.Encode(pc, shifted); err != nil {
				t.Fatal(err)
			}
			if string(cc) != string(pc) {
				t.Fatalf("%v %v: centred codes differ from the codes of x − μ", m, meth)
			}
			cd, pd := make([]float32, n), make([]float32, n)
			cqq, pqq := cq.NewQuery(), pq.NewQuery()
			for i := range 4 {
				y := append([]float32(nil), ys[i*d:(i+1)*d]...)
				if err := cqq.Reset(y); err != nil {
					t.Fatal(err)
				}
				_ = cqq.Distances(cd, cc)
				py := append([]float32(nil), y...)
				if m == Cosine {
					normalize(py)
				}
				var shift float64
				if m == L2 {
					for j := range py {
						py[j] -= mu[j]
					}
				} else {
					shift = dot64(py, mu)
				}
				_ = pqq.Reset(py)
				_ = pqq.Distances(pd, pc)
				for j := range n {
					want := float64(pd[j]) - shift
					if m == Cosine {
						want = 1 + float64(pd[j]) - shift // pd is −ip from the IP quantizer
					}
					if !near(float64(cd[j]), want, 1e-4) {
						t.Fatalf("%v %v query %d code %d: centred %v, plain on centred data %v", m, meth, i, j, cd[j], want)
					}
				}
			}
		}
	}
}

// At 8 bits the centred distances are the exact distances of the original
// vectors, to quantization noise: nothing of the shift is lost.
func TestCenteredDistancesMatchExact(t *testing.T) {
	const n, d = 100, 64
	xs, ys := offsetGaussian(n, d, 3, 3), offsetGaussian(3, d, 4, 3)
	for _, m := range allMetrics {
		mu, _ := Mean(m, xs, d)
		q := mustTQ(t, Config{Dim: d, Bits: 8, Method: MSENorm, Metric: m, Seed: 2, Mean: mu})
		codes := make([]byte, n*q.CodeSize())
		if err := q.Encode(codes, xs); err != nil {
			t.Fatal(err)
		}
		qq := q.NewQuery()
		dist := make([]float32, n)
		for i := range 3 {
			y := ys[i*d : (i+1)*d]
			_ = qq.Reset(y)
			_ = qq.Distances(dist, codes)
			for j := range n {
				x := xs[j*d : (j+1)*d]
				want := float64(ExactDistance(m, y, x))
				// 8-bit codes of x − μ: error ≈ 2^-7 of ‖y‖‖x − μ‖ (scale 1 for cosine).
				scale := math.Sqrt(dot64(y, y) * dot64(x, x))
				if m == Cosine {
					scale = 1
				}
				if math.Abs(float64(dist[j])-want) > 0.02*scale {
					t.Fatalf("%v query %d vector %d: %v, exact %v", m, i, j, dist[j], want)
				}
			}
			// The symmetric distance folds the mean too.
			sd, _ := q.Distance(codes[:q.CodeSize()], codes[q.CodeSize():2*q.CodeSize()])
			want := float64(ExactDistance(m, xs[:d], xs[d:2*d]))
			if math.Abs(float64(sd)-want) > 0.03*(1+math.Abs(want)) {
				t.Fatalf("%v symmetric: %v, exact %v", m, sd, want)
			}
		}
	}
}

// lowRankOffset returns n vectors offset + A·z + noise with z ∈ R^8: a low
// intrinsic dimension far from the origin, like images.
func lowRankOffset(n, d int, seed uint64) []float32 {
	r := rng.New(77) // the same offset and basis for base and queries
	a := make([]float32, 8*d)
	off := make([]float32, d)
	for j := range off {
		off[j] = float32(3 + r.Norm())
	}
	for i := range a {
		a[i] = float32(r.Norm())
	}
	r = rng.New(seed)
	out := make([]float32, n*d)
	for i := range n {
		var z [8]float64
		for k := range z {
			z[k] = r.Norm()
		}
		for j := range d {
			v := float64(off[j]) + 0.1*r.Norm()
			for k := range z {
				v += z[k] * float64(a[k*d+j])
			}
			out[i*d+j] = float32(v)
		}
	}
	return out
}

// Plain MSE codes under L2 on data far from centred: without the expected
// alignment correction (2/π at one bit) the inner product is biased low,
// ‖x‖² dominates and recall collapses (0.018 on Fashion-MNIST at one bit).
func TestMSEAlignmentCorrectionUnderL2(t *testing.T) {
	const n, nq, d = 3000, 50, 64
	xs, qs := lowRankOffset(n, d, 5), lowRankOffset(nq, d, 6)
	truth, _ := ExactSearch(L2, xs, qs, d, 1)
	for _, bits := range []int{1, 2} {
		q := mustTQ(t, Config{Dim: d, Bits: bits, Method: MSE, Metric: L2, Seed: 1})
		want := map[int]float64{1: 2 / math.Pi, 2: 0.8825}[bits]
		if a := 1 / float64(q.ipScale); math.Abs(a-want) > 0.01 {
			t.Fatalf("%d bits: expected alignment %.4f, want ≈ %.4f", bits, a, want)
		}
		f := NewFlat(q)
		_ = f.Add(xs)
		got, _ := f.SearchBatch(qs, SearchOptions{K: 10})
		r := recallAt1(truth, got)
		q.ipScale = 1
		raw, _ := f.SearchBatch(qs, SearchOptions{K: 10})
		r0 := recallAt1(truth, raw)
		t.Logf("%d bits: recall@1@10 %.3f corrected, %.3f uncorrected", bits, r, r0)
		if r < 0.5 || r < r0+0.1 {
			t.Errorf("%d bits: recall@1@10 %.3f corrected vs %.3f uncorrected", bits, r, r0)
		}
	}
}

func TestMeanRejectsBadInput(t *testing.T) {
	if _, err := Mean(L2, make([]float32, 5), 2); !errors.Is(err, ErrDimension) {
		t.Fatalf("ragged: %v", err)
	}
	if _, err := Mean(L2, nil, 2); !errors.Is(err, ErrDimension) {
		t.Fatalf("empty: %v", err)
	}
	if _, err := NewTQ(Config{Dim: 4, Bits: 2, Method: MSE, Metric: L2, Mean: make([]float32, 3)}); !errors.Is(err, ErrConfig) {
		t.Fatalf("short mean: %v", err)
	}
	nan := []float32{0, float32(math.NaN()), 0, 0}
	if _, err := NewTQ(Config{Dim: 4, Bits: 2, Method: MSE, Metric: L2, Mean: nan}); !errors.Is(err, ErrConfig) {
		t.Fatalf("NaN mean: %v", err)
	}
	q := mustTQ(t, Config{Dim: 4, Bits: 2, Method: MSE, Metric: L2, Mean: make([]float32, 4)})
	if _, err := NewIVF(q, IVFConfig{Lists: 2}); !errors.Is(err, ErrConfig) {
		t.Fatalf("IVF with a mean: %v", err)
	}
}

// On Fashion-MNIST (pixels, far from centred) centring lifts recall at
// equal bits. Skips when the dataset is not fetched.
func TestCenteringImprovesFashionMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode: the Fashion-MNIST recall test scans 10K×784")
	}
	ds, _ := dataset.Lookup("fmnist")
	all, err := ds.Load()
	if err != nil {
		t.Skipf("Fashion-MNIST not available (%v); fetch with %s", err, ds.FetchCommand())
	}
	base, queries, err := all.Split(10_000, 200, dataset.SplitSeed)
	if err != nil {
		t.Fatal(err)
	}
	d := base.Dim
	truth, _ := ExactSearch(L2, base.Data, queries.Data, d, 1)
	mu, _ := Mean(L2, base.Data, d)
	for _, c := range []struct {
		meth Method
		bits int
	}{{MSENorm, 2}, {MSENorm, 4}, {MSE, 1}} {
		var r [2]float64
		for i, mean := range [][]float32{nil, mu} {
			q := mustTQ(t, Config{Dim: d, Bits: c.bits, Method: c.meth, Metric: L2, Seed: 1, Mean: mean})
			f := NewFlat(q)
			_ = f.Add(base.Data)
			got, _ := f.SearchBatch(queries.Data, SearchOptions{K: 1})
			r[i] = recallAt1(truth, got)
		}
		t.Logf("%v %d bits: R1@1 %.3f plain, %.3f centred", c.meth, c.bits, r[0], r[1])
		if r[1] <= r[0] {
			t.Errorf("%v %d bits: centring did not improve R1@1 (%.3f → %.3f)", c.meth, c.bits, r[0], r[1])
		}
	}
}

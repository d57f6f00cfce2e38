package ann

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// The fast scan's distances are the flat scan's up to the stated table
// error: |Δ⟨rq, ĉ⟩| ≤ dim·step/2, times the per-vector scale.
func TestFastScanMatchesFlat(t *testing.T) {
	const n, d = 333, 101 // odd dim: a padded coordinate; n not a multiple of 32
	xs, ys := gaussian(n, d, 1), gaussian(4, d, 2)
	for _, m := range allMetrics {
		for _, meth := range []Method{MSE, MSENorm} {
			mu, _ := Mean(m, xs, d)
			for _, mean := range [][]float32{nil, mu} {
				q := mustTQ(t, Config{Dim: d, Bits: 4, Method: meth, Metric: m, Seed: 3, Mean: mean})
				f := NewFlat(q)
				if err := f.Add(xs); err != nil {
					t.Fatal(err)
				}
				fs, err := NewFastScan(f)
				if err != nil {
					t.Fatal(err)
				}
				fq := fs.newQuery()
				ref := q.newQuery()
				want := make([]float32, n)
				for i := range 4 {
					y := ys[i*d : (i+1)*d]
					if err := fq.reset(fs, y); err != nil {
						t.Fatal(err)
					}
					_ = ref.Reset(y)
					_ = ref.Distances(want, f.Codes())
					for b := 0; b*32 < n; b++ {
						fq.scanBlock(fs, b)
						for k := range min(32, n-b*32) {
							id := b*32 + k
							ip := fq.bias + fq.step*float32(fq.sums[k])
							// want is from the flat scan: recover ⟨rq, ĉ⟩ from it.
							var wip float64
							switch m {
							case InnerProduct:
								wip = -float64(want[id]) - float64(fq.qq.shift)
							case Cosine:
								wip = 1 - float64(want[id]) - float64(fq.qq.shift)
							default:
								wip = (float64(fq.qq.qNorm2) + float64(fs.norm2[id]) - float64(want[id])) / 2
							}
							wip /= float64(q.ipScale * fs.scale[id])
							bound := float64(q.qDim)*float64(fq.step)/2 + 1e-3*math.Abs(wip) + 1e-4
							if m == L2 {
								// the flat L2 distance cancels large terms in float32
								bound += 1e-5 * (float64(fq.qq.qNorm2) + float64(fs.norm2[id])) / float64(q.ipScale*fs.scale[id])
							}
							if math.Abs(float64(ip)-wip) > bound {
								t.Fatalf("%v %v mean=%v query %d code %d: fast %v, flat %v, bound %v", m, meth, mean != nil, i, id, ip, wip, bound)
							}
						}
					}
				}
				// And the ranking agrees closely.
				got, err := fs.SearchBatch(ys, SearchOptions{K: 10})
				if err != nil {
					t.Fatal(err)
				}
				flat, _ := f.SearchBatch(ys, SearchOptions{K: 10})
				if recallAt1(flat, got) < 0.75 {
					t.Errorf("%v %v: fast scan top-1 agrees with the flat scan's on %.2f", m, meth, recallAt1(flat, got))
				}
			}
		}
	}
}

// The SIMD kernel (when there is one) equals the pure-Go twin bit for bit,
// including tables of 255s at the full chunk, the overflow edge.
func TestFastScanKernelMatchesGo(t *testing.T) {
	t.Logf("kernel: %s", FastScanKernel)
	r := rand.New(rand.NewPCG(1, 2))
	for _, pairs := range []int{1, 2, 7, 64, fastScanChunk} {
		for trial := range 20 {
			codes, lut := make([]byte, pairs*32), make([]byte, pairs*32)
			for i := range codes {
				codes[i] = byte(r.Uint32())
				lut[i] = byte(r.Uint32())
				if trial == 0 {
					lut[i] = 255
				}
			}
			var got, want [32]uint16
			got[3] = 7 // the kernel must overwrite, not accumulate
			fastScan4(&got, codes, lut, pairs)
			fastScan4Go(&want, codes, lut, pairs)
			if got != want {
				t.Fatalf("%d pairs trial %d: kernel %v, Go %v", pairs, trial, got, want)
			}
			if trial == 0 && want[0] != uint16(2*255*pairs) {
				t.Fatalf("%d pairs of 255s: sum %d", pairs, want[0])
			}
		}
	}
}

func TestFastScanRejects(t *testing.T) {
	for _, cfg := range []Config{
		{Dim: 16, Bits: 2, Method: MSE, Metric: L2},
		{Dim: 16, Bits: 4, Method: Prod, Metric: L2},
	} {
		f := NewFlat(mustTQ(t, cfg))
		if _, err := NewFastScan(f); !errors.Is(err, ErrConfig) {
			t.Fatalf("%+v: %v", cfg, err)
		}
	}
	f := NewFlat(mustTQ(t, Config{Dim: 16, Bits: 4, Method: MSE, Metric: L2}))
	fs, _ := NewFastScan(f)
	if _, err := fs.Search(make([]float32, 16), SearchOptions{K: 1}); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty: %v", err)
	}
	_ = f.Add(gaussian(10, 16, 1))
	fs, _ = NewFastScan(f)
	if _, err := fs.Search(make([]float32, 15), SearchOptions{K: 1}); !errors.Is(err, ErrDimension) {
		t.Fatalf("short query: %v", err)
	}
	if _, err := fs.Search(make([]float32, 16), SearchOptions{K: 11}); !errors.Is(err, ErrK) {
		t.Fatalf("k > n: %v", err)
	}
}

package llm

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/turboquant-go/tq/internal/half"
	"github.com/turboquant-go/tq/internal/rng"
)

// f16Source is a tensorSource of random fp16 matrices, for benchmarks of
// models larger than the caches.
type f16Source struct{ seed uint64 }

func (s f16Source) matrix(name string, rows, cols int) (*Matrix, error) {
	if name == "output.weight" {
		return nil, fmt.Errorf("%w: %w %s", ErrModel, errMissing, name)
	}
	r := rng.New(s.seed + uint64(len(name)*rows+cols))
	raw := make([]byte, 2*rows*cols)
	for i := 0; i < len(raw); i += 2 {
		binary.LittleEndian.PutUint16(raw[i:], half.FromFloat32(float32(r.Norm()*0.02)))
	}
	return newMatrixRaw(name, rows, cols, storeF16, raw, 2*cols, nil)
}

func (s f16Source) vector(name string, n int) ([]float32, error) {
	v := make([]float32, n)
	for i := range v {
		v[i] = 1
	}
	return v, nil
}

// benchConfig is a 123M-parameter Llama shape: 246 MB of fp16 weights, far
// beyond L3, so a decode step streams them from memory.
func benchConfig() Config {
	return Config{Arch: "llama", Layers: 8, Dim: 1024, FFNDim: 2816, Heads: 16, KVHeads: 4, HeadDim: 64,
		Vocab: 32000, Context: 2048, RMSEps: 1e-5, RopeBase: 10000, RopeDim: 64, RopeLinear: 1}
}

// copyBandwidth measures bytes/s of a parallel copy of 256 MiB over all cores
// (best of three), in the same process as the benchmark it is the floor of.
func copyBandwidth() float64 {
	const n = 256 << 20
	src, dst := make([]byte, n), make([]byte, n)
	for i := range src {
		src[i] = byte(i)
	}
	w := runtime.GOMAXPROCS(0)
	best := 0.0
	for range 3 {
		start := time.Now()
		var wg sync.WaitGroup
		for k := range w {
			lo, hi := k*n/w, (k+1)*n/w
			wg.Go(func() { copy(dst[lo:hi], src[lo:hi]) })
		}
		wg.Wait()
		best = max(best, n/time.Since(start).Seconds())
	}
	return best
}

// BenchmarkDecode times one decode step (position 64, fp16 cache) of a model
// larger than L3 and reports it against the weight-bandwidth floor: weight
// bytes read per token ÷ copy bandwidth measured in the same run.
func BenchmarkDecode(b *testing.B) {
	cfg := benchConfig()
	m, err := assemble(cfg, f16Source{seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	bw := copyBandwidth()
	seq := newTestCache(b, cfg, "fp16", 1<<30)
	logits := make([]float32, 64*cfg.Vocab)
	if err := m.Forward(seq, testTokens(64, cfg.Vocab, 1), logits[:cfg.Vocab]); err != nil {
		b.Fatal(err)
	}
	tok := []int32{5}
	b.SetBytes(m.WeightBytes())
	b.ResetTimer()
	for b.Loop() {
		if err := m.Forward(seq, tok, logits[:cfg.Vocab]); err != nil {
			b.Fatal(err)
		}
		if err := seq.Truncate(64); err != nil {
			b.Fatal(err)
		}
	}
	per := b.Elapsed().Seconds() / float64(b.N)
	floor := float64(m.WeightBytes()) / bw
	b.ReportMetric(1/per, "tok/s")
	b.ReportMetric(floor/per, "floor_fraction")
	b.ReportMetric(bw/1e9, "copy_GB/s")
}

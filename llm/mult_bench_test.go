package llm

import (
	"fmt"
	"testing"

	"github.com/turboquant-go/tq/internal/rng"
	"github.com/turboquant-go/tq/llm/gguf"
)

// BenchmarkMulTQ8_0 multiplies T rows into one 2816×1024 Q8_0 matrix (an
// FFN projection of the 123M benchmark model, 3 MB), the product a decode
// batch of T sequences runs: MMAC/s is its arithmetic rate.
func BenchmarkMulTQ8_0(b *testing.B) {
	const rows, cols = 2816, 1024
	r := rng.New(3)
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(r.Norm() * 0.02)
	}
	raw := make([]byte, rows*cols/32*34)
	if err := gguf.Quantize(gguf.Q8_0, raw, w); err != nil {
		b.Fatal(err)
	}
	m, err := newMatrixRaw("w", rows, cols, storeQ8_0, raw, len(raw)/rows, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, T := range []int{1, 4, 16} {
		x := make([]float32, T*cols)
		for i := range x {
			x[i] = float32(r.Norm())
		}
		y := make([]float32, T*rows)
		b.Run(fmt.Sprintf("T=%d", T), func(b *testing.B) {
			for b.Loop() {
				if err := m.MulT(y, x); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(T*rows*cols)*float64(b.N)/b.Elapsed().Seconds()/1e6, "MMAC/s")
		})
	}
}

package qjl

import (
	"testing"

	"github.com/turboquant-go/tq/internal/rng"
)

// naiveDot is the plain Σ p_i·(2·bit_i − 1), the baseline for Query.Dot.
func naiveDot(p []float32, code []byte) float32 {
	var s float32
	for i, v := range p {
		if code[i>>3]>>(i&7)&1 == 1 {
			s += v
		} else {
			s -= v
		}
	}
	return s
}

var sink float32

func BenchmarkSketch(b *testing.B) {
	const d, m = 128, 128
	for _, k := range kinds {
		s, err := New(d, m, k, 1)
		if err != nil {
			b.Fatal(err)
		}
		src := rng.New(1)
		x := randomVector(src, d)
		code := make([]byte, s.CodeBytes())
		scratch := make([]float32, s.ScratchLen())
		s.Encode(code, x, scratch)
		q := s.NewQuery()
		q.Reset(randomVector(src, d))
		b.Run(k.String()+"/Encode", func(b *testing.B) {
			b.SetBytes(4 * d)
			b.ReportAllocs()
			for b.Loop() {
				s.Encode(code, x, scratch)
			}
		})
		b.Run(k.String()+"/Reset", func(b *testing.B) {
			b.SetBytes(4 * d)
			b.ReportAllocs()
			for b.Loop() {
				q.Reset(x)
			}
		})
		b.Run(k.String()+"/Dot", func(b *testing.B) {
			b.SetBytes(m / 8)
			b.ReportAllocs()
			for b.Loop() {
				sink += q.Dot(code)
			}
		})
		b.Run(k.String()+"/DotNaive", func(b *testing.B) {
			p := q.Projection()
			b.SetBytes(m / 8)
			b.ReportAllocs()
			for b.Loop() {
				sink += naiveDot(p, code)
			}
		})
	}
}

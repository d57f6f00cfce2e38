package turboquant_test

import (
	"fmt"
	"testing"

	"github.com/turboquant-go/tq/internal/half"
	. "github.com/turboquant-go/tq/turboquant"
	"github.com/turboquant-go/tq/validate"
)

// Baselines measured in the same run: storing a vector as fp16 (what an
// uncompressed cache does per vector) and the fp32 / fp16 dot product a
// score replaces.

func BenchmarkBaselineFP16Store(b *testing.B) {
	for _, d := range []int{128, 1536} {
		b.Run(fmt.Sprintf("d=%d", d), func(b *testing.B) {
			x := validate.UnitVectors(1, d, 1)
			dst := make([]uint16, d)
			b.SetBytes(int64(4 * d))
			b.ReportAllocs()
			for b.Loop() {
				for i, v := range x {
					dst[i] = half.FromFloat32(v)
				}
			}
		})
	}
}

func BenchmarkBaselineDot(b *testing.B) {
	const d = 128
	x := validate.UnitVectors(2, d, 1)
	h := make([]uint16, d)
	for i, v := range x[d:] {
		h[i] = half.FromFloat32(v)
	}
	b.Run("fp32/d=128", func(b *testing.B) {
		b.ReportAllocs()
		var sink float32
		for b.Loop() {
			var s0, s1 float32
			for i := 0; i < d; i += 2 {
				s0 += x[i] * x[d+i]
				s1 += x[i+1] * x[d+i+1]
			}
			sink += s0 + s1
		}
		_ = sink
	})
	b.Run("fp16/d=128", func(b *testing.B) {
		b.ReportAllocs()
		var sink float32
		for b.Loop() {
			var s0, s1 float32
			for i := 0; i < d; i += 2 {
				s0 += x[i] * half.ToFloat32(h[i])
				s1 += x[i+1] * half.ToFloat32(h[i+1])
			}
			sink += s0 + s1
		}
		_ = sink
	})
}

func benchConfigs(d int) []Config {
	var out []Config
	for _, bits := range []int{1, 2, 3, 4, 8} {
		out = append(out, Config{Dim: d, Bits: bits, Method: MSE})
	}
	for _, bits := range []int{2, 3, 4} {
		out = append(out, Config{Dim: d, Bits: bits, Method: Prod})
	}
	return append(out, Config{Dim: d, Method: Polar})
}

func BenchmarkEncode(b *testing.B) {
	for _, d := range []int{128, 1536} {
		for _, cfg := range benchConfigs(d) {
			b.Run(fmt.Sprintf("%s/b=%d/d=%d", cfg.Method, cfg.Bits, d), func(b *testing.B) {
				q := mustNew(b, cfg)
				x := validate.UnitVectors(1, d, 1)
				code := make([]byte, q.CodeSize())
				b.SetBytes(int64(4 * d))
				b.ReportAllocs()
				for b.Loop() {
					_ = q.Encode(code, x)
				}
			})
		}
	}
}

func BenchmarkEncodeBatch(b *testing.B) {
	const d, n = 128, 4096
	q := mustNew(b, Config{Dim: d, Bits: 3, Method: MSE})
	xs := validate.UnitVectors(n, d, 1)
	codes := make([]byte, n*q.CodeSize())
	b.SetBytes(int64(4 * d * n))
	b.ReportAllocs()
	for b.Loop() {
		_ = q.EncodeBatch(codes, xs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/vector")
}

func BenchmarkScore(b *testing.B) {
	for _, d := range []int{128, 1536} {
		for _, cfg := range benchConfigs(d) {
			b.Run(fmt.Sprintf("%s/b=%d/d=%d", cfg.Method, cfg.Bits, d), func(b *testing.B) {
				q := mustNew(b, cfg)
				const n = 256
				xs := validate.UnitVectors(n+1, d, 1)
				codes := make([]byte, n*q.CodeSize())
				if err := q.EncodeBatch(codes, xs[d:]); err != nil {
					b.Fatal(err)
				}
				qq := q.NewQuery()
				if err := qq.Reset(xs[:d]); err != nil {
					b.Fatal(err)
				}
				scores := make([]float32, n)
				b.ReportAllocs()
				for b.Loop() {
					_ = qq.ScoreBatch(scores, codes)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/code")
			})
		}
	}
}

func BenchmarkQueryReset(b *testing.B) {
	for _, cfg := range []Config{{Dim: 128, Bits: 3, Method: MSE}, {Dim: 128, Bits: 4, Method: Prod}, {Dim: 128, Method: Polar}} {
		b.Run(fmt.Sprintf("%s/b=%d/d=%d", cfg.Method, cfg.Bits, cfg.Dim), func(b *testing.B) {
			q := mustNew(b, cfg)
			y := validate.UnitVectors(1, cfg.Dim, 2)
			qq := q.NewQuery()
			b.ReportAllocs()
			for b.Loop() {
				_ = qq.Reset(y)
			}
		})
	}
}

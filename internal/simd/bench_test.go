package simd

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// The kernel benchmarks run one block of 64 rows of d=128 (the cache's
// block), small enough to stay in L1: they measure compute per row, not
// memory. ns/row × tokens × heads is the compute floor of a decode step.
const benchRows, benchDim = 64, 128

func benchLevels() []Level { return append([]Level{Generic}, availableVector()...) }

// benchCodes returns a codebook of normal centroids and benchRows random
// codes of d=benchDim for it (with Slack behind them), and their stride.
func benchCodes(r *rand.Rand, bits int) (*Codebook, []byte, int) {
	tab := make([]float32, 1<<bits)
	for i := range tab {
		tab[i] = float32(r.NormFloat64())
	}
	stride := 2 + benchDim*bits/8
	codes := randomCodes(r, benchRows, stride)
	return NewCodebook(tab, bits), append(codes, make([]byte, Slack)...)[:len(codes)], stride
}

func BenchmarkDotCodes(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, l := range benchLevels() {
		for _, bits := range []int{2, 3, 4, 8} {
			for _, g := range []int{1, 4} {
				b.Run(fmt.Sprintf("%v/bits=%d/g=%d", l, bits, g), func(b *testing.B) {
					cb, codes, stride := benchCodes(r, bits)
					q := mixed(r, g*benchDim)
					out := make([]float32, g*benchRows)
					buf := make([]float32, benchRows*benchDim)
					restore, _ := Use(l)
					defer restore()
					b.SetBytes(int64(len(codes)))
					for b.Loop() {
						if bits == 8 {
							DecodeCodes(buf, benchDim, cb, codes, stride, 2, 0, benchRows, benchDim, nil)
							Dot(out, benchRows, q, buf, benchRows, benchDim, benchDim, nil)
						} else {
							DotCodes(out, benchRows, q, benchDim, g, cb, codes, stride, 2, 0, benchRows, benchDim, nil)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchRows), "ns/row")
				})
			}
		}
	}
}

func BenchmarkAxpyCodes(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, l := range benchLevels() {
		for _, bits := range []int{2, 3, 4} {
			for _, g := range []int{1, 4} {
				b.Run(fmt.Sprintf("%v/bits=%d/g=%d", l, bits, g), func(b *testing.B) {
					cb, codes, stride := benchCodes(r, bits)
					w := mixed(r, g*benchRows)
					acc := make([]float32, g*benchDim)
					restore, _ := Use(l)
					defer restore()
					b.SetBytes(int64(len(codes)))
					for b.Loop() {
						AxpyCodes(acc, benchDim, w, benchRows, g, cb, codes, stride, 2, 0, benchRows, benchDim, nil)
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchRows), "ns/row")
				})
			}
		}
	}
}

// BenchmarkF16Rows is the fp16 baseline's work per block: convert, then dot
// and axpy (keys and values of one row each).
func BenchmarkF16Rows(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, l := range benchLevels() {
		b.Run(l.String(), func(b *testing.B) {
			src := make([]byte, 2*benchRows*benchDim)
			for i := range src {
				src[i] = byte(r.Uint32() & 0x3bff)
			}
			q := mixed(r, benchDim)
			out := make([]float32, benchRows)
			acc := make([]float32, benchDim)
			buf := make([]float32, benchRows*benchDim)
			restore, _ := Use(l)
			defer restore()
			b.SetBytes(int64(2 * len(src)))
			for b.Loop() {
				DecodeF16(buf, benchDim, src, 2*benchDim, benchRows, benchDim)
				Dot(out, benchRows, q, buf, benchRows, benchDim, benchDim, nil)
				DecodeF16(buf, benchDim, src, 2*benchDim, benchRows, benchDim)
				Axpy(acc, out, benchRows, buf, benchRows, benchDim, benchDim, nil)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchRows), "ns/row")
		})
	}
}

func BenchmarkExpSum(b *testing.B) {
	r := rand.New(rand.NewPCG(4, 4))
	src, x := make([]float32, 4096), make([]float32, 4096)
	for i := range src {
		src[i] = float32(r.NormFloat64())
	}
	for _, l := range benchLevels() {
		b.Run(l.String(), func(b *testing.B) {
			restore, _ := Use(l)
			defer restore()
			for b.Loop() {
				copy(x, src) // ExpSum works in place
				ExpSum(x, 10)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/elem")
		})
	}
}

// BenchmarkMax is the streaming softmax's maximum over one query head's
// logits of a chunk (1024).
func BenchmarkMax(b *testing.B) {
	r := rand.New(rand.NewPCG(6, 6))
	x := make([]float32, 1024)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for _, l := range benchLevels() {
		b.Run(l.String(), func(b *testing.B) {
			restore, _ := Use(l)
			defer restore()
			for b.Loop() {
				Max(x)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/elem")
		})
	}
}

// BenchmarkGroupRows is the row path's work per run of the fp16 and fp32
// baselines with a GQA group of four query heads: scores of 32 rows against
// four queries (Dot), then the rows weighted into four accumulators (Axpy),
// every row read once for the four.
func BenchmarkGroupRows(b *testing.B) {
	const g, n = 4, 32
	r := rand.New(rand.NewPCG(5, 5))
	for _, l := range benchLevels() {
		for _, f16 := range []bool{false, true} {
			name := map[bool]string{false: "fp32", true: "fp16"}[f16]
			b.Run(fmt.Sprintf("%v/%s", l, name), func(b *testing.B) {
				rows := mixed(r, n*benchDim)
				hs := asF16(rows)
				q, out, acc := mixed(r, g*benchDim), make([]float32, g*n), make([]float32, g*benchDim)
				restore, _ := Use(l)
				defer restore()
				for b.Loop() {
					if f16 {
						DotF16(out, n, q, hs, n, benchDim, benchDim, nil)
						AxpyF16(acc, out, n, hs, n, benchDim, benchDim, nil)
					} else {
						Dot(out, n, q, rows, n, benchDim, benchDim, nil)
						Axpy(acc, out, n, rows, n, benchDim, benchDim, nil)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
			})
		}
	}
}

// BenchmarkDotCodesQ8 scores the codes of BenchmarkDotCodes (four query
// rows, in cache) with the integer kernels, next to the float ones in the
// same run; the query is quantized once per call, as attention does it per
// step.
func BenchmarkDotCodesQ8(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, bits := range []int{3, 4, 8} {
		cb, codes, stride := benchCodes(r, bits)
		x := activations(r, 4*benchDim) // normal floats: subnormals would time the FPU's slow path
		out := make([]float32, 4*benchRows)
		report := func(b *testing.B) {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchRows), "ns/row")
		}
		rows := make([]float32, benchRows*benchDim)
		b.Run(fmt.Sprintf("float/bits=%d/g=4", bits), func(b *testing.B) {
			for b.Loop() {
				if bits == 8 { // no fused kernel: decoded rows, then Dot, as the cache does
					DecodeCodes(rows, benchDim, cb, codes, stride, 2, 0, benchRows, benchDim, nil)
					Dot(out, benchRows, x, rows, benchRows, benchDim, benchDim, nil)
					continue
				}
				DotCodes(out, benchRows, x, benchDim, 4, cb, codes, stride, 2, 0, benchRows, benchDim, nil)
			}
			report(b)
		})
		b.Run(fmt.Sprintf("int8/bits=%d/g=4", bits), func(b *testing.B) {
			var q QueryQ8
			for b.Loop() {
				q.Quantize(x, benchDim, 4, benchDim, bits)
				DotCodesQ8(out, benchRows, nil, &q, cb, codes, stride, 2, 0, benchRows, nil)
			}
			report(b)
		})
		b.Run(fmt.Sprintf("int8-kernel/bits=%d/g=4", bits), func(b *testing.B) {
			var q QueryQ8
			q.Quantize(x, benchDim, 4, benchDim, bits)
			for b.Loop() {
				DotCodesQ8(out, benchRows, nil, &q, cb, codes, stride, 2, 0, benchRows, nil)
			}
			report(b)
		})
	}
}

package simd

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/turboquant-go/tq/internal/half"
)

// The matrix benchmarks multiply one (g = 1, decode) or four (prefill)
// activation rows by a weight matrix of d = 2048 columns and 64 MiB, twice
// the L3 cache, so every pass streams the weights from memory. b.SetBytes
// is the matrix's bytes: MB/s is the bandwidth the kernel draws, to be read
// against BenchmarkStreamRead's in the same run.
const (
	matDim   = 2048
	matBytes = 64 << 20
)

// BenchmarkStreamRead is the floor: a streaming read of 64 MiB, by the
// AVX2 MaxAbsBits kernel (vector loads, one max each) and by a 4-way
// uint64 sum in Go (as turboquant's BenchmarkMemoryFloor).
func BenchmarkStreamRead(b *testing.B) {
	x := make([]float32, matBytes/4)
	for i := range x {
		x[i] = float32(i)
	}
	for _, l := range benchLevels() {
		b.Run("maxabs/"+l.String(), func(b *testing.B) {
			restore, _ := Use(l)
			defer restore()
			b.SetBytes(matBytes)
			var sink uint32
			for b.Loop() {
				sink += MaxAbsBits(x)
			}
			_ = sink
		})
	}
	b.Run("sum64", func(b *testing.B) {
		buf := make([]uint64, matBytes/8)
		for i := range buf {
			buf[i] = uint64(i)
		}
		b.SetBytes(matBytes)
		var sink uint64
		for b.Loop() {
			var s0, s1, s2, s3 uint64
			for i := 0; i+4 <= len(buf); i += 4 {
				s0 += buf[i]
				s1 += buf[i+1]
				s2 += buf[i+2]
				s3 += buf[i+3]
			}
			sink += s0 + s1 + s2 + s3
		}
		_ = sink
	})
}

// quantMatrix returns a random matBytes matrix of d = matDim columns in the
// format with blockBytes per block (finite scales), and its rows.
func quantMatrix(r *rand.Rand, blockBytes int) ([]byte, int) {
	rowBytes := matDim / QuantBlock * blockBytes
	n := matBytes / rowBytes
	rows := make([]byte, n*rowBytes)
	for i := range rows {
		rows[i] = byte(r.Uint32())
	}
	for b := 0; b < len(rows); b += blockBytes {
		h := half.FromFloat32(float32(r.NormFloat64() * 0.02))
		rows[b], rows[b+1] = byte(h), byte(h>>8)
	}
	return rows, n
}

func BenchmarkDotQ8_0(b *testing.B) { benchDotQuant(b, Q8_0BlockBytes, DotQ8_0, DotQ8_0Q8) }
func BenchmarkDotQ4_0(b *testing.B) { benchDotQuant(b, Q4_0BlockBytes, DotQ4_0, DotQ4_0Q8) }

// benchDotQuant runs the fused kernel at each level, its int8-activation
// twin (dot8, activation quantization included), and the path it
// replaces: each chunk of 64 rows expanded to float32 in Go, then Dot.
func benchDotQuant(b *testing.B, blockBytes int, dot func(out []float32, outStride int, q []float32, rows []byte, n, d int),
	dot8 func(out []float32, outStride int, a *Q8Rows, rows []byte, n int)) {
	r := rand.New(rand.NewPCG(9, 9))
	rows, n := quantMatrix(r, blockBytes)
	rowBytes := matDim / QuantBlock * blockBytes
	for _, g := range []int{1, 4} {
		q := activations(r, g*matDim)
		out := make([]float32, g*n)
		for _, l := range benchLevels() {
			b.Run(fmt.Sprintf("%v/g=%d", l, g), func(b *testing.B) {
				restore, _ := Use(l)
				defer restore()
				b.SetBytes(int64(len(rows)))
				for b.Loop() {
					dot(out, n, q, rows, n, matDim)
				}
			})
		}
		for _, l := range benchLevels() {
			b.Run(fmt.Sprintf("int8/%v/g=%d", l, g), func(b *testing.B) {
				restore, _ := Use(l)
				defer restore()
				b.SetBytes(int64(len(rows)))
				var a Q8Rows
				for b.Loop() {
					a.Quantize(q, matDim)
					dot8(out, n, &a, rows, n)
				}
			})
		}
		b.Run(fmt.Sprintf("expand+Dot/g=%d", g), func(b *testing.B) {
			const chunk = 64
			buf := make([]float32, chunk*matDim)
			b.SetBytes(int64(len(rows)))
			for b.Loop() {
				for t0 := 0; t0 < n; t0 += chunk {
					m := min(chunk, n-t0)
					expandQuant(buf, rows[t0*rowBytes:(t0+m)*rowBytes], blockBytes)
					Dot(out[t0:], n, q, buf[:m*matDim], m, matDim, matDim, nil)
				}
			}
		})
	}
}

// expandQuant writes the float32 values of the blocks in src to dst.
func expandQuant(dst []float32, src []byte, blockBytes int) {
	for b := 0; b*blockBytes < len(src); b++ {
		blk := src[b*blockBytes : (b+1)*blockBytes]
		s := half.ToFloat32(uint16(blk[0]) | uint16(blk[1])<<8)
		w := dst[32*b : 32*b+32]
		if blockBytes == Q8_0BlockBytes {
			for j := range w {
				w[j] = s * float32(int8(blk[2+j]))
			}
		} else {
			for j := range 16 {
				w[j] = s * float32(int(blk[2+j]&15)-8)
				w[j+16] = s * float32(int(blk[2+j]>>4)-8)
			}
		}
	}
}

// BenchmarkDotF16Matrix is DotF16 on the same shape: d = 2048 columns,
// 64 MiB of fp16 weights (16384 rows).
func BenchmarkDotF16Matrix(b *testing.B) {
	r := rand.New(rand.NewPCG(10, 10))
	n := matBytes / (2 * matDim)
	rows := make([]byte, matBytes)
	for i := 0; i < len(rows); i += 2 {
		h := half.FromFloat32(float32(r.NormFloat64() * 0.02))
		rows[i], rows[i+1] = byte(h), byte(h>>8)
	}
	for _, g := range []int{1, 4} {
		q := activations(r, g*matDim)
		out := make([]float32, g*n)
		for _, l := range benchLevels() {
			b.Run(fmt.Sprintf("%v/g=%d", l, g), func(b *testing.B) {
				restore, _ := Use(l)
				defer restore()
				b.SetBytes(matBytes)
				for b.Loop() {
					DotF16(out, n, q, rows, n, matDim, matDim, nil)
				}
			})
		}
	}
}

// BenchmarkDotQuantCached runs the fused kernels on 64 rows of d = 2048
// (136 KiB of Q8_0, 72 KiB of Q4_0), in cache: the compute bound, without
// memory. MB/s against BenchmarkDotQ8_0's tells which one binds.
func BenchmarkDotQuantCached(b *testing.B) {
	r := rand.New(rand.NewPCG(11, 11))
	for _, f := range []struct {
		name       string
		blockBytes int
		dot        func(out []float32, outStride int, q []float32, rows []byte, n, d int)
	}{{"Q8_0", Q8_0BlockBytes, DotQ8_0}, {"Q4_0", Q4_0BlockBytes, DotQ4_0}} {
		const n = 64
		rows, _ := quantMatrix(r, f.blockBytes)
		rows = rows[:n*matDim/QuantBlock*f.blockBytes]
		for _, g := range []int{1, 4} {
			q := activations(r, g*matDim)
			out := make([]float32, g*n)
			for _, l := range availableVector() {
				b.Run(fmt.Sprintf("%s/%v/g=%d", f.name, l, g), func(b *testing.B) {
					restore, _ := Use(l)
					defer restore()
					b.SetBytes(int64(len(rows)))
					for b.Loop() {
						f.dot(out, n, q, rows, n, matDim)
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n*matDim/QuantBlock), "ns/block")
				})
			}
		}
	}
}

// activations returns n normal values, like a model's activations (no
// subnormals, which cost microcode assists on some CPUs).
func activations(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// BenchmarkDotQuantCompute multiplies g activation rows into a 256 KiB
// matrix of d = matDim columns that stays in L2, so the kernels are timed
// at their arithmetic limit: the float-activation kernels (DotQ8_0,
// DotQ4_0) against the int8-activation ones (DotQ8_0Q8, DotQ4_0Q8, their
// activation quantization included), in the same run. MMAC/s is reported.
func BenchmarkDotQuantCompute(b *testing.B) {
	r := rand.New(rand.NewPCG(11, 11))
	for _, k := range q8Dots {
		rowBytes := matDim / QuantBlock * k.f.blockBytes
		n := (256 << 10) / rowBytes
		rows := quantRows(r, k.f, n, matDim)
		for _, g := range []int{1, 4, 16} {
			x := activations(r, g*matDim)
			out := make([]float32, g*n)
			report := func(b *testing.B) {
				b.ReportMetric(float64(g*n*matDim)*float64(b.N)/b.Elapsed().Seconds()/1e6, "MMAC/s")
			}
			b.Run(fmt.Sprintf("%s/float/g=%d", k.f.name, g), func(b *testing.B) {
				for b.Loop() {
					k.f.dot(out, n, x, rows, n, matDim)
				}
				report(b)
			})
			b.Run(fmt.Sprintf("%s/int8/g=%d", k.f.name, g), func(b *testing.B) {
				var a Q8Rows
				for b.Loop() {
					a.Quantize(x, matDim)
					k.dot(out, n, &a, rows, n)
				}
				report(b)
			})
			b.Run(fmt.Sprintf("%s/int8-kernel/g=%d", k.f.name, g), func(b *testing.B) {
				var a Q8Rows
				a.Quantize(x, matDim)
				for b.Loop() {
					k.dot(out, n, &a, rows, n)
				}
				report(b)
			})
		}
	}
}

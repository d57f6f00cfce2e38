package ann

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/turboquant-go/tq/internal/simd"
)

// BenchmarkScanKernel scores 4-bit d=100 codes (50 index bytes, 52-byte
// codes) with each kernel alone (ns/op per code): "lut" is the pure-Go
// integer byte-lookup kernel, "simd" the fused unpack-and-multiply kernel
// (simd.DotCodesPadded) the index uses when the CPU has one.
func BenchmarkScanKernel(b *testing.B) {
	const n = 4096
	q := mustTQ(b, Config{Dim: 100, Bits: 4, Method: MSE, Metric: InnerProduct, Seed: 1})
	codes := make([]byte, n*q.CodeSize(), n*q.CodeSize()+simd.Slack)
	if err := q.Encode(codes, gaussian(n, 100, 3)); err != nil {
		b.Fatal(err)
	}
	y := gaussian(1, 100, 4)
	cs := q.CodeSize()
	b.Run("lut", func(b *testing.B) {
		qq := q.newQuery()
		if err := qq.Reset(y); err != nil {
			b.Fatal(err)
		}
		rq := make([]float32, 100)
		if err := q.q.RotateQuery(rq, qq.y); err != nil {
			b.Fatal(err)
		}
		qq.lut.init(q.layout)
		qq.lut.build(rq, q.layout)
		var sums [scanChunk]uint32
		b.ReportAllocs()
		for b.Loop() {
			for lo := 0; lo < n; lo += scanChunk {
				scanBytes(sums[:], qq.lut.rows, codes[lo*cs+q.layout.IndexOffset:], cs)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/code")
	})
	b.Run("simd", func(b *testing.B) {
		qq := q.newQuery()
		if !qq.vector {
			b.Skipf("no SIMD kernels on this CPU/build (level %v)", simd.Active())
		}
		if err := qq.Reset(y); err != nil {
			b.Fatal(err)
		}
		var dst [scanChunk]float32
		b.ReportAllocs()
		for b.Loop() {
			for lo := 0; lo < n; lo += scanChunk {
				qq.innerProducts(dst[:], codes[lo*cs:(lo+scanChunk)*cs])
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/code")
	})
}

// BenchmarkFlatScan is one query against 100K 4-bit d=100 codes on one
// goroutine, heap included (top 10).
func BenchmarkFlatScan(b *testing.B) {
	for _, bits := range []int{2, 3, 4} {
		b.Run(map[int]string{2: "bits=2", 3: "bits=3", 4: "bits=4"}[bits], func(b *testing.B) {
			const n = 100_000
			q := mustTQ(b, Config{Dim: 100, Bits: bits, Method: MSE, Metric: InnerProduct, Seed: 1})
			f := NewFlat(q)
			if err := f.Add(gaussian(n, 100, 3)); err != nil {
				b.Fatal(err)
			}
			y := gaussian(1, 100, 4)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.SearchBatch(y, SearchOptions{K: 10, Workers: 1}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mcodes/s")
		})
	}
}

// BenchmarkEncode100K encodes 100K d=100 vectors on one core (MSE 4 bits).
func BenchmarkEncode100K(b *testing.B) {
	const n = 100_000
	q := mustTQ(b, Config{Dim: 100, Bits: 4, Method: MSE, Metric: InnerProduct, Seed: 1})
	xs := gaussian(n, 100, 3)
	dst := make([]byte, n*q.CodeSize())
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for b.Loop() {
		if err := q.Encode(dst, xs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)*1e3, "ms/100K")
}

// BenchmarkFastScan searches 4-bit MSENorm codes of n vectors (one query,
// one goroutine, k=10) through the flat scan ("flat": the SIMD fused kernel
// when there is one, else the byte LUT) and through FastScan with its
// kernel ("fastscan-avx2"/"fastscan-go") and with the pure-Go twin forced
// ("fastscan-go"). It reports Mcodes/s; compare within one run.
func BenchmarkFastScan(b *testing.B) {
	for _, d := range []int{128, 784} {
		n := 32768
		q := mustTQ(b, Config{Dim: d, Bits: 4, Method: MSENorm, Metric: L2, Seed: 1})
		f := NewFlat(q)
		if err := f.Add(gaussian(n, d, 3)); err != nil {
			b.Fatal(err)
		}
		fs, err := NewFastScan(f)
		if err != nil {
			b.Fatal(err)
		}
		y := gaussian(1, d, 4)
		o := SearchOptions{K: 10, Workers: 1}
		report := func(b *testing.B) {
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mcodes/s")
		}
		b.Run(fmt.Sprintf("d=%d/flat", d), func(b *testing.B) {
			for b.Loop() {
				if _, err := f.Search(y, o); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
		})
		kernels := map[string]func(*[fastScanBlock]uint16, []byte, []byte, int){"fastscan-" + FastScanKernel: fastScan4}
		kernels["fastscan-go"] = fastScan4Go
		for name, k := range kernels {
			b.Run(fmt.Sprintf("d=%d/%s", d, name), func(b *testing.B) {
				saved := fastScan4
				fastScan4 = k
				defer func() { fastScan4 = saved }()
				for b.Loop() {
					if _, err := fs.Search(y, o); err != nil {
						b.Fatal(err)
					}
				}
				report(b)
			})
		}
	}
}

// BenchmarkPCAScan searches PCA codes of 32,768 low-rank d=784 vectors
// (one query, one goroutine, k=10) at 1, 2 and 4 bits per dimension and
// reports Mcodes/s; compare within one run.
func BenchmarkPCAScan(b *testing.B) {
	const n, d = 32768, 784
	xs := lowRank(n+1, d, 64, 5)
	for _, bits := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("bits=%d", bits), func(b *testing.B) {
			p := mustPCA(b, L2, xs[:n*d], d, bits)
			f := NewFlat(p)
			if err := f.Add(xs[:n*d]); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := f.SearchBatch(xs[n*d:], SearchOptions{K: 10, Workers: 1}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mcodes/s")
		})
	}
}

package cuda

// Tests and benchmarks that need a CUDA device; they skip without one.
// gpucheck.sh builds them into a binary for a GPU machine.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/turboquant-go/tq/kvcache"
	"github.com/turboquant-go/tq/turboquant"
)

func openGPU(tb testing.TB) *Device {
	tb.Helper()
	d, err := Open(Options{})
	if errors.Is(err, ErrNoCUDA) {
		tb.Skipf("no CUDA device: %v", err)
	}
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = d.Close() })
	tb.Logf("device: %s, compute capability %d.%d, %d SMs, %d MiB, driver %d",
		d.Name(), d.cc[0], d.cc[1], d.Multiprocessors(), d.Memory()>>20, d.DriverVersion())
	return d
}

// gpuSequence fills a one-layer device sequence with n random tokens.
func gpuSequence(tb testing.TB, dev *Device, preset string, H, g, d, n int) (*Pool, *Sequence) {
	tb.Helper()
	cfg, err := kvcache.Preset(preset, 1, H, H*g, d)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := NewPool(dev, cfg, 0)
	if err != nil {
		tb.Fatal(err)
	}
	s := p.NewSequence()
	tb.Cleanup(func() { _ = s.Close() })
	r := rand.New(rand.NewPCG(uint64(n), uint64(d)))
	for done := 0; done < n; {
		m := min(4096, n-done)
		if err := s.Append(0, randVecs(r, m*H*d, 1), randVecs(r, m*H*d, 1)); err != nil {
			tb.Fatal(err)
		}
		done += m
	}
	return p, s
}

// TestGPUAttendMatchesModelAndCPU runs the kernels and compares them with
// their Go models (over the device's own memory) and with the CPU path.
func TestGPUAttendMatchesModelAndCPU(t *testing.T) {
	dev := openGPU(t)
	for _, preset := range []string{"fp32", "fp16", "k8v4", "tq4", "tq3", "tq3.5", "tq2.5", "k4v3.5", "tq3+bc", "k4v3.25+uk"} {
		for _, T := range []int{1, 5} {
			t.Run(fmt.Sprintf("%s/T%d", preset, T), func(t *testing.T) {
				p, s := gpuSequence(t, dev, preset, 4, 4, 128, 3000)
				r := rand.New(rand.NewPCG(9, uint64(T)))
				q := randVecs(r, T*p.cfg.QHeads*128, 2)
				got, model, cpu := make([]float32, len(q)), make([]float32, len(q)), make([]float32, len(q))
				if err := s.Attend(0, q, got); err != nil {
					t.Fatal(err)
				}
				p.exec = modelExecutor{}
				if err := s.Attend(0, q, model); err != nil {
					t.Fatal(err)
				}
				p.exec = deviceExecutor{}
				if err := s.host.Attend(0, q, cpu); err != nil {
					t.Fatal(err)
				}
				if e := relErr(got, model, 128); e > 1e-5 {
					t.Errorf("kernel vs model: relative error %.3g", e)
				}
				if e := relErr(got, cpu, 128); e > 3e-5 {
					t.Errorf("kernel vs CPU: relative error %.3g", e)
				}
			})
		}
	}
}

func TestGPUEncodeMatchesCPU(t *testing.T) {
	dev := openGPU(t)
	r := rand.New(rand.NewPCG(10, 11))
	for _, d := range []int{64, 128, 256} {
		for _, bits := range []int{2, 3, 4, 8} {
			q, err := turboquant.New(turboquant.Config{Dim: d, Bits: bits, Method: turboquant.MSE, Seed: 5})
			if err != nil {
				t.Fatal(err)
			}
			e, err := NewEncoder(dev, q)
			if err != nil {
				t.Fatal(err)
			}
			const n = 2000
			xs := randVecs(r, n*d, 1)
			got := make([]byte, n*q.CodeSize())
			if err := e.Encode(got, xs); err != nil {
				t.Fatal(err)
			}
			want := make([]byte, n*q.CodeSize())
			if err := q.EncodeBatch(want, xs); err != nil {
				t.Fatal(err)
			}
			for v := range n {
				cs := q.CodeSize()
				if string(got[v*cs:(v+1)*cs]) != string(want[v*cs:(v+1)*cs]) {
					t.Fatalf("d=%d bits=%d vector %d: device %x, CPU %x", d, bits, v, got[v*cs:(v+1)*cs], want[v*cs:(v+1)*cs])
				}
			}
			e.Close()
		}
	}
}

func TestGPUDenseMatchesCPU(t *testing.T) {
	dev := openGPU(t)
	const n, H, g, d = 5000, 4, 2, 128
	for _, fp32 := range []bool{false, true} {
		cfg, _ := kvcache.Preset(map[bool]string{false: "fp16", true: "fp32"}[fp32], 1, H, H*g, d)
		cpu, _ := kvcache.NewPool(cfg, 0)
		s := cpu.NewSequence()
		r := rand.New(rand.NewPCG(12, 13))
		k, v := randVecs(r, n*H*d, 1), randVecs(r, n*H*d, 1)
		if err := s.Append(0, k, v); err != nil {
			t.Fatal(err)
		}
		a, err := NewDenseAttention(dev, k, v, n, H, g, d, fp32)
		if err != nil {
			t.Fatal(err)
		}
		q := randVecs(r, H*g*d, 2)
		got, err := a.Attend(q)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float32, len(q))
		if err := s.Attend(0, q, want); err != nil {
			t.Fatal(err)
		}
		if e := relErr(got, want, d); e > 3e-5 {
			t.Errorf("dense fp32=%v vs CPU: relative error %.3g", fp32, e)
		}
		a.Close()
	}
}

// BenchmarkGPUDecode times one decode step's attention kernels (8 KV heads,
// 4 query heads each, d=128) at 8K–128K tokens for the compressed presets
// and the dense fp16/fp32 baselines, and reports the bytes the step reads
// per second as a fraction of the measured copy bandwidth.
func BenchmarkGPUDecode(b *testing.B) {
	dev := openGPU(b)
	bw, err := dev.CopyBandwidth(1<<30, 20)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("cuMemcpyDtoD bandwidth: %.0f GB/s (read + write)", bw/1e9)
	const H, g, d = 8, 4, 128
	for _, n := range []int{8 << 10, 32 << 10, 128 << 10} {
		for _, preset := range []string{"tq4", "tq3", "k8v4", "fp16", "dense-f16", "dense-f32"} {
			b.Run(fmt.Sprintf("n=%d/%s", n, preset), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 2))
				q := randVecs(r, H*g*d, 1)
				var run func() (float32, error)
				var bytes float64
				switch preset {
				case "dense-f16", "dense-f32":
					fp32 := preset == "dense-f32"
					k, v := randVecs(r, n*H*d, 1), randVecs(r, n*H*d, 1)
					a, err := NewDenseAttention(dev, k, v, n, H, g, d, fp32)
					if err != nil {
						b.Fatal(err)
					}
					defer a.Close()
					if err := a.SetQuery(q); err != nil {
						b.Fatal(err)
					}
					elem := 2.0
					if fp32 {
						elem = 4
					}
					bytes = 2 * float64(n*H*d) * elem
					run = func() (float32, error) {
						ms, err := dev.Time(func() error {
							for range 20 {
								if err := a.Launch(); err != nil {
									return err
								}
							}
							return nil
						})
						return ms / 20, err
					}
				default:
					p, s := gpuSequence(b, dev, preset, H, g, d, n)
					bytes = float64(s.Stats().StoredBytes)
					_ = p
					run = func() (float32, error) { return s.KernelTime(0, q, 20) }
				}
				var total float64
				for b.Loop() {
					ms, err := run()
					if err != nil {
						b.Fatal(err)
					}
					total += float64(ms)
				}
				ms := total / float64(b.N)
				b.ReportMetric(ms*1e3, "µs/step")
				b.ReportMetric(bytes/(ms/1e3)/1e9, "GB/s")
				b.ReportMetric(bytes/(ms/1e3)/bw, "of-copy-bw")
			})
		}
	}
}

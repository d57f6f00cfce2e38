package metal

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/turboquant-go/tq/internal/half"
	"github.com/turboquant-go/tq/turboquant"
)

// encodeInputs are n vectors of dim d with a spread of scales (tiny, unit,
// large), so the norm's float64 emulation sees many exponents.
func encodeInputs(rng *rand.Rand, n, d int) []float32 {
	xs := make([]float32, n*d)
	for v := range n {
		scale := float32(math.Pow(2, float64(rng.IntN(28)-20)))
		for j := range d {
			xs[v*d+j] = float32(rng.NormFloat64()) * scale
		}
	}
	return xs
}

// TestEncodeMatchesCPU runs tq_encode_mse over whole batches for every
// bit width the presets use, fp16 and fp32 norms, several dims and round
// counts, and fp32, fp16 and bf16 inputs: every code must equal
// Quantizer.Encode of the same (converted) input byte for byte.
func TestEncodeMatchesCPU(t *testing.T) {
	for _, td := range testDevices(t) {
		t.Run(td.name, func(t *testing.T) { testEncodeMatchesCPU(t, td.dev) })
	}
}

func testEncodeMatchesCPU(t *testing.T, dev *Device) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, d := range []int{8, 64, 128, 256} {
		for _, bits := range []int{2, 3, 4, 8} {
			for _, prec := range []turboquant.Precision{turboquant.FP16, turboquant.FP32} {
				cfg := turboquant.Config{Dim: d, Bits: bits, Method: turboquant.MSE, Seed: uint64(d*bits) + 7, Norm: prec}
				if d == 64 {
					cfg.Rounds = 2
				}
				q, err := turboquant.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				enc, err := NewEncoder(dev, q)
				if err != nil {
					t.Fatal(err)
				}
				n := 12
				xs := encodeInputs(rng, n, d)
				xs[0], xs[d-1] = 0, 0 // a coordinate of exactly 0
				if n > 1 {
					for j := range d {
						xs[d+j] = 0 // the zero vector
					}
				}
				h16 := make([]uint16, len(xs))
				b16 := make([]uint16, len(xs))
				for i, x := range xs {
					h16[i] = half.FromFloat32(x / 1024) // inside fp16's range
					b16[i] = half.BF16FromFloat32(x)
				}
				cases := []struct {
					name string
					ref  []float32
					run  func(dst []byte) error
				}{
					{"f32", xs, func(dst []byte) error { return enc.Encode(dst, xs) }},
					{"f16", toF32(h16, half.ToFloat32), func(dst []byte) error { return enc.EncodeFP16(dst, h16) }},
					{"bf16", toF32(b16, half.BF16ToFloat32), func(dst []byte) error { return enc.EncodeBF16(dst, b16) }},
				}
				for _, c := range cases {
					t.Run(fmt.Sprintf("d%d/b%d/%v/%s", d, bits, prec, c.name), func(t *testing.T) {
						cs := q.CodeSize()
						got := make([]byte, n*cs)
						if err := c.run(got); err != nil {
							t.Fatal(err)
						}
						want := make([]byte, cs)
						for v := range n {
							if err := q.Encode(want, c.ref[v*d:(v+1)*d]); err != nil {
								t.Fatal(err)
							}
							if !bytes.Equal(got[v*cs:(v+1)*cs], want) {
								t.Errorf("vector %d: code\n%x\nwant\n%x", v, got[v*cs:(v+1)*cs], want)
							}
						}
					})
				}
				enc.Close()
			}
		}
	}
}

func toF32(xs []uint16, f func(uint16) float32) []float32 {
	out := make([]float32, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// TestEncodeOverflowAndErrors: a norm beyond fp16 is reported for its
// vector only; bad inputs give sentinels and leave dst alone.
func TestEncodeOverflowAndErrors(t *testing.T) {
	dev := testDevices(t)[0].dev
	q, err := turboquant.New(turboquant.Config{Dim: 64, Bits: 3, Method: turboquant.MSE, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewEncoder(dev, q)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	xs := make([]float32, 2*64)
	for j := range 64 {
		xs[j] = 1
		xs[64+j] = 1e4 // norm 8e4 > 65504
	}
	dst := make([]byte, 2*q.CodeSize())
	if err := enc.Encode(dst, xs); !errors.Is(err, turboquant.ErrOverflow) {
		t.Errorf("overflowing norm: %v", err)
	}
	if err := enc.Encode(dst[:3], xs[:64]); !errors.Is(err, ErrLength) {
		t.Errorf("short dst: %v", err)
	}
	xs[5] = float32(math.NaN())
	if err := enc.Encode(dst, xs); !errors.Is(err, turboquant.ErrNonFinite) {
		t.Errorf("NaN input: %v", err)
	}
	if err := enc.EncodeFP16(dst, []uint16{0x7C00}); !errors.Is(err, turboquant.ErrNonFinite) {
		t.Errorf("fp16 Inf: %v", err)
	}
	if _, err := NewEncoder(dev, mustQuantizer(t, turboquant.Config{Dim: 96, Bits: 3, Method: turboquant.MSE})); !errors.Is(err, ErrUnsupported) {
		t.Errorf("dim 96: %v", err)
	}
	if _, err := NewEncoder(dev, mustQuantizer(t, turboquant.Config{Dim: 128, Bits: 3, Method: turboquant.Prod})); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Prod: %v", err)
	}
}

func mustQuantizer(t *testing.T, cfg turboquant.Config) *turboquant.Quantizer {
	t.Helper()
	q, err := turboquant.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// BenchmarkEncode encodes 4096 vectors of dim 128 at 3 bits: on the CPU
// (Quantizer.Encode, the baseline) and on the Metal device where there is
// one (host wall time per batch, upload and download of shared buffers
// included). The C++ harness is not benchmarked: it measures nothing about
// a GPU.
func BenchmarkEncode(b *testing.B) {
	const n, d = 4096, 128
	q, err := turboquant.New(turboquant.Config{Dim: d, Bits: 3, Method: turboquant.MSE, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	xs := encodeInputs(rand.New(rand.NewPCG(3, 4)), n, d)
	dst := make([]byte, n*q.CodeSize())
	b.Run("cpu", func(b *testing.B) {
		b.SetBytes(int64(4 * len(xs)))
		for b.Loop() {
			for v := range n {
				if err := q.Encode(dst[v*q.CodeSize():(v+1)*q.CodeSize()], xs[v*d:(v+1)*d]); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("metal", func(b *testing.B) {
		dev, err := Open()
		if err != nil {
			b.Skipf("no Metal device: %v", err)
		}
		defer dev.Close()
		enc, err := NewEncoder(dev, q)
		if err != nil {
			b.Fatal(err)
		}
		defer enc.Close()
		b.SetBytes(int64(4 * len(xs)))
		for b.Loop() {
			if err := enc.Encode(dst, xs); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestEncodeEdgeCases: vectors whose norms are exact, subnormal, at the
// fp16 limit or beyond float32, one at a time, for fp16 and fp32 norms: the
// device must agree with Quantizer.Encode on the code or on ErrOverflow.
func TestEncodeEdgeCases(t *testing.T) {
	dev := testDevices(t)[0].dev
	const d = 64
	below65520 := math.Nextafter32(65520, 0)
	vecs := map[string]func(j int) float32{
		"one-hot":             func(j int) float32 { return float32(b2f(j == 5)) },
		"one-hot-below-65520": func(j int) float32 { return below65520 * float32(b2f(j == 9)) },
		"one-hot-65520":       func(j int) float32 { return 65520 * float32(b2f(j == 9)) },
		"constant":            func(int) float32 { return 0.125 },
		"subnormal":           func(j int) float32 { return 1e-40 * float32(j%3) },
		"smallest":            func(j int) float32 { return math.SmallestNonzeroFloat32 * float32(b2f(j == 0)) },
		"wide-range":          func(j int) float32 { return float32(math.Pow(10, float64(j%20-10))) },
		"alternating":         func(j int) float32 { return float32(3 - 6*(j%2)) },
		"beyond-float32-norm": func(int) float32 { return 5e37 }, // ‖x‖ = 4e38
		"largest":             func(j int) float32 { return math.MaxFloat32 * float32(b2f(j == 1)) },
	}
	for _, prec := range []turboquant.Precision{turboquant.FP16, turboquant.FP32} {
		q := mustQuantizer(t, turboquant.Config{Dim: d, Bits: 3, Method: turboquant.MSE, Seed: 11, Norm: prec})
		enc, err := NewEncoder(dev, q)
		if err != nil {
			t.Fatal(err)
		}
		for name, f := range vecs {
			x := make([]float32, d)
			for j := range x {
				x[j] = f(j)
			}
			want, got := make([]byte, q.CodeSize()), make([]byte, q.CodeSize())
			werr := q.Encode(want, x)
			gerr := enc.Encode(got, x)
			switch {
			case werr != nil || gerr != nil:
				if !errors.Is(werr, turboquant.ErrOverflow) || !errors.Is(gerr, turboquant.ErrOverflow) {
					t.Errorf("%v %s: device error %v, CPU error %v", prec, name, gerr, werr)
				}
			case !bytes.Equal(got, want):
				t.Errorf("%v %s: code\n%x\nwant\n%x", prec, name, got, want)
			}
		}
		enc.Close()
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

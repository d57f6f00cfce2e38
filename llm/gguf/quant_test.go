package gguf

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/turboquant-go/tq/internal/half"
)

func roundTrip(t *testing.T, typ Type, x []float32) []float32 {
	t.Helper()
	return decode(t, typ, quantized(t, typ, x))
}

// relRMSE is ‖y − x‖ / ‖x‖.
func relRMSE(x, y []float32) float64 {
	var e, s float64
	for i := range x {
		d := float64(y[i]) - float64(x[i])
		e += d * d
		s += float64(x[i]) * float64(x[i])
	}
	return math.Sqrt(e / s)
}

func TestQuantizeRoundTripError(t *testing.T) {
	// Gaussian rows, as weights roughly are, plus rows with an offset (which
	// Q4_K's per-sub-block min exists for) and outliers.
	x := gaussian(64*256, 0.02, 7)
	offset := gaussian(16*256, 1, 8)
	for i := range offset {
		offset[i] += 3
	}
	outl := gaussian(16*256, 1, 9)
	for i := 0; i < len(outl); i += 97 {
		outl[i] *= 30
	}
	// Bounds are ~1.3× what these quantizers measure (Q8_0 ≈ 0.0047,
	// Q4_0 ≈ 0.11, Q4_K ≈ 0.09, Q6_K ≈ 0.023 on Gaussian data).
	bounds := []struct {
		typ                 Type
		gauss, offs, outlie float64
	}{
		{F32, 0, 0, 0},
		{F16, 3e-4, 3e-4, 3e-4},
		{BF16, 3e-3, 3e-3, 3e-3},
		{Q8_0, 0.007, 0.0045, 0.02},
		{Q4_0, 0.14, 0.1, 0.5},
		{Q4_1, 0.14, 0.03, 0.5},
		{Q5_0, 0.07, 0.05, 0.25},
		{Q5_1, 0.07, 0.015, 0.25},
		{Q2_K, 0.35, 0.16, 0.32},
		{Q3_K, 0.2, 0.125, 0.16},
		{Q4_K, 0.12, 0.035, 0.35},
		{Q5_K, 0.06, 0.02, 0.2},
		{Q6_K, 0.03, 0.02, 0.1},
	}
	for _, b := range bounds {
		for _, c := range []struct {
			name  string
			x     []float32
			bound float64
		}{{"gaussian", x, b.gauss}, {"offset", offset, b.offs}, {"outliers", outl, b.outlie}} {
			e := relRMSE(c.x, roundTrip(t, b.typ, c.x))
			t.Logf("%v %s: relative RMSE %.5f (bound %.5f)", b.typ, c.name, e, c.bound)
			if e > c.bound || math.IsNaN(e) {
				t.Errorf("%v %s: relative RMSE %.5f > %.5f", b.typ, c.name, e, c.bound)
			}
		}
	}
}

// Per-element bounds for the block types with a simple scale: Q8_0 errs by
// at most half a step d = amax/127 (plus the fp16 rounding of d). Q4_0 maps
// the extreme value to code 0 (−8·d), so values of the opposite sign near
// +8·d clamp to code 15 (+7·d): up to a whole step d = amax/8.
func TestQuantizeElementBound(t *testing.T) {
	x := gaussian(32*100, 1, 3)
	// Q4_1/Q5_1 span [min, max] in 15/31 steps: half a step of (max−min)/n,
	// plus the fp16 rounding of d and of m.
	for _, c := range []struct {
		typ        Type
		steps, err float32 // step = amax/steps; error ≤ err·step
		minmax     bool    // step = (max−min)/steps instead
	}{{Q8_0, 127, 0.5, false}, {Q4_0, 8, 1, false}, {Q5_0, 16, 1, false}, {Q4_1, 15, 0.5, true}, {Q5_1, 31, 0.5, true}} {
		y := roundTrip(t, c.typ, x)
		for b := 0; b < len(x)/32; b++ {
			var amax float32
			for _, v := range x[32*b : 32*b+32] {
				amax = max(amax, abs32(v))
			}
			d := amax / c.steps
			if c.minmax {
				lo, hi := minMax(x[32*b : 32*b+32])
				d = (hi - lo) / c.steps
				amax *= 2 // covers the fp16 error of m plus code·(error of d)
			}
			for i := 32 * b; i < 32*b+32; i++ {
				// Half a step, plus the scale's fp16 error (2^-11 relative)
				// times the largest code.
				tol := d*c.err + amax*(1.0/2048)*1.01
				if e := abs32(y[i] - x[i]); e > tol {
					t.Fatalf("%v [%d]: |%v − %v| = %v > %v", c.typ, i, y[i], x[i], e, tol)
				}
			}
		}
	}
}

// The ggml-exact quantizers checked against values worked out by hand.
func TestQuantizeKnown(t *testing.T) {
	// Q4_0: x = (j−16)/2 has its largest magnitude at j=0 (−8), so d = 1 and
	// code = trunc(x + 8.5) clamped to 15.
	x := make([]float32, 32)
	for j := range x {
		x[j] = float32(j-16) / 2
	}
	b := quantized(t, Q4_0, x)
	if h := binary.LittleEndian.Uint16(b); h != 0x3c00 {
		t.Fatalf("Q4_0 d = %#04x", h)
	}
	for j := 0; j < 32; j++ {
		want := min(15, int(float64(j-16)/2+8.5))
		got := int(b[2+j%16] & 15)
		if j >= 16 {
			got = int(b[2+j%16] >> 4)
		}
		if got != want {
			t.Fatalf("Q4_0 code %d = %d want %d", j, got, want)
		}
	}
	// Q8_0: amax 127 gives d = 1 and codes equal to round-half-away(x).
	for j := range x {
		x[j] = float32(j) - 15.5
	}
	x[31] = 127
	b = quantized(t, Q8_0, x)
	if h := binary.LittleEndian.Uint16(b); h != 0x3c00 {
		t.Fatalf("Q8_0 d = %#04x", h)
	}
	for j := 0; j < 31; j++ {
		want := int8(math.Round(float64(j) - 15.5)) // −16 … 15, halves away from 0
		if int8(b[2+j]) != want {
			t.Fatalf("Q8_0 code %d = %d want %d", j, int8(b[2+j]), want)
		}
	}
	// All-zero blocks encode as zero bytes and decode to zeros.
	for _, typ := range []Type{Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K} {
		z := make([]float32, typ.BlockSize())
		for i, v := range roundTrip(t, typ, z) {
			if v != 0 {
				t.Fatalf("%v zero block [%d] = %v", typ, i, v)
			}
		}
	}
	// BF16 rounds to nearest even; F16 saturates to Inf.
	b = quantized(t, BF16, []float32{math.Float32frombits(0x3f808000), math.Float32frombits(0x3f818000)})
	if binary.LittleEndian.Uint16(b) != 0x3f80 || binary.LittleEndian.Uint16(b[2:]) != 0x3f82 {
		t.Fatalf("BF16 ties: %x", b)
	}
	b = quantized(t, F16, []float32{1e6})
	if binary.LittleEndian.Uint16(b) != 0x7c00 {
		t.Fatalf("F16 overflow: %x", b)
	}
}

// A Q4_K/Q5_K/Q6_K block whose values are exactly representable in the format
// (the decoding of a block) must survive requantization nearly unchanged:
// checks that the quantizer writes the layout the decoder reads.
func TestQuantizeKLayout(t *testing.T) {
	for _, typ := range []Type{Q2_K, Q3_K, Q4_K, Q5_K, Q6_K} {
		x := gaussian(256, 1, 11)
		y := roundTrip(t, typ, x)
		z := roundTrip(t, typ, y)
		if e := relRMSE(y, z); e > 0.02 {
			t.Errorf("%v: requantizing decoded values moved them by %.4f", typ, e)
		}
		// A ramp per 32 values with a different slope in each: a value in
		// the wrong position or sub-block would miss by far more than one
		// quantization step (range/15 for Q4_K, range/31 for Q6_K).
		nmax := map[Type]float32{Q2_K: 3, Q3_K: 7, Q4_K: 15, Q5_K: 31, Q6_K: 31}[typ]
		for i := range x {
			x[i] = float32(i%32) * float32(1+i/32) / 4
		}
		y = roundTrip(t, typ, x)
		for i := range x {
			step := 31 * float32(1+i/32) / 4 / nmax
			if abs32(y[i]-x[i]) > step {
				t.Fatalf("%v ramp [%d] = %v want %v ± %v", typ, i, y[i], x[i], step)
			}
		}
	}
}

func TestQuantizeErrors(t *testing.T) {
	if err := Quantize(IQ4_XS, make([]byte, 136), make([]float32, 256)); !errors.Is(err, ErrUnsupportedType) {
		t.Error(err)
	}
	if err := Quantize(Q4_K, make([]byte, 144), make([]float32, 255)); !errors.Is(err, ErrSize) {
		t.Error(err)
	}
	if err := Quantize(Q4_K, make([]byte, 143), make([]float32, 256)); !errors.Is(err, ErrSize) {
		t.Error(err)
	}
	if err := Quantize(F16, make([]byte, 2), []float32{1}); err != nil || half.ToFloat32(1) == 0 {
		t.Error(err)
	}
}

// Non-finite inputs must not panic (the bytes are unspecified, as in ggml).
func TestQuantizeNonFinite(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	for typ, ti := range typeTable {
		if !ti.supported {
			continue
		}
		for _, special := range []float32{inf, -inf, nan, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32} {
			x := gaussian(256, 1, 2)
			x[3], x[200] = special, special
			dst := make([]byte, 256/ti.blockSize*ti.blockBytes)
			if err := Quantize(typ, dst, x); err != nil {
				t.Fatalf("%v: %v", typ, err)
			}
			if err := DequantizeRow(make([]float32, 256), typ, dst); err != nil {
				t.Fatalf("%v: %v", typ, err)
			}
		}
	}
}

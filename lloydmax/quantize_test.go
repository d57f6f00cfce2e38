package lloydmax

import (
	"math"
	"math/rand/v2"
	"testing"
)

// argmin is the brute-force reference quantizer: the nearest centroid.
func argmin(c []float64, x float64) int {
	best, bi := math.Inf(1), 0
	for i, v := range c {
		if d := math.Abs(x - v); d < best {
			best, bi = d, i
		}
	}
	return bi
}

// countBelow is the specification of Quantize: boundaries strictly below x.
func countBelow(b []float32, x float32) uint8 {
	var n uint8
	for _, t := range b {
		if t < x {
			n++
		}
	}
	return n
}

func quantizeCodebooks(t testing.TB) []*Codebook {
	var cbs []*Codebook
	for bits := 1; bits <= 8; bits++ {
		cbs = append(cbs, mustGet(t, FamilyBeta, 128, bits), mustGet(t, FamilyGaussian, 1, bits))
	}
	return cbs
}

func TestQuantizeMatchesArgmin(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for _, cb := range quantizeCodebooks(t) {
		sigma := cb.Centroids[len(cb.Centroids)-1] / 2
		n := 1 << cb.Bits
		skipped := 0
		for range 20000 {
			x := float32(rnd.NormFloat64() * sigma * (1 + 2*rnd.Float64()))
			got := cb.Quantize(x)
			if want := countBelow(cb.Boundaries32, x); got != want {
				t.Fatalf("b=%d: Quantize(%v) = %d, boundary count %d", cb.Bits, x, got, want)
			}
			// Away from a boundary (where float32 rounding of the boundary
			// decides), the cell is the nearest centroid.
			near := false
			for _, b := range cb.Boundaries {
				if math.Abs(float64(x)-b) <= 0x1p-23*math.Abs(b) {
					near = true
				}
			}
			if near {
				skipped++
				continue
			}
			if want := argmin(cb.Centroids, float64(x)); int(got) != want {
				t.Fatalf("b=%d: Quantize(%v) = %d, nearest centroid %d", cb.Bits, x, got, want)
			}
			if got >= uint8(n-1) && n == 256 && got != 255 {
				t.Fatal("index out of range")
			}
		}
		if skipped > 20 {
			t.Errorf("b=%d: %d samples fell on boundaries", cb.Bits, skipped)
		}
	}
}

func TestQuantizeEdges(t *testing.T) {
	nan := float32(math.NaN())
	for _, cb := range quantizeCodebooks(t) {
		last := uint8(1<<cb.Bits - 1)
		cases := []struct {
			x    float32
			want uint8
		}{
			{nan, 0},
			{float32(math.Inf(-1)), 0},
			{float32(math.Inf(1)), last},
			{math.MaxFloat32, last},
			{-math.MaxFloat32, 0},
		}
		for _, c := range cases {
			if got := cb.Quantize(c.x); got != c.want {
				t.Errorf("b=%d: Quantize(%v) = %d, want %d", cb.Bits, c.x, got, c.want)
			}
		}
		// A value equal to a boundary goes to the lower cell; the next
		// float32 up goes to the upper one.
		for i, b := range cb.Boundaries32 {
			if got := cb.Quantize(b); got != uint8(i) {
				t.Errorf("b=%d: Quantize(boundary %d) = %d, want %d", cb.Bits, i, got, i)
			}
			if got := cb.Quantize(math.Nextafter32(b, float32(math.Inf(1)))); got != uint8(i+1) {
				t.Errorf("b=%d: Quantize(just above boundary %d) = %d, want %d", cb.Bits, i, got, i+1)
			}
		}
		// ±0 are both on the middle boundary, which is 0: lower cell.
		if got := cb.Quantize(float32(math.Copysign(0, -1))); got != last/2 {
			t.Errorf("b=%d: Quantize(−0) = %d, want %d", cb.Bits, got, last/2)
		}
		for i := range cb.Centroids32 {
			if got := cb.Quantize(cb.Value(uint8(i))); got != uint8(i) {
				t.Errorf("b=%d: Quantize(Value(%d)) = %d", cb.Bits, i, got)
			}
		}
	}
}

func TestQuantizeSlice(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	x := make([]float32, 1000)
	for i := range x {
		x[i] = float32(rnd.NormFloat64() * 0.1)
	}
	x[3], x[4], x[5] = float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))
	dst := make([]uint8, len(x)+5)
	for i := range dst {
		dst[i] = 0xAA // guards beyond len(x) must survive
	}
	for _, cb := range quantizeCodebooks(t) {
		cb.QuantizeSlice(dst, x)
		for i, v := range x {
			if dst[i] != cb.Quantize(v) {
				t.Fatalf("b=%d: QuantizeSlice[%d] = %d, Quantize %d", cb.Bits, i, dst[i], cb.Quantize(v))
			}
		}
		for _, g := range dst[len(x):] {
			if g != 0xAA {
				t.Fatalf("b=%d: QuantizeSlice wrote past len(x)", cb.Bits)
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("QuantizeSlice with a short dst did not panic")
		}
	}()
	quantizeCodebooks(t)[0].QuantizeSlice(dst[:10], x)
}

func TestQuantizeAllocs(t *testing.T) {
	x := make([]float32, 256)
	dst := make([]uint8, 256)
	for _, cb := range quantizeCodebooks(t) {
		var sink uint8
		if a := testing.AllocsPerRun(100, func() { sink += cb.Quantize(0.3) }); a != 0 {
			t.Errorf("b=%d: Quantize allocates %v", cb.Bits, a)
		}
		if a := testing.AllocsPerRun(100, func() { cb.QuantizeSlice(dst, x) }); a != 0 {
			t.Errorf("b=%d: QuantizeSlice allocates %v", cb.Bits, a)
		}
		_ = sink
	}
}

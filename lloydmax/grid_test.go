package lloydmax

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// The grid must agree with the boundary search on every input: random
// values, every float32 within a few ulps of each boundary, and the special
// values.
func TestGridEqualsSearch(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, f := range []Family{FamilyBeta, FamilyGaussian} {
		for _, d := range []int{16, 100, 128, 777, 4096} {
			for bits := 3; bits <= 8; bits++ {
				cb, err := Get(f, d, bits)
				require.NoError(t, err)
				require.NotNil(t, cb.grid, "%v d=%d b=%d has no grid", f, d, bits)
				var xs []float32
				for _, b := range cb.Boundaries32 {
					for _, dir := range []float32{float32(math.Inf(1)), float32(math.Inf(-1))} {
						x := b
						for range 3 {
							xs = append(xs, x)
							x = math.Nextafter32(x, dir)
						}
					}
				}
				sigma := 1 / math.Sqrt(float64(d))
				for range 2000 {
					xs = append(xs, float32(r.NormFloat64()*sigma*3))
				}
				xs = append(xs, 0, float32(math.Copysign(0, -1)), float32(math.NaN()),
					float32(math.Inf(1)), float32(math.Inf(-1)), math.MaxFloat32, -math.MaxFloat32, 1e-45, -1e-45)
				got := make([]uint8, len(xs))
				cb.QuantizeSlice(got, xs)
				for i, x := range xs {
					require.Equal(t, search(&cb.search, bits, x), got[i], "%v d=%d b=%d x=%g", f, d, bits, x)
				}
			}
		}
	}
}
